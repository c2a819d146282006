"""Template mode, a fork server: `python -m giskard_worker_shim serve-template`.

giskard-supervisor keeps one long-lived template per virtualenv and asks it, over an inherited
Unix socket (GSK_TEMPLATE_FD, framed as in PROTOCOL.md), to fork managed workers. The template
has imported everything a worker needs and, optionally, loaded models (GSK_TEMPLATE_PRELOAD),
so a forked worker starts in about a millisecond and shares those pages copy-on-write, instead
of paying ~60 ms for an interpreter, the shim's imports and a metadata scan.

    supervisor                     template T              C                 W
      |--- fork {id, ...} ------------>|
      |                                |-- fork() -------->|
      |                                |                   |-- fork() ------>|
      |                                |<-- W's pid (pipe)-|                 |
      |                                |                   x os._exit(0)     |  W is orphaned
      |                                |   waitpid(C)                        |  and adopted by
      |<-- forked {id, pid: W} --------|                                     |  the supervisor
      |<================= hello, welcome, requests... (workers.sock) ========|  (a subreaper)

The double fork makes W a child of the supervisor (PR_SET_CHILD_SUBREAPER), which gets its
exit status, not of the template. W then sets itself up from the request (`_set_up`, in the
documented order) and runs the managed worker with the settings of the request, exactly as
`serve-managed` does after reading its environment variables.

The template stays single-threaded (a fork copies only the calling thread) and answers each
request before reading the next.
"""

import gc
import json
import logging
import os
import platform
import resource
import select
import signal
import socket
import struct
import sys
import threading
import time
from typing import Any, Dict, List, MutableMapping, NamedTuple, Optional, Tuple

# Everything a worker needs, imported once here so that every forked worker shares the pages.
# numpy, pandas and joblib are not among them: only a preloaded model that needs them imports
# them.
import importlib.metadata  # noqa: F401 (the `environment` request scans packages with it)
import linecache  # noqa: F401 (formatting a traceback for an error reply reads the sources)
import tokenize  # noqa: F401 (idem)

from giskard_worker_shim import (__version__, calls, dispatch, environment,  # noqa: F401
                                 errors, jsonout, manifest, methods, models, optional,
                                 protocol, tabular, worker)
from giskard_worker_shim import log as shim_log
from giskard_worker_shim import managed
from giskard_worker_shim.protocol import ConnectionClosed, FramedSocket, ProtocolError

try:
    import ctypes
except ImportError:  # an interpreter built without ctypes: /proc/PID/environ is left as is
    ctypes = None  # type: ignore

log = logging.getLogger("giskard_worker_shim")

EXIT_OK = 0        # end of file on the template's socket, SIGTERM or SIGINT
EXIT_FAILED = 1    # a preloaded model failed to load; a broken frame on the template's socket
EXIT_USAGE = worker.EXIT_USAGE  # GSK_TEMPLATE_FD or GSK_TEMPLATE_PRELOAD missing or malformed
EXIT_SETUP = 71    # a forked worker could not set itself up (cwd, log file, limits): EX_OSERR

FORK_REPORT_SECONDS = 10.0  # bound on the wait for the intermediate child's report
DEFAULT_HEARTBEAT_SECONDS = 5.0       # as GSK_HEARTBEAT_SECONDS
DEFAULT_ORPHAN_GRACE_SECONDS = 60.0   # as GSK_ORPHAN_GRACE_SECONDS
_PID = struct.Struct(">q")  # what C writes on the pipe: W's pid, or -errno if its fork failed
_MAX_LIMIT = 2 ** 63 - 1
LIMITS = (("address_space_bytes", resource.RLIMIT_AS),
          ("open_files", resource.RLIMIT_NOFILE),
          ("processes", getattr(resource, "RLIMIT_NPROC", None)),
          ("core_bytes", resource.RLIMIT_CORE))


class BadRequest(ValueError):
    """A malformed fork request; the message says what is wrong."""


class ForkError(Exception):
    """A fork request that could not be carried out."""


class _Terminate(BaseException):
    """SIGTERM or SIGINT while the template waits for a request."""


