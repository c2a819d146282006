"""Pure-Python models for the tests (importable as tests.model_fixtures, so they can be pickled
and named by entry points), plus helpers that set up model files and directories."""

import json
import os
import pickle
import sys
import tempfile
import threading
import unittest

from giskard_worker_shim import optional

TIMEOUT = 15.0


def importable(name):
    """Whether the interpreter running the tests can import `name` (numpy, pandas...)."""
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def rows_of(x):
    """X as a list of lists, whatever the shim built (lists, numpy array, DataFrame)."""
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    return x.tolist() if hasattr(x, "tolist") else x


def _missing(value):
    return value is None or value != value


class CreditModel:
    """The model of the protocol examples: rejects rows whose income (column 1) is missing or
    below 30000."""
    classes_ = ["approved", "rejected"]

    def predict_proba(self, x):
        return [[0.2, 0.8] if _missing(row[1]) or row[1] < 30000 else [0.9, 0.1]
                for row in rows_of(x)]

    def predict(self, x):
        return [self.classes_[p.index(max(p))] for p in self.predict_proba(x)]


class Registry:
    """Models reached through a dotted attribute path."""
    credit = CreditModel()


class ThresholdModel:
    """Predicts 1 where column 0 exceeds the threshold; no predict_proba."""

    def __init__(self, threshold=0.0):
        self.threshold = threshold

    def predict(self, x):
        return [int(row[0] > self.threshold) for row in rows_of(x)]


class ProbaWithoutClasses:
    def predict(self, x):
        return [0 for _ in rows_of(x)]

    def predict_proba(self, x):
        return [(0.25, 0.5, 0.25) for _ in rows_of(x)]


def double(x):
    """A plain function model."""
    return [2 * row[0] for row in rows_of(x)]


FACTORY_CALLS = []


def make_model(threshold=10):
    """A factory (no required positional parameter)."""
    FACTORY_CALLS.append(threshold)
    return ThresholdModel(threshold)


def two_arguments(x, y):
    return x


class Failing:
    def predict(self, x):
        raise ValueError("could not convert string to float: 'car'")


class OutOfMemory:
    def predict(self, x):
        raise MemoryError("cannot allocate 64 GiB")


class Exiting:
    def predict(self, x):
        sys.exit(3)


class NonFinite:
    classes_ = ("low", "high")

    def predict(self, x):
        return [float("nan"), float("inf"), -float("inf"), 1.5, None]

    def predict_proba(self, x):
        return [[float("nan"), 1.0], [0.5, float("-inf")]]


class Recorder:
    """Remembers the X it was given."""
    last = None

    def predict(self, x):
        Recorder.last = x
        return [0] * len(x)


class Slow:
    """Blocks in predict until `release` is set (bounded by TIMEOUT)."""
    started = threading.Event()
    release = threading.Event()

    def predict(self, x):
        Slow.started.set()
        Slow.release.wait(TIMEOUT)
        return [len(rows_of(x))]


SLOW = Slow()


LINGER = threading.Event()


def start_a_thread():
    """What unpickling a ThreadStarter calls: starts a (daemon) thread, as some libraries do
    when imported, and returns a model."""
    threading.Thread(target=LINGER.wait, args=(4 * TIMEOUT,), name="fixture-thread",
                     daemon=True).start()
    return CreditModel()


class ThreadStarter:
    """Pickles to a call of start_a_thread."""

    def __reduce__(self):
        return start_a_thread, ()


class ModelTestCase(unittest.TestCase):
    """A temporary directory for model files; sys.path, the modules imported from it and the
    optional-import cache restored after each test. Optional modules count as missing unless a test says."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="shim-models-")
        self.addCleanup(self.dir.cleanup)
        saved_path, saved_modules = list(sys.path), set(sys.modules)
        saved_optional = dict(optional._modules)

        def restore():  # forget the modules imported from this test's model directories
            sys.path[:] = saved_path
            root = os.path.realpath(self.dir.name)
            for name in set(sys.modules) - saved_modules:
                where = getattr(sys.modules[name], "__file__", None) or ""
                if os.path.realpath(where).startswith(root + os.sep):
                    del sys.modules[name]
            optional._modules.clear()
            optional._modules.update(saved_optional)
        self.addCleanup(restore)
        optional._modules.update(numpy=None, pandas=None, joblib=None)

    def use_real_modules(self, *names):
        for name in names:
            optional._modules.pop(name, None)

    def path(self, *parts):
        return os.path.join(self.dir.name, *parts)

    def write(self, relative, text):
        path = self.path(relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def pickle_to(self, relative, obj):
        path = self.path(relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump(obj, f)
        return path

    def model_dir(self, relative, manifest):
        """A directory with giskard-model.json holding `manifest` (a dict, or raw text)."""
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        self.write(os.path.join(relative, "giskard-model.json"), text)
        return self.path(relative)

    def code_model_dir(self, relative, module, code_field=True):
        """An artifact+code model: a class defined in `relative`/src/`module`.py, pickled to
        `relative`/model.pkl; the module is then made unimportable again."""
        src = self.path(relative, "src")
        self.write(os.path.join(relative, "src", module + ".py"),
                   "class Custom:\n"
                   "    classes_ = ['no', 'yes']\n"
                   "    def predict(self, x):\n"
                   "        return ['yes' if row[0] else 'no' for row in x]\n"
                   "    def predict_proba(self, x):\n"
                   "        return [[0.0, 1.0] if row[0] else [1.0, 0.0] for row in x]\n")
        sys.path.insert(0, src)
        try:
            instance = __import__(module).Custom()
            self.pickle_to(os.path.join(relative, "model.pkl"), instance)
        finally:
            sys.path.remove(src)
            del sys.modules[module]
        manifest = {"artifact": "model.pkl"}
        if code_field:
            manifest["code"] = ["src"]
        return self.model_dir(relative, manifest)
