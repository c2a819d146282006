"""The example frames of PROTOCOL.md (protocol-examples/*.json) are valid messages with the
documented fields. File names are TYPE.json or TYPE-VARIANT.json for the worker protocol, and
template-TYPE.json (with "_" written "-") for the frames of the template's socket."""

import functools
import glob
import json
import os
import re
import unittest

from giskard_worker_shim import blobs, environment, methods, optional, tabular, template
from giskard_worker_shim.dispatch import default_dispatcher
from giskard_worker_shim.calls import invoke
from giskard_worker_shim.models import ModelCache
from giskard_worker_shim.protocol import FrameDecoder, encode_frame
from tests import model_fixtures
from tests.model_fixtures import ModelTestCase
from tests.support import EXAMPLES, ROOT

ENV_FIELDS = {"pythonVersion": str, "pythonExecutable": str, "implementation": str,
              "platform": str, "machine": str, "hostname": str, "pid": int, "processStartTime": (float, type(None)),
              "shimVersion": str, "packages": list}
LOAD_MODEL_RESULT = {"model": str, "cached": bool, "kind": str, "loader": str,
                     "predictProba": bool, "classes": (list, type(None)), "loadMs": (int, float)}
REQUIRED = {
    "hello": {"protocol": int, "workerId": str, "reconnect": bool, "env": dict},
    "welcome": {"protocol": int, "heartbeatSeconds": (int, float), "supervisorPid": int},
    "error": {"error": dict},
    "heartbeat": {"ts": (int, float)},
    "request": {"id": str, "method": str, "params": dict},
    "reply": {"id": str},
}
TEMPLATE_REQUIRED = {
    "ready": {"pid": int, "shimVersion": str, "pythonVersion": str, "preloaded": list},
    "fork": {"id": str, "workerId": str, "token": str, "socket": str,
             "heartbeatSeconds": (int, float), "orphanGraceSeconds": (int, float), "env": dict,
             "cwd": str, "logFile": str, "limits": dict},
    "forked": {"id": str, "pid": int},
    "fork_failed": {"id": str, "error": str},
}
TEMPLATE_PREFIX = "template-"


def load_examples(template_frames=False):
    """The worker protocol's examples, or (template_frames) those of the template's socket."""
    examples = {}
    for path in sorted(glob.glob(os.path.join(EXAMPLES, "*.json"))):
        name = os.path.basename(path)
        if name.startswith(TEMPLATE_PREFIX) != template_frames:
            continue
        with open(path, encoding="utf-8") as f:
            examples[name] = json.load(f)
    return examples


class ExamplesTest(unittest.TestCase):
    def setUp(self):
        self.examples = load_examples()

    def test_every_type_has_an_example(self):
        types = {message["type"] for message in self.examples.values()}
        self.assertEqual(types, set(REQUIRED))
        for kind in REQUIRED:
            self.assertIn(kind + ".json", self.examples)

    def test_file_name_matches_type_and_fields(self):
        for name, message in self.examples.items():
            with self.subTest(example=name):
                kind = re.match(r"^([a-z]+)(-[a-z-]+)?\.json$", name).group(1)
                self.assertEqual(message["type"], kind)
                for field, types in REQUIRED[kind].items():
                    self.assertIsInstance(message[field], types, field)
                self.assertEqual(FrameDecoder().feed(encode_frame(message)), [message])

    def test_hello_variants(self):
        for name in ("hello.json", "hello-reconnect.json", "hello-unmanaged.json"):
            hello = self.examples[name]
            self.assertEqual(hello["protocol"], 1)
            self.assertEqual(set(hello["env"]), set(ENV_FIELDS))
            for field, types in ENV_FIELDS.items():
                self.assertIsInstance(hello["env"][field], types, field)
            names = [p["name"] for p in hello["env"]["packages"]]
            self.assertEqual(names, sorted(names))
            self.assertEqual(names, [environment.normalize_name(n) for n in names])
        self.assertIs(self.examples["hello-reconnect.json"]["reconnect"], True)
        self.assertIn("token", self.examples["hello.json"])
        self.assertNotIn("token", self.examples["hello-unmanaged.json"])
        self.assertIn("name", self.examples["hello-unmanaged.json"])

    def test_env_example_matches_what_the_shim_collects(self):
        self.assertEqual(set(environment.collect()), set(ENV_FIELDS))

    def test_replies_hold_result_or_error(self):
        for name, message in self.examples.items():
            if message["type"] == "reply":
                with self.subTest(example=name):
                    self.assertEqual(("result" in message) + ("error" in message), 1)
                    if "error" in message:
                        self.assertEqual(set(message["error"]), {"type", "message", "traceback"})
        self.assertEqual(self.examples["reply-error.json"]["error"]["type"],
                         "NotImplementedError")

    def test_protocol_md_names_every_example(self):
        with open(os.path.join(ROOT, "PROTOCOL.md"), encoding="utf-8") as f:
            text = f.read()
        for name in list(self.examples) + list(load_examples(template_frames=True)):
            self.assertTrue(name in text, "PROTOCOL.md does not mention " + name)


