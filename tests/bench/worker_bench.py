#!/usr/bin/env python3
"""Worker supervision benchmark: giskard-supervisor, with its fork server and with exec,
against supervisord (Debian's 4.2.5).

Not a test: prints Markdown tables and the fork server's goals with a verdict each (numbers,
never a failure). Run it with run_worker_bench.sh BUILD_DIR. In one run, for three supervisors:
giskard-supervisor with `[workers] fork_server = true` (the default: workers forked from a
template per env), the same binary with `fork_server = false` (every worker a new interpreter),
and supervisord:

  (a) start -> running, 1 worker: giskard: POST /api/v1/kernels/K/start on a stopped kernel
      until GET /api/v1/workers?kernel=K shows it "running" (polled every 2 ms); supervisord:
      XML-RPC supervisor.startProcess(name, wait=True) over its Unix socket;
  (b) the same with 50 workers (a kernel with workers=50; a program with numprocs=50), until
      the kernel's runningWorkers says 50 (polled every 10 ms: a small answer);
  (c) crash -> replacement running: kill -9 of the worker's pid until the same worker (giskard:
      same id; supervisord: same process name) runs again with another pid (polled, 2 ms);
  (d) --idle idle workers (200): the time to start them all (giskard: POST /kernels, then the
      kernel's runningWorkers every 20 ms), with a request every --sample-interval (10 ms) from
      a process of its own meanwhile (GET /api/v1/kernels / XML-RPC getState: p50, p99, max);
      the supervisor's own RSS, PSS and CPU, the workers' CPU, the template's RSS and PSS;
      the time to stop them all (REST, /proc, and the supervisor's own clock).

Each latency of (a)-(c) is taken two ways, --runs times each: "observed" (the client polls or
waits as above, which keeps the supervisor busy answering it; supervisord's main loop also wakes
on each request) and "unobserved" (the client sends the command or kill -9, then only looks at
the supervisor's own clock: giskard's worker.* events, which have millisecond times;
supervisord's log lines "spawned:" / "success: ... entered RUNNING state", also in
milliseconds; giskard is asked every 250 ms, supervisord's log file is read every 100 ms, it is
not asked anything). One untimed warm-up of each first; medians and p90.

The fork server forks a worker only from a ready template: an env's first worker is exec'd
while the template starts, and a template stops after template_idle_seconds (30) without
workers. Before every timed giskard start the benchmark makes sure the template is ready (it
starts and stops a 1-worker kernel until the daemon logged `event=template.ready`), and it
counts which timed workers really were forked (a forked worker keeps the template's command
line, `serve-template`).

The programs differ, which the report says: giskard-supervisor runs its worker shim (forked
from the template, or `python -m giskard_worker_shim serve-managed`, which imports the shim),
which dials the supervisor's socket and registers ("running" means registered); supervisord
runs the same venv's python idle (`python -c "import signal; signal.pause()"`, startsecs=0:
"running" means spawned and seen by the next turn of its main loop). The floor of an exec'd
worker, the interpreter start-up and the shim's own work, is measured too (no supervisor).

--only supervisord runs the supervisord half alone (no giskard-supervisor binary needed; the
idle program then runs under --python, default this interpreter); --modes fork (or exec) runs
one giskard mode only. --wait-load L first waits (at most --wait-load-seconds) for the 1-minute
load average to fall under L: other builds on a 2-core machine make every number noisy.

Standard library only. Every wait is bounded; every process started here is stopped by its pid;
temporary directories are removed (unless --keep).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from worker_bench_common import (
    BUILD_DEADLINE,
    compilers_running,
    cpu_ns,
    cwd_of,
    ExitWatcher,
    fleet_cost,
    HTTP_TIMEOUT,
    measure_window,
    note,
    OthersCpu,
    page_fault_us,
    parse_rfc3339_ms,
    Pinger,
    poll_interval,
    procfs,
    pss_kib,
    rss_split,
    raise_nofile,
    Sampler,
    run_floor,
    SHIM_FLOOR_CODE,
    STOP_WAIT,
    WAIT_IDLE,
    WAIT_MANY,
    WAIT_ONE,
    wait_quiet,
    wait_until)
from supervisord_peer import Supervisord
from worker_bench_report import report


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
    """giskard-supervisor in one mode: "fork" (the fork server, `[workers] fork_server = true`,
    the default) or "exec" (`fork_server = false`: every worker is a new interpreter)."""

    def __init__(self, args, tmp, mode):
        import harness as h  # noqa: PLC0415  (only the giskard half needs the harness)
        self.h = h
        self.args = args
        self.mode = mode
        self.NAME = f"giskard-{mode}"
        self.state = os.path.join(tmp, f"giskard-{mode}-state")
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
            f"registration_timeout_seconds = {args.registration_timeout}\n"
            # Explicit either way (the default is true), whatever GSK_E2E_FORK_SERVER says.
            f"fork_server = {'true' if mode == 'fork' else 'false'}\n")
        self.daemon = h.Daemon(self.state, self.config, binary=args.binary)
        self.api = None
        self.py = None
        self.venv_python = None
        self.event_cursor = 0
        self.pids = set()      # every worker pid seen, to check none is left at the end
        self.problems = []     # daemon misbehaviour seen, for the report
        self.first_last = (None, None)  # set by launch_to_running()
        self.last_running = (None, 0)   # idem: (time of the last worker.running, how many)
        self.tally = {}        # phase -> [forked, timed]: workers that really were forked
        self.template_pid = None

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

    # the fork server

    TEMPLATE_RE = re.compile(r"event=template\.(\w+) env=\S+(?: pid=(\d+))?")

    def template_events(self):
        """[(kind, pid or None)] of the daemon's template.* log lines so far."""
        out = []
        for line in self.daemon.log_lines():
            m = self.TEMPLATE_RE.search(line)
            if m:
                out.append((m.group(1), int(m.group(2)) if m.group(2) else None))
        return out

    def template_ready(self):
        """The pid of the env's template when the daemon last said it was ready (and has said
        nothing of it since) and it still runs; else None. The daemon logs `template.ready`
        only when a launch finds it ready, so a warm-up is a few starts (see warm_template)."""
        evs = self.template_events()
        if not evs or evs[-1][0] != "ready" or not evs[-1][1]:
            return None
        pid = evs[-1][1]
        return pid if procfs.state(pid) not in (None, "Z") else None

    def warm_template(self, kernel="one"):
        """Fork mode: makes sure the env's template is ready before a timed start (the env's
        first worker is exec'd while its template starts; a template stops after
        template_idle_seconds without workers). Starts and stops `kernel` (1 worker, stopped
        now) until a launch found the template ready. No-op in exec mode."""
        if self.mode != "fork":
            return
        for _ in range(40):
            pid = self.template_ready()
            if pid:
                self.template_pid = pid
                return
            self.api.call("POST", f"/api/v1/kernels/{kernel}/start")
            wait_until(lambda: self.running(kernel, 1), WAIT_ONE, 0.01, f"{kernel} running")
            self.stop_kernel(kernel, WAIT_ONE)
            time.sleep(0.3)  # the template's own start (interpreter, shim imports)
        raise RuntimeError("the template never became ready; template events: "
                           f"{self.template_events()[-10:]}")

    def count_forked(self, phase, pids):
        """Counts which of `pids` were forked from a template (their command line is the
        template's, `serve-template`) into tally[phase]."""
        t = self.tally.setdefault(phase, [0, 0])
        for pid in pids:
            t[1] += 1
            t[0] += "serve-template" in procfs.proc_cmdline(pid)

    def template_fork_ms(self):
        """What the template logged about each fork it made ("forked worker W as pid P in X
        ms"): [X seconds]."""
        out = []
        logs = os.path.join(self.state, "logs", "templates")
        for name in (os.listdir(logs) if os.path.isdir(logs) else []):
            with open(os.path.join(logs, name), errors="replace") as f:
                for line in f:
                    m = re.search(r"forked worker \S+ as pid \d+ in ([\d.]+) ms", line)
                    if m:
                        out.append(float(m.group(1)) / 1000.0)
        return out

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
        self.wait_running(name, workers, poll, timeout)
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
        self.warm_template()
        after = self.last_event_id()
        t_wall = time.time()
        t0 = time.monotonic()
        self.api.call("POST", f"/api/v1/kernels/{kernel}/start")
        if observed:
            self.wait_running(kernel, n, poll)
            client = time.monotonic() - t0
        else:
            self.wait_running(kernel, n, 0.25)
            client = None
        self.count_forked(f"start{n}", [w["pid"] for w in self.workers(kernel)])
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

    def wait_running(self, kernel, n, poll, timeout=WAIT_MANY):
        """Until `n` workers of `kernel` run: one worker is read from the workers list, more
        from the kernel's runningWorkers (a small answer, where the list of 200 workers is a
        large one that would load the daemon under test)."""
        if n == 1:
            return wait_until(lambda: self.running(kernel, n), timeout, poll,
                              f"{n} running workers of {kernel}")
        return wait_until(
            lambda: self.api.call("GET", f"/api/v1/kernels/{kernel}").get("runningWorkers", 0)
            >= n, timeout, poll, f"{n} running workers of {kernel}")

    def launch_to_running(self, after):
        """(worker.starting -> worker.running) of every worker since event `after`; also sets
        first_last = (time of the last worker.starting, time of the first worker.running)."""
        evs = self.events_since(after)
        starts = [parse_rfc3339_ms(e["time"]) for e in evs if e["kind"] == "worker.starting"]
        runs = [parse_rfc3339_ms(e["time"]) for e in evs if e["kind"] == "worker.running"]
        self.first_last = (max(starts) if starts else None, min(runs) if runs else None)
        self.last_running = (max(runs), len(runs)) if runs else (None, 0)
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
        self.count_forked("crash", [x["pid"]])
        own, detect, launched = self._crash_events(wid, after, t_wall)
        self._check_crash(wid, old, x)
        return client, own, detect, launched

    def _crash_events(self, wid, after, t_wall):
        """(running again, exit noticed, replacement launched), s after the kill, from the
        worker's events since `after`."""
        evs = [e for e in self.events_since(after) if e["subject"] == f"worker/{wid}"]

        def times(kind):
            return [parse_rfc3339_ms(e["time"]) for e in evs if e["kind"] == kind]
        run, gone, launch = times("worker.running"), times("worker.exited"), times("worker.starting")
        kinds = [e["kind"] for e in evs]
        if "worker.backoff" in kinds:
            self.problems.append(f"kill -9 after {self.args.start_seconds + 0.3:.1f} s of running "
                                 f"(start_seconds={self.args.start_seconds}) went to backoff: "
                                 f"{kinds}")
        return (run[-1] - t_wall if run else None, gone[0] - t_wall if gone else None,
                launch[0] - t_wall if launch else None)

    def _check_crash(self, wid, old, x):
        """The killed pid must be reaped, and the restart counted."""
        if procfs.state(old) == "Z":
            time.sleep(0.5)
            if procfs.state(old) == "Z":
                self.problems.append(f"killed worker pid {old} still a zombie 0.5 s after its "
                                     "replacement ran (not reaped)")
        if x.get("restarts", 0) < 1:
            self.problems.append(f"worker {wid} restarted after kill -9 but restarts="
                                 f"{x.get('restarts')}")

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
        """--idle workers: their start (with a request sampler), a quiet window (RSS, CPU),
        their stop; a dict of the numbers (see worker_bench_report)."""
        self.warm_template()
        res = {"rss0": procfs.rss_kib(self.pid), "split0": rss_split(self.pid)}
        res.update(self._idle_start(n))
        time.sleep(settle)
        pids = self._idle_pids(n)
        res.update(measure_window(self.pid, pids, window))
        res["pss"] = pss_kib(self.pid)
        res["split"] = rss_split(self.pid)
        if self.mode == "fork":
            tp = self.template_ready() or self.template_pid
            res["template_rss"] = procfs.rss_kib(tp) if tp else None
            res["template_pss"] = pss_kib(tp) if tp else None
        res.update(self._idle_stop(pids))
        return res

    def _idle_start(self, n):
        """Creates kernel "idle" with n workers while a sampler and a pinger ask the daemon."""
        tp = self.template_pid if self.mode == "fork" else None
        after = self.last_event_id()
        with Sampler("http", self.daemon.port, "/api/v1/kernels", self.args.sample_interval,
                     token=self.daemon.token) as sampler, Pinger(self.healthz) as ping:
            # Every clock starts here, once the sampler runs (its process takes a while).
            d_cpu, t_cpu = cpu_ns(self.pid), cpu_ns(tp) if tp else None
            d_wait = cpu_ns(self.pid, 1)
            t_wall = time.time()
            res = {"start_all": self.create("idle", n, WAIT_IDLE, poll=0.02)}
        res["start_cpu"] = cpu_ns(self.pid) - d_cpu
        res["start_runq"] = cpu_ns(self.pid, 1) - d_wait
        res["start_template_cpu"] = cpu_ns(tp) - t_cpu if tp and t_cpu is not None else None
        res["start_fleet"] = fleet_cost([w["pid"] for w in self.workers("idle")
                                         if w["state"] == "running"])
        res["ping_worst"] = ping.worst
        res["sampled"] = sampler.summary()
        res["launch_to_running"] = self.launch_to_running(after)
        last_launch, first_running = self.first_last
        last_run, runs = self.last_running
        res["start_all_own"] = last_run - t_wall if last_run is not None and runs >= n else None
        res["last_launch"] = last_launch - t_wall if last_launch is not None else None
        res["first_running"] = first_running - t_wall if first_running is not None else None
        self._check_burst(n, res, ping.worst)
        return res

    def _check_burst(self, n, res, worst_ping):
        """A burst that takes over a second to launch with no registration served meanwhile
        means the launches block the event loop (a short burst ends before any shim is up)."""
        last, first = res["last_launch"], res["first_running"]
        if first is not None and last is not None and last > 1.0 and first >= last:
            self.problems.append(
                f"starting {n} workers: no worker was registered before the last one was "
                f"launched (last worker.starting +{last:.2f} s, first worker.running "
                f"+{first:.2f} s); /healthz took up to {(worst_ping or 0) * 1000:.0f} ms "
                "meanwhile: the launches block the event loop")

    def _idle_pids(self, n):
        """The pids of the running idle workers (counted as forked or not); notes restarts."""
        ws = self.workers("idle")
        pids = [w["pid"] for w in ws if w["state"] == "running"]
        self.count_forked(f"idle{n}", pids)
        bad = [w for w in ws if w.get("restarts") or w.get("quickFailures")]
        if bad:
            self.problems.append(f"{len(bad)} of {n} idle workers restarted while starting "
                                 f"(first: {bad[0]['id']} {bad[0].get('lastError')!r})")
        return pids

    def _idle_stop(self, pids):
        """Stops kernel "idle": REST, /proc and the daemon's own clock."""
        after = self.last_event_id()
        t_wall = time.time()
        watcher = ExitWatcher(pids)
        d_cpu = cpu_ns(self.pid)
        start = time.monotonic()
        watcher.start()
        res = {"stop_all": self.stop_kernel("idle", STOP_WAIT, poll=0.02)}
        done = watcher.join()
        res["stop_cpu"] = cpu_ns(self.pid) - d_cpu
        res["stop_exited"] = done - start if done is not None else None
        evs = self.events_since(after)
        stopped = [parse_rfc3339_ms(e["time"]) for e in evs if e["kind"] == "worker.stopped"]
        signalled = [parse_rfc3339_ms(e["time"]) for e in evs if e["kind"] == "worker.stopping"]
        res["stop_own"] = max(stopped) - t_wall if len(stopped) >= len(pids) else None
        res["stop_signalled"] = max(signalled) - t_wall if signalled else None
        return res


