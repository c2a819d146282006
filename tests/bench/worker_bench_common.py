"""Shared by worker_bench.py and supervisord_peer.py (the worker supervision benchmark): limits,
bounded waits, statistics, /proc readings (with tests/harness/processes.py), the request
sampler's client side (Sampler, Pinger), ExitWatcher, the load and the CPU of processes outside
the benchmark (OthersCpu, wait_quiet), and the floors without a supervisor."""

import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from harness import UnixHTTPConnection  # noqa: E402  (http.client over the admin socket)
from harness import processes as procfs  # noqa: E402  (/proc readings)

BUILD_DEADLINE = 300.0   # the env build (offline, shim wheel only) before any measurement
WAIT_ONE = 30.0          # one worker to run / to go
WAIT_MANY = 180.0        # 50 workers
WAIT_IDLE = 900.0        # the --idle workers, on a loaded 2-core machine
STOP_WAIT = 120.0
HTTP_TIMEOUT = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

IDLE_CODE = "import signal; signal.pause()"
SHIM_FLOOR_CODE = ("import giskard_worker_shim.managed, giskard_worker_shim.environment as e; "
                   "e.collect()")


# --- small helpers --------------------------------------------------------------------------------

def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def pct_ms(values, p):
    """The p-th percentile in ms of a list of seconds, formatted; "n/a" when empty."""
    values = [v for v in values if v is not None]
    return f"{percentile(values, p) * 1000:.1f}" if values else "n/a"


def stats_ms(values):
    """"median (p90)" in ms of a list of seconds; "n/a" when empty."""
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return f"{statistics.median(values) * 1000:.1f} ({percentile(values, 90) * 1000:.1f})"


def note(msg):
    print(msg, file=sys.stderr, flush=True)


def cwd_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def parse_rfc3339_ms(text):
    """"2023-11-14T22:13:20.123Z" -> Unix seconds (float)."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z", text)
    if not m:
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    import calendar
    secs = calendar.timegm(tuple(int(g) for g in m.groups()[:6]))
    frac = m.group(7) or "0"
    return secs + int(frac) / 10 ** len(frac)


def raise_nofile(want=16384):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def wait_until(predicate, timeout, interval, what):
    """Calls predicate() every `interval` s until it returns a true value (returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Pinger:
    """Calls `ping` (a health request on a new connection) every `interval` s in a thread and
    keeps the worst answer time: how responsive the supervisor stays while it is busy."""

    def __init__(self, ping, interval=0.1):
        self.ping = ping
        self.interval = interval
        self.latencies = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                self.ping()
            except Exception:  # noqa: BLE001  (counted; the benchmark goes on)
                self.errors += 1
            self.latencies.append(time.monotonic() - start)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(HTTP_TIMEOUT + 5)

    @property
    def worst(self):
        return max(self.latencies) if self.latencies else None


class Sampler:
    """One request every `interval` s on one kept-open connection, from its own process
    (worker_bench_sampler.py), while the block runs: the latencies of requests that a client
    sends while the supervisor is busy. `nice` is that process's os.nice() increment (negative
    only as root): the client's own wait for a CPU is then not counted as the server's."""

    def __init__(self, kind, where, what, interval=0.01, token=None, nice=-10):
        self.argv = [sys.executable, "-B", os.path.join(HERE, "worker_bench_sampler.py"),
                     "--interval", str(interval), "--nice", str(nice), kind, str(where), what]
        self.env = dict(os.environ, GSK_BENCH_TOKEN=token or "")
        self.proc = None
        self.latencies = []
        self.errors = 0
        self.first_error = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=self.env, cwd=HERE)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.proc.kill()
            self.proc.wait(30)
            raise RuntimeError(f"the request sampler did not start: {line!r}")
        return self

    def __exit__(self, *exc):
        import json
        try:
            out, _ = self.proc.communicate(timeout=HTTP_TIMEOUT + 10)
            doc = json.loads(out.decode().strip().splitlines()[-1])
            self.latencies = doc["latencies"]
            self.errors = doc["errors"]
            self.first_error = doc["first_error"]
        except (subprocess.TimeoutExpired, ValueError, IndexError, KeyError):
            self.proc.kill()
            self.proc.wait(30)
            self.errors = -1

    def summary(self):
        v = self.latencies
        if not v:
            return None
        return {"n": len(v), "p50": percentile(v, 50), "p99": percentile(v, 99), "max": max(v),
                "errors": self.errors, "first_error": self.first_error}


class ExitWatcher:
    """Reads /proc every `interval` s in a thread from start() until every pid of `pids` has
    exited (gone, or a zombie not reaped yet); `done_at` is then the monotonic time of the read
    that saw it (None if `timeout` passed first). Asks the supervisor nothing."""

    def __init__(self, pids, interval=0.005, timeout=STOP_WAIT):
        self.pids = list(pids)
        self.interval = interval
        self.timeout = timeout
        self.done_at = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        left = list(self.pids)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            left = [p for p in left if procfs.state(p) not in (None, "Z")]
            if not left:
                self.done_at = time.monotonic()
                return
            time.sleep(self.interval)

    def start(self):
        self._thread.start()
        return self

    def join(self):
        self._thread.join(self.timeout + 5)
        return self.done_at


