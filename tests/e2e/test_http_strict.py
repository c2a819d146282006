"""End-to-end: HTTP framing and connections tried as an attacker would, with raw sockets.

A request whose length is ambiguous is refused with 400 and its connection closed, so nothing
can be smuggled behind it; chunk lines and trailers are bounded; idle connections cannot lock
other clients out (the longest-idle one is closed to make room); /healthz and the admin socket
always answer; integer fields of the kernel document take integers only."""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import HUB_KERNEL, parse_raw_response, read_one_response, read_until_closed  # noqa: E402

CONFIG = """
[server]
max_connections = 64
read_timeout_seconds = 20
idle_timeout_seconds = 120
"""
TIMEOUT = 15.0


class StrictHttpTest(h.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.daemon = cls.new_daemon(config_text=h.BASE_CONFIG + CONFIG).start()

    def tearDown(self):
        self.assertHealthy(self.daemon)

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.daemon.port), timeout=TIMEOUT)

    def post(self, headers, body):
        """A raw POST /api/v1/kernels with the token and `headers`, then `body` bytes."""
        head = ("POST /api/v1/kernels HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {self.daemon.token}\r\n"
                "Content-Type: application/json\r\n" + "".join(h + "\r\n" for h in headers) +
                "\r\n")
        return head.encode() + body

    def smuggled(self, name):
        """A second request, pipelined behind the first: it must never be served."""
        body = json.dumps(dict(HUB_KERNEL, name=name)).encode()
        return self.post([f"Content-Length: {len(body)}"], body)

    def assert_refused_and_closed(self, raw, why, smuggled_name):
        sock = self.connect()
        try:
            sock.sendall(raw + self.smuggled(smuggled_name))
            data = read_until_closed(sock)  # the daemon closes: EOF, not a second answer
        finally:
            sock.close()
        status, _, body = parse_raw_response(data)
        self.assertEqual(status, 400, data[:300])
        self.assertIn(why, json.loads(body)["error"]["message"])
        self.assertEqual(data.count(b"HTTP/1.1 "), 1, data[:500])
        self.assertEqual(self.daemon.get(f"/api/v1/kernels/{smuggled_name}").status, 404)

    def test_transfer_encoding_other_than_chunked_is_refused(self):
        doc = json.dumps(dict(HUB_KERNEL, name="te-gzip")).encode()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(doc), doc)
        for i, te in enumerate(["gzip, chunked", "chunked, identity", "identity", "x"]):
            with self.subTest(te=te):
                self.assert_refused_and_closed(self.post([f"Transfer-Encoding: {te}"], chunked),
                                               "only \"chunked\"", f"smuggled-te-{i}")
        self.assertEqual(self.daemon.get("/api/v1/kernels/te-gzip").status, 404)

    def test_transfer_encoding_with_content_length_is_refused(self):
        doc = json.dumps(dict(HUB_KERNEL, name="te-cl")).encode()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(doc), doc)
        raw = self.post(["Transfer-Encoding: chunked", f"Content-Length: {len(chunked)}"],
                        chunked)
        self.assert_refused_and_closed(raw, "Content-Length", "smuggled-te-cl")
        raw = self.post([f"Content-Length: {len(chunked)}", "Transfer-Encoding: chunked"],
                        chunked)
        self.assert_refused_and_closed(raw, "Content-Length", "smuggled-cl-te")

    def test_repeated_framing_headers_are_refused(self):
        doc = json.dumps(dict(HUB_KERNEL, name="dup")).encode()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(doc), doc)
        self.assert_refused_and_closed(
            self.post(["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], chunked),
            "Transfer-Encoding", "smuggled-te-te")
        sock = self.connect()
        try:
            # Two equal Content-Length fields: still ambiguous for some proxies, refused.
            sock.sendall(self.post([f"Content-Length: {len(doc)}"] * 2, doc))
            status, _, _ = parse_raw_response(read_until_closed(sock))
            self.assertEqual(status, 400)
        finally:
            sock.close()

    def test_chunked_in_http_1_0_is_refused(self):
        raw = (b"POST /api/v1/kernels HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"0\r\n\r\n")
        sock = self.connect()
        try:
            sock.sendall(raw)
            status, _, body = parse_raw_response(read_until_closed(sock))
        finally:
            sock.close()
        self.assertEqual(status, 400)
        self.assertIn("HTTP/1.0", json.loads(body)["error"]["message"])

    def test_chunk_extensions_and_trailers_are_bounded(self):
        doc = json.dumps(dict(HUB_KERNEL, name="ext")).encode()
        long_ext = b";x=" + b"a" * 4096
        chunked = b"%x%s\r\n%s\r\n0\r\n\r\n" % (len(doc), long_ext, doc)
        sock = self.connect()
        try:
            sock.sendall(self.post(["Transfer-Encoding: chunked"], chunked))
            status, _, _ = parse_raw_response(read_until_closed(sock))
            self.assertEqual(status, 400)
        finally:
            sock.close()
        # A huge trailer section: refused once it passes the limit, and the connection closes.
        sock = self.connect()
        try:
            sock.sendall(self.post(["Transfer-Encoding: chunked"],
                                   b"%x\r\n%s\r\n0\r\n" % (len(doc), doc)))
            sent = 0
            try:
                while sent < (1 << 20):
                    sock.sendall(b"X-Trailer: " + b"b" * 1000 + b"\r\n")
                    sent += 1013
            except (BrokenPipeError, ConnectionResetError):
                pass
            data = read_until_closed(sock)
            status, _, _ = parse_raw_response(data)
            self.assertIn(status, (400, 431), data[:200])
        finally:
            sock.close()
        self.assertEqual(self.daemon.get("/api/v1/kernels/ext").status, 404)
        # Short extensions and trailers are fine.
        ok = self.post(["Transfer-Encoding: chunked"],
                       b"%x;name=val\r\n%s\r\n0\r\nX-Checksum: 1\r\n\r\n" % (len(doc), doc))
        sock = self.connect()
        try:
            sock.sendall(ok)
            status, _, _ = read_one_response(sock)
            self.assertEqual(status, 201)
        finally:
            sock.close()

    def test_idle_connections_cannot_lock_others_out(self):
        """More idle connections than the limit: each new client is still answered, because
        the longest-idle connection is closed to make room."""
        idle = []
        try:
            for _ in range(200):  # the limit is 64
                idle.append(self.connect())
            time.sleep(0.5)
            for path in ("/healthz", "/api/v1/kernels"):
                sock = self.connect()
                try:
                    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                                 f"{self.daemon.token}\r\n\r\n".encode())
                    status, _, _ = read_one_response(sock)
                    self.assertEqual(status, 200, path)
                finally:
                    sock.close()
            # The oldest idle connections were the ones closed.
            closed = 0
            for sock in idle[:100]:
                sock.settimeout(0.2)
                try:
                    if sock.recv(1) == b"":
                        closed += 1
                except (socket.timeout, ConnectionResetError):
                    closed += isinstance(sys.exc_info()[1], ConnectionResetError)
            self.assertGreater(closed, 50)
            # The admin socket has its own room.
            self.assertEqual(self.daemon.admin_request("GET", "/api/v1/kernels").status, 200)
        finally:
            for sock in idle:
                sock.close()

    def test_integer_fields_take_integers_only(self):
        for name, field, value in [("v-text", "version", "abc"), ("v-float", "version", 2.5),
                                   ("v-bool", "version", True), ("w-text", "workers", "2"),
                                   ("w-float", "workers", 1.5)]:
            with self.subTest(field=field, value=value):
                r = self.daemon.post("/api/v1/kernels", dict(HUB_KERNEL, name=name, **{field: value}))
                self.assertError(r, 422, "INVALID_ARGUMENT")
                self.assertEqual(r.json["error"]["details"]["field"], field)
        r = self.daemon.post("/api/v1/kernels", dict(HUB_KERNEL, name="v-int", version=3))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["version"], 3)
        r = self.daemon.post("/api/v1/kernels", dict(HUB_KERNEL, name="v-dotted", version="2.14.0"))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["version"], "2.14.0")


if __name__ == "__main__":
    h.main()
