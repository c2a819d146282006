"""The `load_model` and `predict` handlers: building X, every InvalidInput case, model errors,
conversion of outputs to JSON (non-finite floats, numpy and pandas types when importable)."""

import datetime
import json
import unittest

from giskard_worker_shim import methods
from giskard_worker_shim.errors import InvalidInput, ModelLoadError
from giskard_worker_shim.jsonout import to_json
from giskard_worker_shim.models import ModelCache
from giskard_worker_shim.optional import optional_module
from giskard_worker_shim.protocol import encode_json
from tests import model_fixtures
from tests.model_fixtures import ModelTestCase, importable


class PredictTest(ModelTestCase):
    def setUp(self):
        super().setUp()
        self.cache = ModelCache()
        self.credit = self.pickle_to("credit.pkl", model_fixtures.CreditModel())
        self.recorder = self.pickle_to("recorder.pkl", model_fixtures.Recorder())

    def predict(self, **params):
        result = methods.predict(self.cache, params)
        encode_json({"type": "reply", "id": "x", "result": result})  # valid strict JSON
        return result

    def test_load_model(self):
        params = {"model": self.credit}
        result = methods.load_model(self.cache, params)
        self.assertEqual(result["cached"], False)
        self.assertEqual(set(result), {"model", "cached", "kind", "loader", "predictProba",
                                       "classes", "loadMs"})
        self.assertEqual((result["model"], result["kind"], result["predictProba"]),
                         (self.credit, "pickle", True))
        self.assertIsInstance(result["loadMs"], float)
        self.assertTrue(methods.load_model(self.cache, params)["cached"])

    def test_columns_and_rows(self):
        result = self.predict(model=self.credit, columns=["age", "income", "purpose"],
                              rows=[[42, 52000.0, "car"], [23, None, "education"]],
                              timeoutSeconds=30)
        self.assertEqual(result, {"predictions": ["approved", "rejected"],
                                  "probabilities": [[0.9, 0.1], [0.2, 0.8]],
                                  "classes": ["approved", "rejected"], "rows": 2})

    def test_records_give_the_same_rows(self):
        records = [{"age": 42, "income": 52000.0, "purpose": "car"},
                   {"purpose": "education", "income": None, "age": 23}]
        result = self.predict(model=self.credit, records=records)
        self.assertEqual(result["predictions"], ["approved", "rejected"])
        self.predict(model=self.recorder, records=records)
        self.assertEqual(model_fixtures.Recorder.last,
                         [[42, 52000.0, "car"], [23, None, "education"]])

    def test_rows_without_columns_and_strings_as_is(self):
        result = self.predict(model=self.recorder, rows=[[1, "NaN"], [None, "-Infinity"]])
        self.assertEqual(result, {"predictions": [0, 0], "rows": 2})
        self.assertEqual(model_fixtures.Recorder.last, [[1, "NaN"], [None, "-Infinity"]])

    def test_empty_inputs(self):
        self.assertEqual(self.predict(model=self.recorder, rows=[])["rows"], 0)
        self.assertEqual(self.predict(model=self.recorder, records=[])["rows"], 0)

    def test_plain_function_and_classes_by_default(self):
        fn = self.model_dir("fn", {"entrypoint": "tests.model_fixtures:double"})
        self.assertEqual(self.predict(model=fn, rows=[[1], [2.5]]),
                         {"predictions": [2, 5.0], "rows": 2})
        proba = self.pickle_to("p.pkl", model_fixtures.ProbaWithoutClasses())
        result = self.predict(model=proba, rows=[[1]])
        self.assertEqual(result["classes"], [0, 1, 2])
        self.assertEqual(result["probabilities"], [[0.25, 0.5, 0.25]])

    def test_invalid_input(self):
        good = self.credit
        cases = [
            ({"rows": [[1]]}, '"model" must be an absolute path'),
            ({"model": "relative/m.pkl", "rows": [[1]]}, '"model" must be an absolute path'),
            ({"model": 3, "rows": [[1]]}, '"model" must be an absolute path'),
            ({"model": "/a\0b", "rows": [[1]]}, '"model" must be an absolute path'),
            ({"model": good}, 'give "rows" (with or without "columns") or "records"'),
            ({"model": good, "rows": [], "records": []},
             'give either "rows" or "records", not both'),
            ({"model": good, "rows": {"a": 1}}, '"rows" must be a list of lists'),
            ({"model": good, "rows": [[1], 2]}, 'rows[1] is not a list'),
            ({"model": good, "rows": [[1, 2], [3]]}, "rows[1] has 1 values but rows[0] has 2"),
            ({"model": good, "columns": ["a", "b", "c", "d"], "rows": [[1, 2, 3, 4]] * 3
              + [[1, 2]]}, "rows[3] has 2 values but columns has 4"),
            ({"model": good, "columns": "a", "rows": []}, '"columns" must be a non-empty list'),
            ({"model": good, "columns": [], "rows": []}, '"columns" must be a non-empty list'),
            ({"model": good, "columns": ["a", 2], "rows": []}, "columns[1] is not a string"),
            ({"model": good, "columns": ["a", "a"], "rows": []}, 'columns has "a" twice'),
            ({"model": good, "records": {}}, '"records" must be a list of objects'),
            ({"model": good, "records": [{"a": 1}, [1]]}, "records[1] is not an object"),
            ({"model": good, "records": [{"age": 1, "x": 2}, {"x": 3}]},
             'records[1] lacks key "age"'),
            ({"model": good, "records": [{"a": 1}, {"a": 1, "b": 2}]},
             'records[1] has key "b", which records[0] lacks'),
            ({"model": good, "columns": ["a"], "records": [{"a": 1}]}, '"columns" goes with'),
        ]
        for params, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(InvalidInput) as caught:
                    methods.predict(self.cache, params)
                self.assertIn(message, str(caught.exception))
        self.assertEqual(len(self.cache), 0)  # input is checked before any model is loaded
        with self.assertRaises(InvalidInput):
            methods.load_model(self.cache, {"model": "m.pkl"})

    def test_load_errors_in_predict(self):
        with self.assertRaises(ModelLoadError):
            self.predict(model=self.path("nope.pkl"), rows=[[1]])

    def test_model_exceptions_propagate(self):
        for model, error in ((model_fixtures.Failing(), ValueError),
                             (model_fixtures.OutOfMemory(), MemoryError),
                             (model_fixtures.Exiting(), SystemExit)):
            with self.subTest(error=error):
                path = self.pickle_to(type(model).__name__ + ".pkl", model)
                with self.assertRaises(error):
                    self.predict(model=path, rows=[[1]])

    def test_non_finite_outputs(self):
        path = self.pickle_to("nf.pkl", model_fixtures.NonFinite())
        result = self.predict(model=path, rows=[[1]])
        self.assertEqual(result, {
            "predictions": ["NaN", "Infinity", "-Infinity", 1.5, None],
            "probabilities": [["NaN", 1.0], [0.5, "-Infinity"]],
            "classes": ["low", "high"], "rows": 1})

    def test_output_that_is_not_a_sequence(self):
        path = self.model_dir("scalar", {"entrypoint": "tests.model_fixtures:rows_of"})
        self.assertEqual(self.predict(model=path, rows=[[1]])["predictions"], [[1]])
        path = self.model_dir("len", {"entrypoint": "builtins:len"})
        with self.assertRaises(TypeError) as caught:
            self.predict(model=path, rows=[[1]])
        self.assertIn("returned a int, not a sequence", str(caught.exception))


