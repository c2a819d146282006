"""HTTP for the tests: finished exchanges (Response), http.client over TCP and over the admin
Unix socket, and raw-socket helpers for what http.client cannot send (malformed, pipelined,
endless or half-sent requests). Every socket has a timeout.

(Not named http.py: with this folder on sys.path it would hide the standard library's http.)"""

import http.client
import json
import socket
import threading

from .settings import HTTP_TIMEOUT


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over an AF_UNIX stream socket (the admin socket)."""

    def __init__(self, path, timeout=HTTP_TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Response:
    """A finished HTTP exchange: status, headers (case-insensitive get), raw body, JSON body
    (None if not JSON)."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def header(self, name, default=None):
        return self.headers.get(name, default)

    @property
    def error_code(self):
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("code")
        return None

    def __repr__(self):
        return f"<Response {self.status} {self.raw[:500]!r}>"


def do_request(conn, method, path, body=None, headers=None):
    """Sends one request on `conn` (kept open) and reads the whole response. A dict or list
    body is sent as JSON, a str as UTF-8, bytes as they are."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    raw = resp.read()
    return Response(resp.status, resp.headers, raw)


def free_port():
    """A port on 127.0.0.1 where nothing listens (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- raw sockets ---------------------------------------------------------------------------------

def parse_raw_response(data):
    """(status, headers dict with lowercase names, body) of the first response in `data`."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise AssertionError(f"not an HTTP response: {data[:200]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(body)))
    return int(parts[1]), headers, body[:length]


def read_until_closed(sock, limit=1 << 20):
    """Reads until EOF, a reset, or `limit` bytes; the socket's timeout bounds each read."""
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    return data


def read_one_response(sock):
    """Reads exactly one response with a Content-Length from a kept-open socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed mid-response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, headers, _ = parse_raw_response(head + b"\r\n\r\n")
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed mid-body")
        body += chunk
    return status, headers, body[:length]


def send_streaming(port, head, chunk, count, timeout=HTTP_TIMEOUT):
    """Sends `head` then `chunk` `count` times on a new TCP connection while a second thread
    reads whatever the server answers; the memory used is one chunk, whatever the total.
    Returns (bytes received, bytes of the body sent before the server stopped reading)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    received = []
    reader = threading.Thread(target=lambda: received.append(read_until_closed(sock)),
                              daemon=True)
    sent = 0
    try:
        sock.sendall(head)
        reader.start()
        for _ in range(count):
            try:
                sock.sendall(chunk)
            except OSError:  # the server closed its side: it has answered already
                break
            sent += len(chunk)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        reader.join(timeout * 2)
        if reader.is_alive():
            raise AssertionError("the server neither answered nor closed the connection")
    finally:
        sock.close()
    return (received[0] if received else b""), sent


def raw_exchange(port, data, timeout=HTTP_TIMEOUT, half_close=False):
    """Sends raw bytes on a new connection and returns everything read until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_until_closed(sock)
