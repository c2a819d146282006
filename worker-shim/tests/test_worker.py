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
from unittest import mock

from giskard_worker_shim.dispatch import default_dispatcher
from giskard_worker_shim import calls
from giskard_worker_shim.calls import CallHeartbeats
from giskard_worker_shim.protocol import FramedSocket
from giskard_worker_shim.worker import Worker, WorkerOptions
from tests.support import TIMEOUT, FakeSupervisor


class CallHeartbeatsTest(unittest.TestCase):
    def test_heartbeats_go_out_only_between_begin_and_end(self):
        sent = []

        class Conn:
            def send(self, message):
                sent.append((message["type"], time.monotonic()))

        heartbeats = CallHeartbeats()
        self.addCleanup(heartbeats.stop)
        start = time.monotonic()
        heartbeats.begin(Conn(), 0.05, start)
        deadline = start + TIMEOUT
        while len(sent) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        last = heartbeats.end()
        self.assertGreaterEqual(len(sent), 3)
        self.assertEqual({kind for kind, _ in sent}, {"heartbeat"})
        self.assertAlmostEqual(last, sent[-1][1], delta=0.01)  # when the last went out
        # A whole interval after the last one at the earliest, 1.5 intervals at the latest
        # (the thread wakes every half interval; scheduling may delay it on a busy machine).
        gaps = [b[1] - a[1] for a, b in zip(sent, sent[1:])]
        self.assertGreaterEqual(min(gaps), 0.045)
        count = len(sent)
        time.sleep(0.2)  # four intervals: nothing goes out once the call has ended
        self.assertEqual(len(sent), count)

    def test_a_long_interval_is_capped_for_the_websocket_endpoint(self):
        sent = []

        class Conn:
            def send(self, message):
                sent.append(message["type"])

        heartbeats = CallHeartbeats()
        self.addCleanup(heartbeats.stop)
        with mock.patch.object(calls, "MAX_PERIOD_SECONDS", 0.05):
            heartbeats.begin(Conn(), 3600.0, time.monotonic())
            deadline = time.monotonic() + TIMEOUT
            while len(sent) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            heartbeats.end()
        self.assertEqual(sent[:2], ["heartbeat", "heartbeat"])

    def test_a_failed_send_stops_the_heartbeats_of_that_call(self):
        attempts = []

        class Broken:
            def send(self, message):
                attempts.append(message)
                raise OSError("broken pipe")

        heartbeats = CallHeartbeats()
        self.addCleanup(heartbeats.stop)
        heartbeats.begin(Broken(), 0.02, 0.0)
        deadline = time.monotonic() + TIMEOUT
        while not attempts and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        heartbeats.end()
        self.assertEqual(len(attempts), 1)


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
            # Heartbeats keep flowing while the call runs, for longer than the worker's own
            # silence rule (3 intervals) although this side sends nothing meanwhile.
            for _ in range(5):
                self.assertEqual(peer.recv(skip_heartbeats=False)["type"], "heartbeat")
            os.kill(os.getpid(), signal.SIGTERM)
            release.set()
            self.assertEqual(peer.recv(), {"type": "reply", "id": "s1", "result": {"done": 1}})
            # s2 arrived before the stop and had not started: refused, not dropped.
            reply = peer.recv()
            self.assertEqual((reply["id"], reply["error"]["type"]), ("s2", "WorkerShuttingDown"))
            self.assertEqual([m["type"] for m in peer.expect_eof()], [])

        self.assertEqual(self.run_worker(supervisor_side, heartbeat=0.1), 0)

    def test_replies_come_in_request_order(self):
        self.dispatcher.register("echo", lambda params: {"n": params["n"]})

        def supervisor_side(peer):
            for n in range(20):
                peer.send({"type": "request", "id": "e%d" % n, "method": "echo",
                           "params": {"n": n}})
            peer.send({"type": "request", "id": "p", "method": "ping"})
            replies = [peer.recv() for _ in range(21)]
            self.assertEqual([r["id"] for r in replies], ["e%d" % n for n in range(20)] + ["p"])
            self.assertEqual([r["result"] for r in replies[:20]], [{"n": n} for n in range(20)])
            self.assertEqual(peer.request("x", "shutdown")["result"], {"ok": True})
            peer.expect_eof()

        self.assertEqual(self.run_worker(supervisor_side), 0)

    def test_failing_and_unencodable_methods(self):
        def broken(params):
            raise ValueError("bad input %s" % params.get("x"))
        self.dispatcher.register("broken", broken)
        self.dispatcher.register("unencodable", lambda params: {"x": object()})
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
