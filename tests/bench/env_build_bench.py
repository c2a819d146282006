#!/usr/bin/env python3
"""Environment build benchmark: giskard-supervisor's env builds against the classic way.

Not a test: prints a Markdown table. Run it with run_env_build_bench.sh BUILD_DIR. In one run:

  (a) cached: a new kernel whose env is already built: time from POST /api/v1/kernels until the
      answer (which must say "ready"), over --cached kernels (different names, same spec);
  (b) cold builds of the worker shim + 3 local wheels and of the shim + 20 local wheels
      (make_wheels.py --extra 20), offline from a find-links directory:
        supervisor:   POST, then poll GET every 10 ms until ready (a fresh state dir each run);
                      also build_ms from the daemon's `event=env.ready ... build_ms=N` line;
        classic:      python3 -m venv V && V/bin/pip install --no-index --find-links W ...
        pip-wheel:    python3 -m venv --without-pip V && V/bin/python PIP.whl/pip install ...
                      with the supervisor's own pip flags (what the daemon runs, without it).
      One untimed warm-up round first (page cache, pyc files), then --runs runs of each
      (medians). The goal: a cold build through the supervisor at least 2x
      faster than `python -m venv` followed by `pip install`.

Standard library only. Every subprocess and wait is bounded; temporary directories are removed.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import harness as h  # noqa: E402  (also puts tests/wheels on sys.path)

STEP_TIMEOUT = 300
BUILD_DEADLINE = 300
SMALL = ["gsk-alpha==1.0.0", "gsk-gamma==1.0.0", "gsk-tool"]
LARGE = [f"gsk-pkg-{i:03d}" for i in range(20)]


def pip_env():
    """What the classic runs get: the caller's environment without pip settings, no pip.conf,
    and no self version check (there is no PyPI to ask here; the supervisor disables it too)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PIP_")}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "LC_ALL": "C.UTF-8"})
    return env


