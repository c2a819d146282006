"""Harness for the end-to-end tests: runs the real `giskard-supervisor serve` on a temporary
state directory and a free port, and talks to it over REST (TCP) and the admin Unix socket.

Standard library only. Every wait is bounded, every subprocess has a timeout, and every daemon
started here is stopped by its pid (SIGTERM, then SIGKILL) when the test ends.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

# The binary under test: `--binary PATH` on the command line (CTest passes
# $<TARGET_FILE:giskard-supervisor>) or the GSK_SUPERVISOR_BIN environment variable.
BINARY = os.environ.get("GSK_SUPERVISOR_BIN", "")

# Generous bounds: sanitizer builds start and answer several times slower.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
HTTP_TIMEOUT = 30.0

# The Giskard Hub's kernel document, exactly as the Hub sends it.
HUB_KERNEL = {
    "name": "my-kernel",
    "pythonVersion": "3.11",
    "requestedDependencies": ["giskard[llm]>=2.14", "scikit-learn==1.3.2"],
    "frozenDependencies": "joblib==1.3.2\nnumpy==1.26.4\nscikit-learn==1.3.2",
    "type": "PROCESS",
    "version": "2.14.0",
}

# Every daemon of the tests runs offline: env builds (which start on every kernel create) then
# fail fast with "no matching distribution" instead of reaching for PyPI.
BASE_CONFIG = """
[packages]
offline = true

[builds]
max_concurrent = 1
"""

# Kernel fields that change by themselves while an env build runs, and "warnings", which only
# create and replace responses carry.
VOLATILE_FIELDS = ("status", "lastError", "updatedAt", "build", "warnings", "runningWorkers")
KERNEL_STATUSES = ("pending", "building", "ready", "failed")


def stable(kernel):
    """A kernel minus the fields an env build changes: what must stay equal over time."""
    return {k: v for k, v in kernel.items() if k not in VOLATILE_FIELDS}


READY_RE = re.compile(r"event=supervisor\.ready .*\blisten=(\S+):(\d+)")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")

# Variables of the caller's environment that would change what the daemon or the CLI does.
_SCRUBBED_ENV = ("GISKARD_SUPERVISOR_URL", "GISKARD_SUPERVISOR_TOKEN",
                 "GISKARD_SUPERVISOR_SOCKET", "STATE_DIRECTORY", "RUNTIME_DIRECTORY",
                 "NOTIFY_SOCKET", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(extra)
    return env


def main():
    """unittest.main() that first takes `--binary PATH` out of the arguments."""
    global BINARY
    argv = list(sys.argv)
    if "--binary" in argv:
        i = argv.index("--binary")
        if i + 1 >= len(argv):
            sys.exit("--binary needs a path")
        BINARY = argv[i + 1]
        del argv[i:i + 2]
    if not BINARY or not os.access(BINARY, os.X_OK):
        sys.exit("no giskard-supervisor binary: pass --binary PATH or set GSK_SUPERVISOR_BIN "
                 f"(got {BINARY!r})")
    unittest.main(argv=argv, verbosity=2)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over an AF_UNIX stream socket (the admin socket)."""

    def __init__(self, path, timeout=HTTP_TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Response:
    """A finished HTTP exchange: status, headers (case-insensitive get), raw body, JSON body."""

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

    @property
    def error_code(self):
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("code")
        return None

    def __repr__(self):
        return f"<Response {self.status} {self.raw[:300]!r}>"


def do_request(conn, method, path, body=None, headers=None):
    """Sends one request on `conn` (kept open) and reads the whole response."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    raw = resp.read()
    return Response(resp.status, resp.headers, raw)


def parse_raw_response(data):
    """(status, headers dict with lowercase names, body) of the first response in `data`."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise AssertionError(f"not an HTTP response: {data[:200]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(body)))
    return int(parts[1]), headers, body[:length]


def read_until_closed(sock, limit=1 << 20):
    """Reads until EOF, a reset, or `limit` bytes; the socket's timeout bounds each read."""
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    return data