# --- the run --------------------------------------------------------------------------------------

class Phases:
    """The phases of a run: the load at the start of each, the CPU that processes outside the
    benchmark used in each, and (with --quiet-share) a wait for a quiet moment before each."""

    def __init__(self, args, setting):
        self.args = args
        self.loads = setting.setdefault("phase_load", [])
        self.others = setting.setdefault("others", [])
        self.waits = setting.setdefault("quiet_waits", [])
        self.watch = OthersCpu()
        self.current = None

    def begin(self, name):
        """Closes the phase running and opens `name` (None: the end)."""
        if self.current is not None:
            self.others.append((self.current,) + self.watch.mark())
        if name is not None and self.args.quiet_share > 0:
            self._wait_quiet(name)
        self.watch.mark()
        self.current = name
        if name is not None:
            self.loads.append((name, os.getloadavg()[0]))

    def _wait_quiet(self, name):
        """Waits (at most --quiet-seconds) for a 5 s window in which processes outside this
        benchmark used under --quiet-share of the CPUs."""
        start, share = time.monotonic(), None
        while time.monotonic() - start < self.args.quiet_seconds:
            self.watch.mark()
            time.sleep(5)
            wall, cpu, _ = self.watch.mark()
            share = cpu / wall / os.cpu_count()
            if share < self.args.quiet_share:
                break
        self.waits.append((name, time.monotonic() - start, share))


