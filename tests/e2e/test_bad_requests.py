"""End-to-end: malformed and unauthorized requests get the right 4xx, write nothing, and leave
the daemon serving."""

import contextlib
import copy
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import HUB_KERNEL, parse_raw_response, raw_exchange, send_streaming  # noqa: E402

MIB = 1 << 20


class BadRequestsTest(h.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.daemon = cls.new_daemon().start()
        # One valid kernel, so that "nothing written" also means "nothing changed".
        r = cls.daemon.post("/api/v1/kernels", dict(HUB_KERNEL, name="existing"))
        assert r.status == 201, r
        # Let its env build end (offline, it fails), so that from now on nothing changes unless
        # a request changes it.
        cls.daemon.wait_status("existing", ("ready", "failed"))

    def setUp(self):
        self.count_before = self.daemon.kernel_count()
        self.last_event = self.daemon.last_event_id()
        self.existing = self.daemon.get("/api/v1/kernels/existing").json
        self.assertIn(self.existing["status"], ("ready", "failed"))

    def tearDown(self):
        # Whatever the case, the daemon still serves and nothing was written.
        self.assertHealthy(self.daemon)
        self.assertEqual(self.daemon.kernel_count(), self.count_before)
        self.assertEqual(self.daemon.get("/api/v1/kernels/existing").json, self.existing)
        # Neither a kernel change nor an env build.
        new_events = [e for e in self.daemon.events(after=self.last_event)
                      if e["subject"].startswith(("kernel/", "env/"))]
        self.assertEqual(new_events, [], "a rejected request wrote an event")

    @contextlib.contextmanager
    def subTest(self, *args, **params):
        # The daemon must stay up after every single bad request, not only after each test.
        with super().subTest(*args, **params):
            yield
            self.assertHealthy(self.daemon)

    def post_kernel(self, doc, **kw):
        return self.daemon.post("/api/v1/kernels", doc, **kw)

    # --- kernel documents --------------------------------------------------------------------

    def test_name_with_path_traversal(self):
        r = self.post_kernel(dict(HUB_KERNEL, name="../x"))
        self.assertError(r, 422, "INVALID_ARGUMENT")
        self.assertEqual(r.json["error"]["details"].get("field"), "name")
        self.assertIn("../x", r.json["error"]["message"])
        self.assertEqual(self.daemon.get("/api/v1/kernels/x").status, 404)

    def test_other_invalid_names(self):
        for name in ["", "-x", ".hidden", "a/b", "a..b", "x" * 64, "sp ace", "é", "a\u0000b"]:
            with self.subTest(name=name):
                r = self.post_kernel(dict(HUB_KERNEL, name=name))
                self.assertError(r, 422, "INVALID_ARGUMENT")
                self.assertEqual(r.json["error"]["details"].get("field"), "name")

    def test_pip_option_as_requirement(self):
        doc = copy.deepcopy(HUB_KERNEL)
        doc["name"] = "pip-option"
        doc["requestedDependencies"] = ["numpy", "--index-url http://x"]
        r = self.post_kernel(doc)
        self.assertError(r, 422, "INVALID_ARGUMENT")
        self.assertTrue(r.json["error"]["details"].get("field", "").startswith(
            "requestedDependencies"), r)
        self.assertIn("--index-url", r.json["error"]["message"])

    def test_other_invalid_documents(self):
        cases = {
            "frozen pip option": dict(HUB_KERNEL, frozenDependencies="numpy==1.26.4\n-e ."),
            "python as number": dict(HUB_KERNEL, pythonVersion=3.11),
            "python 2": dict(HUB_KERNEL, pythonVersion="2.7"),
            "unknown type": dict(HUB_KERNEL, type="DOCKER"),
            "missing name": {k: v for k, v in HUB_KERNEL.items() if k != "name"},
            "missing python": {k: v for k, v in HUB_KERNEL.items() if k != "pythonVersion"},
            "requirements not a list": dict(HUB_KERNEL, requestedDependencies={"numpy": "1"}),
            "bad requirement": dict(HUB_KERNEL, requestedDependencies=["numpy==="]),
            "conflicting pins": dict(HUB_KERNEL, frozenDependencies="numpy==1\nnumpy==2"),
        }
        for label, doc in cases.items():
            doc = dict(doc, name="invalid-doc") if "name" in doc else doc
            with self.subTest(label):
                self.assertError(self.post_kernel(doc), 422, "INVALID_ARGUMENT")

    def test_invalid_json(self):
        for body in ['{"name": "x",', "nul", "{'name': 'x'}", "", "\xff\xfe"]:
            with self.subTest(body=body):
                r = self.post_kernel(body)
                self.assertError(r, 400)
                self.assertIn(r.error_code, ("INVALID_JSON", "BAD_REQUEST"))

    def test_top_level_json_array(self):
        for body in [[HUB_KERNEL], "[]", '"my-kernel"', "42", "null"]:
            with self.subTest(body=body):
                r = self.post_kernel(body if isinstance(body, str) else json.dumps(body))
                self.assertError(r, 400)
                self.assertIn(r.error_code, ("INVALID_JSON", "BAD_REQUEST"))

    def test_deeply_nested_json(self):
        body = '{"name":"deep","pythonVersion":"3.11","x":' + "[" * 10000 + "]" * 10000 + "}"
        r = self.post_kernel(body)
        self.assertIn(r.status, (400, 422), r)

    def test_put_with_invalid_document(self):
        r = self.daemon.request("PUT", "/api/v1/kernels/existing",
                                dict(HUB_KERNEL, requestedDependencies=["--index-url http://x"]))
        self.assertError(r, 422, "INVALID_ARGUMENT")
        r = self.daemon.request("PUT", "/api/v1/kernels/existing", "[1,2]")
        self.assertError(r, 400)

    # --- headers ------------------------------------------------------------------------------

    def test_wrong_content_type(self):
        body = json.dumps(dict(HUB_KERNEL, name="plain-text"))
        for ct in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", None]:
            with self.subTest(content_type=ct):
                r = self.post_kernel(body, content_type=ct)
                self.assertError(r, 415, "UNSUPPORTED_MEDIA_TYPE")
        r = self.daemon.request("PUT", "/api/v1/kernels/existing", body, content_type="text/plain")
        self.assertError(r, 415, "UNSUPPORTED_MEDIA_TYPE")
        # Parameters and case do not matter.
        r = self.post_kernel(json.dumps(dict(HUB_KERNEL, name="existing")),
                             content_type="Application/JSON; charset=utf-8")
        self.assertEqual(r.status, 200, r)

    def test_missing_token(self):
        for method, path, body in [("GET", "/api/v1/kernels", None),
                                   ("POST", "/api/v1/kernels", dict(HUB_KERNEL, name="no-token")),
                                   ("GET", "/api/v1/kernels/existing", None),
                                   ("DELETE", "/api/v1/kernels/existing", None),
                                   ("GET", "/api/v1/status", None),
                                   ("GET", "/api/v1/events", None),
                                   ("GET", "/api/v1/no-such-route", None)]:
            with self.subTest(method=method, path=path):
                r = self.daemon.request(method, path, body, token=None)
                self.assertError(r, 401, "UNAUTHENTICATED")
                self.assertTrue(r.header("WWW-Authenticate", "").startswith("Bearer"), r)

    def test_wrong_token(self):
        token = self.daemon.token
        bad = {
            "other": {"Authorization": "Bearer " + "0" * len(token)},
            "prefix": {"Authorization": "Bearer " + token[:-1]},
            "longer": {"Authorization": "Bearer " + token + "0"},
            "basic": {"Authorization": "Basic " + token},
            "no scheme": {"Authorization": token},
            "empty bearer": {"Authorization": "Bearer "},
        }
        for label, headers in bad.items():
            with self.subTest(label):
                r = self.daemon.request("DELETE", "/api/v1/kernels/existing", token=None,
                                        headers=headers)
                self.assertError(r, 401, "UNAUTHENTICATED")
                self.assertNotIn(token, r.raw.decode())

    def test_huge_headers(self):
        r = self.daemon.get("/api/v1/kernels", headers={"X-Padding": "a" * (64 * 1024)})
        self.assertIn(r.status, (431, 400), r)
        many = {f"X-Header-{i}": "b" * 100 for i in range(400)}
        r = self.daemon.get("/api/v1/kernels", headers=many)
        self.assertIn(r.status, (431, 400), r)
        long_target = "/api/v1/kernels?" + "q" * (64 * 1024)
        r = self.daemon.get(long_target)
        self.assertIn(r.status, (431, 414, 400), r)

    # --- bodies -------------------------------------------------------------------------------

    def test_100_mb_body_with_content_length(self):
        chunk = b" " * (64 * 1024)
        count = 100 * MIB // len(chunk)
        head = (f"POST /api/v1/kernels HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {self.daemon.token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {count * len(chunk)}\r\n"
                f"\r\n").encode()
        data, _ = send_streaming(self.daemon.port, head, chunk, count)
        status, headers, body = parse_raw_response(data)
        self.assertEqual(status, 413, data[:500])
        self.assertEqual(json.loads(body)["error"]["code"], "PAYLOAD_TOO_LARGE")
        self.assertEqual(headers.get("connection", "").lower(), "close")

    def test_100_mb_chunked_body(self):
        payload = b" " * (64 * 1024)
        chunk = b"%x\r\n" % len(payload) + payload + b"\r\n"
        count = 100 * MIB // len(payload)
        head = (f"POST /api/v1/kernels HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {self.daemon.token}\r\n"
                f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
        data, _ = send_streaming(self.daemon.port, head, chunk, count)
        status, _, body = parse_raw_response(data)
        self.assertEqual(status, 413, data[:500])
        self.assertEqual(json.loads(body)["error"]["code"], "PAYLOAD_TOO_LARGE")

    def test_body_just_over_the_limit(self):
        # A valid document padded with an unknown field to just over 1 MiB.
        doc = dict(HUB_KERNEL, name="big-doc", padding="p" * MIB)
        r = self.post_kernel(doc)
        self.assertError(r, 413, "PAYLOAD_TOO_LARGE")

    def test_malformed_http(self):
        token = self.daemon.token
        cases = {
            "garbage request line": b"HELLO\r\n\r\n",
            "bad content-length": (f"POST /api/v1/kernels HTTP/1.1\r\nHost: x\r\n"
                                   f"Authorization: Bearer {token}\r\n"
                                   f"Content-Type: application/json\r\n"
                                   f"Content-Length: abc\r\n\r\n{{}}").encode(),
            "two content-lengths": (f"POST /api/v1/kernels HTTP/1.1\r\nHost: x\r\n"
                                    f"Authorization: Bearer {token}\r\n"
                                    f"Content-Type: application/json\r\n"
                                    f"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}").encode(),
            "bad chunk size": (f"POST /api/v1/kernels HTTP/1.1\r\nHost: x\r\n"
                               f"Authorization: Bearer {token}\r\n"
                               f"Content-Type: application/json\r\n"
                               f"Transfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
                               ).encode(),
        }
        for label, data in cases.items():
            with self.subTest(label):
                reply = raw_exchange(self.daemon.port, data, half_close=True)
                status, _, _ = parse_raw_response(reply)
                self.assertEqual(status, 400, reply[:300])

    # --- routes -------------------------------------------------------------------------------

    def test_unknown_route(self):
        for path in ["/", "/api", "/api/v1", "/api/v2/kernels", "/api/v1/nope",
                     "/api/v1/kernels/existing/nope", "/healthz/x", "/API/V1/KERNELS"]:
            with self.subTest(path=path):
                self.assertError(self.daemon.get(path), 404, "NOT_FOUND")

    def test_wrong_method(self):
        cases = [("PATCH", "/api/v1/kernels", {"GET", "POST"}),
                 ("DELETE", "/api/v1/kernels", {"GET", "POST"}),
                 ("PUT", "/api/v1/kernels", {"GET", "POST"}),
                 ("POST", "/api/v1/kernels/existing", {"GET", "PUT", "DELETE"}),
                 ("PATCH", "/api/v1/kernels/existing", {"GET", "PUT", "DELETE"}),
                 ("POST", "/api/v1/status", {"GET"}),
                 ("DELETE", "/api/v1/events", {"GET"}),
                 ("POST", "/healthz", {"GET"})]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                body = "{}" if method in ("POST", "PUT", "PATCH") else None
                r = self.daemon.request(method, path, body)
                self.assertError(r, 405, "METHOD_NOT_ALLOWED")
                allow = {m.strip() for m in r.header("Allow", "").split(",")}
                self.assertTrue(allowed <= allow, f"Allow: {r.header('Allow')}")
                self.assertNotIn(method, allow)

    def test_invalid_names_in_path(self):
        body = json.dumps(dict(HUB_KERNEL, name="existing"))
        names = ["..%2Fx", "..", "%2e%2e", "a..b", "-x", ".x", "x" * 64, "a%20b", "a%00b",
                 "%C3%A9", "a%2Fb", "%zz", "%", "a%2", "..%2F..%2Fetc%2Fpasswd"]
        for name in names:
            for method in ("GET", "DELETE", "PUT"):
                with self.subTest(name=name, method=method):
                    r = self.daemon.request(method, f"/api/v1/kernels/{name}",
                                            body if method == "PUT" else None)
                    self.assertIn(r.status, (400, 404), r)
                    self.assertIn(r.error_code, ("BAD_REQUEST", "NOT_FOUND"), r)

    def test_bad_event_queries(self):
        for query in ["after=-1", "after=x", "limit=0", "limit=100000", "bogus=1", "after=%zz"]:
            with self.subTest(query=query):
                r = self.daemon.get(f"/api/v1/events?{query}")
                self.assertError(r, 400, "BAD_REQUEST")


if __name__ == "__main__":
    h.main()
