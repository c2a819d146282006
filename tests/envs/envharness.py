"""Harness for the managed-environment integration tests: the real `giskard-supervisor serve` on
a temporary state directory, the test wheels of tests/wheels/make_wheels.py, a local
PEP 503 index (tests/wheels/local_index.py) that can be slowed down or held, and helpers to look
into the environments the daemon builds.

Standard library only. Every wait is bounded, every subprocess has a timeout, and the only
processes ever signalled are the daemons started here and, when a daemon was killed with
SIGKILL, build processes it started whose command line names this test's temporary directory.
"""

import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "wheels"))

import local_index  # noqa: E402
import make_wheels  # noqa: E402

# The binary under test: `--binary PATH` (CTest passes $<TARGET_FILE:giskard-supervisor>) or the
# GSK_SUPERVISOR_BIN environment variable.
BINARY = os.environ.get("GSK_SUPERVISOR_BIN", "")

START_TIMEOUT = 60.0    # daemon start (it probes every interpreter it finds)
STOP_TIMEOUT = 30.0     # SIGTERM to exit
HTTP_TIMEOUT = 30.0
BUILD_TIMEOUT = 240.0   # one env build here takes 1-3 s; sanitizer builds and slow disks more
PROC_TIMEOUT = 60.0     # one subprocess run by a test (env python, venv, pip)
HOLD_MAX = 120.0        # longest a held index request waits for release
PYENV_ROOT = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def take_binary_arg(argv):
    """Takes `--binary PATH` out of argv (a list, changed in place) into BINARY; exits when
    there is no executable binary either way."""
    global BINARY
    if "--binary" in argv:
        i = argv.index("--binary")
        if i + 1 >= len(argv):
            sys.exit("--binary needs a path")
        BINARY = os.path.abspath(argv[i + 1])
        del argv[i:i + 2]
    if not BINARY or not os.access(BINARY, os.X_OK):
        sys.exit("no giskard-supervisor binary: pass --binary PATH or set GSK_SUPERVISOR_BIN "
                 f"(got {BINARY!r})")
    return argv


def main():
    """unittest.main() that first takes `--binary PATH` out of the arguments."""
    unittest.main(argv=take_binary_arg(list(sys.argv)), verbosity=2)


# --- the daemon ---------------------------------------------------------------------------------

