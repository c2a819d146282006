"""End-to-end: the kernel registry over REST, driven with the Giskard Hub's own documents."""

import copy
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import HEX64_RE, HUB_KERNEL, stable  # noqa: E402

RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

# The registry's own changes to a kernel; env builds add events of their own.
REGISTRY_EVENTS = ("kernel.created", "kernel.replaced", "kernel.deleted")


class KernelsTest(h.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.daemon = cls.new_daemon().start()

    def tearDown(self):
        self.assertHealthy(self.daemon)

    def create(self, doc, expect=201):
        r = self.daemon.post("/api/v1/kernels", doc)
        self.assertEqual(r.status, expect, r)
        return r.json

    def delete(self, name):
        r = self.daemon.request("DELETE", f"/api/v1/kernels/{name}")
        self.assertEqual(r.status, 200, r)

    def assertKernelShape(self, k, doc):
        self.assertEqual(k["name"], doc["name"])
        self.assertEqual(k["pythonVersion"], doc["pythonVersion"])
        self.assertEqual(k["type"], doc.get("type", "PROCESS"))
        self.assertEqual(k["version"], doc.get("version"))
        # A create starts the env build at once: "building", or "pending" while others build.
        self.assertIn(k["status"], ("pending", "building"))
        self.assertRegex(k["envHash"], HEX64_RE)
        self.assertIsInstance(k["generation"], int)
        self.assertRegex(k["createdAt"], RFC3339_RE)
        self.assertRegex(k["updatedAt"], RFC3339_RE)
        self.assertEqual(k["workers"], 1)
        self.assertEqual(k["env"], {})
        self.assertEqual(len(k["requestedDependencies"]), len(doc["requestedDependencies"]))
        for line, original in zip(sorted(k["requestedDependencies"]),
                                  sorted(doc["requestedDependencies"])):
            self.assertEqual(line.replace(" ", ""), original.replace(" ", ""))

    def test_hub_document_lifecycle(self):
        d = self.daemon
        doc = copy.deepcopy(HUB_KERNEL)

        # Create: 201 with the normalized kernel, status pending, a 64-hex env hash.
        r = d.post("/api/v1/kernels", doc)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertKernelShape(r.json, doc)
        self.assertEqual(r.json["generation"], 1)
        self.assertEqual(r.json["frozenDependencies"], doc["frozenDependencies"])
        # giskard[llm] is requested but not frozen: the Hub document draws a warning.
        self.assertIsInstance(r.json.get("warnings", []), list)
        for w in r.json.get("warnings", []):
            self.assertIsInstance(w, str)
        created = stable(r.json)

        # List and show.
        r = d.get("/api/v1/kernels")
        self.assertEqual(r.status, 200, r)
        names = [k["name"] for k in r.json["kernels"]]
        self.assertIn("my-kernel", names)
        self.assertEqual(r.json["count"], len(names))
        listed = next(k for k in r.json["kernels"] if k["name"] == "my-kernel")
        self.assertEqual(stable(listed), created)
        self.assertIn(listed["status"], h.KERNEL_STATUSES)
        r = d.get("/api/v1/kernels/my-kernel")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(stable(r.json), created)
        self.assertNotIn("warnings", r.json)

        # An identical POST again is an idempotent retry: 200 with the same kernel.
        r = d.post("/api/v1/kernels", doc)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(stable(r.json), created)

        # Same name, another document: 409, and the stored kernel is unchanged.
        other = dict(doc, pythonVersion="3.10")
        r = d.post("/api/v1/kernels", other)
        self.assertError(r, 409, "ALREADY_EXISTS")
        self.assertEqual(stable(d.get("/api/v1/kernels/my-kernel").json), created)

        # PUT changes it: generation goes up, the env hash follows the dependencies.
        changed = dict(doc, requestedDependencies=doc["requestedDependencies"] + ["pandas<3"],
                       frozenDependencies="")
        r = d.request("PUT", "/api/v1/kernels/my-kernel", changed)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["generation"], 2)
        self.assertNotEqual(r.json["envHash"], created["envHash"])
        self.assertRegex(r.json["envHash"], HEX64_RE)
        self.assertEqual(len(r.json["requestedDependencies"]), 3)
        self.assertEqual(r.json["createdAt"], created["createdAt"])
        replaced = stable(r.json)
        shown = d.get("/api/v1/kernels/my-kernel").json
        self.assertEqual(stable(shown), replaced)

        # The same PUT again changes nothing.
        r = d.request("PUT", "/api/v1/kernels/my-kernel", changed)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["generation"], 2)

        # Delete: 200, then 404 for show, delete and PUT.
        r = d.request("DELETE", "/api/v1/kernels/my-kernel")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"name": "my-kernel", "deleted": True})
        self.assertError(d.get("/api/v1/kernels/my-kernel"), 404, "NOT_FOUND")
        self.assertError(d.request("DELETE", "/api/v1/kernels/my-kernel"), 404, "NOT_FOUND")
        self.assertError(d.request("PUT", "/api/v1/kernels/my-kernel", changed), 404,
                         "NOT_FOUND")
        self.assertNotIn("my-kernel", [k["name"] for k in d.get("/api/v1/kernels").json["kernels"]])

        # The audit trail recorded each change once, in order.
        events = [e for e in d.events(subject="kernel/my-kernel")
                  if e["kind"] in REGISTRY_EVENTS]
        self.assertEqual([e["kind"] for e in events], list(REGISTRY_EVENTS))
        for e in events:
            self.assertEqual(e["subject"], "kernel/my-kernel")
            self.assertEqual(e["actor"], "rest")
            self.assertRegex(e["time"], RFC3339_RE)

    def test_document_read_back_can_be_posted_again(self):
        doc = dict(HUB_KERNEL, name="round-trip")
        created = stable(self.create(doc))
        # Read at once, while the env build runs (the answer then carries "build" progress), and
        # again once the build is over.
        while_building = self.daemon.get("/api/v1/kernels/round-trip").json
        self.assertIn(while_building["status"], ("pending", "building"))
        done = self.daemon.wait_status("round-trip", ("ready", "failed"))
        for shown in (while_building, done):
            with self.subTest(status=shown["status"]):
                self.assertEqual(stable(shown), created)
                # Read-only fields in a posted document are ignored: an idempotent retry.
                r = self.daemon.post("/api/v1/kernels", shown)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(stable(r.json), created)
                r = self.daemon.request("PUT", "/api/v1/kernels/round-trip", shown)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json["generation"], 1)
        self.delete("round-trip")

    def test_put_without_name_and_with_another_name(self):
        self.create(dict(HUB_KERNEL, name="put-target"))
        body = {k: v for k, v in HUB_KERNEL.items() if k != "name"}
        body["pythonVersion"] = "3.12"
        r = self.daemon.request("PUT", "/api/v1/kernels/put-target", body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["name"], "put-target")
        self.assertEqual(r.json["pythonVersion"], "3.12")
        before = stable(self.daemon.get("/api/v1/kernels/put-target").json)
        r = self.daemon.request("PUT", "/api/v1/kernels/put-target",
                                dict(HUB_KERNEL, name="someone-else"))
        self.assertError(r, 422, "INVALID_ARGUMENT")
        self.assertEqual(r.json["error"]["details"].get("field"), "name")
        self.assertEqual(stable(self.daemon.get("/api/v1/kernels/put-target").json), before)
        self.assertEqual(self.daemon.get("/api/v1/kernels/someone-else").status, 404)
        self.delete("put-target")

    def test_env_hash_ignores_name_and_version(self):
        a = self.create(dict(HUB_KERNEL, name="hash-a", version="1.0"))
        b = self.create(dict(HUB_KERNEL, name="hash-b", version="2.0"))
        c = self.create(dict(HUB_KERNEL, name="hash-c", pythonVersion="3.10"))
        self.assertEqual(a["envHash"], b["envHash"])
        self.assertNotEqual(a["envHash"], c["envHash"])
        for name in ("hash-a", "hash-b", "hash-c"):
            self.delete(name)

    def test_unknown_fields_are_kept_with_a_warning(self):
        doc = dict(HUB_KERNEL, name="with-extra", hubOnly={"x": [1, 2]})
        created = self.create(doc)
        self.assertEqual(created["hubOnly"], {"x": [1, 2]})
        self.assertTrue(any("hubOnly" in w for w in created.get("warnings", [])), created)
        shown = self.daemon.get("/api/v1/kernels/with-extra").json
        self.assertEqual(shown["hubOnly"], {"x": [1, 2]})
        self.assertNotIn("warnings", shown)
        self.delete("with-extra")

    def test_env_values_are_masked(self):
        doc = dict(HUB_KERNEL, name="with-env",
                   env={"OPENAI_API_KEY": "sk-0123456789abcdef", "SHORT": "abc"})
        created = self.create(doc)
        self.assertEqual(created["env"], {"OPENAI_API_KEY": "sk-****", "SHORT": "****"})
        shown = self.daemon.get("/api/v1/kernels/with-env").json
        self.assertEqual(shown["env"], created["env"])
        listed = self.daemon.get("/api/v1/kernels").json["kernels"]
        self.assertNotIn("sk-0123456789abcdef", str(listed))
        self.delete("with-env")

    def test_list_is_ordered_by_name(self):
        for name in ("order-c", "order-a", "order-b"):
            self.create(dict(HUB_KERNEL, name=name))
        r = self.daemon.get("/api/v1/kernels")
        names = [k["name"] for k in r.json["kernels"]]
        self.assertEqual(names, sorted(names))
        for name in ("order-a", "order-b", "order-c"):
            self.delete(name)

    def test_status(self):
        d = self.daemon
        r = d.get("/api/v1/status")
        self.assertEqual(r.status, 200, r)
        s = r.json
        self.assertEqual(s["pid"], d.pid)
        self.assertEqual(s["listen"], f"127.0.0.1:{d.port}")
        self.assertEqual(s["adminSocket"], d.admin_socket)
        self.assertEqual(s["stateDir"], d.state_dir)
        self.assertIsInstance(s["schemaVersion"], int)
        self.assertGreaterEqual(s["schemaVersion"], 1)
        self.assertEqual(s["kernels"], d.kernel_count())
        self.assertRegex(s["version"], r"^\d+\.\d+\.\d+")
        self.assertRegex(s["startedAt"], RFC3339_RE)
        self.assertGreaterEqual(s["uptimeSeconds"], 0)

    def test_healthz_needs_no_token(self):
        r = self.daemon.get("/healthz", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "ok"})
        r = self.daemon.request("HEAD", "/healthz", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.raw, b"")


if __name__ == "__main__":
    h.main()
