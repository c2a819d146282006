"""Running one request: `invoke` turns a handler's result, or whatever it raised, into the
reply; `CallHeartbeats` keeps heartbeats flowing while a request runs.

Requests run on the worker's I/O thread, one at a time in arrival order: a call costs no
hand-off between threads (two futex wake-ups and a wake-up byte per call, which were most of
a small call's cost). While a request runs, the I/O thread reads nothing and sends nothing; a
CallHeartbeats thread sends the heartbeats that tell the peer the worker is alive.
"""

import logging
import threading
import time
from typing import Any, Dict, Optional

from giskard_worker_shim import protocol
from giskard_worker_shim.dispatch import Handler

log = logging.getLogger("giskard_worker_shim")


def invoke(handler: Handler, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
    """The reply to one request. Whatever the handler raises (model code included: MemoryError,
    even SystemExit) becomes an error reply, so the worker lives on."""
    try:
        return protocol.reply_result(request_id, handler(params))
    except BaseException as e:  # noqa: BLE001 (the supervisor gets the error, the worker lives)
        return _error_reply(request_id, e)


def _error_reply(request_id: Any, exc: BaseException) -> Dict[str, Any]:
    try:
        return protocol.reply_error(request_id, protocol.error_from_exception(exc))
    except MemoryError:  # too little memory left to format the traceback: say what we can
        return protocol.reply_error(request_id, protocol.error_object(
            type(exc).__name__, "(no memory left to describe the error)"))


# However long the heartbeat interval, a busy worker is heard from at least this often: the
# supervisor's WebSocket endpoint closes a connection after 30 s without a frame, and the
# worker's I/O thread does not answer that endpoint's pings while a call runs.
MAX_PERIOD_SECONDS = 10.0


class CallHeartbeats:
    """Sends heartbeats on a connection while the I/O thread runs a request on it.

    `begin` hands the connection over; from then until `end` returns, only this object's
    daemon thread writes to it (under `_lock`), and the I/O thread does not touch it. The thread
    wakes every half interval and sends a heartbeat once a whole interval has passed since the
    last one, so the peer hears from a busy worker at least every 1.5 intervals (it closes a
    connection after 3 silent ones), and at least every 1.5 MAX_PERIOD_SECONDS. A failed send
    is left for the I/O thread to discover.

    Thread-safety: `begin`, `end` and `stop` belong to the I/O thread; the rest is the
    thread's own. `begin` and `end` cost an uncontended lock each; the thread starts at the
    first `begin`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]
        self._conn = None  # type: Any  # guarded by _lock: set from begin to end
        self._interval = 5.0  # guarded by _lock
        self._last_sent = 0.0  # guarded by _lock

    def begin(self, conn: Any, interval: float, last_sent: float) -> None:
        """`last_sent` is when the I/O thread last sent a heartbeat (time.monotonic())."""
        with self._lock:
            self._conn, self._last_sent = conn, last_sent
            self._interval = min(interval, MAX_PERIOD_SECONDS)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="gsk-heartbeats",
                                            daemon=True)
            self._thread.start()

    def end(self) -> float:
        """Takes the connection back; returns when a heartbeat was last sent on it."""
        with self._lock:
            self._conn = None
            return self._last_sent

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self) -> None:
        while True:
            with self._lock:
                tick = self._interval / 2
            if self._stopped.wait(tick):
                return
            with self._lock:
                if self._conn is None:
                    continue
                now = time.monotonic()
                if now - self._last_sent < self._interval:
                    continue
                try:
                    self._conn.send(protocol.heartbeat())
                    self._last_sent = now
                except Exception as e:  # noqa: BLE001 (the I/O thread will see it broken)
                    log.debug("cannot send a heartbeat during a call: %s", e)
                    self._conn = None
