"""The real shim in managed mode (a subprocess) against a fake supervisor on a Unix socket."""

import importlib.metadata
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest

from tests.support import SRC, TIMEOUT, FakeSupervisor, Shim, shim_env

TOKEN = "tok-0123456789abcdef"


def proc_start_time(pid):
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    return int(stat[stat.rfind(")") + 2:].split()[19]) / os.sysconf("SC_CLK_TCK")


def expected_packages():
    names = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            names.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
    return names


class ManagedTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="shim-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.supervisor = FakeSupervisor(os.path.join(self.dir, "s.sock"))
        self.addCleanup(self.supervisor.stop)

    def start_shim(self, grace=30, heartbeat=5, **extra):
        env = shim_env(GSK_SUPERVISOR_SOCKET=self.supervisor.path, GSK_WORKER_ID="w-42",
                       GSK_WORKER_TOKEN=TOKEN, GSK_HEARTBEAT_SECONDS=heartbeat,
                       GSK_ORPHAN_GRACE_SECONDS=grace, **extra)
        shim = Shim(["serve-managed"], env)
        self.addCleanup(shim.cleanup)
        return shim

    def assertExit(self, shim, code, timeout=TIMEOUT):
        self.assertEqual(shim.wait(timeout), code, shim.stderr())


class RegistrationTest(ManagedTestCase):
    def test_hello_carries_identity_and_environment(self):
        shim = self.start_shim()
        peer, hello = self.supervisor.register()
        self.assertEqual(hello["type"], "hello")
        self.assertEqual(hello["protocol"], 1)
        self.assertEqual(hello["workerId"], "w-42")
        self.assertEqual(hello["token"], TOKEN)
        self.assertIs(hello["reconnect"], False)
        self.assertNotIn("name", hello)
        env = hello["env"]
        self.assertEqual(env["pythonVersion"], platform.python_version())
        self.assertEqual(env["pythonExecutable"], sys.executable)
        self.assertEqual(env["implementation"], platform.python_implementation())
        self.assertEqual(env["platform"], platform.platform())
        self.assertEqual(env["machine"], platform.machine())
        self.assertEqual(env["pid"], shim.pid)
        self.assertAlmostEqual(env["processStartTime"], proc_start_time(shim.pid), places=6)
        self.assertEqual(env["shimVersion"], "0.1.0")
        names = [p["name"] for p in env["packages"]]
        self.assertEqual(names, sorted(names))
        self.assertEqual({p["name"]: p["version"] for p in env["packages"]},
                         expected_packages())
        peer.close()

    def test_requests_then_shutdown(self):
        shim = self.start_shim()
        peer, hello = self.supervisor.register()
        self.assertEqual(peer.request("r1", "ping"),
                         {"type": "reply", "id": "r1", "result": {"pong": True}})
        env = peer.request("r2", "environment")
        self.assertEqual(env["id"], "r2")
        self.assertEqual(set(env["result"]), set(hello["env"]))
        self.assertEqual(env["result"]["pid"], shim.pid)
        for method in ("load_model", "predict"):  # model errors, as the shim reports them
            reply = peer.request("r-" + method, method, {"model": "m", "rows": [[1]]})
            self.assertEqual(reply["error"]["type"], "InvalidInput")
            self.assertIn('"model" must be an absolute path', reply["error"]["message"])
            reply = peer.request("r-" + method, method, {"model": "/nonexistent/m.pkl",
                                                         "rows": [[1]]})
            self.assertEqual(reply["error"]["type"], "ModelLoadError")
            self.assertIn("/nonexistent/m.pkl", reply["error"]["message"])
            self.assertIn("Traceback", reply["error"]["traceback"])
        reply = peer.request("r3", "no_such_method")
        self.assertEqual(reply["error"]["type"], "MethodNotFound")
        peer.send({"type": "request", "id": 7, "method": "ping"})
        self.assertEqual(peer.recv()["error"]["type"], "InvalidRequest")
        peer.send({"type": "future_message", "x": 1})  # unknown types are ignored
        self.assertEqual(peer.request("r4", "shutdown"),
                         {"type": "reply", "id": "r4", "result": {"ok": True}})
        self.assertEqual(peer.expect_eof(), [])
        self.assertExit(shim, 0)

    def test_sends_heartbeats(self):
        shim = self.start_shim(heartbeat=0.2)
        peer, _ = self.supervisor.register(heartbeat_seconds=0.2)
        started = time.monotonic()
        for _ in range(3):
            peer.send({"type": "heartbeat", "ts": time.time()})
            message = peer.recv(skip_heartbeats=False)
            self.assertEqual(message["type"], "heartbeat")
            self.assertIsInstance(message["ts"], float)
        self.assertLess(time.monotonic() - started, TIMEOUT)
        shim.terminate()
        self.assertExit(shim, 0)

    def test_sigterm_exits_zero(self):
        shim = self.start_shim()
        peer, _ = self.supervisor.register()
        self.assertEqual(peer.request("r1", "ping")["result"], {"pong": True})
        shim.terminate()
        peer.expect_eof()
        self.assertExit(shim, 0)
        self.assertIn("SIGTERM", shim.stderr())

    def test_error_frame_rejects_the_worker(self):
        shim = self.start_shim()
        peer = self.supervisor.accept()
        self.assertEqual(peer.recv()["type"], "hello")
        peer.send({"type": "error", "error": {"type": "AuthenticationFailed",
                                              "message": "unknown token"}})
        peer.close()
        self.assertExit(shim, 77)
        self.assertIn("unknown token", shim.stderr())

    def test_ignores_heartbeats_and_unknown_types_before_welcome(self):
        shim = self.start_shim()
        peer = self.supervisor.accept()
        self.assertEqual(peer.recv()["type"], "hello")
        peer.send({"type": "heartbeat", "ts": 1.0})
        peer.send({"type": "from_the_future"})
        peer.send({"type": "welcome", "protocol": 1, "heartbeatSeconds": 5})
        self.assertEqual(peer.request("r1", "shutdown")["result"], {"ok": True})
        peer.expect_eof()
        self.assertExit(shim, 0)

    def test_other_protocol_version(self):
        shim = self.start_shim()
        peer = self.supervisor.accept()
        peer.recv()
        peer.send({"type": "welcome", "protocol": 2, "heartbeatSeconds": 5})
        self.assertExit(shim, 76)

    def test_token_on_an_inherited_pipe_is_read_then_closed(self):
        r, w = os.pipe()
        os.write(w, TOKEN.encode())
        os.close(w)
        pipe = "pipe:[%d]" % os.fstat(r).st_ino
        env = shim_env(GSK_SUPERVISOR_SOCKET=self.supervisor.path, GSK_WORKER_ID="w-42",
                       GSK_WORKER_TOKEN_FD=str(r))
        shim = Shim(["serve-managed"], env, pass_fds=(r,))
        os.close(r)
        self.addCleanup(shim.cleanup)
        peer, hello = self.supervisor.register()
        self.assertEqual(hello["token"], TOKEN)
        # Gone from the process once read: no descriptor, no environment variable holds it.
        fd_dir = "/proc/%d/fd" % shim.pid
        links = []
        for fd in os.listdir(fd_dir):
            try:
                links.append(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                pass  # closed meanwhile
        self.assertNotIn(pipe, links)
        with open("/proc/%d/environ" % shim.pid, "rb") as f:
            self.assertNotIn(TOKEN.encode(), f.read())
        peer.close()

    def test_unreadable_token_fd_is_a_usage_error(self):
        env = shim_env(GSK_SUPERVISOR_SOCKET=self.supervisor.path, GSK_WORKER_ID="w-42",
                       GSK_WORKER_TOKEN_FD="97")
        shim = Shim(["serve-managed"], env)
        self.addCleanup(shim.cleanup)
        self.assertExit(shim, 64)
        self.assertIn("GSK_WORKER_TOKEN_FD=97 cannot be read", shim.stderr())

    def test_missing_settings(self):
        shim = Shim(["serve-managed"], shim_env(GSK_SUPERVISOR_SOCKET=self.supervisor.path))
        self.addCleanup(shim.cleanup)
        self.assertExit(shim, 64)
        self.assertIn("GSK_WORKER_ID is not set", shim.stderr())

    def test_log_lines_have_timestamps(self):
        shim = self.start_shim()
        peer, _ = self.supervisor.register()
        peer.request("r1", "shutdown")
        peer.expect_eof()
        self.assertExit(shim, 0)
        lines = [l for l in shim.stderr().splitlines() if l]
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4} [A-Z]+ ")


