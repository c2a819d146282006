#!/usr/bin/env python3
"""Self-check of debian_wheels.py: Debian's numpy/scipy/scikit-learn/pandas, repacked as wheels,
installed by the real pip into a fresh venv of /usr/bin/python3, then used to train models.

Builds the wheels into a temporary directory (the .deb download cache is reused), makes a venv
with `/usr/bin/python3 -m venv --without-pip`, runs pip from Debian's wheel
(`V/bin/python /usr/share/python-wheels/pip-*.whl/pip install --no-index --find-links DIR
scikit-learn==1.2.1 pandas`), then `pip check`, a LogisticRegression on load_iris() and a
Pipeline with a ColumnTransformer on a pandas DataFrame. Standard library only; every subprocess
has a timeout. The model tests are skipped (with the command to run) when a native library such
as liblbfgsb0 is not installed. Run:

    python3 -B tests/models/test_debian_wheels.py -v
"""

import base64
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import debian_wheels  # noqa: E402

DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_PIP_GLOB = "/usr/share/python-wheels/pip-*.whl"
PIP_TIMEOUT = 900  # seconds for one pip run (about 20 s here)
VENV_TIMEOUT = 120
SCRIPT_TIMEOUT = 300  # one model script in the venv
REQUIREMENTS = ["scikit-learn==1.2.1", "pandas"]
EXPECTED = {  # distribution -> (version, compiled)
    "numpy": ("1.24.2", True), "scipy": ("1.10.1", True), "scikit-learn": ("1.2.1", True),
    "pandas": ("1.5.3", True), "joblib": (None, False), "threadpoolctl": (None, False),
    "python-dateutil": (None, False), "pytz": (None, False), "six": (None, False),
}

IRIS_SCRIPT = r"""
import json
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                    stratify=y)
model = LogisticRegression(max_iter=1000).fit(X_train, y_train)
samples = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.1, 4.7, 1.5], [7.7, 3.0, 6.1, 2.3]])
print(json.dumps({"shape": list(X.shape), "accuracy": model.score(X_test, y_test),
                  "predicted": model.predict(samples).tolist(),
                  "proba_sums": model.predict_proba(samples).sum(axis=1).round(6).tolist()}))
"""

PIPELINE_SCRIPT = r"""
import json
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
rows = [(age, income, city) for age in range(20, 60, 3) for income in (20, 35, 50, 65, 80)
        for city in ("paris", "lyon", "nice")]
df = pd.DataFrame(rows, columns=["age", "income", "city"])
y = ((df["income"] > 50) | (df["city"] == "nice")).astype(int)
pipe = Pipeline([
    ("prep", ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                                ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])])),
    ("clf", LogisticRegression(C=100.0, max_iter=2000)),
]).fit(df, y)
new = pd.DataFrame({"age": [30, 45, 25, 50], "income": [20, 80, 30, 25],
                    "city": ["paris", "lyon", "nice", "marseille"]})
print(json.dumps({"train_accuracy": float(pipe.score(df, y)),
                  "predicted": pipe.predict(new).tolist(),
                  "features": int(pipe.named_steps["prep"].transform(new).shape[1]),
                  "mean_income_by_city": df.groupby("city")["income"].mean().to_dict()}))
"""

LOCATION_SCRIPT = r"""
import json, importlib
mods = ["numpy", "scipy", "sklearn", "pandas", "joblib", "threadpoolctl", "dateutil", "pytz",
        "six"]
out = {m: importlib.import_module(m).__file__ for m in mods}
try:
    import pip  # noqa: F401
    out["pip"] = "importable"
except ImportError:
    out["pip"] = None
import numpy, scipy, sklearn, pandas, scipy.optimize
out["versions"] = [numpy.__version__, scipy.__version__, sklearn.__version__, pandas.__version__]
out["lbfgs"] = float(scipy.optimize.minimize(lambda x: (x[0] - 3) ** 2, [0.0],
                                             method="L-BFGS-B").x[0])
print(json.dumps(out))
"""

_state = {}  # root, wheels dir, wheel paths, venv, pip wheel, pip output, missing libs, timings


