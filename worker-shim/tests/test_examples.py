"""The example frames of PROTOCOL.md (protocol-examples/*.json) are valid messages with the
documented fields. File names are TYPE.json or TYPE-VARIANT.json."""

import glob
import json
import os
import re
import unittest

from giskard_worker_shim import environment
from giskard_worker_shim.protocol import FrameDecoder, encode_frame
from tests.support import EXAMPLES, ROOT

ENV_FIELDS = {"pythonVersion": str, "pythonExecutable": str, "implementation": str,
              "platform": str, "machine": str, "pid": int, "processStartTime": (float, type(None)),
              "shimVersion": str, "packages": list}
REQUIRED = {
    "hello": {"protocol": int, "workerId": str, "reconnect": bool, "env": dict},
    "welcome": {"protocol": int, "heartbeatSeconds": (int, float), "supervisorPid": int},
    "error": {"error": dict},
    "heartbeat": {"ts": (int, float)},
    "request": {"id": str, "method": str, "params": dict},
    "reply": {"id": str},
}


def load_examples():
    examples = {}
    for path in sorted(glob.glob(os.path.join(EXAMPLES, "*.json"))):
        with open(path, encoding="utf-8") as f:
            examples[os.path.basename(path)] = json.load(f)
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
        for name in self.examples:
            self.assertTrue(name in text, "PROTOCOL.md does not mention " + name)


if __name__ == "__main__":
    unittest.main()