def on_each(sups, fn, label):
    """fn(s) for every supervisor; on a failure, prints that supervisor's log and re-raises."""
    for s in sups:
        try:
            fn(s)
        except Exception:
            note(f"--- {s.NAME} failed in {label}; its log:\n{s.log_tail()}")
            raise


def stop_group(s, group, timeout):
    if isinstance(s, Giskard):
        s.stop_kernel(group, timeout)
    else:
        s.stop_group(group, timeout)


def warm_up(sups, args):
    """One untimed start and stop of each size on each supervisor."""
    def warm(s):
        s.start_latency("one", 1, True, 0.01)
        stop_group(s, "one", WAIT_ONE)
        s.start_latency("many", args.many, True, 0.01)
        stop_group(s, "many", WAIT_MANY)
    on_each(sups, warm, "warm-up")


def run_start1(sups, args, R):
    """--runs starts of one worker, observed and not."""
    for i in range(args.runs):
        for observed, key in ((True, "start1"), (False, "start1q")):
            def one(s):
                after = s.last_event_id() if isinstance(s, Giskard) else None
                for lst, v in zip(R[s.NAME][key], s.start_latency("one", 1, observed, 0.002)):
                    lst.append(v)
                if after is not None:
                    R[s.NAME]["launch1"].extend(s.launch_to_running(after))
                stop_group(s, "one", WAIT_ONE)
            on_each(sups, one, key)
        note(f"  run {i + 1}/{args.runs} start 1: " + "; ".join(
            f"{s.NAME} observed {fmt_ms(R[s.NAME]['start1'][0][-1])} / own clock "
            f"{fmt_ms(R[s.NAME]['start1'][1][-1])}, unobserved "
            f"{fmt_ms(R[s.NAME]['start1q'][1][-1])}" for s in sups))


