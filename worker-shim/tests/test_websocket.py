"""The RFC 6455 client: frame codec (RFC examples), a connection over a socket pair, the opening
handshake against a stdlib server, and the real `worker start` against that server."""

import json
import os
import socket
import struct
import ssl
import tempfile
import threading
import time
import unittest
from unittest import mock

from giskard_worker_shim import websocket
from giskard_worker_shim.protocol import ConnectionClosed, ProtocolError
from tests.support import (TIMEOUT, FakeWsServer, Shim, WsPeer, http_response, make_certificate,
                           server_tls, shim_env)

MASK = b"\x37\xfa\x21\x3d"


class CodecTest(unittest.TestCase):
    def test_accept_key_rfc_example(self):
        self.assertEqual(websocket.accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
                         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")

    def test_masked_hello_rfc_example(self):
        self.assertEqual(websocket.encode_frame(websocket.OP_TEXT, b"Hello", MASK),
                         bytes([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]))

    def test_unmasked_and_fragmented_rfc_examples(self):
        frames = websocket.FrameParser().feed(
            bytes([0x81, 0x05]) + b"Hello" + bytes([0x01, 0x03]) + b"Hel"
            + bytes([0x80, 0x02]) + b"lo")
        self.assertEqual([(f.fin, f.opcode, f.payload) for f in frames],
                         [(True, 1, b"Hello"), (False, 1, b"Hel"), (True, 0, b"lo")])

    def test_length_encodings_round_trip(self):
        for n in (0, 1, 125, 126, 127, 65535, 65536, 70000):
            payload = os.urandom(n)
            data = websocket.encode_frame(websocket.OP_TEXT, payload, os.urandom(4))
            parser = websocket.FrameParser(expect_masked=True)
            self.assertEqual(parser.feed(data[:-1] if n else b""), [])
            frames = parser.feed(data[-1:] if n else data)
            self.assertEqual(frames[0].payload, payload, n)

    def test_bad_frames(self):
        cases = {
            "masked from server": bytes([0x81, 0x80]) + MASK,
            "rsv bits": bytes([0xC1, 0x00]),
            "long control frame": bytes([0x89, 126, 0, 200]),
            "fragmented control": bytes([0x09, 0x00]),
            "too large": bytes([0x81, 127]) + struct.pack("!Q", 16 * 1024 * 1024 + 1),
        }
        for name, data in cases.items():
            with self.subTest(name), self.assertRaises(ProtocolError):
                websocket.FrameParser().feed(data)


class ConnectionTest(unittest.TestCase):
    """A WebSocketConnection on one end of a socket pair; the test plays the server."""

    def setUp(self):
        client, server = socket.socketpair()
        server.settimeout(TIMEOUT)
        self.conn = websocket.WebSocketConnection(client, b"")
        self.server = WsPeer(server, "", {})
        self.addCleanup(self.conn.close)
        self.addCleanup(self.server.close)

    def test_fragmented_message_with_a_ping_in_between(self):
        text = json.dumps({"type": "request", "id": "r1", "method": "ping"}).encode()
        self.server.send_frame(0x1, text[:10], fin=False)
        self.server.send_frame(0x9, b"are you there")
        self.server.send_frame(0x0, text[10:])
        messages = []
        while not messages:
            messages = self.conn.receive()
        self.assertEqual(messages, [{"type": "request", "id": "r1", "method": "ping"}])
        self.assertEqual(self.server.recv_frame(), (0xA, b"are you there"))

    def test_client_frames_are_masked_text(self):
        self.conn.send({"type": "heartbeat", "ts": 1.5})
        self.assertEqual(self.server.recv(skip_heartbeats=False), {"type": "heartbeat", "ts": 1.5})

    def test_masks_come_from_a_pool_each_used_once(self):
        pools = []
        real_urandom = os.urandom

        def urandom(n):
            pools.append(real_urandom(n))
            return pools[-1]

        masks = []
        with mock.patch.object(websocket.os, "urandom", urandom):
            for i in range(1100):  # more frames than one pool's 1024 masks
                self.conn.send({"type": "heartbeat", "ts": i})
                payload = b'{"type":"heartbeat","ts":%d}' % i
                self.assertEqual(self.server.recv_frame(), (0x1, payload))
                masks.append(self.server.last_mask)
        self.assertEqual([len(p) for p in pools], [websocket.MASK_POOL_BYTES] * 2)
        drawn = b"".join(pools)
        self.assertEqual(masks, [drawn[4 * i:4 * i + 4] for i in range(1100)])
        self.assertGreater(len(set(masks)), 1)

    def test_close_is_echoed_and_ends_the_connection(self):
        self.server.send_frame(0x8, struct.pack("!H", 1001) + b"going away")
        with self.assertRaisesRegex(ConnectionClosed, "1001: going away"):
            self.conn.receive()
        self.assertEqual(self.server.recv_frame(), (0x8, struct.pack("!H", 1001)))

    def test_message_before_a_close_in_the_same_read_is_delivered(self):
        self.server.send_frame(0x1, b'{"type":"welcome"}')
        self.server.send_frame(0x8, struct.pack("!H", 1000))
        messages = []
        while not messages:
            messages = self.conn.receive()
        self.assertEqual(messages, [{"type": "welcome"}])
        self.assertTrue(self.conn.ready())
        with self.assertRaises(ConnectionClosed):
            self.conn.receive()

    def test_binary_messages_are_refused(self):
        self.server.send_frame(0x2, b"\x00\x01")
        with self.assertRaises(ProtocolError):
            self.conn.receive()


def serve_once(server, respond):
    """Runs `respond(sock, request_line, headers)` for one connection on a thread."""
    def run():
        sock, line, headers = server.accept_http()
        try:
            respond(sock, line, headers)
        finally:
            sock.close()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


class HandshakeTest(unittest.TestCase):
    def setUp(self):
        self.server = FakeWsServer()
        self.addCleanup(self.server.close)
        self.url = "ws://127.0.0.1:%d/api/v1/workers/connect" % self.server.port

    def test_rejected_key(self):
        def respond(sock, line, headers):
            sock.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 11\r\n\r\nbad api key")
        thread = serve_once(self.server, respond)
        with self.assertRaises(websocket.HandshakeError) as caught:
            websocket.connect(self.url, {"Authorization": "Bearer nope"}, timeout=TIMEOUT)
        self.assertEqual(caught.exception.status, 401)
        self.assertIn("bad api key", str(caught.exception))
        thread.join(TIMEOUT)

    def test_refusal_body_is_read_and_its_message_parsed(self):
        body = b'{"error":{"code":"CONFLICT","message":"the name \\"k\\" is taken"}}'

        def respond(sock, line, headers):
            sock.sendall(b"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
            time.sleep(0.05)  # the rest of the body comes in a later segment
            sock.sendall(body[10:])
            sock.recv(1)
        thread = serve_once(self.server, respond)
        with self.assertRaises(websocket.HandshakeError) as caught:
            websocket.connect(self.url, timeout=TIMEOUT)
        thread.join(TIMEOUT)
        self.assertEqual(caught.exception.status, 409)
        self.assertEqual(caught.exception.body, body.decode())
        self.assertEqual(caught.exception.server_message, 'the name "k" is taken')
        self.assertEqual(str(caught.exception),
                         'server answered 409 Conflict: the name "k" is taken')

    def test_refusal_bodies_without_json(self):
        cases = [(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nbusy, "
                  b"come back\n  later", "busy, come back later"),
                 (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", ""),
                 (b"HTTP/1.1 500 Oops\r\nContent-Length: 9\r\n\r\n[1, 2, 3]", "[1, 2, 3]")]
        for response, message in cases:
            with self.subTest(response=response):
                def respond(sock, line, headers, response=response):
                    sock.sendall(response)
                thread = serve_once(self.server, respond)
                with self.assertRaises(websocket.HandshakeError) as caught:
                    websocket.connect(self.url, timeout=TIMEOUT)
                thread.join(TIMEOUT)
                self.assertEqual(caught.exception.server_message, message)

    def test_wrong_accept_key(self):
        def respond(sock, line, headers):
            sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n")
        thread = serve_once(self.server, respond)
        with self.assertRaisesRegex(websocket.HandshakeError, "Accept"):
            websocket.connect(self.url, timeout=TIMEOUT)
        thread.join(TIMEOUT)

    def test_frame_right_behind_the_101_is_not_lost(self):
        seen = {}

        def respond(sock, line, headers):
            seen.update(headers, line=line)
            accept = websocket.accept_key(headers["sec-websocket-key"])
            sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
                          "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                          % accept).encode() + bytes([0x81, 0x0C]) + b'{"type":"x"}')
            sock.recv(1)  # wait for the client to hang up
        thread = serve_once(self.server, respond)
        conn = websocket.connect(self.url + "?v=1", {"Authorization": "Bearer k"},
                                 timeout=TIMEOUT)
        self.assertTrue(conn.ready())
        self.assertEqual(conn.receive(), [{"type": "x"}])
        conn.close()
        thread.join(TIMEOUT)
        self.assertEqual(seen["line"], "GET /api/v1/workers/connect?v=1 HTTP/1.1")
        self.assertEqual(seen["host"], "127.0.0.1:%d" % self.server.port)
        self.assertEqual(seen["authorization"], "Bearer k")
        self.assertEqual(seen["sec-websocket-version"], "13")


class WorkerStartTest(unittest.TestCase):
    """`worker start` in the foreground, in a subprocess, against the stdlib server."""

    def setUp(self):
        self.server = FakeWsServer()
        self.addCleanup(self.server.close)
        home = tempfile.TemporaryDirectory(prefix="gsk-home-")
        self.addCleanup(home.cleanup)
        self.home = home.name

    def start(self, *extra, **env):
        shim = Shim(["worker", "start", "-u", self.server.url, "--name", "laptop"] + list(extra),
                    shim_env(GSK_HOME=self.home, **env))
        self.addCleanup(shim.cleanup)
        return shim

    def test_registers_serves_and_shuts_down(self):
        shim = self.start("-k", "secret-key", "--hf-token", "hf_abc")
        peer, hello = self.server.register()
        self.assertEqual(peer.request_line, "GET /api/v1/workers/connect HTTP/1.1")
        self.assertEqual(peer.headers["authorization"], "Bearer secret-key")
        self.assertEqual(peer.headers["cookie"], "spaces-jwt=hf_abc")
        self.assertEqual(peer.headers["x-giskard-worker-name"], "laptop")
        self.assertEqual(hello["type"], "hello")
        self.assertEqual(hello["name"], "laptop")
        self.assertNotIn("token", hello)
        self.assertIs(hello["reconnect"], False)
        self.assertEqual(hello["env"]["pid"], shim.pid)
        self.assertTrue(shim.wait_for_stdout("Connected to Giskard server.\n"))
        self.assertEqual(shim.stdout(), "Connected to Giskard server.\n")
        peer.send_frame(0x9, b"ping-payload")
        self.assertEqual(peer.recv_frame(), (0xA, b"ping-payload"))
        peer.send({"type": "request", "id": "r1", "method": "ping", "params": {}})
        self.assertEqual(peer.recv(), {"type": "reply", "id": "r1", "result": {"pong": True}})
        peer.send({"type": "request", "id": "r2", "method": "shutdown", "params": {}})
        self.assertEqual(peer.recv(), {"type": "reply", "id": "r2", "result": {"ok": True}})
        self.assertEqual(peer.expect_close(), 1000)
        self.assertEqual(shim.wait(), 0, shim.stderr())

    def test_key_from_environment_and_reconnect_after_close(self):
        shim = self.start(GSK_API_KEY="env-key")
        peer, _ = self.server.register()
        self.assertEqual(peer.headers["authorization"], "Bearer env-key")
        self.assertNotIn("cookie", peer.headers)
        peer.send_frame(0x8, struct.pack("!H", 1001))
        self.assertEqual(peer.recv_frame()[0], 0x8)  # the client echoes the close
        peer.close()
        peer, again = self.server.register()
        self.assertIs(again["reconnect"], True)
        self.assertTrue(shim.wait_for_stdout("Connected to Giskard server.\n" * 2))
        shim.terminate()
        self.assertEqual(peer.expect_close(), 1000)
        self.assertEqual(shim.wait(), 0, shim.stderr())

    def test_rejected_key_exits_77(self):
        shim = self.start("-k", "wrong")

        def respond(sock, line, headers):
            sock.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        serve_once(self.server, respond).join(TIMEOUT)
        self.assertEqual(shim.wait(), 77, shim.stderr())
        self.assertIn("the server refused the API key (HTTP 401: no reason given); check the key "
                      "given with -k or GSK_API_KEY", shim.stderr())
        self.assertNotIn("Connected", shim.stdout())

    def test_refusals_print_the_servers_message_and_exit_77(self):
        cases = {
            403: "the server does not let this API key in (HTTP 403: worker keys only); check "
                 "the key given with -k or GSK_API_KEY",
            409: "the server refused the worker name 'laptop' (HTTP 409: worker keys only)",
        }
        for status, expected in cases.items():
            with self.subTest(status=status):
                shim = self.start("-k", "key")
                seen = {}

                def respond(sock, line, headers, status=status):
                    seen.update(headers)
                    body = b'{"error":{"code":"X","message":"worker keys only"}}'
                    sock.sendall(http_response(status, body))
                serve_once(self.server, respond).join(TIMEOUT)
                self.assertEqual(shim.wait(), 77, shim.stderr())
                self.assertIn("cannot register with the Giskard server: " + expected + "\n",
                              shim.stderr())
                self.assertEqual(seen["x-giskard-worker-name"], "laptop")

    def test_other_refusals_are_retried(self):
        shim = self.start("-k", "key")

        def respond(sock, line, headers):
            sock.sendall(http_response(503, b'{"error":{"message":"shutting down"}}'))
        serve_once(self.server, respond).join(TIMEOUT)
        peer, hello = self.server.register()
        self.assertEqual(hello["name"], "laptop")
        self.assertTrue(shim.wait_for_stdout("Connected to Giskard server.\n"))
        self.assertIn("server answered 503 Whatever: shutting down); retrying", shim.stderr())
        shim.terminate()
        self.assertEqual(peer.expect_close(), 1000)
        self.assertEqual(shim.wait(), 0, shim.stderr())

    def test_missing_key_is_a_usage_error(self):
        shim = self.start()
        self.assertEqual(shim.wait(), 2)
        self.assertIn("GSK_API_KEY", shim.stderr())


class TlsTest(unittest.TestCase):
    """wss:// with a certificate made here: trusted through --ca-file, refused without it."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="gsk-tls-")
        made = make_certificate(cls.dir.name)
        if made is None:
            cls.dir.cleanup()
            raise unittest.SkipTest("openssl is not on PATH: cannot make a test certificate")
        cls.cert, cls.key = made

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def setUp(self):
        self.server = FakeWsServer(tls=server_tls(self.cert, self.key))
        self.addCleanup(self.server.close)
        self.endpoint = "wss://127.0.0.1:%d/api/v1/workers/connect" % self.server.port
        home = tempfile.TemporaryDirectory(prefix="gsk-home-")
        self.addCleanup(home.cleanup)
        self.home = home.name

    def start(self, *extra):
        shim = Shim(["worker", "start", "-k", "key", "-u", self.server.url, "--name", "tls"]
                    + list(extra), shim_env(GSK_HOME=self.home))
        self.addCleanup(shim.cleanup)
        return shim

    def test_client_verifies_with_the_given_ca(self):
        accepted = []
        thread = threading.Thread(target=lambda: accepted.append(self.server.accept()))
        thread.start()
        conn = websocket.connect(self.endpoint, timeout=TIMEOUT,
                                 tls=ssl.create_default_context(cafile=self.cert))
        thread.join(TIMEOUT)
        accepted[0].send({"type": "welcome"})
        messages = []
        while not messages:
            messages = conn.receive()
        self.assertEqual(messages, [{"type": "welcome"}])
        conn.close()

    def test_system_cas_do_not_trust_a_self_signed_certificate(self):
        thread = threading.Thread(target=self.expect_failed_handshake)
        thread.start()
        with self.assertRaises(ssl.SSLCertVerificationError):
            websocket.connect(self.endpoint, timeout=TIMEOUT)
        thread.join(TIMEOUT)

    def expect_failed_handshake(self):
        with self.assertRaises((ssl.SSLError, OSError, EOFError)):
            self.server.accept_http()

    def test_worker_over_wss_with_ca_file(self):
        shim = self.start("--ca-file", self.cert)
        peer, hello = self.server.register()
        self.assertEqual(hello["name"], "tls")
        self.assertEqual(peer.request_line, "GET /api/v1/workers/connect HTTP/1.1")
        self.assertTrue(shim.wait_for_stdout("Connected to Giskard server.\n"))
        peer.send({"type": "request", "id": "r1", "method": "ping", "params": {}})
        self.assertEqual(peer.recv(), {"type": "reply", "id": "r1", "result": {"pong": True}})
        shim.terminate()
        self.assertEqual(peer.expect_close(), 1000)
        self.assertEqual(shim.wait(), 0, shim.stderr())

    def test_untrusted_certificate_stops_the_worker_with_77(self):
        shim = self.start()
        self.expect_failed_handshake()
        self.assertEqual(shim.wait(), 77, shim.stderr())
        # OpenSSL 3 says "self-signed certificate", OpenSSL 1.1 "self signed certificate".
        self.assertRegex(shim.stderr(), "cannot register with the Giskard server: cannot verify "
                         "the TLS certificate of 127.0.0.1:%d: self.signed certificate; if the "
                         "server uses a self-signed certificate or a private CA, pass that "
                         "certificate with --ca-file PATH\n" % self.server.port)
        self.assertNotIn("Connected", shim.stdout())

    def test_after_a_welcome_a_certificate_failure_is_retried(self):
        shim = self.start("--ca-file", self.cert)
        peer, _ = self.server.register()
        self.assertTrue(shim.wait_for_stdout("Connected to Giskard server.\n"))
        trusted = self.server.tls
        with tempfile.TemporaryDirectory() as directory:
            self.server.tls = server_tls(*make_certificate(directory))  # not the --ca-file one
        peer.close()  # the worker redials, and finds a certificate it cannot verify
        self.expect_failed_handshake()
        self.server.tls = trusted
        peer, hello = self.server.register()  # it kept trying
        self.assertIs(hello["reconnect"], True)
        self.assertTrue(shim.wait_for_stdout("Connected to Giskard server.\n" * 2))
        self.assertIn("cannot verify the TLS certificate", shim.stderr())
        shim.terminate()
        self.assertEqual(peer.expect_close(), 1000)
        self.assertEqual(shim.wait(), 0, shim.stderr())

    def test_certificate_for_another_host_is_refused(self):
        with tempfile.TemporaryDirectory() as directory:
            cert, key = make_certificate(directory, "elsewhere", "DNS:elsewhere.example")
            server = FakeWsServer(tls=server_tls(cert, key))
            self.addCleanup(server.close)
            shim = Shim(["worker", "start", "-k", "key", "-u", server.url, "--name", "x",
                         "--ca-file", cert], shim_env(GSK_HOME=self.home))
            self.addCleanup(shim.cleanup)
            with self.assertRaises((ssl.SSLError, OSError, EOFError)):
                server.accept_http()
            self.assertEqual(shim.wait(), 77, shim.stderr())
            self.assertIn("cannot verify the TLS certificate of 127.0.0.1:%d: IP address "
                          "mismatch, certificate is not valid for '127.0.0.1'; use a server URL "
                          "with a host name or address that the certificate names\n"
                          % server.port, shim.stderr())


if __name__ == "__main__":
    unittest.main()
