"""Shared by test_workers.py and test_fork_server.py: the misbehaving-worker hook (a test wheel),
kernels and workers over REST, the env templates (fork servers) seen from outside, and
WorkersTestCase, whose classes leave no process behind.

The tests run with the daemon's fork server on (the default) or off (GSK_E2E_FORK_SERVER=0, see
harness.settings): EXPECTED_KIND says how the workers of these tests must have been started."""

import os
import re
import tempfile
import time
import urllib.parse

import harness as h  # tests/ is on sys.path (the test file put it there)
from harness import (alive, kill_all, other_pids, proc_argv, proc_cmdline, proc_environ,
                     wait_for)

RUNNING_TIMEOUT = 45  # launch to "running"
TEMPLATE_TIMEOUT = 60  # a template's start to "ready" (the daemon's own bound)
SHIM_PYPROJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                              "worker-shim", "pyproject.toml")

# How every worker of these tests' kernels is started: forked from its env's template, or exec'd.
EXPECTED_KIND = "forked" if h.FORK_SERVER else "exec"

# The misbehaving-worker hook, installed into each kernel's env by the test wheel
# gsk-e2e-misbehave with a .pth file, so that every interpreter of the env imports it at start.
# Not a PYTHONPATH: a kernel with a PYTHON* variable always gets an exec'd worker.
MISBEHAVE_WHEEL = ("gsk-e2e-misbehave", "1.0")
MISBEHAVE_MODULE = r'''
"""Test-only (tests/e2e): makes a worker misbehave as E2E_MISBEHAVE says, before the shim
runs. An exec'd worker does so at interpreter start-up (a .pth file imports this module). A
template (GSK_TEMPLATE_FD is set) does nothing itself but patch the shim's managed.run in the
children it forks, so that a forked worker does so once its environment is the kernel's, right
before the managed worker runs. Every worker start leaves E2E_TEST_DIR/started-<pid> holding
its time, "exec" or "forked", and the mode.

A template also holds a file and a socket pair open, which the workers it forks must not
inherit (tests/e2e/test_fork_server.py looks for them in /proc/<pid>/fd)."""
import os
import sys
import time


def _note(test_dir, name, text):
    if test_dir:
        with open(os.path.join(test_dir, name), "w") as f:
            f.write(text)


def misbehave(kind):
    mode = os.environ.get("E2E_MISBEHAVE", "")
    test_dir = os.environ.get("E2E_TEST_DIR", "")
    _note(test_dir, "started-%d" % os.getpid(), "%r %s %s\n" % (time.time(), kind, mode))
    if mode == "crash":
        os._exit(3)
    elif mode == "ignore-sigterm":
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        real_signal = signal.signal

        def keep_ignoring(signum, handler):
            if signum == signal.SIGTERM:
                return signal.SIG_IGN  # whatever the shim installs
            return real_signal(signum, handler)
        signal.signal = keep_ignoring
    elif mode == "grandchild":
        import subprocess
        child = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL)
        _note(test_dir, "grandchild-%d.pid" % os.getpid(), "%d\n" % child.pid)
    elif mode == "never-register":
        while True:
            time.sleep(3600)
    elif mode == "hog":
        import resource
        import traceback
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            # Without a limit the allocation would take the machine's memory: refuse.
            sys.stderr.write("hog: no RLIMIT_AS is set; not allocating\n")
            sys.stderr.flush()
            os._exit(99)
        try:
            hog = bytearray(soft * 4)
        except MemoryError:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        del hog
        os._exit(98)  # the allocation succeeded despite the limit


def _patch_forked_run():
    managed = sys.modules.get("giskard_worker_shim.managed")
    if managed is None or getattr(managed.run, "e2e_misbehave", False):
        return
    real_run = managed.run

    def run(*args, **kwargs):
        misbehave("forked")
        return real_run(*args, **kwargs)
    run.e2e_misbehave = True
    managed.run = run


if os.environ.get("GSK_TEMPLATE_FD"):
    import socket
    HELD_FILE = open(__file__, "rb")
    HELD_SOCKETS = socket.socketpair()
    os.register_at_fork(after_in_child=_patch_forked_run)
else:
    misbehave("exec")
'''


def write_misbehave_wheel(out_dir):
    """The gsk-e2e-misbehave wheel (MISBEHAVE_MODULE and a .pth importing it) in out_dir."""
    name, version = MISBEHAVE_WHEEL
    return h.write_package_wheel(out_dir, name, version, {
        "e2e_misbehave.py": MISBEHAVE_MODULE.lstrip("\n"),
        "e2e_misbehave.pth": "import e2e_misbehave\n"})


