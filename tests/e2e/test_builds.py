"""End-to-end: what a kernel create sets off, the managed env build (real venv, real pip), seen
through REST only. Offline, the Hub kernel's packages cannot be found: the build fails with a
reason and a log; a kernel without packages builds (venv + worker shim) and becomes ready; a
second kernel with the same env reuses it. The daemon keeps answering while pip runs, and a stop
in the middle of a build is still clean."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import HUB_KERNEL  # noqa: E402


class BuildsTest(h.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.daemon = cls.new_daemon().start()

    def tearDown(self):
        self.assertHealthy(self.daemon)

    def shim_wheel_available(self):
        # The daemon finds the shim wheel next to its build tree (see environments_setup.cc).
        dist = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(h.BINARY))),
                            "worker-shim", "dist")
        return os.path.isdir(dist) and any(f.endswith(".whl") for f in os.listdir(dist))

    def test_offline_hub_kernel_fails_with_a_reason_and_a_log(self):
        d = self.daemon
        r = d.post("/api/v1/kernels", dict(HUB_KERNEL, name="offline-hub"))
        self.assertEqual(r.status, 201, r)
        self.assertIn(r.json["status"], ("pending", "building"))
        # While pip runs, the daemon answers at once.
        for _ in range(5):
            self.assertEqual(d.get("/healthz", token=None).status, 200)
            self.assertEqual(d.get("/api/v1/kernels").status, 200)
        k = d.wait_status("offline-hub", ("ready", "failed"), h.BUILD_TIMEOUT)
        self.assertEqual(k["status"], "failed", k)
        self.assertIsInstance(k["lastError"], str)
        self.assertTrue(k["lastError"], k)
        self.assertNotIn("build", k)
        r = d.get("/api/v1/kernels/offline-hub/build-log")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type", "").startswith("text/plain"), r)
        self.assertEqual(r.header("X-Build-Complete"), "true")
        self.assertIn("joblib", r.raw.decode("utf-8", "replace"))
        kinds = [e["kind"] for e in d.events(subject=f"env/{k['envHash']}")]
        self.assertIn("env.build_started", kinds)
        self.assertEqual(kinds[-1], "env.build_failed", kinds)
        d.request("DELETE", "/api/v1/kernels/offline-hub")

    def test_kernel_without_packages_becomes_ready_and_its_env_is_reused(self):
        if not self.shim_wheel_available():
            self.skipTest("no worker-shim wheel in the build tree (target worker_shim_wheel)")
        d = self.daemon
        doc = {"name": "bare", "pythonVersion": "3.11", "requestedDependencies": [],
               "type": "PROCESS", "version": "1"}
        r = d.post("/api/v1/kernels", doc)
        self.assertEqual(r.status, 201, r)
        k = d.wait_status("bare", ("ready", "failed"), h.BUILD_TIMEOUT)
        log = d.get("/api/v1/kernels/bare/build-log").raw.decode("utf-8", "replace")
        self.assertEqual(k["status"], "ready", f"{k}\n{log[-3000:]}")
        self.assertIsNone(k["lastError"])
        # Same env hash (the name and version are not part of it): ready at once.
        r = d.post("/api/v1/kernels", dict(doc, name="bare-too", version="2"))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["envHash"], k["envHash"])
        self.assertEqual(r.json["status"], "ready", r)
        for name in ("bare", "bare-too"):
            self.assertEqual(d.request("DELETE", f"/api/v1/kernels/{name}").status, 200)

    def test_stop_during_a_build_is_clean_and_the_build_resumes(self):
        d = self.new_daemon().start()
        r = d.post("/api/v1/kernels", dict(HUB_KERNEL, name="interrupted"))
        self.assertEqual(r.status, 201, r)
        # Stop while pip runs (or right after: either way the stop must be clean).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if d.get("/api/v1/kernels/interrupted").json.get("build", {}).get("phase") == \
                    "installing":
                break
            time.sleep(0.05)
        self.assertEqual(d.stop(), 0, d.log())
        d.start()
        k = d.get("/api/v1/kernels/interrupted").json
        self.assertIn(k["status"], h.KERNEL_STATUSES)
        k = d.wait_status("interrupted", ("ready", "failed"), h.BUILD_TIMEOUT)
        self.assertEqual(k["status"], "failed", k)
        # Nothing half-built is left marked ready, and the daemon stops cleanly again.
        self.assertEqual(d.stop(), 0, d.log())


if __name__ == "__main__":
    h.main()
