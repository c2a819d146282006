"""Loading models (pickle files, entry points, artifact+code directories), giskard-model.json
validation, and the LRU cache."""

import logging
import os
import subprocess
import sys
import unittest
import unittest.mock

from giskard_worker_shim import optional
from giskard_worker_shim.dispatch import default_dispatcher
from giskard_worker_shim.errors import ModelLoadError
from giskard_worker_shim.models import ModelCache, cache_size_from_env
from tests import model_fixtures
from tests.model_fixtures import ModelTestCase, ThresholdModel, importable
from tests.support import TIMEOUT, shim_env


class LoadingTest(ModelTestCase):
    def load(self, path):
        model, cached = ModelCache().get(path)
        self.assertFalse(cached)
        return model

    def test_pickled_class_instance(self):
        path = self.pickle_to("m.pkl", ThresholdModel(0.5))
        model = self.load(path)
        self.assertEqual((model.kind, model.loader), ("pickle", "pickle"))
        self.assertEqual(model.predict([[1.0], [0.0]]), [1, 0])
        self.assertIsNone(model.predict_proba)
        self.assertIsNone(model.classes)
        self.assertEqual(model.describe(path, False, 1.25), {
            "model": path, "cached": False, "kind": "pickle", "loader": "pickle",
            "predictProba": False, "classes": None, "loadMs": 1.25})

    def test_pickled_model_with_probabilities(self):
        model = self.load(self.pickle_to("m.pkl", model_fixtures.CreditModel()))
        self.assertIsNotNone(model.predict_proba)
        self.assertEqual(model.classes, ["approved", "rejected"])

    def test_plain_function_entrypoint(self):
        path = self.model_dir("fn", {"entrypoint": "tests.model_fixtures:double"})
        model = self.load(path)
        self.assertEqual(model.kind, "entrypoint")
        self.assertIsNone(model.loader)
        self.assertNotIn("loader", model.describe(path, False, 0.0))
        self.assertEqual(model.predict([[2], [5]]), [4, 10])

    def test_factory_entrypoint_is_called_once(self):
        del model_fixtures.FACTORY_CALLS[:]
        path = self.model_dir("factory", {"entrypoint": "tests.model_fixtures:make_model"})
        cache = ModelCache()
        model, _ = cache.get(path)
        self.assertEqual(model.predict([[11], [9]]), [1, 0])
        cache.get(path)
        self.assertEqual(model_fixtures.FACTORY_CALLS, [10])

    def test_object_and_dotted_attribute_entrypoints(self):
        model = self.load(self.model_dir("obj", {"entrypoint": "tests.model_fixtures:SLOW"}))
        self.assertIsInstance(model.predict.__self__, model_fixtures.Slow)
        model = self.load(self.model_dir("dotted", {
            "entrypoint": "tests.model_fixtures:Registry.credit"}))
        self.assertEqual(model.classes, ["approved", "rejected"])
        # A class is a factory (called without arguments), not a model.
        model = self.load(self.model_dir("class", {
            "entrypoint": "tests.model_fixtures:ThresholdModel"}))
        self.assertEqual(model.predict([[1], [-1]]), [1, 0])

    def test_entrypoint_module_from_code_folder(self):
        self.write("ep/lib/gsk_ep_module.py", "def model(x):\n    return [sum(r) for r in x]\n")
        path = self.model_dir("ep", {"entrypoint": "gsk_ep_module:model", "code": ["lib"]})
        self.assertEqual(self.load(path).predict([[1, 2]]), [3])
        self.assertEqual(sys.path[0], os.path.realpath(self.path("ep", "lib")))

    def test_artifact_with_code_folder(self):
        path = self.code_model_dir("art", "gsk_custom_model_a")
        model = self.load(path)
        self.assertEqual((model.kind, model.loader), ("artifact", "pickle"))
        self.assertEqual(model.predict([[1], [0]]), ["yes", "no"])
        self.assertEqual(model.classes, ["no", "yes"])

    def test_artifact_without_code_names_the_missing_module(self):
        path = self.code_model_dir("art", "gsk_custom_model_b", code_field=False)
        with self.assertRaises(ModelLoadError) as caught:
            self.load(path)
        message = str(caught.exception)
        self.assertIn("'gsk_custom_model_b'", message)
        self.assertIn("ModuleNotFoundError", message)
        self.assertIn(os.path.join(path, "model.pkl"), message)
        self.assertIsInstance(caught.exception.__cause__, ModuleNotFoundError)

    def test_load_errors(self):
        self.write("junk.pkl", "this is not a pickle")
        cases = {
            self.path("missing.pkl"): "does not exist",
            self.path("junk.pkl"): "cannot unpickle",
            self.pickle_to("num.pkl", 42): "does not hold a model: a int",
            self.model_dir("bad-ep", {"entrypoint": "tests.model_fixtures:nothing"}):
                "AttributeError",
            self.model_dir("no-module", {"entrypoint": "gsk_no_such_module:m"}):
                "ModuleNotFoundError",
            self.model_dir("two", {"entrypoint": "tests.model_fixtures:two_arguments"}):
                "needs 2 positional arguments",
            self.model_dir("const", {"entrypoint": "tests.model_fixtures:TIMEOUT"}):
                "neither a model",
            self.model_dir("no-artifact", {"artifact": "gone.pkl"}): "does not exist",
        }
        os.makedirs(self.path("empty-dir"))
        cases[self.path("empty-dir")] = "without a giskard-model.json"
        for path, expected in cases.items():
            with self.subTest(path=path):
                with self.assertRaises(ModelLoadError) as caught:
                    ModelCache().get(path)
                self.assertIn(expected, str(caught.exception))

    def test_joblib_is_used_when_importable(self):
        class FakeJoblib:
            @staticmethod
            def load(path):
                return ThresholdModel(7)
        optional._modules["joblib"] = FakeJoblib
        model = self.load(self.pickle_to("m.joblib", ThresholdModel(0)))
        self.assertEqual((model.kind, model.loader), ("joblib", "joblib"))
        self.assertEqual(model.predict([[8]]), [1])

    @unittest.skipUnless(importable("joblib"), "joblib is not importable here")
    def test_real_joblib_reads_joblib_files_and_plain_pickles(self):
        import joblib
        self.use_real_modules("joblib")
        path = self.path("m.joblib")
        joblib.dump(ThresholdModel(2), path)
        self.assertEqual(self.load(path).loader, "joblib")
        plain = self.load(self.pickle_to("plain.pkl", ThresholdModel(2)))
        self.assertEqual((plain.loader, plain.predict([[3]])), ("joblib", [1]))

    @unittest.skipUnless(importable("cloudpickle"), "cloudpickle is not importable here")
    def test_cloudpickle_file(self):
        import cloudpickle
        threshold = 3
        path = self.path("lambda.pkl")
        with open(path, "wb") as f:
            cloudpickle.dump(lambda x: [row[0] > threshold for row in x], f)
        self.assertEqual(self.load(path).predict([[4], [1]]), [True, False])


