#!/usr/bin/env python3
"""End-to-end: model calls (POST /api/v1/kernels/{name}/predict and /models, and the CLI's
`predict`) through the real `giskard-supervisor serve`, its real workers and the worker shim.

The kernels have no requirements (offline, the env holds only the shim: one build of a few
seconds, shared by every such kernel), except one that installs a tiny wheel this file writes
(e2e-model-pkg). The models are pure Python, pickled by the interpreter the kernels use (the
first usable 3.11 the daemon found; /usr/bin/python3 here), which also computes the expected
answers, so that predictions and probabilities are compared exactly. Their classes come from:
  - pylib/e2e_pymodels.py, on the kernels' PYTHONPATH (plain pickle files);
  - a model directory's "code" folder (entry points, factories, artifacts);
  - the e2e-model-pkg wheel, installed in its kernel's env.

Every wait is bounded; workers that outlive the daemon are killed by pid and reported (their
E2E_TEST_DIR marks them, as in test_workers.py). Two tests fail on daemon bugs found while
writing them (see their comments): test_big_call_above_the_server_body_limit (a Content-Length
over 1 MiB gets 413 whatever [models] max_request_bytes says) and
test_a_root_configured_through_a_symlink (a model path spelled with a configured root that is a
symlink gets 403).

    /usr/bin/python3 -B tests/e2e/test_models.py --binary BUILD/supervisor/giskard-supervisor
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import alive, wait_for  # noqa: E402
from workers_support import (WorkersTestCase, get_worker, list_workers,  # noqa: E402
                             wait_running, wait_worker)

CALL_TIMEOUT = 30        # seconds a call that should succeed may take (timeoutSeconds)
SHORT_TIMEOUT = 2        # timeoutSeconds of the calls that must time out
WAIT_TIMEOUT = 120       # a call made before its kernel's env is built (the build included)
MAX_REQUEST_BYTES = 2_000_000  # [models] max_request_bytes: above [server] max_body_bytes (1 MiB)

# On the kernels' PYTHONPATH: the classes of the plain pickle files.
PYMODELS = r'''
"""Pure-Python models of tests/e2e/test_models.py, pickled by reference."""
import math
import os
import time


class Classifier:
    """A logistic model over the row's numbers; classes_ labels its two probabilities."""

    def __init__(self, weights, bias, classes):
        self.weights = list(weights)
        self.bias = bias
        self.classes_ = list(classes)

    def predict_proba(self, X):
        out = []
        for row in X:
            score = self.bias + sum(w * float(x) for w, x in zip(self.weights, row))
            p = 1.0 / (1.0 + math.exp(-score))
            out.append([1.0 - p, p])
        return out

    def predict(self, X):
        return [self.classes_[1] if p >= 0.5 else self.classes_[0]
                for _, p in self.predict_proba(X)]


class Echo:
    """Predicts each row as it came: shows the model's input X."""

    def predict(self, X):
        return [list(row) for row in X]


def _fail_deep(message):
    raise ValueError(message)


class Scripted:
    """Each row is [action, argument]; the worker does what it says."""

    def predict(self, X):
        out = []
        for action, arg in X:
            if action == "echo":
                out.append(arg)
            elif action == "pid":
                out.append(os.getpid())
            elif action == "sleep":  # arg: [seconds, marker file written first]
                with open(arg[1], "w") as f:
                    f.write("%d\n" % os.getpid())
                time.sleep(arg[0])
                out.append(os.getpid())
            elif action == "big":  # a result of about `arg` bytes
                out.append("x" * arg)
            elif action == "alloc":  # more than [workers] memory_limit_mb allows
                out.append(len(bytearray(arg)))
            elif action == "sysexit":
                raise SystemExit(arg)
            elif action == "exit":
                os._exit(arg)
            elif action == "kill":
                os.kill(os.getpid(), arg)
            elif action == "raise":
                _fail_deep(arg)
            else:
                raise KeyError(action)
        return out
'''

# Model directories: {name: {relative path: text}}. Module names are unique to each directory
# (a worker keeps what it imported, and the code folders stay on its sys.path).
FN_MODEL = {
    "giskard-model.json": json.dumps({"entrypoint": "e2e_fnmod:score", "code": ["src"]}),
    "src/e2e_fnmod.py": "def score(X):\n    return [sum(row) * 10 for row in X]\n",
}
FACTORY_MODEL = {
    "giskard-model.json": json.dumps({"entrypoint": "e2e_factmod:build", "code": ["src"]}),
    "src/e2e_factmod.py": (
        "BUILT = 0\n\n\n"
        "class Counted:\n"
        "    def __init__(self, n):\n"
        "        self.n = n\n\n"
        "    def predict(self, X):\n"
        "        return [[self.n, len(row)] for row in X]\n\n\n"
        "def build():\n"
        "    global BUILT\n"
        "    BUILT += 1\n"
        "    return Counted(BUILT)\n"),
}
SPECIAL_MODEL = {
    "giskard-model.json": json.dumps({"entrypoint": "e2e_specialmod:predict", "code": ["src"]}),
    "src/e2e_specialmod.py": (
        "def predict(X):\n"
        "    return [float('nan'), float('inf'), -float('inf'), 1e308, -0.0, 2 ** 70, None]\n"),
}
ARTIFACT_SRC = {
    "e2e_artmod/__init__.py": "",
    "e2e_artmod/tagger.py": (
        "class Tagger:\n"
        "    def __init__(self, prefix):\n"
        "        self.prefix = prefix\n\n"
        "    def predict(self, X):\n"
        "        return [self.prefix + str(row[0]) for row in X]\n"),
}

# The wheel of this file: e2e-model-pkg 1.0.0, a pure-Python scorer.
WHEEL_NAME, WHEEL_VERSION = "e2e-model-pkg", "1.0.0"
WHEEL_MODULE = r'''
"""e2e-model-pkg: a tiny model package for tests/e2e/test_models.py."""
import os

__version__ = "1.0.0"


class LinearScorer:
    def __init__(self, weights):
        self.weights = list(weights)

    def predict(self, X):
        here = os.path.dirname(os.path.abspath(__file__))
        return [[sum(w * x for w, x in zip(self.weights, row)), __version__, here] for row in X]
'''

# Run by the kernels' interpreter: writes the pickles, prints the expected answers.
PICKLER = r'''
import json, os, pickle, sys
pylib, art_src, wheel, out = sys.argv[1:5]
sys.path[:0] = [pylib, art_src, wheel]
import e2e_pymodels as m
from e2e_artmod.tagger import Tagger
import e2e_model_pkg

def dump(obj, path):
    with open(path, "wb") as f:
        pickle.dump(obj, f)

