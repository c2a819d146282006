"""load_model and predict end to end: the real Worker loop with the production dispatcher, driven
over a socketpair by a supervisor played on another thread (the worker owns the main thread)."""

import os
import signal
import socket
import threading
import unittest

from giskard_worker_shim.protocol import FramedSocket
from giskard_worker_shim.worker import Worker, WorkerOptions
from tests import model_fixtures
from tests.model_fixtures import ModelTestCase
from tests.support import TIMEOUT, FramePeer


class ModelWorkerTest(ModelTestCase):
    def run_worker(self, supervisor_side, heartbeat=5):
        """Runs a worker on this thread and `supervisor_side(peer)` on another; returns the
        worker's exit code."""
        worker_end, supervisor_end = socket.socketpair()
        self.addCleanup(supervisor_end.close)
        dials, failures = [], []

        def dial():
            if dials:
                raise OSError("the socketpair was used already")
            dials.append(1)
            return FramedSocket(worker_end)

        def side():
            try:
                peer = FramePeer(supervisor_end)
                self.assertEqual(peer.recv()["type"], "hello")
                peer.send({"type": "welcome", "protocol": 1, "heartbeatSeconds": heartbeat,
                           "supervisorPid": os.getpid()})
                supervisor_side(peer)
                self.assertEqual(peer.request("bye", "shutdown"),
                                 {"type": "reply", "id": "bye", "result": {"ok": True}})
                peer.expect_eof()
            except BaseException as e:  # noqa: BLE001 (reported by the main thread)
                failures.append(e)
                os.kill(os.getpid(), signal.SIGTERM)  # unblock the worker
        thread = threading.Thread(target=side)
        thread.start()
        options = WorkerOptions("w-1", token="t", heartbeat_seconds=heartbeat, grace_seconds=0)
        code = Worker(dial, options, collect_env=lambda: {"pid": os.getpid()}).run()
        thread.join(TIMEOUT)
        self.assertFalse(thread.is_alive())
        if failures:
            raise failures[0]
        return code

    def test_load_model_and_predict(self):
        credit = self.pickle_to("credit.pkl", model_fixtures.CreditModel())
        failing = self.pickle_to("failing.pkl", model_fixtures.Failing())
        oom = self.pickle_to("oom.pkl", model_fixtures.OutOfMemory())
        rows = {"columns": ["age", "income", "purpose"],
                "rows": [[42, 52000.0, "car"], [23, None, "education"]]}
        records = {"records": [{"age": 42, "income": 52000.0, "purpose": "car"},
                               {"age": 23, "income": None, "purpose": "education"}]}
        expected = {"predictions": ["approved", "rejected"],
                    "probabilities": [[0.9, 0.1], [0.2, 0.8]],
                    "classes": ["approved", "rejected"], "rows": 2}

        def supervisor_side(peer):
            reply = peer.request("l1", "load_model", {"model": credit})
            self.assertEqual(reply["id"], "l1")
            result = reply["result"]
            self.assertEqual((result["cached"], result["kind"], result["predictProba"],
                              result["classes"]), (False, "pickle", True, ["approved", "rejected"]))
            self.assertTrue(peer.request("l2", "load_model", {"model": credit})["result"]
                            ["cached"])
            params = dict(rows, model=credit, timeoutSeconds=30)
            self.assertEqual(peer.request("p1", "predict", params),
                             {"type": "reply", "id": "p1", "result": expected})
            self.assertEqual(peer.request("p2", "predict", dict(records, model=credit))
                             ["result"], expected)

            error = peer.request("p3", "predict", dict(rows, model="credit.pkl"))["error"]
            self.assertEqual((error["type"], error["message"]),
                             ("InvalidInput", '"model" must be an absolute path'))
            error = peer.request("p4", "predict", dict(rows, model=failing))["error"]
            self.assertEqual(error["type"], "ValueError")
            self.assertIn("could not convert string to float", error["message"])
            self.assertIn("in predict", error["traceback"])
            error = peer.request("p5", "load_model", {"model": credit + ".gone"})["error"]
            self.assertEqual(error["type"], "ModelLoadError")
            self.assertIn(credit + ".gone", error["message"])
            self.assertIn("FileNotFoundError", error["traceback"])

            error = peer.request("p6", "predict", dict(rows, model=oom))["error"]
            self.assertEqual((error["type"], error["message"]),
                             ("MemoryError", "cannot allocate 64 GiB"))
            self.assertEqual(peer.request("p7", "predict", dict(rows, model=credit))["result"],
                             expected)  # the worker survived

        self.assertEqual(self.run_worker(supervisor_side), 0)

    def test_heartbeats_flow_during_a_slow_predict_and_ping_follows_it(self):
        slow = self.model_dir("slow", {"entrypoint": "tests.model_fixtures:SLOW"})
        model_fixtures.Slow.started.clear()
        model_fixtures.Slow.release.clear()
        self.addCleanup(model_fixtures.Slow.release.set)

        def supervisor_side(peer):
            peer.send({"type": "request", "id": "slow", "method": "predict",
                       "params": {"model": slow, "rows": [[1], [2], [3]]}})
            self.assertTrue(model_fixtures.Slow.started.wait(TIMEOUT))
            peer.send({"type": "request", "id": "ping", "method": "ping"})
            # The worker's heartbeats go on while the model runs (4 intervals of 0.1 s here,
            # more than the 3 after which either side gives a silent peer up).
            for _ in range(4):
                self.assertEqual(peer.recv(skip_heartbeats=False)["type"], "heartbeat")
            model_fixtures.Slow.release.set()
            self.assertEqual(peer.recv(), {"type": "reply", "id": "slow",
                                           "result": {"predictions": [3], "rows": 3}})
            self.assertEqual(peer.recv(),
                             {"type": "reply", "id": "ping", "result": {"pong": True}})

        self.assertEqual(self.run_worker(supervisor_side, heartbeat=0.1), 0)


if __name__ == "__main__":
    unittest.main()
