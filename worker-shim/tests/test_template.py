"""The template (`serve-template`, a fork server) in a subprocess, and the workers it forks,
against a fake supervisor.

The test process makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), as the
supervisor does, so the forked workers, orphaned by the double fork, become its children: it
checks their parent, reaps them, and kills any a failing test left running.
"""

import ctypes
import json
import os
import pickle
import platform
import resource
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import unittest

from tests import model_fixtures
from tests.support import ROOT, SRC, TIMEOUT, FakeSupervisor, FramePeer, Shim, shim_env
from tests.test_managed import proc_start_time

PR_SET_CHILD_SUBREAPER = 36
LINUX = sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")
GIB = 1024 ** 3
ROWS = {"columns": ["age", "income"], "rows": [[30, 52000], [41, None]]}
SITECUSTOMIZE = """\
import atexit, os
_marker = os.environ.get("GSK_TEST_ATEXIT_MARKER")
if _marker:
    atexit.register(lambda: open("%s.%d" % (_marker, os.getpid()), "w").close())
"""


def set_subreaper(on):
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) == 0


def frame(message):
    payload = json.dumps(message).encode("utf-8")
    return struct.pack(">I", len(payload)) + payload


def parent_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    return int(text[text.rfind(")") + 2:].split()[1])


def fd_links(pid):
    links = {}
    fd_dir = "/proc/%d/fd" % pid
    for name in os.listdir(fd_dir):
        try:
            links[int(name)] = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            pass  # closed meanwhile
    return links


def environ_of(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        entries = f.read().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in entries if entry)


def signal_masks(pid):
    """{"SigBlk": ..., "SigIgn": ...} (hexadecimal masks) from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        return {line.split(":")[0]: int(line.split()[1], 16) for line in f
                if line.startswith(("SigBlk:", "SigIgn:"))}


def limits_of(pid):
    """{"Max open files": ("1024", "1024"), ...} from /proc/PID/limits."""
    limits = {}
    with open("/proc/%d/limits" % pid) as f:
        for line in f.read().splitlines()[1:]:
            name, values = line[:26].strip(), line[26:].split()
            limits[name] = (values[0], values[1])
    return limits


def wait_exit(pid, timeout=TIMEOUT):
    """The wait status of our child `pid` once it exits, or None after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.005)