_SCRUBBED_ENV = ("GISKARD_SUPERVISOR_URL", "GISKARD_SUPERVISOR_TOKEN",
                 "GISKARD_SUPERVISOR_SOCKET", "STATE_DIRECTORY", "RUNTIME_DIRECTORY",
                 "NOTIFY_SOCKET", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID")
READY_RE = re.compile(r"event=supervisor\.ready .*\blisten=(\S+):(\d+)")


class Response:
    """A finished HTTP exchange: status, headers, raw body, JSON body (None if not JSON)."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def __repr__(self):
        return f"<Response {self.status} {self.raw[:500]!r}>"


class Daemon:
    """One `giskard-supervisor serve` on `state_dir` with the config text given (written
    beside the state directory), listening on 127.0.0.1:0. Its output is collected in `lines`."""

    def __init__(self, state_dir, config_text, binary=None):
        self.state_dir = state_dir
        self.admin_socket = os.path.join(state_dir, "admin.sock")
        self.binary = binary or BINARY
        self.config_path = state_dir.rstrip("/") + ".toml"
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.proc = None
        self.port = None
        self.lines = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._reader = None

    def start(self, timeout=START_TIMEOUT):
        """Starts the daemon; returns once it logged its ready line and /healthz answers."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._ready.clear()
        self.port = None
        cmd = [self.binary, "serve", "--state-dir", self.state_dir, "--listen", "127.0.0.1:0",
               "--admin-socket", self.admin_socket, "--config", self.config_path]
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"daemon exited with {self.proc.returncode} before ready:"
                                     "\n" + self.log())
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"daemon not ready within {timeout}s:\n" + self.log())
        while True:
            try:
                if self.get("/healthz").status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("/healthz did not answer 200:\n" + self.log())
            time.sleep(0.02)

    def _read(self, proc):
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines.append(line)
            m = READY_RE.search(line)
            if m and not self._ready.is_set():
                self.port = int(m.group(2))
                self._ready.set()
        proc.stdout.close()

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait (SIGKILL after `timeout`); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"daemon did not stop within {timeout}s:\n" + self.log())
        if self._reader is not None:
            self._reader.join(5)
        return self.proc.returncode

    def kill(self):
        """SIGKILL (kill -9) and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        if self._reader is not None:
            self._reader.join(5)

    def log(self, last=200):
        with self._lock:
            return "\n".join(self.lines[-last:])

    def log_lines(self):
        with self._lock:
            return list(self.lines)

    @property
    def token(self):
        with open(os.path.join(self.state_dir, "api-token")) as f:
            return f.read().strip()

    def request(self, method, path, body=None, timeout=HTTP_TIMEOUT):
        headers = {}
        if path != "/healthz":
            headers["Authorization"] = "Bearer " + self.token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body)

    def events(self, subject):
        r = self.get(f"/api/v1/events?subject={subject}&limit=1000")
        assert r.status == 200, r
        return r.json["events"]


# --- known daemon bugs -------------------------------------------------------------------------

STRICT = os.environ.get("GSK_ENVTESTS_STRICT") == "1"


def known_bug(description):
    """Marks a test that fails because of a daemon bug reported to the team: it runs as an
    expected failure (so that the suite stays usable) until the bug is fixed; then it passes,
    which unittest reports as an "unexpected success" and a failed run: remove the marker.
    GSK_ENVTESTS_STRICT=1 runs these tests as ordinary ones."""
    def decorate(test):
        test.known_bug = description
        return test if STRICT else unittest.expectedFailure(test)
    return decorate


# --- configuration and documents ---------------------------------------------------------------

def toml_str(value):
    return json.dumps(str(value))  # a TOML basic string for the paths and URLs used here


def config_toml(find_links=None, offline=False, index_url=None, timeout_seconds=None,
                max_concurrent=None, disk_budget_mb=None, interpreters=None, cache_dir=None):
    lines = ["[packages]"]
    if offline:
        lines.append("offline = true")
    if index_url:
        lines.append(f"index_url = {toml_str(index_url)}")
    if find_links:
        lines.append("find_links = [" + ", ".join(toml_str(f) for f in find_links) + "]")
    if cache_dir:
        lines.append(f"cache_dir = {toml_str(cache_dir)}")
    lines.append("[builds]")
    if timeout_seconds is not None:
        lines.append(f"timeout_seconds = {int(timeout_seconds)}")
    if max_concurrent is not None:
        lines.append(f"max_concurrent = {int(max_concurrent)}")
    if disk_budget_mb is not None:
        lines.append(f"disk_budget_mb = {int(disk_budget_mb)}")
    if interpreters:
        lines.append("[python]")
        lines.append("interpreters = [" + ", ".join(toml_str(p) for p in interpreters) + "]")
    return "\n".join(lines) + "\n"


def kernel_doc(name, python, requested=(), frozen=None, workers=0):
    """A managed kernel document. No workers by default: these tests are about environments,
    and a ready kernel with workers would start worker processes (tests/e2e/test_workers.py)."""
    doc = {"name": name, "pythonVersion": python, "requestedDependencies": list(requested),
           "type": "PROCESS", "version": "2.14.0", "workers": workers}
    if frozen is not None:
        doc["frozenDependencies"] = frozen
    return doc


# --- wheels and indexes ------------------------------------------------------------------------

def build_wheels(out_dir, extra=0):
    """The make_wheels.py set (plus gsk-pkg-000.. with extra); returns the directory."""
    make_wheels.build_all(out_dir, extra=extra)
    return out_dir


def write_big_wheel(out_dir, name, version, size_bytes, seed=0):
    """A py3-none-any wheel holding `size_bytes` of incompressible data (stored, not deflated):
    installs to about that many bytes, to exercise the disk budget."""
    mod = make_wheels.dist_name(name)
    info = f"{mod}-{version}.dist-info"
    data = random.Random(f"{name}-{version}-{seed}").randbytes(size_bytes)
    members = [
        (f"{mod}/__init__.py", f'__version__ = "{version}"\n'.encode()),
        (f"{mod}/blob.bin", data),
        (f"{info}/METADATA", make_wheels.metadata_text(name, version, []).encode()),
        (f"{info}/WHEEL", make_wheels.wheel_text().encode()),
        (f"{info}/top_level.txt", (mod + "\n").encode()),
    ]
    record = "".join(f"{p},{make_wheels.record_hash(d)},{len(d)}\n" for p, d in members)
    members.append((f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode()))
    path = os.path.join(out_dir, f"{mod}-{version}-{make_wheels.TAG}.whl")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for arcname, payload in members:
            zi = zipfile.ZipInfo(arcname, date_time=make_wheels.ZIP_EPOCH)
            zi.external_attr = 0o100644 << 16
            zi.create_system = 3
            zf.writestr(zi, payload)
    return path


class _ControlledHandler(local_index.IndexHandler):
    """local_index's handler, but every request first goes through server.admit()."""

    def _route(self, head_only):
        self.server.admit(self.path)
        super()._route(head_only)

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # pip (or its process) went away while we held its request