class ManifestTest(ModelTestCase):
    def assert_bad(self, manifest, *fragments):
        path = self.model_dir("m", manifest)
        with self.assertRaises(ModelLoadError) as caught:
            ModelCache().get(path)
        message = str(caught.exception)
        self.assertIn(os.path.join(path, "giskard-model.json"), message)
        for fragment in fragments:
            self.assertIn(fragment, message)

    def test_strict_validation(self):
        self.write("outside/x.pkl", "")
        os.makedirs(self.path("m", "src"), exist_ok=True)
        self.assert_bad("{not json", "not valid JSON")
        self.assert_bad("[]", "JSON object")
        self.assert_bad({}, '"entrypoint" and "artifact"')
        self.assert_bad({"entrypoint": "a:b", "artifact": "m.pkl"}, "exactly one")
        self.assert_bad({"artifact": "m.pkl", "name": "x"}, 'unknown field "name"')
        self.assert_bad('{"artifact": "a.pkl", "artifact": "b.pkl"}', 'duplicate field')
        self.assert_bad({"entrypoint": 3}, '"entrypoint" must be')
        self.assert_bad({"entrypoint": "no_colon"}, '"entrypoint" must be')
        self.assert_bad({"entrypoint": "a:b:c"}, '"entrypoint" must be')
        self.assert_bad({"entrypoint": "bad-name:x"}, '"bad-name:x"')
        self.assert_bad({"artifact": ""}, '"artifact" must be a non-empty string')
        self.assert_bad({"artifact": "/etc/passwd"}, '"artifact" must be relative')
        self.assert_bad({"artifact": "../outside/x.pkl"}, '"artifact"', "leaves the model")
        self.assert_bad({"artifact": "m.pkl", "code": "src"}, '"code" must be a list')
        self.assert_bad({"artifact": "m.pkl", "code": ["src", 1]}, '"code"[1] must be')
        self.assert_bad({"artifact": "m.pkl", "code": ["src", ".."]}, '"code"[1]', "leaves")
        self.assert_bad({"artifact": "m.pkl", "code": ["lib"]}, '"code"[0]', "not a directory")

    def test_symlink_out_of_the_directory_is_refused(self):
        self.pickle_to("outside/m.pkl", ThresholdModel())
        path = self.model_dir("m", {"artifact": "link.pkl"})
        os.symlink(self.path("outside", "m.pkl"), os.path.join(path, "link.pkl"))
        with self.assertRaises(ModelLoadError) as caught:
            ModelCache().get(path)
        self.assertIn("leaves the model directory", str(caught.exception))

    def test_code_dot_is_the_model_directory(self):
        self.write("m/gsk_dot_module.py", "def f(x):\n    return x\n")
        path = self.model_dir("m", {"entrypoint": "gsk_dot_module:f", "code": ["."]})
        self.assertEqual(ModelCache().get(path)[0].predict([[1]]), [[1]])


