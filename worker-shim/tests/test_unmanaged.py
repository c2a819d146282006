"""`worker start` / `worker stop` / `worker logs`: URLs, names, pid files, the daemon."""

import os
import subprocess
import sys
import tempfile
import time
import unittest

from giskard_worker_shim import daemon, unmanaged
from giskard_worker_shim.unmanaged import UsageError
from tests.support import TIMEOUT, FakeWsServer, Shim, shim_env


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


class PureTest(unittest.TestCase):
    def test_endpoint_url(self):
        cases = {
            "http://localhost:40051": "ws://localhost:40051/api/v1/workers/connect",
            "http://hub:9000/": "ws://hub:9000/api/v1/workers/connect",
            "https://hub.example.com/gsk": "wss://hub.example.com/gsk/api/v1/workers/connect",
            "ws://h:1/api/v1/workers/connect": "ws://h:1/api/v1/workers/connect",
            "wss://[::1]:8443": "wss://[::1]:8443/api/v1/workers/connect",
        }
        for url, expected in cases.items():
            self.assertEqual(unmanaged.endpoint_url(url), expected)
        for bad in ("localhost:40051", "ftp://h/", "http://"):
            with self.subTest(bad), self.assertRaises(UsageError):
                unmanaged.endpoint_url(bad)

    def test_names(self):
        for good in ("a", "my-laptop", "kernel_3.11", "X" * 64):
            self.assertEqual(unmanaged.check_name(good), good)
        for bad in ("", "-x", "a/b", "../x", "a b", "X" * 65):
            with self.subTest(bad), self.assertRaises(UsageError):
                unmanaged.check_name(bad)

    def test_home_and_paths(self):
        env = {"GSK_HOME": "/h"}
        self.assertEqual(unmanaged.pid_path(env, "n"), "/h/run/worker-n.pid")
        self.assertEqual(unmanaged.log_path(env, "n"), "/h/run/worker-n.log")
        self.assertEqual(unmanaged.home_dir({}), os.path.expanduser("~/giskard-home"))

    def test_relative_home_is_made_absolute(self):
        self.assertEqual(unmanaged.run_dir({"GSK_HOME": "rel"}), os.path.abspath("rel/run"))

    def test_our_command_lines(self):
        ours = (["python3", "-m", "giskard_worker_shim", "worker", "start", "--name", "a"],
                ["/v/bin/python", "/v/bin/giskard-worker", "worker", "start", "-d"],
                ["python", "-X", "dev", "-m", "giskard_worker_shim", "worker", "start"])
        theirs = (["python3", "-m", "unittest"], ["giskard-worker", "worker", "stop"],
                  ["/usr/bin/giskard", "worker", "start"], [])
        original = daemon.command_line
        self.addCleanup(setattr, daemon, "command_line", original)
        for argv in ours + theirs:
            daemon.command_line = lambda pid, argv=argv: argv
            self.assertEqual(daemon.is_our_worker(1), argv in ours, argv)

    def test_tail(self):
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write("".join("line %d\n" % i for i in range(100000)))
        self.addCleanup(os.unlink, f.name)
        self.assertEqual(daemon.tail(f.name, 3), ["line 99997\n", "line 99998\n", "line 99999\n"])
        self.assertEqual(daemon.tail(f.name, 0), [])


