"""The worker runtime: dial, register with `hello`, serve requests, send heartbeats, reconnect
while the supervisor is away, and exit with a documented code.

`Worker.run` owns the connection on the calling thread (the main thread, so that SIGTERM and
SIGINT can be handled) and runs the requests there too, one at a time in arrival order; while
one runs, a CallHeartbeats thread keeps the heartbeats flowing (calls.py).
"""

import logging
import select
import signal
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from giskard_worker_shim import __version__, environment, protocol
from giskard_worker_shim.dispatch import Dispatcher, default_dispatcher
from giskard_worker_shim.calls import CallHeartbeats, invoke
from giskard_worker_shim.protocol import ConnectionClosed, ProtocolError

log = logging.getLogger("giskard_worker_shim")

EXIT_OK = 0
EXIT_USAGE = 64        # bad environment variables or arguments (EX_USAGE)
EXIT_ORPHANED = 75     # the supervisor did not come back within the grace period (EX_TEMPFAIL)
EXIT_PROTOCOL = 76     # the peer speaks another protocol version (EX_PROTOCOL)
EXIT_REJECTED = 77     # the peer refused this worker: bad token or key (EX_NOPERM)

_STOPPED, _DROPPED = "stopped", "dropped"
CLOSE_LINGER_SECONDS = 1.0  # on a graceful stop, how long to wait for the peer to hang up
FINISH_READS = 64  # on a graceful stop, reads of what already arrived (each refused), at most


class Rejected(Exception):
    """The peer refused this worker (an `error` frame, HTTP 401/403); retrying cannot help."""


class ProtocolMismatch(Exception):
    """The peer's `welcome` carries a protocol version this shim does not speak."""


class _Stopped(Exception):
    """A stop was requested while registering."""


class WorkerOptions:
    """Identity and timing. grace_seconds=None means reconnect forever (unmanaged workers)."""

    def __init__(self, worker_id: str, token: Optional[str] = None, name: Optional[str] = None,
                 heartbeat_seconds: float = 5.0, grace_seconds: Optional[float] = 60.0,
                 backoff_initial: float = 0.1, backoff_max: float = 2.0,
                 peer: str = "supervisor") -> None:
        self.worker_id = worker_id
        self.token = token
        self.name = name
        self.heartbeat_seconds = heartbeat_seconds
        self.grace_seconds = grace_seconds
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.peer = peer


Connection = Any  # protocol.FramedSocket or websocket.WebSocketConnection
Message = Dict[str, Any]
Dial = Callable[[], Connection]