# --- /proc ---------------------------------------------------------------------------------------

def marked_processes(prefix):
    """Live pids whose E2E_TEST_DIR starts with `prefix`: workers and their grandchildren."""
    pids = []
    for pid in other_pids():
        env = proc_environ(pid)
        if env and env.get("E2E_TEST_DIR", "").startswith(prefix) and alive(pid):
            pids.append(pid)
    return sorted(pids)


def worker_processes(test_dir):
    """Live worker (shim) processes of the kernel whose E2E_TEST_DIR is `test_dir`."""
    out = []
    for pid in marked_processes(test_dir):
        env = proc_environ(pid) or {}
        if env.get("E2E_TEST_DIR") == test_dir and "GSK_WORKER_ID" in env \
                and "giskard_worker_shim" in proc_cmdline(pid):
            out.append(pid)
    return out


def template_processes(prefix):
    """Live template (fork server) processes whose command line names a path under `prefix`."""
    return sorted(pid for pid, argv in h.processes_mentioning(prefix)
                  if argv[-1:] == ["serve-template"] and "GSK_TEMPLATE_FD" in
                  (proc_environ(pid) or {}))


def launch_kind(pid):
    """How a live worker was started, from its command line: "forked" (a forked worker keeps its
    template's, `... serve-template`, PROTOCOL.md), "exec" (`... serve-managed`), or None."""
    last = proc_argv(pid)[-1:]
    return {"serve-template": "forked", "serve-managed": "exec"}.get(last[0] if last else "")


def _notes(test_dir):
    out = []
    for name in os.listdir(test_dir):
        if name.startswith("started-"):
            with open(os.path.join(test_dir, name)) as f:
                fields = f.read().split()
            out.append((float(fields[0]), int(name[len("started-"):]), fields[1]))
    return sorted(out)


def launches(test_dir):
    """[(time, pid)] of every start of the kernel's workers, oldest first."""
    return [(t, pid) for t, pid, _ in _notes(test_dir)]


def launch_kinds(test_dir):
    """{pid: "exec" or "forked"} of every start of the kernel's workers."""
    return {pid: kind for _, pid, kind in _notes(test_dir)}


def shim_distribution():
    """(name, version) of the worker shim, from its pyproject.toml."""
    with open(SHIM_PYPROJECT) as f:
        text = f.read()
    project = text.split("[project]", 1)[1]
    name = re.search(r'^name\s*=\s*"([^"]+)"', project, re.M).group(1)
    version = re.search(r'^version\s*=\s*"([^"]+)"', project, re.M).group(1)
    return re.sub(r"[-_.]+", "-", name).lower(), version


# --- kernels and workers over REST ---------------------------------------------------------------

class Kernel:
    """A kernel of these tests: its name and its E2E_TEST_DIR (where its workers leave notes)."""

    def __init__(self, name, test_dir, env):
        self.name = name
        self.dir = test_dir
        self.env = env


def create_kernel(daemon, tmp, name, mode="", workers=1, extra_env=None, requirements=(),
                  fields=None):
    """Creates a kernel whose workers misbehave as `mode` says; waits until it is ready. Its env
    holds the gsk-e2e-misbehave wheel (the daemon's config must find it: see
    WorkersTestCase.base_config) and `requirements`; `fields` are more fields of the document."""
    test_dir = tempfile.mkdtemp(prefix=f"kernel-{name}-", dir=tmp)
    env = {"E2E_TEST_DIR": test_dir}
    if mode:
        env["E2E_MISBEHAVE"] = mode
    env.update(extra_env or {})
    wheel, version = MISBEHAVE_WHEEL
    doc = {"name": name, "pythonVersion": "3.11",
           "requestedDependencies": [f"{wheel}=={version}", *requirements],
           "type": "PROCESS", "version": "1", "workers": workers, "env": env}
    doc.update(fields or {})
    r = daemon.post("/api/v1/kernels", doc)
    assert r.status == 201, r
    k = daemon.wait_status(name, ("ready", "failed"), h.BUILD_TIMEOUT)
    if k["status"] != "ready":
        log = daemon.build_log(name)
        raise AssertionError(f"kernel {name} did not build: {k}\n{log[-3000:]}")
    return Kernel(name, test_dir, env)


