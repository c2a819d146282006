#!/usr/bin/env python3
"""End-to-end: real scikit-learn models served by the real `giskard-supervisor`.

Debian 12's numpy/scipy/scikit-learn 1.2.1/pandas, repacked as cp311 wheels by
debian_wheels.py (its download cache makes reruns fast), plus a wheel of this test's own
(e2e-features: a feature function used inside a Pipeline), are the daemon's find-links
(offline). A Python 3.11 kernel asks for "scikit-learn==1.2.1", "pandas" and "e2e-features";
the daemon builds its env with the real pip. Then, with the env's own python:
  - a LogisticRegression trained on load_iris(), saved with pickle;
  - a Pipeline (FunctionTransformer of e2e-features, then a ColumnTransformer with StandardScaler
    on the numeric columns and OneHotEncoder on a string column, then LogisticRegression)
    trained on a pandas DataFrame, saved with joblib;
and their direct predictions and probabilities, computed on the inputs the worker shim builds
(numpy.asarray(rows); pandas.DataFrame(rows, columns=columns)). The supervisor's answers must be
exactly equal (JSON floats round-trip exactly: the shim sends tolist() values).

Skipped (with the reason) only when apt cannot provide the .debs. Native libraries the compiled
modules need (liblbfgsb0, ...) are installed if missing (root). Every wait is bounded.

    /usr/bin/python3 -B tests/models/test_sklearn_e2e.py \
        --binary BUILD/supervisor/giskard-supervisor
"""

import json
import os
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402
import debian_apt  # noqa: E402
import debian_wheels  # noqa: E402

KERNEL = "sklearn"
REQUIREMENTS = ["scikit-learn==1.2.1", "pandas", "e2e-features==1.0.0"]
ENV_READY_TIMEOUT = 1200  # the env build: pip installs ~46 MB of wheels (a minute or so here)
SCRIPT_TIMEOUT = 600      # training in the env (imports sklearn on a busy machine)
CALL_TIMEOUT = 300        # a model call (the first one in a worker imports sklearn)
COLUMNS = ["age", "income", "city"]

FEATURES_MODULE = '''"""e2e-features: the feature code of test_sklearn_e2e.py's pipeline."""

__version__ = "1.0.0"


def add_ratio(df):
    """The frame plus a "ratio" column: income per year of age."""
    return df.assign(ratio=df["income"] / df["age"])
'''

# Run by the env's python: trains and saves the models into argv[1], prints what the direct
# calls give on the inputs the shim would build.
TRAIN = r'''
import json, os, pickle, sys
import joblib, numpy as np, pandas as pd, scipy, sklearn
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
import e2e_features

models, columns = sys.argv[1], json.loads(sys.argv[2])
out = {"versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                    "sklearn": sklearn.__version__, "pandas": pd.__version__}}

X, y = load_iris(return_X_y=True)
iris = LogisticRegression(max_iter=1000).fit(X, y)
with open(os.path.join(models, "iris.pkl"), "wb") as f:
    pickle.dump(iris, f)
rows = X.tolist()
Xr = np.asarray(rows)  # what the shim builds from "rows" without "columns"
out["iris"] = {"rows": rows, "predictions": iris.predict(Xr).tolist(),
               "probabilities": iris.predict_proba(Xr).tolist(),
               "classes": iris.classes_.tolist()}

train = [[age, income, city] for age in range(20, 60, 3) for income in (20, 35, 50, 65, 80)
         for city in ("paris", "lyon", "nice")]
df = pd.DataFrame(train, columns=columns)
target = np.where((df["income"] > 50) | (df["city"] == "nice"), "approve", "reject")
pipe = Pipeline([
    ("features", FunctionTransformer(e2e_features.add_ratio)),
    ("prep", ColumnTransformer([
        ("num", StandardScaler(), ["age", "income", "ratio"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])])),
    ("clf", LogisticRegression(C=100.0, max_iter=2000)),
]).fit(df, target)
joblib.dump(pipe, os.path.join(models, "pipeline.joblib"))
new = [[30, 20, "paris"], [45, 80, "lyon"], [25, 30, "nice"], [50, 25, "marseille"],
       [33, 52.5, "lyon"], [41.5, 65, "paris"]]
Xn = pd.DataFrame(new, columns=columns)  # what the shim builds from "columns" + "rows"
out["pipeline"] = {"rows": new, "predictions": pipe.predict(Xn).tolist(),
                   "probabilities": pipe.predict_proba(Xn).tolist(),
                   "classes": pipe.classes_.tolist(),
                   "train_accuracy": float(pipe.score(df, target))}
print(json.dumps(out))
'''