class TemplateExamplesTest(unittest.TestCase):
    """The frames of the template's socket (section "Fork server" of PROTOCOL.md)."""

    def setUp(self):
        self.examples = load_examples(template_frames=True)

    def test_one_example_per_type_with_its_fields(self):
        self.assertEqual(set(self.examples), {TEMPLATE_PREFIX + kind.replace("_", "-") + ".json"
                                              for kind in TEMPLATE_REQUIRED})
        for name, message in self.examples.items():
            with self.subTest(example=name):
                kind = name[len(TEMPLATE_PREFIX):-len(".json")].replace("-", "_")
                self.assertEqual(message["type"], kind)
                for field, types in TEMPLATE_REQUIRED[kind].items():
                    self.assertIsInstance(message[field], types, field)
                    self.assertNotIsInstance(message[field], bool, field)
                self.assertEqual(FrameDecoder().feed(encode_frame(message)), [message])

    def test_frames_match_what_the_template_sends(self):
        ready = self.examples["template-ready.json"]
        self.assertEqual(set(ready), set(template.ready(["/m"])))
        self.assertTrue(all(os.path.isabs(path) for path in ready["preloaded"]))
        self.assertEqual(set(self.examples["template-forked.json"]), set(template.forked("f", 1)))
        self.assertEqual(self.examples["template-forked.json"]["id"],
                         self.examples["template-fork.json"]["id"])
        self.assertEqual(set(self.examples["template-fork-failed.json"]),
                         set(template.fork_failed("f", "why")))

    def test_fork_request_is_accepted_and_its_variant_refused(self):
        fork = self.examples["template-fork.json"]
        request = template.parse_fork(fork)
        self.assertEqual(request.request_id, fork["id"])
        self.assertEqual(request.settings.worker_id, fork["workerId"])
        self.assertEqual(request.settings.token, fork["token"])
        self.assertEqual(request.settings.socket_path, fork["socket"])
        self.assertEqual(request.settings.heartbeat_seconds, fork["heartbeatSeconds"])
        self.assertEqual(request.settings.grace_seconds, fork["orphanGraceSeconds"])
        self.assertEqual((request.env, request.cwd, request.log_file),
                         (fork["env"], fork["cwd"], fork["logFile"]))
        self.assertEqual(set(fork["limits"]), {name for name, _ in template.LIMITS})
        self.assertEqual(len(request.limits),
                         sum(value is not None for value in fork["limits"].values()))
        failed = self.examples["template-fork-failed.json"]
        with self.assertRaises(template.BadRequest) as caught:
            template.parse_fork(dict(fork, id=failed["id"], cwd="workers/k-1a2b3c4d"))
        self.assertEqual(str(caught.exception), failed["error"])


