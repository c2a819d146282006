"""End-to-end: SIGTERM and SIGINT stop the daemon cleanly (exit code 0, admin socket removed,
state directory free again), also with clients connected."""

import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import HUB_KERNEL  # noqa: E402


class SignalsTest(h.DaemonTestCase):

    def check_clean_stop(self, sig):
        d = self.new_daemon().start()
        self.assertEqual(d.post("/api/v1/kernels", HUB_KERNEL).status, 201)
        self.assertTrue(os.path.exists(d.admin_socket))
        port = d.port
        # Clients connected at the time of the signal: an idle keep-alive connection, one with
        # half a request, one on the admin socket.
        idle = d.connection()
        h.do_request(idle, "GET", "/healthz")
        half = socket.create_connection(("127.0.0.1", port), timeout=10)
        half.sendall(b"GET /api/v1/kernels HTTP/1.1\r\nHost: x\r\n")
        admin = d.admin_connection()
        h.do_request(admin, "GET", "/api/v1/kernels")
        try:
            rc = d.stop(sig)
        finally:
            idle.close()
            half.close()
            admin.close()
        self.assertEqual(rc, 0, d.log())
        self.assertFalse(os.path.exists(d.admin_socket), "admin socket left behind")
        self.assertIn("event=supervisor.stopped", d.log())
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        # The state directory is free again and the kernel is still there.
        d.start()
        self.assertEqual(d.get("/api/v1/kernels/my-kernel").status, 200)
        self.assertEqual(d.stop(sig), 0, d.log())

    def test_sigterm(self):
        self.check_clean_stop(signal.SIGTERM)

    def test_sigint(self):
        self.check_clean_stop(signal.SIGINT)

    def test_stale_admin_socket_is_replaced(self):
        # A daemon killed with SIGKILL leaves its socket file; the next start replaces it.
        d = self.new_daemon().start()
        d.kill()
        self.assertTrue(os.path.exists(d.admin_socket))
        d.start()
        r = d.admin_request("GET", "/api/v1/status")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["pid"], d.pid)
        self.assertEqual(d.stop(), 0, d.log())


if __name__ == "__main__":
    h.main()
