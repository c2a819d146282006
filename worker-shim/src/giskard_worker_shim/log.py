"""Log lines on stderr, each with a timestamp (local time with its UTC offset) and the pid."""

import logging
import sys
import time
from typing import IO, Optional


class _Formatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:
        del datefmt
        local = time.localtime(record.created)
        return "%s.%03d%s" % (time.strftime("%Y-%m-%dT%H:%M:%S", local), int(record.msecs),
                              time.strftime("%z", local))


def configure(verbose: bool = False, stream: Optional[IO[str]] = None) -> None:
    """Sends the shim's log records to `stream` (default: stderr). Call once, from the CLI."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(
        "%(asctime)s %(levelname)s giskard-worker[%(process)d]: %(message)s"))
    logger = logging.getLogger("giskard_worker_shim")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