class ToJsonTest(unittest.TestCase):
    def test_plain_values(self):
        value = {"a": (1, 2.5, float("nan")), 3: [True, None, "x"],
                 "when": datetime.datetime(2024, 5, 21, 10, 0, 0),
                 "day": datetime.date(2024, 5, 21), "gap": datetime.timedelta(seconds=90)}
        self.assertEqual(to_json(value), {
            "a": [1, 2.5, "NaN"], "3": [True, None, "x"], "when": "2024-05-21T10:00:00",
            "day": "2024-05-21", "gap": 90.0})
        self.assertEqual(to_json([float("inf"), -float("inf")]), ["Infinity", "-Infinity"])
        self.assertEqual(json.loads(json.dumps(to_json({1, 2}))), [1, 2])
        with self.assertRaises(TypeError):
            to_json(object())


@unittest.skipUnless(importable("numpy"), "numpy is not importable here")
class NumpyTest(ModelTestCase):
    def test_numpy_outputs(self):
        import numpy as np
        self.assertEqual(to_json(np.array([[1.5, np.nan], [np.inf, -np.inf]])),
                         [[1.5, "NaN"], ["Infinity", "-Infinity"]])
        self.assertEqual(to_json(np.arange(3, dtype=np.int32)), [0, 1, 2])
        self.assertEqual(to_json([np.float32(0.5), np.int64(3), np.bool_(True), np.str_("a")]),
                         [0.5, 3, True, "a"])
        self.assertEqual(to_json(np.array(["2024-05-21T10:00"], dtype="datetime64[m]")),
                         ["2024-05-21T10:00"])
        self.assertEqual(to_json(np.array([1, None, np.float64("nan")], dtype=object)),
                         [1, None, "NaN"])

    def test_rows_become_an_array(self):
        import numpy as np
        self.use_real_modules("numpy")
        path = self.pickle_to("r.pkl", model_fixtures.Recorder())
        methods.predict(ModelCache(), {"model": path, "rows": [[1.0, 2.0], [3.0, 4.0]]})
        self.assertIsInstance(model_fixtures.Recorder.last, np.ndarray)
        self.assertEqual(model_fixtures.Recorder.last.shape, (2, 2))


@unittest.skipUnless(importable("pandas"), "pandas is not importable here")
class PandasTest(ModelTestCase):
    def test_pandas_outputs(self):
        import pandas as pd
        self.assertEqual(to_json(pd.Series([1.5, float("nan")])), [1.5, "NaN"])
        self.assertEqual(to_json(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})),
                         [[1, "x"], [2, "y"]])
        self.assertEqual(to_json(pd.Series([1, None], dtype="Int64")), [1, None])
        self.assertEqual(to_json(pd.Timestamp("2024-05-21 10:00")), "2024-05-21T10:00:00")

    def test_columns_make_a_dataframe(self):
        import pandas as pd
        self.use_real_modules("numpy", "pandas")
        self.assertIsNotNone(optional_module("pandas"))
        path = self.pickle_to("r.pkl", model_fixtures.Recorder())
        methods.predict(ModelCache(), {"model": path, "columns": ["age", "income"],
                                       "rows": [[42, 52000.0], [23, None]]})
        frame = model_fixtures.Recorder.last
        self.assertIsInstance(frame, pd.DataFrame)
        self.assertEqual(list(frame.columns), ["age", "income"])
        self.assertTrue(frame["income"].isna().iloc[1])  # null became NaN
        methods.predict(ModelCache(), {"model": path, "records": [{"b": 1, "a": 2}]})
        self.assertEqual(list(model_fixtures.Recorder.last.columns), ["b", "a"])
        credit = self.pickle_to("c.pkl", model_fixtures.CreditModel())
        result = methods.predict(ModelCache(), {"model": credit, "columns": ["a", "i"],
                                                "rows": [[1, 52000.0], [2, None]]})
        self.assertEqual(result["predictions"], ["approved", "rejected"])


if __name__ == "__main__":
    unittest.main()