def debs_or_skip():
    """Downloads the .debs into debian_wheels' cache (a no-op when cached), or SkipTest when apt
    cannot provide them."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise unittest.SkipTest("apt-get/dpkg-deb not found: cannot get Debian's scikit-learn")
    cache = debian_apt.default_cache()
    with debian_apt.CacheLock(cache):
        try:
            debian_apt.download_all(cache)
        except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired) as e:
            # apt-get download failed (after one apt-get update), or never answered.
            raise unittest.SkipTest(f"apt cannot provide the scikit-learn .debs: {e}")


class SklearnThroughTheSupervisor(h.DaemonTestCase):
    """One daemon, one kernel with 2 workers and the real scientific stack."""

    TMP_PREFIX = "gsk-sklearn-"
    CHECK_LEFTOVERS = True  # no worker (its command line names the state dir) may outlive it

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        debs_or_skip()
        t0 = time.monotonic()
        cls.debian = os.path.join(cls.tmp, "debian-wheels")
        debian_wheels.build_all(cls.debian)
        debian_wheels.install_native_libs()  # what the compiled modules link to, if missing
        own = os.path.join(cls.tmp, "own-wheels")
        os.makedirs(own)
        h.write_package_wheel(own, "e2e-features", "1.0.0",
                              {"e2e_features/__init__.py": FEATURES_MODULE})
        cls.timings = {"wheels": time.monotonic() - t0}
        config = h.config_toml(find_links=[cls.debian, own], offline=True, max_concurrent=1)
        cls.daemon = cls.start_daemon(config)
        d = cls.daemon
        if "3.11" not in h.usable_minors(d):
            raise AssertionError(f"the daemon found no usable Python 3.11 (the Debian wheels are "
                                 f"cp311): {h.usable_minors(d)}")
        doc = {"name": KERNEL, "pythonVersion": "3.11", "requestedDependencies": REQUIREMENTS,
               "type": "PROCESS", "version": "1", "workers": 2}
        t0 = time.monotonic()
        r = d.post("/api/v1/kernels", doc)
        assert r.status == 201, r
        k = d.wait_status(KERNEL, timeout=ENV_READY_TIMEOUT)
        cls.timings["env build"] = time.monotonic() - t0
        assert k["status"] == "ready", f"{k}\n{d.build_log(KERNEL)[-5000:]}"
        cls.env_dir = os.path.join(d.state_dir, "envs", k["envHash"][:32])
        # The models go to the default root, <state>/models; trained by the env's python.
        cls.models = os.path.join(d.state_dir, "models")
        t0 = time.monotonic()
        cls.expected = json.loads(h.run_in_env(
            cls.env_dir, f"import sys; sys.argv[1:] = {[cls.models, json.dumps(COLUMNS)]!r}\n"
            + TRAIN, timeout=SCRIPT_TIMEOUT).splitlines()[-1])
        cls.timings["training"] = time.monotonic() - t0
        t0 = time.monotonic()
        cls.wait_workers(2)
        cls.timings["workers"] = time.monotonic() - t0
        print(f"\n[sklearn_e2e] " + ", ".join(f"{k} {v:.1f} s" for k, v in cls.timings.items()),
              file=sys.stderr, flush=True)

    @classmethod
    def wait_workers(cls, count, timeout=120):
        def running():
            r = cls.daemon.get(f"/api/v1/workers?kernel={KERNEL}")
            assert r.status == 200, r
            ws = r.json["workers"]
            fatal = [w for w in ws if w["state"] == "fatal"]
            assert not fatal, f"fatal workers: {fatal}"
            return ws
        return h.wait_for(f"{count} running workers", running,
                          lambda ws: len(ws) == count and all(w["state"] == "running"
                                                              for w in ws), timeout)

    def tearDown(self):
        self.assertHealthy(self.daemon)

    def predict(self, body):
        body = dict(body, timeoutSeconds=CALL_TIMEOUT)
        return self.daemon.post(f"/api/v1/kernels/{KERNEL}/predict", body,
                                timeout=CALL_TIMEOUT + 30)

    def predict_ok(self, body):
        r = self.predict(body)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json["worker"].startswith(KERNEL + "-"), r)
        return r.json

    # --- the tests -----------------------------------------------------------------------------

    def test_env_holds_the_debian_stack(self):
        self.assertEqual(self.expected["versions"], {"numpy": "1.24.2", "scipy": "1.10.1",
                                                     "sklearn": "1.2.1", "pandas": "1.5.3"})
        dists = h.env_distributions(self.env_dir)
        for name, version in {"scikit-learn": "1.2.1", "pandas": "1.5.3", "numpy": "1.24.2",
                              "scipy": "1.10.1", "e2e-features": "1.0.0"}.items():
            self.assertEqual(dists.get(name), version, dists)
        self.assertNotIn("pip", dists)
        # The workers report the same packages.
        for w in self.wait_workers(2):
            shown = self.daemon.get(f"/api/v1/workers/{w['id']}").json
            pkgs = {p["name"]: p["version"] for p in shown["environment"]["packages"]}
            self.assertEqual(pkgs.get("scikit-learn"), "1.2.1", pkgs)

    def test_iris_logistic_regression_rows_without_columns(self):
        e = self.expected["iris"]
        a = self.predict_ok({"model": "iris.pkl", "rows": e["rows"]})
        self.assertEqual(a["rows"], 150)
        self.assertEqual(a["classes"], [0, 1, 2])
        self.assertEqual(a["classes"], e["classes"])
        self.assertEqual(a["predictions"], e["predictions"])
        self.assertEqual(a["probabilities"], e["probabilities"])  # exactly, every float
        # A second call (model cached) and an absolute path answer the same.
        b = self.predict_ok({"model": os.path.join(self.models, "iris.pkl"),
                             "rows": e["rows"][:7]})
        self.assertEqual(b["predictions"], e["predictions"][:7])
        self.assertEqual(b["probabilities"], e["probabilities"][:7])

    def test_pipeline_with_column_transformer_on_a_dataframe(self):
        e = self.expected["pipeline"]
        self.assertGreaterEqual(e["train_accuracy"], 0.95)
        self.assertEqual(e["classes"], ["approve", "reject"])
        a = self.predict_ok({"model": "pipeline.joblib", "columns": COLUMNS, "rows": e["rows"]})
        self.assertEqual(a["classes"], e["classes"])
        self.assertEqual(a["predictions"], e["predictions"])
        self.assertEqual(a["probabilities"], e["probabilities"])  # exactly
        # The same rows as records: the same DataFrame, the same answer.
        records = [dict(zip(COLUMNS, row)) for row in e["rows"]]
        b = self.predict_ok({"model": "pipeline.joblib", "records": records})
        self.assertEqual((b["predictions"], b["probabilities"]),
                         (e["predictions"], e["probabilities"]))

    def test_errors_raised_by_scikit_learn(self):
        e = self.expected["pipeline"]
        # A missing age (null: NaN in the DataFrame): LogisticRegression refuses NaN.
        r = self.predict({"model": "pipeline.joblib", "columns": COLUMNS,
                          "rows": [e["rows"][0], [None, 40, "paris"]]})
        self.assertError(r, 422, "MODEL_ERROR")
        details = r.json["error"]["details"]
        self.assertEqual(details.get("type"), "ValueError", r)
        self.assertIn("NaN", r.json["error"]["message"])
        self.assertIn("sklearn", details.get("traceback", ""))
        # A column the pipeline needs is absent.
        r = self.predict({"model": "pipeline.joblib", "columns": ["age", "income"],
                          "rows": [[30, 20]]})
        self.assertError(r, 422, "MODEL_ERROR")
        self.assertIn("city", r.json["error"]["message"] + r.json["error"]["details"].get(
            "traceback", ""))
        # The iris model on rows of the wrong width.
        r = self.predict({"model": "iris.pkl", "rows": [[1.0, 2.0]]})
        self.assertError(r, 422, "MODEL_ERROR")
        self.assertEqual(r.json["error"]["details"].get("type"), "ValueError", r)
        # The worker goes on serving.
        a = self.predict_ok({"model": "iris.pkl", "rows": self.expected["iris"]["rows"][:2]})
        self.assertEqual(a["predictions"], self.expected["iris"]["predictions"][:2])

    def test_models_route_loads_on_both_workers(self):
        running = {w["id"] for w in self.wait_workers(2)}
        r = self.daemon.post(f"/api/v1/kernels/{KERNEL}/models", {"model": "pipeline.joblib"},
                             timeout=CALL_TIMEOUT + 30)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["model"], os.path.join(self.models, "pipeline.joblib"))
        self.assertEqual(r.json["loaded"], 2, r)
        self.assertEqual({w["worker"] for w in r.json["workers"]}, running, r)
        for w in r.json["workers"]:
            self.assertEqual((w["kind"], w["loader"], w["predictProba"], w["classes"]),
                             ("joblib", "joblib", True, ["approve", "reject"]), w)
        r = self.daemon.post(f"/api/v1/kernels/{KERNEL}/models", {"model": "iris.pkl"},
                             timeout=CALL_TIMEOUT + 30)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["loaded"], 2, r)
        self.assertEqual([w["classes"] for w in r.json["workers"]], [[0, 1, 2]] * 2, r)
        # Loaded everywhere: every call is answered the same, whichever worker takes it.
        e = self.expected["pipeline"]
        workers = set()
        for _ in range(4):
            a = self.predict_ok({"model": "pipeline.joblib", "columns": COLUMNS,
                                 "rows": e["rows"]})
            self.assertEqual(a["probabilities"], e["probabilities"])
            workers.add(a["worker"])
        self.assertLessEqual(workers, running)

    def test_cli_predict_with_a_csv_file(self):
        e = self.expected["pipeline"]
        csv = os.path.join(self.tmp, "applicants.csv")
        with open(csv, "w") as f:
            f.write(",".join(COLUMNS) + "\n")
            for age, income, city in e["rows"]:
                f.write(f"{age},{income},{city}\n")
        p = h.run_cli("--socket", self.daemon.admin_socket, "predict", KERNEL, "--model",
                      "pipeline.joblib", "--data", csv, "--json", "--timeout", str(CALL_TIMEOUT),
                      env=h.clean_env(HOME=self.tmp), timeout=CALL_TIMEOUT + 60)
        self.assertEqual(p.returncode, 0, p.stderr)
        answer = json.loads(p.stdout)
        self.assertEqual(answer["predictions"], e["predictions"])
        self.assertEqual(answer["probabilities"], e["probabilities"])
        p = h.run_cli("--socket", self.daemon.admin_socket, "predict", KERNEL, "--model",
                      "pipeline.joblib", "--data", csv, env=h.clean_env(HOME=self.tmp),
                      timeout=CALL_TIMEOUT + 60)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [line.split() for line in p.stdout.strip().splitlines()]
        self.assertEqual(lines[0], ["#", "prediction", "p(approve)", "p(reject)"], p.stdout)
        for i, (label, probs) in enumerate(zip(e["predictions"], e["probabilities"])):
            self.assertEqual(lines[i + 1], [str(i), label] + ["%.4g" % v for v in probs],
                             p.stdout)


if __name__ == "__main__":
    h.main()
