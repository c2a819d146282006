"""Unmanaged mode: `giskard-worker worker start|stop|logs`, run by a user in their own Python
environment. The worker dials the supervisor over a WebSocket and authenticates with an API key.
Home: $GSK_HOME (default ~/giskard-home); pid files and logs in $GSK_HOME/run/.
"""

import logging
import os
import platform
import re
import signal
import sys
import time
import uuid
from typing import Callable, Dict, List, MutableMapping, Optional
from urllib.parse import urlsplit, urlunsplit

from giskard_worker_shim import __version__, daemon, websocket
from giskard_worker_shim.protocol import ConnectionClosed
from giskard_worker_shim.worker import Rejected, Worker, WorkerOptions

log = logging.getLogger("giskard_worker_shim")

CONNECT_PATH = "/api/v1/workers/connect"
CONNECTED_LINE = "Connected to Giskard server."
DEFAULT_URL = "http://localhost:40051"
STOP_WAIT_SECONDS = 10.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SCHEMES = {"http": "ws", "ws": "ws", "https": "wss", "wss": "wss"}


class UsageError(Exception):
    """A user mistake; the message says what to do."""


def home_dir(environ: MutableMapping[str, str]) -> str:
    # Absolute, because the daemon changes its working directory to /.
    return os.path.abspath(os.path.expanduser(environ.get("GSK_HOME") or "~/giskard-home"))


def run_dir(environ: MutableMapping[str, str]) -> str:
    return os.path.join(home_dir(environ), "run")


def pid_path(environ: MutableMapping[str, str], name: str) -> str:
    return os.path.join(run_dir(environ), "worker-%s.pid" % name)


def log_path(environ: MutableMapping[str, str], name: str) -> str:
    return os.path.join(run_dir(environ), "worker-%s.log" % name)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError("invalid worker name %r: use 1 to 64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit" % name)
    return name


def endpoint_url(url: str) -> str:
    """Maps the user's server URL (http, https, ws or wss) to the WebSocket endpoint."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise UsageError("invalid server URL %r: expected http://HOST:PORT (or https, ws, wss)"
                         % url)
    path = parts.path.rstrip("/")
    if not path.endswith(CONNECT_PATH):
        path += CONNECT_PATH
    return urlunsplit((_SCHEMES[parts.scheme], parts.netloc, path, parts.query, ""))


def _dialer(endpoint: str, key: str,
            hf_token: Optional[str]) -> Callable[[], websocket.WebSocketConnection]:
    headers = {"Authorization": "Bearer " + key}
    if hf_token:
        # A private Hugging Face Space lets the request through with this cookie.
        headers["Cookie"] = "spaces-jwt=" + hf_token

    def dial() -> websocket.WebSocketConnection:
        try:
            return websocket.connect(endpoint, headers, timeout=10.0)
        except websocket.HandshakeError as e:
            if e.status in (401, 403):
                raise Rejected("%s (check the API key given with -k or GSK_API_KEY)" % e) \
                    from None
            raise ConnectionClosed("WebSocket handshake with %s failed: %s" % (endpoint, e)) \
                from None
    return dial


def start(environ: MutableMapping[str, str], name: str, url: str, key: Optional[str],
          hf_token: Optional[str], detach: bool) -> int:
    check_name(name)
    endpoint = endpoint_url(url)
    # Read the secrets, then keep them from model code and its subprocesses.
    key = key or environ.get("GSK_API_KEY")
    hf_token = hf_token or environ.get("GSK_HF_TOKEN")
    environ.pop("GSK_API_KEY", None)
    environ.pop("GSK_HF_TOKEN", None)
    if not key:
        raise UsageError("an API key is required: pass -k KEY or set GSK_API_KEY")
    os.makedirs(run_dir(environ), exist_ok=True)
    pid_file = pid_path(environ, name)
    owner = daemon.claim_pid_file(pid_file)
    if owner is not None:
        raise UsageError("worker %r is already running (pid %d); stop it with "
                         "`giskard-worker worker stop --name %s`" % (name, owner, name))
    if detach:
        code = daemon.daemonize(log_path(environ, name), pid_file)
        if code is not None:  # The original process: the daemon reported.
            if code != 0:
                daemon.remove_file(pid_file)
            return code
    try:
        return _run(endpoint, name, key, hf_token, environ)
    finally:
        daemon.remove_pid_file_if_mine(pid_file)


def _run(endpoint: str, name: str, key: str, hf_token: Optional[str],
         environ: MutableMapping[str, str]) -> int:
    log.info("starting worker %r for %s: Python %s at %s, shim %s, pid %d, home %s", name,
             endpoint, platform.python_version(), sys.executable, __version__, os.getpid(),
             home_dir(environ))

    def on_welcome(welcome: Dict[str, object]) -> None:
        del welcome
        print(CONNECTED_LINE, flush=True)

    options = WorkerOptions(uuid.uuid4().hex, name=name, grace_seconds=None, backoff_max=10.0,
                            peer="Giskard server")
    return Worker(_dialer(endpoint, key, hf_token), options, on_welcome=on_welcome).run()


def _names_with_files(environ: MutableMapping[str, str], suffix: str) -> List[str]:
    try:
        entries = os.listdir(run_dir(environ))
    except FileNotFoundError:
        return []
    pattern = re.compile(r"^worker-(.+)\.%s$" % re.escape(suffix))
    return sorted(m.group(1) for m in map(pattern.match, entries) if m)


def _pick(environ: MutableMapping[str, str], name: Optional[str], suffix: str) -> Optional[str]:
    """The named worker, or the only one with a .pid/.log file; None if there is none."""
    if name:
        return check_name(name)
    names = _names_with_files(environ, suffix)
    if len(names) > 1:
        raise UsageError("several workers found (%s): pass --name NAME%s"
                         % (", ".join(names), " or -a" if suffix == "pid" else ""))
    return names[0] if names else None


def stop(environ: MutableMapping[str, str], name: Optional[str], stop_all: bool) -> int:
    names = _names_with_files(environ, "pid") if stop_all else [_pick(environ, name, "pid")]
    names = [n for n in names if n]
    if not names:
        print("No worker is running.")
        return 0
    return max(_stop_one(environ, n) for n in names)


def _stop_one(environ: MutableMapping[str, str], name: str) -> int:
    pid_file = pid_path(environ, name)
    pid = daemon.read_pid(pid_file)
    if pid is None or not daemon.is_our_worker(pid):
        daemon.remove_file(pid_file)
        print("Worker %s is not running." % name)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while daemon.is_our_worker(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if daemon.is_our_worker(pid):
        print("Worker %s (pid %d) did not stop within %g s; it may still be finishing a request."
              % (name, pid, STOP_WAIT_SECONDS), file=sys.stderr)
        return 1
    if daemon.read_pid(pid_file) == pid:
        daemon.remove_file(pid_file)
    print("Stopped worker %s (pid %d)." % (name, pid))
    return 0


def logs(environ: MutableMapping[str, str], name: Optional[str], lines: int,
         follow: bool) -> int:
    picked = _pick(environ, name, "log")
    path = log_path(environ, picked) if picked else None
    if path is None or not os.path.exists(path):
        raise UsageError("no log file %s (only workers started with -d write one)"
                         % (path or os.path.join(run_dir(environ), "worker-NAME.log")))
    for line in daemon.tail(path, lines):
        sys.stdout.write(line)
    sys.stdout.flush()
    if not follow:
        return 0
    with open(path, "r", errors="replace") as f:
        f.seek(0, os.SEEK_END)
        try:
            while True:
                chunk = f.read()
                if chunk:
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
                else:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            return 0