def list_workers(daemon, kernel=None):
    path = "/api/v1/workers" + (f"?kernel={urllib.parse.quote(kernel)}" if kernel else "")
    r = daemon.get(path)
    assert r.status == 200, r
    assert isinstance(r.json, dict) and r.json["count"] == len(r.json["workers"]), r
    return r.json["workers"]


def get_worker(daemon, wid):
    r = daemon.get(f"/api/v1/workers/{urllib.parse.quote(wid)}")
    assert r.status == 200, r
    return r.json


def worker_log(daemon, wid, offset=0):
    r = daemon.get(f"/api/v1/workers/{urllib.parse.quote(wid)}/logs?offset={offset}")
    assert r.status == 200, r
    return r


def worker_events(daemon, wid):
    return daemon.events(subject=urllib.parse.quote(f"worker/{wid}", safe=""))


def wait_running(daemon, kernel, count, timeout=RUNNING_TIMEOUT):
    """Waits until the kernel has exactly `count` workers, all running with a live pid."""
    def probe():
        ws = list_workers(daemon, kernel)
        fatal = [w for w in ws if w["state"] == "fatal"]
        if fatal:
            raise AssertionError(f"worker of {kernel} went fatal: {fatal}")
        return ws
    return wait_for(f"{count} running workers of {kernel}", probe,
                    lambda ws: len(ws) == count and all(
                        w["state"] == "running" and w["pid"] > 0 and alive(w["pid"])
                        for w in ws), timeout)


def wait_worker(daemon, wid, check, what, timeout):
    return wait_for(f"worker {wid} {what}", lambda: get_worker(daemon, wid), check, timeout)


# --- templates (fork servers) --------------------------------------------------------------------

_TEMPLATE_STARTING_RE = re.compile(r"event=template\.starting env=(\S+) pid=(\d+)")


def env_name(daemon, wid):
    """The name of the env (its directory under <state>/envs) that worker `wid` runs in."""
    exe = get_worker(daemon, wid)["environment"]["pythonExecutable"]
    return os.path.basename(os.path.dirname(os.path.dirname(exe)))


def template_pids(daemon, env):
    """The pids of the templates the daemon started for `env`, oldest first (from its log)."""
    return [int(m.group(2)) for m in map(_TEMPLATE_STARTING_RE.search, daemon.log_lines())
            if m and m.group(1) == env]


def template_log(daemon, env):
    path = os.path.join(daemon.state_dir, "logs", "templates", env + ".log")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_template_ready(daemon, env, timeout=TEMPLATE_TIMEOUT):
    """Waits until the daemon's latest template for `env` runs and says it is ready (in its
    log); returns its pid."""
    def probe():
        pids = template_pids(daemon, env)
        if not pids or not alive(pids[-1]):
            return None
        ready = f"template ready: pid {pids[-1]},"
        return pids[-1] if ready in template_log(daemon, env) else None
    return wait_for(f"the template of env {env} ready", probe, lambda pid: pid is not None,
                    timeout, interval=0.05)


def forked_from(daemon, worker):
    """The template pid that the log of `worker` (a worker as REST shows it) says its current
    process was forked from, or None when it says it was exec'd."""
    text = worker_log(daemon, worker["id"]).raw.decode("utf-8", "replace")
    started = re.findall(rf"worker {re.escape(worker['id'])} starting: .* pid {worker['pid']}"
                         r"(?: \(forked from template (\d+)\))?, supervisor socket", text)
    assert started, f"no start of pid {worker['pid']} in the log of {worker['id']}:\n{text}"
    return int(started[-1]) if started[-1] else None


