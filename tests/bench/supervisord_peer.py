"""supervisord 4.2.5 as the peer of the worker benchmark: its own config in a temporary
directory, XML-RPC over its Unix socket, stopped by its pid. Never the system service."""

import http.client
import os
import re
import signal
import subprocess
import time
import xmlrpc.client

from worker_bench_common import (
    cpu_ns,
    ExitWatcher,
    fleet_cost,
    HTTP_TIMEOUT,
    IDLE_CODE,
    measure_window,
    Pinger,
    procfs,
    pss_kib,
    rss_split,
    Sampler,
    STOP_WAIT,
    UnixHTTPConnection,
    WAIT_IDLE,
    WAIT_MANY,
    WAIT_ONE,
    wait_until)


# --- supervisord ----------------------------------------------------------------------------------

class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path, timeout):
        super().__init__()
        self.unix_path = path
        self.timeout = timeout

    def make_connection(self, host):
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        self._connection = host, UnixHTTPConnection(self.unix_path, self.timeout)
        return self._connection[1]


LOG_RE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \w+ (.*)$")
RUNNING = 20


def _program(name, n, command, logs):
    return (f"\n[program:{name}]\n"
            f"command={command}\n"
            f"process_name=%(program_name)s_%(process_num)03d\n"
            f"numprocs={n}\n"
            "autostart=false\nautorestart=true\nstartsecs=0\nstartretries=3\n"
            "stopsignal=TERM\nstopwaitsecs=10\nredirect_stderr=true\n"
            f"stdout_logfile={logs}/%(program_name)s_%(process_num)03d.log\n"
            "environment=PYTHONUNBUFFERED=\"1\",LANG=\"C.UTF-8\"\n")


def config_text(directory, sock, logfile, command, programs):
    """supervisord.conf: its socket, log and pid file in `directory`, and one program of
    `command` per (name, numprocs) of `programs`, started only when asked."""
    return ("[unix_http_server]\n"
            f"file={sock}\nchmod=0700\n\n"
            "[supervisord]\n"
            f"logfile={logfile}\npidfile={directory}/supervisord.pid\n"
            f"childlogdir={directory}/logs\nnodaemon=true\nloglevel=info\n"
            "minfds=4096\nminprocs=512\n\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface"
            "\n\n"
            "[supervisorctl]\n"
            f"serverurl=unix://{sock}\n"
            + "".join(_program(name, n, command, f"{directory}/logs") for name, n in programs))


