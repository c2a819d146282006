"""Driver of the kernel registry benchmark (run it through run_registry_bench.sh).

Starts the real daemon on temporary state directories and prints:
  (a) time from process start to ready (ready log line, /healthz answering), median of 5 starts,
      with an empty store and with 10,000 kernels;
  (b) create, list (1,000 kernels in the store) and show throughput and latency over keep-alive
      REST, measured by kernel_registry_bench (C++, Boost.Beast), next to a stdlib http.server
      peer serving the same document from a dict;
  (c) the daemon's VmRSS at idle with an empty store and with 10,000 kernels.
Every loop is bounded; every process started here is stopped by its pid.
"""

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import harness as h  # noqa: E402

STARTS = 5

# The documents the creates post. Every create starts (or joins) the env build of the document's
# env hash, and pip would then compete with the daemon for its CPU. So the measured creates use a
# kernel without packages whose env (venv + worker shim) is built once beforehand: each create
# finds it ready. The Hub's own document is measured too, in a separate row: offline, its build
# fails and each create of a kernel with the failed env starts it again in the background.
# "workers": 0: a ready managed kernel otherwise starts a worker process, and this measures the
# registry, not thousands of Python workers (tests/bench/worker_bench.py measures those).
SHARED_ENV_DOC = {"pythonVersion": "3.11", "requestedDependencies": [], "type": "PROCESS",
                  "version": "2.14.0", "workers": 0}
HUB_DOC = {k: v for k, v in h.HUB_KERNEL.items() if k != "name"}
HUB_DOC["workers"] = 0


