"""End-to-end: worker supervision, seen through REST, the CLI and /proc. A kernel with one test
wheel builds offline in seconds (venv + worker shim + the wheel) and its workers start by
themselves. Misbehaving workers are made by that wheel, gsk-e2e-misbehave (workers_support.py),
before the shim runs, as the kernel's env variable E2E_MISBEHAVE says: crash, ignore-sigterm,
grandchild, never-register, hog. (The kernel spec reserves names starting with GSK_, hence
E2E_.)

CTest runs this file twice: e2e.workers with the fork server on (the daemon's default: every
worker of these kernels is forked from its env's template, see WorkersTestCase.warm_up) and
e2e.workers_exec with it off (GSK_E2E_FORK_SERVER=0: every worker is exec'd). Each class checks
at its end that every worker start was of the expected kind.

Every wait is a bounded poll; the only processes killed are ones the daemon reports as its
workers, or leftovers recognised by the E2E_TEST_DIR of a kernel of these tests."""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import (CLK_TCK, alive, cpu_seconds, proc_environ, start_ticks,  # noqa: E402
                     wait_for, wait_pids_gone)
from workers_support import (  # noqa: E402
    EXPECTED_KIND,
    RUNNING_TIMEOUT,
    WorkersTestCase,
    get_worker,
    launches,
    list_workers,
    marked_processes,
    shim_distribution,
    wait_running,
    wait_worker,
    without,
    worker_events,
    worker_log,
    worker_processes)


# --- healthy workers -----------------------------------------------------------------------------

