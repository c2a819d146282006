"""A minimal RFC 6455 WebSocket client (text messages, ping/pong, close), standard library only.

Enough for the worker protocol: one JSON object per text message. No extensions, no
subprotocols. A connection is owned by one thread.
"""

import base64
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from giskard_worker_shim.protocol import (MAX_FRAME_BYTES, ConnectionClosed, ProtocolError,
                                          decode_json, encode_json)

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HANDSHAKE_BYTES = 16 * 1024
MASK_POOL_BYTES = 4096  # random bytes drawn at once for frame masks: 1024 frames per draw

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


MAX_REFUSAL_BODY_BYTES = 64 * 1024


class HandshakeError(Exception):
    """The server answered the opening handshake with something other than a valid 101:
    `status` (0 if the answer was not HTTP) and the answer's `body` (text, possibly cut)."""

    def __init__(self, status: int, message: str, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def server_message(self) -> str:
        """What the server said: `error.message` of a JSON body
        (`{"error":{"code":...,"message":...}}`), else the body's text (cut to 300
        characters), else ""."""
        try:
            error = json.loads(self.body).get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                return error["message"]
        except (ValueError, AttributeError):
            pass
        text = " ".join(self.body.split())
        return text[:300] + ("..." if len(text) > 300 else "")


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value a server must return for Sec-WebSocket-Key `key`."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XORs `data` with the 4-byte `mask` repeated (masking and unmasking are the same)."""
    n = len(data)
    if n == 0:
        return b""
    repeated = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes, mask: Optional[bytes] = None) -> bytes:
    """One final frame; clients must pass a 4-byte `mask` (servers pass None)."""
    n = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, mask_bit | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, mask_bit | 127, n)
    if mask is None:
        return header + payload
    return header + mask + apply_mask(payload, mask)


class Frame:
    __slots__ = ("fin", "opcode", "payload")

    def __init__(self, fin: bool, opcode: int, payload: bytes) -> None:
        self.fin = fin
        self.opcode = opcode
        self.payload = payload