class ForkRequest(NamedTuple):
    request_id: str
    settings: managed.Settings
    env: Dict[str, str]
    cwd: str
    log_file: str
    limits: Tuple[Tuple[int, int], ...]  # (RLIMIT_..., value): soft = hard = value


# Frames.

def ready(preloaded: List[str]) -> Dict[str, Any]:
    return {"type": "ready", "pid": os.getpid(), "shimVersion": __version__,
            "pythonVersion": platform.python_version(), "preloaded": list(preloaded)}


def forked(request_id: str, pid: int) -> Dict[str, Any]:
    return {"type": "forked", "id": request_id, "pid": pid}


def fork_failed(request_id: Any, error: str) -> Dict[str, Any]:
    return {"type": "fork_failed", "id": request_id, "error": error}


def _string(message: Dict[str, Any], field: str) -> str:
    value = message.get(field)
    if not isinstance(value, str) or not value or "\0" in value:
        raise BadRequest('"%s" must be a non-empty string' % field)
    return value


def _path(message: Dict[str, Any], field: str) -> str:
    value = _string(message, field)
    if not os.path.isabs(value):
        raise BadRequest('"%s" must be an absolute path' % field)
    return value


def _seconds(message: Dict[str, Any], field: str, default: float, allow_zero: bool) -> float:
    value = message.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
            or value in (float("inf"), float("-inf")) or value < 0 \
            or (value == 0 and not allow_zero):
        raise BadRequest('"%s" must be a %s number of seconds'
                         % (field, "non-negative" if allow_zero else "positive"))
    return float(value)


def _env(value: Any) -> Dict[str, str]:
    if not isinstance(value, dict):
        raise BadRequest('"env" must be an object of strings (the worker\'s environment)')
    for name, text in value.items():
        if not name or "=" in name or "\0" in name:
            raise BadRequest('"env" has an invalid variable name %s' % json.dumps(name))
        if not isinstance(text, str) or "\0" in text:
            raise BadRequest('"env"."%s" must be a string without NUL' % name)
    return dict(value)