class HealthyWorkersTest(WorkersTestCase):
    """One daemon, one kernel with workers=2 whose workers behave."""

    CONFIG = """
[workers]
start_seconds = 1
backoff_initial_seconds = 0.2
backoff_max_seconds = 1
"""
    SECRET = "e2e-secret-value-0123456789"

    # In the daemon's environment only (clean_env() copies ours): must not reach its workers.
    DAEMON_ONLY = "E2E_DAEMON_ONLY_VARIABLE"

    @classmethod
    def setUpClass(cls):
        os.environ[cls.DAEMON_ONLY] = "the-daemon-s-own"
        try:
            super().setUpClass()
        finally:
            del os.environ[cls.DAEMON_ONLY]
        cls.k = cls.add_kernel("healthy", workers=2, extra_env={"E2E_SECRET": cls.SECRET})

    def setUp(self):
        # Every test starts from the kernel started, with its 2 workers running.
        r = self.daemon.post("/api/v1/kernels/healthy/start", None)
        self.assertEqual(r.status, 200, r)
        self.workers = wait_running(self.daemon, "healthy", 2)

    def tearDown(self):
        self.assertHealthy(self.daemon)

    def test_workers_run_in_the_venv_with_own_cwd_and_process_group(self):
        d = self.daemon
        k = d.get("/api/v1/kernels/healthy").json
        self.assertIs(k["started"], True, k)
        self.assertEqual(k["runningWorkers"], 2, k)
        shim_name, shim_version = shim_distribution()
        cwds = set()
        daemon_env = proc_environ(d.pid)
        for w in self.workers:
            pid = w["pid"]
            shown = get_worker(d, w["id"])
            self.assertEqual(shown["kernel"], "healthy")
            self.assertEqual(shown["state"], "running")
            self.assertIs(shown["connected"], True, shown)
            self.assertIsNotNone(shown["startedAt"], shown)
            env = shown["environment"]
            self.assertEqual(env["pid"], pid, env)
            self.assertLaunchedAsExpected(d, shown)
            self.assertTrue(env["pythonVersion"].startswith("3.11."), env)
            self.assertEqual(shown["pythonVersion"], env["pythonVersion"])
            self.assertEqual(round(env["processStartTime"] * CLK_TCK), start_ticks(pid), env)
            exe = env["pythonExecutable"]
            venv = os.path.dirname(os.path.dirname(exe))
            self.assertTrue(exe.startswith(os.path.join(d.state_dir, "envs") + "/"), exe)
            self.assertEqual(os.path.basename(os.path.dirname(exe)), "bin", exe)
            self.assertTrue(os.path.isfile(os.path.join(venv, "pyvenv.cfg")), exe)
            packages = {p["name"]: p["version"] for p in env["packages"]}
            self.assertEqual(packages.get(shim_name), shim_version, env["packages"])
            # Its own working directory, <state>/workers/<id>, and its own process group.
            cwd = os.readlink(f"/proc/{pid}/cwd")
            cwds.add(cwd)
            self.assertEqual(os.path.realpath(cwd), os.path.realpath(
                os.path.join(d.state_dir, "workers", w["id"])))
            self.assertEqual(os.getpgid(pid), pid)
            # The environment: the clean base, the kernel's env, the GSK_ variables. (A subTest:
            # a mismatch here is reported without hiding the checks that follow.)
            with self.subTest(check="launch environment", worker=w["id"]):
                penv = proc_environ(pid)
                self.assertEqual(penv.get("E2E_SECRET"), self.SECRET)
                self.assertEqual(penv.get("GSK_WORKER_ID"), w["id"])
                self.assertEqual(penv.get("VIRTUAL_ENV"), venv)
                self.assertTrue(penv.get("PATH", "").startswith(os.path.join(venv, "bin") + ":"),
                                penv)
                self.assertEqual(penv.get("PYTHONUNBUFFERED"), "1")
                self.assertEqual(penv.get("LANG"), "C.UTF-8")
                self.assertEqual(penv.get("GSK_SUPERVISOR_SOCKET"),
                                 os.path.join(d.state_dir, "workers.sock"))
                self.assertEqual(daemon_env.get(self.DAEMON_ONLY), "the-daemon-s-own")
                self.assertNotIn(self.DAEMON_ONLY, penv, "the daemon's environment leaks")
                # Beyond the contract's base, the daemon sets LC_ALL and PYTHONDONTWRITEBYTECODE
                # itself (worker_service.cc): not leaks even when the daemon has them too.
                allowed = {"PATH", "HOME", "LANG", "VIRTUAL_ENV", "PYTHONUNBUFFERED",
                           "LC_ALL", "PYTHONDONTWRITEBYTECODE"} | set(self.k.env)
                leaked = sorted(key for key in set(daemon_env) & set(penv)
                                if key not in allowed and not key.startswith("GSK_"))
                self.assertEqual(leaked, [], "the daemon's own environment leaks into workers")
                self.assertEqual(os.path.realpath(penv.get("HOME", "")), os.path.realpath(cwd),
                                 "HOME is not the worker's own directory")
            # Its log says it registered.
            r = worker_log(d, w["id"])
            self.assertTrue(r.header("Content-Type", "").startswith("text/plain"), r)
            self.assertIn("registered with the supervisor", r.raw.decode("utf-8", "replace"))
            self.assertEqual(int(r.header("X-Next-Offset")), len(r.raw), r)
        self.assertEqual(len(cwds), 2, cwds)
        sock = os.stat(os.path.join(d.state_dir, "workers.sock"))
        self.assertEqual(sock.st_mode & 0o777, 0o600, oct(sock.st_mode))

    def test_worker_token_and_env_values_stay_secret(self):
        d = self.daemon
        for w in self.workers:
            # An exec'd worker's token came on an inherited pipe, a forked one's in the fork
            # request to its template: it is in no environment, not even the launch one that
            # /proc shows, and the pipe is closed once read.
            environ = proc_environ(w["pid"])
            self.assertNotIn("GSK_WORKER_TOKEN", environ)
            if EXPECTED_KIND == "exec":
                self.assertEqual(environ.get("GSK_WORKER_TOKEN_FD"), "3")
            else:
                self.assertNotIn("GSK_WORKER_TOKEN_FD", environ)
            self.assertEqual(environ.get("GSK_WORKER_ID"), w["id"])
            fd_dir = f"/proc/{w['pid']}/fd"
            links = []
            for fd in os.listdir(fd_dir):
                try:
                    links.append(os.readlink(os.path.join(fd_dir, fd)))
                except OSError:
                    pass
            self.assertFalse([l for l in links if l.startswith("pipe:")], links)
        shown = d.get("/api/v1/kernels/healthy").json
        self.assertNotEqual(shown["env"]["E2E_SECRET"], self.SECRET, shown)
        bodies = {
            "GET /kernels": d.get("/api/v1/kernels").raw,
            "GET /kernels/healthy": d.get("/api/v1/kernels/healthy").raw,
            "GET /workers": d.get("/api/v1/workers").raw,
            "GET /events": d.get("/api/v1/events?limit=1000").raw,
        }
        for w in self.workers:
            bodies[f"GET /workers/{w['id']}"] = d.get(f"/api/v1/workers/{w['id']}").raw
            bodies[f"GET /workers/{w['id']}/logs"] = worker_log(d, w["id"]).raw
        for what, body in bodies.items():
            text = body.decode("utf-8", "replace")
            self.assertNotIn(self.SECRET, text, f"{what} shows the kernel's env value")
            self.assertNotIn("GSK_WORKER_TOKEN", text, what)
        daemon_log = "\n".join(d.log_lines())
        self.assertNotIn(self.SECRET, daemon_log, "the daemon's log shows the kernel's env value")

    def test_killed_worker_is_restarted_with_the_same_id(self):
        d = self.daemon
        victim, other = self.workers
        os.kill(victim["pid"], signal.SIGKILL)
        w = wait_worker(d, victim["id"],
                        lambda w: w["state"] == "running" and w["pid"] not in (0, victim["pid"])
                        and alive(w["pid"]), "running again with a new pid", RUNNING_TIMEOUT)
        self.assertEqual(w["restarts"], victim["restarts"] + 1, w)
        self.assertIn("signal 9", w["exit"], w)
        self.assertLaunchedAsExpected(d, w)
        self.assertFalse(alive(victim["pid"]))
        recorded = [e for e in worker_events(d, victim["id"]) if "signal 9" in json.dumps(e)]
        self.assertTrue(recorded, worker_events(d, victim["id"]))
        # The other worker was left alone.
        o = get_worker(d, other["id"])
        self.assertEqual((o["pid"], o["restarts"], o["state"]),
                         (other["pid"], other["restarts"], "running"), o)
        self.assertEqual(len(list_workers(d, "healthy")), 2)

    def test_stop_start_and_restart_one_worker(self):
        d = self.daemon
        w0, other = self.workers
        r = d.post(f"/api/v1/workers/{w0['id']}/stop", None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["id"], w0["id"], r)
        w = wait_worker(d, w0["id"], lambda w: w["state"] == "stopped", "stopped", 20)
        self.assertEqual(w["pid"], 0, w)
        self.assertEqual(w["exit"], "exited with code 0", w)
        wait_pids_gone([w0["pid"]], 2, "stopped worker's process")
        time.sleep(1.5)  # a stopped worker is not replaced
        ws = list_workers(d, "healthy")
        self.assertEqual(sorted((x["id"], x["state"]) for x in ws),
                         sorted([(w0["id"], "stopped"), (other["id"], "running")]), ws)
        self.assertEqual(d.get("/api/v1/kernels/healthy").json["runningWorkers"], 1)
        self.assertEqual(len(worker_processes(self.k.dir)), 1)
        # Start it again: same id, a new process.
        r = d.post(f"/api/v1/workers/{w0['id']}/start", None)
        self.assertEqual(r.status, 200, r)
        w = wait_worker(d, w0["id"], lambda w: w["state"] == "running" and alive(w["pid"]),
                        "running again", RUNNING_TIMEOUT)
        self.assertNotEqual(w["pid"], w0["pid"])
        # Restart: a new process again.
        first = w["pid"]
        r = d.post(f"/api/v1/workers/{w0['id']}/restart", None)
        self.assertEqual(r.status, 200, r)
        wait_worker(d, w0["id"], lambda w: w["state"] == "running" and w["pid"] != first
                    and alive(w["pid"]), "running after a restart", RUNNING_TIMEOUT)
        wait_pids_gone([first], 2, "restarted worker's old process")
        self.assertEqual(get_worker(d, other["id"])["pid"], other["pid"])

    def test_kernel_stop_removes_workers_and_start_brings_them_back(self):
        d = self.daemon
        pids = [w["pid"] for w in self.workers]
        r = d.post("/api/v1/kernels/healthy/stop", None)
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json["started"], False, r)
        wait_for("workers of the stopped kernel removed", lambda: list_workers(d, "healthy"),
                 lambda ws: ws == [], 30)
        wait_pids_gone(pids, 2, "workers of the stopped kernel")
        k = d.get("/api/v1/kernels/healthy").json
        self.assertEqual((k["started"], k["runningWorkers"]), (False, 0), k)
        time.sleep(1.5)  # nothing comes back by itself
        self.assertEqual(list_workers(d, "healthy"), [])
        self.assertEqual(worker_processes(self.k.dir), [])
        r = d.post("/api/v1/kernels/healthy/start", None)
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json["started"], True, r)
        ws = wait_running(d, "healthy", 2)
        self.assertEqual(sorted(w["pid"] for w in ws), worker_processes(self.k.dir))
        self.assertEqual(d.get("/api/v1/kernels/healthy").json["runningWorkers"], 2)

    def test_deleted_worker_is_replaced_by_a_new_one(self):
        d = self.daemon
        gone, kept = self.workers
        r = d.request("DELETE", f"/api/v1/workers/{gone['id']}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"id": gone["id"], "deleted": True})
        ws = wait_for("a replacement worker", lambda: list_workers(d, "healthy"),
                      lambda ws: len(ws) == 2 and gone["id"] not in [w["id"] for w in ws]
                      and all(w["state"] == "running" for w in ws), RUNNING_TIMEOUT)
        self.assertIn(kept["id"], [w["id"] for w in ws])
        self.assertEqual(d.get(f"/api/v1/workers/{gone['id']}").status, 404)
        wait_pids_gone([gone["pid"]], 2, "the deleted worker's process")
        self.assertEqual(sorted(w["pid"] for w in ws), worker_processes(self.k.dir))
        self.assertIn("worker.removed", [e["kind"] for e in worker_events(d, gone["id"])])

    def test_cli_lists_and_shows_workers(self):
        d = self.daemon
        table = self.cli(d, "workers", "list").stdout
        for w in self.workers:
            line = [ln for ln in table.splitlines() if w["id"] in ln]
            self.assertEqual(len(line), 1, table)
            self.assertIn("running", line[0], table)

        def same(args, path):
            # Retried: a heartbeat or a state change may come between the two reads.
            for _ in range(3):
                cli = json.loads(self.cli(d, *args).stdout)
                rest = d.get(path).json
                if without(cli, "uptimeSeconds", "updatedAt") == \
                        without(rest, "uptimeSeconds", "updatedAt"):
                    return
            self.assertEqual(without(cli, "uptimeSeconds"), without(rest, "uptimeSeconds"))

        same(("workers", "list", "--json"), "/api/v1/workers")
        same(("workers", "list", "--kernel", "healthy", "--json"), "/api/v1/workers?kernel=healthy")
        wid = self.workers[0]["id"]
        same(("workers", "show", wid, "--json"), f"/api/v1/workers/{wid}")
        self.cli(d, "workers", "show", "no-such-worker", expect=4)

    def test_unknown_ids_and_bad_input(self):
        d = self.daemon
        for method, path in (("GET", "/api/v1/workers/no-such-worker"),
                             ("GET", "/api/v1/workers/no-such-worker/logs"),
                             ("POST", "/api/v1/workers/no-such-worker/stop"),
                             ("POST", "/api/v1/workers/no-such-worker/start"),
                             ("POST", "/api/v1/workers/no-such-worker/restart"),
                             ("DELETE", "/api/v1/workers/no-such-worker"),
                             ("POST", "/api/v1/kernels/no-such-kernel/start"),
                             ("POST", "/api/v1/kernels/no-such-kernel/stop")):
            with self.subTest(method=method, path=path):
                self.assertError(d.request(method, path), 404, "NOT_FOUND")
        for bad in (-1, "two", 1.5):
            with self.subTest(workers=bad):
                r = d.post("/api/v1/kernels/healthy/start", {"workers": bad})
                self.assertError(r, 422, "INVALID_ARGUMENT")
                self.assertEqual(r.json["error"]["details"].get("field"), "workers", r)
        r = d.post("/api/v1/kernels", {"name": "negative", "pythonVersion": "3.11",
                                       "requestedDependencies": [], "type": "PROCESS",
                                       "version": "1", "workers": -1})
        self.assertError(r, 422, "INVALID_ARGUMENT")
        self.assertEqual(r.json["error"]["details"].get("field"), "workers", r)
        self.assertEqual(d.get("/api/v1/kernels/negative").status, 404)
        self.assertEqual(d.get("/api/v1/workers", token=None).status, 401)
        # Nothing changed.
        self.assertEqual(d.get("/api/v1/kernels/healthy").json["workers"], 2)
        self.assertEqual(sorted((w["id"], w["pid"]) for w in wait_running(d, "healthy", 2)),
                         sorted((w["id"], w["pid"]) for w in self.workers))


# --- workers that fail to start ------------------------------------------------------------------

class FailingWorkersTest(WorkersTestCase):
    """Crash loops, a worker that never registers, a worker over its memory limit."""

    CONFIG = """
[workers]
registration_timeout_seconds = 1
backoff_initial_seconds = 0.1
backoff_max_seconds = 0.4
max_quick_failures = 4
memory_limit_mb = 200
open_files = 256
"""

    def tearDown(self):
        self.assertHealthy(self.daemon)

    def wait_fatal(self, kernel, timeout=30):
        ws = wait_for(f"the worker of {kernel} fatal", lambda: list_workers(self.daemon, kernel),
                      lambda ws: len(ws) == 1 and ws[0]["state"] == "fatal", timeout)
        return ws[0]

    def test_crash_loop_backs_off_then_goes_fatal_without_spinning(self):
        d = self.daemon
        k = self.kernel("crasher", "crash")
        w = self.wait_fatal("crasher")
        starts = launches(k.dir)
        self.assertEqual(len(starts), 4, starts)  # max_quick_failures launches, no more
        self.assertEqual(w["quickFailures"], 4, w)
        self.assertEqual(w["restarts"], 3, w)
        self.assertEqual(w["pid"], 0, w)
        self.assertEqual(w["exit"], "exited with code 3", w)
        self.assertTrue(w["lastError"], w)
        # The retries waited 0.1 + 0.2 + 0.4 s in all.
        self.assertGreaterEqual(starts[-1][0] - starts[0][0], 0.6, starts)
        kinds = [e["kind"] for e in worker_events(d, w["id"])]
        self.assertIn("worker.backoff", kinds)
        self.assertEqual(kinds.count("worker.fatal"), 1, kinds)
        self.assertEqual(d.get("/api/v1/kernels/crasher").json["runningWorkers"], 0)
        # Once fatal it stays so, and the daemon does not spin.
        cpu = cpu_seconds(d.pid)
        time.sleep(3)
        used = cpu_seconds(d.pid) - cpu
        self.assertLess(used, 0.5, f"the daemon used {used:.2f} s of CPU in 3 s of rest")
        self.assertEqual(len(launches(k.dir)), 4)
        self.assertEqual(get_worker(d, w["id"])["state"], "fatal")

    def test_a_fatal_worker_can_be_started_again(self):
        d = self.daemon
        k = self.kernel("crasher-again", "crash")
        w = self.wait_fatal("crasher-again")
        before = len(launches(k.dir))
        r = d.post(f"/api/v1/workers/{w['id']}/start", None)
        self.assertEqual(r.status, 200, r)
        wait_for("new launches after start", lambda: len(launches(k.dir)),
                 lambda n: n > before, 10)
        w = self.wait_fatal("crasher-again")
        self.assertGreater(len(launches(k.dir)), before)
        self.assertEqual(w["exit"], "exited with code 3", w)

    def test_worker_that_never_registers_is_killed_at_the_deadline(self):
        d = self.daemon
        k = self.kernel("silent", "never-register")
        first = wait_for("a first launch", lambda: launches(k.dir), lambda s: len(s) >= 1, 30,
                         interval=0.05)[0]
        launched_at, pid = first
        wait_pids_gone([pid], 10, "the unregistered worker")
        lived = time.time() - launched_at
        self.assertGreater(lived, 0.7, "killed before registration_timeout_seconds")
        self.assertLess(lived, 3.5, "not killed at registration_timeout_seconds (1 s)")
        ws = list_workers(d, "silent")
        self.assertEqual(len(ws), 1, ws)
        w = wait_worker(d, ws[0]["id"], lambda w: w["quickFailures"] >= 1 or w["restarts"] >= 1,
                        "counted as a failed start", 10, )
        self.assertIn("regist", (w["lastError"] or "").lower(), w)
        self.assertNotEqual(w["state"], "running", w)
        w = self.wait_fatal("silent", 30)
        self.assertEqual(len(launches(k.dir)), 4, launches(k.dir))
        self.assertTrue("SIGKILL" in w["exit"] or "signal 9" in w["exit"], w)
        self.assertIn("regist", (w["lastError"] or "").lower(), w)
        kinds = [e["kind"] for e in worker_events(d, w["id"])]
        self.assertIn("worker.backoff", kinds)
        self.assertNotIn("worker.running", kinds)
        self.assertEqual(worker_processes(k.dir), [])

    def test_worker_over_its_memory_limit_exits_with_memory_error(self):
        d = self.daemon
        self.kernel("hog", "hog")
        w = wait_for("the hog exits and is recorded", lambda: list_workers(d, "hog"),
                     lambda ws: len(ws) == 1 and ws[0]["state"] in ("backoff", "fatal")
                     and ws[0]["exit"], 30)[0]
        self.assertEqual(w["exit"], "exited with code 1", w)
        w = self.wait_fatal("hog")
        self.assertTrue(w["lastError"], w)
        log = worker_log(d, w["id"]).raw.decode("utf-8", "replace")
        self.assertNotIn("no RLIMIT_AS", log, "memory_limit_mb was not applied")
        self.assertIn("MemoryError", log)
        # ?offset= pages on through the same log.
        r = worker_log(d, w["id"], offset=10)
        self.assertEqual(r.raw.decode("utf-8", "replace"), log[10:])

    def test_a_normal_worker_runs_within_its_limits(self):
        d = self.daemon
        self.kernel("limited")
        w = wait_running(d, "limited", 1)[0]
        with open(f"/proc/{w['pid']}/limits") as f:
            limits = f.read()
        row = [ln for ln in limits.splitlines() if ln.startswith("Max address space")][0]
        self.assertEqual(row.split()[3:5], [str(200 * 1024 * 1024)] * 2, limits)
        row = [ln for ln in limits.splitlines() if ln.startswith("Max open files")][0]
        self.assertEqual(row.split()[3:5], ["256", "256"], limits)


# --- stopping workers that resist ----------------------------------------------------------------

class StoppingWorkersTest(WorkersTestCase):
    CONFIG = """
[workers]
stop_timeout_seconds = 1
backoff_initial_seconds = 0.2
backoff_max_seconds = 1
"""

    def tearDown(self):
        self.assertHealthy(self.daemon)

    def grandchildren(self, kernel, pids):
        def probe():
            out = {}
            for pid in pids:
                path = os.path.join(kernel.dir, f"grandchild-{pid}.pid")
                if os.path.exists(path):
                    with open(path) as f:
                        text = f.read().strip()
                    if text:
                        out[pid] = int(text)
            return out
        found = wait_for("grandchild pid files", probe, lambda g: len(g) == len(pids), 10)
        for pid, child in found.items():
            self.assertTrue(alive(child), child)
            self.assertEqual(os.getpgid(child), pid, "the grandchild is in the worker's group")
        return list(found.values())

    def test_worker_ignoring_sigterm_is_killed_after_stop_timeout(self):
        d = self.daemon
        k = self.kernel("stubborn", "ignore-sigterm")
        w = wait_running(d, "stubborn", 1)[0]
        t0 = time.monotonic()
        r = d.post(f"/api/v1/workers/{w['id']}/stop", None)
        self.assertEqual(r.status, 200, r)
        self.assertIn(r.json["state"], ("stopping", "stopped"), r)
        wait_pids_gone([w["pid"]], 8, "the worker that ignores SIGTERM")
        took = time.monotonic() - t0
        self.assertGreater(took, 0.8, "SIGKILL came before stop_timeout_seconds (1 s)")
        s = wait_worker(d, w["id"], lambda s: s["state"] == "stopped", "stopped", 5)
        self.assertEqual(s["pid"], 0, s)
        self.assertTrue("SIGKILL" in s["exit"] or "signal 9" in s["exit"], s)
        time.sleep(1.5)  # stopped, not replaced
        self.assertEqual([(x["id"], x["state"]) for x in list_workers(d, "stubborn")],
                         [(w["id"], "stopped")])
        self.assertEqual(worker_processes(k.dir), [])
        kinds = [e["kind"] for e in worker_events(d, w["id"])]
        self.assertIn("worker.stopping", kinds)
        self.assertEqual(kinds[-1], "worker.stopped", kinds)

    def test_stopping_a_worker_kills_its_grandchild(self):
        d = self.daemon
        k = self.kernel("spawner", "grandchild")
        w = wait_running(d, "spawner", 1)[0]
        [child] = self.grandchildren(k, [w["pid"]])
        r = d.post(f"/api/v1/workers/{w['id']}/stop", None)
        self.assertEqual(r.status, 200, r)
        wait_worker(d, w["id"], lambda s: s["state"] == "stopped", "stopped", 10)
        wait_pids_gone([w["pid"], child], 2, "the stopped worker and its grandchild")
        self.assertEqual(marked_processes(k.dir), [])

    def test_stopping_the_kernel_kills_the_grandchildren(self):
        d = self.daemon
        k = self.kernel("spawners", "grandchild", workers=2)
        ws = wait_running(d, "spawners", 2)
        pids = [w["pid"] for w in ws]
        children = self.grandchildren(k, pids)
        r = d.post("/api/v1/kernels/spawners/stop", None)
        self.assertEqual(r.status, 200, r)
        wait_for("workers of the stopped kernel removed", lambda: list_workers(d, "spawners"),
                 lambda ws: ws == [], 15)
        wait_pids_gone(pids + children, 2, "the workers and their grandchildren")
        self.assertEqual(marked_processes(k.dir), [])


# --- the daemon's own end: crash, orphans, SIGTERM ----------------------------------------------

class SupervisorRestartTest(WorkersTestCase):
    """A daemon per test: each ends it its own way."""

    SHARED_DAEMON = False

    def start_with_workers(self, config, name, count=2):
        d = self.new_daemon(config_text=self.base_config() + config).start()
        self.warm_up(d)
        k = self.kernel(name, workers=count, daemon=d)
        ws = wait_running(d, name, count)
        self.assertEqual(sorted(w["pid"] for w in ws), worker_processes(k.dir))
        return d, k, ws

    def test_workers_survive_a_daemon_crash_and_are_adopted(self):
        d, k, ws = self.start_with_workers("[workers]\nreconnect_seconds = 60\n", "survivor")
        before = {w["id"]: w["pid"] for w in ws}
        for pid in before.values():
            self.assertEqual(proc_environ(pid).get("GSK_ORPHAN_GRACE_SECONDS"), "60")
        d.kill()
        time.sleep(1)
        self.assertEqual(sorted(before.values()), worker_processes(k.dir),
                         "workers died with the daemon")
        d.start()
        counts = set()

        def probe():
            counts.add(len(worker_processes(k.dir)))
            return list_workers(d, "survivor")
        after = wait_for("the same workers adopted and running", probe,
                         lambda ws: {w["id"]: w["pid"] for w in ws} == before
                         and all(w["state"] == "running" and w["connected"] for w in ws), 30)
        self.assertEqual(max(counts), 2, "extra worker processes were started")
        self.assertEqual([w["restarts"] for w in after], [0, 0], after)
        time.sleep(3)  # and none come later
        self.assertEqual(worker_processes(k.dir), sorted(before.values()))
        self.assertEqual({w["id"]: (w["pid"], w["state"]) for w in list_workers(d, "survivor")},
                         {i: (p, "running") for i, p in before.items()})
        self.assertEqual(d.get("/api/v1/kernels/survivor").json["runningWorkers"], 2)
        # The new daemon also stops the adopted workers (not its children) on SIGTERM.
        self.assertEqual(d.stop(), 0, d.log())
        wait_pids_gone(list(before.values()), 3, "adopted workers after the daemon's SIGTERM")

    def test_orphaned_workers_exit_by_themselves(self):
        d, k, ws = self.start_with_workers("[workers]\nreconnect_seconds = 2\n", "orphans")
        pids = [w["pid"] for w in ws]
        for pid in pids:
            self.assertEqual(proc_environ(pid).get("GSK_ORPHAN_GRACE_SECONDS"), "2")
        d.kill()
        killed_at = time.monotonic()
        time.sleep(0.5)
        self.assertEqual(worker_processes(k.dir), sorted(pids), "orphans exited at once")
        wait_pids_gone(pids, 12, "orphaned workers (reconnect_seconds = 2)")
        took = time.monotonic() - killed_at
        self.assertGreater(took, 1.5, "orphans exited before the grace period")

    def test_sigterm_stops_every_worker_and_exits_0(self):
        d, k, ws = self.start_with_workers("", "terminated")
        pids = [w["pid"] for w in ws]
        logs = [os.path.join(d.state_dir, w["logFile"]) for w in ws]  # absolute: unchanged
        self.assertEqual(d.stop(signal.SIGTERM), 0, d.log())
        wait_pids_gone(pids, 1, "workers after the daemon exited")
        self.assertEqual(marked_processes(k.dir), [])
        # Gracefully: each shim was asked to stop (SIGTERM or a shutdown request) and stopped
        # by itself, with no SIGKILL needed.
        for path in logs:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            self.assertTrue("received SIGTERM" in text or "shutdown requested" in text,
                            f"{path}:\n{text[-2000:]}")
            self.assertIn("INFO giskard-worker", text.splitlines()[-1], text[-2000:])
            self.assertTrue(text.rstrip().endswith("stopped"), f"{path}:\n{text[-2000:]}")


if __name__ == "__main__":
    h.main()