class Supervisord:
    NAME = "supervisord"

    def __init__(self, args, tmp, python):
        self.args = args
        self.dir = os.path.join(tmp, "supervisord")
        os.makedirs(os.path.join(self.dir, "logs"))
        self.sock = os.path.join(self.dir, "supervisor.sock")
        self.logfile = os.path.join(self.dir, "supervisord.log")
        self.conf = os.path.join(self.dir, "supervisord.conf")
        self.python = python
        self.marker = "gsk-worker-bench-" + os.path.basename(tmp)
        self.proc = None
        self.out = None
        self.rpc = None
        self.pids = set()
        self.problems = []
        self.version = "?"
        with open(self.conf, "w") as f:
            f.write(config_text(self.dir, self.sock, self.logfile,
                                f"{python} -c \"{IDLE_CODE}\" {self.marker}",
                                (("one", 1), ("many", args.many), ("idle", args.idle))))

    def proxy(self, timeout=HTTP_TIMEOUT):
        return xmlrpc.client.ServerProxy("http://localhost/RPC2",
                                         transport=_UnixTransport(self.sock, timeout))

    def start(self):
        self.out = open(os.path.join(self.dir, "supervisord.out"), "wb")
        self.proc = subprocess.Popen([self.args.supervisord, "-n", "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        self.rpc = self.proxy()

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"supervisord exited with {self.proc.returncode}:\n"
                                   + self.log_tail())
            if not os.path.exists(self.sock):
                return False
            try:
                return self.rpc.supervisor.getState()["statename"] == "RUNNING"
            except (OSError, xmlrpc.client.Error, http.client.HTTPException):
                return False
        wait_until(up, 30, 0.05, "supervisord to answer on its socket")
        self.version = self.rpc.supervisor.getSupervisorVersion()

    @property
    def pid(self):
        return self.proc.pid

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(STOP_WAIT)
                except subprocess.TimeoutExpired:
                    self.problems.append("supervisord did not stop on SIGTERM; killed")
                    self.proc.kill()
                    self.proc.wait(30)
            left = [p for p in sorted(self.pids)
                    if procfs.state(p) not in (None, "Z") and self.marker in procfs.proc_cmdline(p)]
            procfs.kill_all(left)
            if left:
                self.problems.append(f"{len(left)} programs outlived supervisord; killed here")
        if self.out is not None:
            self.out.close()

    def log_tail(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-60:])
        except OSError:
            return ""

    def log_offset(self):
        try:
            return os.path.getsize(self.logfile)
        except OSError:
            return 0

    def log_since(self, offset):
        """[(unix seconds, message)] of the log lines written after byte `offset`."""
        with open(self.logfile, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
        out = []
        for line in text.splitlines():
            m = LOG_RE.match(line)
            if m:
                t = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
                out.append((t + int(m.group(2)) / 1000.0, m.group(3)))
        return out

    def successes(self, offset, names):
        """{name: time} of the "success: NAME entered RUNNING state" lines after `offset`."""
        found = {}
        for t, msg in self.log_since(offset):
            m = re.match(r"success: (\S+) entered RUNNING state", msg)
            if m and m.group(1) in names:
                found[m.group(1)] = t
        return found

    def spawned(self, offset, names=None):
        """{name: time} of the "spawned: 'NAME' with pid N" lines after `offset`."""
        found = {}
        for t, msg in self.log_since(offset):
            m = re.match(r"spawned: '(\S+)' with pid", msg)
            if m and (names is None or m.group(1) in names):
                found.setdefault(m.group(1), t)
        return found

    def wait_log_running(self, offset, names, timeout):
        """Reads the log (never asks supervisord) until every name entered RUNNING."""
        def all_logged():
            found = self.successes(offset, names)
            return found if len(found) == len(names) else None
        return wait_until(all_logged, timeout, 0.1,
                          f"supervisord to log {len(names)} RUNNING lines")

    def names(self, group, n):
        return [f"{group}_{i:03d}" for i in range(n)]

    def infos(self, group):
        out = [p for p in self.rpc.supervisor.getAllProcessInfo() if p["group"] == group]
        for p in out:
            if p["pid"]:
                self.pids.add(p["pid"])
        return out

    def all_running(self, group):
        return all(p["state"] == RUNNING for p in self.infos(group))

    def stop_group(self, group, timeout):
        start = time.monotonic()
        self.proxy(timeout).supervisor.stopProcessGroup(group, True)
        wait_until(lambda: all(p["statename"] in ("STOPPED", "EXITED")
                               for p in self.infos(group)), 30, 0.02,
                   f"supervisord group {group} stopped")
        return time.monotonic() - start

    def start_latency(self, group, n, observed, poll):
        names = self.names(group, n)
        offset = self.log_offset()
        t_wall = time.time()
        t0 = time.monotonic()
        if observed:
            self.proxy(WAIT_MANY).supervisor.startProcessGroup(group, True)
            client = time.monotonic() - t0
            if not self.all_running(group):
                raise RuntimeError(f"startProcessGroup({group}, wait=True) returned but not "
                                   "all are RUNNING")
        else:
            self.rpc.supervisor.startProcessGroup(group, False)
            client = None
        found = self.wait_log_running(offset, set(names), WAIT_MANY)
        self.infos(group)
        spawned = self.spawned(offset, set(names))
        launched = max(spawned.values()) - t_wall if len(spawned) == n else None
        return client, max(found.values()) - t_wall, launched

    def crash_latency(self, group, observed):
        name = f"{group}:{group}_000"
        info = self.rpc.supervisor.getProcessInfo(name)
        if info["state"] != RUNNING:
            raise RuntimeError(f"{name} is not RUNNING: {info}")
        old = info["pid"]
        self.pids.add(old)
        offset = self.log_offset()
        t_wall = time.time()
        t0 = time.monotonic()
        os.kill(old, signal.SIGKILL)
        client = None
        if observed:
            def replaced():
                x = self.rpc.supervisor.getProcessInfo(name)
                return x if x["state"] == RUNNING and x["pid"] not in (0, old) else None
            wait_until(replaced, WAIT_ONE, 0.002, f"{name} to run again after kill -9")
            client = time.monotonic() - t0
        found = self.wait_log_running(offset, {f"{group}_000"}, WAIT_ONE)
        own = found[f"{group}_000"] - t_wall
        exited = [t for t, msg in self.log_since(offset) if msg.startswith(f"exited: {group}_000")]
        detect = exited[0] - t_wall if exited else None
        spawned = self.spawned(offset, {f"{group}_000"})
        launched = spawned[f"{group}_000"] - t_wall if spawned else None
        if not observed:  # now it may be asked: the new pid, for the clean-up
            x = self.rpc.supervisor.getProcessInfo(name)
            if x["pid"] == old or x["state"] != RUNNING:
                raise RuntimeError(f"{name} logged RUNNING but is {x}")
            self.pids.add(x["pid"])
        return client, own, detect, launched

    def idle(self, n, window, settle):
        """--idle programs: their start (with a request sampler), a quiet window (RSS, CPU),
        their stop; a dict of the numbers (see worker_bench_report)."""
        res = {"rss0": procfs.rss_kib(self.pid), "split0": rss_split(self.pid)}
        res.update(self._idle_start(n))
        time.sleep(settle)
        pids = [p["pid"] for p in self.infos("idle") if p["state"] == RUNNING]
        res.update(measure_window(self.pid, pids, window))
        res["pss"] = pss_kib(self.pid)
        res["split"] = rss_split(self.pid)
        res.update(self._idle_stop(pids))
        return res

    def _idle_start(self, n):
        """startProcessGroup("idle", wait=True) while a sampler and a pinger ask supervisord."""
        offset = self.log_offset()
        with Sampler("xmlrpc", self.sock, "supervisor.getState",
                     self.args.sample_interval) as sampler, \
                Pinger(lambda: self.proxy().supervisor.getState()) as ping:
            # Every clock starts here, once the sampler runs (its process takes a while).
            d_cpu, d_wait = cpu_ns(self.pid), cpu_ns(self.pid, 1)
            t_wall = time.time()
            start = time.monotonic()
            self.proxy(WAIT_IDLE).supervisor.startProcessGroup("idle", True)
            wait_until(lambda: self.all_running("idle"), WAIT_IDLE, 0.05, "idle group RUNNING")
            res = {"start_all": time.monotonic() - start}
        res["start_cpu"] = cpu_ns(self.pid) - d_cpu
        res["start_runq"] = cpu_ns(self.pid, 1) - d_wait
        res["start_fleet"] = fleet_cost([p["pid"] for p in self.infos("idle")
                                         if p["state"] == RUNNING])
        res["ping_worst"] = ping.worst
        res["sampled"] = sampler.summary()
        spawned = self.spawned(offset)
        ok = self.successes(offset, set(spawned))
        res["start_all_own"] = max(ok.values()) - t_wall if len(ok) >= n else None
        res["launch_to_running"] = [ok[k] - spawned[k] for k in ok]
        res["last_launch"] = max(spawned.values()) - t_wall if spawned else None
        res["first_running"] = min(ok.values()) - t_wall if ok else None
        return res

    def _idle_stop(self, pids):
        """stopProcessGroup("idle", wait=True): XML-RPC, /proc and supervisord's log."""
        offset = self.log_offset()
        t_wall = time.time()
        watcher = ExitWatcher(pids)
        d_cpu = cpu_ns(self.pid)
        start = time.monotonic()
        watcher.start()
        res = {"stop_all": self.stop_group("idle", STOP_WAIT)}
        done = watcher.join()
        res["stop_cpu"] = cpu_ns(self.pid) - d_cpu
        res["stop_exited"] = done - start if done is not None else None
        stopped = [t for t, msg in self.log_since(offset) if msg.startswith("stopped: idle_")]
        res["stop_own"] = max(stopped) - t_wall if len(stopped) >= len(pids) else None
        return res
