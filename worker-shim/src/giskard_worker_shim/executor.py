"""Runs non-inline requests one at a time on a daemon thread, so that the I/O thread keeps
sending heartbeats during a long model call. Every method except the thread's own loop, and the
`outstanding` count, belong to the I/O thread.
"""

import queue
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from giskard_worker_shim import protocol
from giskard_worker_shim.dispatch import Handler


def invoke(handler: Handler, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
    """The reply to one request. Whatever the handler raises (model code included: MemoryError,
    even SystemExit) becomes an error reply, so the thread that runs it lives on."""
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


class Executor:
    """Runs queued requests one at a time on a daemon thread. `outstanding` and every method
    except the thread's own loop belong to the I/O thread."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._jobs = queue.Queue()  # type: queue.Queue
        self._results = queue.Queue()  # type: queue.Queue
        self._wake = wake
        self._thread = None  # type: Optional[threading.Thread]
        self.outstanding = 0
        # Set while the I/O thread waits on _results itself: no wake-up byte is needed then.
        self._lock = threading.Lock()
        self._io_waiting = False

    def submit(self, generation: int, request_id: Any, handler: Handler,
               params: Dict[str, Any]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="gsk-executor", daemon=True)
            self._thread.start()
        self.outstanding += 1
        self._jobs.put((generation, request_id, handler, params))

    def take_results(self, wait: float = 0.0) -> List[Tuple[int, Dict[str, Any]]]:
        """The (generation, reply) of finished requests. With `wait` > 0 and a request running,
        first waits up to `wait` seconds for it: a quick call's reply then goes out without the
        round trip through the wake-up socket and select()."""
        results = []
        if wait > 0 and self.outstanding > 0 and self._results.empty():
            with self._lock:
                self._io_waiting = True
            try:
                results.append(self._results.get(timeout=wait))
            except queue.Empty:
                pass
            finally:
                with self._lock:
                    self._io_waiting = False
        # A reply put while the flag was still set (and so without a wake-up) is taken here.
        while True:
            try:
                results.append(self._results.get_nowait())
            except queue.Empty:
                break
        self.outstanding -= len(results)
        return results

    def cancel_pending(self) -> List[Tuple[int, Any]]:
        """Removes the requests that have not started; returns (generation, id) of each."""
        cancelled = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            cancelled.append((job[0], job[1]))
        self.outstanding -= len(cancelled)
        return cancelled

    def wait_idle(self) -> None:
        self.cancel_pending()
        while self.outstanding > 0:
            self._results.get()
            self.outstanding -= 1

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            generation, request_id, handler, params = job
            reply = invoke(handler, request_id, params)
            with self._lock:
                self._results.put((generation, reply))
                wake = not self._io_waiting
            if wake:
                self._wake()
