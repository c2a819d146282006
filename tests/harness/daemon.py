"""The daemon under test: one `giskard-supervisor serve` process on a temporary state directory,
listening on 127.0.0.1:0, with its output collected; REST over TCP and the admin socket; the CLI.

Every wait is bounded, and a daemon is only ever signalled by its pid (SIGTERM, then SIGKILL)."""

import http.client
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time

from . import settings
from .documents import BASE_CONFIG, with_fork_server
from .http_io import UnixHTTPConnection, do_request
from .settings import (BUILD_TIMEOUT, CLI_TIMEOUT, HTTP_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT,
                       clean_env)

READY_RE = re.compile(r"event=supervisor\.ready .*\blisten=(\S+):(\d+)")


class Daemon:
    """One `giskard-supervisor serve` on `state_dir`, listening on 127.0.0.1:0, its admin socket
    in the state directory unless `admin_socket` says otherwise. `config_text` is the whole
    config file (written beside the state directory, as <state_dir>.toml); the default is
    BASE_CONFIG. With GSK_E2E_FORK_SERVER=0 (settings.FORK_SERVER false) the file also says
    `[workers] fork_server = false` unless config_text sets fork_server. The output of the
    current run is collected in `lines`."""

    def __init__(self, state_dir, config_text=BASE_CONFIG, admin_socket=None, binary=None):
        self.state_dir = state_dir
        self.admin_socket = admin_socket or os.path.join(state_dir, "admin.sock")
        self.binary = binary or settings.BINARY
        self.config_path = state_dir.rstrip("/") + ".toml"
        if not settings.FORK_SERVER:
            config_text = with_fork_server(config_text, False)
        with open(self.config_path, "w") as f:
            f.write(config_text)
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
        raise AssertionError(f"/healthz did not answer 200 within {timeout}s (last: {last}):\n"
                             + self.log())

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
        with self._lines_lock:
            return "\n".join(self.lines[-last:])

    def log_lines(self):
        with self._lines_lock:
            return list(self.lines)

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
                headers=None, conn=None, timeout=HTTP_TIMEOUT):
        """One request over TCP (a fresh connection unless `conn` is given), with the daemon's
        token unless `token` says otherwise (None: no Authorization header)."""
        if content_type == "default":
            content_type = "application/json" if body is not None else None
        h = self.headers(token, content_type, headers)
        own = conn is None
        conn = conn or self.connection(timeout)
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
        """One request over the admin socket (no token needed there)."""
        h = dict(headers or {})
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        conn = self.admin_connection()
        try:
            return do_request(conn, method, path, body, h)
        finally:
            conn.close()

    # --- kernels and events ------------------------------------------------------------------

    def kernel_count(self):
        r = self.get("/api/v1/kernels")
        assert r.status == 200, r
        assert r.json["count"] == len(r.json["kernels"]), r
        return r.json["count"]

    def build_log(self, name):
        """The kernel's build log as text (or a description of the answer if there is none)."""
        r = self.get(f"/api/v1/kernels/{name}/build-log")
        return r.raw.decode("utf-8", "replace") if r.status == 200 else f"<{r}>"

    def wait_status(self, name, statuses=("ready", "failed"), timeout=BUILD_TIMEOUT, seen=None):
        """Polls the kernel until its status is one of `statuses`; returns the kernel. `seen`, a
        list, collects every distinct status observed on the way."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(f"/api/v1/kernels/{name}")
            assert r.status == 200, r
            k = r.json
            if seen is not None and (not seen or seen[-1] != k["status"]):
                seen.append(k["status"])
            if k["status"] in statuses:
                return k
            if time.monotonic() > deadline:
                raise AssertionError(f"kernel {name} not {statuses} within {timeout}s: {k}\n"
                                     + self.build_log(name)[-3000:] + "\n" + self.log())
            if not self.running():
                raise AssertionError("daemon died:\n" + self.log())
            time.sleep(0.05)

    def events(self, after=0, subject=None):
        path = f"/api/v1/events?after={after}&limit=1000"
        if subject:
            path += f"&subject={subject}"
        r = self.get(path)
        assert r.status == 200, r
        return r.json["events"]

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


def run_cli(*args, env=None, input=None, timeout=CLI_TIMEOUT):
    """Runs the `giskard-supervisor` CLI (the binary under test) with `args`; `env` is its whole
    environment (default: clean_env()). Returns the CompletedProcess (text output)."""
    return subprocess.run([settings.BINARY, *args], capture_output=True, text=True,
                          input=input, timeout=timeout,
                          env=clean_env() if env is None else env,
                          stdin=None if input is not None else subprocess.DEVNULL)


def integrity_check(state_dir):
    """PRAGMA integrity_check on <state_dir>/supervisor.db (the daemon must be stopped)."""
    path = os.path.join(state_dir, "supervisor.db")
    conn = sqlite3.connect(path, timeout=5)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]