class FrameParser:
    """Splits a byte stream from a server into frames (partial input is kept for later)."""

    def __init__(self, max_payload: int = MAX_FRAME_BYTES, expect_masked: bool = False) -> None:
        self._buffer = bytearray()
        self._max = max_payload
        self._expect_masked = expect_masked
        self._error = None  # type: Optional[ProtocolError]

    def feed(self, data: bytes) -> List[Frame]:
        """Frames completed by `data`. Frames before a bad one come first; the ProtocolError
        is raised by the next call (see `has_error`)."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        frames = []  # type: List[Frame]
        try:
            while True:
                frame = self._next()
                if frame is None:
                    return frames
                frames.append(frame)
        except ProtocolError as e:
            if not frames:
                raise
            self._error = e
            return frames

    @property
    def has_error(self) -> bool:
        return self._error is not None

    def _next(self) -> Optional[Frame]:
        buf = self._buffer
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        if b0 & 0x70:
            raise ProtocolError("WebSocket frame has RSV bits set but no extension was agreed")
        masked, length, offset = bool(b1 & 0x80), b1 & 0x7F, 2
        if masked != self._expect_masked:
            raise ProtocolError("WebSocket frame masking is wrong for this direction")
        if length == 126:
            if len(buf) < 4:
                return None
            (length,) = struct.unpack_from("!H", buf, 2)
            offset = 4
        elif length == 127:
            if len(buf) < 10:
                return None
            (length,) = struct.unpack_from("!Q", buf, 2)
            offset = 10
        opcode, fin = b0 & 0x0F, bool(b0 & 0x80)
        if opcode >= OP_CLOSE and (length > 125 or not fin):
            raise ProtocolError("WebSocket control frame is fragmented or longer than 125 bytes")
        if length > self._max:
            raise ProtocolError("WebSocket frame of %d bytes exceeds the %d-byte limit"
                                % (length, self._max))
        mask = b""
        if masked:
            if len(buf) < offset + 4:
                return None
            mask = bytes(buf[offset:offset + 4])
            offset += 4
        if len(buf) < offset + length:
            return None
        payload = bytes(buf[offset:offset + length])
        del buf[:offset + length]
        return Frame(fin, opcode, apply_mask(payload, mask) if masked else payload)


def _read_handshake_response(sock: Any) -> Tuple[bytes, bytes]:
    """Returns (head, leftover bytes that already belong to the frame stream)."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HANDSHAKE_BYTES:
            raise HandshakeError(0, "handshake response headers exceed %d bytes"
                                 % MAX_HANDSHAKE_BYTES)
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionClosed("server closed the connection during the handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _read_refusal_body(sock: Any, headers: Dict[str, str], rest: bytes) -> bytes:
    """The body of a non-101 answer, as far as Content-Length goes (or the end of the stream
    with `Connection: close`; else only what already arrived), within MAX_REFUSAL_BODY_BYTES
    and the socket's timeout."""
    length = headers.get("content-length", "")
    if length.isdigit():
        wanted = min(int(length), MAX_REFUSAL_BODY_BYTES)
    elif "close" in headers.get("connection", "").lower():
        wanted = MAX_REFUSAL_BODY_BYTES
    else:
        return rest[:MAX_REFUSAL_BODY_BYTES]
    body = rest
    try:
        while len(body) < wanted:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except OSError:
        pass  # keep what arrived
    return body[:wanted]


def _check_handshake(sock: Any, head: bytes, key: str, rest: bytes) -> None:
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HandshakeError(0, "not an HTTP response: %r" % lines[0][:200])
    status = int(parts[1])
    headers = {}  # type: Dict[str, str]
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if status != 101:
        body = _read_refusal_body(sock, headers, rest).decode("utf-8", "replace")
        error = HandshakeError(status, "server answered %s" % " ".join(parts[1:]), body)
        if error.server_message:
            error.args = ("%s: %s" % (error.args[0], error.server_message),)
        raise error
    if headers.get("upgrade", "").lower() != "websocket":
        raise HandshakeError(status, "server did not upgrade to websocket")
    tokens = [t.strip().lower() for t in headers.get("connection", "").split(",")]
    if "upgrade" not in tokens:
        raise HandshakeError(status, "server response lacks Connection: Upgrade")
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise HandshakeError(status, "server sent a wrong Sec-WebSocket-Accept")


def _host_header(host: str, port: int, secure: bool) -> str:
    shown = "[%s]" % host if ":" in host else host
    return shown if port == (443 if secure else 80) else "%s:%d" % (shown, port)


class WebSocketConnection:
    """A client connection after a successful opening handshake."""

    def __init__(self, sock: Any, leftover: bytes) -> None:
        self._sock = sock
        self._parser = FrameParser()
        self._fragments = []  # type: List[bytes]
        self._fragment_bytes = 0
        self._closing = False
        # Messages before an error are delivered first; the error is raised by the next call.
        self._error = None  # type: Optional[Exception]
        # Frame masks (RFC 6455 5.3: a fresh unpredictable key per frame) come from a pool of
        # os.urandom bytes, each 4 used once: one system call per 1024 frames, not one each.
        self._masks = b""
        self._mask_at = 0
        self._pending = self._consume(leftover)

    def fileno(self) -> int:
        return self._sock.fileno()

    def ready(self) -> bool:
        """True if receive() has something without waiting for the socket to become readable."""
        pending = getattr(self._sock, "pending", None)
        return bool(self._pending or self._error is not None or self._parser.has_error
                    or (pending and pending()))

    def send(self, message: Dict[str, Any]) -> None:
        self._send_frame(OP_TEXT, encode_json(message))

    def receive(self) -> List[Dict[str, Any]]:
        messages, self._pending = self._pending, []
        if messages:
            return messages
        if self._error is not None:
            raise self._error
        if self._parser.has_error:
            data = b""
        else:
            try:
                data = self._sock.recv(65536)
            except OSError as e:
                raise ConnectionClosed("receive failed: %s" % e) from None
            if not data:
                raise ConnectionClosed("server closed the connection")
        messages = self._consume(data)
        if not messages and self._error is not None:
            raise self._error
        return messages

    def _consume(self, data: bytes) -> List[Dict[str, Any]]:
        messages = []  # type: List[Dict[str, Any]]
        try:
            self._process(self._parser.feed(data), messages)
        except (ProtocolError, ConnectionClosed) as e:
            self._error = e
        return messages

    def close(self, code: int = 1000) -> None:
        if not self._closing:
            self._closing = True
            try:
                self._send_frame(OP_CLOSE, struct.pack("!H", code))
            except ConnectionClosed:
                pass
        try:
            self._sock.close()
        except OSError:
            pass

    def close_gracefully(self, timeout: float) -> None:
        """Sends a close frame and waits up to `timeout` for the server's (RFC 6455 7.1.1)."""
        if not self._closing:
            self._closing = True
            try:
                self._send_frame(OP_CLOSE, struct.pack("!H", 1000))
            except ConnectionClosed:
                pass
        parser = FrameParser()
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self._sock], [], [], remaining)[0]:
                    break
                data = self._sock.recv(65536)
                if not data or any(f.opcode == OP_CLOSE for f in parser.feed(data)):
                    break
        except (OSError, ProtocolError):
            pass
        self.close()

    def _next_mask(self) -> bytes:
        if self._mask_at + 4 > len(self._masks):
            self._masks, self._mask_at = os.urandom(MASK_POOL_BYTES), 0
        mask = self._masks[self._mask_at:self._mask_at + 4]
        self._mask_at += 4
        return mask

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        try:
            self._sock.sendall(encode_frame(opcode, payload, self._next_mask()))
        except OSError as e:
            raise ConnectionClosed("send failed: %s" % e) from None

    def _process(self, frames: List[Frame], messages: List[Dict[str, Any]]) -> None:
        for frame in frames:
            if frame.opcode == OP_PING:
                self._send_frame(OP_PONG, frame.payload)
            elif frame.opcode == OP_PONG:
                pass
            elif frame.opcode == OP_CLOSE:
                self._on_close(frame.payload)
            elif frame.opcode == OP_BINARY:
                raise ProtocolError("binary WebSocket messages are not part of the protocol")
            elif frame.opcode in (OP_TEXT, OP_CONTINUATION):
                message = self._assemble(frame)
                if message is not None:
                    messages.append(decode_json(message))
            else:
                raise ProtocolError("unknown WebSocket opcode %d" % frame.opcode)

    def _assemble(self, frame: Frame) -> Optional[bytes]:
        if (frame.opcode == OP_CONTINUATION) != bool(self._fragments):
            raise ProtocolError("WebSocket fragments out of order")
        self._fragment_bytes += len(frame.payload)
        if self._fragment_bytes > MAX_FRAME_BYTES:
            raise ProtocolError("WebSocket message exceeds the %d-byte limit" % MAX_FRAME_BYTES)
        self._fragments.append(frame.payload)
        if not frame.fin:
            return None
        message = b"".join(self._fragments)
        self._fragments, self._fragment_bytes = [], 0
        return message

    def _on_close(self, payload: bytes) -> None:
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        reason = payload[2:].decode("utf-8", "replace")
        if not self._closing:
            self._closing = True
            try:
                self._send_frame(OP_CLOSE, payload[:2])
            except ConnectionClosed:
                pass
        raise ConnectionClosed("server closed the WebSocket (code %d%s)"
                               % (code, ": " + reason if reason else ""))


def connect(url: str, headers: Optional[Mapping[str, str]] = None, timeout: float = 10.0,
            tls: Optional[ssl.SSLContext] = None) -> WebSocketConnection:
    """Opens ws:// or wss:// `url`; wss:// verifies the server's certificate with `tls`
    (default: the system's CAs). Raises OSError (network; ssl.SSLCertVerificationError for a
    certificate that does not verify), HandshakeError (HTTP answer other than a valid 101,
    with .status and .body) or ConnectionClosed."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError("not a ws:// or wss:// URL: %r" % url)
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    sock = socket.create_connection((parts.hostname, port), timeout=timeout)
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if secure:
            context = tls or ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=parts.hostname)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        lines = ["GET %s HTTP/1.1" % path,
                 "Host: %s" % _host_header(parts.hostname, port, secure),
                 "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13"]
        lines += ["%s: %s" % item for item in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        head, rest = _read_handshake_response(sock)
        _check_handshake(sock, head, key, rest)
        return WebSocketConnection(sock, rest)
    except BaseException:
        sock.close()
        raise
