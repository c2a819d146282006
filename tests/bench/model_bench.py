#!/usr/bin/env python3
"""Model call benchmark: POST /api/v1/kernels/{name}/predict of giskard-supervisor against the
shim protocol floor and against FastAPI/uvicorn, Flask/gunicorn and a stdlib HTTP server serving
the same pickled model in the same numpy/scikit-learn. Run it with run_model_bench.sh.

Not a test: prints numbers, in one run:
  (1) a trivial pure-Python model (predict returns [0]*len(X)), 10 rows (columns + rows): p50/p90/
      p99 over --calls keep-alive calls through REST, and the floor: the same calls in the shim
      protocol straight to a worker of the same venv, which model_bench_client.py floor starts
      and registers (GSK_WORKER_TOKEN), then model_call_bench frames sends them on; and the
      same REST calls to an unmanaged worker (below);
  (2) the iris LogisticRegression (trained in the kernel's env), predictions + probabilities for
      10 rows: latency on 1 connection and throughput on 8, for giskard-supervisor with 1 and 2
      workers and with 1 unmanaged worker (WebSocket on loopback), uvicorn (1 and 2 workers,
      and 2 with TCP_NODELAY patched in), gunicorn (2 sync workers), a stdlib
      ThreadingHTTPServer (model_bench_peers.py), and the floor;
  (3) one 10,000-row call to the iris model: REST against the floor (median of --rows-calls);
  (4) --burst calls sent at once on as many connections to a 1-worker kernel whose queue holds
      100: answers by status, 429s with Retry-After, none lost or hung (bounded wait);
plus the shim's own work per call measured in one process (no socket, no thread), and the CPU
time the daemon, the workers and the client spend per call (/proc schedstat), so that the gap
between REST and the floor can be attributed. The unmanaged worker (model_bench_unmanaged.py)
is `giskard worker start -k KEY -u http://127.0.0.1:PORT --name bench-remote`, run by the iris
kernel's venv (its shim, numpy and scikit-learn), GSK_HOME in the temporary directory; it is
warmed (model bytes fetched, scikit-learn imported) before (1) and stopped after its (2) row.
The client is model_call_bench (C++, built by CMake next to the daemon; --client), else
model_bench_client.py; the report says which.
The kernel's env is built by the daemon (offline) from Debian's numpy/scipy/scikit-learn 1.2.1
repacked as wheels (tests/models/debian_wheels.py, cached). The peers run on Debian's
/usr/bin/python3 with the kernel venv's site-packages first on PYTHONPATH, so that they use the
same numpy and scikit-learn as the workers. Every wait is bounded; every process started here is
stopped by its pid.
"""

import argparse
import contextlib
import http.client
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "models"))
import harness as h  # noqa: E402
import debian_wheels  # noqa: E402  (tests/models)
from model_bench_common import (INPROC, TRAIN, allowed_cpus, compilers_running,  # noqa: E402
                                cpu_delta_ms, cpu_ns, descendants, loadavg, note,
                                optimization, unpin)
from model_bench_report import print_report  # noqa: E402
from model_bench_unmanaged import UnmanagedWorker  # noqa: E402

CLIENT = os.path.join(HERE, "model_bench_client.py")
PEERS = os.path.join(HERE, "model_bench_peers.py")
DEBIAN_PYTHON = "/usr/bin/python3"
K1, K2 = "bench-1w", "bench-2w"
KU = "bench-remote"  # the unmanaged worker's name, and its kernel's
UNMANAGED_LABEL = "giskard-supervisor, 1 unmanaged worker (WebSocket, loopback)"
REQUIREMENTS = ["scikit-learn==1.2.1"]
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ENV_TIMEOUT = 900       # the env build: pip installs ~40 MB of wheels
WORKERS_TIMEOUT = 180   # workers running
PEER_TIMEOUT = 120      # a peer imports scikit-learn and loads the model
CALL_TIMEOUT = 300      # one REST call outside the measurements (the first imports sklearn)


class Lines:
    """The JSON lines a long-running helper prints, read on a thread: get() is bounded."""

    def __init__(self, proc):
        self.q = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc):
        for line in proc.stdout:
            self.q.put(line)
        self.q.put(None)

    def get(self, timeout):
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"no answer from the helper within {timeout:.0f} s") from None
        if line is None:
            raise RuntimeError("the helper exited")
        return json.loads(line)


