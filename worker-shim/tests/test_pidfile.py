"""Pid files locked by their worker (daemon.claim_pid_file, daemon.live_owner): a stale file never
blocks a start, a live worker always does, and racing starts elect one owner. The other side of
each lock is a real process."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

from giskard_worker_shim import daemon
from tests.support import TIMEOUT, FakeWsServer, Shim, shim_env

# Locks the file, writes the record (after an optional delay), says so, and holds the lock until
# its stdin closes. Trailing arguments "giskard_worker_shim worker start" make it look like a
# worker to daemon.is_our_worker; without them it is some other process.
HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[3]))
os.ftruncate(fd, 0)
os.write(fd, sys.argv[2].replace("PID", str(os.getpid())).encode())
print("written", flush=True)
sys.stdin.read()
"""
CLAIMER = """
import os, sys
from giskard_worker_shim import daemon
result = daemon.claim_pid_file(sys.argv[1], {"pid": os.getpid()})
print("won" if isinstance(result, daemon.PidFile) else "lost %d" % result["pid"], flush=True)
sys.stdin.read()
"""
OURS = ["giskard_worker_shim", "worker", "start"]


class Holder:
    def __init__(self, path, record='{"pid": PID}', delay=0.0, ours=False, wait="written"):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, path, record, str(delay)] + (OURS if ours else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
        self.pid = self.proc.pid
        while self.proc.stdout.readline().strip() != wait:
            assert self.proc.poll() is None, "the holder died"

    def end(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(TIMEOUT)
        self.proc.stdout.close()


class PidFileTest(unittest.TestCase):
    def setUp(self):
        directory = tempfile.TemporaryDirectory(prefix="gsk-pid-")
        self.addCleanup(directory.cleanup)
        self.path = os.path.join(directory.name, "worker-w@0123abcd.pid")

    def holder(self, *args, **kwargs):
        holder = Holder(self.path, *args, **kwargs)
        self.addCleanup(holder.end)
        return holder

    def write(self, text):
        with open(self.path, "w") as f:
            f.write(text)

    def claim(self, **record):
        record.setdefault("pid", os.getpid())
        return daemon.claim_pid_file(self.path, record)

    def assert_claimed(self, **record):
        pid_file = self.claim(**record)
        self.assertIsInstance(pid_file, daemon.PidFile)
        self.addCleanup(pid_file.release)
        self.assertEqual(daemon.read_record(self.path), dict(record, pid=os.getpid()))
        return pid_file

    def dead_pid(self):
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait(TIMEOUT)
        return proc.pid

    def test_claim_writes_the_record_and_release_removes_the_file(self):
        pid_file = self.assert_claimed(name="w", log=None)
        pid_file.update({"pid": 12345, "name": "w"})
        self.assertEqual(daemon.read_pid(self.path), 12345)
        pid_file.release()
        self.assertFalse(os.path.exists(self.path))
        pid_file.release()  # twice is harmless

    def test_stale_files_never_block_a_start(self):
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        self.addCleanup(other.wait, TIMEOUT)
        self.addCleanup(other.kill)
        for content in ("%d\n" % self.dead_pid(), json.dumps({"pid": other.pid}), "", "garbage",
                        "[1, 2]", '{"pid": -4}', "%d\n" % os.getpid()):
            with self.subTest(content=content):
                self.write(content)
                self.assert_claimed(name="w").release()
        self.assertIsNone(other.poll())  # named by a stale file: left alone

    def test_unlocked_file_naming_a_live_worker_is_stale(self):
        # The pid in the file was reused by another worker (its own pid file is elsewhere):
        # without the lock, the old check took it for the owner and refused to start.
        server = FakeWsServer()
        self.addCleanup(server.close)
        home = tempfile.TemporaryDirectory(prefix="gsk-home-")
        self.addCleanup(home.cleanup)
        shim = Shim(["worker", "start", "-k", "k", "-u", server.url, "--name", "other"],
                    shim_env(GSK_HOME=home.name))
        self.addCleanup(shim.cleanup)
        server.accept()  # connected: the worker runs (waiting for our welcome)
        self.assertTrue(daemon.is_our_worker(shim.pid))
        self.write("%d\n" % shim.pid)
        self.assert_claimed(name="w")

    def test_a_live_worker_holding_the_file_blocks_a_start(self):
        holder = self.holder('{"pid": PID, "name": "w", "log": "/x.log"}', ours=True)
        self.assertEqual(self.claim(), {"pid": holder.pid, "name": "w", "log": "/x.log"})
        self.assertEqual(daemon.live_owner(self.path)["pid"], holder.pid)
        self.assertEqual(daemon.live_owner(self.path, remove_stale=True)["pid"], holder.pid)
        self.assertTrue(os.path.exists(self.path))

    def test_a_starting_worker_is_waited_for(self):
        holder = self.holder(delay=0.3, ours=True, wait="locked")  # record written 0.3 s later
        self.assertEqual(self.claim(), {"pid": holder.pid})

    def test_a_file_held_by_a_process_it_does_not_name_is_taken_over(self):
        # A worker died, and a process it forked (say, a multiprocessing child) still holds
        # its locked pid file.
        self.holder('{"pid": %d}' % self.dead_pid())
        self.assertIsNone(daemon.live_owner(self.path))
        self.assertTrue(os.path.exists(self.path))
        self.assert_claimed(name="new")

    def test_live_owner_removes_stale_files_on_request(self):
        self.assertIsNone(daemon.live_owner(self.path))
        self.write('{"pid": %d}' % self.dead_pid())
        self.assertIsNone(daemon.live_owner(self.path))
        self.assertTrue(os.path.exists(self.path))
        self.assertIsNone(daemon.live_owner(self.path, remove_stale=True))
        self.assertFalse(os.path.exists(self.path))
        holder = self.holder()  # held by a process that is not a worker
        self.assertIsNone(daemon.live_owner(self.path, remove_stale=True))
        self.assertFalse(os.path.exists(self.path))
        self.assertIsNone(holder.proc.poll())

    def test_racing_starts_elect_one_owner(self):
        env = shim_env()
        claimers = [subprocess.Popen([sys.executable, "-c", CLAIMER, self.path] + OURS, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     universal_newlines=True) for _ in range(8)]
        try:
            answers = [c.stdout.readline().split() for c in claimers]
        finally:
            for claimer in claimers:
                claimer.stdin.close()
                claimer.wait(TIMEOUT)
                claimer.stdout.close()
        winners = [c.pid for c, answer in zip(claimers, answers) if answer == ["won"]]
        self.assertEqual(len(winners), 1, answers)
        for answer in answers:
            self.assertIn(answer, (["won"], ["lost", str(winners[0])]))

    def test_records(self):
        self.assertEqual(daemon.parse_record("42\n"), {"pid": 42})
        self.assertEqual(daemon.parse_record('{"pid": 7, "name": "a"}'), {"pid": 7, "name": "a"})
        for bad in ("", "0", "x", "[]", '{"pid": true}', '{"pid": "7"}', '{"name": "a"}'):
            self.assertIsNone(daemon.parse_record(bad), bad)


if __name__ == "__main__":
    unittest.main()