def read_one_response(sock):
    """Reads exactly one response with a Content-Length from a kept-open socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed mid-response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, headers, _ = parse_raw_response(head + b"\r\n\r\n")
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed mid-body")
        body += chunk
    return status, headers, body[:length]


def send_streaming(port, head, chunk, count, timeout=HTTP_TIMEOUT):
    """Sends `head` then `chunk` `count` times on a new TCP connection while a second thread
    reads whatever the server answers; the memory used is one chunk, whatever the total.
    Returns (bytes received, bytes of the body sent before the server stopped reading)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    received = []
    reader = threading.Thread(target=lambda: received.append(read_until_closed(sock)),
                              daemon=True)
    sent = 0
    try:
        sock.sendall(head)
        reader.start()
        for _ in range(count):
            try:
                sock.sendall(chunk)
            except OSError:  # the server closed its side: it has answered already
                break
            sent += len(chunk)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        reader.join(timeout * 2)
        if reader.is_alive():
            raise AssertionError("the server neither answered nor closed the connection")
    finally:
        sock.close()
    return (received[0] if received else b""), sent


def raw_exchange(port, data, timeout=HTTP_TIMEOUT, half_close=False):
    """Sends raw bytes on a new connection and returns everything read until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_until_closed(sock)


class Daemon:
    """One `giskard-supervisor serve` process on `state_dir`, listening on 127.0.0.1:0."""

    def __init__(self, state_dir, admin_socket=None, config_text=None, binary=None):
        self.state_dir = state_dir
        self.admin_socket = admin_socket or os.path.join(state_dir, "admin.sock")
        self.binary = binary or BINARY
        # The config lives beside the state directory; `config_text` adds sections to BASE_CONFIG.
        self.config_path = os.path.join(os.path.dirname(state_dir.rstrip("/")),
                                        f"config-{os.path.basename(state_dir)}.toml")
        with open(self.config_path, "w") as f:
            f.write(BASE_CONFIG + (config_text or ""))
        self.proc = None
        self.port = None
        self.launch_time = None
        self.ready_time = None
        self.lines = []
        self._lines_lock = threading.Lock()
        self._ready = threading.Event()
        self._reader = None

    # --- process lifecycle -------------------------------------------------------------------

    def command(self, listen="127.0.0.1:0"):
        return [self.binary, "serve", "--state-dir", self.state_dir, "--listen", listen,
                "--admin-socket", self.admin_socket, "--config", self.config_path]

    def start(self, timeout=START_TIMEOUT, listen="127.0.0.1:0", cpu=None):
        """Starts the daemon and returns once it logged its ready line and /healthz answers."""
        self.launch(listen=listen, cpu=cpu)
        self.wait_ready(timeout)
        return self

    def launch(self, listen="127.0.0.1:0", cpu=None):
        """Starts the process and returns at once (pinned to CPU `cpu` with taskset if given)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self._lines_lock:
            self.lines = []
        self._ready.clear()
        self.port = None
        self.ready_time = None
        cmd = self.command(listen)
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd
        self.launch_time = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=clean_env())
        self._reader = threading.Thread(target=self._read_output, args=(self.proc,), daemon=True)
        self._reader.start()

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"daemon exited with {self.proc.returncode} before ready:\n"
                                     + self.log())
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"daemon not ready within {timeout}s:\n" + self.log())
        self.wait_healthy(deadline - time.monotonic())

    def _read_output(self, proc):
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lines_lock:
                self.lines.append(line)
            m = READY_RE.search(line)
            if m and not self._ready.is_set():
                self.port = int(m.group(2))
                self.ready_time = time.monotonic()
                self._ready.set()
        proc.stdout.close()

    def wait_healthy(self, timeout):
        deadline = time.monotonic() + max(timeout, 1.0)
        last = None
        while time.monotonic() < deadline:
            try:
                r = self.get("/healthz", token=None)
                if r.status == 200:
                    return
                last = r
            except OSError as e:
                last = e
            time.sleep(0.02)
        raise AssertionError(f"/healthz did not answer 200 within {timeout}s (last: {last})")

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends `sig` to the daemon's pid and returns its exit code (SIGKILL after timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"daemon did not stop within {timeout}s after {sig!r}:\n"
                                     + self.log())
        if self._reader is not None:
            self._reader.join(5)
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass

    def log(self):
        with self._lines_lock:
            return "\n".join(self.lines[-200:])

    # --- clients -----------------------------------------------------------------------------

    @property
    def token(self):
        with open(os.path.join(self.state_dir, "api-token")) as f:
            return f.read().strip()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def connection(self, timeout=HTTP_TIMEOUT):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def admin_connection(self, timeout=HTTP_TIMEOUT):
        return UnixHTTPConnection(self.admin_socket, timeout=timeout)

    def headers(self, token="default", content_type=None, extra=None):
        h = {}
        if token == "default":
            token = self.token
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if content_type is not None:
            h["Content-Type"] = content_type
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, token="default", content_type="default",
                headers=None, conn=None):
        """One request over TCP (a fresh connection unless `conn` is given)."""
        if content_type == "default":
            content_type = "application/json" if body is not None else None
        h = self.headers(token, content_type, headers)
        own = conn is None
        conn = conn or self.connection()
        try:
            return do_request(conn, method, path, body, h)
        finally:
            if own:
                conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def admin_request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        conn = self.admin_connection()
        try:
            return do_request(conn, method, path, body, h)
        finally:
            conn.close()

    def kernel_count(self):
        r = self.get("/api/v1/kernels")
        assert r.status == 200, r
        assert r.json["count"] == len(r.json["kernels"]), r
        return r.json["count"]

    def events(self, after=0, subject=None):
        path = f"/api/v1/events?after={after}&limit=1000"
        if subject:
            path += f"&subject={subject}"
        r = self.get(path)
        assert r.status == 200, r
        return r.json["events"]

    def wait_status(self, name, statuses, timeout=180):
        """Polls the kernel until its status is one of `statuses`; returns the kernel."""
        deadline = time.monotonic() + timeout
        kernel = None
        while time.monotonic() < deadline:
            r = self.get(f"/api/v1/kernels/{name}")
            assert r.status == 200, r
            kernel = r.json
            if kernel["status"] in statuses:
                return kernel
            time.sleep(0.2)
        raise AssertionError(f"kernel {name} not {statuses} within {timeout}s: {kernel}")

    def last_event_id(self):
        ids = [e["id"] for e in self.events()]
        # Pages of 1000: follow them (bounded) so that the last id is really the last.
        for _ in range(100):
            if len(ids) < 1000:
                break
            more = [e["id"] for e in self.events(after=ids[-1])]
            if not more:
                break
            ids = more
        return ids[-1] if ids else 0


