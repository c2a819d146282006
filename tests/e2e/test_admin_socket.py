"""End-to-end: the local admin Unix socket. Trusted by its file permissions (0600, owner only),
so requests need no token; everything else behaves as over TCP."""

import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import HUB_KERNEL  # noqa: E402


class AdminSocketTest(h.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The socket in its own directory, as with $RUNTIME_DIRECTORY under systemd.
        run_dir = os.path.join(cls.tmp, "run")
        cls.daemon = cls.new_daemon(admin_socket=os.path.join(run_dir, "admin.sock")).start()

    def tearDown(self):
        self.assertHealthy(self.daemon)

    def test_socket_file_is_owner_only(self):
        st = os.stat(self.daemon.admin_socket)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, oct(st.st_mode))
        self.assertEqual(st.st_uid, os.getuid())

    def test_token_file_is_owner_only(self):
        st = os.stat(os.path.join(self.daemon.state_dir, "api-token"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, oct(st.st_mode))
        self.assertRegex(self.daemon.token, r"^\S{16,}$")

    def test_requests_need_no_token(self):
        d = self.daemon
        r = d.admin_request("GET", "/api/v1/kernels")
        self.assertEqual(r.status, 200, r)
        r = d.admin_request("POST", "/api/v1/kernels", dict(HUB_KERNEL, name="from-admin"))
        self.assertEqual(r.status, 201, r)
        self.assertIn(r.json["status"], ("pending", "building"))
        # Visible over TCP too (with the token), and recorded as done over the admin socket.
        r = d.get("/api/v1/kernels/from-admin")
        self.assertEqual(r.status, 200, r)
        events = d.events(subject="kernel/from-admin")
        self.assertEqual([(e["kind"], e["actor"]) for e in events if e["kind"] == "kernel.created"],
                         [("kernel.created", "admin-socket")])
        r = d.admin_request("GET", "/api/v1/kernels/from-admin")
        self.assertEqual(r.status, 200, r)
        r = d.admin_request("DELETE", "/api/v1/kernels/from-admin")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(d.get("/api/v1/kernels/from-admin").status, 404)

    def test_status_over_admin_socket(self):
        r = self.daemon.admin_request("GET", "/api/v1/status")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["pid"], self.daemon.pid)
        self.assertEqual(r.json["adminSocket"], self.daemon.admin_socket)
        self.assertEqual(r.json["listen"], f"127.0.0.1:{self.daemon.port}")

    def test_errors_are_the_same_as_over_tcp(self):
        d = self.daemon
        before = d.kernel_count()
        self.assertError(d.admin_request("POST", "/api/v1/kernels", dict(HUB_KERNEL, name="../x")),
                         422, "INVALID_ARGUMENT")
        self.assertError(d.admin_request("POST", "/api/v1/kernels", "{"), 400)
        self.assertError(d.admin_request("POST", "/api/v1/kernels", "{}",
                                         headers={"Content-Type": "text/plain"}),
                         415, "UNSUPPORTED_MEDIA_TYPE")
        self.assertError(d.admin_request("GET", "/api/v1/kernels/missing"), 404, "NOT_FOUND")
        self.assertError(d.admin_request("GET", "/api/v1/nope"), 404, "NOT_FOUND")
        r = d.admin_request("PATCH", "/api/v1/kernels")
        self.assertError(r, 405, "METHOD_NOT_ALLOWED")
        self.assertIn("GET", r.header("Allow", ""))
        self.assertEqual(d.kernel_count(), before)

    def test_keep_alive_over_admin_socket(self):
        conn = self.daemon.admin_connection()
        try:
            first = None
            for i in range(20):
                r = h.do_request(conn, "GET", "/api/v1/kernels")
                self.assertEqual(r.status, 200, r)
                self.assertIsNotNone(conn.sock)
                if first is None:
                    first = conn.sock
                self.assertIs(conn.sock, first, "the admin connection was not kept alive")
        finally:
            conn.close()


if __name__ == "__main__":
    h.main()
