"""build_wheel.py: a valid, deterministic wheel that pip installs offline into a fresh venv,
with a working console script."""

import base64
import csv
import glob
import hashlib
import importlib.util
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest
import zipfile

import giskard_worker_shim
from giskard_worker_shim import daemon
from tests.support import ROOT, TIMEOUT, FakeWsServer

WHEEL = "giskard_worker_shim-%s-py3-none-any.whl" % giskard_worker_shim.__version__
PIP_TIMEOUT = 180


def load_builder():
    spec = importlib.util.spec_from_file_location("build_wheel",
                                                  os.path.join(ROOT, "build_wheel.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(out_dir):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "build_wheel.py"), "--out",
                             out_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=60, check=False)
    if result.returncode != 0:
        raise AssertionError(result.stderr)
    return result.stdout.strip()


def pip_wheel():
    """A pip wheel that fits this interpreter: its own bundled one, else Debian's."""
    candidates = []
    spec = importlib.util.find_spec("ensurepip")
    if spec is not None and spec.origin:
        candidates += glob.glob(os.path.join(os.path.dirname(spec.origin), "_bundled",
                                             "pip-*.whl"))
    if not candidates:
        candidates += glob.glob("/usr/share/python-wheels/pip-*.whl")

    def version(path):
        match = re.search(r"pip-([\d.]+)-", os.path.basename(path))
        return tuple(int(x) for x in match.group(1).split(".") if x) if match else ()
    return max(candidates, key=version) if candidates else None


def kill_if_left(pid):
    if daemon.is_our_worker(pid):  # a daemon the test started and did not stop
        os.kill(pid, signal.SIGKILL)


class WheelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="shim-wheel-")
        cls.wheel = build(os.path.join(cls.tmp.name, "a"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_name_and_determinism(self):
        self.assertEqual(os.path.basename(self.wheel), WHEEL)
        again = build(os.path.join(self.tmp.name, "b"))
        with open(self.wheel, "rb") as a, open(again, "rb") as b:
            self.assertEqual(hashlib.sha256(a.read()).hexdigest(),
                             hashlib.sha256(b.read()).hexdigest())

    def test_record_matches_contents(self):
        with zipfile.ZipFile(self.wheel) as wheel:
            names = wheel.namelist()
            info = "giskard_worker_shim-%s.dist-info/" % giskard_worker_shim.__version__
            self.assertEqual(names[-1], info + "RECORD")
            rows = list(csv.reader(io.StringIO(wheel.read(info + "RECORD").decode())))
            self.assertEqual(sorted(r[0] for r in rows), sorted(names))
            for path, digest, size in rows:
                if path.endswith("RECORD"):
                    self.assertEqual((digest, size), ("", ""))
                    continue
                data = wheel.read(path)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                self.assertEqual(digest, "sha256=" + expected.decode(), path)
                self.assertEqual(int(size), len(data), path)
            for zinfo in wheel.infolist():
                self.assertEqual(zinfo.date_time, (1980, 1, 1, 0, 0, 0))
            self.assertIn("giskard_worker_shim/__main__.py", names)
            self.assertFalse([n for n in names if "__pycache__" in n or n.endswith(".pyc")])
            wheel_file = wheel.read(info + "WHEEL").decode()
            self.assertIn("Tag: py3-none-any\n", wheel_file)
            self.assertIn("Root-Is-Purelib: true\n", wheel_file)
            metadata = wheel.read(info + "METADATA").decode()
            for line in ("Metadata-Version: 2.1", "Name: giskard-worker-shim",
                         "Version: " + giskard_worker_shim.__version__,
                         "Requires-Python: >=3.8"):
                self.assertIn(line + "\n", metadata)
            self.assertEqual(wheel.read(info + "entry_points.txt").decode(),
                             "[console_scripts]\ngiskard = giskard_worker_shim.cli:main\n"
                             "giskard-worker = giskard_worker_shim.cli:main\n")

    def test_version_matches_pyproject(self):
        builder = load_builder()
        project = builder.read_pyproject(os.path.join(ROOT, "pyproject.toml"))["project"]
        self.assertEqual(project["version"], giskard_worker_shim.__version__)
        self.assertEqual(project["scripts"], {"giskard": "giskard_worker_shim.cli:main",
                                              "giskard-worker": "giskard_worker_shim.cli:main"})

    def test_toml_subset_parser_agrees_with_tomllib(self):
        builder = load_builder()
        with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
            text = f.read()
        parsed = builder.parse_toml_subset(text)
        self.assertEqual(parsed["project"]["name"], "giskard-worker-shim")
        self.assertEqual(parsed["tool"]["setuptools"]["packages"]["find"]["where"], ["src"])
        tricky = 'a = "x # not a comment \\" still"  # comment\nb = [\n  "1", # one\n  \'2\',\n]\n'
        self.assertEqual(builder.parse_toml_subset(tricky),
                         {"a": 'x # not a comment " still', "b": ["1", "2"]})
        with self.assertRaises(ValueError):
            builder.parse_toml_subset("a = {inline = 1}\n")
        try:
            import tomllib
        except ImportError:
            return
        self.assertEqual(parsed, tomllib.loads(text))
        self.assertEqual(builder.parse_toml_subset(tricky), tomllib.loads(tricky))

    def test_installs_offline_into_a_fresh_venv(self):
        pip = pip_wheel()
        if pip is None:
            self.skipTest("no pip wheel for %s" % sys.executable)
        venv = os.path.join(self.tmp.name, "venv")
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True,
                       timeout=PIP_TIMEOUT)
        python = os.path.join(venv, "bin", "python")
        env = {k: v for k, v in os.environ.items()
               if k != "PYTHONPATH" and not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        install = subprocess.run(
            [python, os.path.join(pip, "pip"), "install", "--no-index", "--no-cache-dir",
             "--disable-pip-version-check", "--no-warn-script-location", self.wheel],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            universal_newlines=True, timeout=PIP_TIMEOUT)
        self.assertEqual(install.returncode, 0, install.stdout)
        expected = "giskard-worker-shim %s\n" % giskard_worker_shim.__version__
        for command in ([os.path.join(venv, "bin", "giskard"), "--version"],
                        [os.path.join(venv, "bin", "giskard-worker"), "--version"],
                        [python, "-m", "giskard_worker_shim", "--version"]):
            result = subprocess.run(command, env=env, cwd=self.tmp.name, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
            self.assertEqual((result.returncode, result.stdout), (0, expected), result.stderr)
        where = subprocess.run([python, "-c", "import giskard_worker_shim as m; print(m.__file__)"],
                               env=env, cwd=self.tmp.name, stdout=subprocess.PIPE,
                               universal_newlines=True, timeout=60).stdout
        self.assertTrue(where.startswith(os.path.realpath(venv)) or where.startswith(venv), where)
        for script in ("giskard", "giskard-worker"):
            usage = subprocess.run([os.path.join(venv, "bin", script), "worker", "--help"],
                                   env=env, stdout=subprocess.PIPE, universal_newlines=True,
                                   timeout=60).stdout
            self.assertIn("usage: %s worker" % script, usage)
            self.assertIn("giskard worker start -k KEY", usage)
        self.start_and_stop_with_the_giskard_script(os.path.join(venv, "bin", "giskard"), env)

    def start_and_stop_with_the_giskard_script(self, giskard, env):
        """The seeds' command, verbatim, through the installed script: a daemon that `stop`
        recognizes as a worker by its command line (`.../bin/giskard worker start ...`)."""
        server = FakeWsServer()
        self.addCleanup(server.close)
        env = dict(env, GSK_HOME=os.path.join(self.tmp.name, "home"))
        start = subprocess.Popen([giskard, "worker", "start", "-k", "KEY", "-u", server.url,
                                  "--name", "venv-worker", "-d"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 universal_newlines=True)
        peer, hello = server.register()
        self.addCleanup(kill_if_left, hello["env"]["pid"])
        out, err = start.communicate(timeout=TIMEOUT)
        self.assertEqual(start.returncode, 0, err)
        self.assertTrue(out.startswith("Connected to Giskard server.\n"), out)
        self.assertIn("`giskard worker stop --name venv-worker`", out)
        self.assertEqual(hello["name"], "venv-worker")
        stop = subprocess.run([giskard, "worker", "stop", "-a"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=TIMEOUT)
        self.assertEqual(stop.stdout, "Stopped worker venv-worker (pid %d).\n"
                         % hello["env"]["pid"], stop.stderr)
        self.assertEqual(peer.expect_close(), 1000)


if __name__ == "__main__":
    unittest.main()
