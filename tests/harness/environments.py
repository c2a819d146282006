"""Managed environments for the tests: the test wheels of tests/wheels/make_wheels.py (big ones
for the disk budget, and wheels of a test's own modules), a local PEP 503 index
(tests/wheels/local_index.py) that can be slowed down or held, the interpreters the daemon
found, and looks into the envs it built."""

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import unittest
import zipfile

from .settings import HOLD_MAX, PROC_TIMEOUT, PYENV_ROOT

WHEELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "wheels")
if WHEELS_DIR not in sys.path:
    sys.path.insert(0, WHEELS_DIR)

import local_index  # noqa: E402  (tests/wheels/local_index.py)
import make_wheels  # noqa: E402  (tests/wheels/make_wheels.py)

# --- known daemon bugs ---------------------------------------------------------------------------

STRICT = os.environ.get("GSK_ENVTESTS_STRICT") == "1"


def known_bug(description):
    """Marks a test that fails because of a daemon bug reported to the team: it runs as an
    expected failure (so that the suite stays usable) until the bug is fixed; then it passes,
    which unittest reports as an "unexpected success" and a failed run: remove the marker.
    GSK_ENVTESTS_STRICT=1 runs these tests as ordinary ones."""
    def decorate(test):
        test.known_bug = description
        return test if STRICT else unittest.expectedFailure(test)
    return decorate


# --- wheels and indexes --------------------------------------------------------------------------

def build_wheels(out_dir, extra=0):
    """The make_wheels.py set (plus gsk-pkg-000.. with extra); returns the directory."""
    make_wheels.build_all(out_dir, extra=extra)
    return out_dir


def write_big_wheel(out_dir, name, version, size_bytes, seed=0):
    """A py3-none-any wheel holding `size_bytes` of incompressible data (stored, not deflated):
    installs to about that many bytes, to exercise the disk budget."""
    mod = make_wheels.dist_name(name)
    info = f"{mod}-{version}.dist-info"
    data = random.Random(f"{name}-{version}-{seed}").randbytes(size_bytes)
    members = [
        (f"{mod}/__init__.py", f'__version__ = "{version}"\n'.encode()),
        (f"{mod}/blob.bin", data),
        (f"{info}/METADATA", make_wheels.metadata_text(name, version, []).encode()),
        (f"{info}/WHEEL", make_wheels.wheel_text().encode()),
        (f"{info}/top_level.txt", (mod + "\n").encode()),
    ]
    record = "".join(f"{p},{make_wheels.record_hash(d)},{len(d)}\n" for p, d in members)
    members.append((f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode()))
    path = os.path.join(out_dir, f"{mod}-{version}-{make_wheels.TAG}.whl")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for arcname, payload in members:
            zi = zipfile.ZipInfo(arcname, date_time=make_wheels.ZIP_EPOCH)
            zi.external_attr = 0o100644 << 16
            zi.create_system = 3
            zf.writestr(zi, payload)
    return path


def write_package_wheel(out_dir, name, version, files, requires=()):
    """A py3-none-any wheel of project `name` holding `files` ({path in the wheel: text}, e.g.
    {"my_pkg/__init__.py": "..."}), with make_wheels.py's metadata; returns its path."""
    info = f"{make_wheels.dist_name(name)}-{version}.dist-info"
    tops = sorted({p.split("/")[0].split(".")[0] for p in files})
    members = [(p, text.encode("utf-8")) for p, text in sorted(files.items())]
    members += [
        (f"{info}/METADATA", make_wheels.metadata_text(name, version, list(requires)).encode()),
        (f"{info}/WHEEL", make_wheels.wheel_text().encode()),
        (f"{info}/top_level.txt", "".join(t + "\n" for t in tops).encode()),
    ]
    record = "".join(f"{p},{make_wheels.record_hash(d)},{len(d)}\n" for p, d in members)
    members.append((f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode()))
    path = os.path.join(out_dir, f"{make_wheels.dist_name(name)}-{version}-{make_wheels.TAG}.whl")
    with zipfile.ZipFile(path, "w") as zf:
        for arcname, payload in members:
            zi = zipfile.ZipInfo(arcname, date_time=make_wheels.ZIP_EPOCH)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o100644 << 16
            zi.create_system = 3
            zf.writestr(zi, payload)
    return path