def run(cmd):
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=True,
                   timeout=STEP_TIMEOUT, env=pip_env())


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="gsk-env-bench-")
        self.wheels = h.build_wheels(os.path.join(self.tmp, "wheels"), extra=20)
        self.config = h.config_toml(find_links=[self.wheels], offline=True)
        self.py = "%d.%d" % sys.version_info[:2]
        self.python = None      # the interpreter the daemon uses for self.py
        self.pip_wheel = None   # and the pip wheel it runs (read from its build log)
        self.shim_wheel = None
        self.pip_argv = None    # the daemon's pip flags, between "install" and --requirement
        self.daemons = []

    def close(self):
        for d in self.daemons:
            if d.running():
                d.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def daemon(self):
        d = h.Daemon(tempfile.mkdtemp(prefix="state-", dir=self.tmp), self.config,
                     binary=self.args.binary)
        self.daemons.append(d)
        d.start()
        if self.python is None:
            minors = h.usable_minors(d)
            if self.py not in minors:
                self.py = h.preferred_minor(minors)
                if self.py is None:
                    sys.exit("the daemon found no usable Python interpreter")
            self.python = minors[self.py]
        return d

    def finish(self, d):
        d.stop()
        shutil.rmtree(d.state_dir, ignore_errors=True)
        self.daemons.remove(d)

    def wait_ready(self, d, name):
        deadline = time.monotonic() + BUILD_DEADLINE
        while time.monotonic() < deadline:
            k = d.get(f"/api/v1/kernels/{name}").json
            if k["status"] == "ready":
                return k
            if k["status"] == "failed":
                sys.exit(f"build of {name} failed: {k['lastError']}")
            time.sleep(0.01)
        sys.exit(f"build of {name} not ready after {BUILD_DEADLINE} s")

    def learn_pip_command(self, d, name):
        """The pip wheel, flags and shim wheel the daemon used (from the build log)."""
        log = d.get(f"/api/v1/kernels/{name}/build-log").raw.decode()
        m = re.search(r"^\$ \S+/bin/python -E -s (\S+\.whl)/pip install (.*) --requirement \S+ "
                      r"(\S+\.whl)$", log, re.M)
        if not m:
            sys.exit("cannot find the pip command in the build log:\n" + log)
        self.pip_wheel, self.shim_wheel = m.group(1), m.group(3)
        self.pip_argv = m.group(2).split()

    # --- the cases -----------------------------------------------------------------------------

    def supervisor_cold(self, reqs, run_no):
        d = self.daemon()
        name = f"cold-{len(reqs)}-{run_no}"
        start = time.monotonic()
        r = d.post("/api/v1/kernels", h.kernel_doc(name, self.py, reqs))
        assert r.status == 201, r
        k = self.wait_ready(d, name)
        wall = time.monotonic() - start
        if self.pip_wheel is None:
            self.learn_pip_command(d, name)
        d.stop()  # waits for the log reader, so that the env.ready line has been read
        build_ms = None
        for line in d.log_lines():
            m = re.search(r"event=env\.ready env=%s\S* .*build_ms=(\d+)" % k["envHash"][:12], line)
            if m:
                build_ms = int(m.group(1))
        self.finish(d)
        return wall, (build_ms / 1000.0 if build_ms is not None else float("nan"))

    def classic(self, reqs, no_compile=False):
        venv = tempfile.mkdtemp(prefix="classic-", dir=self.tmp)
        start = time.monotonic()
        run([self.python, "-m", "venv", venv])
        run([os.path.join(venv, "bin", "pip"), "install", "--no-index", "--find-links",
             self.wheels] + (["--no-compile"] if no_compile else []) + reqs + [self.shim_wheel])
        took = time.monotonic() - start
        shutil.rmtree(venv)
        return took

    def pip_from_wheel(self, reqs):
        venv = tempfile.mkdtemp(prefix="pipwheel-", dir=self.tmp)
        python = os.path.join(venv, "bin", "python")
        start = time.monotonic()
        run([self.python, "-E", "-s", "-m", "venv", "--without-pip", venv])
        run([python, "-E", "-s", os.path.join(self.pip_wheel, "pip"), "install"]
            + self.pip_argv_without_cache() + reqs + [self.shim_wheel])
        run([python, "-E", "-s", "-c", "import giskard_worker_shim"])
        took = time.monotonic() - start
        shutil.rmtree(venv)
        return took

    def pip_argv_without_cache(self):
        out, skip = [], False
        for a in self.pip_argv:
            if skip:
                skip = False
            elif a == "--cache-dir":
                skip = True
            else:
                out.append(a)
        return out + ["--no-cache-dir"]

    def cached(self, n):
        d = self.daemon()
        r = d.post("/api/v1/kernels", h.kernel_doc("warm-0", self.py, SMALL))
        assert r.status == 201, r
        self.wait_ready(d, "warm-0")
        times, not_ready = [], 0
        for i in range(1, n + 1):
            doc = h.kernel_doc(f"warm-{i}", self.py, list(reversed(SMALL)))
            start = time.monotonic()
            r = d.post("/api/v1/kernels", doc)
            times.append(time.monotonic() - start)
            assert r.status == 201, r
            not_ready += r.json["status"] != "ready"
        self.finish(d)
        return times, not_ready


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--build-type", default="unknown")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cached", type=int, default=50)
    args = parser.parse_args()
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be 1..20")
    h.set_binary(args.binary)
    bench = Bench(args)
    try:
        for reqs in (SMALL, LARGE):  # warm-up, not counted
            bench.supervisor_cold(reqs, "warmup")
            bench.classic(reqs)
            bench.pip_from_wheel(reqs)
        results = {}
        for label, reqs in (("3", SMALL), ("20", LARGE)):
            sup, sup_ms, cls, cls_nc, pw = [], [], [], [], []
            for i in range(args.runs):
                wall, build_s = bench.supervisor_cold(reqs, i)
                sup.append(wall)
                sup_ms.append(build_s)
                cls.append(bench.classic(reqs))
                cls_nc.append(bench.classic(reqs, no_compile=True))
                pw.append(bench.pip_from_wheel(reqs))
                print(f"  run {i + 1}/{args.runs} shim+{label}: supervisor {wall:.2f} s "
                      f"(build_ms {build_s:.2f} s), classic {cls[-1]:.2f} s "
                      f"({cls_nc[-1]:.2f} s with --no-compile), "
                      f"pip-wheel {pw[-1]:.2f} s", file=sys.stderr, flush=True)
            # A run whose build_ms could not be read is NaN: leave it out of that median.
            sup_ms = [x for x in sup_ms if x == x] or [float("nan")]
            results[label] = {k: statistics.median(v) for k, v in
                              (("sup", sup), ("sup_ms", sup_ms), ("classic", cls),
                               ("classic_nc", cls_nc), ("pw", pw))}
        cached, not_ready = bench.cached(args.cached)
        report(bench, args, results, cached, not_ready)
    finally:
        bench.close()


