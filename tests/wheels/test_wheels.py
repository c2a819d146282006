#!/usr/bin/env python3
"""Integration tests: real `venv` + real `pip` (run from its wheel, outside the venv) against the
wheels of make_wheels.py, from a find-links directory and from local_index.py over HTTP.

One TestCase class per interpreter: Debian's /usr/bin/python3 with /usr/share/python-wheels/pip,
and pyenv's 3.8 / 3.12 / 3.13 (skipped when missing) with their ensurepip/_bundled pip wheel.
Standard library only; every subprocess has a timeout. Run:

    /usr/bin/python3 -m unittest discover -s tests/wheels -p 'test_*.py' -v
"""

import csv
import glob
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import harness as h  # noqa: E402
import local_index  # noqa: E402
import make_wheels  # noqa: E402

PIP_TIMEOUT = 180  # seconds for one pip run (they take 1-3 s here)
DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_PIP_GLOB = "/usr/share/python-wheels/pip-*.whl"
PYENV_VERSIONS = ("3.8", "3.12", "3.13")

_state = {}  # wheel dir, summary, index server, closed port, temp root


def version_key(path):
    """Sort key for .../pip-23.0.1-py3-none-any.whl or .../3.12.1 by numeric version."""
    match = re.search(r"(\d+(?:\.\d+)*)(?:-py|$)", os.path.basename(path.rstrip("/")))
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def newest(paths):
    paths = [p for p in paths if version_key(p)]
    return max(paths, key=version_key) if paths else None


def find_interpreters():
    """[(label, python, pip wheel or None)]; python None when the interpreter is missing."""
    found = []
    if os.access(DEBIAN_PYTHON, os.X_OK):
        found.append(("debian", DEBIAN_PYTHON, newest(glob.glob(DEBIAN_PIP_GLOB))))
    else:
        found.append(("debian", None, None))
    for version in PYENV_VERSIONS:
        prefix = newest(glob.glob(os.path.join(h.PYENV_ROOT, "versions", version + ".*")))
        python = os.path.join(prefix, "bin", "python") if prefix else None
        pip_whl = None
        if python and os.access(python, os.X_OK):
            # 3.8.18 here holds both pip-22.0.4 and pip-23.0.1: take the newest.
            pip_whl = newest(glob.glob(os.path.join(
                prefix, "lib", f"python{version}", "ensurepip", "_bundled", "pip-*.whl")))
        else:
            python = None
        found.append(("py" + version.replace(".", ""), python, pip_whl))
    return found


