"""Test helpers: run the real shim in a subprocess and play the supervisor's side of both
transports (Unix socket frames and WebSocket), with framing written independently of the shim's
so that a bug on one side does not hide in both.

Everything blocks with a timeout; nothing sleeps without a bound.
"""

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
EXAMPLES = os.path.join(ROOT, "protocol-examples")
TIMEOUT = 15.0  # generous bound for any single wait; tests normally take milliseconds


def shim_env(**extra):
    env = dict(os.environ)
    for name in ("GSK_SUPERVISOR_SOCKET", "GSK_WORKER_ID", "GSK_WORKER_TOKEN", "GSK_API_KEY",
                 "GSK_HF_TOKEN", "GSK_HEARTBEAT_SECONDS", "GSK_ORPHAN_GRACE_SECONDS"):
        env.pop(name, None)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Shim:
    """A shim subprocess whose stdout and stderr go to files (no pipe can fill up and block)."""

    def __init__(self, args, env, cwd=None, pass_fds=(), python=None):
        self._dir = tempfile.TemporaryDirectory(prefix="shim-out-")
        self.stdout_path = os.path.join(self._dir.name, "stdout")
        self.stderr_path = os.path.join(self._dir.name, "stderr")
        python = python or sys.executable
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([python, "-m", "giskard_worker_shim"] + args,
                                         env=env, cwd=cwd, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, pass_fds=pass_fds)
        self.pid = self.proc.pid

    def stdout(self):
        with open(self.stdout_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait(self, timeout=TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def wait_for_stderr(self, text, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stderr():
                return True
            time.sleep(0.02)
        return text in self.stderr()

    def wait_for_stdout(self, text, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stdout():
                return True
            if self.proc.poll() is not None:
                return text in self.stdout()
            time.sleep(0.02)
        return False

    def terminate(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def cleanup(self):
        """Kills the process we started if a test left it running, and removes its files."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        self._dir.cleanup()


# Unix socket side.

class FramePeer:
    """The supervisor's end of one accepted Unix-socket connection."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(TIMEOUT)
        self._buffer = b""

    def send(self, message):
        payload = json.dumps(message).encode("utf-8")
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def send_raw(self, data):
        self.sock.sendall(data)

    def _read(self, n):
        while len(self._buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("shim closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def recv(self, skip_heartbeats=True):
        while True:
            (length,) = struct.unpack(">I", self._read(4))
            message = json.loads(self._read(length).decode("utf-8"))
            if not (skip_heartbeats and message.get("type") == "heartbeat"):
                return message

    def request(self, request_id, method, params=None):
        self.send({"type": "request", "id": request_id, "method": method,
                   "params": params or {}})
        return self.recv()

    def expect_eof(self):
        """Reads until the shim closes, then closes too; returns the messages seen on the way.
        A reset instead of a clean end of stream fails the test."""
        seen = []
        try:
            while True:
                seen.append(self.recv(skip_heartbeats=False))
        except EOFError:
            self.close()
            return seen

    def close(self):
        self.sock.close()


class FakeSupervisor:
    """A listening Unix socket at `path` that can be closed and re-opened (a restart)."""

    def __init__(self, path):
        self.path = path
        self.listener = None
        self.peers = []
        self.listen()

    def listen(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(8)
        self.listener.settimeout(TIMEOUT)

    def accept(self, timeout=TIMEOUT):
        self.listener.settimeout(timeout)
        sock, _ = self.listener.accept()
        self.peers.append(FramePeer(sock))
        return self.peers[-1]

    def register(self, heartbeat_seconds=5):
        """Accepts a connection, reads its hello, answers welcome; returns (peer, hello)."""
        peer = self.accept()
        hello = peer.recv()
        peer.send({"type": "welcome", "protocol": 1, "heartbeatSeconds": heartbeat_seconds,
                   "supervisorPid": os.getpid()})
        return peer, hello

    def stop(self):
        """Closes everything, as a crashed supervisor would; listen() starts again."""
        for peer in self.peers:
            peer.close()
        self.peers = []
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if os.path.exists(self.path):
            os.unlink(self.path)


# WebSocket side.

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _unmask(data, mask):
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class WsPeer:
    """The server's end of one WebSocket connection, after the handshake."""

    def __init__(self, sock, request_line, headers):
        self.sock = sock
        self.request_line = request_line
        self.headers = headers
        self._buffer = b""
        self.last_mask = b""  # the masking key of the last frame received

    def _read(self, n):
        while len(self._buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("client closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def send_frame(self, opcode, payload, fin=True):
        n = len(payload)
        first = (0x80 if fin else 0) | opcode
        if n < 126:
            header = struct.pack("!BB", first, n)
        elif n < 65536:
            header = struct.pack("!BBH", first, 126, n)
        else:
            header = struct.pack("!BBQ", first, 127, n)
        self.sock.sendall(header + payload)

    def send(self, message):
        self.send_frame(0x1, json.dumps(message).encode("utf-8"))

    def recv_frame(self):
        b0, b1 = self._read(2)
        assert b1 & 0x80, "client frames must be masked"
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read(8))
        mask = self.last_mask = self._read(4)
        return b0 & 0x0F, _unmask(self._read(n), mask)

    def expect_close(self):
        """Reads until the client's close frame, answers it and closes; returns the code."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 0x8:
                try:
                    self.send_frame(0x8, payload[:2])
                except OSError:
                    pass  # the client already gave up waiting
                self.close()
                return struct.unpack("!H", payload[:2])[0]

    def recv(self, skip_heartbeats=True):
        while True:
            opcode, payload = self.recv_frame()
            if opcode != 0x1:
                continue
            message = json.loads(payload.decode("utf-8"))
            if not (skip_heartbeats and message.get("type") == "heartbeat"):
                return message

    def close(self):
        self.sock.close()


class FakeWsServer:
    """A stdlib WebSocket endpoint on 127.0.0.1 (handshake per RFC 6455 section 4.2); with
    `tls` (a server-side ssl.SSLContext), behind TLS, and its URL https://."""

    def __init__(self, tls=None):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)
        self.tls = tls
        self.peers = []

    def accept_http(self):
        sock, _ = self.listener.accept()
        sock.settimeout(TIMEOUT)
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_side=True)
            except BaseException:
                sock.close()
                raise
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise EOFError("client closed during the handshake")
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("iso-8859-1").split("\r\n")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return sock, head[0], headers

    def accept(self):
        """Completes a handshake and returns the peer."""
        sock, request_line, headers = self.accept_http()
        digest = hashlib.sha1((headers["sec-websocket-key"] + WS_GUID).encode()).digest()
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                      % base64.b64encode(digest).decode()).encode())
        self.peers.append(WsPeer(sock, request_line, headers))
        return self.peers[-1]

    def register(self, heartbeat_seconds=5):
        peer = self.accept()
        hello = peer.recv()
        peer.send({"type": "welcome", "protocol": 1, "heartbeatSeconds": heartbeat_seconds,
                   "supervisorPid": os.getpid()})
        return peer, hello

    def close(self):
        for peer in self.peers:
            peer.close()
        self.listener.close()


def http_response(status, body=b"", content_type="application/json", reason="Whatever"):
    return (("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
             "Connection: close\r\n\r\n" % (status, reason, content_type, len(body))).encode()
            + body)


class HttpResponder:
    """Answers the plain HTTP requests that reach a FakeWsServer's listener, on a thread, while
    the test talks to a worker over a WebSocket it accepted before: `respond(request_line,
    headers)` returns the response's bytes. Every request is recorded as (line, headers)."""

    def __init__(self, server, respond):
        self.server = server
        self.requests = []
        self._respond = respond
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        self.server.listener.settimeout(0.05)
        while not self._stopping:
            try:
                sock, line, headers = self.server.accept_http()
            except socket.timeout:
                continue
            except (OSError, EOFError):
                if self._stopping:
                    return
                continue
            self.requests.append((line, headers))
            try:
                sock.sendall(self._respond(line, headers))
            except OSError:
                pass
            finally:
                sock.close()

    def close(self):
        self._stopping = True
        self._thread.join(TIMEOUT)
        self.server.listener.settimeout(TIMEOUT)


def make_certificate(directory, common_name="127.0.0.1",
                     alt_names="IP:127.0.0.1,DNS:localhost"):
    """A self-signed certificate and its key (PEM files in `directory`), made with the openssl
    command; None when openssl is not on PATH."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    "-days", "2", "-subj", "/CN=" + common_name, "-addext",
                    "subjectAltName=" + alt_names, "-keyout", key, "-out", cert],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, timeout=60)
    return cert, key


def server_tls(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