def run_start_many(sups, args, R, phases):
    """--runs starts of --many workers, observed and not; a phase each."""
    for i in range(args.runs):
        phases.begin(f"start {args.many} #{i + 1}")
        for observed, key in ((True, "startN"), (False, "startNq")):
            def many(s):
                for lst, v in zip(R[s.NAME][key],
                                  s.start_latency("many", args.many, observed, 0.01)):
                    lst.append(v)
                stop_group(s, "many", WAIT_MANY)
            on_each(sups, many, key)
        note(f"  run {i + 1}/{args.runs} start {args.many}: " + "; ".join(
            f"{s.NAME} observed {fmt_ms(R[s.NAME]['startN'][0][-1])}, unobserved "
            f"{fmt_ms(R[s.NAME]['startNq'][1][-1])}" for s in sups))


def run_crashes(sups, args, R):
    """--runs kill -9 of a running worker, observed and not."""
    on_each(sups, lambda s: s.start_latency("one", 1, True, 0.01), "crash set-up")
    for i in range(args.runs):
        for observed, key in ((True, "crash"), (False, "crashq")):
            def crash(s):
                for lst, v in zip(R[s.NAME][key], s.crash_latency("one", observed)):
                    lst.append(v)
            on_each(sups, crash, key)
        note(f"  run {i + 1}/{args.runs} crash: " + "; ".join(
            f"{s.NAME} observed {fmt_ms(R[s.NAME]['crash'][0][-1])}, unobserved "
            f"{fmt_ms(R[s.NAME]['crashq'][1][-1])}" for s in sups))
    on_each(sups, lambda s: stop_group(s, "one", WAIT_ONE), "crash clean-up")