def pip_env():
    """The environment for pip: no user/site config, no proxies, nothing from PIP_* here."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith("PIP_") and k.lower() not in (
               "http_proxy", "https_proxy", "all_proxy", "no_proxy", "pythonpath")}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PYTHONDONTWRITEBYTECODE": "1",
                "LC_ALL": "C.UTF-8"})
    return env


def run(cmd, timeout, cwd=None):
    """Runs cmd with pip_env(); returns the CompletedProcess (stdout and stderr as text)."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, env=pip_env(), cwd=cwd or _state["root"])


def pip(*args):
    """Runs pip from Debian's wheel inside the venv (pip itself is not installed there)."""
    python = os.path.join(_state["venv"], "bin", "python")
    return run([python, os.path.join(_state["pip_whl"], "pip"), *args,
                "--no-input", "--disable-pip-version-check"], PIP_TIMEOUT)


def setUpModule():  # noqa: N802 (unittest name)
    pip_wheels = sorted(glob.glob(DEBIAN_PIP_GLOB))
    if not os.access(DEBIAN_PYTHON, os.X_OK) or not pip_wheels or not shutil.which("apt-get"):
        raise unittest.SkipTest("needs /usr/bin/python3, Debian's pip wheel and apt-get")
    root = _state["root"] = tempfile.mkdtemp(prefix="gsk-models-test-")
    _state["pip_whl"] = pip_wheels[-1]
    start = time.monotonic()
    _state["wheels_dir"] = os.path.join(root, "wheels")
    _state["wheels"] = debian_wheels.build_all(_state["wheels_dir"])
    _state["build_s"] = time.monotonic() - start
    _state["missing_libs"] = [p for p in debian_wheels.native_lib_packages()
                              if not debian_wheels.is_installed(p)]
    _state["venv"] = os.path.join(root, "venv")
    proc = run([DEBIAN_PYTHON, "-m", "venv", "--without-pip", _state["venv"]], VENV_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"venv failed:\n{proc.stdout}{proc.stderr}")
    start = time.monotonic()
    _state["install"] = pip("install", "--no-cache-dir", "--no-index", "--find-links",
                            _state["wheels_dir"], *REQUIREMENTS)
    _state["install_s"] = time.monotonic() - start
    print(f"\n[models] wheels built in {_state['build_s']:.1f} s, pip install "
          f"{_state['install_s']:.1f} s", file=sys.stderr, flush=True)


def tearDownModule():  # noqa: N802
    if _state.get("root"):
        shutil.rmtree(_state["root"], ignore_errors=True)


def wheel_dist(path):
    """('scikit-learn' style normalized name, version, tag) from a wheel's file name."""
    name, version, *tag = os.path.basename(path)[:-len(".whl")].split("-")
    return name.replace("_", "-"), version, "-".join(tag)


class WheelFilesTest(unittest.TestCase):
    """The wheels themselves: the set, the tags, the metadata, RECORD."""

    def test_the_wheel_set(self):
        found = {wheel_dist(p)[0]: wheel_dist(p) for p in _state["wheels"]}
        self.assertEqual(sorted(found), sorted(EXPECTED))
        for name, (version, compiled) in EXPECTED.items():
            _, got_version, tag = found[name]
            if version:
                self.assertEqual(got_version, version, name)
            self.assertEqual(tag, "cp311-cp311-linux_x86_64" if compiled else "py3-none-any")

    def test_metadata_wheel_and_record(self):
        for path in _state["wheels"]:
            name, version, tag = wheel_dist(path)
            with self.subTest(wheel=os.path.basename(path)), zipfile.ZipFile(path) as zf:
                info = f"{name.replace('-', '_')}-{version}.dist-info"
                meta = zf.read(f"{info}/METADATA").decode()
                self.assertRegex(meta, rf"(?mi)^Name: {re.escape(name)}$")
                self.assertIn(f"\nVersion: {version}\n", meta)
                self.assertNotIn("extra ==", meta)
                wheel = zf.read(f"{info}/WHEEL").decode()
                self.assertIn(f"Tag: {tag}\n", wheel)
                self.assertIn("Root-Is-Purelib: " + ("true" if "none" in tag else "false"), wheel)
                self.assertTrue(zf.read(f"{info}/top_level.txt").strip())
                self.check_record(zf, info)

    def check_record(self, zf, info):
        rows = [line.split(",") for line in zf.read(f"{info}/RECORD").decode().splitlines()]
        self.assertEqual(sorted(r[0] for r in rows), sorted(zf.namelist()))
        for arcname, digest, size in rows:
            if arcname == f"{info}/RECORD":
                self.assertEqual((digest, size), ("", ""))
                continue
            data = zf.read(arcname)
            expect = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            self.assertEqual(digest, "sha256=" + expect.decode(), arcname)
            self.assertEqual(int(size), len(data), arcname)

    def test_requirements(self):
        metas = {}
        for path in _state["wheels"]:
            name, version, _ = wheel_dist(path)
            with zipfile.ZipFile(path) as zf:
                metas[name] = zf.read(f"{name.replace('-', '_')}-{version}.dist-info/METADATA")
        reqs = {n: re.findall(r"(?m)^Requires-Dist: ([A-Za-z0-9_.-]+)", m.decode())
                for n, m in metas.items()}
        self.assertLessEqual({"numpy", "scipy", "joblib", "threadpoolctl"},
                             set(reqs["scikit-learn"]))
        self.assertLessEqual({"numpy", "python-dateutil", "pytz"}, set(reqs["pandas"]))
        self.assertEqual(reqs["scipy"], ["numpy"])
        self.assertEqual(reqs["python-dateutil"], ["six"])

    def test_second_build_keeps_the_wheels(self):
        before = {p: os.stat(p).st_mtime_ns for p in _state["wheels"]}
        start = time.monotonic()
        again = debian_wheels.build_all(_state["wheels_dir"])
        self.assertEqual(again, _state["wheels"])
        self.assertEqual({p: os.stat(p).st_mtime_ns for p in again}, before)
        self.assertLess(time.monotonic() - start, 120)

    def test_native_libs_listed(self):
        libs = debian_wheels.native_lib_packages()
        self.assertIn("liblbfgsb0", libs)
        self.assertFalse([p for p in libs if p.startswith(("libboost", "python3-"))])


