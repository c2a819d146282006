"""Test case bases: DaemonTestCase (a temporary directory per class, daemons and index servers
that are always stopped, checks once the class is done) and EnvTestCase (plus the test wheels and
helpers for env builds)."""

import os
import shutil
import tempfile
import time
import unittest

from .daemon import Daemon, integrity_check
from .documents import BASE_CONFIG, config_toml
from .environments import ControlledIndex, build_wheels, preferred_minor, usable_minors
from .processes import kill_leftovers, wait_no_process_mentioning
from .settings import BUILD_TIMEOUT


class DaemonTestCase(unittest.TestCase):
    """A temporary directory per class (cls.tmp), and a class cleanup that runs even when
    setUpClass fails half-way: it stops every daemon of the class (a non-zero exit code is a
    failure) and every index server, then checks what the class says:

    CHECK_INTEGRITY: PRAGMA integrity_check of the database of every state directory.
    CHECK_LEFTOVERS: no process left whose command line names the temporary directory (they
        are killed, and reported).

    On a failure the temporary directory is kept (its path is in the message). Subclasses that
    check more override cleanup_class() and call super().cleanup_class() first."""

    TMP_PREFIX = "gsk-e2e-"
    CHECK_INTEGRITY = True
    CHECK_LEFTOVERS = False

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=cls.TMP_PREFIX)
        cls._daemons = []
        cls._state_dirs = []
        cls._servers = []
        cls.addClassCleanup(cls.cleanup_class)

    @classmethod
    def cleanup_class(cls):
        failures = []
        for d in cls._daemons:
            if d.running():
                try:
                    rc = d.stop()
                except AssertionError as e:
                    failures.append(str(e))
                    continue
                if rc != 0:
                    failures.append(f"daemon pid {d.pid} exited with {rc}:\n{d.log()}")
        for s in cls._servers:
            s.stop()
        if cls.CHECK_INTEGRITY:
            for state_dir in cls._state_dirs:
                if os.path.exists(os.path.join(state_dir, "supervisor.db")):
                    result = integrity_check(state_dir)
                    if result != ["ok"]:
                        failures.append(f"PRAGMA integrity_check on {state_dir}: {result}")
        if cls.CHECK_LEFTOVERS:
            left = wait_no_process_mentioning(cls.tmp, 10)
            if left:
                failures.append(f"processes still running under {cls.tmp}: {left}")
                kill_leftovers(cls.tmp)
        if failures:
            raise AssertionError(f"(kept {cls.tmp}) " + "\n".join(failures))
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def new_dir(cls, name):
        """A new directory NAME-XXXX in the class's temporary directory."""
        return tempfile.mkdtemp(prefix=name + "-", dir=cls.tmp)

    @classmethod
    def new_state_dir(cls, name=None):
        path = cls.new_dir(name or "state")
        cls._state_dirs.append(path)
        return path

    @classmethod
    def new_daemon(cls, state_dir=None, **kw):
        """A Daemon (not started) on a new state directory unless `state_dir` is given; `kw`
        goes to Daemon (config_text, admin_socket, binary)."""
        d = Daemon(state_dir or cls.new_state_dir(), **kw)
        cls._daemons.append(d)
        return d

    @classmethod
    def start_daemon(cls, config_text=BASE_CONFIG, state_dir=None, **kw):
        """new_daemon(state_dir, config_text=config_text, ...), started."""
        return cls.new_daemon(state_dir, config_text=config_text, **kw).start()

    def assertHealthy(self, daemon):
        self.assertTrue(daemon.running(), "daemon died:\n" + daemon.log())
        r = daemon.get("/healthz", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "ok"})

    def assertError(self, resp, status, code=None):
        self.assertEqual(resp.status, status, resp)
        self.assertEqual(resp.header("Content-Type"), "application/json", resp)
        self.assertIsInstance(resp.json, dict, resp)
        err = resp.json.get("error")
        self.assertIsInstance(err, dict, resp)
        self.assertIsInstance(err.get("message"), str, resp)
        self.assertTrue(err["message"], resp)
        self.assertIsInstance(err.get("details"), dict, resp)
        if code is not None:
            self.assertEqual(err.get("code"), code, resp)


class EnvTestCase(DaemonTestCase):
    """For env builds: the test wheels in cls.wheels, index servers, REST helpers; at the end,
    no build process may be left running."""

    TMP_PREFIX = "gsk-envs-"
    CHECK_INTEGRITY = False
    CHECK_LEFTOVERS = True
    EXTRA_WHEELS = 12  # gsk-pkg-000..: one per test keeps the tests' env hashes apart

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wheels = build_wheels(os.path.join(cls.tmp, "wheels"), extra=cls.EXTRA_WHEELS)

    @classmethod
    def pick_python(cls, daemon):
        """The Python version the tests of this class build with (see preferred_minor), or
        SkipTest when the daemon found no usable interpreter."""
        minors = usable_minors(daemon)
        py = preferred_minor(minors)
        if py is None:
            raise unittest.SkipTest("the daemon found no usable Python interpreter")
        return py

    @classmethod
    def start_index(cls, directory=None, delay=0.0, held=False):
        server = ControlledIndex(directory or cls.wheels, delay=delay, held=held).start()
        cls._servers.append(server)
        return server

    @classmethod
    def offline_config(cls, **kw):
        return config_toml(find_links=[cls.wheels], offline=True, **kw)

    # --- REST helpers --------------------------------------------------------------------------

    def create(self, daemon, doc, expect=(201,)):
        r = daemon.post("/api/v1/kernels", doc)
        self.assertIn(r.status, expect, r)
        return r.json

    def kernel(self, daemon, name):
        r = daemon.get(f"/api/v1/kernels/{name}")
        self.assertEqual(r.status, 200, r)
        return r.json

    def delete(self, daemon, name):
        r = daemon.request("DELETE", f"/api/v1/kernels/{name}")
        self.assertEqual(r.status, 200, r)

    def wait_ready(self, daemon, name, timeout=BUILD_TIMEOUT):
        k = daemon.wait_status(name, timeout=timeout)
        self.assertEqual(k["status"], "ready",
                         f"{k}\n--- build log ---\n{daemon.build_log(name)[-4000:]}")
        self.assertIsNone(k["lastError"], k)
        return k

    def wait_failed(self, daemon, name, timeout=BUILD_TIMEOUT):
        k = daemon.wait_status(name, timeout=timeout)
        self.assertEqual(k["status"], "failed", k)
        self.assertIsInstance(k["lastError"], str, k)
        self.assertTrue(k["lastError"], k)
        return k

    def env_events(self, daemon, env_hash, kind=None):
        events = daemon.events(subject="env/" + env_hash)
        return [e for e in events if kind is None or e["kind"] == kind]

    def env_dir(self, daemon, env_hash):
        return os.path.join(daemon.state_dir, "envs", env_hash[:32])

    def wait_gone(self, path, timeout=10.0):
        deadline = time.monotonic() + timeout
        while os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        return not os.path.exists(path)