def wait_for_file_text(path, text, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                content = f.read()
        except FileNotFoundError:
            content = ""
        if text in content or time.monotonic() >= deadline:
            return content
        time.sleep(0.01)


@unittest.skipUnless(LINUX and hasattr(os, "fork"), "templates need Linux (/proc, prctl)")
class TemplateTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="shim-template-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        if not set_subreaper(True):
            self.skipTest("cannot become a child subreaper")
        self.addCleanup(set_subreaper, False)
        self.workers = []  # pids of forked workers, our children: reaped (killed) at the end
        self.addCleanup(self.reap_workers)
        self.supervisor = FakeSupervisor(os.path.join(self.dir, "s.sock"))
        self.addCleanup(self.supervisor.stop)
        os.makedirs(os.path.join(self.dir, "logs"))
        self.model = self.pickle_model("credit.pkl", model_fixtures.CreditModel())

    def pickle_model(self, name, obj):
        path = os.path.join(self.dir, "models", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump(obj, f)
        return path

    def reap_workers(self):
        for pid in self.workers:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue  # reaped by the test already
            if not done:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)

    def start_template(self, preload=None, pythonpath=(), **extra):
        """Starts serve-template on one end of a socketpair; returns (shim, the other end)."""
        ours, theirs = socket.socketpair()
        env = shim_env(GSK_TEMPLATE_FD=theirs.fileno(), **extra)
        # tests.model_fixtures must be importable to unpickle the test models.
        env["PYTHONPATH"] = os.pathsep.join([SRC, ROOT] + list(pythonpath))
        if preload is not None:
            env["GSK_TEMPLATE_PRELOAD"] = json.dumps(preload)
        self.control_inode = os.fstat(theirs.fileno()).st_ino
        try:
            shim = Shim(["serve-template"], env, pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        self.addCleanup(shim.cleanup)
        control = FramePeer(ours)
        self.addCleanup(control.close)
        return shim, control

    def ready(self, control, shim):
        message = control.recv()
        self.assertEqual(message["type"], "ready", shim.stderr())
        return message

    def fork_request(self, n, **changes):
        worker_id = "k-%08x" % (0x1a2b3c40 + n)
        nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        as_hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        request = {
            "type": "fork", "id": "f%d" % n, "workerId": worker_id,
            "token": os.urandom(16).hex(), "socket": self.supervisor.path,
            "heartbeatSeconds": 5, "orphanGraceSeconds": 5,
            "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "HOME": os.path.join(self.dir, "home"), "LANG": "C.UTF-8",
                    "WORKER_NUMBER": str(n)},
            "cwd": os.path.join(self.dir, "workers", worker_id),
            "logFile": os.path.join(self.dir, "logs", worker_id + ".log"),
            "limits": {
                "address_space_bytes": 8 * GIB if as_hard == resource.RLIM_INFINITY
                else min(8 * GIB, as_hard),
                "open_files": 200 + n if nofile_hard == resource.RLIM_INFINITY
                else min(200 + n, nofile_hard),
                "processes": None,
                "core_bytes": 0}}
        request.update(changes)
        return request

    def forked(self, control, request_id):
        """Reads the answer to a fork; records the worker for reaping."""
        reply = control.recv()
        self.assertEqual(reply.get("id"), request_id, reply)
        self.assertEqual(reply["type"], "forked", reply)
        self.workers.append(reply["pid"])
        return reply["pid"]

    def register(self, count):
        """Accepts `count` workers; returns {workerId: (peer, hello)}."""
        registered = {}
        for _ in range(count):
            peer, hello = self.supervisor.register()
            registered[hello["workerId"]] = (peer, hello)
        return registered

    def assertExitedZero(self, pid, within=TIMEOUT):
        status = wait_exit(pid, within)
        self.assertIsNotNone(status, "worker %d still runs after %g s" % (pid, within))
        self.assertTrue(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
                        "worker %d: wait status %d" % (pid, status))


class TemplateStartTest(TemplateTestCase):
    def test_ready(self):
        shim, control = self.start_template(preload=[self.model])
        ready = self.ready(control, shim)
        self.assertEqual(ready, {"type": "ready", "pid": shim.pid, "shimVersion": "0.1.0",
                                 "pythonVersion": platform.python_version(),
                                 "preloaded": [self.model]})
        with open("/proc/%d/maps" % shim.pid) as f:  # numpy & co. are not imported
            maps = f.read()
        for name in ("numpy", "pandas", "joblib"):
            self.assertNotIn("/%s/" % name, maps)
        self.assertEqual(len(os.listdir("/proc/%d/task" % shim.pid)), 1)  # single-threaded
        self.assertIn("preloaded model %s" % self.model, shim.stderr())

    def test_end_of_file_and_signals_end_the_template(self):
        shim, control = self.start_template()
        self.ready(control, shim)
        control.close()
        self.assertEqual(shim.wait(), 0, shim.stderr())
        self.assertIn("closed the template's socket", shim.stderr())
        for signum in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=signum):
                shim, control = self.start_template()
                self.ready(control, shim)
                shim.proc.send_signal(signum)
                self.assertEqual(shim.wait(), 0, shim.stderr())
                self.assertIn("received %s" % signal.Signals(signum).name, shim.stderr())

    def test_preload_failure(self):
        missing = os.path.join(self.dir, "models", "missing.pkl")
        shim, control = self.start_template(preload=[self.model, missing])
        message = control.recv()
        self.assertEqual(message["type"], "error")
        self.assertEqual(message["error"]["type"], "ModelLoadError")
        self.assertIn(missing, message["error"]["message"])
        self.assertIn("Traceback", message["error"]["traceback"])
        self.assertEqual(shim.wait(), 1)

    def test_malformed_preload_and_descriptor(self):
        shim, control = self.start_template(GSK_TEMPLATE_PRELOAD='["relative/model.pkl"]')
        message = control.recv()
        self.assertEqual(message["type"], "error")
        self.assertIn("GSK_TEMPLATE_PRELOAD", message["error"]["message"])
        self.assertEqual(shim.wait(), 64)
        for value, problem in (("", "is not a file descriptor number"),
                               ("97", "is not a socket")):
            with self.subTest(GSK_TEMPLATE_FD=value):
                shim = Shim(["serve-template"], shim_env(GSK_TEMPLATE_FD=value))
                self.addCleanup(shim.cleanup)
                self.assertEqual(shim.wait(), 64)
                self.assertIn(problem, shim.stderr())

    def test_oversized_frame(self):
        shim, control = self.start_template()
        self.ready(control, shim)
        control.send_raw(struct.pack(">I", 16 * 1024 * 1024 + 1))
        message = control.recv()
        self.assertEqual(message["type"], "error")
        self.assertEqual(message["error"]["type"], "ProtocolError")
        self.assertEqual(shim.wait(), 1)

    def test_refuses_to_fork_while_threads_run(self):
        threaded = self.pickle_model("threaded.pkl", model_fixtures.ThreadStarter())
        shim, control = self.start_template(preload=[threaded])
        self.ready(control, shim)
        control.send(self.fork_request(1))
        reply = control.recv()
        self.assertEqual(reply["type"], "fork_failed", reply)
        self.assertEqual(reply["id"], "f1")
        self.assertIn("2 threads", reply["error"])
        self.assertIn("template runs 2 threads", shim.stderr())