def run_idle(s, args, R):
    """--idle workers on one supervisor (never two sets of idle workers at once)."""
    note(f"  {s.NAME}: starting {args.idle} idle workers...")
    try:
        R[s.NAME]["idle"] = r = s.idle(args.idle, args.window, args.settle)
    except Exception:
        note(f"--- {s.NAME} failed with {args.idle} idle workers; its log:\n{s.log_tail()}")
        raise
    note(f"  {s.NAME}: {r['workers']} idle, all running after {r['start_all']:.3f} s, "
         f"RSS {r['rss'] / 1024:.1f} MiB, CPU {r['cpu_s'] * 1000:.0f} ms in "
         f"{r['elapsed']:.1f} s, stopped in {r['stop_all']:.3f} s")


def measure(sups, args, setting):
    """Runs every case on every supervisor (interleaved run by run); returns results[name]."""
    R = {s.NAME: {"start1": ([], [], []), "start1q": ([], [], []), "startN": ([], [], []),
                  "startNq": ([], [], []), "crash": ([], [], [], []),
                  "crashq": ([], [], [], []), "launch1": []} for s in sups}
    phases = Phases(args, setting)
    phases.begin("warm-up")
    warm_up(sups, args)
    phases.begin("start 1")
    run_start1(sups, args, R)
    run_start_many(sups, args, R, phases)
    phases.begin("kill -9")
    run_crashes(sups, args, R)
    for s in sups:
        phases.begin(f"{s.NAME} {args.idle}")
        run_idle(s, args, R)
    phases.begin(None)
    for s in sups:
        if isinstance(s, Giskard):
            R[s.NAME]["tally"] = s.tally
            R[s.NAME]["fork_ms"] = s.template_fork_ms()
    return R