class _ControlledHandler(local_index.IndexHandler):
    """local_index's handler, but every request first goes through server.admit()."""

    def _route(self, head_only):
        self.server.admit(self.path)
        super()._route(head_only)

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # pip (or its process) went away while we held its request


class ControlledIndex(local_index.IndexServer):
    """A local index whose answers can be delayed (`delay` seconds each) or held until
    release(). `requests` lists the paths asked for; `first_request` is set by the first one.
    pip gives up on a read after 15 s and retries, so hold requests for less than that unless
    the test wants the retries."""

    def __init__(self, directory, delay=0.0, held=False):
        super().__init__(directory)
        self.RequestHandlerClass = _ControlledHandler
        self.delay = delay
        self._open = threading.Event()
        if not held:
            self._open.set()
        self._lock = threading.Lock()
        self.requests = []
        self.first_request = threading.Event()

    def admit(self, path):
        with self._lock:
            self.requests.append(path)
        self.first_request.set()
        if self.delay:
            time.sleep(self.delay)
        self._open.wait(HOLD_MAX)

    def hold(self):
        self._open.clear()

    def release(self):
        self._open.set()

    def wait_for_request(self, timeout):
        return self.first_request.wait(timeout)

    def stop(self):
        self.release()
        super().stop()


# --- interpreters --------------------------------------------------------------------------------

def minor_of(version):
    return ".".join(version.split(".")[:2])


def usable_minors(daemon):
    """{"3.11": path, ...}: the first usable interpreter of each minor version, as the daemon
    discovered them (GET /api/v1/status), in the daemon's order of preference."""
    r = daemon.get("/api/v1/status")
    assert r.status == 200, r
    found = {}
    for it in r.json.get("interpreters", []):
        if it.get("usable") and it.get("version"):
            found.setdefault(minor_of(it["version"]), it["path"])
    return found


def preferred_minor(minors):
    """The minor version of the Python running the tests if the daemon can use it, else the
    newest one it can use; None when there is none."""
    mine = "%d.%d" % sys.version_info[:2]
    if mine in minors:
        return mine
    if not minors:
        return None
    return max(minors, key=lambda m: tuple(int(p) for p in m.split(".")))


def pyenv_pythons():
    """{minor: path} of the pyenv interpreters present on this machine (maybe none)."""
    out = {}
    versions = os.path.join(PYENV_ROOT, "versions")
    try:
        names = sorted(os.listdir(versions))
    except OSError:
        return out
    for name in names:
        if not re.fullmatch(r"3\.\d+\.\d+", name):
            continue
        python = os.path.join(versions, name, "bin", "python3")
        if os.access(python, os.X_OK):
            out[minor_of(name)] = python
    return out


# --- inside an env -------------------------------------------------------------------------------

def run_in_env(env_dir, code, timeout=PROC_TIMEOUT):
    """Runs `code` with ENV/bin/python -I; returns stdout (stripped); raises on failure."""
    python = os.path.join(env_dir, "bin", "python")
    p = subprocess.run([python, "-I", "-c", code], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout,
                       env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
    if p.returncode != 0:
        raise AssertionError(f"{python} -c {code!r} exited {p.returncode}:\n{p.stdout}")
    return p.stdout.strip()


DISTRIBUTIONS_CODE = (
    "import json, importlib.metadata as m; "
    "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version "
    "for d in m.distributions()}))")


def env_distributions(env_dir):
    """{normalized name: version} of what is installed in the env."""
    return json.loads(run_in_env(env_dir, DISTRIBUTIONS_CODE))