class CommandTest(unittest.TestCase):
    def setUp(self):
        home = tempfile.TemporaryDirectory(prefix="gsk-home-")
        self.addCleanup(home.cleanup)
        self.home = home.name
        self.run_dir = os.path.join(self.home, "run")
        self.server = FakeWsServer()
        self.addCleanup(self.server.close)

    def cli(self, *args):
        return subprocess.run([sys.executable, "-m", "giskard_worker_shim"] + list(args),
                              env=shim_env(GSK_HOME=self.home), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=TIMEOUT)

    def start_daemon(self, name):
        result = self.cli("worker", "start", "-d", "-k", "key", "-u", self.server.url,
                          "--name", name)
        self.assertEqual(result.returncode, 0, result.stderr)
        pid = daemon.read_pid(os.path.join(self.run_dir, "worker-%s.pid" % name))
        self.assertIsNotNone(pid)
        self.addCleanup(self.kill_if_left, pid)
        self.assertIn("pid %d" % pid, result.stdout)
        return pid

    def kill_if_left(self, pid):
        if daemon.is_our_worker(pid):  # a daemon this test started and did not stop
            os.kill(pid, 9)

    def wait_for_log(self, name, text):
        path = os.path.join(self.run_dir, "worker-%s.log" % name)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if os.path.exists(path) and text in read(path):
                return True
            time.sleep(0.02)
        return False

    def test_daemon_start_logs_stop(self):
        pid = self.start_daemon("d1")
        self.assertNotEqual(pid, os.getpid())
        self.assertTrue(daemon.is_our_worker(pid))
        peer, hello = self.server.register()
        self.assertEqual(hello["env"]["pid"], pid)
        self.assertTrue(self.wait_for_log("d1", "Connected to Giskard server.\n"))

        logs = self.cli("worker", "logs", "-n", "1")
        self.assertEqual((logs.returncode, logs.stdout), (0, "Connected to Giskard server.\n"))
        again = self.cli("worker", "start", "-d", "-k", "key", "-u", self.server.url,
                         "--name", "d1")
        self.assertEqual(again.returncode, 2)
        self.assertIn("already running (pid %d)" % pid, again.stderr)

        stop = self.cli("worker", "stop")
        self.assertEqual(stop.returncode, 0, stop.stderr)
        self.assertEqual(stop.stdout, "Stopped worker d1 (pid %d).\n" % pid)
        self.assertFalse(daemon.is_our_worker(pid))
        self.assertFalse(os.path.exists(os.path.join(self.run_dir, "worker-d1.pid")))
        self.assertIn("received SIGTERM", read(os.path.join(self.run_dir, "worker-d1.log")))
        self.assertEqual(peer.expect_close(), 1000)

    def test_stop_all(self):
        # Nobody accepts: both daemons are stuck in the WebSocket handshake, and stop anyway.
        pids = [self.start_daemon(name) for name in ("a1", "a2")]
        ambiguous = self.cli("worker", "stop")
        self.assertEqual(ambiguous.returncode, 2)
        self.assertIn("a1, a2", ambiguous.stderr)
        stop = self.cli("worker", "stop", "-a")
        self.assertEqual(stop.returncode, 0, stop.stderr)
        for name, pid in zip(("a1", "a2"), pids):
            self.assertIn("Stopped worker %s (pid %d)." % (name, pid), stop.stdout)
            self.assertFalse(daemon.is_our_worker(pid))
        self.assertEqual(sorted(os.listdir(self.run_dir)), ["worker-a1.log", "worker-a2.log"])

    def test_foreground_worker_has_a_pid_file_and_stops(self):
        shim = Shim(["worker", "start", "-k", "key", "-u", self.server.url, "--name", "fg"],
                    shim_env(GSK_HOME=self.home))
        self.addCleanup(shim.cleanup)
        peer, _ = self.server.register()
        self.assertTrue(shim.wait_for_stdout("Connected to Giskard server."))
        pid_file = os.path.join(self.run_dir, "worker-fg.pid")
        self.assertEqual(daemon.read_pid(pid_file), shim.pid)
        stop = self.cli("worker", "stop", "--name", "fg")
        self.assertEqual(stop.returncode, 0, stop.stderr)
        self.assertEqual(shim.wait(), 0)
        self.assertFalse(os.path.exists(pid_file))
        self.assertEqual(peer.expect_close(), 1000)

    def test_nothing_running_and_stale_pid_files(self):
        self.assertEqual(self.cli("worker", "stop").stdout, "No worker is running.\n")
        os.makedirs(self.run_dir)
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        self.addCleanup(other.wait, TIMEOUT)
        self.addCleanup(other.kill)
        pid_file = os.path.join(self.run_dir, "worker-old.pid")
        daemon.write_pid_file(pid_file, other.pid)
        stop = self.cli("worker", "stop", "-a")
        self.assertEqual(stop.stdout, "Worker old is not running.\n")
        self.assertIsNone(other.poll())  # not ours: left alone
        self.assertFalse(os.path.exists(pid_file))

    def test_logs_without_a_daemon(self):
        logs = self.cli("worker", "logs", "--name", "nope")
        self.assertEqual(logs.returncode, 2)
        self.assertIn("worker-nope.log", logs.stderr)


if __name__ == "__main__":
    unittest.main()
