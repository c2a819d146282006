"""End-to-end: connection handling. Keep-alive and pipelining, slow clients that send half a
request (the daemon keeps serving others and drops them after [server] read_timeout_seconds),
idle keep-alive connections, many connections at once."""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import (HUB_KERNEL, do_request, parse_raw_response,  # noqa: E402
                     read_one_response, read_until_closed)

CONFIG = """
[server]
read_timeout_seconds = 2
idle_timeout_seconds = 3
"""

# Bounds the wait for the daemon to drop a connection: far above the configured timeouts, far
# below the 30 s default that a daemon ignoring the config would use.
DROP_WAIT = 15.0


class ConnectionsTest(h.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.daemon = cls.new_daemon(config_text=h.BASE_CONFIG + CONFIG).start()

    def tearDown(self):
        self.assertHealthy(self.daemon)

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.daemon.port), timeout=DROP_WAIT)

    def test_keep_alive_many_requests_on_one_connection(self):
        d = self.daemon
        conn = d.connection()
        try:
            r = do_request(conn, "GET", "/healthz")
            self.assertEqual(r.status, 200)
            local = conn.sock.getsockname()
            hdrs = d.headers(content_type="application/json")
            for i in range(10):
                name = f"keep-alive-{i}"
                steps = [
                    ("POST", "/api/v1/kernels", dict(HUB_KERNEL, name=name), 201),
                    ("POST", "/api/v1/kernels", dict(HUB_KERNEL, name=name), 200),
                    ("GET", f"/api/v1/kernels/{name}", None, 200),
                    ("GET", "/api/v1/kernels", None, 200),
                    ("POST", "/api/v1/kernels", dict(HUB_KERNEL, name="../x"), 422),
                    ("POST", "/api/v1/kernels", "{", 400),
                    ("GET", "/api/v1/kernels/nope", None, 404),
                    ("PATCH", "/api/v1/kernels", None, 405),
                    ("DELETE", f"/api/v1/kernels/{name}", None, 200),
                ]
                for method, path, body, status in steps:
                    r = do_request(conn, method, path, body, hdrs)
                    self.assertEqual(r.status, status, (method, path, r))
                    self.assertNotEqual(r.header("Connection", "").lower(), "close", r)
                    self.assertIsNotNone(conn.sock, "the server closed the connection")
                    self.assertEqual(conn.sock.getsockname(), local, "reconnected")
            # An error the router answers (401) does not close the connection either.
            r = do_request(conn, "GET", "/api/v1/kernels", None, {})
            self.assertEqual(r.status, 401)
            r = do_request(conn, "GET", "/api/v1/status", None, hdrs)
            self.assertEqual(r.status, 200)
            self.assertEqual(conn.sock.getsockname(), local, "reconnected")
        finally:
            conn.close()

    def test_pipelined_requests(self):
        token = self.daemon.token
        req = (f"GET /api/v1/kernels HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {token}\r\n\r\n")
        last = (f"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        with self.connect() as sock:
            sock.sendall((req * 3 + last).encode())
            data = read_until_closed(sock)
        self.assertEqual(data.count(b"HTTP/1.1 200 "), 4, data[:1000])

    def test_http_1_0_request_is_answered_and_closed(self):
        with self.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            data = read_until_closed(sock)
        status, _, body = parse_raw_response(data)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"status": "ok"})

    def test_slow_clients_do_not_block_others(self):
        d = self.daemon
        token = d.token
        body = json.dumps(dict(HUB_KERNEL, name="slow-kernel")).encode()
        half_body = (f"POST /api/v1/kernels HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:len(body) // 2]
        half_headers = f"GET /api/v1/kernels HTTP/1.1\r\nHost: x\r\nAuthori".encode()
        count = d.kernel_count()
        slow = [self.connect(), self.connect(), self.connect()]
        try:
            slow[0].sendall(half_body)
            slow[1].sendall(half_headers)
            # slow[2] sends nothing at all.
            # Meanwhile the daemon serves everyone else, on new and on kept-alive connections.
            conn = d.connection(timeout=DROP_WAIT)
            try:
                for i in range(5):
                    name = f"while-slow-{i}"
                    r = d.post("/api/v1/kernels", dict(HUB_KERNEL, name=name), conn=conn)
                    self.assertEqual(r.status, 201, r)
                    self.assertEqual(d.get(f"/api/v1/kernels/{name}", conn=conn).status, 200)
                    self.assertEqual(d.request("DELETE", f"/api/v1/kernels/{name}",
                                               conn=conn).status, 200)
                    self.assertEqual(d.get("/healthz", token=None).status, 200)
            finally:
                conn.close()
            # Then it drops the slow ones after read_timeout_seconds (2 s here).
            for sock in slow:
                start = time.monotonic()
                try:
                    rest = read_until_closed(sock)
                except OSError as e:
                    self.fail(f"unexpected error: {e}")
                waited = time.monotonic() - start
                self.assertLess(waited, DROP_WAIT - 1, "the daemon never dropped a slow client")
                if rest:
                    status, _, _ = parse_raw_response(rest)
                    self.assertGreaterEqual(status, 400, rest)
        finally:
            for sock in slow:
                sock.close()
        # The half-sent kernel was never created.
        self.assertEqual(d.kernel_count(), count)
        self.assertEqual(d.get("/api/v1/kernels/slow-kernel").status, 404)

    def test_trickling_client_is_dropped(self):
        # One byte every 0.5 s: each read makes progress, the request as a whole takes too long.
        with self.connect() as sock:
            sock.settimeout(0.5)
            request = b"GET /api/v1/kernels HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 200
            closed = False
            deadline = time.monotonic() + DROP_WAIT
            for byte in request:
                if time.monotonic() > deadline:
                    break
                try:
                    sock.sendall(bytes([byte]))
                    if sock.recv(4096) == b"":
                        closed = True
                        break
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
                    break
            self.assertTrue(closed, "a client trickling one byte at a time was never dropped")

    def test_idle_keep_alive_connection_is_closed(self):
        with self.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _ = read_one_response(sock)
            self.assertEqual(status, 200)
            start = time.monotonic()
            self.assertEqual(read_until_closed(sock), b"")
            self.assertLess(time.monotonic() - start, DROP_WAIT - 1,
                            "an idle keep-alive connection was never closed")

    def test_many_open_connections(self):
        socks = []
        try:
            for _ in range(100):
                socks.append(self.connect())
            # All of them get an answer, in reverse order of opening.
            for sock in reversed(socks):
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            for sock in socks:
                status, _, _ = read_one_response(sock)
                self.assertEqual(status, 200)
        finally:
            for sock in socks:
                sock.close()


if __name__ == "__main__":
    h.main()
