"""Shared by model_bench.py and model_bench_report.py: the scripts run by the kernel env's
python (training the models, the shim's own work measured in one process), and /proc readings
(CPU time, placement, children), the load average and the binary's optimization level."""

import os
import platform
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from harness import processes as procfs  # noqa: E402  (/proc readings)


# Run by the kernel env's python: trains the iris model, writes the trivial model (a folder with
# giskard-model.json, so that its class imports from the model's own code), prints the rows and
# what the models answer on the X the shim builds (numpy.asarray(rows): no pandas in the env).
TRAIN = r'''
import json, os, pickle, sys
import numpy as np, scipy, sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
models = sys.argv[1]
X, y = load_iris(return_X_y=True)
iris = LogisticRegression(max_iter=1000).fit(X, y)
with open(os.path.join(models, "iris.pkl"), "wb") as f:
    pickle.dump(iris, f)
d = os.path.join(models, "trivial")
os.makedirs(os.path.join(d, "src"), exist_ok=True)
with open(os.path.join(d, "src", "bench_trivial.py"), "w") as f:
    f.write("class Trivial:\n    def predict(self, X):\n        return [0] * len(X)\n")
sys.path.insert(0, os.path.join(d, "src"))
import bench_trivial
with open(os.path.join(d, "model.pkl"), "wb") as f:
    pickle.dump(bench_trivial.Trivial(), f)
with open(os.path.join(d, "giskard-model.json"), "w") as f:
    json.dump({"artifact": "model.pkl", "code": ["src"]}, f)
rows10 = X[::15].tolist()
rows10k = [X[i % 150].tolist() for i in range(10000)]
X10, X10k = np.asarray(rows10), np.asarray(rows10k)
print(json.dumps({
    "versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                 "sklearn": sklearn.__version__},
    "python": sys.version.split()[0], "base": os.path.realpath(sys._base_executable),
    "rows10": rows10, "rows10k": rows10k,
    "iris10": {"predictions": iris.predict(X10).tolist(),
               "probabilities": iris.predict_proba(X10).tolist(),
               "classes": iris.classes_.tolist()},
    "iris10k": {"predictions": iris.predict(X10k).tolist(),
                "probabilities_head": iris.predict_proba(X10k)[:5].tolist()}}))
'''

# Run by the kernel env's python: the worker shim's own work for one call, without sockets or
# threads (decode the request frame, the predict handler, encode the reply frame), and the iris
# model's alone (asarray, predict, predict_proba, tolist): medians (see per_call).
INPROC = r'''
import gc, json, pickle, sys, time
import numpy as np
from giskard_worker_shim.dispatch import default_dispatcher
from giskard_worker_shim.protocol import decode_json, encode_frame, reply_result
spec = json.loads(sys.argv[1])
predict = default_dispatcher().lookup("predict")
clock = time.perf_counter_ns

def per_call(fn, n):
    """Median of 5 runs of n calls (n > 1); for one call at a time (big inputs), median of 7
    single calls, each after a collection, so that none pays for the garbage of the one before
    (as a worker's call does not: it waits for the next request)."""
    fn()
    runs = []
    for _ in range(5 if n > 1 else 7):
        if n == 1:
            gc.collect()
        t0 = clock()
        for _ in range(n):
            fn()
        runs.append((clock() - t0) / n / 1000.0)
    return sorted(runs)[len(runs) // 2]

out = {}
for name, (path, n, model_file) in spec.items():
    raw = open(path, "rb").read()
    payload = b'{"type":"request","id":"x","method":"predict","params":' + raw + b"}"
    params = json.loads(raw)
    def shim_call():
        msg = decode_json(payload)
        encode_frame(reply_result(msg["id"], predict(msg["params"])))
    result = predict(params)
    r = {"shim_us": per_call(shim_call, n), "handler_us": per_call(lambda: predict(params), n),
         "decode_us": per_call(lambda: decode_json(payload), n),
         "encode_us": per_call(lambda: encode_frame(reply_result("x", result)), n)}
    if model_file:
        with open(model_file, "rb") as f:
            model = pickle.load(f)
        rows = params["rows"]
        def model_call():
            X = np.asarray(rows)
            model.predict(X).tolist()
            model.predict_proba(X).tolist()
        r["model_us"] = per_call(model_call, n)
    out[name] = r
print(json.dumps(out))
'''


def note(msg):
    print(msg, file=sys.stderr, flush=True)


def loadavg():
    return os.getloadavg()


def compilers_running():
    """Names of compiler processes running now (another engineer's build loads the machine)."""
    names = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm in ("cc1plus", "cc1", "clang", "clang++", "ld", "ld.gold", "lld", "ninja"):
                names.append(comm)
    return names


def cpu_ns(pid):
    """(CPU time of the live threads of `pid` in ns from /proc/PID/task/*/schedstat: precise;
    utime+stime of the whole process in ns from /proc/PID/stat: clock ticks, but it keeps the
    time of threads that have exited), or None."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    total = 0
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    ticks = procfs.cpu_ticks(pid)
    return total, (ticks or 0) * 1e9 / procfs.CLK_TCK


def cpu_delta_ms(before, after):
    """The precise delta, unless threads that ran in between have exited (a thread per
    connection): then the process total, in clock ticks."""
    precise = (after[0] - before[0]) / 1e6
    coarse = (after[1] - before[1]) / 1e6
    tick_ms = 1000.0 / procfs.CLK_TCK
    return coarse if coarse > precise + 2 * tick_ms else precise


def descendants(root):
    children = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            fields = procfs.stat_fields(int(pid))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(pid))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def unpin(pids):
    """Every thread of these processes may run on every CPU again (they inherited the daemon's
    taskset); returns {pid: Cpus_allowed_list} read back."""
    every = set(range(os.cpu_count() or 1))
    seen = {}
    for pid in pids:
        try:
            for t in os.listdir(f"/proc/{pid}/task"):
                try:
                    os.sched_setaffinity(int(t), every)
                except OSError:
                    pass
            seen[pid] = allowed_cpus(pid)
        except OSError:
            pass
    return seen


def allowed_cpus(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def optimization(binary):
    """The -O flags the binary's compile units were built with (DWARF DW_AT_producer), e.g.
    "-O2", or "-O0" when none says (GCC's default); "unknown" without readelf or debug info."""
    if not shutil.which("readelf"):
        return "unknown"
    try:
        p = subprocess.run(["readelf", "--debug-dump=info", "--dwarf-depth=1", binary],
                           capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    flags = set()
    units = 0
    for line in p.stdout.splitlines():
        if "DW_AT_producer" in line:
            units += 1
            opts = [w for w in line.split() if w.startswith("-O")]
            flags.add(opts[-1] if opts else "-O0")
    return " ".join(sorted(flags)) if units else "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