class Bench:
    def __init__(self, args):
        self.a = args
        self.tmp = tempfile.mkdtemp(prefix="gsk-model-bench-")
        self.procs = []  # Popen objects to stop at the end
        self.daemon = None
        self.floor = None
        self.unmanaged = None
        self.r = {"loadavg_start": loadavg(), "compilers_start": compilers_running(),
                  "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "problems": []}
        ncpu = os.cpu_count() or 1
        self.pinned = ncpu >= 2 and shutil.which("taskset") is not None and not args.no_pin
        self.client_cpu = 1 if self.pinned else None
        self.k1 = K1
        self.cxx = args.client if args.client and os.access(args.client, os.X_OK) else None

    # --- setup ---------------------------------------------------------------------------------

    def phase(self, title, short=None):
        la = loadavg()
        note(f"# {title} (load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f})")
        if short:
            self.r.setdefault("phase_load", []).append((short, la[0]))

    def setup(self):
        a = self.a
        self.phase("wheels: Debian's scientific stack repacked (tests/models/debian_wheels.py)")
        wheels = a.wheels or os.path.join(os.path.dirname(debian_wheels.default_cache()),
                                          "model-bench-wheels")
        with contextlib.redirect_stdout(sys.stderr):  # its progress lines: not the report
            debian_wheels.build_all(wheels)
            debian_wheels.install_native_libs()
        config = h.config_toml(find_links=[wheels], offline=True, max_concurrent=1)
        config += "[models]\nqueue_size = 100\n"
        state = os.path.join(self.tmp, "state")
        self.phase("daemon start" + (", pinned to CPU 0" if self.pinned else ""))
        self.daemon = h.Daemon(state, config, binary=a.binary)
        self.daemon.start(cpu=0 if self.pinned else None)
        d = self.daemon
        self.token = d.token
        if "3.11" not in h.usable_minors(d):
            raise RuntimeError(f"no usable Python 3.11 (the wheels are cp311): "
                               f"{h.usable_minors(d)}")
        self.phase("kernels: env build (offline pip, scikit-learn==1.2.1), then the workers")
        t0 = time.monotonic()
        for name, workers in ((K1, 1), (K2, 2)):
            doc = {"name": name, "pythonVersion": "3.11", "requestedDependencies": REQUIREMENTS,
                   "type": "PROCESS", "version": "1", "workers": workers}
            r = d.post("/api/v1/kernels", doc)
            if r.status not in (200, 201):
                raise RuntimeError(f"create {name}: {r}")
        k = d.wait_status(K1, timeout=ENV_TIMEOUT)
        if k["status"] != "ready":
            raise RuntimeError(f"env build failed: {k.get('lastError')}\n{d.build_log(K1)[-3000:]}")
        self.r["env_build_s"] = time.monotonic() - t0
        self.env = os.path.join(state, "envs", k["envHash"][:32])
        self.models = os.path.join(state, "models")
        os.makedirs(self.models, exist_ok=True)
        self.x = json.loads(h.run_in_env(self.env, f"import sys; sys.argv[1:] = "
                                         f"{[self.models]!r}\n" + TRAIN,
                                         timeout=600).splitlines()[-1])
        self.site = os.path.join(self.env, "lib", "python3.11", "site-packages")
        self.write_bodies()
        self.wait_workers(K1, 1)
        self.wait_workers(K2, 2)
        self.placement = unpin(descendants(d.pid))
        for name, model in ((K1, "trivial"), (K1, "iris.pkl"), (K2, "iris.pkl")):
            r = d.post(f"/api/v1/kernels/{name}/models", {"model": model},
                       timeout=CALL_TIMEOUT)
            if r.status != 200:
                raise RuntimeError(f"loading {model} on {name}: {r}")
        self.placement = unpin(descendants(d.pid))  # threads started since (the executors)
        self.start_unmanaged()

    def start_unmanaged(self):
        """The unmanaged worker, connected, with both models fetched and loaded (each first call
        fetches the model's bytes and imports what it needs)."""
        self.phase(f"unmanaged worker: giskard worker start --name {KU}, then a first call per "
                   f"model")
        u = self.unmanaged = UnmanagedWorker(self.daemon, self.env,
                                             os.path.join(self.tmp, "unmanaged"), KU).start()
        for model in ("trivial", "iris.pkl"):
            r = self.daemon.post(f"/api/v1/kernels/{KU}/predict",
                                 {"model": model, "columns": COLUMNS, "rows": self.x["rows10"]},
                                 timeout=CALL_TIMEOUT)
            if r.status != 200:
                raise RuntimeError(f"first call of {model} on {KU}: {r}\n{u.log_tail()}")
        self.r["unmanaged"] = {"command": " ".join(u.command), "pid": u.pid,
                               "cpus": allowed_cpus(u.pid)}

    def stop_unmanaged(self):
        if self.unmanaged is None:
            return
        u = self.unmanaged
        how = u.stop()
        gone = u.gone_from_kernel()
        self.r.setdefault("unmanaged", {}).update(stopped=how, gone_from_kernel=gone)
        if not gone:
            self.r["problems"].append(f"the unmanaged worker {u.pid} is still listed after it "
                                      f"stopped ({how})")
        self.unmanaged = None

    def wait_quiet(self):
        """Waits (at most --wait-load-seconds) until the 1-minute load average is under
        --wait-load: another build on this machine would make every number noisy."""
        a = self.a
        deadline = time.monotonic() + a.wait_load_seconds
        la = loadavg()[0]
        if la >= a.wait_load:
            note(f"# waiting up to {a.wait_load_seconds:.0f} s for the load average ({la:.2f}) "
                 f"to fall under {a.wait_load:g}")
        while la >= a.wait_load and time.monotonic() < deadline:
            time.sleep(5)
            la = loadavg()[0]
        self.r["waited_load"] = (la, la < a.wait_load)
        if la >= a.wait_load:
            self.r["problems"].append(f"the load average was still {la:.2f} after waiting "
                                      f"{a.wait_load_seconds:.0f} s: measured anyway")

    def write_bodies(self):
        x = self.x
        self.bodies = {}

        def body(name, model, rows):
            path = os.path.join(self.tmp, name + ".json")
            with open(path, "w") as f:
                json.dump({"model": model, "columns": COLUMNS, "rows": rows}, f,
                          separators=(",", ":"))
            self.bodies[name] = path
        body("trivial", "trivial", x["rows10"])
        body("iris", "iris.pkl", x["rows10"])
        body("iris10k", "iris.pkl", x["rows10k"])
        body("floor-trivial", os.path.join(self.models, "trivial"), x["rows10"])
        body("floor-iris", os.path.join(self.models, "iris.pkl"), x["rows10"])
        body("floor-iris10k", os.path.join(self.models, "iris.pkl"), x["rows10k"])
        self.r["body_bytes"] = {k: os.path.getsize(v) for k, v in self.bodies.items()}

    def wait_workers(self, kernel, n):
        def running():
            ws = self.daemon.get(f"/api/v1/workers?kernel={kernel}").json["workers"]
            if any(w["state"] == "fatal" for w in ws):
                raise RuntimeError(f"fatal worker: {ws}")
            up = [w for w in ws if w["state"] == "running"]
            return up if len(up) == n else None
        return h.wait_for(f"{n} running workers of {kernel}", running, bool, WORKERS_TIMEOUT)

    def worker_pids(self, kernel):
        ws = self.daemon.get(f"/api/v1/workers?kernel={kernel}").json["workers"]
        return [w["pid"] for w in ws if w.get("pid")]

    # --- helpers -------------------------------------------------------------------------------

    def client(self, mode, body, port=None, path=None, timeout=300, **kw):
        """A load generator run pinned to the client CPU: model_call_bench (C++) for seq and
        load when it is built, else model_bench_client.py (Python); the burst always is."""
        port = str(port or self.daemon.port)
        path = path or f"/api/v1/kernels/{K1}/predict"
        first = None
        if self.cxx and mode in ("seq", "load"):
            cmd = [self.cxx, mode, "--port", port, "--path", path, "--token", self.token,
                   "--body", self.bodies[body]]
            if mode == "seq":
                first = os.path.join(self.tmp, "first-answer.json")
                cmd += ["--first-out", first, "--max-seconds", str(timeout - 30)]
            if self.client_cpu is not None:
                cmd = ["taskset", "-c", str(self.client_cpu)] + cmd
        else:
            cmd = [sys.executable, "-B", CLIENT, mode, "--port", port, "--path", path,
                   "--token", self.token, "--body", self.bodies[body]]
            if self.client_cpu is not None:
                cmd += ["--cpu", str(self.client_cpu)]
        for k, v in kw.items():
            cmd += ["--" + k.replace("_", "-"), str(v)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stderr[-3000:]}")
        out = json.loads(p.stdout.strip().splitlines()[-1])
        if first is not None:
            with open(first) as f:
                out["first"] = f.read()
        return out

    def with_cpu(self, pids, fn):
        """fn()'s result, plus {"cpu_ms": {pid: ms}} of `pids` over it."""
        before = {p: cpu_ns(p) for p in pids}
        out = fn()
        after = {p: cpu_ns(p) for p in pids}
        out["cpu_ms"] = {p: cpu_delta_ms(before[p], after[p]) for p in pids
                         if before[p] is not None and after[p] is not None}
        return out

    def rest(self, kernel, body, mode="seq", **kw):
        pids = [self.daemon.pid] + self.worker_pids(kernel)
        out = self.with_cpu(pids, lambda: self.client(
            mode, body, path=f"/api/v1/kernels/{kernel}/predict", **kw))
        out["daemon_pid"] = self.daemon.pid
        return out

    def start_floor(self):
        work = os.path.join(self.tmp, "floor")
        os.makedirs(work)
        cmd = [sys.executable, "-B", CLIENT, "floor", "--python",
               os.path.join(self.env, "bin", "python"), "--work", work]
        if self.client_cpu is not None:
            cmd += ["--cpu", str(self.client_cpu)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        self.floor = (proc, Lines(proc))
        ready = self.floor[1].get(120)
        self.floor_worker = ready["worker_pid"]
        self.r["floor_worker_cpus"] = allowed_cpus(self.floor_worker)
        # Load both models (and import numpy, scikit-learn) before anything is measured, as the
        # daemon's workers did with POST /models.
        self.floor_seq("floor-trivial", 20, 1)
        self.floor_seq("floor-iris", 20, 1)

    def floor_seq(self, body, warmup, calls, timeout=300):
        proc, lines = self.floor
        def go():
            cmd = {"op": "seq", "body": self.bodies[body], "warmup": warmup, "calls": calls,
                   "deadline": timeout - 30}
            if self.cxx:
                cmd.update(op="cxx", client=self.cxx,
                           first_out=os.path.join(self.tmp, "first-reply.json"))
            proc.stdin.write(json.dumps(cmd) + "\n")
            proc.stdin.flush()
            return lines.get(timeout)
        return self.with_cpu([self.floor_worker], go)

    def stop_floor(self):
        if self.floor is None:
            return
        proc, lines = self.floor
        try:
            proc.stdin.write('{"op": "quit"}\n')
            proc.stdin.flush()
            lines.get(30)
        except (OSError, RuntimeError):
            pass
        stop_proc(proc)
        self.floor = None

    # --- the measurements ----------------------------------------------------------------------

    def run(self):
        a = self.a
        self.setup()
        self.phase("the shim's own work per call, in one process (no sockets, no threads)",
                   "in-process")
        iris = os.path.join(self.models, "iris.pkl")
        spec = {"trivial": [self.bodies["floor-trivial"], 2000, None],
                "iris": [self.bodies["floor-iris"], 1000, iris],
                "iris10k": [self.bodies["floor-iris10k"], 1, iris]}
        self.r["inproc"] = json.loads(h.run_in_env(
            self.env, f"import sys; sys.argv[1:] = {[json.dumps(spec)]!r}\n" + INPROC,
            timeout=300).splitlines()[-1])
        if self.a.wait_load:
            self.wait_quiet()
        self.start_floor()

        self.phase(f"(1) trivial model: REST, floor, then REST to the unmanaged worker, "
                   f"{a.calls} calls each", "(1)")
        self.r["trivial_rest"] = self.rest(K1, "trivial", warmup=a.warmup, calls=a.calls)
        self.r["trivial_floor"] = self.floor_seq("floor-trivial", a.warmup, a.calls)
        # A second pair, to see the spread on this machine.
        self.r["trivial_rest2"] = self.rest(K1, "trivial", warmup=a.warmup, calls=a.calls)
        self.r["trivial_floor2"] = self.floor_seq("floor-trivial", a.warmup, a.calls)
        self.r["trivial_remote"] = self.rest(KU, "trivial", warmup=a.warmup, calls=a.calls)

        self.phase(f"(2) iris: giskard-supervisor, 1 connection ({a.iris_calls} calls) and "
                   f"8 connections ({a.seconds:g} s)", "(2) giskard")
        iris = self.r["iris"] = []
        for label, kernel in (("giskard-supervisor, 1 worker", K1),
                              ("giskard-supervisor, 2 workers", K2),
                              (UNMANAGED_LABEL, KU)):
            one = self.rest(kernel, "iris", warmup=a.warmup, calls=a.iris_calls)
            eight = self.rest(kernel, "iris", mode="load", connections=8, seconds=a.seconds,
                              warmup_seconds=a.warmup_seconds)
            iris.append((label, one, eight))
        self.stop_unmanaged()
        self.r["iris_floor"] = self.floor_seq("floor-iris", a.warmup, a.iris_calls)
        for label, kind, workers in (("FastAPI + uvicorn, 1 worker", "fastapi", 1),
                                     ("FastAPI + uvicorn, 2 workers", "fastapi", 2),
                                     ("FastAPI + uvicorn, 2 workers, TCP_NODELAY patched in",
                                      "fastapi-nodelay", 2),
                                     ("Flask + gunicorn, 2 sync workers", "flask", 2),
                                     ("stdlib ThreadingHTTPServer", "stdlib", 1)):
            self.phase(f"(2) iris: {label}", f"(2) {kind} {workers}w")
            iris.append((label,) + self.peer(kind, workers))

        probe = subprocess.run([DEBIAN_PYTHON, "-c", "import importlib.util as u; print("
                                "'httptools' if u.find_spec('httptools') else 'h11', "
                                "'uvloop' if u.find_spec('uvloop') else 'asyncio')"],
                               capture_output=True, text=True, timeout=60)
        self.r["uvicorn_stack"] = probe.stdout.strip().replace(" ", " + ") or "?"
        self.phase(f"(3) 10,000 rows: REST then floor, median of {a.rows_calls}", "(3)")
        self.r["rows_rest"] = self.rest(K1, "iris10k", warmup=1, calls=a.rows_calls)
        self.r["rows_floor"] = self.floor_seq("floor-iris10k", 1, a.rows_calls)
        self.stop_floor()

        self.phase(f"(4) burst: {a.burst} calls at once to {K1} (1 worker, queue_size 100)",
                   "(4)")
        self.r["burst"] = self.rest(K1, "iris", mode="burst", connections=a.burst,
                                    deadline=a.burst_deadline, timeout=a.burst_deadline + 120)
        self.r["health_after_burst"] = self.daemon.get("/healthz").status
        self.r["loadavg_end"] = loadavg()

    def peer(self, kind, workers):
        port = h.free_port()
        ready_dir = tempfile.mkdtemp(prefix=f"ready-{kind}-", dir=self.tmp)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.tmp,
               "PYTHONPATH": self.site + ":/usr/lib/python3/dist-packages",
               "PYTHONDONTWRITEBYTECODE": "1", "MODEL_BENCH_PEER": kind,
               "MODEL_BENCH_MODEL": os.path.join(self.models, "iris.pkl"),
               "MODEL_BENCH_TOKEN": self.token, "MODEL_BENCH_READY_DIR": ready_dir}
        if kind == "fastapi-nodelay":
            kind = "fastapi"
            env["MODEL_BENCH_PEER"] = kind
            env["MODEL_BENCH_NODELAY"] = "1"
        if kind == "fastapi":
            cmd = [DEBIAN_PYTHON, "-m", "uvicorn", "model_bench_peers:fastapi_app", "--host",
                   "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level",
                   "warning", "--no-access-log"]
        elif kind == "flask":
            cmd = [DEBIAN_PYTHON, "-m", "gunicorn", "-w", str(workers), "-k", "sync", "-b",
                   f"127.0.0.1:{port}", "--log-level", "warning", "model_bench_peers:flask_app"]
        else:
            cmd = [DEBIAN_PYTHON, PEERS, "stdlib", "--port", str(port)]
        log = open(os.path.join(self.tmp, f"peer-{kind}-{workers}.log"), "w")
        proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        try:
            h.wait_for(f"{workers} {kind} peer process(es) with the model loaded",
                       lambda: proc.poll() is None and len(os.listdir(ready_dir)),
                       lambda n: n >= workers or n is False, PEER_TIMEOUT)
            h.wait_for(f"the {kind} peer to answer GET /healthz",
                       lambda: proc.poll() is not None or healthz(port), bool, PEER_TIMEOUT)
            if proc.poll() is not None:
                raise RuntimeError(f"peer {kind} exited with {proc.returncode}:\n"
                                   + open(log.name).read()[-3000:])
            path = "/api/v1/kernels/peer/predict"
            pids = [proc.pid] + descendants(proc.pid)
            placement = {p: allowed_cpus(p) for p in pids}
            one = self.with_cpu(pids, lambda: self.client(
                "seq", "iris", port=port, path=path, warmup=self.a.warmup,
                calls=self.a.iris_calls))
            eight = self.with_cpu(pids, lambda: self.client(
                "load", "iris", port=port, path=path, connections=8, seconds=self.a.seconds,
                warmup_seconds=self.a.warmup_seconds))
            one["placement"] = placement
            return one, eight
        finally:
            stop_proc(proc)
            log.close()

    def cleanup(self):
        self.stop_floor()
        try:
            self.stop_unmanaged()
        except Exception as e:  # the daemon gone: the worker was still stopped by its pid
            self.r["problems"].append(f"stopping the unmanaged worker: {e}")
        for p in self.procs:
            stop_proc(p)
        if self.daemon is not None and self.daemon.running():
            try:
                rc = self.daemon.stop()
                if rc != 0:
                    self.r["problems"].append(f"the daemon exited with {rc} on SIGTERM")
            except AssertionError as e:
                self.r["problems"].append(f"the daemon did not stop: {str(e)[-500:]}")
        if self.a.keep:
            note(f"# kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def healthz(port):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except OSError:
        return False


def stop_proc(proc):
    """SIGTERM to the process (and, for a peer, its own session: its workers), bounded, then
    SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # a session started here (peers): its leftovers
    except OSError:
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", default=os.path.join(ROOT, "build", "ci", "supervisor",
                                                    "giskard-supervisor"))
    p.add_argument("--build-type", default="")
    p.add_argument("--client", default=os.path.join(ROOT, "build", "ci", "tests", "bench",
                                                    "model_call_bench"),
                   help="model_call_bench (C++); without it the Python client is used")
    p.add_argument("--quick", action="store_true", help="fewer calls: a smoke test")
    p.add_argument("--calls", type=int, default=2000, help="(1): timed calls per path")
    p.add_argument("--iris-calls", type=int, default=1000, help="(2): calls on 1 connection")
    p.add_argument("--warmup", type=int, default=200, help="untimed calls before each series")
    p.add_argument("--seconds", type=float, default=4.0, help="(2): each 8-connection run")
    p.add_argument("--warmup-seconds", type=float, default=1.0)
    p.add_argument("--rows-calls", type=int, default=7, help="(3): 10,000-row calls per path")
    p.add_argument("--burst", type=int, default=1000, help="(4): calls sent at once")
    p.add_argument("--burst-deadline", type=float, default=90.0, help="(4): the bound (s)")
    p.add_argument("--wheels", default="", help="where the Debian wheels are built (cached)")
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument("--wait-load", type=float, default=0.0,
                   help="before measuring, wait until the 1-minute load average is under this")
    p.add_argument("--wait-load-seconds", type=float, default=900.0,
                   help="the longest --wait-load waits")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args()
    if args.quick:
        args.calls, args.iris_calls, args.warmup = 300, 200, 50
        args.seconds, args.warmup_seconds, args.rows_calls = 1.0, 0.5, 3
    if not os.access(args.binary, os.X_OK):
        p.error(f"no executable giskard-supervisor at {args.binary} (--binary PATH)")
    h.set_binary(args.binary)
    if not os.access(args.client, os.X_OK):
        note(f"# note: no model_call_bench at {args.client} (cmake --build BUILD --target "
             f"model_call_bench): the Python client is used, which adds tens of µs per call")
    args.optimization = optimization(args.binary)
    if args.optimization != "unknown" and "-O0" in args.optimization.split():
        note(f"# note: {args.binary} is an unoptimized build ({args.optimization}); numbers "
             f"from an optimized build (preset ci: -O2) are the ones to quote")
    bench = Bench(args)
    la = bench.r["loadavg_start"]
    note(f"# model call benchmark: load average at start {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}"
         f" on {os.cpu_count()} CPUs"
         + (f"; compilers running: {', '.join(sorted(set(bench.r['compilers_start'])))}"
            if bench.r["compilers_start"] else ""))
    t0 = time.monotonic()
    try:
        bench.run()
    finally:
        bench.cleanup()
    bench.r["wall_s"] = time.monotonic() - t0
    print_report(bench, args)


if __name__ == "__main__":
    main()