class ControlledIndex(local_index.IndexServer):
    """A local index whose answers can be delayed (`delay` seconds each) or held until
    release(). `requests` lists the paths asked for; `first_request` is set by the first one.
    pip gives up on a read after 15 s and retries, so hold requests for less than that unless
    the test wants the retries."""

    def __init__(self, directory, delay=0.0, held=False):
        super().__init__(directory)
        self.RequestHandlerClass = _ControlledHandler
        self.delay = delay
        self._open = threading.Event()
        if not held:
            self._open.set()
        self._lock = threading.Lock()
        self.requests = []
        self.first_request = threading.Event()

    def admit(self, path):
        with self._lock:
            self.requests.append(path)
        self.first_request.set()
        if self.delay:
            time.sleep(self.delay)
        self._open.wait(HOLD_MAX)

    def hold(self):
        self._open.clear()

    def release(self):
        self._open.set()

    def wait_for_request(self, timeout):
        return self.first_request.wait(timeout)

    def stop(self):
        self.release()
        super().stop()


def closed_port():
    """A port on 127.0.0.1 where nothing listens (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- interpreters ------------------------------------------------------------------------------

def minor_of(version):
    return ".".join(version.split(".")[:2])


def usable_minors(daemon):
    """{"3.11": path, ...}: the first usable interpreter of each minor version, as the daemon
    discovered them (GET /api/v1/status), in the daemon's order of preference."""
    r = daemon.get("/api/v1/status")
    assert r.status == 200, r
    found = {}
    for it in r.json.get("interpreters", []):
        if it.get("usable") and it.get("version"):
            found.setdefault(minor_of(it["version"]), it["path"])
    return found


def preferred_minor(minors):
    """The minor version of the Python running the tests if the daemon can use it, else the
    newest one it can use; None when there is none."""
    mine = "%d.%d" % sys.version_info[:2]
    if mine in minors:
        return mine
    if not minors:
        return None
    return max(minors, key=lambda m: tuple(int(p) for p in m.split(".")))


def pyenv_pythons():
    """{minor: path} of the pyenv interpreters present on this machine (maybe none)."""
    out = {}
    versions = os.path.join(PYENV_ROOT, "versions")
    try:
        names = sorted(os.listdir(versions))
    except OSError:
        return out
    for name in names:
        if not re.fullmatch(r"3\.\d+\.\d+", name):
            continue
        python = os.path.join(versions, name, "bin", "python3")
        if os.access(python, os.X_OK):
            out[minor_of(name)] = python
    return out