class Worker:
    """One worker process's connection to its supervisor (or Hub), across reconnections."""

    def __init__(self, dial: Dial, options: WorkerOptions,
                 dispatcher: Optional[Dispatcher] = None,
                 on_welcome: Optional[Callable[[Dict[str, Any]], None]] = None,
                 collect_env: Callable[[], Dict[str, Any]] = environment.collect) -> None:
        self._dial = dial
        self._options = options
        self._dispatcher = dispatcher or default_dispatcher()
        self._on_welcome = on_welcome
        self._collect_env = collect_env
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._heartbeats = CallHeartbeats()
        self._stop_requested = False
        self._dialing = False
        self._shutdown_ids = []  # type: List[Any]
        # The connection being served: its heartbeat interval and when one was last sent.
        self._interval = options.heartbeat_seconds
        self._last_heartbeat = 0.0

    def request_stop(self) -> None:
        """Graceful stop: finish the running request, then return EXIT_OK. Signal-safe."""
        self._stop_requested = True
        self._wake()

    def run(self) -> int:
        """Serves until stopped, orphaned or rejected; returns the process exit code."""
        restore = self._install_signal_handlers()
        try:
            return self._run()
        finally:
            restore()
            self._heartbeats.stop()
            self._wake_r.close()
            self._wake_w.close()

    def _run(self) -> int:
        opts = self._options
        welcomed_before, backoff, failures = False, opts.backoff_initial, 0
        deadline = self._grace_deadline()
        while not self._stop_requested:
            try:
                conn, welcome, early = self._register(welcomed_before)
            except _Stopped:
                break
            except Rejected as e:
                log.error("cannot register with the %s: %s", opts.peer, e)
                return EXIT_REJECTED
            except ProtocolMismatch as e:
                log.error("%s", e)
                return EXIT_PROTOCOL
            except (OSError, ConnectionClosed, ProtocolError) as e:
                failures += 1
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    log.error("could not reach the %s for %g s (last error: %s); exiting",
                              opts.peer, opts.grace_seconds, e)
                    return EXIT_ORPHANED
                (log.warning if failures == 1 else log.debug)(
                    "cannot reach the %s (%s); retrying%s", opts.peer, e,
                    "" if remaining is None else " for up to %.1f s" % remaining)
                self._sleep(backoff if remaining is None else min(backoff, remaining))
                backoff = min(backoff * 2, opts.backoff_max)
                continue
            welcomed_before, backoff, failures = True, opts.backoff_initial, 0
            if self._serve(conn, welcome, early) == _STOPPED:
                return EXIT_OK
            deadline = self._grace_deadline()
        log.info("stopped")
        return EXIT_OK

    def _grace_deadline(self) -> Optional[float]:
        grace = self._options.grace_seconds
        return None if grace is None else time.monotonic() + grace

    # Registration.

    def _register(self, reconnect: bool) -> Tuple[Connection, Message, List[Message]]:
        """Dials and says hello; returns the connection, the welcome and any messages that
        arrived right behind it."""
        opts = self._options
        self._dialing = True  # a signal now raises _Stopped out of a blocking connect
        try:
            conn = self._dial()
        finally:
            self._dialing = False
        try:
            conn.send(protocol.hello(opts.worker_id, self._collect_env(), token=opts.token,
                                     name=opts.name, reconnect=reconnect))
            deadline = time.monotonic() + max(3 * opts.heartbeat_seconds, 5.0)
            while True:
                if not self._wait_readable(conn, deadline - time.monotonic()):
                    if self._stop_requested:
                        raise _Stopped()
                    if time.monotonic() >= deadline:
                        raise ConnectionClosed("no welcome from the %s" % opts.peer)
                    continue
                messages = conn.receive()
                for index, message in enumerate(messages):
                    if message["type"] == "welcome":
                        self._check_welcome(message)
                        return conn, message, messages[index + 1:]
                    if message["type"] == "error":
                        raise Rejected(_describe_error(message.get("error")))
                    if message["type"] == "request":
                        raise ProtocolError("a request came before the welcome")
                    # heartbeats, and message types of later versions, are ignored
        except ProtocolError as e:
            _close_with_error(conn, e)
            raise
        except BaseException:
            conn.close()
            raise

    def _check_welcome(self, welcome: Dict[str, Any]) -> None:
        if welcome.get("protocol") != protocol.PROTOCOL_VERSION:
            raise ProtocolMismatch("the %s speaks protocol %r; this shim (%s) speaks %d"
                                   % (self._options.peer, welcome.get("protocol"),
                                      __version__, protocol.PROTOCOL_VERSION))

    # Serving one connection.

    def _serve(self, conn: Connection, welcome: Dict[str, Any],
               early: List[Dict[str, Any]]) -> str:
        interval = welcome.get("heartbeatSeconds")
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            interval = self._options.heartbeat_seconds
        self._interval = interval
        silence = 3 * interval
        if self._on_welcome is not None:
            self._on_welcome(welcome)
        self._last_heartbeat = time.monotonic()
        try:
            for message in early:
                self._handle(conn, message)
            last_received = time.monotonic()  # (the time spent in requests is not silence)
            while True:
                if self._stop_requested:
                    self._finish(conn)
                    return _STOPPED
                now = time.monotonic()
                if now >= self._last_heartbeat + interval:
                    conn.send(protocol.heartbeat())
                    self._last_heartbeat = now
                if now - last_received > silence:
                    raise ConnectionClosed("nothing received for %g s" % silence)
                timeout = min(self._last_heartbeat + interval, last_received + silence) - now
                if self._wait_readable(conn, timeout):
                    for message in conn.receive():
                        self._handle(conn, message)
                    # Nothing is read while a request runs: its time is not the peer's silence.
                    last_received = time.monotonic()
        except ProtocolError as e:
            log.error("protocol error from the %s: %s; closing the connection",
                      self._options.peer, e)
            _close_with_error(conn, e)
        except ConnectionClosed as e:
            log.warning("lost the connection to the %s: %s", self._options.peer, e)
            conn.close()
        return _DROPPED

    def _finish(self, conn: Connection) -> None:
        """During a stop: refuses the requests that already arrived, answers `shutdown`, and
        closes. Nothing runs any more: requests run on this thread."""
        for _ in range(FINISH_READS):
            if not (conn.ready() or select.select([conn], [], [], 0)[0]):
                break
            messages = conn.receive()
            for message in messages:
                self._handle(conn, message)
            if not messages:
                break
        for request_id in self._shutdown_ids:
            conn.send(protocol.reply_result(request_id, {"ok": True}))
        conn.close_gracefully(CLOSE_LINGER_SECONDS)
        log.info("stopped")

    def _handle(self, conn: Connection, message: Dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "request":
            self._handle_request(conn, message)
        elif kind == "error":
            log.error("the %s reported: %s", self._options.peer,
                      _describe_error(message.get("error")))
        elif kind != "heartbeat":
            log.debug("ignoring a message of type %r", kind)

    def _handle_request(self, conn: Connection, message: Dict[str, Any]) -> None:
        request_id, method = message.get("id"), message.get("method")
        params = message.get("params", {})
        if not isinstance(request_id, str) or not isinstance(method, str) \
                or not isinstance(params, dict):
            self._send_reply(conn, protocol.reply_error(request_id, protocol.error_object(
                "InvalidRequest", 'a request needs a string "id", a string "method" and an '
                'object "params"')))
        elif self._stop_requested:
            if method == "shutdown":
                self._shutdown_ids.append(request_id)
            else:
                self._send_reply(conn, _shutting_down(request_id))
        elif method == "shutdown":
            log.info("shutdown requested by the %s", self._options.peer)
            self._shutdown_ids.append(request_id)
            self._stop_requested = True
        else:
            handler = self._dispatcher.lookup(method)
            if handler is None:
                self._send_reply(conn, protocol.reply_error(request_id, protocol.error_object(
                    "MethodNotFound", "unknown method %r" % method)))
                return
            self._heartbeats.begin(conn, self._interval, self._last_heartbeat)
            try:
                reply = invoke(handler, request_id, params)
            finally:
                self._last_heartbeat = self._heartbeats.end()
            self._send_reply(conn, reply)

    def _send_reply(self, conn: Connection, reply: Dict[str, Any]) -> None:
        try:
            conn.send(reply)
        except (ValueError, TypeError) as e:  # not JSON-serializable, or over the frame limit
            conn.send(protocol.reply_error(reply.get("id"), protocol.error_object(
                type(e).__name__, "the reply could not be encoded: %s" % e)))

    # Waiting, waking and signals.

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # buffer full (a wake-up is pending anyway) or already closed
            pass

    def _wait_readable(self, conn: Optional[Connection], timeout: float) -> bool:
        """Blocks until `conn` is readable (True), or a wake-up or the timeout (False)."""
        if conn is not None and conn.ready():
            return True
        fds = [self._wake_r] if conn is None else [self._wake_r, conn]
        readable, _, _ = select.select(fds, [], [], max(0.0, timeout))
        if self._wake_r in readable:
            try:
                while self._wake_r.recv(4096):
                    pass
            except OSError:
                pass
        return conn is not None and conn in readable

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop_requested:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            self._wait_readable(None, remaining)

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_signal(signum: int, frame: Any) -> None:
            del frame
            log.info("received %s; stopping after the current request",
                     signal.Signals(signum).name)
            self.request_stop()
            if self._dialing:
                raise _Stopped()

        old_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for signum, handler in old.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(old_fd)
        return restore


def _close_with_error(conn: Connection, error: ProtocolError) -> None:
    """Tells the peer why we hang up (best effort), then closes."""
    try:
        conn.send(protocol.error_message("ProtocolError", str(error)))
    except (ConnectionClosed, ValueError):
        pass
    conn.close()


def _shutting_down(request_id: Any) -> Dict[str, Any]:
    return protocol.reply_error(request_id, protocol.error_object(
        "WorkerShuttingDown", "the worker is stopping and takes no new requests"))


def _describe_error(error: Any) -> str:
    if isinstance(error, dict):
        return "%s: %s" % (error.get("type", "Error"), error.get("message", ""))
    return repr(error)