class ForkTest(TemplateTestCase):
    def test_three_workers_set_up_as_requested(self):
        shim, control = self.start_template(preload=[self.model])
        self.ready(control, shim)
        requests = [self.fork_request(n) for n in (1, 2, 3)]
        requests[0]["futureField"] = {"ignored": True}
        requests[2]["env"]["GSK_WORKER_VERBOSE"] = "1"
        os.makedirs(requests[1]["cwd"])  # an existing cwd is used as it is
        # Three requests in one write: the template answers them one by one, in order.
        control.send_raw(b"".join(frame(r) for r in requests))
        pids = [self.forked(control, r["id"]) for r in requests]
        self.assertEqual(len(set(pids + [shim.pid])), 4)
        registered = self.register(3)
        umask = os.umask(0)
        os.umask(umask)
        children = "/proc/%d/task/%d/children" % (shim.pid, shim.pid)
        if os.path.exists(children):  # the intermediate children were reaped
            with open(children) as f:
                self.assertEqual(f.read().split(), [])
        template_links = fd_links(shim.pid)
        self.assertIn("socket:[%d]" % self.control_inode, template_links.values())
        template_limits = limits_of(shim.pid)
        # The template blocks nothing between forks, and ignores what the interpreter ignored
        # at start (SIGPIPE...): what an exec'd worker ignores, and the forked ones must.
        template_masks = signal_masks(shim.pid)
        self.assertEqual(template_masks["SigBlk"], 0)
        self.assertTrue(template_masks["SigIgn"] & (1 << (signal.SIGPIPE - 1)))
        for request, pid in zip(requests, pids):
            with self.subTest(worker=request["workerId"]):
                peer, hello = registered[request["workerId"]]
                self.assertEqual(hello["token"], request["token"])
                self.assertIs(hello["reconnect"], False)
                self.assertEqual(hello["env"]["pid"], pid)
                self.assertAlmostEqual(hello["env"]["processStartTime"], proc_start_time(pid),
                                       places=6)
                # The double fork: the subreaper (here the test) is the parent, not the
                # template; the worker leads its own process group.
                self.assertEqual(parent_of(pid), os.getpid())
                self.assertEqual(os.getpgid(pid), pid)
                self.assertEqual(signal_masks(pid), template_masks)
                # Descriptors: stdin /dev/null, stdout and stderr the log, then only the
                # sockets the worker opened (its connection, its wake-up socketpair).
                links = fd_links(pid)
                self.assertEqual(links[0], "/dev/null")
                self.assertEqual(links[1], request["logFile"])
                self.assertEqual(links[2], request["logFile"])
                others = [links[fd] for fd in links if fd > 2]
                self.assertEqual(len(others), 3, links)
                self.assertTrue(all(link.startswith("socket:[") for link in others), links)
                self.assertNotIn("socket:[%d]" % self.control_inode, others)
                self.assertEqual(environ_of(pid), request["env"])
                self.assertEqual(os.readlink("/proc/%d/cwd" % pid), request["cwd"])
                if request is not requests[1]:
                    self.assertEqual(stat.S_IMODE(os.stat(request["cwd"]).st_mode),
                                     0o700 & ~umask)
                self.assertEqual(stat.S_IMODE(os.stat(request["logFile"]).st_mode),
                                 0o640 & ~umask)
                limits = limits_of(pid)
                expected = request["limits"]
                for name, key in (("Max address space", "address_space_bytes"),
                                  ("Max open files", "open_files"),
                                  ("Max core file size", "core_bytes")):
                    self.assertEqual(limits[name], (str(expected[key]),) * 2, name)
                self.assertEqual(limits["Max processes"], template_limits["Max processes"])
                log = wait_for_file_text(request["logFile"], "registered with the supervisor")
                self.assertIn("worker %s starting" % request["workerId"], log)
                self.assertIn("(forked from template %d)" % shim.pid, log)
                self.assertIn("registered with the supervisor", log)
                self.assertIn("forked worker %s as pid %d" % (request["workerId"], pid),
                              shim.stderr())
        # GSK_WORKER_VERBOSE=1 in the third worker's env: debug lines in its log only.
        peer, _ = registered[requests[2]["workerId"]]
        peer.send({"type": "from_the_future"})
        self.assertEqual(peer.request("p", "ping")["result"], {"pong": True})
        self.assertIn(" DEBUG ", wait_for_file_text(requests[2]["logFile"], " DEBUG "))
        peer, _ = registered[requests[0]["workerId"]]
        peer.send({"type": "from_the_future"})
        self.assertEqual(peer.request("p", "ping")["result"], {"pong": True})
        with open(requests[0]["logFile"]) as f:
            self.assertNotIn(" DEBUG ", f.read())

    def test_forked_workers_serve_and_stop(self):
        other = self.pickle_model("other.pkl", model_fixtures.ThresholdModel(0.5))
        marker = os.path.join(self.dir, "atexit")
        site = os.path.join(self.dir, "site")
        os.makedirs(site)
        with open(os.path.join(site, "sitecustomize.py"), "w") as f:
            f.write(SITECUSTOMIZE)
        shim, control = self.start_template(preload=[self.model],
                                            pythonpath=[site],
                                            GSK_TEST_ATEXIT_MARKER=marker)
        self.ready(control, shim)
        requests = [self.fork_request(n) for n in (1, 2, 3)]
        requests[2]["env"]["GSK_MODEL_CACHE_SIZE"] = "1"  # the worker's own cache size
        pids = []
        for request in requests:
            control.send(request)
            pids.append(self.forked(control, request["id"]))
        registered = self.register(3)
        peers = [registered[r["workerId"]][0] for r in requests]
        for peer, pid in zip(peers, pids):
            # The preloaded model is in the worker's cache; another one is loaded on demand.
            reply = peer.request("l1", "load_model", {"model": self.model})
            self.assertIs(reply["result"]["cached"], True, reply)
            reply = peer.request("p1", "predict", dict(ROWS, model=self.model))
            self.assertEqual(reply["result"]["predictions"], ["approved", "rejected"], reply)
            self.assertEqual(peer.request("l2", "load_model", {"model": other})["result"]
                             ["cached"], False)
            self.assertEqual(peer.request("p2", "predict", {"model": other, "rows": [[1], [0]]})
                             ["result"]["predictions"], [1, 0])
            env = peer.request("e1", "environment")["result"]
            self.assertEqual(env["pid"], pid)
        # Loading `other` evicted the preloaded model from the third worker's cache only.
        for peer, cached in zip(peers, (True, True, False)):
            self.assertIs(peer.request("l3", "load_model", {"model": self.model})["result"]
                          ["cached"], cached)
        self.assertIn("evicted model %s" % self.model, wait_for_file_text(
            requests[2]["logFile"], "evicted model"))
        # SIGTERM: a graceful stop, exit 0, quickly.
        started = time.monotonic()
        os.kill(pids[0], signal.SIGTERM)
        peers[0].expect_eof()
        self.assertExitedZero(pids[0], within=5)
        self.assertLess(time.monotonic() - started, 5)
        # shutdown request: exit 0.
        self.assertEqual(peers[1].request("s", "shutdown")["result"], {"ok": True})
        peers[1].expect_eof()
        self.assertExitedZero(pids[1])
        # The template ends at end of file on its socket; its workers live on.
        control.close()
        self.assertEqual(shim.wait(), 0, shim.stderr())
        self.assertEqual(peers[2].request("p", "ping")["result"], {"pong": True})
        os.kill(pids[2], signal.SIGTERM)
        peers[2].expect_eof()
        self.assertExitedZero(pids[2])
        for request in requests[:1]:
            with open(request["logFile"]) as f:
                log = f.read()
            self.assertIn("received SIGTERM", log)
            self.assertTrue(log.rstrip().endswith("stopped"), log)  # flushed before _exit
        # Fast exit: neither the workers nor the template ran the interpreter's finalization
        # (the atexit handler that sitecustomize installed in the template)...
        self.assertEqual([name for name in os.listdir(self.dir) if name.startswith("atexit")],
                         [])
        # ... which an interpreter that exits normally runs.
        env = shim_env(GSK_TEST_ATEXIT_MARKER=marker, PYTHONPATH=site)
        subprocess.run([sys.executable, "-c", "pass"], env=env, timeout=TIMEOUT, check=True)
        self.assertEqual(len([n for n in os.listdir(self.dir) if n.startswith("atexit")]), 1)

    def test_malformed_fork_requests(self):
        shim, control = self.start_template()
        self.ready(control, shim)
        good = self.fork_request(1)
        cases = [
            ({"id": None}, '"id" must be a non-empty string'),
            ({"token": ""}, '"token" must be a non-empty string'),
            ({"workerId": 7}, '"workerId" must be a non-empty string'),
            ({"socket": None}, '"socket" must be a non-empty string'),
            ({"heartbeatSeconds": 0}, '"heartbeatSeconds" must be a positive number'),
            ({"orphanGraceSeconds": -1}, '"orphanGraceSeconds" must be a non-negative'),
            ({"env": ["PATH=/bin"]}, '"env" must be an object of strings'),
            ({"env": {"PATH": 1}}, '"env"."PATH" must be a string'),
            ({"env": {"A=B": "c"}}, '"env" has an invalid variable name'),
            ({"cwd": "workers/k-1"}, '"cwd" must be an absolute path'),
            ({"logFile": None}, '"logFile" must be a non-empty string'),
            ({"limits": {"open_files": -5}}, '"limits"."open_files" must be a non-negative'),
            ({"limits": {"core_bytes": True}}, '"limits"."core_bytes" must be a non-negative'),
            ({"limits": [1]}, '"limits" must be an object'),
        ]
        for n, (change, error) in enumerate(cases):
            with self.subTest(change=change):
                request = dict(good, id="bad%d" % n)
                request.update(change)
                # A message of an unknown type gets no answer.
                control.send({"type": "from_the_future", "id": "x"})
                control.send(request)
                reply = control.recv()
                self.assertEqual(reply, {"type": "fork_failed", "id": request["id"],
                                         "error": reply.get("error")})
                self.assertIn(error, reply["error"])
        control.send(good)  # the template still forks
        self.forked(control, good["id"])
        peer, hello = self.supervisor.register()
        self.assertEqual(hello["workerId"], good["workerId"])
        peer.request("s", "shutdown")
        peer.expect_eof()
        self.assertExitedZero(self.workers[-1])

    def test_worker_that_cannot_set_itself_up_exits_71(self):
        shim, control = self.start_template()
        self.ready(control, shim)
        request = self.fork_request(1, logFile=os.path.join(self.dir, "no-such-dir", "w.log"))
        control.send(request)
        pid = self.forked(control, request["id"])
        status = wait_exit(pid)
        self.assertIsNotNone(status)
        self.assertEqual(os.WEXITSTATUS(status), 71)
        self.assertTrue(shim.wait_for_stderr("could not set itself up"), shim.stderr())
        self.assertIn("no-such-dir", shim.stderr())
        # The template goes on.
        request = self.fork_request(2)
        control.send(request)
        pid = self.forked(control, request["id"])
        peer, _ = self.supervisor.register()
        os.kill(pid, signal.SIGTERM)
        peer.expect_eof()
        self.assertExitedZero(pid)


if __name__ == "__main__":
    unittest.main()