def cpu_ns(pid, field=0):
    """CPU time of the live threads of `pid` in seconds, from /proc/PID/task/*/schedstat
    (nanoseconds, where utime+stime counts 10 ms ticks); None when it is gone. field=1: the
    time they spent runnable but waiting for a CPU (on a run queue) instead."""
    total, seen = 0, False
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[field])
                seen = True
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9 if seen else None


def minflt(pid):
    """Minor page faults of the process since it started (or was forked), or None."""
    fields = procfs.stat_fields(pid)
    return int(fields[7]) if fields else None


def fleet_cost(pids):
    """{"cpu": [s per process], "minflt": [per process]} of the live ones of `pids`."""
    cpu = [cpu_ns(p) for p in pids]
    flt = [minflt(p) for p in pids]
    return {"cpu": [c for c in cpu if c is not None], "minflt": [f for f in flt if f is not None]}


def page_fault_us(mib=32):
    """What one page fault costs on this machine (a first write to each page of a fresh
    mapping), in microseconds: it prices every interpreter start and every copy-on-write page
    of a forked worker."""
    import mmap
    size = mib << 20
    best = None
    for _ in range(3):
        m = mmap.mmap(-1, size)
        start = time.perf_counter()
        for off in range(0, size, PAGE):
            m[off] = 1
        took = time.perf_counter() - start
        m.close()
        best = took if best is None else min(best, took)
    return best * 1e6 / (size // PAGE)


def rss_split(pid):
    """(RssAnon, RssFile) of the process in KiB: its own memory, and the pages of its binary
    and shared libraries (shared with every other process that maps them); None if gone."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssFile:")):
                    found[line.split(":")[0]] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return found.get("RssAnon"), found.get("RssFile")


def pss_kib(pid):
    """Proportional set size (shared pages divided among their sharers) in KiB, or None."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def compilers_running():
    """Names of compiler processes running now (another build loads the machine)."""
    names = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm in ("cc1plus", "cc1", "clang", "clang++", "ld", "ld.gold", "lld", "ninja",
                        "ccache"):
                names.append(comm)
    return sorted(set(names))


def _cpu_by_pid():
    """{pid: (ppid, utime+stime ticks, comm)} of every process now."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2:].split()
        out[int(name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), comm)
    return out


class OthersCpu:
    """The CPU that processes outside this benchmark's process tree used between two calls of
    mark(): another engineer's build or tests, which make every number here noisy. Processes
    that start and end between two marks are not seen (an undercount)."""

    def __init__(self):
        self.me = os.getpid()
        self.last = (time.monotonic(), _cpu_by_pid())

    def _ours(self, pid, procs):
        for _ in range(64):
            if pid == self.me:
                return True
            if pid not in procs or pid <= 1:
                return False
            pid = procs[pid][0]
        return False

    def mark(self):
        """(seconds since the last mark, CPU seconds used by others meanwhile, the top three
        of them as "comm s")."""
        t0, before = self.last
        now, procs = time.monotonic(), _cpu_by_pid()
        self.last = (now, procs)
        used = {}
        for pid, (_, ticks, comm) in procs.items():
            if pid in before and not self._ours(pid, procs) and before[pid][2] == comm:
                d = ticks - before[pid][1]
                if d > 0:
                    used[comm] = used.get(comm, 0) + d
        top = sorted(used.items(), key=lambda kv: -kv[1])[:3]
        return (now - t0, sum(used.values()) / CLK_TCK,
                [f"{c} {t / CLK_TCK:.1f} s" for c, t in top])


def wait_quiet(limit, seconds):
    """Waits (at most `seconds`) until the 1-minute load average is under `limit` (0: no wait).
    Returns (load average then, whether it was reached, seconds waited)."""
    start = time.monotonic()
    la = os.getloadavg()[0]
    if limit <= 0:
        return la, True, 0.0
    if la >= limit:
        note(f"# waiting up to {seconds:.0f} s for the load average ({la:.2f}) to fall under "
             f"{limit:g}")
    while la >= limit and time.monotonic() - start < seconds:
        time.sleep(5)
        la = os.getloadavg()[0]
    return la, la < limit, time.monotonic() - start


def run_floor(python, code, runs):
    """Wall time of `python -c code` (subprocess spawn included), `runs` times."""
    out = []
    for _ in range(runs + 1):
        start = time.monotonic()
        subprocess.run([python, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        out.append(time.monotonic() - start)
    return out[1:]  # the first one warms the page cache


def poll_interval(observed, fast):
    return fast if observed else 0.25


def measure_window(pid, worker_pids, window):
    """Supervisor CPU and RSS, and the workers' total CPU, over `window` seconds of silence."""
    c0 = procfs.cpu_ticks(pid)
    w0 = {p: procfs.cpu_ticks(p) for p in worker_pids}
    t0 = time.monotonic()
    time.sleep(window)
    c1 = procfs.cpu_ticks(pid)
    w1 = {p: procfs.cpu_ticks(p) for p in worker_pids}
    elapsed = time.monotonic() - t0
    wcpu = sum(w1[p] - w0[p] for p in worker_pids if w0[p] is not None and w1[p] is not None)
    return {"rss": procfs.rss_kib(pid), "cpu_s": (c1 - c0) / CLK_TCK, "elapsed": elapsed,
            "workers_cpu_s": wcpu / CLK_TCK, "workers": len(worker_pids)}