class FastExitTest(ManagedTestCase):
    """A stopped worker ends with os._exit: its log is flushed, but the interpreter's
    finalization (here: an atexit handler that sitecustomize installs) does not run."""

    SITECUSTOMIZE = ("import atexit, os\n"
                     "atexit.register(lambda: open(os.environ['GSK_TEST_ATEXIT_MARKER'] + '.%d'"
                     " % os.getpid(), 'w').close())\n")

    def test_stopped_worker_skips_finalization(self):
        site = os.path.join(self.dir, "site")
        os.makedirs(site)
        with open(os.path.join(site, "sitecustomize.py"), "w") as f:
            f.write(self.SITECUSTOMIZE)
        marker = os.path.join(self.dir, "atexit")
        env = shim_env(GSK_SUPERVISOR_SOCKET=self.supervisor.path, GSK_WORKER_ID="w-42",
                       GSK_WORKER_TOKEN=TOKEN, GSK_TEST_ATEXIT_MARKER=marker)
        env["PYTHONPATH"] = SRC + os.pathsep + site
        for stop in ("shutdown", "sigterm"):
            with self.subTest(stop=stop):
                shim = Shim(["serve-managed"], env)
                self.addCleanup(shim.cleanup)
                peer, _ = self.supervisor.register()
                if stop == "shutdown":
                    peer.request("r1", "shutdown")
                else:
                    shim.terminate()
                peer.expect_eof()
                self.assertExit(shim, 0)
                self.assertTrue(shim.stderr().rstrip().endswith("stopped"), shim.stderr())
                self.assertFalse(os.path.exists("%s.%d" % (marker, shim.pid)))
        # The marker does appear when an interpreter exits normally.
        subprocess.run([sys.executable, "-c", "pass"], env=env, timeout=TIMEOUT, check=True)
        self.assertEqual(len([n for n in os.listdir(self.dir) if n.startswith("atexit.")]), 1)


