"""End-to-end: the daemon's state survives a restart, and a second daemon on the same state
directory refuses to start (exit code 3, naming the running one's pid)."""

import os
import signal
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import HUB_KERNEL, stable  # noqa: E402


class RestartTest(h.DaemonTestCase):

    def test_kernels_and_token_survive_a_restart(self):
        d = self.new_daemon().start()
        created = d.post("/api/v1/kernels", HUB_KERNEL)
        self.assertEqual(created.status, 201, created)
        other = d.post("/api/v1/kernels", dict(HUB_KERNEL, name="second", pythonVersion="3.10"))
        self.assertEqual(other.status, 201, other)
        replaced = d.request("PUT", "/api/v1/kernels/second",
                             dict(HUB_KERNEL, name="second", version="3.0.0"))
        self.assertEqual(replaced.status, 200, replaced)
        gone = d.post("/api/v1/kernels", dict(HUB_KERNEL, name="gone"))
        self.assertEqual(gone.status, 201, gone)
        self.assertEqual(d.request("DELETE", "/api/v1/kernels/gone").status, 200)
        token = d.token
        first_pid = d.pid
        # Let the env builds end (offline, they fail) before the restart, so that the kernels
        # are at rest; a restart must leave them as they are.
        for name in ("my-kernel", "second"):
            d.wait_status(name, ("ready", "failed"))
        before = d.get("/api/v1/kernels").json

        self.assertEqual(d.stop(signal.SIGTERM), 0, d.log())
        d.start()
        self.assertNotEqual(d.pid, first_pid)

        self.assertEqual(d.token, token)
        st = os.stat(os.path.join(d.state_dir, "api-token"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        # The old token still works, and the kernels are exactly as they were.
        after = d.get("/api/v1/kernels")
        self.assertEqual(after.status, 200, after)
        self.assertEqual(after.json, before)
        self.assertEqual(after.json["count"], 2)
        shown = d.get("/api/v1/kernels/my-kernel").json
        self.assertEqual(stable(shown), stable(created.json))
        self.assertEqual(d.get("/api/v1/kernels/second").json["generation"], 2)
        self.assertEqual(d.get("/api/v1/kernels/gone").status, 404)
        # The audit trail too, with both starts recorded.
        kinds = [e["kind"] for e in d.events(subject="kernel/second")
                 if e["kind"] in ("kernel.created", "kernel.replaced", "kernel.deleted")]
        self.assertEqual(kinds, ["kernel.created", "kernel.replaced"])
        starts = [e for e in d.events(subject="supervisor") if e["kind"] == "supervisor.started"]
        self.assertEqual(len(starts), 2, starts)
        # And it keeps accepting writes; idempotence still holds across the restart.
        self.assertEqual(d.post("/api/v1/kernels", HUB_KERNEL).status, 200)
        self.assertEqual(d.stop(), 0, d.log())

    def test_many_restarts_in_a_row(self):
        d = self.new_daemon()
        for i in range(5):
            d.start()
            r = d.post("/api/v1/kernels", dict(HUB_KERNEL, name=f"restart-{i}"))
            self.assertEqual(r.status, 201, r)
            self.assertEqual(d.kernel_count(), i + 1)
            self.assertEqual(d.stop(), 0, d.log())

    def test_second_instance_on_the_same_state_dir_exits_3(self):
        first = self.new_daemon().start()
        self.assertEqual(first.post("/api/v1/kernels", HUB_KERNEL).status, 201)
        # Same state dir and same admin socket path: it must not take over either.
        second = h.Daemon(first.state_dir, admin_socket=first.admin_socket)
        proc = subprocess.run(second.command(), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=h.START_TIMEOUT, env=h.clean_env())
        output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 3, output)
        self.assertIn(f"pid {first.pid}", output)
        self.assertIn(first.state_dir, output)
        self.assertNotIn("event=supervisor.ready", output)
        # The first one keeps serving, over TCP and over its admin socket, with its token.
        self.assertHealthy(first)
        self.assertEqual(first.get("/api/v1/kernels/my-kernel").status, 200)
        r = first.admin_request("GET", "/api/v1/status")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["pid"], first.pid)
        self.assertEqual(first.stop(), 0, first.log())
        # Once it stopped, the state directory is free again.
        first.start()
        self.assertEqual(first.get("/api/v1/kernels/my-kernel").status, 200)
        self.assertEqual(first.stop(), 0, first.log())

    def test_bad_config_exits_2(self):
        d = self.new_daemon(config_text=h.BASE_CONFIG + "[server]\nlisten = 12\n")
        proc = subprocess.run(d.command(), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=h.START_TIMEOUT, env=h.clean_env())
        output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 2, output)
        self.assertIn("listen", output)

    def test_port_in_use_fails_with_a_message(self):
        first = self.new_daemon().start()
        other = self.new_daemon()
        proc = subprocess.run(other.command(listen=f"127.0.0.1:{first.port}"),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=h.START_TIMEOUT, env=h.clean_env())
        output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        self.assertNotEqual(proc.returncode, 0, output)
        self.assertIn(str(first.port), output)
        self.assertHealthy(first)
        self.assertEqual(first.stop(), 0)


    def test_changed_index_settings_rehash_every_kernel_at_start(self):
        """The env hash covers the package index settings: after they change, no kernel may
        point at an env built for the old ones."""
        d = self.new_daemon().start()
        self.assertEqual(d.post("/api/v1/kernels", HUB_KERNEL).status, 201)
        self.assertEqual(d.post("/api/v1/kernels", dict(HUB_KERNEL, name="twin")).status, 201)
        d.wait_status("my-kernel", ("ready", "failed"))
        before = d.get("/api/v1/kernels/my-kernel").json
        self.assertEqual(d.stop(signal.SIGTERM), 0, d.log())
        with open(d.config_path) as f:
            text = f.read()
        self.assertIn("[packages]", text)
        with open(d.config_path, "w") as f:
            f.write(text.replace("[packages]", '[packages]\nfind_links = ["/srv/other-wheels"]', 1))
        d.start()
        after = d.get("/api/v1/kernels/my-kernel").json
        self.assertNotEqual(after["envHash"], before["envHash"])
        self.assertEqual(after["generation"], before["generation"])  # the document is the same
        self.assertEqual(d.get("/api/v1/kernels/twin").json["envHash"], after["envHash"])
        # A kernel created now with the same document gets the same new hash.
        fresh = d.post("/api/v1/kernels", dict(HUB_KERNEL, name="fresh"))
        self.assertEqual(fresh.status, 201, fresh)
        self.assertEqual(fresh.json["envHash"], after["envHash"])
        rehashed = [e for e in d.events(subject="supervisor") if e["kind"] == "kernels.rehashed"]
        self.assertEqual(len(rehashed), 1, rehashed)
        self.assertEqual(rehashed[0]["detail"]["kernels"], 2)
        # Restarting with the same settings rewrites nothing.
        self.assertEqual(d.stop(signal.SIGTERM), 0, d.log())
        d.start()
        rehashed = [e for e in d.events(subject="supervisor") if e["kind"] == "kernels.rehashed"]
        self.assertEqual(len(rehashed), 1, rehashed)


if __name__ == "__main__":
    h.main()
