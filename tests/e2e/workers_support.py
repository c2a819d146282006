"""Shared by test_workers.py: the misbehaving-worker sitecustomize, kernels and workers over
REST, and WorkersTestCase, whose classes leave no process behind."""

import os
import re
import tempfile
import urllib.parse

import harness as h  # tests/ is on sys.path (the test file put it there)
from harness import alive, kill_all, other_pids, proc_cmdline, proc_environ, wait_for

RUNNING_TIMEOUT = 45  # launch to "running"
SHIM_PYPROJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                              "worker-shim", "pyproject.toml")

# Imported by every worker of these tests (PYTHONPATH), at interpreter start-up.
SITECUSTOMIZE = r'''
"""Test-only sitecustomize: makes a worker misbehave at start-up, before the shim runs, as
E2E_MISBEHAVE says. Every start leaves E2E_TEST_DIR/started-<pid> holding its time and mode."""
import os
import sys
import time

_mode = os.environ.get("E2E_MISBEHAVE") or os.environ.get("GSK_TEST_MISBEHAVE") or ""
_dir = os.environ.get("E2E_TEST_DIR") or os.environ.get("GSK_TEST_DIR") or ""


def _note(name, text):
    if _dir:
        with open(os.path.join(_dir, name), "w") as f:
            f.write(text)


_note("started-%d" % os.getpid(), "%r %s\n" % (time.time(), _mode))

if _mode == "crash":
    os._exit(3)
elif _mode == "ignore-sigterm":
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _real_signal = signal.signal

    def _signal(signum, handler):
        if signum == signal.SIGTERM:
            return signal.SIG_IGN  # keep ignoring it, whatever the shim installs
        return _real_signal(signum, handler)
    signal.signal = _signal
elif _mode == "grandchild":
    import subprocess
    _child = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL)
    _note("grandchild-%d.pid" % os.getpid(), "%d\n" % _child.pid)
elif _mode == "never-register":
    while True:
        time.sleep(3600)
elif _mode == "hog":
    import resource
    import traceback
    _soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if _soft == resource.RLIM_INFINITY:
        # Without a limit the allocation would take the machine's memory: refuse.
        sys.stderr.write("hog: no RLIMIT_AS is set; not allocating\n")
        sys.stderr.flush()
        os._exit(99)
    try:
        _hog = bytearray(_soft * 4)
    except MemoryError:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(98)  # the allocation succeeded despite the limit
'''


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


def launches(test_dir):
    """[(time, pid)] of every interpreter start of the kernel's workers, oldest first."""
    out = []
    for name in os.listdir(test_dir):
        if name.startswith("started-"):
            with open(os.path.join(test_dir, name)) as f:
                out.append((float(f.read().split()[0]), int(name[len("started-"):])))
    return sorted(out)


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


def create_kernel(daemon, tmp, name, mode="", workers=1, extra_env=None):
    """Creates a package-less kernel whose workers misbehave as `mode` says; waits until ready."""
    site = os.path.join(tmp, "site")
    if not os.path.exists(os.path.join(site, "sitecustomize.py")):
        os.makedirs(site, exist_ok=True)
        with open(os.path.join(site, "sitecustomize.py"), "w") as f:
            f.write(SITECUSTOMIZE)
    test_dir = tempfile.mkdtemp(prefix=f"kernel-{name}-", dir=tmp)
    env = {"PYTHONPATH": site, "E2E_TEST_DIR": test_dir}
    if mode:
        env["E2E_MISBEHAVE"] = mode
    env.update(extra_env or {})
    doc = {"name": name, "pythonVersion": "3.11", "requestedDependencies": [],
           "type": "PROCESS", "version": "1", "workers": workers, "env": env}
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


class WorkersTestCase(h.DaemonTestCase):
    """A daemon per class (started with BASE_CONFIG + CONFIG) unless SHARED_DAEMON is False.
    When the class ends, no process of its kernels may be left: leftovers are killed by pid and
    reported."""

    CONFIG = ""
    SHARED_DAEMON = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.daemon = (cls.new_daemon(config_text=h.BASE_CONFIG + cls.CONFIG).start()
                      if cls.SHARED_DAEMON else None)

    @classmethod
    def cleanup_class(cls):
        prefix = cls.tmp
        try:
            super().cleanup_class()
        finally:
            left = marked_processes(prefix)
            described = [f"{p}: {proc_cmdline(p)}" for p in left]
            kill_all(left)
            if left:
                raise AssertionError("processes of the tests' kernels outlived their daemons "
                                     "(killed now): " + "; ".join(described))

    def kernel(self, name, mode="", workers=1, daemon=None, **kw):
        return create_kernel(daemon or self.daemon, self.tmp, name, mode, workers, **kw)

    def cli(self, daemon, *args, expect=0):
        proc = h.run_cli("--socket", daemon.admin_socket, *args, env=h.clean_env(HOME=self.tmp))
        self.assertEqual(proc.returncode, expect,
                         f"{args}: exit {proc.returncode}\nstdout: {proc.stdout}\n"
                         f"stderr: {proc.stderr}")
        return proc


def without(doc, *fields):
    """A copy of a worker (or a {"workers": [...]} list) minus fields that change by the second."""
    if isinstance(doc, dict) and isinstance(doc.get("workers"), list):
        return dict(doc, workers=[without(w, *fields) for w in doc["workers"]])
    return {k: v for k, v in doc.items() if k not in fields}