def report(bench, args, results, cached, not_ready):
    cpus = os.cpu_count()
    affinity = len(os.sched_getaffinity(0))
    pip_version = re.search(r"pip-([\d.]+)-", os.path.basename(bench.pip_wheel or ""))
    print(f"## giskard-supervisor env builds ({time.strftime('%Y-%m-%d %H:%M')})\n")
    print(f"- binary: {args.binary} ({args.build_type})")
    print(f"- Python {bench.py}: {bench.python}; pip "
          f"{pip_version.group(1) if pip_version else '?'} from {bench.pip_wheel}")
    print(f"- CPUs: {cpus} (usable by this process: {affinity}); load average "
          f"{os.getloadavg()[0]:.2f}; medians of {args.runs} runs after a warm-up; offline, "
          "find-links dir; no pip version check anywhere")
    print()
    print("| cold build (s, median) | shim + 3 wheels | shim + 20 wheels |")
    print("|---|---:|---:|")
    rows = [("supervisor: POST until GET says ready", "sup"),
            ("supervisor: build_ms from its log", "sup_ms"),
            ("classic: `python -m venv V && V/bin/pip install ...`", "classic"),
            ("classic, `pip install --no-compile` (as the supervisor: no .pyc)", "classic_nc"),
            ("`venv --without-pip` + pip from its wheel (daemon's flags, no daemon)", "pw")]
    for title, key in rows:
        print(f"| {title} | {results['3'][key]:.2f} | {results['20'][key]:.2f} |")
    ratio = {k: results[k]["classic"] / results[k]["sup"] for k in results}
    print(f"| speed-up of the supervisor over classic | {ratio['3']:.2f}x | {ratio['20']:.2f}x |")
    nc = {k: results[k]["classic_nc"] / results[k]["sup"] for k in results}
    print(f"| speed-up over classic with --no-compile | {nc['3']:.2f}x | {nc['20']:.2f}x |")
    overhead = {k: results[k]["sup"] - results[k]["pw"] for k in results}
    print(f"| supervisor overhead over pip-from-wheel (s) | {overhead['3']:+.2f} | "
          f"{overhead['20']:+.2f} |")
    met = {k: "met" if ratio[k] >= 2.0 else "NOT met" for k in ratio}
    print(f"| 2x goal | {met['3']} | {met['20']} |")
    print()
    print(f"Cached env, new kernel (same spec, other name): POST until the answer, which "
          f"{'says ready every time' if not not_ready else f'was NOT ready {not_ready} times'}: "
          f"median {statistics.median(cached) * 1000:.2f} ms, "
          f"p90 {percentile(cached, 90) * 1000:.2f} ms, max {max(cached) * 1000:.2f} ms "
          f"over {len(cached)} kernels.")


if __name__ == "__main__":
    main()