def _limits(value: Any) -> Tuple[Tuple[int, int], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise BadRequest('"limits" must be an object')
    limits = []
    for name, which in LIMITS:
        limit = value.get(name)
        if limit is None:
            continue
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= _MAX_LIMIT:
            raise BadRequest('"limits"."%s" must be a non-negative integer or null' % name)
        if which is None:
            raise BadRequest('"limits"."%s" is not supported on this platform' % name)
        limits.append((which, limit))
    return tuple(limits)


def parse_fork(message: Dict[str, Any]) -> ForkRequest:
    """Validates a `fork` request; raises BadRequest naming the first bad field. Unknown fields
    are ignored; heartbeatSeconds and orphanGraceSeconds default to 5 and 60."""
    request_id = message.get("id")
    if not isinstance(request_id, str) or not request_id:
        raise BadRequest('"id" must be a non-empty string')
    settings = managed.Settings(
        socket_path=_string(message, "socket"),
        worker_id=_string(message, "workerId"),
        token=_string(message, "token"),
        heartbeat_seconds=_seconds(message, "heartbeatSeconds", DEFAULT_HEARTBEAT_SECONDS,
                                   allow_zero=False),
        grace_seconds=_seconds(message, "orphanGraceSeconds", DEFAULT_ORPHAN_GRACE_SECONDS,
                               allow_zero=True))
    return ForkRequest(request_id, settings, _env(message.get("env")), _path(message, "cwd"),
                       _path(message, "logFile"), _limits(message.get("limits")))


def parse_preload(raw: str) -> List[str]:
    """GSK_TEMPLATE_PRELOAD: a JSON list of absolute model paths (empty or unset: none)."""
    if not raw.strip():
        return []
    try:
        paths = json.loads(raw)
    except ValueError as e:
        raise ValueError("GSK_TEMPLATE_PRELOAD is not JSON: %s" % e) from None
    if not isinstance(paths, list) or not all(
            isinstance(p, str) and os.path.isabs(p) and "\0" not in p for p in paths):
        raise ValueError("GSK_TEMPLATE_PRELOAD must be a JSON list of absolute model paths")
    return paths


# Process state that a forked worker gets back.

def _dispositions() -> Dict[int, Any]:
    """The current Python-level disposition of every signal (None: set outside Python)."""
    found = {}
    for signum in signal.valid_signals():
        try:
            found[signum] = signal.getsignal(signum)
        except (OSError, ValueError):
            pass
    return found


def _restore_signals(dispositions: Dict[int, Any]) -> None:
    """Puts back the dispositions the template started with (those of a freshly started
    interpreter, as an exec'd worker has: SIGPIPE stays ignored, so that writing to a broken
    connection raises EPIPE instead of killing the worker) and unblocks every signal."""
    signal.set_wakeup_fd(-1)
    for signum, handler in dispositions.items():
        if handler is None:
            continue
        try:
            if signal.getsignal(signum) is not handler:
                signal.signal(signum, handler)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _close_inherited_fds() -> None:
    """Closes every descriptor from 3 up: the template's socket, the pid pipe, anything a
    preloaded model opened. /proc/self/fd bounds the range (SC_OPEN_MAX may be huge)."""
    try:
        highest = max(int(name) for name in os.listdir("/proc/self/fd"))
    except (OSError, ValueError):
        highest = os.sysconf("SC_OPEN_MAX") - 1
    os.closerange(3, highest + 1)


if ctypes is not None:
    class _MmMap(ctypes.Structure):
        """struct prctl_mm_map (linux/prctl.h)."""
        _fields_ = [(name, ctypes.c_uint64) for name in (
            "start_code", "end_code", "start_data", "end_data", "start_brk", "brk",
            "start_stack", "arg_start", "arg_end", "env_start", "env_end")] + [
            ("auxv", ctypes.c_void_p), ("auxv_size", ctypes.c_uint32),
            ("exe_fd", ctypes.c_uint32)]

_PR_SET_MM, _PR_SET_MM_MAP, _PR_SET_MM_MAP_SIZE = 35, 14, 15
_libc = None  # type: Any
_env_blocks = []  # type: List[Any]  # what /proc/self/environ points at: never freed


def _prepare_libc() -> None:
    """Looks up prctl and sbrk once, in the template (forked workers share the result)."""
    global _libc
    if ctypes is None or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl.restype = ctypes.c_int
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                               ctypes.c_ulong]
        libc.sbrk.restype = ctypes.c_void_p
        libc.sbrk.argtypes = [ctypes.c_ssize_t]
        size = ctypes.c_uint(0)
        if libc.prctl(_PR_SET_MM, _PR_SET_MM_MAP_SIZE, ctypes.addressof(size), 0, 0) != 0 \
                or size.value != ctypes.sizeof(_MmMap):
            return
    except (OSError, AttributeError):
        return
    _libc = libc


def _show_environ(env: Dict[str, str]) -> Optional[str]:
    """Makes /proc/self/environ show `env`. The kernel shows the block the process was exec'd
    with, which a fork inherits and putenv() never changes; prctl(PR_SET_MM_MAP) (Linux 3.18+,
    no privilege needed without exe_fd) points it at a new block. Returns why not, or None."""
    if _libc is None:
        return "prctl(PR_SET_MM_MAP) is not available"
    block = b"".join(os.fsencode(name) + b"=" + os.fsencode(value) + b"\0"
                     for name, value in env.items())
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        fields = stat[stat.rfind(")") + 2:].split()  # fields[n - 3] is field n (1-based)
        code_start, code_end, stack_start = (int(fields[n - 3]) for n in (26, 27, 28))
        data_start, data_end, brk_start, arg_start, arg_end = (
            int(fields[n - 3]) for n in (45, 46, 47, 48, 49))  # Linux 3.5+
    except (OSError, ValueError, IndexError) as e:
        return "cannot read /proc/self/stat: %s" % e
    buffer = ctypes.create_string_buffer(block, max(1, len(block)))
    start = ctypes.addressof(buffer)
    mm = _MmMap(start_code=code_start, end_code=code_end, start_data=data_start,
                end_data=data_end, start_brk=brk_start, brk=brk_start,
                start_stack=stack_start, arg_start=arg_start, arg_end=arg_end,
                env_start=start, env_end=start + len(block), auxv=None, auxv_size=0,
                exe_fd=0xFFFFFFFF)  # -1: keep /proc/self/exe (changing it needs a privilege)
    address, size = ctypes.addressof(mm), ctypes.sizeof(mm)
    # Every field is set as it is, the program break included: read it last, right before
    # the call, so that no allocation can move it in between.
    mm.brk = _libc.sbrk(0) or brk_start
    if _libc.prctl(_PR_SET_MM, _PR_SET_MM_MAP, address, size, 0):
        return "prctl(PR_SET_MM_MAP): %s" % os.strerror(ctypes.get_errno())
    _env_blocks.append(buffer)
    return None