class WorkersTestCase(h.DaemonTestCase):
    """A daemon per class (started with base_config() + CONFIG) unless SHARED_DAEMON is False.
    With the fork server on, warm_up() has the env's template ready before the tests run, so that
    every worker of the kernels made with add_kernel() or kernel() is forked (the env's first
    worker is exec'd while its template starts). When the class ends, every start of those
    kernels' workers must have been EXPECTED_KIND, and no process of its kernels nor template
    may be left: leftovers are killed by pid and reported."""

    CONFIG = ""
    SHARED_DAEMON = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.e2e_wheels = os.path.join(cls.tmp, "e2e-wheels")
        os.makedirs(cls.e2e_wheels)
        write_misbehave_wheel(cls.e2e_wheels)
        cls._checked_kernels = []
        cls.daemon = cls.warm = None
        if cls.SHARED_DAEMON:
            cls.daemon = cls.new_daemon(config_text=cls.base_config() + cls.CONFIG).start()
            cls.warm = cls.warm_up(cls.daemon)

    @classmethod
    def base_config(cls):
        """h.BASE_CONFIG, and the test wheels (gsk-e2e-misbehave) as find-links."""
        return h.config_toml(find_links=[cls.e2e_wheels], offline=True, max_concurrent=1)

    @classmethod
    def warm_up(cls, daemon, requirements=(), name="warm-up"):
        """With the fork server on: a kernel `name` of one worker (left running, so that the env
        stays in use) whose env (gsk-e2e-misbehave and `requirements`) then has its template
        ready. Returns (kernel, env name, template pid), or None with the fork server off."""
        if not h.FORK_SERVER:
            return None
        k = create_kernel(daemon, cls.tmp, name, requirements=requirements)
        w = wait_running(daemon, name, 1)[0]
        env = env_name(daemon, w["id"])
        return k, env, wait_template_ready(daemon, env)

    @classmethod
    def add_kernel(cls, name, mode="", workers=1, daemon=None, checked=True, **kw):
        """create_kernel on the class's daemon (or `daemon`); unless `checked` is False, how its
        workers were started is checked at the end (see the class)."""
        k = create_kernel(daemon or cls.daemon, cls.tmp, name, mode, workers, **kw)
        if checked:
            cls._checked_kernels.append(k)
        return k

    @classmethod
    def cleanup_class(cls):
        prefix = cls.tmp
        failures = []
        for k in getattr(cls, "_checked_kernels", []):
            wrong = {pid: kind for pid, kind in launch_kinds(k.dir).items()
                     if kind != EXPECTED_KIND}
            if wrong:
                failures.append(f"workers of kernel {k.name} not {EXPECTED_KIND}: {wrong}")
        try:
            super().cleanup_class()  # stops the daemons
        except AssertionError as e:
            failures.append(str(e))
        left = marked_processes(prefix)
        # A template exits with its daemon (at end of file on its socket, if not killed).
        deadline = time.monotonic() + 5
        while template_processes(prefix) and time.monotonic() < deadline:
            time.sleep(0.05)
        templates = [p for p in template_processes(prefix) if p not in left]
        described = [f"{p}: {proc_cmdline(p)}" for p in left + templates]
        kill_all(left + templates)
        if described:
            failures.append("processes of the tests' kernels outlived their daemons "
                            "(killed now): " + "; ".join(described))
        if not h.FORK_SERVER:
            for d in cls._daemons:
                started = [ln for ln in d.log_lines() if "event=template." in ln]
                if started:
                    failures.append(f"fork_server = false, yet daemon {d.pid} ran templates: "
                                    f"{started[:3]}")
        if failures:
            raise AssertionError("\n".join(failures))

    def kernel(self, name, mode="", workers=1, daemon=None, checked=True, **kw):
        return self.add_kernel(name, mode, workers, daemon, checked, **kw)

    def cli(self, daemon, *args, expect=0):
        proc = h.run_cli("--socket", daemon.admin_socket, *args, env=h.clean_env(HOME=self.tmp))
        self.assertEqual(proc.returncode, expect,
                         f"{args}: exit {proc.returncode}\nstdout: {proc.stdout}\n"
                         f"stderr: {proc.stderr}")
        return proc

    def assertLaunchedAsExpected(self, daemon, worker):
        """The running worker was started as EXPECTED_KIND: its command line, and its log, which
        names the live template of its env it was forked from."""
        pid = worker["pid"]
        self.assertEqual(launch_kind(pid), EXPECTED_KIND, f"{pid}: {proc_cmdline(pid)}")
        template = forked_from(daemon, worker)
        if EXPECTED_KIND == "exec":
            self.assertIsNone(template, worker)
            return
        self.assertIsNotNone(template, worker_log(daemon, worker["id"]).raw[-2000:])
        env = env_name(daemon, worker["id"])
        self.assertIn(template, template_pids(daemon, env), daemon.log())


def without(doc, *fields):
    """A copy of a worker (or a {"workers": [...]} list) minus fields that change by the second."""
    if isinstance(doc, dict) and isinstance(doc.get("workers"), list):
        return dict(doc, workers=[without(w, *fields) for w in doc["workers"]])
    return {k: v for k, v in doc.items() if k not in fields}
