"""Managed mode: the supervisor starts `python -m giskard_worker_shim serve-managed` in a
kernel's virtualenv with its settings in environment variables, or forks the worker from the
virtualenv's template (template.py), which hands the same settings over directly; either way
the worker dials back over the supervisor's Unix socket.
"""

import logging
import os
import platform
import socket
import sys
from typing import Dict, MutableMapping, NamedTuple, Optional

from giskard_worker_shim import __version__
from giskard_worker_shim.dispatch import Dispatcher
from giskard_worker_shim.protocol import FramedSocket
from giskard_worker_shim.worker import EXIT_USAGE, Worker, WorkerOptions

log = logging.getLogger("giskard_worker_shim")

SEND_TIMEOUT_SECONDS = 30.0


def _number(environ: MutableMapping[str, str], name: str, default: float,
            allow_zero: bool) -> float:
    raw = environ.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0 or (value == 0 and not allow_zero) or value != value:
        raise ValueError("%s=%r is not a %s number of seconds"
                         % (name, raw, "non-negative" if allow_zero else "positive"))
    return value


class Settings(NamedTuple):
    socket_path: str
    worker_id: str
    token: str
    heartbeat_seconds: float
    grace_seconds: float


def _required(environ: MutableMapping[str, str], name: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise ValueError("%s is not set: serve-managed is started by giskard-supervisor, "
                         "which sets it" % name)
    return value


MAX_TOKEN_BYTES = 4096


def _read_token_fd(raw: str) -> str:
    """Reads the one-time token from the pipe the supervisor handed down, then closes it, so
    that it is in no file descriptor, environment or /proc entry of this process afterwards."""
    try:
        fd = int(raw)
    except ValueError:
        raise ValueError("GSK_WORKER_TOKEN_FD=%r is not a file descriptor number" % raw) from None
    chunks = []
    try:
        while sum(len(c) for c in chunks) <= MAX_TOKEN_BYTES:
            chunk = os.read(fd, MAX_TOKEN_BYTES)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as e:
        raise ValueError("GSK_WORKER_TOKEN_FD=%s cannot be read: %s" % (raw, e)) from None
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    token = b"".join(chunks).decode("utf-8", "replace").strip()
    if not token:
        raise ValueError("GSK_WORKER_TOKEN_FD=%s holds no token" % raw)
    return token


def _token(environ: MutableMapping[str, str]) -> str:
    # The supervisor passes the token on an inherited pipe (GSK_WORKER_TOKEN_FD);
    # GSK_WORKER_TOKEN in the environment is still accepted, for a supervisor before 0.2.
    if environ.get("GSK_WORKER_TOKEN_FD"):
        return _read_token_fd(environ["GSK_WORKER_TOKEN_FD"])
    return _required(environ, "GSK_WORKER_TOKEN")


def read_settings(environ: MutableMapping[str, str]) -> Settings:
    """Raises ValueError naming the first missing or malformed variable. Reading the token
    from its file descriptor consumes it: call once."""
    return Settings(
        socket_path=_required(environ, "GSK_SUPERVISOR_SOCKET"),
        worker_id=_required(environ, "GSK_WORKER_ID"),
        token=_token(environ),
        heartbeat_seconds=_number(environ, "GSK_HEARTBEAT_SECONDS", 5.0, allow_zero=False),
        grace_seconds=_number(environ, "GSK_ORPHAN_GRACE_SECONDS", 60.0, allow_zero=True))


def serve_managed(environ: MutableMapping[str, str]) -> int:
    try:
        settings = read_settings(environ)
    except ValueError as e:
        log.error("%s", e)
        return EXIT_USAGE
    # The token is for this process only: keep it from model code and its subprocesses.
    environ.pop("GSK_WORKER_TOKEN", None)
    environ.pop("GSK_WORKER_TOKEN_FD", None)
    return run(settings)


def run(settings: Settings, dispatcher: Optional[Dispatcher] = None,
        template_pid: Optional[int] = None) -> int:
    """Serves as the managed worker `settings` describes until it stops; returns the exit code.
    A worker forked from a template passes the template's dispatcher (its model cache holds
    the preloaded models) and the template's pid (for the log)."""
    path = settings.socket_path

    def dial() -> FramedSocket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(SEND_TIMEOUT_SECONDS)
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        return FramedSocket(sock)

    worker_id = settings.worker_id

    def on_welcome(welcome: Dict[str, object]) -> None:
        log.info("registered with the supervisor (pid %s) as worker %s",
                 welcome.get("supervisorPid"), worker_id)

    log.info("worker %s starting: Python %s at %s, shim %s, pid %d%s, supervisor socket %s",
             worker_id, platform.python_version(), sys.executable, __version__, os.getpid(),
             "" if template_pid is None else " (forked from template %d)" % template_pid, path)
    options = WorkerOptions(worker_id, token=settings.token,
                            heartbeat_seconds=settings.heartbeat_seconds,
                            grace_seconds=settings.grace_seconds)
    return Worker(dial, options, dispatcher=dispatcher, on_welcome=on_welcome).run()


def exit_now(code: int) -> None:
    """Ends the process with `code` at once, after flushing the log, stdout and stderr: no
    interpreter finalization (module teardown, garbage collection of every object, atexit),
    which costs several milliseconds per worker when many stop together. The worker has
    closed its connection gracefully before; nothing else needs cleaning up."""
    try:
        logging.shutdown()  # flushes (and closes) every handler
    except Exception:  # noqa: BLE001 (exiting anyway)
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: BLE001 (a closed or broken stream: nothing more to say)
            pass
    os._exit(code)
