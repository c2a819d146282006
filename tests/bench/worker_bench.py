#!/usr/bin/env python3
"""Worker supervision benchmark: giskard-supervisor against supervisord (Debian's 4.2.5).

Not a test: prints Markdown tables. Run it with run_worker_bench.sh BUILD_DIR. In one run, for
both supervisors:

  (a) start -> running, 1 worker: giskard: POST /api/v1/kernels/K/start on a stopped kernel
      until GET /api/v1/workers?kernel=K shows it "running" (polled every 2 ms); supervisord:
      XML-RPC supervisor.startProcess(name, wait=True) over its Unix socket;
  (b) the same with 50 workers (a kernel with workers=50; a program with numprocs=50), polled
      every 10 ms (a 50-worker answer is large: polling faster loads the daemon under test);
  (c) crash -> replacement running: kill -9 of the worker's pid until the same worker (giskard:
      same id; supervisord: same process name) runs again with another pid (polled, 2 ms);
  (d) the supervisor's own RSS (VmRSS) and CPU (utime+stime over --window s) with --idle idle
      workers, plus the workers' CPU over the same window, the time to start them all and the
      time to stop them all.

Each latency is taken two ways, --runs times each: "observed" (the client polls or waits as
above, which keeps the supervisor busy answering it; supervisord's main loop also wakes on each
request) and "unobserved" (the client sends the command or kill -9, then only looks at the
supervisor's own clock: giskard's worker.* events, which have millisecond times; supervisord's
log lines "spawned:" / "success: ... entered RUNNING state", also in milliseconds; giskard is
asked every 250 ms, supervisord's log file is read every 100 ms, it is not asked anything).
One untimed warm-up of each first; medians and p90.

The programs differ, which the report says: giskard-supervisor runs its worker shim
(`python -m giskard_worker_shim serve-managed`: imports the shim, collects its environment,
dials the supervisor's socket and registers; "running" means registered), supervisord runs the
same venv's python idle (`python -c "import signal; signal.pause()"`, startsecs=0: "running"
means spawned and seen by the next turn of its main loop). The floor for the first, the
interpreter start-up and the shim's own work, is measured too (no supervisor involved).

--only supervisord runs the supervisord half alone (no giskard-supervisor binary needed; the
idle program then runs under --python, default this interpreter).

Standard library only. Every wait is bounded; every process started here is stopped by its pid;
temporary directories are removed (unless --keep).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from worker_bench_common import (
    BUILD_DEADLINE,
    cwd_of,
    HTTP_TIMEOUT,
    measure_window,
    note,
    parse_rfc3339_ms,
    Pinger,
    poll_interval,
    procfs,
    raise_nofile,
    run_floor,
    SHIM_FLOOR_CODE,
    stats_ms,
    STOP_WAIT,
    WAIT_IDLE,
    WAIT_MANY,
    WAIT_ONE,
    wait_until)
from supervisord_peer import Supervisord


# --- giskard-supervisor ---------------------------------------------------------------------------

class KeepAlive:
    """REST client on one kept-open TCP connection (reopened when the server closed it)."""

    def __init__(self, port, token):
        self.port = port
        self.token = token
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, method, path, body=None, expect=(200,)):
        headers = {"Authorization": "Bearer " + self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=HTTP_TIMEOUT)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
                continue
            if (resp.getheader("Connection") or "").lower() == "close":
                self.close()
            try:
                doc = json.loads(raw) if raw else None
            except ValueError:
                doc = None
            if resp.status not in expect:
                raise RuntimeError(f"{method} {path} -> {resp.status}: {raw[:500]!r}")
            return doc
        raise AssertionError("unreachable")


class Giskard:
    NAME = "giskard-supervisor"

    def __init__(self, args, tmp):
        import harness as h  # noqa: PLC0415  (only the giskard half needs the harness)
        self.h = h
        self.args = args
        self.state = os.path.join(tmp, "giskard-state")
        os.makedirs(self.state)
        self.config = (
            "[packages]\noffline = true\n"
            "[builds]\nmax_concurrent = 1\n"
            f"[limits]\nmax_workers_per_kernel = {max(256, args.idle)}\n"
            "[workers]\n"
            # An exit after 1 s of running is a plain exit (immediate restart, like supervisord's
            # autorestart with startsecs=0), not an early one (backoff): the crash case kills
            # workers that have run for longer than that.
            f"start_seconds = {args.start_seconds}\n"
            # --idle shims registering at once on a loaded 2-core machine can need more than the
            # default 30 s; the report counts any that did not make it anyway.
            f"registration_timeout_seconds = {args.registration_timeout}\n")
        self.daemon = h.Daemon(self.state, self.config, binary=args.binary)
        self.api = None
        self.py = None
        self.venv_python = None
        self.event_cursor = 0
        self.pids = set()      # every worker pid seen, to check none is left at the end
        self.problems = []     # daemon misbehaviour seen, for the report
        self.first_last = (None, None)  # set by launch_to_running()

    # lifecycle

    def start(self):
        self.daemon.start()
        self.api = KeepAlive(self.daemon.port, self.daemon.token)
        minors = self.h.usable_minors(self.daemon)
        self.py = "%d.%d" % sys.version_info[:2]
        if self.py not in minors:
            self.py = self.h.preferred_minor(minors)
            if self.py is None:
                raise RuntimeError("the daemon found no usable Python interpreter")
        self.event_cursor = self.last_event_id()

    @property
    def pid(self):
        return self.daemon.pid

    def close(self):
        if self.api is not None:
            self.api.close()
        try:
            if self.daemon.running():
                rc = self.daemon.stop(timeout=STOP_WAIT)
                if rc != 0:
                    self.problems.append(f"the daemon exited with {rc} on SIGTERM")
        except AssertionError as e:
            self.problems.append(f"the daemon did not stop on SIGTERM within {STOP_WAIT:.0f} s")
            note(str(e)[-2000:])
            self.daemon.kill()
        left = [p for p in sorted(self.pids)
                if procfs.state(p) not in (None, "Z") and cwd_of(p).startswith(self.state)]
        if left:
            self.problems.append(f"{len(left)} worker(s) still ran after the daemon exited on "
                                 f"SIGTERM (pids {left[:5]}...); killed here")
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass

    def log_tail(self):
        return self.daemon.log(60)

    # REST

    def kernel_doc(self, name, workers):
        doc = self.h.kernel_doc(name, self.py, [])
        doc["workers"] = workers
        return doc

    def workers(self, kernel):
        doc = self.api.call("GET", f"/api/v1/workers?kernel={kernel}")
        ws = doc["workers"]
        for w in ws:
            if w.get("pid"):
                self.pids.add(w["pid"])
        return ws

    def worker(self, wid):
        w = self.api.call("GET", f"/api/v1/workers/{wid}")
        if w.get("pid"):
            self.pids.add(w["pid"])
        return w

    def running(self, kernel, n):
        ws = self.workers(kernel)
        up = [w for w in ws if w["state"] == "running"]
        return ws if len(up) >= n else None

    def last_event_id(self):
        last = self.event_cursor
        for _ in range(10000):
            evs = self.api.call("GET", f"/api/v1/events?after={last}&limit=1000")["events"]
            if not evs:
                break
            last = evs[-1]["id"]
            if len(evs) < 1000:
                break
        self.event_cursor = last
        return last

    def events_since(self, after):
        out, last = [], after
        for _ in range(10000):
            evs = self.api.call("GET", f"/api/v1/events?after={last}&limit=1000")["events"]
            out.extend(evs)
            if not evs or len(evs) < 1000:
                break
            last = evs[-1]["id"]
        if out:
            self.event_cursor = max(self.event_cursor, out[-1]["id"])
        return out

    def wait_no_workers(self, kernel, timeout, poll=0.02):
        wait_until(lambda: not self.workers(kernel), timeout, poll,
                   f"kernel {kernel}'s workers to be removed after stop")

    def create(self, name, workers, timeout, poll=0.01):
        """Creates a kernel (its env builds the first time, then is cached) and waits until its
        `workers` workers run; returns the seconds that took."""
        start = time.monotonic()
        self.api.call("POST", "/api/v1/kernels", self.kernel_doc(name, workers), expect=(201,))

        def ready():
            k = self.api.call("GET", f"/api/v1/kernels/{name}")
            if k["status"] == "failed":
                raise RuntimeError(f"env build of {name} failed: {k.get('lastError')}")
            return k["status"] == "ready"
        wait_until(ready, BUILD_DEADLINE, 0.02, f"kernel {name}'s env to be ready")
        wait_until(lambda: self.running(name, workers), timeout, poll,
                   f"{workers} running workers of kernel {name}")
        took = time.monotonic() - start
        if self.venv_python is None:
            w = self.worker(self.workers(name)[0]["id"])
            self.venv_python = (w.get("environment") or {}).get("pythonExecutable")
        return took

    def stop_kernel(self, name, timeout, poll=0.02):
        start = time.monotonic()
        k = self.api.call("POST", f"/api/v1/kernels/{name}/stop")
        if k.get("started") is not False:
            self.problems.append(f"POST /kernels/{name}/stop answered started="
                                 f"{k.get('started')!r}, not false")
        self.wait_no_workers(name, timeout, poll)
        return time.monotonic() - start

    # measurements

    def start_latency(self, kernel, n, observed, poll):
        """One start of a stopped kernel with n workers: (client s, own-clock s, launched s):
        launched = until the last worker.starting event (all processes launched)."""
        after = self.last_event_id()
        t_wall = time.time()
        t0 = time.monotonic()
        self.api.call("POST", f"/api/v1/kernels/{kernel}/start")
        if observed:
            wait_until(lambda: self.running(kernel, n), WAIT_MANY, poll,
                       f"{n} running workers of {kernel}")
            client = time.monotonic() - t0
        else:
            wait_until(lambda: self.running(kernel, n), WAIT_MANY, 0.25,
                       f"{n} running workers of {kernel}")
            client = None
        allevs = self.events_since(after)
        evs = [e for e in allevs if e["kind"] == "worker.running"]
        launches = [parse_rfc3339_ms(e["time"]) for e in allevs if e["kind"] == "worker.starting"]
        own = None
        if len(evs) >= n:
            own = max(parse_rfc3339_ms(e["time"]) for e in evs) - t_wall
        else:
            self.problems.append(f"start of {kernel}: {len(evs)} worker.running events for "
                                 f"{n} running workers")
        launched = max(launches) - t_wall if len(launches) >= n else None
        return client, own, launched

    def launch_to_running(self, after):
        """(worker.starting -> worker.running) of every worker since event `after`; also sets
        first_last = (time of the last worker.starting, time of the first worker.running)."""
        evs = self.events_since(after)
        starts = [parse_rfc3339_ms(e["time"]) for e in evs if e["kind"] == "worker.starting"]
        runs = [parse_rfc3339_ms(e["time"]) for e in evs if e["kind"] == "worker.running"]
        self.first_last = (max(starts) if starts else None, min(runs) if runs else None)
        first, out = {}, []
        for e in evs:
            if e["kind"] == "worker.starting":
                first.setdefault(e["subject"], parse_rfc3339_ms(e["time"]))
            elif e["kind"] == "worker.running" and e["subject"] in first:
                out.append(parse_rfc3339_ms(e["time"]) - first.pop(e["subject"]))
        return out

    def crash_latency(self, kernel, observed):
        """kill -9 of the (only) worker of a running kernel: (client s, own-clock s, detect s,
        launched s): detect = until worker.exited, launched = until the next worker.starting."""
        ws = wait_until(lambda: self.running(kernel, 1), WAIT_ONE, 0.01, f"{kernel} running")
        w = ws[0]
        # Past start_seconds, so that the exit is a plain one, not an early one.
        time.sleep(max(0.0, self.args.start_seconds + 0.3 - float(w.get("uptimeSeconds") or 0)))
        wid, old = w["id"], w["pid"]
        after = self.last_event_id()
        t_wall = time.time()
        t0 = time.monotonic()
        os.kill(old, signal.SIGKILL)

        def replaced():
            x = self.worker(wid)
            return x if x["state"] == "running" and x["pid"] not in (0, old) else None
        x = wait_until(replaced, WAIT_ONE, poll_interval(observed, 0.002),
                       f"worker {wid} to run again after kill -9")
        client = time.monotonic() - t0 if observed else None
        evs = [e for e in self.events_since(after) if e["subject"] == f"worker/{wid}"]
        run = [parse_rfc3339_ms(e["time"]) for e in evs if e["kind"] == "worker.running"]
        gone = [parse_rfc3339_ms(e["time"]) for e in evs if e["kind"] == "worker.exited"]
        launch = [parse_rfc3339_ms(e["time"]) for e in evs if e["kind"] == "worker.starting"]
        kinds = [e["kind"] for e in evs]
        if "worker.backoff" in kinds:
            self.problems.append(f"kill -9 after {self.args.start_seconds + 0.3:.1f} s of running "
                                 f"(start_seconds={self.args.start_seconds}) went to backoff: "
                                 f"{kinds}")
        own = run[-1] - t_wall if run else None
        detect = gone[0] - t_wall if gone else None
        launched = launch[0] - t_wall if launch else None
        if procfs.state(old) == "Z":
            time.sleep(0.5)
            if procfs.state(old) == "Z":
                self.problems.append(f"killed worker pid {old} still a zombie 0.5 s after its "
                                     "replacement ran (not reaped)")
        if x.get("restarts", 0) < 1:
            self.problems.append(f"worker {wid} restarted after kill -9 but restarts="
                                 f"{x.get('restarts')}")
        return client, own, detect, launched

    def healthz(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=HTTP_TIMEOUT)
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"/healthz -> {resp.status}")
        finally:
            conn.close()

    def idle(self, n, window, settle):
        res = {"rss0": procfs.rss_kib(self.pid)}
        after = self.last_event_id()
        t_wall = time.time()
        with Pinger(self.healthz) as ping:
            res["start_all"] = self.create("idle", n, WAIT_IDLE, poll=0.1)
        res["ping_worst"] = ping.worst
        res["launch_to_running"] = self.launch_to_running(after)
        res["last_launch"], res["first_running"] = self.first_last
        # A burst that takes over a second to launch with no registration served meanwhile means
        # the launches block the event loop; a short burst finishes before any shim is up anyway.
        if res["first_running"] is not None and res["last_launch"] is not None \
                and res["last_launch"] - t_wall > 1.0 \
                and res["first_running"] >= res["last_launch"]:
            self.problems.append(
                f"starting {n} workers: no worker was registered before the last one was "
                f"launched (last worker.starting +{res['last_launch'] - t_wall:.2f} s, first "
                f"worker.running +{res['first_running'] - t_wall:.2f} s); /healthz took up to "
                f"{(ping.worst or 0) * 1000:.0f} ms meanwhile: the launches block the event loop")
        for k in ("last_launch", "first_running"):
            if res[k] is not None:
                res[k] -= t_wall
        time.sleep(settle)
        ws = self.workers("idle")
        pids = [w["pid"] for w in ws if w["state"] == "running"]
        bad = [w for w in ws if w.get("restarts") or w.get("quickFailures")]
        if bad:
            self.problems.append(f"{len(bad)} of {n} idle workers restarted while starting "
                                 f"(first: {bad[0]['id']} {bad[0].get('lastError')!r})")
        res.update(measure_window(self.pid, pids, window))
        res["stop_all"] = self.stop_kernel("idle", STOP_WAIT, poll=0.1)
        return res


# --- the run --------------------------------------------------------------------------------------

def measure(sups, args):
    """Runs every case on every supervisor (interleaved run by run); returns results[name]."""
    R = {s.NAME: {"start1": ([], [], []), "start1q": ([], [], []), "startN": ([], [], []),
                  "startNq": ([], [], []), "crash": ([], [], [], []),
                  "crashq": ([], [], [], []),
                  "launch1": []} for s in sups}

    def both(fn, label):
        for s in sups:
            try:
                fn(s)
            except Exception:
                note(f"--- {s.NAME} failed in {label}; its log:\n{s.log_tail()}")
                raise

    # warm-up (untimed): one start and stop of each size
    def warm(s):
        if isinstance(s, Giskard):
            s.start_latency("one", 1, True, 0.01)
            s.stop_kernel("one", WAIT_ONE)
            s.start_latency("many", args.many, True, 0.01)
            s.stop_kernel("many", WAIT_MANY)
        else:
            s.start_latency("one", 1, True, 0.01)
            s.stop_group("one", WAIT_ONE)
            s.start_latency("many", args.many, True, 0.01)
            s.stop_group("many", WAIT_MANY)
    both(warm, "warm-up")

    def stop(s, group, timeout):
        if isinstance(s, Giskard):
            s.stop_kernel(group, timeout)
        else:
            s.stop_group(group, timeout)

    for i in range(args.runs):
        for observed, key in ((True, "start1"), (False, "start1q")):
            def one(s):
                after = s.last_event_id() if isinstance(s, Giskard) else None
                for lst, v in zip(R[s.NAME][key], s.start_latency("one", 1, observed, 0.002)):
                    lst.append(v)
                if after is not None:
                    R[s.NAME]["launch1"].extend(s.launch_to_running(after))
                stop(s, "one", WAIT_ONE)
            both(one, key)
        note(f"  run {i + 1}/{args.runs} start 1: " + "; ".join(
            f"{s.NAME} observed {R[s.NAME]['start1'][0][-1] * 1000:.1f} ms / own clock "
            f"{fmt_ms(R[s.NAME]['start1'][1][-1])}, unobserved {fmt_ms(R[s.NAME]['start1q'][1][-1])}"
            for s in sups))

    for i in range(args.runs):
        for observed, key in ((True, "startN"), (False, "startNq")):
            def many(s):
                for lst, v in zip(R[s.NAME][key],
                                  s.start_latency("many", args.many, observed, 0.01)):
                    lst.append(v)
                stop(s, "many", WAIT_MANY)
            both(many, key)
        note(f"  run {i + 1}/{args.runs} start {args.many}: " + "; ".join(
            f"{s.NAME} observed {R[s.NAME]['startN'][0][-1] * 1000:.1f} ms, unobserved "
            f"{fmt_ms(R[s.NAME]['startNq'][1][-1])}" for s in sups))

    def crash_setup(s):
        s.start_latency("one", 1, True, 0.01)
    both(crash_setup, "crash set-up")
    for i in range(args.runs):
        for observed, key in ((True, "crash"), (False, "crashq")):
            def crash(s):
                for lst, v in zip(R[s.NAME][key], s.crash_latency("one", observed)):
                    lst.append(v)
            both(crash, key)
        note(f"  run {i + 1}/{args.runs} crash: " + "; ".join(
            f"{s.NAME} observed {fmt_ms(R[s.NAME]['crash'][0][-1])}, unobserved "
            f"{fmt_ms(R[s.NAME]['crashq'][1][-1])}" for s in sups))
    both(lambda s: stop(s, "one", WAIT_ONE), "crash clean-up")

    for s in sups:  # one after the other: never both sets of idle workers at once
        note(f"  {s.NAME}: starting {args.idle} idle workers...")
        try:
            R[s.NAME]["idle"] = s.idle(args.idle, args.window, args.settle)
        except Exception:
            note(f"--- {s.NAME} failed with {args.idle} idle workers; its log:\n{s.log_tail()}")
            raise
        r = R[s.NAME]["idle"]
        note(f"  {s.NAME}: {r['workers']} idle, RSS {r['rss'] / 1024:.1f} MiB, CPU "
             f"{r['cpu_s'] * 1000:.0f} ms in {r['elapsed']:.1f} s")
    return R


def fmt_ms(v):
    return "n/a" if v is None else f"{v * 1000:.1f} ms"


def report(sups, R, args, floors, load_before, machine):
    names = [s.NAME for s in sups]
    cols = {"giskard-supervisor": "giskard-supervisor", "supervisord": "supervisord " +
            next((s.version for s in sups if isinstance(s, Supervisord)), "")}
    lines = []
    p = lines.append
    p(f"## Worker supervision: giskard-supervisor vs supervisord ({time.strftime('%Y-%m-%d %H:%M')})")
    p("")
    for m in machine:
        p(f"- {m}")
    p(f"- load average (1/5/15 min) before: {' / '.join(f'{x:.2f}' for x in load_before)}; "
      f"after: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    p(f"- {args.runs} runs of each latency after an untimed warm-up; cells are median (p90) in ms")
    p("")
    p("| measurement | " + " | ".join(cols[n] for n in names) + " |")
    p("|---|" + "---:|" * len(names))

    def row(title, fn):
        cells = []
        for n in names:
            try:
                cells.append(fn(R[n]))
            except (KeyError, IndexError, TypeError, ValueError, statistics.StatisticsError):
                cells.append("n/a")
        p(f"| {title} | " + " | ".join(cells) + " |")

    row("start -> running, 1 worker, observed (giskard: POST start, GET every 2 ms; "
        "supervisord: startProcess wait=True)", lambda r: stats_ms(r["start1"][0]))
    row("same runs, by the supervisor's own clock (command sent -> worker.running event / "
        "`success:` log line)", lambda r: stats_ms(r["start1"][1]))
    row("start -> running, 1 worker, unobserved (own clock; nobody polling)",
        lambda r: stats_ms(r["start1q"][1]))
    row("of which: command -> process launched (worker.starting event / `spawned:` line), "
        "unobserved", lambda r: stats_ms(r["start1q"][2]))
    row(f"start -> all running, {args.many} workers, observed (GET every 10 ms / "
        "startProcessGroup wait=True)", lambda r: stats_ms(r["startN"][0]))
    row(f"start -> all running, {args.many} workers, unobserved (own clock: last worker)",
        lambda r: stats_ms(r["startNq"][1]))
    row(f"of which: command -> all {args.many} launched, unobserved",
        lambda r: stats_ms(r["startNq"][2]))
    row("kill -9 -> replacement running, observed (poll every 2 ms)",
        lambda r: stats_ms(r["crash"][0]))
    row("kill -9 -> replacement running, unobserved (own clock)",
        lambda r: stats_ms(r["crashq"][1]))
    row("of which: kill -9 -> exit noticed (worker.exited event / `exited:` line), unobserved",
        lambda r: stats_ms(r["crashq"][2]))
    row("of which: kill -9 -> replacement launched (worker.starting / `spawned:`), unobserved",
        lambda r: stats_ms(r["crashq"][3]))
    row(f"supervisor RSS, 0 workers (MiB)", lambda r: f"{r['idle']['rss0'] / 1024:.1f}")
    row(f"supervisor RSS, {args.idle} idle workers (MiB)",
        lambda r: f"{r['idle']['rss'] / 1024:.1f}")
    row(f"supervisor CPU, {args.idle} idle workers, over {args.window:.0f} s (ms; % of one core)",
        lambda r: f"{r['idle']['cpu_s'] * 1000:.0f} ({100 * r['idle']['cpu_s'] / r['idle']['elapsed']:.2f} %)")
    row(f"all {args.idle} workers' CPU over the same window (ms)",
        lambda r: f"{r['idle']['workers_cpu_s'] * 1000:.0f}")
    row(f"start {args.idle} workers -> all running (s; giskard: POST /kernels with "
        f"workers={args.idle})", lambda r: f"{r['idle']['start_all']:.2f}")
    row(f"launch -> running per worker during that start (own clock, median (p90) ms)",
        lambda r: stats_ms(r["idle"]["launch_to_running"]))
    row(f"during that start: last worker launched / first worker running (s after the command)",
        lambda r: f"{r['idle']['last_launch']:.2f} / {r['idle']['first_running']:.2f}")
    row(f"during that start: slowest health request, every 100 ms on a new connection (ms; "
        f"GET /healthz / XML-RPC getState)", lambda r: f"{r['idle']['ping_worst'] * 1000:.0f}")
    row(f"stop {args.idle} workers -> all gone (s)", lambda r: f"{r['idle']['stop_all']:.2f}")
    p("")
    if "giskard-supervisor" in R:
        g = R["giskard-supervisor"]
        start1 = [v for v in g["start1"][0] if v is not None]
        goal = "met" if start1 and statistics.median(start1) < 0.1 else "NOT met"
        idle = g.get("idle")
        p(f"- giskard goal start -> running < 100 ms (1 worker, observed median): **{goal}**; "
          f"idle CPU with {args.idle} workers: "
          + (f"{100 * idle['cpu_s'] / idle['elapsed']:.2f} % of one core" if idle else "n/a"))
        p(f"- giskard, inside all those 1-worker starts: worker.starting -> worker.running "
          f"(interpreter start, shim import, environment collection, dial, hello/welcome) "
          f"{stats_ms(g['launch1'])} ms")
    for label, values in floors:
        p(f"- floor without any supervisor: {label}: {stats_ms(values)} ms")
    p("- the programs differ: giskard runs its worker shim, which must start the interpreter, "
      "import the shim, collect its environment (importlib.metadata, platform) and register "
      "over the worker socket before it is \"running\"; supervisord runs the same venv's "
      "python idle (`-c \"import signal; signal.pause()\"`, startsecs=0), \"running\" once its "
      "main loop turns after the spawn; its main loop sleeps up to 1 s in poll() when nothing "
      "wakes it, which the unobserved rows show")
    p(f"- giskard config: [workers] start_seconds = {args.start_seconds}, "
      f"registration_timeout_seconds = {args.registration_timeout}, other [workers] keys "
      "default (heartbeat_seconds = 5: idle workers exchange heartbeats); supervisord: "
      "autorestart=true, startsecs=0, redirect_stderr, logs to files")
    problems = list(dict.fromkeys(f"{s.NAME}: {m}" for s in sups for m in s.problems))
    if problems:
        p("")
        p("Problems seen:")
        for m in problems:
            p(f"- {m}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", help="giskard-supervisor (required unless --only supervisord)")
    parser.add_argument("--build-type", default="unknown")
    parser.add_argument("--only", choices=("both", "giskard", "supervisord"), default="both")
    parser.add_argument("--supervisord", default=shutil.which("supervisord") or
                        "/usr/bin/supervisord")
    parser.add_argument("--python", default=sys.executable,
                        help="the idle program's interpreter with --only supervisord")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--many", type=int, default=50)
    parser.add_argument("--idle", type=int, default=200)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds between all idle workers running and the CPU window")
    parser.add_argument("--start-seconds", type=int, default=1)
    parser.add_argument("--registration-timeout", type=int, default=120)
    parser.add_argument("--output", help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be 1..50")
    if args.only != "supervisord" and not (args.binary and os.access(args.binary, os.X_OK)):
        parser.error("--binary PATH to an executable giskard-supervisor is required")
    if args.only != "giskard" and not os.access(args.supervisord, os.X_OK):
        parser.error(f"no supervisord at {args.supervisord} (apt-get install -y supervisor)")

    nofile = raise_nofile()
    load_before = os.getloadavg()
    tmp = tempfile.mkdtemp(prefix="gsk-worker-bench-")
    sups = []
    floors = []
    try:
        python = args.python
        if args.only != "supervisord":
            g = Giskard(args, tmp)
            sups.append(g)
            g.start()
            note("giskard-supervisor: building the kernel env (offline, untimed)...")
            g.create("one", 1, BUILD_DEADLINE)
            g.stop_kernel("one", WAIT_ONE)
            g.create("many", args.many, WAIT_MANY)
            g.stop_kernel("many", WAIT_MANY)
            python = g.venv_python or python
            if not g.venv_python:
                g.problems.append("GET /api/v1/workers/{id} had no environment.pythonExecutable")
        if args.only != "giskard":
            s = Supervisord(args, tmp, python)
            sups.append(s)
            s.start()
        floors.append((f"`{python} -c pass` (subprocess.run)", run_floor(python, "pass", 5)))
        if args.only != "supervisord":
            floors.append(("the shim's import + environment collection, same way",
                           run_floor(python, SHIM_FLOOR_CODE, 5)))
        R = measure(sups, args)
        pyver = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                               capture_output=True, text=True, timeout=60).stdout.strip()
        machine = [
            f"nproc {os.cpu_count()} (usable here: {len(os.sched_getaffinity(0))}); "
            f"{os.uname().release}; RLIMIT_NOFILE {nofile}",
            f"worker interpreter: {python} (Python {pyver}), the giskard kernel's venv"
            if args.only != "supervisord" else f"idle program interpreter: {python} "
            f"(Python {pyver})",
        ]
        if args.only != "supervisord":
            machine.append(f"giskard-supervisor: {args.binary} ({args.build_type})")
        if args.only != "giskard":
            machine.append(f"supervisord: {args.supervisord} (run by /usr/bin/python3, "
                           f"own config in a temp dir, never the system service)")
        text = report(sups, R, args, floors, load_before, machine)
        print(text)
        if args.output:
            with open(args.output, "w") as f:
                f.write(text)
    finally:
        for s in reversed(sups):
            try:
                s.close()
            except Exception as e:  # keep cleaning up the others
                note(f"closing {s.NAME}: {e!r}")
        for s in sups:
            for m in s.problems:
                note(f"problem: {s.NAME}: {m}")
        if args.keep:
            note(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
