"""`giskard worker start` / `stop` / `logs`: URLs, names, run files, the daemon, as a user runs
them (real subprocesses, a stdlib WebSocket server on 127.0.0.1, a temporary GSK_HOME)."""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from giskard_worker_shim import connection, daemon, runfiles
from giskard_worker_shim.runfiles import Instance, UsageError
from tests.support import TIMEOUT, FakeWsServer, Shim, http_response, shim_env


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
            self.assertEqual(connection.endpoint_url(url), expected)
        for bad in ("localhost:40051", "ftp://h/", "http://", "http://h:99999", "http://h:x"):
            with self.subTest(bad), self.assertRaises(UsageError):
                connection.endpoint_url(bad)

    def test_http_base_for_model_blobs(self):
        cases = {
            "ws://localhost:40051/api/v1/workers/connect": "http://localhost:40051",
            "wss://hub.example.com/gsk/api/v1/workers/connect?x=1": "https://hub.example.com/gsk",
            "wss://[::1]:8443/api/v1/workers/connect": "https://[::1]:8443",
        }
        for endpoint, expected in cases.items():
            self.assertEqual(connection.http_base(endpoint), expected)

    def test_first_generation_url(self):
        self.assertEqual(connection.first_generation_url(None, None), "http://localhost:40051")
        self.assertEqual(connection.first_generation_url("10.0.0.5", None),
                         "http://10.0.0.5:40051")
        self.assertEqual(connection.first_generation_url(None, 9000), "http://localhost:9000")
        self.assertEqual(connection.first_generation_url("::1", 1), "http://[::1]:1")
        for host, port in (("http://h", None), ("h/x", None), ("h", 0), ("h", 70000),
                           ("h:40051", None), ("[::1]", None)):
            with self.subTest(host=host, port=port), self.assertRaises(UsageError):
                connection.first_generation_url(host, port)

    def test_names(self):
        for good in ("a", "my-laptop", "kernel_3.11", "X" * 64):
            self.assertEqual(runfiles.check_name(good), good)
        for bad in ("", "-x", "a/b", "../x", "a b", "a@b", "X" * 65):
            with self.subTest(bad), self.assertRaises(UsageError):
                runfiles.check_name(bad)

    def test_default_name_is_the_sanitized_host_name(self):
        cases = {"alice-laptop": "alice-laptop", "MacBook Pro (2)": "MacBook-Pro-2-",
                 "_x.local": "x.local", "é": "worker", "": "worker", "h" * 80: "h" * 64}
        for host, expected in cases.items():
            self.assertEqual(runfiles.default_name(host), expected, host)
        self.assertEqual(runfiles.check_name(runfiles.default_name()), runfiles.default_name())

    def test_home_and_paths(self):
        env = {"GSK_HOME": "/h"}
        instance = Instance("n", "0123abcd")
        self.assertEqual(runfiles.pid_path(env, instance), "/h/run/worker-n@0123abcd.pid")
        self.assertEqual(runfiles.log_path(env, instance), "/h/run/worker-n@0123abcd.log")
        self.assertEqual(runfiles.latest_log_path(env), "/h/run/ml-worker.log")
        self.assertEqual(runfiles.models_cache_dir(env), "/h/cache/models")
        self.assertEqual(runfiles.home_dir({}), os.path.expanduser("~/giskard-home"))
        self.assertEqual(runfiles.run_dir({"GSK_HOME": "rel"}), os.path.abspath("rel/run"))

    def test_a_worker_is_one_interpreter_server_and_name(self):
        ids = {runfiles.instance_id(n, e, p) for n in ("a", "b") for e in ("ws://h:1", "ws://h:2")
               for p in ("/v1/bin/python", "/v2/bin/python")}
        self.assertEqual(len(ids), 8)
        self.assertEqual(runfiles.instance_id("a", "ws://h:1", "/p"),
                         runfiles.instance_id("a", "ws://h:1", "/p"))
        self.assertRegex(runfiles.instance_id("a", "ws://h:1"), r"^[0-9a-f]{8}$")

    def test_listing_run_files(self):
        with tempfile.TemporaryDirectory() as home:
            env = {"GSK_HOME": home}
            os.makedirs(runfiles.run_dir(env))
            for name in ("worker-a@0123abcd.pid", "worker-a.b-c@ffffffff.log",
                         "worker-a@0123abcd.log", "worker-old.pid", "worker-x@123.pid",
                         "ml-worker.log", "worker-@0123abcd.pid"):
                open(os.path.join(runfiles.run_dir(env), name), "w").close()
            self.assertEqual(runfiles.listed(env, "pid"), [Instance("a", "0123abcd")])
            self.assertEqual(runfiles.listed(env, "log"),
                             [Instance("a", "0123abcd"), Instance("a.b-c", "ffffffff")])

    def test_latest_log_link_is_replaced(self):
        with tempfile.TemporaryDirectory() as home:
            env = {"GSK_HOME": home}
            os.makedirs(runfiles.run_dir(env))
            link = runfiles.latest_log_path(env)
            with open(link, "w") as f:
                f.write("a regular file from another tool\n")
            for name in ("worker-a@00000000.log", "worker-b@11111111.log"):
                runfiles.link_latest_log(env, os.path.join(runfiles.run_dir(env), name))
                self.assertEqual(os.readlink(link), name)
            self.assertEqual(sorted(os.listdir(runfiles.run_dir(env))), ["ml-worker.log"])

    def test_our_command_lines(self):
        ours = (["python3", "-m", "giskard_worker_shim", "worker", "start", "--name", "a"],
                ["/v/bin/python", "/v/bin/giskard-worker", "worker", "start", "-d"],
                ["/v/bin/python", "/v/bin/giskard", "worker", "start", "-h", "h"],
                ["python", "-X", "dev", "-m", "giskard_worker_shim", "worker", "start"])
        theirs = (["python3", "-m", "unittest"], ["giskard-worker", "worker", "stop"],
                  ["/usr/bin/giskard", "worker", "logs"], ["/x/giskardx", "worker", "start"],
                  [])
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
        self.env = {"GSK_HOME": self.home}
        self.run_dir = os.path.join(self.home, "run")
        self.server = FakeWsServer()
        self.addCleanup(self.server.close)

    def popen(self, *args, python=None, **env):
        return subprocess.Popen([python or sys.executable, "-m", "giskard_worker_shim"]
                                + list(args), env=shim_env(GSK_HOME=self.home, **env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, universal_newlines=True)

    def cli(self, *args, **env):
        proc = self.popen(*args, **env)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    def instance(self, name, url=None, python=None):
        endpoint = connection.endpoint_url(url or self.server.url)
        return Instance(name, runfiles.instance_id(name, endpoint, python or sys.executable))

    def start_daemon(self, name, *extra, register=True, python=None, **env):
        """`worker start -d`; the fake server registers the worker while the command waits.
        Returns (pid, result, peer, hello)."""
        proc = self.popen("worker", "start", "-d", "-k", "key", "-u", self.server.url,
                          "--name", name, *extra, python=python, **env)
        peer, hello = self.server.register() if register else (None, None)
        if hello is not None:
            self.addCleanup(self.kill_if_left, hello["env"]["pid"])
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
        pid = daemon.read_pid(runfiles.pid_path(self.env, self.instance(name, python=python)))
        if pid is not None:
            self.addCleanup(self.kill_if_left, pid)
        self.assertEqual(proc.returncode, 0, stderr)
        self.assertIsNotNone(pid, stdout + stderr)
        self.assertIn("(pid %d)" % pid, stdout)
        if hello is not None:
            self.assertEqual(hello["env"]["pid"], pid)
        return pid, subprocess.CompletedProcess(proc.args, 0, stdout, stderr), peer, hello

    def answer_close(self, peer):
        """Answers the worker's close frame on a thread, so that a stop does not wait for the
        worker's linger; join() returns the close code."""
        result = []
        thread = threading.Thread(target=lambda: result.append(peer.expect_close()), daemon=True)
        thread.start()

        def join():
            thread.join(TIMEOUT)
            return result[0] if result else None
        return join

    def kill_if_left(self, pid):
        if daemon.is_our_worker(pid):  # a daemon this test started and did not stop
            os.kill(pid, signal.SIGKILL)

    def wait_for_file(self, path, text):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if os.path.exists(path) and text in read(path):
                return True
            time.sleep(0.02)
        return False

    def test_daemon_start_logs_stop(self):
        pid, result, peer, hello = self.start_daemon("d1")
        self.assertNotEqual(pid, os.getpid())
        self.assertTrue(daemon.is_our_worker(pid))
        self.assertTrue(result.stdout.startswith("Connected to Giskard server.\n"), result.stdout)
        self.assertIn("giskard_worker_shim worker stop --name d1", result.stdout)
        log = runfiles.log_path(self.env, self.instance("d1"))
        self.assertIn(log, result.stdout)
        self.assertTrue(self.wait_for_file(log, "Connected to Giskard server.\n"))
        latest = os.path.join(self.run_dir, "ml-worker.log")
        self.assertEqual(os.path.realpath(latest), os.path.realpath(log))
        record = daemon.read_record(runfiles.pid_path(self.env, self.instance("d1")))
        self.assertEqual(record, {"pid": pid, "name": "d1", "python": sys.executable, "log": log,
                                  "endpoint": connection.endpoint_url(self.server.url)})

        logs = self.cli("worker", "logs", "-n", "1")
        self.assertEqual((logs.returncode, logs.stdout), (0, "Connected to Giskard server.\n"))
        again = self.cli("worker", "start", "-d", "-k", "key", "-u", self.server.url,
                         "--name", "d1")
        self.assertEqual(again.returncode, 1)
        self.assertIn("Worker d1 is already running for %s from this Python (pid %d; log: %s)"
                      % (self.server.url, pid, log), again.stderr)
        self.assertTrue(daemon.is_our_worker(pid))

        closed = self.answer_close(peer)
        stop = self.cli("worker", "stop")
        self.assertEqual(stop.returncode, 0, stop.stderr)
        self.assertEqual(stop.stdout, "Stopped worker d1 (pid %d).\n" % pid)
        self.assertFalse(daemon.is_our_worker(pid))
        self.assertFalse(runfiles.listed(self.env, "pid"))
        self.assertIn("received SIGTERM", read(log))
        self.assertEqual(closed(), 1000)

    def test_latest_log_follows_the_latest_daemon(self):
        first, _, peer1, _ = self.start_daemon("l1")
        second, _, peer2, _ = self.start_daemon("l2")
        closing = [self.answer_close(peer1), self.answer_close(peer2)]
        latest = os.path.join(self.run_dir, "ml-worker.log")
        self.assertEqual(os.readlink(latest), "worker-%s@%s.log" % self.instance("l2"))
        self.assertTrue(self.wait_for_file(latest, "pid %d" % second))
        self.assertNotIn("pid %d" % first, read(latest))
        by_name = self.cli("worker", "logs", "--name", "l1", "-n", "100")
        self.assertIn("pid %d" % first, by_name.stdout)
        self.assertEqual(self.cli("worker", "stop", "-a").returncode, 0)
        self.assertEqual([closed() for closed in closing], [1000, 1000])

    def test_stop_all(self):
        # Nobody accepts: both daemons are stuck in the WebSocket handshake, and stop anyway.
        pids = [self.start_daemon(name, register=False, GSK_START_WAIT_SECONDS="0.2")[0]
                for name in ("a1", "a2")]
        ambiguous = self.cli("worker", "stop")
        self.assertEqual(ambiguous.returncode, 2)
        self.assertIn("a1 (%s), a2 (%s)" % (self.server.url, self.server.url), ambiguous.stderr)
        stop = self.cli("worker", "stop", "-a")
        self.assertEqual(stop.returncode, 0, stop.stderr)
        for name, pid in zip(("a1", "a2"), pids):
            self.assertIn("Stopped worker %s (pid %d)." % (name, pid), stop.stdout)
            self.assertFalse(daemon.is_our_worker(pid))
        self.assertEqual(sorted(os.listdir(self.run_dir)),
                         sorted(["ml-worker.log", "worker-a1@%s.log" % self.instance("a1").id,
                                 "worker-a2@%s.log" % self.instance("a2").id]))

    def test_still_connecting_and_unreachable(self):
        _, result, _, _ = self.start_daemon("slow", register=False, GSK_START_WAIT_SECONDS="0.2")
        self.assertTrue(result.stdout.startswith("The worker is still connecting.\n"))
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % closed.getsockname()[1]
        closed.close()  # nothing listens there now
        result = self.cli("worker", "start", "-d", "-k", "k", "-u", url, "--name", "far")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith("Cannot reach the Giskard server yet ("),
                        result.stdout)
        self.assertIn("the worker keeps trying", result.stdout)
        pid = daemon.read_pid(runfiles.pid_path(self.env, self.instance("far", url)))
        self.addCleanup(self.kill_if_left, pid)
        self.assertTrue(daemon.is_our_worker(pid))
        self.assertEqual(self.cli("worker", "stop", "-a").returncode, 0)
        self.assertFalse(daemon.is_our_worker(pid))

    def test_daemon_reports_a_refusal_and_exits_77(self):
        proc = self.popen("worker", "start", "-d", "-k", "key", "-u", self.server.url,
                          "--name", "taken")
        sock, _, headers = self.server.accept_http()
        body = json.dumps({"error": {"code": "CONFLICT", "message": "the name \"taken\" belongs "
                                     "to a managed kernel; start the worker with another "
                                     "--name"}}).encode()
        sock.sendall(http_response(409, body, reason="Conflict"))
        sock.close()
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 77, stdout + stderr)
        self.assertEqual(headers["x-giskard-worker-name"], "taken")
        self.assertEqual(stderr, "Worker taken stopped: the server refused the worker name "
                         "'taken' (HTTP 409: the name \"taken\" belongs to a managed kernel; "
                         "start the worker with another --name)\n")
        self.assertNotIn("Connected", stdout)
        self.assertEqual(runfiles.listed(self.env, "pid"), [])

    def test_daemon_that_exits_shows_the_end_of_its_log(self):
        proc = self.popen("worker", "start", "-d", "-k", "key", "-u", self.server.url,
                          "--name", "future")
        peer = self.server.accept()
        self.assertEqual(peer.recv()["type"], "hello")
        peer.send({"type": "welcome", "protocol": 99, "heartbeatSeconds": 5})
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 76, stdout + stderr)
        log = runfiles.log_path(self.env, self.instance("future"))
        self.assertTrue(stderr.startswith("Worker future exited with code 76. The end of its "
                                          "log, %s:\n" % log), stderr)
        self.assertIn("speaks protocol 99", stderr)
        self.assertEqual(runfiles.listed(self.env, "pid"), [])

    def test_start_in_a_notebook_returns_at_once(self):
        # `!giskard worker start -d ...` in Jupyter: the command's output goes to pipes the
        # notebook reads until end of file; the daemon must hold none of them, not even one
        # the command inherited beyond stdout and stderr.
        extra_r, extra_w = os.pipe()
        self.addCleanup(os.close, extra_r)
        proc = subprocess.Popen(
            [sys.executable, "-m", "giskard_worker_shim", "worker", "start", "-d", "-k", "key",
             "-u", self.server.url, "--name", "nb"], env=shim_env(GSK_HOME=self.home),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(extra_w,))
        os.close(extra_w)
        peer, hello = self.server.register()
        pid = hello["env"]["pid"]
        self.addCleanup(self.kill_if_left, pid)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)  # both pipes reached end of file
        self.assertEqual(proc.returncode, 0, stderr)
        self.assertTrue(stdout.startswith(b"Connected to Giskard server.\n"))
        self.assertEqual(select.select([extra_r], [], [], TIMEOUT)[0], [extra_r])
        self.assertEqual(os.read(extra_r, 100), b"")  # end of file there too
        self.assertTrue(daemon.is_our_worker(pid))  # and the worker runs on
        peer.send({"type": "request", "id": "r1", "method": "ping", "params": {}})
        self.assertEqual(peer.recv(), {"type": "reply", "id": "r1", "result": {"pong": True}})
        closed = self.answer_close(peer)
        self.assertEqual(self.cli("worker", "stop", "--name", "nb").returncode, 0)
        self.assertEqual(closed(), 1000)

    def test_stale_pid_files_never_block_a_start(self):
        os.makedirs(self.run_dir)
        pid_file = runfiles.pid_path(self.env, self.instance("st"))
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait(TIMEOUT)
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        self.addCleanup(other.wait, TIMEOUT)
        self.addCleanup(other.kill)
        for content in ("%d\n" % dead.pid, json.dumps({"pid": other.pid, "name": "st"})):
            with self.subTest(content=content):
                with open(pid_file, "w") as f:
                    f.write(content)
                pid, _, peer, _ = self.start_daemon("st")
                self.assertEqual(daemon.read_pid(pid_file), pid)
                closed = self.answer_close(peer)
                self.assertEqual(self.cli("worker", "stop", "--name", "st").returncode, 0)
                self.assertEqual(closed(), 1000)
        self.assertIsNone(other.poll())

    def test_same_name_from_another_interpreter_runs_beside(self):
        # Another virtualenv is another sys.executable: a symbolic link to this interpreter.
        other = os.path.join(self.home, "other-python")
        os.symlink(sys.executable, other)
        first, _, peer1, _ = self.start_daemon("twin")
        second, _, peer2, hello = self.start_daemon("twin", python=other)
        closing = [self.answer_close(peer1), self.answer_close(peer2)]
        self.assertEqual(hello["name"], "twin")
        self.assertEqual(hello["env"]["pythonExecutable"], other)
        self.assertNotEqual(first, second)
        self.assertEqual(len(runfiles.listed(self.env, "pid")), 2)
        again = self.cli("worker", "start", "-d", "-k", "k", "-u", self.server.url, "--name",
                         "twin")
        self.assertEqual(again.returncode, 1)
        self.assertIn("(pid %d;" % first, again.stderr)
        stop = self.cli("worker", "stop", "--name", "twin")
        self.assertEqual(stop.returncode, 0, stop.stderr)
        for pid in (first, second):
            self.assertIn("Stopped worker twin (pid %d)." % pid, stop.stdout)
        self.assertEqual([closed() for closed in closing], [1000, 1000])

    def test_first_generation_flags(self):
        port = str(self.server.port)
        proc = self.popen("worker", "start", "-h", "127.0.0.1", "-p", port, "-d", "-k", "key")
        peer, hello = self.server.register()
        pid = hello["env"]["pid"]
        self.addCleanup(self.kill_if_left, pid)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, stderr)
        self.assertEqual(hello["name"], runfiles.default_name())
        self.assertEqual(peer.headers["x-giskard-worker-name"], runfiles.default_name())
        self.assertEqual(peer.request_line, "GET /api/v1/workers/connect HTTP/1.1")
        other = self.cli("worker", "stop", "-h", "127.0.0.1", "-p", "1")
        self.assertEqual(other.returncode, 0)
        self.assertIn("No running worker matches", other.stdout)
        self.assertTrue(daemon.is_our_worker(pid))
        closed = self.answer_close(peer)
        stop = self.cli("worker", "stop", "-h", "127.0.0.1", "-p", port)
        self.assertEqual(stop.stdout, "Stopped worker %s (pid %d).\n"
                         % (runfiles.default_name(), pid))
        self.assertEqual(closed(), 1000)

    def test_foreground_worker_has_a_pid_file_and_stops(self):
        shim = Shim(["worker", "start", "-k", "key", "-u", self.server.url, "--name", "fg"],
                    shim_env(GSK_HOME=self.home))
        self.addCleanup(shim.cleanup)
        peer, _ = self.server.register()
        self.assertTrue(shim.wait_for_stdout("Connected to Giskard server."))
        pid_file = runfiles.pid_path(self.env, self.instance("fg"))
        self.assertEqual(daemon.read_record(pid_file)["log"], None)
        self.assertEqual(daemon.read_pid(pid_file), shim.pid)
        closed = self.answer_close(peer)
        stop = self.cli("worker", "stop", "--name", "fg")
        self.assertEqual(stop.returncode, 0, stop.stderr)
        self.assertEqual(shim.wait(), 0)
        self.assertFalse(os.path.exists(pid_file))
        self.assertEqual(closed(), 1000)

    def test_nothing_running_and_stale_pid_files(self):
        self.assertEqual(self.cli("worker", "stop").stdout, "No worker is running.\n")
        os.makedirs(self.run_dir)
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        self.addCleanup(other.wait, TIMEOUT)
        self.addCleanup(other.kill)
        pid_file = runfiles.pid_path(self.env, Instance("old", "0123abcd"))
        with open(pid_file, "w") as f:
            f.write("%d\n" % other.pid)
        stop = self.cli("worker", "stop", "-a")
        self.assertEqual(stop.stdout, "Worker old is not running.\n")
        self.assertIsNone(other.poll())  # not ours: left alone
        self.assertFalse(os.path.exists(pid_file))

    def test_logs_follow(self):
        _, _, peer, _ = self.start_daemon("fl")
        self.addCleanup(self.answer_close(peer))
        proc = self.popen("worker", "logs", "-n", "1", "-f")
        self.addCleanup(proc.stderr.close)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.wait, TIMEOUT)
        self.addCleanup(proc.kill)
        log = runfiles.log_path(self.env, self.instance("fl"))
        self.assertEqual(self.read_line(proc), "Connected to Giskard server.\n")
        with open(log, "a") as f:
            f.write("a new line\n")
        self.assertEqual(self.read_line(proc), "a new line\n")
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(TIMEOUT), 0)
        self.cli("worker", "stop", "-a")

    def read_line(self, proc):
        self.assertTrue(select.select([proc.stdout], [], [], TIMEOUT)[0], "no output")
        return proc.stdout.readline()

    def test_logs_without_a_daemon(self):
        for args, path in ((["--name", "nope"], "no log of a worker named nope in "),
                           ([], os.path.join(self.run_dir, "ml-worker.log"))):
            logs = self.cli("worker", "logs", *args)
            self.assertEqual(logs.returncode, 2)
            self.assertIn(path, logs.stderr)


if __name__ == "__main__":
    unittest.main()