class CacheTest(ModelTestCase):
    def test_hit_eviction_and_reload(self):
        cache = ModelCache(2)
        a = self.pickle_to("a.pkl", ThresholdModel(1))
        b = self.pickle_to("b.pkl", ThresholdModel(2))
        c = self.pickle_to("c.pkl", ThresholdModel(3))
        first, cached = cache.get(a)
        self.assertFalse(cached)
        again, cached = cache.get(a)
        self.assertTrue(cached)
        self.assertIs(again, first)
        cache.get(b)
        cache.get(a)          # a is now the most recently used
        cache.get(c)          # evicts b
        self.assertEqual((len(cache), a in cache, b in cache, c in cache), (2, True, False, True))
        self.assertFalse(cache.get(b)[1])  # loaded again, evicting a
        self.assertNotIn(a, cache)

    def test_changed_file_is_reloaded(self):
        cache = ModelCache()
        path = self.pickle_to("m.pkl", ThresholdModel(1))
        first, _ = cache.get(path)
        self.pickle_to("m.pkl", ThresholdModel(100))  # same size: the mtime tells
        info = os.stat(path)
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1000))
        second, cached = cache.get(path)
        self.assertFalse(cached)
        self.assertEqual(second.predict([[50]]), [0])
        self.assertEqual(len(cache), 1)

    def test_directory_signature_covers_manifest_and_artifact(self):
        cache = ModelCache()
        self.pickle_to("d/model.pkl", ThresholdModel(1))
        path = self.model_dir("d", {"artifact": "model.pkl"})
        cache.get(path)
        self.assertTrue(cache.get(path)[1])
        self.pickle_to("d/model.pkl", ThresholdModel(1000))  # a different size
        model, cached = cache.get(path)
        self.assertFalse(cached)
        self.assertEqual(model.predict([[500]]), [0])
        self.pickle_to("d/other.pkl", ThresholdModel(5))
        self.model_dir("d", {"artifact": "other.pkl"})
        model, cached = cache.get(path)
        self.assertFalse(cached)
        self.assertEqual(model.predict([[6]]), [1])

    def test_a_cached_directory_costs_one_stat_and_still_notices_changes(self):
        cache = ModelCache()
        self.pickle_to("e/model.pkl", ThresholdModel(1))
        path = self.model_dir("e", {"entrypoint": "gsk_cached_dir:f", "code": ["."]})
        self.write("e/gsk_cached_dir.py", "def f(x):\n    return [1 for _ in x]\n")
        cache.get(path)
        real_stat, stats = os.stat, []

        def counting_stat(p, *args, **kwargs):
            stats.append(p)
            return real_stat(p, *args, **kwargs)
        with unittest.mock.patch("os.stat", counting_stat):
            self.assertTrue(cache.get(path)[1])
        self.assertEqual(stats, [os.path.join(path, "giskard-model.json")])
        # The directory gone, or a file in its place: the full check names what is wrong.
        os.remove(os.path.join(path, "giskard-model.json"))
        with self.assertRaisesRegex(ModelLoadError, "directory without a giskard-model.json"):
            cache.get(path)
        self.model_dir("e", {"artifact": "model.pkl"})
        cache.get(path)
        for name in os.listdir(path):
            os.remove(os.path.join(path, name))
        os.rmdir(path)
        self.pickle_to("e", ThresholdModel(7))
        model, cached = cache.get(path)
        self.assertFalse(cached)
        self.assertEqual((model.kind, model.predict([[8], [6]])), ("pickle", [1, 0]))

    def test_cache_size_from_env(self):
        self.assertEqual(cache_size_from_env({}), 4)
        self.assertEqual(cache_size_from_env({"GSK_MODEL_CACHE_SIZE": "9"}), 9)
        self.assertEqual(cache_size_from_env({"GSK_MODEL_CACHE_SIZE": " 1 "}), 1)
        for bad in ("0", "-2", "many", "2.5"):
            with self.subTest(value=bad):
                with self.assertLogs("giskard_worker_shim", logging.WARNING) as logs:
                    self.assertEqual(cache_size_from_env({"GSK_MODEL_CACHE_SIZE": bad}), 4)
                self.assertIn("GSK_MODEL_CACHE_SIZE", logs.output[0])

    def test_default_dispatcher_reads_the_size(self):
        os.environ["GSK_MODEL_CACHE_SIZE"] = "2"
        self.addCleanup(os.environ.pop, "GSK_MODEL_CACHE_SIZE")
        dispatcher = default_dispatcher()
        cache = dispatcher.lookup("predict").args[0]
        self.assertEqual(cache.capacity, 2)
        self.assertIs(dispatcher.lookup("load_model").args[0], cache)

class StartupTest(ModelTestCase):
    def test_start_path_imports_no_optional_module(self):
        """numpy, pandas and joblib are imported at the first request that needs them, never at
        start-up; a broken install counts as missing (with a warning)."""
        for name in ("numpy", "pandas", "joblib", "cloudpickle"):
            self.write(os.path.join("fake", name + ".py"),
                       "raise RuntimeError('%s imported')\n" % name)
        script = (
            "import logging, sys\n"
            "logging.basicConfig()\n"
            "from giskard_worker_shim import cli, managed, unmanaged, dispatch, optional\n"
            "dispatch.default_dispatcher()\n"
            "loaded = {'numpy', 'pandas', 'joblib', 'cloudpickle'} & set(sys.modules)\n"
            "assert not loaded, loaded\n"
            "assert optional.optional_module('numpy') is None\n"
            "assert optional.optional_module('numpy') is None\n")
        env = shim_env()
        env["PYTHONPATH"] = self.path("fake") + os.pathsep + env["PYTHONPATH"]
        done = subprocess.run([sys.executable, "-c", script], env=env, timeout=TIMEOUT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stderr.count("importing numpy failed"), 1, done.stderr)


if __name__ == "__main__":
    unittest.main()