class VenvTest(unittest.TestCase):
    """pip install into a fresh venv, pip check, then real models."""

    def run_script(self, code):
        """Runs code in the venv (cwd outside the repository); returns its JSON output."""
        if _state["missing_libs"]:
            self.skipTest(f"native libraries missing: {' '.join(_state['missing_libs'])} "
                          "(run: python3 tests/models/debian_wheels.py --install-native-libs)")
        python = os.path.join(_state["venv"], "bin", "python")
        proc = run([python, "-c", code], SCRIPT_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def test_pip_install_resolves_the_stack(self):
        proc = _state["install"]
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        installed = re.search(r"Successfully installed (.*)", proc.stdout).group(1).split()
        names = {re.match(r"(.*)-[^-]+$", d).group(1) for d in installed}
        self.assertEqual(names, set(EXPECTED))
        for name, (version, _) in EXPECTED.items():
            if version:
                self.assertIn(f"{name}-{version}", installed)

    def test_pip_check(self):
        proc = pip("check")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("No broken requirements found", proc.stdout)

    def test_modules_come_from_the_venv(self):
        out = self.run_script(LOCATION_SCRIPT)
        venv = os.path.realpath(_state["venv"])
        for module, path in out.items():
            if module not in ("pip", "versions", "lbfgs"):
                self.assertTrue(os.path.realpath(path).startswith(venv + "/"), (module, path))
        self.assertIsNone(out["pip"])
        self.assertEqual(out["versions"], ["1.24.2", "1.10.1", "1.2.1", "1.5.3"])
        self.assertAlmostEqual(out["lbfgs"], 3.0, places=4)

    def test_logistic_regression_on_iris(self):
        out = self.run_script(IRIS_SCRIPT)
        self.assertEqual(out["shape"], [150, 4])
        self.assertGreaterEqual(out["accuracy"], 0.9)
        self.assertEqual(out["predicted"], [0, 1, 2])
        self.assertEqual(out["proba_sums"], [1.0, 1.0, 1.0])

    def test_pipeline_with_column_transformer_on_dataframe(self):
        out = self.run_script(PIPELINE_SCRIPT)
        self.assertGreaterEqual(out["train_accuracy"], 0.97)
        self.assertEqual(out["predicted"], [0, 1, 1, 0])
        self.assertEqual(out["features"], 5)  # 2 scaled + 3 one-hot ("marseille" is ignored)
        self.assertEqual(out["mean_income_by_city"], {"lyon": 50.0, "nice": 50.0, "paris": 50.0})


if __name__ == "__main__":
    unittest.main()
