"""The worker loop in-process (it must own the main thread for signals), with methods that the
production dispatcher does not have: slow ones, failing ones, unencodable results."""

import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import unittest

from giskard_worker_shim.dispatch import default_dispatcher
from giskard_worker_shim.executor import Executor
from giskard_worker_shim.protocol import FramedSocket
from giskard_worker_shim.worker import Worker, WorkerOptions
from tests.support import TIMEOUT, FakeSupervisor


class ExecutorTest(unittest.TestCase):
    def test_a_quick_reply_waited_for_needs_no_wake_up_and_a_slow_one_gets_one(self):
        wakes = []
        executor = Executor(lambda: wakes.append(1))
        self.addCleanup(executor.stop)
        executor.submit(1, "q", lambda params: {"n": params["n"]}, {"n": 1})
        self.assertEqual(executor.take_results(wait=TIMEOUT),
                         [(1, {"type": "reply", "id": "q", "result": {"n": 1}})])
        self.assertEqual((wakes, executor.outstanding), ([], 0))
        release = threading.Event()
        executor.submit(2, "s", lambda params: {"ok": release.wait(TIMEOUT)}, {})
        self.assertEqual(executor.take_results(wait=0.01), [])  # gave up: it is still running
        release.set()
        deadline = time.monotonic() + TIMEOUT
        while not wakes and time.monotonic() < deadline:
            time.sleep(0.001)
        self.assertEqual(wakes, [1])
        self.assertEqual(executor.take_results(),
                         [(2, {"type": "reply", "id": "s", "result": {"ok": True}})])
        self.assertEqual(executor.outstanding, 0)


class InProcessTest(unittest.TestCase):
    def setUp(self):
        directory = tempfile.mkdtemp(prefix="shim-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.supervisor = FakeSupervisor(os.path.join(directory, "s.sock"))
        self.addCleanup(self.supervisor.stop)
        self.dispatcher = default_dispatcher()
        self.failures = []

    def dial(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.supervisor.path)
        return FramedSocket(sock)

    def run_worker(self, supervisor_side, heartbeat=5.0):
        """Runs the worker on this (main) thread and `supervisor_side(peer)` on another."""
        def side():
            try:
                peer, _ = self.supervisor.register(heartbeat_seconds=heartbeat)
                supervisor_side(peer)
            except BaseException as e:  # noqa: BLE001 (reported by the main thread)
                self.failures.append(e)
                os.kill(os.getpid(), signal.SIGTERM)  # unblock the worker
        thread = threading.Thread(target=side)
        thread.start()
        options = WorkerOptions("w-1", token="t", heartbeat_seconds=heartbeat, grace_seconds=2)
        code = Worker(self.dial, options, dispatcher=self.dispatcher,
                      collect_env=lambda: {"pid": os.getpid()}).run()
        thread.join(TIMEOUT)
        self.assertFalse(thread.is_alive())
        if self.failures:
            raise self.failures[0]
        return code

    def test_sigterm_lets_the_running_request_finish(self):
        started, release = threading.Event(), threading.Event()

        def slow(params):
            started.set()
            release.wait(TIMEOUT)
            return {"done": params["n"]}
        self.dispatcher.register("slow", slow)

        def supervisor_side(peer):
            peer.send({"type": "request", "id": "s1", "method": "slow", "params": {"n": 1}})
            peer.send({"type": "request", "id": "s2", "method": "slow", "params": {"n": 2}})
            self.assertTrue(started.wait(TIMEOUT))
            # Heartbeats keep flowing while the executor is busy.
            for _ in range(2):
                self.assertEqual(peer.recv(skip_heartbeats=False)["type"], "heartbeat")
                peer.send({"type": "heartbeat", "ts": 0.0})
            # From here on, a heartbeat before each step keeps the 0.3 s silence rule at bay.
            os.kill(os.getpid(), signal.SIGTERM)
            peer.send({"type": "heartbeat", "ts": 0.0})
            self.assertEqual(peer.recv()["error"]["type"], "WorkerShuttingDown")  # s2, queued
            peer.send({"type": "request", "id": "s3", "method": "ping"})
            self.assertEqual(peer.recv()["error"]["type"], "WorkerShuttingDown")
            peer.send({"type": "heartbeat", "ts": 0.0})
            release.set()
            self.assertEqual(peer.recv(), {"type": "reply", "id": "s1", "result": {"done": 1}})
            self.assertEqual([m["type"] for m in peer.expect_eof()], [])

        self.assertEqual(self.run_worker(supervisor_side, heartbeat=0.1), 0)

    def test_failing_and_unencodable_methods(self):
        def broken(params):
            raise ValueError("bad input %s" % params.get("x"))
        self.dispatcher.register("broken", broken)
        self.dispatcher.register("unencodable", lambda params: {"x": object()}, inline=True)
        self.dispatcher.register("nan", lambda params: {"x": float("nan")})

        def supervisor_side(peer):
            error = peer.request("b", "broken", {"x": 3})["error"]
            self.assertEqual(error["type"], "ValueError")
            self.assertEqual(error["message"], "bad input 3")
            self.assertIn("in broken", error["traceback"])
            self.assertEqual(peer.request("u", "unencodable")["error"]["type"], "TypeError")
            self.assertEqual(peer.request("n", "nan")["error"]["type"], "ValueError")
            self.assertEqual(peer.request("x", "shutdown"),
                             {"type": "reply", "id": "x", "result": {"ok": True}})
            peer.expect_eof()

        self.assertEqual(self.run_worker(supervisor_side), 0)

    def test_signal_handlers_are_restored(self):
        before = signal.getsignal(signal.SIGTERM)
        self.run_worker(lambda peer: (peer.request("x", "shutdown"), peer.expect_eof()))
        self.assertIs(signal.getsignal(signal.SIGTERM), before)


if __name__ == "__main__":
    unittest.main()
