"""Model blobs (PROTOCOL.md, *Model blobs*): fetched over HTTP from the server, verified, unpacked
safely, cached by content; and end to end through a real `worker start` whose server only
sends `modelBlob` (the model's path exists on no disk of the worker's)."""

import hashlib
import http.server
import io
import json
import os
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import unittest

from giskard_worker_shim import blobs, methods, tabular
from giskard_worker_shim.errors import InvalidInput, ModelFetchError, ModelLoadError
from giskard_worker_shim.models import ModelCache
from tests.model_fixtures import ModelTestCase
from tests.support import (TIMEOUT, FakeWsServer, HttpResponder, Shim, http_response,
                           make_certificate, shim_env)

SUPERVISOR_PATH = "/srv/giskard/models/credit"
MANIFEST = json.dumps({"entrypoint": "blobmodel:model", "code": ["src"]})
# The model reports what it sees of the worker's secrets.
MODEL_CODE = ("import os\n"
              "def model(x):\n"
              "    seen = os.environ.get('GSK_API_KEY', 'no key') + ', ' + "
              "os.environ.get('GSK_HF_TOKEN', 'no token')\n"
              "    return [seen for _ in range(len(x))]\n")


def make_tar(entries, fmt=tarfile.PAX_FORMAT):
    """An uncompressed tar: entries are (name, data) for files, (name, None) for directories,
    or TarInfo objects as they are."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                archive.addfile(entry)
                continue
            name, data = entry
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def model_tar():
    return make_tar([("giskard-model.json", MANIFEST.encode()), ("src", None),
                     ("src/blobmodel.py", MODEL_CODE.encode())])


def spec_of(data, fmt, name):
    return {"sha256": hashlib.sha256(data).hexdigest(), "format": fmt, "name": name,
            "size": len(data)}


def special(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


class BlobHttpServer(http.server.ThreadingHTTPServer):
    """Serves /prefix/api/v1/model-blobs/<sha256> from `blobs` (sha256 -> bytes); `respond`
    may override the answer. Records (path, headers) of every request."""

    daemon_threads = True

    def __init__(self, tls=None):
        super().__init__(("127.0.0.1", 0), _Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True,
                                          do_handshake_on_connect=False)
        self.blobs, self.requests, self.respond = {}, [], None
        self.barrier = None
        self.url = "%s://127.0.0.1:%d/prefix" % ("https" if tls else "http",
                                                self.server_address[1])
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def handle_error(self, request, client_address):
        pass  # a client that refused our certificate, or hung up: the test says what matters

    def add(self, data):
        self.blobs[hashlib.sha256(data).hexdigest()] = data

    def stop(self):
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the stdlib's name)
        server = self.server
        server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        answer = server.respond(self.path) if server.respond else None
        if answer is None:
            sha = self.path.rsplit("/", 1)[-1]
            data = server.blobs.get(sha) if self.path.startswith(
                "/prefix/api/v1/model-blobs/") else None
            answer = (200, data) if data is not None else (
                404, b'{"error":{"code":"NOT_FOUND","message":"no model blob ' + sha.encode()
                + b'"}}')
        status, body = answer
        if server.barrier is not None:
            server.barrier.wait(TIMEOUT)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream" if status == 200
                         else "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class FetchTest(ModelTestCase):
    def setUp(self):
        super().setUp()
        self.server = BlobHttpServer()
        self.addCleanup(self.server.stop)
        self.cache = self.path("cache", "models")

    def fetcher(self, **kwargs):
        return blobs.ModelFetcher(self.server.url, {"Authorization": "Bearer k",
                                                    "Cookie": "spaces-jwt=hf"}, self.cache,
                                  **kwargs)

    def leftovers(self):
        return [e for e in os.listdir(self.cache) if e.startswith(".tmp-")]

    def test_a_file_is_fetched_once_and_cached_by_content(self):
        data = b"\x80\x04 pickled bytes"
        self.server.add(data)
        spec = blobs.parse_spec(spec_of(data, "file", "model.pkl"))
        path = self.fetcher().fetch(spec)
        self.assertEqual(path, os.path.join(self.cache, spec.sha256, "model.pkl"))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)
        (request_path, headers), = self.server.requests
        self.assertEqual(request_path, "/prefix/api/v1/model-blobs/" + spec.sha256)
        self.assertEqual(headers["authorization"], "Bearer k")
        self.assertEqual(headers["cookie"], "spaces-jwt=hf")
        self.assertEqual(headers["accept"], "application/octet-stream")
        self.assertEqual(self.fetcher().fetch(spec), path)  # another worker: on disk already
        self.assertEqual(len(self.server.requests), 1)
        self.assertEqual(self.leftovers(), [])

    def test_a_tar_is_unpacked_into_a_loadable_model_folder(self):
        data = model_tar()
        self.server.add(data)
        spec = blobs.parse_spec(spec_of(data, "tar", "credit"))
        path = self.fetcher().fetch(spec)
        self.assertEqual(sorted(os.listdir(path)), ["giskard-model.json", "src"])
        self.assertEqual(oct(os.stat(os.path.join(path, "src", "blobmodel.py")).st_mode & 0o777),
                         oct(0o644))
        models = ModelCache()
        load = blobs.with_blobs(lambda p: methods.load_model(models, p), self.fetcher())
        params = {"model": SUPERVISOR_PATH, "modelBlob": spec_of(data, "tar", "credit")}
        result = load(params)
        self.assertEqual((result["model"], result["kind"], result["cached"]),
                         (SUPERVISOR_PATH, "entrypoint", False))
        self.assertEqual(params["model"], SUPERVISOR_PATH)  # the caller's params are untouched
        predict = blobs.with_blobs(lambda p: methods.predict(models, p), self.fetcher(),
                                   tabular.parse_table)
        self.assertEqual(predict(dict(params, rows=[[1], [2]]))["predictions"],
                         [os.environ.get("GSK_API_KEY", "no key") + ", "
                          + os.environ.get("GSK_HF_TOKEN", "no token")] * 2)
        self.assertEqual(len(self.server.requests), 1)

    def test_without_a_blob_the_path_is_used_as_it_is(self):
        seen = []
        handler = blobs.with_blobs(lambda p: seen.append(p) or {"model": p["model"]},
                                   self.fetcher())
        for params in ({"model": "/m"}, {"model": "/m", "modelBlob": None}):
            self.assertEqual(handler(params), {"model": "/m"})
        self.assertEqual(seen[0], {"model": "/m"})
        self.assertEqual(self.server.requests, [])

    def test_a_known_blob_skips_the_cache_lookup_until_it_vanishes_or_fails_to_load(self):
        data = b"model bytes"
        self.server.add(data)
        fetcher = self.fetcher()
        lookups = []
        real_cached = fetcher.cached
        fetcher.cached = lambda spec: lookups.append(spec) or real_cached(spec)
        broken = []

        def load(params):
            if broken or not os.path.exists(params["model"]):
                raise ModelLoadError("cannot load %s" % params["model"])
            with open(params["model"], "rb") as f:
                return {"model": params["model"], "bytes": f.read()}

        handler = blobs.with_blobs(load, fetcher)
        params = {"model": SUPERVISOR_PATH, "modelBlob": spec_of(data, "file", "m.pkl")}
        first = handler(params)
        self.assertEqual(first, {"model": SUPERVISOR_PATH, "bytes": data})
        self.assertEqual((len(lookups), len(self.server.requests)), (2, 1))  # run, then fetch
        self.assertEqual(handler(params), first)
        self.assertEqual(handler(dict(params, modelBlob=dict(params["modelBlob"]))), first)
        self.assertEqual((len(lookups), len(self.server.requests)), (2, 1))  # remembered
        # The cache was cleaned: the call fetches the blob again, and succeeds.
        shutil.rmtree(self.cache)
        self.assertEqual(handler(params), first)
        self.assertEqual((len(lookups), len(self.server.requests)), (4, 2))
        self.assertEqual(handler(params), first)
        self.assertEqual(len(lookups), 4)
        # A load failure with the file in place: the error, and the entry is forgotten.
        broken.append(True)
        with self.assertRaises(ModelLoadError):
            handler(params)
        self.assertEqual(len(lookups), 4)
        broken.clear()
        self.assertEqual(handler(params), first)
        self.assertEqual((len(lookups), len(self.server.requests)), (5, 2))
        # A malformed blob is never taken for a known one: parse_spec refuses it.
        with self.assertRaises(InvalidInput):
            handler(dict(params, modelBlob=dict(params["modelBlob"], size=True)))

    def test_bad_input_is_refused_before_any_download(self):
        data = b"x"
        self.server.add(data)
        predict = blobs.with_blobs(lambda p: self.fail("not reached"), self.fetcher(),
                                   tabular.parse_table)
        with self.assertRaises(InvalidInput):
            predict({"model": "/m", "modelBlob": spec_of(data, "file", "m"), "rows": 3})
        self.assertEqual(self.server.requests, [])

    def test_http_errors_name_the_status_and_the_servers_message(self):
        spec = blobs.parse_spec(spec_of(b"missing", "file", "m.pkl"))
        with self.assertRaises(ModelFetchError) as caught:
            self.fetcher().fetch(spec)
        self.assertEqual(caught.exception.status, 404)
        message = str(caught.exception)
        self.assertIn("model blob %s (m.pkl, 7 bytes): GET %s/api/v1/model-blobs/%s answered "
                      "HTTP 404 Not Found: no model blob %s"
                      % (spec.sha256[:12], self.server.url, spec.sha256, spec.sha256), message)
        self.server.respond = lambda path: (401, b"wrong key")
        with self.assertRaises(ModelFetchError) as caught:
            self.fetcher().fetch(spec)
        self.assertEqual(caught.exception.status, 401)
        self.assertIn("answered HTTP 401 Unauthorized: wrong key", str(caught.exception))
        self.assertFalse(os.path.exists(os.path.join(self.cache, spec.sha256)))
        self.assertEqual(self.leftovers(), [])

    def test_bytes_that_do_not_match_are_not_cached(self):
        data = b"the real model"
        cases = {"other bytes of the same size": (b"the fake model", "SHA-256"),
                 "fewer bytes": (b"the real", "announced 8 bytes, not 14"),
                 "more bytes": (data + b"!", "announced 15 bytes, not 14")}
        spec = blobs.parse_spec(spec_of(data, "file", "m.pkl"))
        for case, (served, expected) in cases.items():
            with self.subTest(case):
                self.server.respond = lambda path, served=served: (200, served)
                with self.assertRaises(ModelFetchError) as caught:
                    self.fetcher().fetch(spec)
                self.assertIn(expected, str(caught.exception))
                self.assertIsNone(caught.exception.status)
                self.assertFalse(os.path.exists(os.path.join(self.cache, spec.sha256, "m.pkl")))
        self.assertEqual(self.leftovers(), [])

    def test_unreachable_server(self):
        self.server.stop()
        spec = blobs.parse_spec(spec_of(b"x", "file", "m"))
        with self.assertRaisesRegex(ModelFetchError, "GET .* failed: ConnectionRefusedError"):
            self.fetcher(timeout=TIMEOUT).fetch(spec)

    def test_unsafe_archives_are_refused(self):
        cases = {
            "absolute": ([("/etc/x", b"x")], "'/etc/x' is an absolute path"),
            "parent": ([("a/../../x", b"x")], "'a/../../x' goes up with '..'"),
            "symlink": ([special("link", tarfile.SYMTYPE, "/etc/passwd")],
                        "'link' is a symbolic link"),
            "hard link": ([("a", b"x"), special("b", tarfile.LNKTYPE, "a")],
                          "'b' is a hard link"),
            "device": ([special("dev", tarfile.CHRTYPE)], "'dev' is a device"),
            "fifo": ([special("fifo", tarfile.FIFOTYPE)], "'fifo' is a FIFO"),
            "twice": ([("a", b"x"), ("a", b"y")], "'a' appears twice"),
        }
        for case, (entries, expected) in cases.items():
            with self.subTest(case):
                data = make_tar(entries, tarfile.GNU_FORMAT)
                self.server.add(data)
                spec = blobs.parse_spec(spec_of(data, "tar", "m"))
                with self.assertRaises(ModelFetchError) as caught:
                    self.fetcher().fetch(spec)
                self.assertIn("unsafe archive: " + expected, str(caught.exception))
                self.assertFalse(os.path.exists(os.path.join(self.cache, spec.sha256, "m")))
        self.assertEqual(self.leftovers(), [])
        self.assertFalse(os.path.exists(os.path.join(self.cache, "..", "x")))

    def test_a_compressed_archive_is_refused(self):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo("a")
            archive.addfile(info, io.BytesIO(b""))
        data = buffer.getvalue()
        self.server.add(data)
        with self.assertRaisesRegex(ModelFetchError, "not a readable uncompressed tar"):
            self.fetcher().fetch(blobs.parse_spec(spec_of(data, "tar", "m")))

    def test_concurrent_fetches_of_one_blob(self):
        for fmt, data, name in (("file", b"model bytes" * 1000, "m.pkl"),
                                ("tar", model_tar(), "credit")):
            with self.subTest(fmt):
                self.server.add(data)
                self.server.barrier = threading.Barrier(2)  # both downloads in flight at once
                spec = blobs.parse_spec(spec_of(data, fmt, name))
                results = []
                threads = [threading.Thread(target=lambda: results.append(
                    self.fetcher().fetch(spec))) for _ in range(2)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(TIMEOUT)
                self.server.barrier = None
                self.assertEqual(results, [os.path.join(self.cache, spec.sha256, name)] * 2)
                self.assertEqual(os.listdir(os.path.join(self.cache, spec.sha256)), [name])
                if fmt == "file":
                    with open(results[0], "rb") as f:
                        self.assertEqual(f.read(), data)
                else:
                    self.assertEqual(sorted(os.listdir(results[0])),
                                     ["giskard-model.json", "src"])
        self.assertEqual(self.leftovers(), [])

    def test_staging_of_a_killed_fetch_is_swept(self):
        os.makedirs(self.cache)
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait(TIMEOUT)
        dead = os.path.join(self.cache, ".tmp-%d-abc" % gone.pid)
        alive = os.path.join(self.cache, ".tmp-%d-abc" % os.getpid())
        for directory in (dead, alive):
            os.makedirs(os.path.join(directory, "out"))
        data = b"x"
        self.server.add(data)
        self.fetcher().fetch(blobs.parse_spec(spec_of(data, "file", "m")))
        self.assertFalse(os.path.exists(dead))
        self.assertTrue(os.path.exists(alive))

    def test_specs(self):
        good = spec_of(b"x", "file", "model.pkl")
        self.assertEqual(blobs.parse_spec(dict(good, sha256=good["sha256"].upper())).sha256,
                         good["sha256"])
        bad = [("x", '"modelBlob" must be an object'),
               (dict(good, sha256="abc"), '"sha256" must be 64 hexadecimal digits'),
               (dict(good, format="zip"), '"format" must be "file" or "tar"'),
               (dict(good, name="a/b"), '"name" must be a file name'),
               (dict(good, name=".."), '"name" must be a file name'),
               (dict(good, name=""), '"name" must be a file name'),
               (dict(good, size=-1), '"size" must be a non-negative integer'),
               (dict(good, size=True), '"size" must be a non-negative integer')]
        for value, message in bad:
            with self.subTest(value=value), self.assertRaisesRegex(InvalidInput, message):
                blobs.parse_spec(value)
        self.assertEqual(blobs.member_path("./a//b/./c"), ["a", "b", "c"])
        self.assertEqual(blobs.member_path("./"), [])


class TlsFetchTest(ModelTestCase):
    def test_https_with_a_private_ca(self):
        made = make_certificate(self.dir.name)
        if made is None:
            self.skipTest("openssl is not on PATH: cannot make a test certificate")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*made)
        server = BlobHttpServer(tls=context)
        self.addCleanup(server.stop)
        data = b"over tls"
        server.add(data)
        spec = blobs.parse_spec(spec_of(data, "file", "m"))
        cache = self.path("cache")
        trusted = blobs.ModelFetcher(server.url, {}, cache,
                                     tls=ssl.create_default_context(cafile=made[0]))
        with self.assertRaisesRegex(ModelFetchError, "CERTIFICATE_VERIFY_FAILED"):
            blobs.ModelFetcher(server.url, {}, cache, tls=ssl.create_default_context()).fetch(spec)
        with open(trusted.fetch(spec), "rb") as f:
            self.assertEqual(f.read(), data)


class WorkerBlobTest(unittest.TestCase):
    """A real `worker start`: the server sends load_model and predict with `modelBlob` only."""

    def setUp(self):
        self.server = FakeWsServer()
        self.addCleanup(self.server.close)
        home = tempfile.TemporaryDirectory(prefix="gsk-home-")
        self.addCleanup(home.cleanup)
        self.home = home.name

    def test_load_and_predict_from_a_blob(self):
        data = model_tar()
        spec = spec_of(data, "tar", "credit")
        shim = Shim(["worker", "start", "-u", self.server.url + "/prefix", "--name", "remote",
                     "--hf-token", "hf_secret"],
                    shim_env(GSK_HOME=self.home, GSK_API_KEY="the-key"))
        self.addCleanup(shim.cleanup)
        peer, _ = self.server.register()
        self.assertEqual(peer.request_line, "GET /prefix/api/v1/workers/connect HTTP/1.1")

        def respond(line, headers):
            if line == "GET /prefix/api/v1/model-blobs/%s HTTP/1.1" % spec["sha256"]:
                return http_response(200, data, "application/octet-stream", "OK")
            return http_response(404, b'{"error":{"code":"NOT_FOUND","message":"unknown blob"}}',
                                 reason="Not Found")
        responder = HttpResponder(self.server, respond)
        self.addCleanup(responder.close)

        peer.send({"type": "request", "id": "l1", "method": "load_model",
                   "params": {"model": SUPERVISOR_PATH, "modelBlob": spec}})
        reply = peer.recv()
        self.assertIn("result", reply, reply)
        self.assertEqual((reply["result"]["model"], reply["result"]["kind"]),
                         (SUPERVISOR_PATH, "entrypoint"))
        (line, headers), = responder.requests
        self.assertEqual(headers["authorization"], "Bearer the-key")
        self.assertEqual(headers["cookie"], "spaces-jwt=hf_secret")
        local = os.path.join(self.home, "cache", "models", spec["sha256"], "credit")
        self.assertTrue(os.path.isfile(os.path.join(local, "src", "blobmodel.py")))

        for request_id in ("p1", "p2"):
            peer.send({"type": "request", "id": request_id, "method": "predict",
                       "params": {"model": SUPERVISOR_PATH, "modelBlob": spec,
                                  "columns": ["a"], "rows": [[1], [2]]}})
            reply = peer.recv()
            # The model sees neither the key nor the token.
            self.assertEqual(reply.get("result", reply)["predictions"],
                             ["no key, no token"] * 2, reply)
        self.assertEqual(len(responder.requests), 1)  # fetched once

        missing = spec_of(b"gone", "file", "gone.pkl")
        peer.send({"type": "request", "id": "l2", "method": "load_model",
                   "params": {"model": "/srv/gone.pkl", "modelBlob": missing}})
        error = peer.recv()["error"]
        self.assertEqual(error["type"], "ModelFetchError")
        self.assertIn("answered HTTP 404 Not Found: unknown blob", error["message"])
        self.assertNotIn("the-key", json.dumps(error))
        responder.close()
        shim.terminate()
        self.assertEqual(peer.expect_close(), 1000)
        self.assertEqual(shim.wait(), 0, shim.stderr())


if __name__ == "__main__":
    unittest.main()
