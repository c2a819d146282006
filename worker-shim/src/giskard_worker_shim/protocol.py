"""Wire format shared by every transport: one JSON object per frame (see PROTOCOL.md).

On a Unix socket a frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON.
Everything here is pure (no sockets) except `FramedSocket`, which one thread owns.
"""

import json
import select
import socket
import struct
import time
import traceback
from typing import Any, Dict, List, Optional

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 16 * 1024 * 1024
HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent something that breaks the protocol; the connection must be closed."""


class ConnectionClosed(Exception):
    """The peer closed the connection (or it broke)."""


class FrameTooLarge(ValueError):
    """A message we were about to send encodes to more than MAX_FRAME_BYTES."""


def _reject_constant(name: str) -> Any:
    raise ValueError("%s is not valid JSON" % name)


def encode_json(message: Dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON; raises FrameTooLarge, or ValueError/TypeError if not serializable."""
    payload = json.dumps(message, ensure_ascii=False, allow_nan=False,
                         separators=(",", ":")).encode("utf-8")
    if len(payload) > MAX_FRAME_BYTES:
        raise FrameTooLarge("message of %d bytes exceeds the %d-byte frame limit"
                            % (len(payload), MAX_FRAME_BYTES))
    return payload


def decode_json(payload: bytes) -> Dict[str, Any]:
    """Parses one message; raises ProtocolError unless it is a JSON object with a string "type"."""
    try:
        message = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError("frame is not UTF-8 JSON: %s" % e) from None
    if not isinstance(message, dict):
        raise ProtocolError("frame is JSON but not an object")
    if not isinstance(message.get("type"), str):
        raise ProtocolError('message has no string "type"')
    return message


def encode_frame(message: Dict[str, Any]) -> bytes:
    payload = encode_json(message)
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Accumulates bytes as they arrive and yields complete messages (partial reads are fine).

    Messages that precede a bad frame are returned first; the ProtocolError is raised by the
    next call to feed() (`has_error` tells the caller to make it without new data).
    """

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_frame_bytes
        self._error = None  # type: Optional[ProtocolError]

    def feed(self, data: bytes) -> List[Dict[str, Any]]:
        """Returns the messages completed by `data`; raises ProtocolError on a bad frame."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        messages = []  # type: List[Dict[str, Any]]
        try:
            while len(self._buffer) >= HEADER.size:
                (length,) = HEADER.unpack_from(self._buffer)
                if length > self._max:
                    raise ProtocolError("announced frame length %d exceeds the %d-byte limit"
                                        % (length, self._max))
                end = HEADER.size + length
                if len(self._buffer) < end:
                    break
                payload = bytes(self._buffer[HEADER.size:end])
                del self._buffer[:end]
                messages.append(decode_json(payload))
        except ProtocolError as e:
            if not messages:
                raise
            self._error = e
        return messages

    @property
    def has_error(self) -> bool:
        return self._error is not None

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)


class FramedSocket:
    """A connected stream socket carrying length-prefixed frames. Owned by one thread."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._decoder = FrameDecoder()

    def fileno(self) -> int:
        return self._sock.fileno()

    def ready(self) -> bool:
        """Whether receive() has something to report without the socket being readable."""
        return self._decoder.has_error

    def send(self, message: Dict[str, Any]) -> None:
        frame = encode_frame(message)
        try:
            self._sock.sendall(frame)
        except OSError as e:
            raise ConnectionClosed("send failed: %s" % e) from None

    def receive(self) -> List[Dict[str, Any]]:
        """Reads what is available (call when readable); [] if no message is complete yet."""
        if self._decoder.has_error:
            return self._decoder.feed(b"")
        try:
            data = self._sock.recv(65536)
        except OSError as e:
            raise ConnectionClosed("receive failed: %s" % e) from None
        if not data:
            raise ConnectionClosed("peer closed the connection")
        return self._decoder.feed(data)

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def close_gracefully(self, timeout: float) -> None:
        """Half-closes, waits up to `timeout` for the peer to close, then closes. Closing with
        unread input would make the peer read ECONNRESET instead of a clean end of stream."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self._sock], [], [], remaining)[0]:
                    break
                if not self._sock.recv(65536):
                    break
        except OSError:
            pass
        self.close()


# Message constructors. Every message is a plain dict; these keep the field names in one place.

def heartbeat() -> Dict[str, Any]:
    return {"type": "heartbeat", "ts": time.time()}


def reply_result(request_id: Any, result: Dict[str, Any]) -> Dict[str, Any]:
    return {"type": "reply", "id": request_id, "result": result}


def error_object(error_type: str, message: str, tb: str = "") -> Dict[str, Any]:
    return {"type": error_type, "message": message, "traceback": tb}


def error_from_exception(exc: BaseException) -> Dict[str, Any]:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return error_object(type(exc).__name__, str(exc), tb)


def reply_error(request_id: Any, error: Dict[str, Any]) -> Dict[str, Any]:
    return {"type": "reply", "id": request_id, "error": error}


def error_message(error_type: str, message: str) -> Dict[str, Any]:
    """The connection-level `error` frame, sent just before closing."""
    return {"type": "error", "error": error_object(error_type, message)}


def hello(worker_id: str, env: Dict[str, Any], token: Optional[str] = None,
          name: Optional[str] = None, reconnect: bool = False) -> Dict[str, Any]:
    message = {"type": "hello", "protocol": PROTOCOL_VERSION, "workerId": worker_id,
               "reconnect": reconnect}  # type: Dict[str, Any]
    if token is not None:
        message["token"] = token
    if name is not None:
        message["name"] = name
    message["env"] = env
    return message