def _warm_up() -> None:
    """Computes once what `hello` reports and does not depend on the process (platform caches
    uname and its strings), so that forked workers find it done; prepares prctl."""
    platform.python_version()
    platform.python_implementation()
    platform.platform()
    platform.machine()
    _prepare_libc()


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass


# The template.

class Template:
    """Serves fork requests on the supervisor's socket until end of file or a signal."""

    def __init__(self, conn: FramedSocket, sock: socket.socket, cache: models.ModelCache,
                 dispositions: Dict[int, Any]) -> None:
        self._conn = conn
        self._sock = sock
        self.cache = cache
        self._dispositions = dispositions
        self._pid = os.getpid()
        self._stop = 0  # the signal that asked to stop
        self._interruptible = True  # a signal raises _Terminate (not while forking)

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, frame: Any) -> None:
            del frame
            self._stop = signum
            if self._interruptible:
                raise _Terminate()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)

    def stopped(self) -> int:
        if self._stop:
            log.info("received %s; the template exits", signal.Signals(self._stop).name)
        return EXIT_OK

    def serve(self) -> int:
        try:
            return self._loop()
        except _Terminate:
            return self.stopped()

    def _loop(self) -> int:
        while True:
            self._interruptible = True
            if self._stop:
                return self.stopped()
            try:
                messages = self._conn.receive()  # blocks; a signal raises _Terminate
            except ConnectionClosed as e:
                log.info("the supervisor closed the template's socket (%s); the template exits",
                         e)
                return EXIT_OK
            except ProtocolError as e:
                log.error("protocol error on the template's socket: %s; the template exits", e)
                try:
                    self._conn.send(protocol.error_message("ProtocolError", str(e)))
                except (ConnectionClosed, ValueError):
                    pass
                self._conn.close()
                return EXIT_FAILED
            finally:
                self._interruptible = False
            try:
                for message in messages:
                    self._handle(message)
            except ConnectionClosed as e:
                log.info("the supervisor closed the template's socket (%s); the template exits",
                         e)
                return EXIT_OK

    def _handle(self, message: Dict[str, Any]) -> None:
        if message["type"] != "fork":
            log.debug("ignoring a message of type %r", message["type"])
            return
        request_id = message.get("id")
        try:
            request = parse_fork(message)
        except BadRequest as e:
            log.error("malformed fork request %s: %s", json.dumps(request_id), e)
            self._conn.send(fork_failed(request_id, str(e)))
            return
        started = time.monotonic()
        try:
            pid = self.fork(request)
        except ForkError as e:
            log.error("cannot fork worker %s: %s", request.settings.worker_id, e)
            self._conn.send(fork_failed(request.request_id, str(e)))
            return
        self._conn.send(forked(request.request_id, pid))
        log.info("forked worker %s as pid %d in %.2f ms", request.settings.worker_id, pid,
                 (time.monotonic() - started) * 1000.0)

    def fork(self, request: ForkRequest) -> int:
        """Double fork: C forks W and exits at once, so W is re-parented to the nearest child
        subreaper (the supervisor). Returns W's pid; raises ForkError."""
        threads = threading.active_count()
        if threads != 1:
            raise ForkError("the template runs %d threads (threading.active_count()), and a "
                            "fork copies only one of them: refusing to fork (did a preloaded "
                            "model start a thread?)" % threads)
        _flush_std()  # or W and C would write the template's buffered output again
        try:
            r, w = os.pipe()
        except OSError as e:
            raise ForkError("cannot create a pipe: %s" % (e.strerror or e)) from None
        # Signals wait until C is reaped: a handler must not run between the forks and the
        # waitpid, and C and W start with every signal blocked (W unblocks them).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            try:
                child = os.fork()
            except OSError as e:
                raise ForkError("fork failed: %s" % (e.strerror or e)) from None
            if child == 0:
                self._intermediate(r, w, request)  # never returns
            os.close(w)
            w = -1
            kill = True
            try:
                report = self._read_report(r)
                kill = False
            finally:
                status = _reap(child, kill)
            if len(report) != _PID.size:
                raise ForkError("the intermediate child exited (%s) without reporting the "
                                "worker's pid" % _describe_status(status))
            (pid,) = _PID.unpack(report)
            if pid <= 0:
                raise ForkError("fork failed: %s" % os.strerror(-pid))
            return pid
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(r)
            if w >= 0:
                os.close(w)

    @staticmethod
    def _read_report(r: int) -> bytes:
        deadline = time.monotonic() + FORK_REPORT_SECONDS
        report = b""
        while len(report) < _PID.size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ForkError("no report from the intermediate child within %g s"
                                % FORK_REPORT_SECONDS)
            if not select.select([r], [], [], remaining)[0]:
                continue
            chunk = os.read(r, _PID.size - len(report))
            if not chunk:
                break
            report += chunk
        return report

    def _intermediate(self, r: int, w: int, request: ForkRequest) -> None:
        """C: forks W, reports its pid on the pipe and exits at once."""
        try:
            os.close(r)
            try:
                pid = os.fork()
            except OSError as e:
                os.write(w, _PID.pack(-(e.errno or 1)))
                os._exit(1)
            if pid == 0:
                self._become_worker(request)  # never returns
            os.write(w, _PID.pack(pid))
            os._exit(0)
        finally:
            os._exit(1)

    def _become_worker(self, request: ForkRequest) -> None:
        """W: sets itself up, runs the managed worker, exits. Never returns."""
        code = EXIT_SETUP
        try:
            try:
                problem = self._set_up(request)
            except Exception as e:  # noqa: BLE001 (logged to whichever log fd 2 reaches)
                log.error("forked worker %s could not set itself up: %s: %s",
                          request.settings.worker_id, type(e).__name__, e)
            else:
                if problem is not None:
                    log.debug("/proc/%d/environ still shows the template's environment (%s)",
                              os.getpid(), problem)
                code = 1
                code = managed.run(request.settings, dispatch.default_dispatcher(self.cache),
                                   template_pid=self._pid)
        except SystemExit as e:
            code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
        except BaseException:  # noqa: BLE001 (a bug: say where)
            log.exception("forked worker %s failed", request.settings.worker_id)
            code = 1
        finally:
            managed.exit_now(code)

    def _set_up(self, request: ForkRequest) -> Optional[str]:
        """W's set-up, in the documented order. Returns why /proc/PID/environ could not be
        updated (or None); raises on anything that prevents the worker from running."""
        os.setpgid(0, 0)  # its own process group, as an exec'd worker
        _restore_signals(self._dispositions)
        os.makedirs(request.cwd, mode=0o700, exist_ok=True)
        os.chdir(request.cwd)
        log_fd = os.open(request.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        self._sock.detach()  # its descriptor is closed next; the object must not close it later
        _close_inherited_fds()
        os.environ.clear()
        os.environ.update(request.env)
        problem = _show_environ(request.env)
        for which, value in request.limits:
            resource.setrlimit(which, (value, value))
        # Per-process state: the log handler (on the new stderr, verbosity from the new
        # environment) and the cache size (never below the preloaded models). random, uuid,
        # tempfile, logging locks and threading are re-initialized by CPython's at-fork hooks;
        # the shim caches no pid.
        shim_log.configure(verbose=os.environ.get("GSK_WORKER_VERBOSE") == "1")
        self.cache.capacity = max(models.cache_size_from_env(os.environ), len(self.cache))
        return problem


def _reap(child: int, kill: bool) -> Optional[int]:
    """Waits for C (killed first if it did not report); C exits right after reporting."""
    if kill:
        try:
            os.kill(child, signal.SIGKILL)
        except OSError:
            pass
    try:
        return os.waitpid(child, 0)[1]
    except ChildProcessError:
        return None


def _describe_status(status: Optional[int]) -> str:
    if status is None:
        return "status unknown"
    if os.WIFSIGNALED(status):
        return "killed by signal %d" % os.WTERMSIG(status)
    return "exit code %d" % os.WEXITSTATUS(status)


def _control_socket(raw: str) -> socket.socket:
    try:
        fd = int(raw)
        if fd < 0:
            raise ValueError()
    except ValueError:
        raise ValueError("GSK_TEMPLATE_FD=%r is not a file descriptor number: serve-template "
                         "is started by giskard-supervisor, which sets it" % raw) from None
    try:
        sock = socket.socket(fileno=fd)
    except OSError as e:
        raise ValueError("GSK_TEMPLATE_FD=%s is not a socket: %s" % (raw, e)) from None
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise ValueError("GSK_TEMPLATE_FD=%s is not a Unix stream socket" % raw)
    os.set_inheritable(fd, False)
    return sock


def _send(conn: FramedSocket, message: Dict[str, Any]) -> bool:
    try:
        conn.send(message)
        return True
    except ConnectionClosed as e:
        log.info("the supervisor closed the template's socket (%s); the template exits", e)
        return False


def serve_template(environ: MutableMapping[str, str]) -> int:
    started = time.monotonic()
    dispositions = _dispositions()  # before anything changes them
    try:
        sock = _control_socket(environ.get("GSK_TEMPLATE_FD", ""))
    except ValueError as e:
        log.error("%s", e)
        return EXIT_USAGE
    conn = FramedSocket(sock)
    template = Template(conn, sock, models.ModelCache(), dispositions)
    template.install_signal_handlers()  # until the first fork, a signal ends the template
    try:
        return _start(template, conn, environ, started)
    except _Terminate:
        return template.stopped()


def _start(template: Template, conn: FramedSocket, environ: MutableMapping[str, str],
           started: float) -> int:
    try:
        paths = parse_preload(environ.get("GSK_TEMPLATE_PRELOAD", ""))
    except ValueError as e:
        log.error("%s", e)
        _send(conn, protocol.error_message("ValueError", str(e)))
        return EXIT_USAGE
    cache = template.cache
    cache.capacity = max(models.cache_size_from_env(environ), len(set(paths)))
    for path in paths:
        try:
            result = methods.load_model(cache, {"model": path})
        except (Exception, SystemExit) as e:  # noqa: BLE001 (the model's own code ran)
            log.error("cannot preload %s: %s: %s", path, type(e).__name__, e)
            _send(conn, {"type": "error", "error": protocol.error_from_exception(e)})
            return EXIT_FAILED
        log.info("preloaded model %s (%s, %.1f ms)", path, result["kind"], result["loadMs"])
    _warm_up()
    # Objects that exist now are never collected: the collector of a forked worker does not
    # walk (and so does not write to) the pages they share with the template.
    gc.collect()
    gc.freeze()
    threads = threading.active_count()
    if threads != 1:
        log.warning("the template runs %d threads after preloading: fork requests will be "
                    "refused", threads)
    if not _send(conn, ready(paths)):
        return EXIT_OK
    log.info("template ready: pid %d, Python %s at %s, shim %s, %d preloaded models, %.1f ms",
             os.getpid(), platform.python_version(), sys.executable, __version__, len(paths),
             (time.monotonic() - started) * 1000.0)
    return template.serve()