class PackagesFileTest(ManagedTestCase):
    """.gsk-packages.json in a real virtualenv (sys.prefix): written by write-packages, read by
    hello, ignored by the environment request."""

    def setUp(self):
        super().setUp()
        self.venv = os.path.join(self.dir, "venv")
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", self.venv],
                       stdout=subprocess.DEVNULL, timeout=120, check=True)
        self.python = os.path.join(self.venv, "bin", "python")
        self.file = os.path.join(self.venv, ".gsk-packages.json")

    def scanned(self):
        code = ("import json, sys\nfrom giskard_worker_shim import environment\n"
                "sys.stdout.write(json.dumps(environment.installed_packages()))")
        result = subprocess.run([self.python, "-c", code], env=shim_env(),
                                stdout=subprocess.PIPE, timeout=TIMEOUT, check=True)
        return json.loads(result.stdout.decode())

    def hello_and_environment(self):
        env = shim_env(GSK_SUPERVISOR_SOCKET=self.supervisor.path, GSK_WORKER_ID="w-42",
                       GSK_WORKER_TOKEN=TOKEN)
        shim = Shim(["serve-managed"], env, python=self.python)
        self.addCleanup(shim.cleanup)
        peer, hello = self.supervisor.register()
        self.assertEqual(hello["env"]["pythonExecutable"], self.python)
        environment = peer.request("r1", "environment")["result"]
        peer.request("r2", "shutdown")
        peer.expect_eof()
        self.assertExit(shim, 0)
        return hello["env"]["packages"], environment["packages"], shim.stderr()

    def test_write_packages_then_hello_reads_the_file(self):
        result = subprocess.run([self.python, "-m", "giskard_worker_shim", "write-packages",
                                 self.file], env=shim_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True,
                                timeout=TIMEOUT)
        self.assertEqual(result.returncode, 0, result.stderr)
        scanned = self.scanned()
        self.assertEqual(result.stdout, "wrote %d packages to %s\n" % (len(scanned), self.file))
        with open(self.file, encoding="utf-8") as f:
            self.assertEqual(json.load(f), scanned)
        self.assertEqual([n for n in os.listdir(self.venv) if n.endswith(".tmp")], [])
        # hello takes the list from the file (here a fake one); `environment` scans.
        fake = [{"name": "fake-package", "version": "9.9"}]
        with open(self.file, "w", encoding="utf-8") as f:
            json.dump(fake, f)
        hello_packages, environment_packages, _ = self.hello_and_environment()
        self.assertEqual(hello_packages, fake)
        self.assertEqual(environment_packages, scanned)

    def test_missing_or_bad_file_means_a_scan(self):
        hello_packages, _, stderr = self.hello_and_environment()
        self.assertEqual(hello_packages, self.scanned())
        self.assertNotIn("package list", stderr)
        with open(self.file, "w", encoding="utf-8") as f:
            f.write('{"not": "a list"}')
        hello_packages, _, stderr = self.hello_and_environment()
        self.assertEqual(hello_packages, self.scanned())
        self.assertIn("is not a package list", stderr)