clf = m.Classifier([0.75, -1.5], 0.1, ["low", "high"])
dump(clf, os.path.join(out, "classifier.pkl"))
clf2 = m.Classifier([-0.5, 0.25], 1.0, ["no", "yes"])
dump(clf2, os.path.join(out, "classifier2.pkl"))
dump(m.Echo(), os.path.join(out, "echo.pkl"))
dump(m.Scripted(), os.path.join(out, "scripted.pkl"))
dump(Tagger("t-"), os.path.join(out, "tagger.pkl"))
dump(e2e_model_pkg.LinearScorer([2, 0.5]), os.path.join(out, "scorer.pkl"))
rows = [[1.5, 2], [-3, 0.25], [0, 0], [10, 1]]
csv_rows = [[1.5, 2], [-3, 0.25]]
print(json.dumps({
    "executable": sys.executable,
    "rows": rows,
    "predictions": clf.predict(rows),
    "probabilities": clf.predict_proba(rows),
    "predictions2": clf2.predict(rows),
    "probabilities2": clf2.predict_proba(rows),
    "csv_predictions": clf.predict(csv_rows),
    "csv_probabilities": clf.predict_proba(csv_rows),
    "scores": [sum(w * x for w, x in zip([2, 0.5], r)) for r in rows],
}))
'''


def write_tree(root, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def write_model_wheel(out_dir):
    """e2e_model_pkg-1.0.0-py3-none-any.whl; returns its path."""
    return h.write_package_wheel(out_dir, WHEEL_NAME, WHEEL_VERSION,
                                 {"e2e_model_pkg/__init__.py": WHEEL_MODULE})


def toml_list(items):
    return "[" + ", ".join(h.toml_str(i) for i in items) + "]"


class ModelsTestCase(WorkersTestCase):
    """A daemon per class (queue_size 1, max_request_bytes 2 MB, two model roots), the model
    files, the wheel, and helpers for calls."""

    SHARED_DAEMON = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        t = cls.tmp
        cls.pylib = os.path.join(t, "pylib")
        cls.wheels = os.path.join(t, "wheels")
        cls.root = os.path.join(t, "models-a")      # the first root: relative paths go here
        cls.root2 = os.path.join(t, "models-b")
        cls.root2_link = os.path.join(t, "models-b-link")  # configured: a symlink to models-b
        cls.outside = os.path.join(t, "outside")    # under no root
        cls.sibling = os.path.join(t, "models-a-sibling")  # shares the first root's prefix
        for d in (cls.pylib, cls.wheels, cls.root, cls.root2, cls.outside, cls.sibling):
            os.makedirs(d)
        os.symlink(cls.root2, cls.root2_link)
        write_tree(cls.pylib, {"e2e_pymodels.py": PYMODELS})
        cls.wheel = write_model_wheel(cls.wheels)
        config = h.config_toml(find_links=[cls.wheels], offline=True, max_concurrent=2) + f"""
[workers]
start_seconds = 0.5
backoff_initial_seconds = 0.2
backoff_max_seconds = 0.5
max_quick_failures = 3
stop_timeout_seconds = 2
memory_limit_mb = 1024
[models]
roots = {toml_list([cls.root, cls.root2_link])}
queue_size = 1
max_request_bytes = {MAX_REQUEST_BYTES}
call_timeout_seconds = 30
"""
        cls.daemon = cls.new_daemon(config_text=config).start()
        d = cls.daemon
        cls.python = h.usable_minors(d).get("3.11")
        if cls.python is None:
            raise unittest.SkipTest(f"the daemon found no usable Python 3.11: "
                                    f"{h.usable_minors(d)}")
        cls.write_models()

    @classmethod
    def write_models(cls):
        """The model files and directories, pickled by the kernels' interpreter."""
        art_src_tree = {f"src/{k}": v for k, v in ARTIFACT_SRC.items()}
        write_tree(os.path.join(cls.root, "fn-model"), FN_MODEL)
        write_tree(os.path.join(cls.root, "factory-model"), FACTORY_MODEL)
        write_tree(os.path.join(cls.root, "special-model"), SPECIAL_MODEL)
        art = os.path.join(cls.root, "artifact-model")
        write_tree(art, dict(art_src_tree, **{"giskard-model.json": json.dumps(
            {"artifact": "model.pkl", "code": ["src"]})}))
        nocode = os.path.join(cls.root, "artifact-nocode")
        write_tree(nocode, {"giskard-model.json": json.dumps({"artifact": "model.pkl"})})
        work = os.path.join(cls.tmp, "pickles")
        os.makedirs(work)
        p = subprocess.run([cls.python, "-I", "-c", PICKLER, cls.pylib, os.path.join(art, "src"),
                            cls.wheel, work], capture_output=True, text=True,
                           timeout=h.PROC_TIMEOUT, env={"PATH": "/usr/bin:/bin",
                                                        "LC_ALL": "C.UTF-8"})
        assert p.returncode == 0, f"pickling failed: {p.stdout}\n{p.stderr}"
        cls.expected = json.loads(p.stdout)
        for name in ("classifier.pkl", "echo.pkl", "scripted.pkl"):
            shutil.copy(os.path.join(work, name), cls.root)
        cls.pickles = work
        shutil.copy(os.path.join(work, "tagger.pkl"), os.path.join(art, "model.pkl"))
        shutil.copy(os.path.join(work, "tagger.pkl"), os.path.join(nocode, "model.pkl"))
        shutil.copy(os.path.join(work, "scorer.pkl"), cls.root2)
        for where in (cls.outside, cls.sibling, cls.root2):
            shutil.copy(os.path.join(work, "classifier.pkl"), where)
        # Symlinks inside the first root: one to a model inside it, one leading out of it.
        os.symlink(os.path.join(cls.root, "classifier.pkl"),
                   os.path.join(cls.root, "link-inside.pkl"))
        os.symlink(os.path.join(cls.outside, "classifier.pkl"),
                   os.path.join(cls.root, "link-outside.pkl"))
        os.symlink(cls.outside, os.path.join(cls.root, "dir-outside"))

    @classmethod
    def create(cls, name, workers=1, requested=(), env=None, pythonpath=None):
        """Posts a kernel (not waiting); its workers get PYTHONPATH and an E2E_TEST_DIR."""
        test_dir = os.path.join(cls.tmp, f"kernel-{name}")
        os.makedirs(test_dir, exist_ok=True)
        if pythonpath:
            os.makedirs(pythonpath, exist_ok=True)
        kenv = {"PYTHONPATH": pythonpath or cls.pylib, "E2E_TEST_DIR": test_dir}
        kenv.update(env or {})
        doc = {"name": name, "pythonVersion": "3.11", "requestedDependencies": list(requested),
               "type": "PROCESS", "version": "1", "workers": workers, "env": kenv}
        r = cls.daemon.post("/api/v1/kernels", doc)
        assert r.status == 201, r
        return r.json

    def tearDown(self):
        self.assertHealthy(self.daemon)

    # --- helpers -------------------------------------------------------------------------------

    def predict(self, kernel, body, timeout=None):
        """POST .../predict; `timeout` bounds the HTTP exchange (default: the call's own + 30)."""
        if isinstance(body, dict) and "timeoutSeconds" not in body:
            body = dict(body, timeoutSeconds=CALL_TIMEOUT)
        limit = timeout or (body.get("timeoutSeconds", 60) if isinstance(body, dict) else 60) + 30
        return self.daemon.post(f"/api/v1/kernels/{kernel}/predict", body, timeout=limit)

    def predict_ok(self, kernel, body, timeout=None):
        r = self.predict(kernel, body, timeout)
        self.assertEqual(r.status, 200, r)
        answer = r.json
        self.assertIsInstance(answer, dict, r)
        self.assertIsInstance(answer.get("worker"), str, r)
        self.assertTrue(answer["worker"].startswith(kernel + "-"), r)
        for field in ("durationMs", "queuedMs"):
            self.assertIsInstance(answer.get(field), int, r)
            self.assertGreaterEqual(answer[field], 0, r)
        return answer

    def load(self, kernel, model):
        return self.daemon.post(f"/api/v1/kernels/{kernel}/models", {"model": model},
                                timeout=CALL_TIMEOUT + 30)

    def scripted(self, *rows, timeout=CALL_TIMEOUT):
        return {"model": "scripted.pkl", "rows": [list(r) for r in rows],
                "timeoutSeconds": timeout}

    def only_worker(self, kernel):
        ws = list_workers(self.daemon, kernel)
        self.assertEqual(len(ws), 1, ws)
        return ws[0]

    def wait_replaced(self, worker, timeout=30):
        """Waits until the worker (same id) runs again with another live pid."""
        return wait_worker(self.daemon, worker["id"],
                           lambda w: w["state"] == "running" and w["pid"] not in (0, worker["pid"])
                           and alive(w["pid"]), "running again with a new pid", timeout)

    def marker(self, name):
        path = os.path.join(self.tmp, f"marker-{name}-{time.monotonic_ns()}")
        return path

    def wait_file(self, path, timeout=20):
        wait_for(f"{path} written", lambda: os.path.exists(path) and os.path.getsize(path) > 0,
                 bool, timeout, interval=0.02)


class ModelCallsTest(ModelsTestCase):
    """The kernels of the class: shared (2 workers), fragile (1 worker: killed, timed out,
    queued), stopped, idle (workers: 0), broken-env (its build fails); tests add wheel, late,
    crashing, interrupted and doomed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.daemon
        # The kernels of the class, built once (all but broken-env share one env).
        cls.create("shared", workers=2)
        cls.create("fragile", workers=1)
        cls.create("stopped", workers=1)
        cls.create("idle", workers=0)
        cls.create("broken-env", requested=["e2e-missing-dep==9.9"])
        for name in ("shared", "fragile", "stopped", "idle"):
            k = d.wait_status(name, timeout=h.BUILD_TIMEOUT)
            assert k["status"] == "ready", f"{k}\n{d.build_log(name)[-3000:]}"
        k = d.wait_status("broken-env", timeout=h.BUILD_TIMEOUT)
        assert k["status"] == "failed", k
        wait_running(d, "shared", 2)
        wait_running(d, "fragile", 1)
        wait_running(d, "stopped", 1)
        r = d.post("/api/v1/kernels/stopped/stop", None)
        assert r.status == 200, r

    # --- models that work ----------------------------------------------------------------------

    def test_pickle_with_predict_proba_and_classes(self):
        e = self.expected
        for model in ("classifier.pkl", os.path.join(self.root, "classifier.pkl"),
                      "sub/../classifier.pkl", "link-inside.pkl"):
            with self.subTest(model=model):
                a = self.predict_ok("shared", {"model": model, "columns": ["x1", "x2"],
                                               "rows": e["rows"]})
                self.assertEqual(a["predictions"], e["predictions"])
                self.assertEqual(a["probabilities"], e["probabilities"])  # exactly
                self.assertEqual(a["classes"], ["low", "high"])
                self.assertEqual(a["rows"], 4)
                self.assertEqual(set(a), {"predictions", "probabilities", "classes", "rows",
                                          "worker", "durationMs", "queuedMs"}, a)
        # File names that need escaping on their way to the worker.
        for name in ("mod\u00e8le \u00fc.pkl", 'we"ird\\name\t.pkl'):
            with self.subTest(name=name):
                shutil.copy(os.path.join(self.root, "classifier.pkl"),
                            os.path.join(self.root, name))
                a = self.predict_ok("shared", {"model": name, "rows": e["rows"]})
                self.assertEqual(a["probabilities"], e["probabilities"])
                r = self.load("shared", name)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json["model"], os.path.join(self.root, name))
                self.assertEqual({w["model"] for w in r.json["workers"]},
                                 {os.path.join(self.root, name)}, r)
        # Rows without columns, and zero rows.
        a = self.predict_ok("shared", {"model": "classifier.pkl", "rows": e["rows"][:1]})
        self.assertEqual((a["predictions"], a["probabilities"]),
                         (e["predictions"][:1], e["probabilities"][:1]))
        a = self.predict_ok("shared", {"model": "classifier.pkl", "rows": []})
        self.assertEqual((a["predictions"], a["probabilities"], a["rows"]), ([], [], 0), a)

    def test_a_changed_model_file_is_loaded_again(self):
        e = self.expected
        path = os.path.join(self.root, "changing.pkl")
        shutil.copy(os.path.join(self.pickles, "classifier.pkl"), path)
        r = self.load("shared", "changing.pkl")  # on both workers
        self.assertEqual([w["cached"] for w in r.json["workers"]], [False, False], r)
        a = self.predict_ok("shared", {"model": "changing.pkl", "rows": e["rows"]})
        self.assertEqual(a["probabilities"], e["probabilities"])
        old = os.stat(path)
        shutil.copy(os.path.join(self.pickles, "classifier2.pkl"), path + ".new")
        os.utime(path + ".new", ns=(old.st_atime_ns, old.st_mtime_ns + 1_000_000_000))
        os.replace(path + ".new", path)
        for _ in range(3):
            a = self.predict_ok("shared", {"model": "changing.pkl", "rows": e["rows"]})
            self.assertEqual((a["predictions"], a["probabilities"], a["classes"]),
                             (e["predictions2"], e["probabilities2"], ["no", "yes"]))
        r = self.load("shared", "changing.pkl")
        self.assertEqual(r.status, 200, r)
        self.assertEqual([w["classes"] for w in r.json["workers"]], [["no", "yes"]] * 2, r)

    def test_special_values_and_text_pass_through_unchanged(self):
        # Non-finite floats become the strings of the proto3 JSON mapping; big and negative-zero
        # numbers and null stay what they are.
        r = self.predict("shared", {"model": "special-model", "rows": [[1]]})
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'"predictions":', r.raw)
        self.assertEqual(r.json["predictions"],
                         ["NaN", "Infinity", "-Infinity", 1e308, -0.0, 2 ** 70, None])
        self.assertEqual(str(r.json["predictions"][4]), "-0.0")
        # Text of every kind goes to the worker and back as it came.
        texts = ["h\u00e9llo", "\u65e5\u672c", "line\nbreak\ttab", "quote\"back\\slash",
                 "nul\u0000byte", "\U0001F600", "NaN", ""]
        a = self.predict_ok("shared", {"model": "echo.pkl", "rows": [[t] for t in texts]})
        self.assertEqual(a["predictions"], [[t] for t in texts])

    def test_calls_need_the_token(self):
        d = self.daemon
        body = {"model": "classifier.pkl", "rows": [[1, 2]]}
        for token in (None, "wrong-token"):
            with self.subTest(token=token):
                r = d.post("/api/v1/kernels/shared/predict", body, token=token)
                self.assertError(r, 401)
                r = d.post("/api/v1/kernels/shared/models", {"model": "classifier.pkl"},
                           token=token)
                self.assertError(r, 401)
        # The admin socket needs none.
        r = d.admin_request("POST", "/api/v1/kernels/shared/predict",
                            json.dumps(dict(body, timeoutSeconds=CALL_TIMEOUT)))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["predictions"], ["low"])

    def test_records_and_columns_with_rows(self):
        e = self.expected
        records = [{"x1": r[0], "x2": r[1]} for r in e["rows"]]
        by_records = self.predict_ok("shared", {"model": "classifier.pkl", "records": records})
        by_rows = self.predict_ok("shared", {"model": "classifier.pkl", "columns": ["x1", "x2"],
                                             "rows": e["rows"]})
        for a in (by_records, by_rows):
            self.assertEqual(a["predictions"], e["predictions"])
            self.assertEqual(a["probabilities"], e["probabilities"])
            self.assertEqual(a["rows"], 4)
        # The model's input: the first record's keys in its order make the columns; values of
        # any JSON type pass as they came (no numpy or pandas in this env: a list of lists).
        a = self.predict_ok("shared", {"model": "echo.pkl", "records": [
            {"b": 1, "a": "x"}, {"a": None, "b": [1.5, True]}]})
        self.assertEqual(a["predictions"], [[1, "x"], [[1.5, True], None]])
        a = self.predict_ok("shared", {"model": "echo.pkl", "columns": ["b", "a"],
                                       "rows": [[1, "x"], [2.25, {"k": "v"}]]})
        self.assertEqual(a["predictions"], [[1, "x"], [2.25, {"k": "v"}]])

    def test_entrypoint_function(self):
        a = self.predict_ok("shared", {"model": "fn-model", "rows": [[1, 2], [0.5, 0.25]]})
        self.assertEqual(a["predictions"], [30, 7.5])
        self.assertNotIn("probabilities", a)
        self.assertNotIn("classes", a)
        r = self.load("shared", "fn-model")
        self.assertEqual(r.status, 200, r)
        for w in r.json["workers"]:
            self.assertEqual((w["kind"], w["predictProba"], w["classes"]),
                             ("entrypoint", False, None), w)
            self.assertNotIn("loader", w)

    def test_factory_entrypoint_is_called_once_per_worker(self):
        for _ in range(3):
            a = self.predict_ok("shared", {"model": "factory-model", "rows": [[1, 2, 3]]})
            self.assertEqual(a["predictions"], [[1, 3]], a)
        r = self.load("shared", "factory-model")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["loaded"], 2, r)
        # Both workers now have it: still built once each.
        seen = set()
        for _ in range(4):
            a = self.predict_ok("shared", {"model": "factory-model", "rows": [[7]]})
            self.assertEqual(a["predictions"], [[1, 1]], a)
            seen.add(a["worker"])
        self.assertTrue(seen)

    def test_artifact_needs_its_code_folder(self):
        # First, without "code" (before any worker imported e2e_artmod): cannot load.
        r = self.predict("shared", {"model": "artifact-nocode", "rows": [[1]]})
        self.assertError(r, 422, "MODEL_LOAD_ERROR")
        self.assertIn("e2e_artmod", r.json["error"]["message"])
        self.assertEqual(r.json["error"]["details"].get("type"), "ModelLoadError", r)
        self.assertIn("ModuleNotFoundError", r.json["error"]["details"].get("traceback", ""), r)
        # The models route: no worker can load it either.
        r = self.load("shared", "artifact-nocode")
        self.assertError(r, 422, "MODEL_LOAD_ERROR")
        # With "code": ["src"], the same pickle loads its class from the model's own code.
        a = self.predict_ok("shared", {"model": "artifact-model", "rows": [[1], ["b"]]})
        self.assertEqual(a["predictions"], ["t-1", "t-b"])
        r = self.load("shared", "artifact-model")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["loaded"], 2, r)
        for w in r.json["workers"]:
            self.assertEqual((w["kind"], w["loader"]), ("artifact", "pickle"), w)

    def test_models_route_loads_on_every_worker(self):
        d = self.daemon
        running = {w["id"] for w in wait_running(d, "shared", 2)}
        path = os.path.join(self.root2, "classifier-copy.pkl")
        shutil.copy(os.path.join(self.root, "classifier.pkl"), path)
        r = self.load("shared", path)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["model"], path)
        self.assertEqual(r.json["loaded"], 2, r)
        self.assertEqual({w["worker"] for w in r.json["workers"]}, running, r)
        for w in r.json["workers"]:
            self.assertEqual(w["model"], path, w)
            self.assertEqual((w["cached"], w["kind"], w["loader"], w["predictProba"],
                              w["classes"]), (False, "pickle", "pickle", True, ["low", "high"]),
                             w)
            self.assertIsInstance(w["loadMs"], (int, float), w)
            self.assertNotIn("error", w)
        # Again: cached on both.
        r = self.load("shared", path)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([w["cached"] for w in r.json["workers"]], [True, True], r)
        # A relative path is taken under the first root.
        r = self.load("shared", "classifier.pkl")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["model"], os.path.join(self.root, "classifier.pkl"), r)
        # Errors of the route.
        self.assertError(self.load("shared", "/etc/passwd"), 403, "FORBIDDEN")
        self.assertError(self.load("shared", "no-such-model.pkl"), 404, "NOT_FOUND")
        self.assertError(self.load("stopped", "classifier.pkl"), 503)
        self.assertError(self.load("no-such-kernel", "classifier.pkl"), 404)
        r = d.post("/api/v1/kernels/shared/models", "{not json")
        self.assertError(r, 400, "INVALID_JSON")

    def test_model_from_the_kernels_own_wheel_called_before_the_env_is_built(self):
        # A kernel that installs e2e-model-pkg from the find-links directory; the call is made
        # at once, so it waits for the build and the worker, and gets the answer.
        d = self.daemon
        created = self.create("wheel", requested=[f"{WHEEL_NAME}=={WHEEL_VERSION}"],
                              pythonpath=os.path.join(self.tmp, "empty"))
        self.assertIn(created["status"], ("pending", "building"), created)
        rows = self.expected["rows"]
        start = time.monotonic()
        a = self.predict_ok("wheel", {"model": os.path.join(self.root2, "scorer.pkl"),
                                      "rows": rows, "timeoutSeconds": WAIT_TIMEOUT})
        elapsed = time.monotonic() - start
        k = d.get("/api/v1/kernels/wheel").json
        self.assertEqual(k["status"], "ready", k)
        env_dir = os.path.join(d.state_dir, "envs", k["envHash"][:32])
        self.assertEqual([p[0] for p in a["predictions"]], self.expected["scores"])
        for score, version, where in a["predictions"]:
            self.assertEqual(version, WHEEL_VERSION)
            self.assertTrue(where.startswith(env_dir + "/") and "site-packages" in where, where)
        self.assertGreater(a["queuedMs"], 0, a)  # it waited for the build and the worker
        self.assertLessEqual(a["queuedMs"], elapsed * 1000 + 50, a)
        (w,) = list_workers(d, "wheel")
        pkgs = {p["name"]: p["version"] for p in get_worker(d, w["id"])["environment"]["packages"]}
        self.assertEqual(pkgs.get(WHEEL_NAME), WHEEL_VERSION, pkgs)
        # The other kernels cannot unpickle it: e2e_model_pkg is not in their env.
        r = self.predict("shared", {"model": os.path.join(self.root2, "scorer.pkl"),
                                    "rows": rows})
        self.assertError(r, 422, "MODEL_LOAD_ERROR")
        self.assertIn("e2e_model_pkg", r.json["error"]["message"])

    def test_call_while_the_workers_start_waits_for_them(self):
        d = self.daemon
        created = self.create("late", workers=1)
        self.assertEqual(created["status"], "ready", created)  # the shared env is cached
        self.assertEqual(created.get("runningWorkers"), 0, created)
        a = self.predict_ok("late", {"model": "classifier.pkl", "rows": self.expected["rows"]})
        self.assertEqual(a["probabilities"], self.expected["probabilities"])
        (w,) = list_workers(d, "late")
        self.assertEqual(a["worker"], w["id"])
        self.assertGreater(a["queuedMs"], 0, a)

    def big_body(self):
        """1.5 MB: over [server] max_body_bytes (1 MiB), under [models] max_request_bytes."""
        rows = [[i, "v" * 40] for i in range(30000)]
        body = json.dumps({"model": "echo.pkl", "rows": rows, "timeoutSeconds": CALL_TIMEOUT})
        self.assertGreater(len(body), 1 << 20)
        self.assertLess(len(body), MAX_REQUEST_BYTES)
        return rows, body.encode()

    def test_big_call_above_the_server_body_limit(self):
        # Sent with Content-Length, as every client does. (Daemon bug at the time of writing:
        # any Content-Length over 1 MiB, Beast's default body limit, is refused with 413 while
        # the header is parsed, before the route's own limit is applied.)
        rows, body = self.big_body()
        a = self.predict_ok("shared", body)
        self.assertEqual(a["rows"], len(rows))
        self.assertEqual(a["predictions"], rows)

    def test_big_call_chunked(self):
        rows, body = self.big_body()
        head = ("POST /api/v1/kernels/shared/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {self.daemon.token}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                "Connection: close\r\n\r\n").encode()
        data = [head]
        for i in range(0, len(body), 65536):
            part = body[i:i + 65536]
            data.append(b"%x\r\n" % len(part) + part + b"\r\n")
        data.append(b"0\r\n\r\n")
        with socket.create_connection(("127.0.0.1", self.daemon.port),
                                      timeout=CALL_TIMEOUT + 30) as sock:
            sock.sendall(b"".join(data))
            reply = h.read_until_closed(sock, limit=16 << 20)
        status, _, payload = h.parse_raw_response(reply)
        self.assertEqual(status, 200, reply[:500])
        a = json.loads(payload)
        self.assertEqual(a["rows"], len(rows))
        self.assertEqual(a["predictions"], rows)

    def test_big_answers(self):
        # 12 MB of predictions come back whole; past the 16 MiB frame limit the worker says so.
        r = self.predict("fragile", self.scripted(["big", 12_000_000]), timeout=120)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["predictions"], ["x" * 12_000_000])
        r = self.predict("fragile", self.scripted(["big", 20_000_000]), timeout=120)
        self.assertError(r, 422, "MODEL_ERROR")
        self.assertEqual(r.json["error"]["details"].get("type"), "FrameTooLarge", r)
        a = self.predict_ok("fragile", self.scripted(["echo", "small"]))
        self.assertEqual(a["predictions"], ["small"])

    def test_calls_run_in_parallel_on_two_workers(self):
        answers = {}
        markers = [self.marker(f"parallel-{i}") for i in range(2)]

        def call(i):
            answers[i] = self.predict("shared", self.scripted(["sleep", [1.5, markers[i]]]))
        threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        elapsed = time.monotonic() - start
        self.assertEqual([answers[i].status for i in range(2)], [200, 200], answers)
        self.assertEqual(len({answers[i].json["worker"] for i in range(2)}), 2, answers)
        self.assertLess(elapsed, 2.9, "the two calls did not run at the same time")
        for i in range(2):
            self.assertGreaterEqual(answers[i].json["durationMs"], 1500, answers[i])
            self.assertLess(answers[i].json["queuedMs"], 1000, answers[i])

    # --- errors --------------------------------------------------------------------------------

    def test_400_malformed_body_and_bad_input(self):
        d = self.daemon
        for body in ("{not json", "[1, 2]", '"model"', "", '{"model": "x.pkl", "rows": [[1]]'):
            with self.subTest(body=body):
                r = d.post("/api/v1/kernels/shared/predict", body,
                           content_type="application/json")
                self.assertError(r, 400, "INVALID_JSON")
        bad = {
            "rows and records": ({"model": "classifier.pkl", "rows": [[1, 2]],
                                  "records": [{"a": 1}]}, None),
            "neither rows nor records": ({"model": "classifier.pkl"}, None),
            "no model": ({"rows": [[1, 2]]}, "model"),
            "model not a string": ({"model": 3, "rows": [[1, 2]]}, "model"),
            "rows not an array": ({"model": "classifier.pkl", "rows": {"a": 1}}, "rows"),
            "bad timeout": ({"model": "classifier.pkl", "rows": [[1, 2]], "timeoutSeconds": -1},
                            "timeoutSeconds"),
            "timeout above the maximum": ({"model": "classifier.pkl", "rows": [[1, 2]],
                                           "timeoutSeconds": 100000}, "timeoutSeconds"),
            "timeout not a number": ({"model": "classifier.pkl", "rows": [[1, 2]],
                                      "timeoutSeconds": "2"}, "timeoutSeconds"),
            # Checked by the worker's shim, which names what is wrong.
            "row length": ({"model": "classifier.pkl", "columns": ["x1", "x2"],
                            "rows": [[1, 2], [3]]}, "rows[1] has 1 values but columns has 2"),
            "ragged rows": ({"model": "classifier.pkl", "rows": [[1, 2], [3]]},
                            "rows[1] has 1 values but rows[0] has 2"),
            "row not a list": ({"model": "classifier.pkl", "rows": [[1, 2], 3]}, "rows[1]"),
            "duplicate column": ({"model": "classifier.pkl", "columns": ["a", "a"],
                                  "rows": [[1, 2]]}, 'columns has "a" twice'),
            "record lacks a key": ({"model": "classifier.pkl",
                                    "records": [{"a": 1, "b": 2}, {"a": 3}]},
                                   'records[1] lacks key "b"'),
            "records with columns": ({"model": "classifier.pkl", "columns": ["a"],
                                      "records": [{"a": 1}]}, '"columns" goes with "rows"'),
        }
        for label, (body, mention) in bad.items():
            with self.subTest(label):
                if "timeoutSeconds" not in body:
                    body = dict(body, timeoutSeconds=CALL_TIMEOUT)
                r = d.post("/api/v1/kernels/shared/predict", body, timeout=CALL_TIMEOUT + 30)
                self.assertError(r, 400, "INVALID_INPUT")
                if mention:
                    self.assertIn(mention, r.json["error"]["message"])
        # Only POST.
        r = d.get("/api/v1/kernels/shared/predict")
        self.assertError(r, 405)
        self.assertIn("POST", r.header("Allow", ""))
        # Not JSON at all: 415.
        r = d.post("/api/v1/kernels/shared/predict", '{"model": "classifier.pkl"}',
                   content_type="text/plain")
        self.assertError(r, 415)

    def test_403_outside_the_roots(self):
        outside = os.path.join(self.outside, "classifier.pkl")
        cases = {
            "absolute path outside": outside,
            "system file": "/etc/passwd",
            "relative path climbing out": "../outside/classifier.pkl",
            "a sibling sharing the root's prefix": os.path.join(self.sibling, "classifier.pkl"),
            "relative path into that sibling": "../models-a-sibling/classifier.pkl",
            "symlink to a file outside": "link-outside.pkl",
            "through a symlinked folder": "dir-outside/classifier.pkl",
            "absolute path through the symlink": os.path.join(self.root, "link-outside.pkl"),
        }
        for label, model in cases.items():
            with self.subTest(label):
                r = self.predict("shared", {"model": model, "rows": [[1, 2]]})
                self.assertError(r, 403, "FORBIDDEN")
                self.assertIn("outside the model roots", r.json["error"]["message"])
        # A symlink's target is named, so the caller sees where it leads.
        r = self.predict("shared", {"model": "link-outside.pkl", "rows": [[1, 2]]})
        self.assertIn(outside, r.json["error"]["message"])

    def test_a_root_configured_through_a_symlink(self):
        # The second root is configured as models-b-link, a symlink to models-b: a model under
        # it may be named either way. (Daemon bug at the time of writing: the path as spelled
        # is compared with the resolved roots before symlinks are resolved, so the configured
        # spelling gets 403.)
        e = self.expected
        for model in (os.path.join(self.root2, "classifier.pkl"),
                      os.path.join(self.root2_link, "classifier.pkl")):
            with self.subTest(model=model):
                a = self.predict_ok("shared", {"model": model, "rows": e["rows"]})
                self.assertEqual(a["probabilities"], e["probabilities"])

    def test_404_missing_model_or_kernel(self):
        r = self.predict("shared", {"model": "no-such-model.pkl", "rows": [[1, 2]]})
        self.assertError(r, 404, "NOT_FOUND")
        self.assertIn("no-such-model.pkl", r.json["error"]["message"])
        r = self.predict("shared", {"model": os.path.join(self.root2, "nope", "m.pkl"),
                                    "rows": [[1, 2]]})
        self.assertError(r, 404, "NOT_FOUND")
        r = self.predict("no-such-kernel", {"model": "classifier.pkl", "rows": [[1, 2]]})
        self.assertError(r, 404, "NOT_FOUND")

    def test_413_over_max_request_bytes(self):
        chunk = b" " * 65536
        count = MAX_REQUEST_BYTES // len(chunk) + 2
        head = ("POST /api/v1/kernels/shared/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {self.daemon.token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {count * len(chunk)}\r\n"
                "\r\n").encode()
        data, _ = h.send_streaming(self.daemon.port, head, chunk, count)
        status, _, body = h.parse_raw_response(data)
        self.assertEqual(status, 413, data[:500])
        self.assertEqual(json.loads(body)["error"]["code"], "PAYLOAD_TOO_LARGE")

    def test_422_exception_in_the_models_code(self):
        before = self.only_worker("fragile")
        r = self.predict("fragile", self.scripted(["echo", 1], ["raise", "boom-7f3a"]))
        self.assertError(r, 422, "MODEL_ERROR")
        err = r.json["error"]
        self.assertIn("ValueError: boom-7f3a", err["message"])
        self.assertEqual(err["details"].get("type"), "ValueError", err)
        tb = err["details"].get("traceback", "")
        self.assertIn("Traceback", tb)
        self.assertIn("boom-7f3a", tb)
        self.assertIn("_fail_deep", tb)
        self.assertIn("e2e_pymodels.py", tb)
        r = self.predict("fragile", self.scripted(["what", 1]))
        self.assertError(r, 422, "MODEL_ERROR")
        self.assertEqual(r.json["error"]["details"].get("type"), "KeyError", r)
        # Past memory_limit_mb (RLIMIT_AS), and sys.exit(): errors of the call, not of the worker.
        r = self.predict("fragile", self.scripted(["alloc", 4 << 30]))
        self.assertError(r, 422, "MODEL_ERROR")
        self.assertEqual(r.json["error"]["details"].get("type"), "MemoryError", r)
        r = self.predict("fragile", self.scripted(["sysexit", 4]))
        self.assertError(r, 422, "MODEL_ERROR")
        self.assertEqual(r.json["error"]["details"].get("type"), "SystemExit", r)
        # The worker goes on serving: same process.
        a = self.predict_ok("fragile", self.scripted(["pid", 0]))
        self.assertEqual(a["predictions"], [before["pid"]])
        self.assertEqual(self.only_worker("fragile")["pid"], before["pid"])

    def test_429_when_the_queue_is_full(self):
        before = self.only_worker("fragile")
        marker = self.marker("429")
        answers = {}

        def call(key, body):
            answers[key] = self.predict("fragile", body)
        slow = threading.Thread(target=call, args=("slow", self.scripted(
            ["sleep", [2.5, marker]], timeout=15)))
        slow.start()
        try:
            self.wait_file(marker)  # the slow call runs on the only worker: nothing queued yet
            others = [threading.Thread(target=call, args=(k, self.scripted(["echo", k],
                                                                          timeout=15)))
                      for k in ("b", "c")]
            for t in others:
                t.start()
            for t in others:
                t.join(40)
        finally:
            slow.join(40)
        self.assertFalse(slow.is_alive() or any(t.is_alive() for t in others))
        self.assertEqual(answers["slow"].status, 200, answers["slow"])
        self.assertEqual(answers["slow"].json["predictions"], [before["pid"]])
        # One of the two waits in the queue (size 1) and gets served after the slow call; the
        # other is refused at once with Retry-After.
        statuses = sorted(answers[k].status for k in ("b", "c"))
        self.assertEqual(statuses, [200, 429], answers)
        served = next(answers[k] for k in ("b", "c") if answers[k].status == 200)
        refused = next(answers[k] for k in ("b", "c") if answers[k].status == 429)
        self.assertError(refused, 429, "RESOURCE_EXHAUSTED")
        retry = refused.header("Retry-After")
        self.assertIsNotNone(retry, refused)
        self.assertTrue(retry.isdigit() and int(retry) >= 1, retry)
        self.assertGreaterEqual(served.json["queuedMs"], 1000, served)
        self.assertEqual(self.only_worker("fragile")["pid"], before["pid"])

    def test_504_for_a_call_waiting_in_the_queue_kills_nothing(self):
        before = self.only_worker("fragile")
        marker = self.marker("queued-504")
        answers = {}
        slow = threading.Thread(target=lambda: answers.setdefault("slow", self.predict(
            "fragile", self.scripted(["sleep", [3, marker]], timeout=15))))
        slow.start()
        try:
            self.wait_file(marker)
            start = time.monotonic()
            r = self.predict("fragile", self.scripted(["echo", 1], timeout=0.8))
            elapsed = time.monotonic() - start
        finally:
            slow.join(40)
        self.assertError(r, 504, "DEADLINE_EXCEEDED")
        self.assertIn("was free", r.json["error"]["message"])
        self.assertTrue(0.7 <= elapsed < 2.8, elapsed)
        self.assertEqual(answers["slow"].status, 200, answers["slow"])
        w = self.only_worker("fragile")
        self.assertEqual((w["pid"], w["restarts"]), (before["pid"], before["restarts"]), w)

    def test_504_kills_and_replaces_the_worker(self):
        d = self.daemon
        before = self.only_worker("fragile")
        marker = self.marker("504")
        start = time.monotonic()
        r = self.predict("fragile", self.scripted(["sleep", [60, marker]], timeout=SHORT_TIMEOUT))
        elapsed = time.monotonic() - start
        self.assertError(r, 504, "DEADLINE_EXCEEDED")
        self.assertIn(before["id"], r.json["error"]["message"])
        self.assertTrue(SHORT_TIMEOUT - 0.1 <= elapsed < SHORT_TIMEOUT + 5, elapsed)
        with open(marker) as f:
            self.assertEqual(int(f.read()), before["pid"])
        after = self.wait_replaced(before)
        h.wait_pids_gone([before["pid"]], 10, "the timed-out worker")
        self.assertEqual(after["id"], before["id"])
        self.assertIn("signal 9", after.get("exit") or "", after)
        self.assertEqual(len(list_workers(d, "fragile")), 1)
        # The replacement serves the next call.
        a = self.predict_ok("fragile", self.scripted(["pid", 0], ["echo", "ok"]))
        self.assertEqual(a["predictions"], [after["pid"], "ok"])

    def test_502_worker_dies_mid_call_then_is_replaced(self):
        for row, exit_text in ((["exit", 3], "exited with code 3"),
                               (["kill", 9], "killed by signal 9")):
            with self.subTest(exit=exit_text):
                before = wait_running(self.daemon, "fragile", 1)[0]
                start = time.monotonic()
                r = self.predict("fragile", self.scripted(row))
                elapsed = time.monotonic() - start
                self.assertError(r, 502, "WORKER_LOST")
                self.assertIn(exit_text, r.json["error"]["message"])
                self.assertIn(before["id"], r.json["error"]["message"])
                self.assertLess(elapsed, 10, "a lost worker must be answered at once")
                after = self.wait_replaced(before)
                self.assertEqual(after["id"], before["id"])
                self.assertIn(exit_text, after.get("exit") or "", after)
                a = self.predict_ok("fragile", self.scripted(["pid", 0], ["echo", 5]))
                self.assertEqual(a["predictions"], [after["pid"], 5])
                time.sleep(0.6)  # past start_seconds: the next death is not an early exit

    def test_503_when_no_worker_can_serve(self):
        r = self.daemon.post("/api/v1/kernels", {
            "name": "outsider", "pythonVersion": "3.11", "requestedDependencies": [],
            "type": "UNMANAGED", "version": "1"})
        self.assertIn(r.status, (200, 201), r)
        cases = {
            "stopped": "is stopped",
            "broken-env": "failed to build",
            "idle": '"workers": 0',
            "outsider": "none of its workers is connected",
        }
        for kernel, mention in cases.items():
            with self.subTest(kernel=kernel):
                start = time.monotonic()
                r = self.predict(kernel, {"model": "classifier.pkl", "rows": [[1, 2]]})
                self.assertError(r, 503, "UNAVAILABLE")
                self.assertIn(mention, r.json["error"]["message"])
                self.assertLess(time.monotonic() - start, 5)
        # broken-env's message carries the build's reason.
        r = self.predict("broken-env", {"model": "classifier.pkl", "rows": [[1, 2]]})
        self.assertIn("e2e-missing-dep", r.json["error"]["message"])

    def test_503_for_a_call_waiting_for_a_build_that_fails(self):
        created = self.create("doomed-build", requested=["e2e-missing-dep-2==9.9"])
        self.assertIn(created["status"], ("pending", "building"), created)
        start = time.monotonic()
        r = self.predict("doomed-build", {"model": "classifier.pkl", "rows": [[1, 2]],
                                          "timeoutSeconds": 60})
        self.assertError(r, 503, "UNAVAILABLE")
        self.assertIn("failed to build", r.json["error"]["message"])
        self.assertIn("e2e-missing-dep-2", r.json["error"]["message"])
        self.assertLess(time.monotonic() - start, 45, "answered at the timeout, not the failure")

    def test_503_when_every_worker_is_fatal_even_for_a_call_already_waiting(self):
        # A kernel whose workers exit at start-up (sitecustomize): the call made at once waits
        # for them, and is answered 503 when they go fatal, long before its timeout.
        site = os.path.join(self.tmp, "crash-site")
        write_tree(site, {"sitecustomize.py": "import os\nos._exit(3)\n"})
        created = self.create("crashing", workers=1, pythonpath=site)
        self.assertEqual(created["status"], "ready", created)
        start = time.monotonic()
        r = self.predict("crashing", {"model": "classifier.pkl", "rows": [[1, 2]],
                                      "timeoutSeconds": 30})
        elapsed = time.monotonic() - start
        self.assertError(r, 503, "UNAVAILABLE")
        self.assertIn("fatal", r.json["error"]["message"])
        self.assertLess(elapsed, 20, r)
        (w,) = list_workers(self.daemon, "crashing")
        self.assertEqual(w["state"], "fatal", w)
        r = self.predict("crashing", {"model": "classifier.pkl", "rows": [[1, 2]]})
        self.assertError(r, 503, "UNAVAILABLE")
        self.assertIn("fatal", r.json["error"]["message"])

    def test_stopping_the_kernel_answers_its_calls(self):
        # A call running on the only worker and one waiting behind it, then `kernels stop`:
        # both are answered (no hang), the running one 502, the waiting one 503.
        d = self.daemon
        self.create("interrupted", workers=1)
        (w,) = wait_running(d, "interrupted", 1)
        marker = self.marker("stop")
        answers = {}

        def call(key, body):
            answers[key] = self.predict("interrupted", body)
        running = threading.Thread(target=call, args=("running", dict(self.scripted(
            ["sleep", [40, marker]], timeout=60), model="scripted.pkl")))
        running.start()
        waiting = None
        try:
            self.wait_file(marker)
            waiting = threading.Thread(target=call, args=("waiting", self.scripted(
                ["echo", 1], timeout=60)))
            waiting.start()
            time.sleep(0.3)
            start = time.monotonic()
            r = d.post("/api/v1/kernels/interrupted/stop", None)
            self.assertEqual(r.status, 200, r)
        finally:
            running.join(40)
            if waiting:
                waiting.join(40)
        elapsed = time.monotonic() - start
        self.assertFalse(running.is_alive() or waiting.is_alive(), "a call hangs")
        self.assertError(answers["running"], 502, "WORKER_LOST")
        self.assertIn(w["id"], answers["running"].json["error"]["message"])
        self.assertError(answers["waiting"], 503, "UNAVAILABLE")
        self.assertIn("is stopped", answers["waiting"].json["error"]["message"])
        self.assertLess(elapsed, 15)
        # Started again, it serves.
        r = d.post("/api/v1/kernels/interrupted/start", None)
        self.assertEqual(r.status, 200, r)
        a = self.predict_ok("interrupted", self.scripted(["echo", "again"]))
        self.assertEqual(a["predictions"], ["again"])

    def test_deleting_the_kernel_answers_its_calls(self):
        # Like stop, but the kernel goes away: the running call 502, the waiting one at once
        # (not at its timeout), and later calls 404.
        d = self.daemon
        self.create("doomed", workers=1)
        (w,) = wait_running(d, "doomed", 1)
        marker = self.marker("delete")
        answers = {}

        def call(key, body):
            answers[key] = self.predict("doomed", body)
        running = threading.Thread(target=call, args=("running", self.scripted(
            ["sleep", [40, marker]], timeout=60)))
        running.start()
        waiting = None
        try:
            self.wait_file(marker)
            waiting = threading.Thread(target=call, args=("waiting", self.scripted(
                ["echo", 1], timeout=20)))
            waiting.start()
            time.sleep(0.3)
            start = time.monotonic()
            r = d.request("DELETE", "/api/v1/kernels/doomed")
            self.assertEqual(r.status, 200, r)
        finally:
            running.join(40)
            if waiting:
                waiting.join(40)
        elapsed = time.monotonic() - start
        self.assertFalse(running.is_alive() or waiting.is_alive(), "a call hangs")
        self.assertError(answers["running"], 502, "WORKER_LOST")
        self.assertIn(w["id"], answers["running"].json["error"]["message"])
        self.assertError(answers["waiting"], 404, "NOT_FOUND")
        self.assertLess(elapsed, 10)
        r = self.predict("doomed", self.scripted(["echo", 1]))
        self.assertError(r, 404, "NOT_FOUND")

    # --- the CLI -------------------------------------------------------------------------------

    def test_cli_predict_csv_and_json(self):
        e = self.expected
        csv = os.path.join(self.tmp, "rows.csv")
        with open(csv, "w") as f:
            f.write("x1,x2\n1.5,2\n-3,0.25\n")
        p = self.cli(self.daemon, "predict", "shared", "--model", "classifier.pkl",
                     "--data", csv, "--timeout", "20")
        lines = [line.split() for line in p.stdout.strip().splitlines()]
        self.assertEqual(lines[0], ["#", "prediction", "p(low)", "p(high)"], p.stdout)
        self.assertEqual(len(lines), 3, p.stdout)
        for i, (label, probs) in enumerate(zip(e["csv_predictions"], e["csv_probabilities"])):
            self.assertEqual(lines[i + 1], [str(i), label] + ["%.4g" % v for v in probs],
                             p.stdout)
        p = self.cli(self.daemon, "predict", "shared", "--model",
                     os.path.join(self.root, "classifier.pkl"), "--data", csv, "--json")
        answer = json.loads(p.stdout)
        self.assertEqual(answer["predictions"], e["csv_predictions"])
        self.assertEqual(answer["probabilities"], e["csv_probabilities"])
        self.assertEqual(answer["classes"], ["low", "high"])
        self.assertEqual(answer["rows"], 2)
        self.assertTrue(answer["worker"].startswith("shared-"), answer)
        # JSON data: records.
        data = os.path.join(self.tmp, "rows.json")
        with open(data, "w") as f:
            json.dump([{"x1": r[0], "x2": r[1]} for r in e["rows"]], f)
        p = self.cli(self.daemon, "predict", "shared", "--model", "classifier.pkl",
                     "--data", data, "--json")
        self.assertEqual(json.loads(p.stdout)["probabilities"], e["probabilities"])
        # Rows from standard input.
        proc = h.run_cli("--socket", self.daemon.admin_socket, "predict", "shared", "--model",
                         "classifier.pkl", "--data", "-", "--json",
                         input="x1,x2\n1.5,2\n-3,0.25\n", env=h.clean_env(HOME=self.tmp))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(json.loads(proc.stdout)["probabilities"], e["csv_probabilities"])
        # Exit codes: outside the roots 7, the model's own error 6, no such kernel 4, a call
        # past its timeout (504) 1.
        p = self.cli(self.daemon, "predict", "shared", "--model", "/etc/passwd", "--data", csv,
                     expect=7)
        self.assertIn("outside the model roots", p.stderr + p.stdout)
        raising = os.path.join(self.tmp, "raise.json")
        with open(raising, "w") as f:
            json.dump({"rows": [["raise", "cli-boom"]]}, f)
        p = self.cli(self.daemon, "predict", "fragile", "--model", "scripted.pkl",
                     "--data", raising, expect=6)
        self.assertIn("cli-boom", p.stderr + p.stdout)
        self.cli(self.daemon, "predict", "no-such-kernel", "--model", "classifier.pkl",
                 "--data", csv, expect=4)
        before = wait_running(self.daemon, "fragile", 1)[0]
        sleeping = os.path.join(self.tmp, "sleep.json")
        with open(sleeping, "w") as f:
            json.dump({"rows": [["sleep", [60, self.marker("cli-504")]]]}, f)
        p = self.cli(self.daemon, "predict", "fragile", "--model", "scripted.pkl",
                     "--data", sleeping, "--timeout", "1", expect=1)
        self.assertIn("did not answer within 1 s", p.stderr + p.stdout)
        self.wait_replaced(before)


class ModelCallsAcrossRestartTest(ModelsTestCase):
    """kill -9 of the daemon: its workers keep running with their models loaded, and the
    restarted daemon adopts them and relays calls to them again."""

    def test_calls_go_to_adopted_workers_after_kill_9(self):
        d = self.daemon
        self.create("survivor", workers=1)
        k = d.wait_status("survivor", timeout=h.BUILD_TIMEOUT)
        self.assertEqual(k["status"], "ready", k)
        (w,) = wait_running(d, "survivor", 1)
        e = self.expected
        r = self.load("survivor", "classifier.pkl")
        self.assertEqual((r.status, r.json["loaded"]), (200, 1), r)
        d.kill()
        self.assertTrue(alive(w["pid"]), "the worker died with the daemon")
        d.start()
        (after,) = wait_running(d, "survivor", 1)
        self.assertEqual((after["id"], after["pid"]), (w["id"], w["pid"]), after)
        # The call waits for it to reconnect, and goes to it: it still has the model loaded.
        a = self.predict_ok("survivor", {"model": "classifier.pkl", "rows": e["rows"]})
        self.assertEqual(a["worker"], w["id"])
        self.assertEqual(a["probabilities"], e["probabilities"])
        r = self.load("survivor", "classifier.pkl")
        self.assertEqual(r.status, 200, r)
        self.assertEqual([x["cached"] for x in r.json["workers"]], [True], r)
        # And a worker lost mid-call after the restart is still answered 502 at once (an
        # adopted worker's exit status cannot be collected: it is not the daemon's child).
        start = time.monotonic()
        r = self.predict("survivor", self.scripted(["exit", 3]))
        self.assertError(r, 502, "WORKER_LOST")
        self.assertIn("exit status unknown", r.json["error"]["message"])
        self.assertLess(time.monotonic() - start, 10)
        self.wait_replaced(after)
        a = self.predict_ok("survivor", self.scripted(["echo", "back"]))
        self.assertEqual(a["predictions"], ["back"])


if __name__ == "__main__":
    h.main()