def fmt_ms(v):
    return "n/a" if v is None else f"{v * 1000:.1f} ms"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--binary", help="giskard-supervisor (required unless --only supervisord)")
    add("--build-type", default="unknown")
    add("--only", choices=("all", "giskard", "supervisord"), default="all")
    add("--modes", default="fork,exec",
        help="giskard-supervisor's modes, of fork and exec (default both)")
    add("--supervisord", default=shutil.which("supervisord") or "/usr/bin/supervisord")
    add("--python", default=sys.executable,
        help="the idle program's interpreter with --only supervisord")
    add("--runs", type=int, default=5)
    add("--many", type=int, default=50)
    add("--idle", type=int, default=200)
    add("--window", type=float, default=10.0)
    add("--settle", type=float, default=5.0,
        help="seconds between all idle workers running and the CPU window")
    add("--sample-interval", type=float, default=0.01,
        help="seconds between the sampled REST requests during the big start")
    add("--start-seconds", type=int, default=1)
    add("--registration-timeout", type=int, default=120)
    add("--wait-load", type=float, default=0.0,
        help="first wait until the 1-minute load average is under this (0: no)")
    add("--wait-load-seconds", type=float, default=900.0, help="the longest --wait-load waits")
    add("--quiet-share", type=float, default=0.0,
        help="before each phase, wait for 5 s in which processes outside the benchmark used "
        "less than this share of the CPUs (0: no wait)")
    add("--quiet-seconds", type=float, default=600.0,
        help="the longest --quiet-share waits before one phase")
    add("--output", help="also write the report to this file")
    add("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    args.mode_list = [m for m in args.modes.split(",") if m]
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be 1..50")
    if not args.mode_list or any(m not in ("fork", "exec") for m in args.mode_list):
        parser.error("--modes is a comma-separated list of fork and exec")
    if args.only != "supervisord" and not (args.binary and os.access(args.binary, os.X_OK)):
        parser.error("--binary PATH to an executable giskard-supervisor is required")
    if args.only != "giskard" and not os.access(args.supervisord, os.X_OK):
        parser.error(f"no supervisord at {args.supervisord} (apt-get install -y supervisor)")
    return args


def start_giskard(args, tmp, mode, sups):
    """Starts giskard-supervisor in `mode` (appended to `sups` first, to be closed whatever
    happens) and builds the kernels' env (untimed)."""
    g = Giskard(args, tmp, mode)
    sups.append(g)
    g.start()
    note(f"{g.NAME}: building the kernel env (offline, untimed)...")
    g.create("one", 1, BUILD_DEADLINE)
    g.stop_kernel("one", WAIT_ONE)
    g.create("many", args.many, WAIT_MANY)
    g.stop_kernel("many", WAIT_MANY)
    if not g.venv_python:
        g.problems.append("GET /api/v1/workers/{id} had no environment.pythonExecutable")
    return g


def start_all(args, tmp, sups):
    """Starts every supervisor asked for; returns the interpreter the workers run."""
    python = args.python
    if args.only != "supervisord":
        for mode in args.mode_list:
            python = start_giskard(args, tmp, mode, sups).venv_python or python
    if args.only != "giskard":
        s = Supervisord(args, tmp, python)
        sups.append(s)
        s.start()
    return python


def measure_floors(args, python):
    """A worker's start without any supervisor: the interpreter, and the shim's own work."""
    floors = [(f"`{python} -c pass` (subprocess.run)", run_floor(python, "pass", 5))]
    if args.only != "supervisord":
        floors.append(("the shim's import + environment collection, same way",
                       run_floor(python, SHIM_FLOOR_CODE, 5)))
    return floors


def describe_machine(args, python, nofile):
    """The setting's lines of the report: machine, interpreter, binaries."""
    pyver = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                           capture_output=True, text=True, timeout=60).stdout.strip()
    machine = [
        f"nproc {os.cpu_count()} (usable here: {len(os.sched_getaffinity(0))}); "
        f"{cpu_model()}; Linux {os.uname().release}; RLIMIT_NOFILE {nofile}",
        f"worker interpreter: {python} (Python {pyver}), the giskard kernel's venv"
        if args.only != "supervisord" else f"idle program interpreter: {python} "
        f"(Python {pyver})",
    ]
    if args.only != "supervisord":
        machine.append(f"giskard-supervisor: {args.binary} ({args.build_type}); modes: "
                       + ", ".join(args.mode_list))
    if args.only != "giskard":
        machine.append(f"supervisord: {args.supervisord} (run by /usr/bin/python3, "
                       f"own config in a temp dir, never the system service)")
    return machine


def close_all(sups, args, tmp):
    """Stops every supervisor (by pid), reports what went wrong, removes the temp dir."""
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


def main():
    args = parse_args()
    nofile = raise_nofile()
    setting = {"waited": wait_quiet(args.wait_load, args.wait_load_seconds)
               if args.wait_load else None,
               "load_start": os.getloadavg(), "compilers": compilers_running()}
    tmp = tempfile.mkdtemp(prefix="gsk-worker-bench-")
    sups = []
    try:
        python = start_all(args, tmp, sups)
        floors = measure_floors(args, python)
        setting["page_fault_us"] = page_fault_us()
        R = measure(sups, args, setting)
        setting["compilers_end"] = compilers_running()
        text = report(sups, R, args, floors, setting, describe_machine(args, python, nofile))
        print(text)
        if args.output:
            with open(args.output, "w") as f:
                f.write(text)
    finally:
        close_all(sups, args, tmp)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU model unknown"


if __name__ == "__main__":
    main()