def integrity_check(state_dir):
    """PRAGMA integrity_check on <state_dir>/supervisor.db (the daemon must be stopped)."""
    path = os.path.join(state_dir, "supervisor.db")
    conn = sqlite3.connect(path, timeout=5)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]


class DaemonTestCase(unittest.TestCase):
    """Base class: a temporary directory per class, daemons that are always stopped, and an
    integrity check of every state directory's database once the class is done."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gsk-e2e-")
        cls._daemons = []
        cls._state_dirs = []

    @classmethod
    def tearDownClass(cls):
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
        for state_dir in cls._state_dirs:
            if os.path.exists(os.path.join(state_dir, "supervisor.db")):
                result = integrity_check(state_dir)
                if result != ["ok"]:
                    failures.append(f"PRAGMA integrity_check on {state_dir}: {result}")
        if failures:
            raise AssertionError(f"(kept {cls.tmp}) " + "\n".join(failures))
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def new_state_dir(cls, name=None):
        path = tempfile.mkdtemp(prefix=(name or "state") + "-", dir=cls.tmp)
        cls._state_dirs.append(path)
        return path

    @classmethod
    def new_daemon(cls, state_dir=None, **kw):
        d = Daemon(state_dir or cls.new_state_dir(), **kw)
        cls._daemons.append(d)
        return d

    def assertHealthy(self, daemon):
        self.assertTrue(daemon.running(), "daemon died:\n" + daemon.log())
        r = daemon.get("/healthz", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "ok"})

    def assertError(self, resp, status, code=None):
        self.assertEqual(resp.status, status, resp)
        self.assertEqual(resp.header("Content-Type"), "application/json", resp)
        self.assertIsInstance(resp.json, dict, resp)
        err = resp.json.get("error")
        self.assertIsInstance(err, dict, resp)
        self.assertIsInstance(err.get("message"), str, resp)
        self.assertTrue(err["message"], resp)
        self.assertIsInstance(err.get("details"), dict, resp)
        if code is not None:
            self.assertEqual(err.get("code"), code, resp)