# --- processes and environments ----------------------------------------------------------------

def processes_mentioning(text):
    """[(pid, argv)] of live processes (not zombies) whose command line contains `text`."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                raw = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        state = stat[stat.rfind(b")") + 2:][:1]
        if state == b"Z" or not raw:
            continue
        argv = [a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0")]
        if any(text in a for a in argv):
            found.append((int(entry), argv))
    return found


def start_time(pid):
    """The process's start time (clock ticks since boot), None when it is gone or a zombie:
    with the pid, what identifies a process (pids are reused)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    return None if fields[0] == b"Z" else int(fields[19])


def alive(processes):
    """The (pid, start time) pairs of `processes` that still run."""
    return [(pid, t) for pid, t in processes if t is not None and start_time(pid) == t]


def wait_gone_processes(processes, timeout):
    """Waits until none of the (pid, start time) pairs runs; returns those still running."""
    deadline = time.monotonic() + timeout
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(processes)


def kill_processes(processes):
    """SIGKILLs the process groups of the (pid, start time) pairs that still run (processes
    this test caused to exist: build processes of a daemon it killed)."""
    for pid, t in alive(processes):
        try:
            pgid = os.getpgid(pid)
            if pgid != os.getpgid(0) and start_time(pid) == t:
                os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


def wait_no_process_mentioning(text, timeout):
    deadline = time.monotonic() + timeout
    while True:
        left = processes_mentioning(text)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def kill_leftovers(text):
    """SIGKILLs processes whose command line names `text` (a path inside this test's temporary
    directory, so only processes this test caused to exist) and their process groups."""
    for pid, _ in processes_mentioning(text):
        try:
            pgid = os.getpgid(pid)
            if pgid != os.getpgid(0):
                os.killpg(pgid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def run_in_env(env_dir, code, timeout=PROC_TIMEOUT):
    """Runs `code` with ENV/bin/python -I; returns stdout (stripped); raises on failure."""
    python = os.path.join(env_dir, "bin", "python")
    p = subprocess.run([python, "-I", "-c", code], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout,
                       env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
    if p.returncode != 0:
        raise AssertionError(f"{python} -c {code!r} exited {p.returncode}:\n{p.stdout}")
    return p.stdout.strip()


DISTRIBUTIONS_CODE = (
    "import json, importlib.metadata as m; "
    "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version "
    "for d in m.distributions()}))")


def env_distributions(env_dir):
    """{normalized name: version} of what is installed in the env."""
    return json.loads(run_in_env(env_dir, DISTRIBUTIONS_CODE))


# --- the test case base ------------------------------------------------------------------------

class EnvTestCase(unittest.TestCase):
    """A temporary directory per class (wheels, state dirs, configs), daemons that are always
    stopped, indexes that are always closed, leftover build processes checked at the end."""

    EXTRA_WHEELS = 12  # gsk-pkg-000..: one per test keeps the tests' env hashes apart

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gsk-envs-")
        cls._daemons = []
        cls._servers = []
        # A class cleanup runs even when setUpClass fails or skips half-way.
        cls.addClassCleanup(cls._cleanup)
        cls.wheels = build_wheels(os.path.join(cls.tmp, "wheels"), extra=cls.EXTRA_WHEELS)

    @classmethod
    def pick_python(cls, daemon):
        """The Python version the tests of this class build with (see preferred_minor), or
        SkipTest when the daemon found no usable interpreter."""
        minors = usable_minors(daemon)
        py = preferred_minor(minors)
        if py is None:
            raise unittest.SkipTest("the daemon found no usable Python interpreter")
        return py

    @classmethod
    def _cleanup(cls):
        failures = []
        for d in cls._daemons:
            if d.running():
                try:
                    rc = d.stop()
                except AssertionError as e:
                    failures.append(str(e))
                    continue
                if rc != 0:
                    failures.append(f"daemon pid {d.pid} exited with {rc}:\n{d.log()}")
        for s in cls._servers:
            s.stop()
        left = wait_no_process_mentioning(cls.tmp, 10)
        if left:
            failures.append(f"processes still running under {cls.tmp}: {left}")
            kill_leftovers(cls.tmp)
        if failures:
            raise AssertionError(f"(kept {cls.tmp}) " + "\n".join(failures))
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def new_dir(cls, name):
        return tempfile.mkdtemp(prefix=name + "-", dir=cls.tmp)

    @classmethod
    def start_daemon(cls, config_text, state_dir=None):
        d = Daemon(state_dir or cls.new_dir("state"), config_text)
        cls._daemons.append(d)
        d.start()
        return d

    @classmethod
    def start_index(cls, directory=None, delay=0.0, held=False):
        server = ControlledIndex(directory or cls.wheels, delay=delay, held=held).start()
        cls._servers.append(server)
        return server

    @classmethod
    def offline_config(cls, **kw):
        return config_toml(find_links=[cls.wheels], offline=True, **kw)

    # --- REST helpers --------------------------------------------------------------------------

    def create(self, daemon, doc, expect=(201,)):
        r = daemon.post("/api/v1/kernels", doc)
        self.assertIn(r.status, expect, r)
        return r.json

    def kernel(self, daemon, name):
        r = daemon.get(f"/api/v1/kernels/{name}")
        self.assertEqual(r.status, 200, r)
        return r.json

    def delete(self, daemon, name):
        r = daemon.request("DELETE", f"/api/v1/kernels/{name}")
        self.assertEqual(r.status, 200, r)

    def wait_status(self, daemon, name, statuses=("ready", "failed"), timeout=BUILD_TIMEOUT,
                    seen=None):
        """Polls until the kernel's status is in `statuses`; returns the kernel. `seen`, a list,
        collects every distinct status observed on the way."""
        deadline = time.monotonic() + timeout
        while True:
            k = self.kernel(daemon, name)
            if seen is not None and (not seen or seen[-1] != k["status"]):
                seen.append(k["status"])
            if k["status"] in statuses:
                return k
            if time.monotonic() > deadline:
                self.fail(f"kernel {name} still {k['status']} after {timeout}s: {k}\n"
                          + self.build_log(daemon, name)[-3000:] + "\n" + daemon.log())
            if not daemon.running():
                self.fail("daemon died:\n" + daemon.log())
            time.sleep(0.05)

    def wait_ready(self, daemon, name, timeout=BUILD_TIMEOUT):
        k = self.wait_status(daemon, name, timeout=timeout)
        self.assertEqual(k["status"], "ready",
                         f"{k}\n--- build log ---\n{self.build_log(daemon, name)[-4000:]}")
        self.assertIsNone(k["lastError"], k)
        return k

    def wait_failed(self, daemon, name, timeout=BUILD_TIMEOUT):
        k = self.wait_status(daemon, name, timeout=timeout)
        self.assertEqual(k["status"], "failed", k)
        self.assertIsInstance(k["lastError"], str, k)
        self.assertTrue(k["lastError"], k)
        return k

    def build_log(self, daemon, name):
        r = daemon.get(f"/api/v1/kernels/{name}/build-log")
        return r.raw.decode("utf-8", "replace") if r.status == 200 else f"<{r}>"

    def env_events(self, daemon, env_hash, kind=None):
        events = daemon.events("env/" + env_hash)
        return [e for e in events if kind is None or e["kind"] == kind]

    def env_dir(self, daemon, env_hash):
        return os.path.join(daemon.state_dir, "envs", env_hash[:32])

    def wait_gone(self, path, timeout=10.0):
        deadline = time.monotonic() + timeout
        while os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        return not os.path.exists(path)