def startup_ms_from_log(daemon):
    for line in daemon.lines:
        if "event=supervisor.ready" in line and "startup_ms=" in line:
            return float(line.split("startup_ms=")[1].split()[0])
    return float("nan")


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="gsk-bench-")
        self.procs = []  # (kind, Popen or Daemon) to stop at the end
        self.rows = []
        ncpu = os.cpu_count() or 1
        self.pinned = ncpu >= 2 and shutil.which("taskset") is not None and not args.no_pin
        self.server_cpu = 0 if self.pinned else None
        self.client_cpu = 1 if self.pinned else None

    def placement(self):
        if self.pinned:
            return (f"server (daemon or peer) pinned to CPU {self.server_cpu}, client to CPU "
                    f"{self.client_cpu} with taskset")
        return "not pinned (fewer than 2 CPUs, no taskset, or --no-pin)"

    # --- processes ----------------------------------------------------------------------------

    def daemon(self, state_dir):
        d = h.Daemon(state_dir, binary=self.args.binary)
        self.procs.append(d)
        return d

    def timed_start(self, d):
        """Starts `d` on a port picked here and polls /healthz from the moment of launch.
        Returns (ms to ready line, ms to first /healthz 200, daemon's own startup_ms)."""
        port = h.free_port()
        d.launch(listen=f"127.0.0.1:{port}", cpu=self.server_cpu)
        t0 = d.launch_time
        deadline = t0 + h.START_TIMEOUT
        health_at = None
        while time.monotonic() < deadline and health_at is None:
            if d.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {d.proc.returncode}:\n{d.log()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    health_at = time.monotonic()
                conn.close()
            except OSError:
                time.sleep(0.0005)
        d.wait_ready(max(deadline - time.monotonic(), 1))
        if health_at is None:
            raise RuntimeError("daemon never answered /healthz")
        return ((d.ready_time - t0) * 1000, (health_at - t0) * 1000, startup_ms_from_log(d))

    def startup_series(self, state_dir, label):
        d = self.daemon(state_dir)
        samples = []
        for _ in range(STARTS):
            samples.append(self.timed_start(d))
            if d.stop() != 0:
                raise RuntimeError(d.log())
        line = statistics.median(s[0] for s in samples)
        health = statistics.median(s[1] for s in samples)
        internal = statistics.median(s[2] for s in samples)
        self.startup.append((label, line, health, internal,
                             ", ".join(f"{s[1]:.0f}" for s in samples)))

    def prepare_shared_env(self, d):
        """Builds the env of SHARED_ENV_DOC once; returns the doc file the creates will post."""
        r = d.post("/api/v1/kernels", dict(SHARED_ENV_DOC, name="shared-env"))
        if r.status != 201:
            raise RuntimeError(f"cannot create the shared-env kernel: {r}")
        k = d.wait_status("shared-env", ("ready", "failed"), timeout=300)
        self.shared_env_status = k["status"]
        if k["status"] != "ready":
            print(f"  warning: the shared env did not build ({k['lastError']}); creates will "
                  f"race a failing build", file=sys.stderr, flush=True)
        d.request("DELETE", "/api/v1/kernels/shared-env")  # the env stays cached for reuse
        return self.write_doc("shared-env.json", SHARED_ENV_DOC)

    def write_doc(self, name, doc):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    def run_client(self, port, token, op, requests, max_seconds, connections=1, **extra):
        cmd = [self.args.bench, "--port", str(port), "--token", token, "--op", op,
               "--requests", str(requests), "--max-seconds", str(max_seconds),
               "--connections", str(connections)]
        for k, v in extra.items():
            cmd += ["--" + k.replace("_", "-"), str(v)]
        if self.client_cpu is not None:
            cmd = ["taskset", "-c", str(self.client_cpu)] + cmd
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=max_seconds + 60)
        if out.returncode != 0:
            raise RuntimeError(f"{cmd}: exit {out.returncode}: {out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def record(self, server, op, store, result):
        self.rows.append((server, op, store, result))
        if result["errors"]:
            print(f"  warning: {server} {op}: {result['errors']} errors "
                  f"(first: {result['first_error']})", file=sys.stderr, flush=True)

    # --- the runs -----------------------------------------------------------------------------

    def run(self):
        a = self.args
        self.startup = []
        self.rss = []
        print(f"# kernel registry benchmark ({self.placement()})", file=sys.stderr, flush=True)

        # (a) empty store: a first start creates the database (not counted), then 5 starts.
        empty = os.path.join(self.tmp, "empty")
        d = self.daemon(empty).start(cpu=self.server_cpu)
        time.sleep(1)
        self.rss.append(("empty store, idle", h.rss_kib(d.pid)))
        d.stop()
        self.startup_series(empty, "empty store")

        # (b) the registry on a fresh state directory.
        state = os.path.join(self.tmp, "registry")
        d = self.daemon(state).start(cpu=self.server_cpu)
        token = d.token
        print("# build the shared env", file=sys.stderr, flush=True)
        shared_doc = self.prepare_shared_env(d)
        print("# create 1,000 kernels", file=sys.stderr, flush=True)
        self.record("supervisor", "create", "0 -> 1,000",
                    self.run_client(d.port, token, "create", 1000, 120, prefix="bench-",
                                    doc=shared_doc))
        n = d.kernel_count()
        print("# list and show with 1,000 kernels", file=sys.stderr, flush=True)
        self.record("supervisor", "list", f"{n:,}",
                    self.run_client(d.port, token, "list", a.list_requests, a.seconds))
        self.record("supervisor", "health", f"{n:,}",
                    self.run_client(d.port, token, "health", a.show_requests, a.seconds))
        self.record("supervisor", "show", f"{n:,}",
                    self.run_client(d.port, token, "show", a.show_requests, a.seconds,
                                    name="bench-000500"))
        self.record("supervisor", "show x4 conns", f"{n:,}",
                    self.run_client(d.port, token, "show", a.show_requests, a.seconds,
                                    connections=4, name="bench-000500"))
        doc = d.get("/api/v1/kernels/bench-000500").json
        print("# create 200 kernels with the Hub document", file=sys.stderr, flush=True)
        self.record("supervisor", "create (Hub doc)", f"{n:,} -> {n + 200:,}",
                    self.run_client(d.port, token, "create", 200, 120, prefix="hub-",
                                    doc=self.write_doc("hub.json", HUB_DOC)))
        n = d.kernel_count()
        print(f"# create up to {a.kernels:,} kernels", file=sys.stderr, flush=True)
        self.record("supervisor", "create", f"{n:,} -> {a.kernels:,}",
                    self.run_client(d.port, token, "create", a.kernels - n, 600,
                                    prefix="bench-", start=1000, doc=shared_doc))
        # Let a running build end before measuring idle memory and start-up.
        for k in d.get("/api/v1/kernels").json["kernels"]:
            if k["name"].startswith("hub-"):
                d.wait_status(k["name"], ("ready", "failed"), timeout=300)
                break
        n = d.kernel_count()
        self.record("supervisor", "show", f"{n:,}",
                    self.run_client(d.port, token, "show", a.show_requests, a.seconds,
                                    name=f"bench-{n // 2:06d}"))
        time.sleep(1)
        self.rss.append((f"{n:,} kernels, idle after the creates", h.rss_kib(d.pid)))
        d.stop()
        self.startup_series(state, f"{n:,} kernels")
        d = self.daemon(state).start(cpu=self.server_cpu)
        d.get("/api/v1/kernels/bench-000001")
        time.sleep(1)
        self.rss.append((f"{n:,} kernels, idle after a restart", h.rss_kib(d.pid)))
        d.stop()

        # The peer: stdlib http.server serving the same document from a dict.
        doc_file = os.path.join(self.tmp, "doc.json")
        with open(doc_file, "w") as f:
            json.dump(doc, f)
        for label, tuned in (("python http.server (naive)", False),
                             ("python http.server (NODELAY, 1 write)", True)):
            self.peer_show(label, doc_file, token, tuned)

    def peer_show(self, label, doc_file, token, tuned):
        port = h.free_port()
        cmd = ["/usr/bin/python3", os.path.join(HERE, "peer_http_server.py"), "--port", str(port),
               "--token", token, "--doc", doc_file, "--copies", "1000"]
        if tuned:
            cmd.append("--tuned")
        if self.server_cpu is not None:
            cmd = ["taskset", "-c", str(self.server_cpu)] + cmd
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        try:
            line = proc.stdout.readline()  # "peer ready ..." (bounded by the peer's own start)
            if "ready" not in line:
                raise RuntimeError(f"peer did not start: {line}")
            self.record(label, "show", "1,000",
                        self.run_client(port, token, "show", self.args.show_requests,
                                        self.args.seconds, name="bench-000500"))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def cleanup(self):
        for p in self.procs:
            if isinstance(p, h.Daemon):
                p.kill()
            elif p.poll() is None:
                p.kill()
                p.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- output -------------------------------------------------------------------------------

    def print_report(self):
        a = self.args
        print()
        print("giskard-supervisor kernel registry benchmark")
        print(f"  binary:    {a.binary} ({a.build_type or 'unknown build type'})")
        print(f"  machine:   {platform.node()}, {os.cpu_count()} CPUs, {cpu_model()}, "
              f"Linux {platform.release()}")
        print(f"  placement: {self.placement()}")
        print(f"  client:    kernel_registry_bench (C++, Boost.Beast sync, keep-alive, "
              f"TCP_NODELAY), each run up to {a.seconds:g} s")
        print(f"  creates:   a kernel without packages whose env was built once beforehand "
              f"({self.shared_env_status}); \"Hub doc\": the Hub's document, whose offline build "
              f"fails and restarts in the background")
        print(f"  daemon:    config [packages] offline = true, [builds] max_concurrent = 1")
        print()
        print("(a) process start to ready, median of 5 starts (ms)")
        print(f"  {'store':<16} {'ready line':>10} {'/healthz':>10} {'daemon says':>12}"
              f"   /healthz samples")
        for label, line, health, internal, samples in self.startup:
            print(f"  {label:<16} {line:>10.1f} {health:>10.1f} {internal:>12.1f}   {samples}")
        print()
        print("(b) keep-alive REST throughput and latency")
        print(f"  {'server':<38} {'op':<14} {'kernels':>15} {'conns':>5} {'requests':>8} "
              f"{'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'resp B':>8}")
        for server, op, store, r in self.rows:
            print(f"  {server:<38} {op:<14} {store:>15} {r['connections']:>5} "
                  f"{r['requests']:>8} {r['rps']:>9.0f} {r['p50_us'] / 1000:>8.3f} "
                  f"{r['p99_us'] / 1000:>8.3f} {r['errors']:>6} "
                  f"{r['bytes_per_response']:>8.0f}")
        print()
        print("(c) daemon VmRSS")
        for label, kib in self.rss:
            print(f"  {label:<40} {kib / 1024:>8.1f} MiB")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", required=True, help="giskard-supervisor")
    p.add_argument("--bench", required=True, help="kernel_registry_bench")
    p.add_argument("--build-type", default="")
    p.add_argument("--kernels", type=int, default=10000, help="store size for (a) and (c)")
    p.add_argument("--seconds", type=float, default=5.0, help="time limit of each run")
    p.add_argument("--show-requests", type=int, default=200000)
    p.add_argument("--list-requests", type=int, default=20000)
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    args = p.parse_args()
    if args.kernels < 1000:
        p.error("--kernels must be at least 1000")
    bench = Bench(args)
    try:
        bench.run()
    finally:
        bench.cleanup()
    bench.print_report()


if __name__ == "__main__":
    main()