class ReconnectTest(ManagedTestCase):
    def test_reconnects_to_a_restarted_supervisor(self):
        shim = self.start_shim(grace=10)
        peer, first = self.supervisor.register()
        self.supervisor.stop()  # the supervisor "crashes": socket file gone, connection closed
        peer.close()
        time.sleep(0.3)  # let the shim fail a few dials (the backoff under test)
        self.assertIsNone(shim.proc.poll())
        self.supervisor.listen()
        peer, again = self.supervisor.register()
        self.assertIs(again["reconnect"], True)
        self.assertEqual(again["token"], first["token"])
        self.assertEqual(again["workerId"], first["workerId"])
        self.assertEqual(again["env"]["pid"], shim.pid)
        self.assertEqual(peer.request("r1", "ping")["result"], {"pong": True})
        peer.request("r2", "shutdown")
        peer.expect_eof()
        self.assertExit(shim, 0)

    def test_orphan_exits_75_after_grace(self):
        grace = 1.5
        shim = self.start_shim(grace=grace)
        peer, _ = self.supervisor.register()
        self.supervisor.stop()
        dropped = time.monotonic()
        peer.close()
        self.assertExit(shim, 75, timeout=grace + 10)
        elapsed = time.monotonic() - dropped
        self.assertGreaterEqual(elapsed, grace - 0.1)
        self.assertLess(elapsed, grace + 5)
        self.assertIn("exiting", shim.stderr())

    def test_sigterm_while_orphaned_exits_zero(self):
        shim = self.start_shim(grace=30)
        peer, _ = self.supervisor.register()
        self.supervisor.stop()
        peer.close()
        time.sleep(0.3)
        shim.terminate()
        self.assertExit(shim, 0)

    def test_oversized_frame_closes_the_connection(self):
        shim = self.start_shim(grace=10)
        peer, _ = self.supervisor.register()
        self.assertEqual(peer.request("r0", "ping")["result"], {"pong": True})
        peer.send_raw(struct.pack(">I", 16 * 1024 * 1024 + 1))
        seen = peer.expect_eof()
        self.assertEqual([m["type"] for m in seen if m["type"] != "heartbeat"], ["error"])
        peer, again = self.supervisor.register()
        self.assertIs(again["reconnect"], True)
        peer.request("r1", "shutdown")
        peer.expect_eof()
        self.assertExit(shim, 0)

    def test_silent_supervisor_is_dropped(self):
        shim = self.start_shim(grace=10, heartbeat=0.2)
        peer, _ = self.supervisor.register(heartbeat_seconds=0.2)
        # Never send anything: after 3 intervals the shim gives up on this connection.
        peer.expect_eof()
        peer, again = self.supervisor.register(heartbeat_seconds=5)
        self.assertIs(again["reconnect"], True)
        peer.request("r1", "shutdown")
        peer.expect_eof()
        self.assertExit(shim, 0)


if __name__ == "__main__":
    unittest.main()