class ModelExamplesTest(ModelTestCase):
    """The load_model and predict examples, checked by field and against what the shim does
    with the same requests (the model path replaced by a pickled CreditModel)."""

    def setUp(self):
        super().setUp()
        self.examples = load_examples()
        self.model = self.pickle_to("credit.pkl", model_fixtures.CreditModel())

    def params(self, name, **changes):
        params = dict(self.examples[name]["params"], model=self.model)
        params.update(changes)
        return params

    def test_load_model(self):
        request = self.examples["request-load-model.json"]
        self.assertEqual(request["method"], "load_model")
        self.assertEqual(set(request["params"]), {"model"})
        self.assertTrue(os.path.isabs(request["params"]["model"]))
        result = self.examples["reply-load-model.json"]["result"]
        self.assertEqual(set(result), set(LOAD_MODEL_RESULT))
        for field, types in LOAD_MODEL_RESULT.items():
            self.assertIsInstance(result[field], types, field)
        self.assertIn(result["kind"], ("pickle", "joblib", "entrypoint", "artifact"))
        self.assertIn(result["loader"], ("pickle", "joblib"))
        optional._modules["joblib"] = FakeJoblib  # the example's loader
        directory = self.model_dir("m", {"artifact": "model.pkl"})
        self.pickle_to("m/model.pkl", model_fixtures.CreditModel())
        live = methods.load_model(ModelCache(), {"model": directory})
        self.assertEqual(dict(live, loadMs=result["loadMs"]),
                         dict(result, model=directory))

    def test_predict_requests_give_the_example_reply(self):
        expected = self.examples["reply-predict.json"]["result"]
        self.assertEqual(self.examples["request-predict.json"]["method"], "predict")
        self.assertEqual(self.examples["request-predict-records.json"]["method"], "predict")
        self.assertIn("timeoutSeconds", self.examples["request-predict.json"]["params"])
        for name in ("request-predict.json", "request-predict-records.json"):
            with self.subTest(example=name):
                self.assertEqual(methods.predict(ModelCache(), self.params(name)), expected)

    def test_predict_blob_request(self):
        # An unmanaged worker: the model is the blob's local copy (here the pickled
        # CreditModel, as if fetched), and the reply is the one of request-predict.json.
        request = self.examples["request-predict-blob.json"]
        self.assertEqual(request["method"], "predict")
        params = request["params"]
        blob = params["modelBlob"]
        self.assertEqual(set(blob), {"sha256", "format", "name", "size"})
        spec = blobs.parse_spec(blob)
        self.assertEqual(spec.name, os.path.basename(params["model"]))
        self.assertEqual(spec.format, "tar")
        self.assertEqual(spec.size % 512, 0)  # a tar is made of 512-byte blocks
        without_blob = {k: v for k, v in params.items() if k != "modelBlob"}
        self.assertEqual(without_blob, {k: v for k, v in
                                        self.examples["request-predict.json"]["params"].items()
                                        if k != "timeoutSeconds"})

        class Fetched:
            def cached(self, spec_):
                return None

            def fetch(self, spec_):
                self.spec = spec_
                return self.model

        fetcher = Fetched()
        fetcher.model = self.model
        handler = blobs.with_blobs(functools.partial(methods.predict, ModelCache()), fetcher,
                                   tabular.parse_table)
        self.assertEqual(handler(params), self.examples["reply-predict.json"]["result"])
        self.assertEqual(fetcher.spec, spec)

    def test_error_examples(self):
        error = self.examples["reply-predict-error.json"]["error"]
        self.assertEqual(error["type"], "ValueError")
        self.assertIn("Traceback", error["traceback"])
        error = self.examples["reply-model-load-error.json"]["error"]
        self.assertEqual(error["type"], "ModelLoadError")
        self.assertIn("ModuleNotFoundError", error["traceback"])
        example = self.examples["reply-invalid-input.json"]
        request = self.examples["request-predict.json"]
        rows = [list(row) for row in request["params"]["rows"]]
        del rows[1][1]
        reply = invoke(default_dispatcher().lookup("predict"), example["id"],
                       self.params("request-predict.json", rows=rows))
        self.assertEqual(reply["error"]["type"], "InvalidInput")
        self.assertEqual(reply["error"]["message"], example["error"]["message"])


class FakeJoblib:
    load = staticmethod(lambda path: model_fixtures.CreditModel())


if __name__ == "__main__":
    unittest.main()