def pip_env():
    """The environment for pip: no user/site config, no proxies, nothing from PIP_* here."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith("PIP_") and k.lower() not in (
               "http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update({
        "PIP_CONFIG_FILE": os.devnull,  # os.devnull = do not read any pip.conf
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LC_ALL": "C.UTF-8",
    })
    return env


def setUpModule():  # noqa: N802 (unittest name)
    root = tempfile.mkdtemp(prefix="gsk-wheels-test-")
    wheel_dir = os.path.join(root, "wheels")
    _state["root"] = root
    _state["summary"] = make_wheels.build_all(wheel_dir, extra=2)
    _state["wheels"] = wheel_dir
    _state["server"], _state["url"] = local_index.start_index(wheel_dir)
    _state["closed_port"] = h.free_port()
    # An "index" that accepts connections (the kernel does, into the backlog) but never answers.
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(128)
    _state["silent"] = silent


def tearDownModule():  # noqa: N802
    server = _state.pop("server", None)
    if server is not None:
        server.stop()
    silent = _state.pop("silent", None)
    if silent is not None:
        silent.close()
    shutil.rmtree(_state.get("root", ""), ignore_errors=True)


class PipCase(unittest.TestCase):
    """Base: one interpreter (class attributes LABEL, PYTHON, PIP_WHL set by make_case)."""

    LABEL = PYTHON = PIP_WHL = None

    @classmethod
    def setUpClass(cls):
        if cls.PYTHON is None:
            raise unittest.SkipTest(f"{cls.LABEL}: interpreter not installed")
        if cls.PIP_WHL is None:
            raise unittest.SkipTest(f"{cls.LABEL}: no pip wheel for {cls.PYTHON}")

    def make_venv(self, prefix="venv-"):
        venv = tempfile.mkdtemp(prefix=f"{prefix}{self.LABEL}-", dir=_state["root"])
        proc = subprocess.run([self.PYTHON, "-m", "venv", "--without-pip", venv],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=h.PROC_TIMEOUT, env=pip_env())
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.addCleanup(shutil.rmtree, venv, True)
        return venv

    def pip_install(self, venv, *args):
        """Runs VENV/bin/python PIP_WHL/pip install ...; returns (exit code, stdout+stderr)."""
        cmd = [os.path.join(venv, "bin", "python"), os.path.join(self.PIP_WHL, "pip"),
               "install", "--no-input", "--disable-pip-version-check", "--no-cache-dir"]
        proc = subprocess.run(cmd + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=PIP_TIMEOUT,
                              env=pip_env())
        return proc.returncode, proc.stdout

    def find_links(self, venv, *reqs):
        return self.pip_install(venv, "--no-index", "--find-links", _state["wheels"], *reqs)

    def from_index(self, venv, *reqs, url=None):
        return self.pip_install(venv, "--index-url", url or _state["url"], *reqs)

    def venv_python(self, venv, code):
        proc = subprocess.run([os.path.join(venv, "bin", "python"), "-c", code],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=h.PROC_TIMEOUT)
        return proc.returncode, proc.stdout.strip()

    def assert_versions(self, venv, expected):
        mods = sorted(expected)
        code = ("import importlib;print(' '.join(importlib.import_module(m).__version__ "
                f"for m in {mods!r}))")
        rc, out = self.venv_python(venv, code)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out, " ".join(expected[m] for m in mods))

    def assert_not_importable(self, venv, module):
        rc, out = self.venv_python(venv, f"import {module}")
        self.assertNotEqual(rc, 0, f"{module} should not be installed: {out}")

    # (a)
    def test_find_links_resolves_dependency_graph(self):
        venv = self.make_venv()
        rc, out = self.find_links(venv, "gsk-alpha==2.0.0")
        self.assertEqual(rc, 0, out)
        self.assertIn("Successfully installed gsk-alpha-2.0.0 gsk-beta-1.2.0 gsk-gamma-1.0.0", out)
        self.assert_versions(venv, {"gsk_alpha": "2.0.0", "gsk_beta": "1.2.0",
                                    "gsk_gamma": "1.0.0"})
        self.assert_not_importable(venv, "pip")  # pip ran from outside: none left behind

    def test_find_links_honours_pins(self):
        venv = self.make_venv()
        rc, out = self.find_links(venv, "gsk-alpha==1.0.0", "gsk-beta==1.0.0", "gsk-gamma")
        self.assertEqual(rc, 0, out)
        self.assert_versions(venv, {"gsk_alpha": "1.0.0", "gsk_beta": "1.0.0",
                                    "gsk_gamma": "2.0.0"})

    def test_unpacked_pip_directory(self):
        # The pip wheel extracted to a directory runs the same way (and can keep its .pyc files).
        pip_dir = os.path.join(_state["root"], f"pip-{self.LABEL}")
        if not os.path.isdir(pip_dir):
            with zipfile.ZipFile(self.PIP_WHL) as zf:
                zf.extractall(pip_dir)
        venv = self.make_venv()
        cmd = [os.path.join(venv, "bin", "python"), os.path.join(pip_dir, "pip"), "install",
               "--no-input", "--disable-pip-version-check", "--no-cache-dir", "--no-index",
               "--find-links", _state["wheels"], "gsk-tool"]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=PIP_TIMEOUT, env=pip_env())
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assert_versions(venv, {"gsk_tool": "1.0.0"})

    # (b)
    def test_http_index(self):
        venv = self.make_venv()
        rc, out = self.from_index(venv, "gsk-alpha==2.0.0", "gsk_Pkg.000")
        self.assertEqual(rc, 0, out)
        self.assertIn(_state["url"], out)
        self.assert_versions(venv, {"gsk_alpha": "2.0.0", "gsk_beta": "1.2.0",
                                    "gsk_gamma": "1.0.0", "gsk_pkg_000": "1.0.0"})

    # (c)
    def test_console_script(self):
        venv = self.make_venv()
        rc, out = self.find_links(venv, "gsk-tool")
        self.assertEqual(rc, 0, out)
        script = os.path.join(venv, "bin", "gsk-tool")
        with open(script, encoding="utf-8") as f:
            shebang = f.readline().rstrip("\n")
        self.assertEqual(shebang, "#!" + os.path.join(venv, "bin", "python"))
        proc = subprocess.run([script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=h.PROC_TIMEOUT)
        self.assertEqual((proc.returncode, proc.stdout), (0, "gsk-tool 1.0.0\n"))

    def test_console_script_in_path_with_space(self):
        # A space in the path (or a path over 127 bytes) makes pip write a /bin/sh trampoline
        # instead of a plain "#!V/bin/python" line; the script still runs.
        venv = self.make_venv(prefix="venv with space-")
        rc, out = self.find_links(venv, "gsk-tool")
        self.assertEqual(rc, 0, out)
        script = os.path.join(venv, "bin", "gsk-tool")
        with open(script, encoding="utf-8") as f:
            head = [f.readline().rstrip("\n") for _ in range(2)]
        python = os.path.join(venv, "bin", "python")
        self.assertEqual(head, ["#!/bin/sh", f"'''exec' \"{python}\" \"$0\" \"$@\""])
        proc = subprocess.run([script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=h.PROC_TIMEOUT)
        self.assertEqual((proc.returncode, proc.stdout), (0, "gsk-tool 1.0.0\n"))

    # (d)
    def test_broken_wheel_fails_to_install(self):
        venv = self.make_venv()
        rc, out = self.find_links(venv, "gsk-broken")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("Installing collected packages: gsk-broken", out)
        self.assertRegex(out, r"ERROR: .*gsk_broken_escape\.py' trying to install outside")
        self.assert_not_importable(venv, "gsk_broken")

    def test_bad_wheel_version_fails(self):
        venv = self.make_venv()
        rc, out = self.from_index(venv, "gsk-badwheel")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("Wheel-Version (9.0) is not compatible with this version of pip", out)
        self.assert_not_importable(venv, "gsk_badwheel")

    # (e)
    def test_unknown_package(self):
        venv = self.make_venv()
        for rc, out in (self.find_links(venv, "gsk-nonexistent"),
                        self.from_index(venv, "gsk-nonexistent")):
            self.assertNotEqual(rc, 0, out)
            self.assertIn("ERROR: No matching distribution found for gsk-nonexistent", out)

    def test_unknown_version(self):
        venv = self.make_venv()
        rc, out = self.from_index(venv, "gsk-alpha==3.0")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("(from versions: 1.0.0, 2.0.0)", out)
        self.assertIn("ERROR: No matching distribution found for gsk-alpha==3.0", out)

    # (f)
    def test_unsatisfiable_pins(self):
        venv = self.make_venv()
        rc, out = self.find_links(venv, "gsk-delta", "gsk-alpha==2.0.0")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("conflicting dependencies", out)
        self.assertIn("ResolutionImpossible", out)
        self.assert_not_importable(venv, "gsk_alpha")

    # (g) With --retries 0 pip prints only "No matching distribution found" for an index that is
    # down or hangs (the cause is a debug-level line, shown with -vv). One retry adds a WARNING
    # line naming the cause, and costs nothing for a refused connection (urllib3 does not back
    # off before the first retry), one more --timeout for a hanging index.
    def test_index_down(self):
        venv = self.make_venv()
        url = f"http://127.0.0.1:{_state['closed_port']}/simple/"
        rc, out = self.pip_install(venv, "--retries", "1", "--timeout", "2",
                                   "--index-url", url, "gsk-alpha")
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r"WARNING: Retrying .*NewConnectionError.*Connection refused")
        self.assertIn("ERROR: No matching distribution found for gsk-alpha", out)
        rc, out = self.pip_install(venv, "--retries", "0", "--timeout", "2",
                                   "--index-url", url, "gsk-alpha")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("ERROR: No matching distribution found for gsk-alpha", out)

    def test_index_hangs(self):
        venv = self.make_venv()
        url = f"http://127.0.0.1:{_state['silent'].getsockname()[1]}/simple/"
        rc, out = self.pip_install(venv, "--retries", "1", "--timeout", "2",
                                   "--index-url", url, "gsk-alpha")
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r"WARNING: Retrying .*ReadTimeoutError.*Read timed out")
        self.assertIn("ERROR: No matching distribution found for gsk-alpha", out)

    def test_find_links_directory_missing(self):
        venv = self.make_venv()
        missing = os.path.join(_state["root"], "no-such-dir")
        rc, out = self.pip_install(venv, "--no-index", "--find-links", missing, "gsk-alpha")
        self.assertNotEqual(rc, 0, out)
        self.assertIn(f"WARNING: Location '{missing}' is ignored", out)
        self.assertIn("ERROR: No matching distribution found for gsk-alpha", out)


class WheelToolsTest(unittest.TestCase):
    """make_wheels.py and local_index.py themselves, without pip."""

    def test_wheels_are_deterministic_and_records_match(self):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            first = make_wheels.build_all(a, extra=3)
            second = make_wheels.build_all(b, extra=3)
            self.assertEqual([w["sha256"] for w in first["wheels"]],
                             [w["sha256"] for w in second["wheels"]])
            names = {w["filename"] for w in first["wheels"]}
            self.assertIn("gsk_pkg_002-1.0.0-py3-none-any.whl", names)
            for wheel in first["wheels"]:
                self.check_record(wheel["path"])

    def check_record(self, path):
        with zipfile.ZipFile(path) as zf:
            self.assertIsNone(zf.testzip())
            record_name = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
            rows = list(csv.reader(io.StringIO(zf.read(record_name).decode("utf-8"))))
            self.assertEqual(sorted(r[0] for r in rows), sorted(zf.namelist()))
            for name, digest, size in rows:
                if name == record_name:
                    self.assertEqual((digest, size), ("", ""))
                    continue
                data = zf.read(name)
                self.assertEqual(digest, make_wheels.record_hash(data), name)
                self.assertEqual(int(size), len(data), name)

    def test_cli_prints_json_summary(self):
        with tempfile.TemporaryDirectory() as out:
            proc = subprocess.run([sys.executable, os.path.join(HERE, "make_wheels.py"),
                                   "--out", out, "--extra", "20"], stdout=subprocess.PIPE,
                                  timeout=60, check=True)
            summary = json.loads(proc.stdout)
            self.assertEqual(len(summary["wheels"]), 11 + 20)
            for wheel in summary["wheels"]:
                self.assertTrue(os.path.isfile(wheel["path"]), wheel)
            by_name = {(w["name"], w["version"]): w for w in summary["wheels"]}
            self.assertEqual(by_name[("gsk-alpha", "2.0.0")]["requires"], ["gsk-beta>=1.1"])
            self.assertEqual(by_name[("gsk-tool", "1.0.0")]["console_scripts"],
                             {"gsk-tool": "gsk_tool:main"})
            self.assertTrue(by_name[("gsk-broken", "1.0.0")]["broken"])

    def test_index_pages(self):
        with tempfile.TemporaryDirectory() as out:
            summary = make_wheels.build_all(out)
            server, url = local_index.start_index(out)
            try:
                root = self.fetch(url)
                self.assertIn('<a href="gsk-alpha/">gsk-alpha</a>', root)
                page = self.fetch(url + "gsk-alpha/")
                for wheel in summary["wheels"]:
                    if wheel["name"] == "gsk-alpha":
                        self.assertIn(f'{wheel["filename"]}#sha256={wheel["sha256"]}', page)
                self.assertEqual(page, self.fetch(url + "GSK_Alpha"))  # redirected
                with self.assertRaises(urllib.error.HTTPError) as ctx:
                    self.fetch(url + "gsk-nonexistent/")
                self.assertEqual(ctx.exception.code, 404)
                port = server.port
            finally:
                server.stop()
            with self.assertRaises(urllib.error.URLError):
                self.fetch(f"http://127.0.0.1:{port}/simple/")

    @staticmethod
    def fetch(url):
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode("utf-8")

    def test_index_process_exits_with_its_parent(self):
        with tempfile.TemporaryDirectory() as out:
            port_file = os.path.join(out, "port")
            # The middle process starts the index, waits until it listens, prints its pid and
            # exits. The index must notice within about a second.
            launcher = "\n".join([
                "import os, subprocess, sys, time",
                f"p = subprocess.Popen([sys.executable, {os.path.join(HERE, 'local_index.py')!r},"
                f" '--dir', {out!r}, '--port-file', {port_file!r}, '--max-seconds', '60'],"
                " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)",
                "deadline = time.monotonic() + 20",
                f"while not os.path.exists({port_file!r}) and time.monotonic() < deadline:",
                "    time.sleep(0.05)",
                "print(p.pid)",
            ])
            proc = subprocess.run([sys.executable, "-c", launcher], stdout=subprocess.PIPE,
                                  text=True, timeout=30, check=True)
            pid = int(proc.stdout)
            deadline = time.monotonic() + 15
            while h.alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertFalse(h.alive(pid), "local_index.py outlived its parent")


def make_case(label, python, pip_whl):
    name = f"PipOn_{label}"
    return type(name, (PipCase,), {"LABEL": label, "PYTHON": python, "PIP_WHL": pip_whl,
                                   "__module__": __name__})


def _register_cases():
    for label, python, pip_whl in find_interpreters():
        case = make_case(label, python, pip_whl)
        globals()[case.__name__] = case


_register_cases()
del PipCase  # only the per-interpreter classes run

if __name__ == "__main__":
    unittest.main()
