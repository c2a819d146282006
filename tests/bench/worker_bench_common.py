"""Shared by worker_bench.py and supervisord_peer.py: limits, bounded waits, statistics and
/proc readings (tests/harness/processes.py) for the worker supervision benchmark."""

import http.client
import os
import re
import resource
import signal
import socket
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
