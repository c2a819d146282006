"""End-to-end: the fork server. The daemon keeps a template process per env (the env's Python
running `giskard_worker_shim serve-template`) and forks workers from it (PROTOCOL.md, "Fork
server (templates)"). Seen from outside, through REST, the daemon's and the templates' logs, and
/proc: that forked workers are really forked, hold none of the template's descriptors, and get
the kernel's environment, working directory and limits; which kernels get an exec'd worker
instead; and the template's faults: killed, hung (SIGSTOP), its env deleted under it. Each
fault test has an env of its own (a kernel with one more test wheel), so that a template it
breaks is no other test's.

The first worker of an env is exec'd while its template starts: WorkersTestCase.warm_up makes a
one-worker kernel and waits until the template is ready, so that later workers are forked."""

import json
import os
import re
import shutil
import signal
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import alive, proc_cmdline, proc_environ, wait_for, wait_pids_gone  # noqa: E402
from workers_support import (  # noqa: E402
    RUNNING_TIMEOUT,
    WorkersTestCase,
    env_name,
    forked_from,
    get_worker,
    launch_kind,
    launch_kinds,
    list_workers,
    template_log,
    template_pids,
    wait_running,
    wait_template_ready,
    wait_worker)

FORK_TIMEOUT = 2.0  # ForkOptions::fork_timeout: how long the daemon waits for a fork's answer
IDLE_SECONDS = 1    # [workers] template_idle_seconds of these tests
MEMORY_MB, OPEN_FILES, PROCESSES = 300, 300, 4000  # the [workers] limits of these tests


# --- /proc and sock_diag -------------------------------------------------------------------------

def fd_table(pid):
    """{fd: what it refers to} of a live process ("socket:[inode]", a path, "pipe:[...]")."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass  # closed in between
    return out


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def limits_text(pid):
    with open(f"/proc/{pid}/limits") as f:
        return f.read()


def limit_row(text, name):
    """(soft, hard) of the row of /proc/<pid>/limits that starts with `name`."""
    row = [ln for ln in text.splitlines() if ln.startswith(name)][0]
    return tuple(row[len(name):].split()[:2])


def unix_sockets():
    """{inode: (peer inode or 0, bound path or "")} of every Unix socket, from the kernel's
    sock_diag interface (what `ss -x` reads), with the standard library only."""
    netlink_sock_diag, sock_diag_by_family = 4, 20
    nlm_f_request, nlm_f_dump = 0x1, 0x300
    udiag_show_name, udiag_show_peer = 0x1, 0x4
    unix_diag_name, unix_diag_peer = 0, 2
    request = struct.pack("=BBHIIIII", socket.AF_UNIX, 0, 0, 0xffffffff, 0,
                          udiag_show_name | udiag_show_peer, 0xffffffff, 0xffffffff)
    header = struct.pack("=IHHII", 16 + len(request), sock_diag_by_family,
                         nlm_f_request | nlm_f_dump, 1, 0)
    found = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, netlink_sock_diag) as s:
        s.settimeout(5)
        s.sendto(header + request, (0, 0))
        while True:
            data = s.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == 3:  # NLMSG_DONE
                    return found
                if kind == 2:  # NLMSG_ERROR
                    raise OSError("sock_diag answered an error")
                inode = struct.unpack_from("=I", data, offset + 16 + 4)[0]
                peer, name = 0, ""
                attr = offset + 16 + 16
                while attr + 4 <= offset + length:
                    alen, atype = struct.unpack_from("=HH", data, attr)
                    if alen < 4:
                        break
                    payload = data[attr + 4:attr + alen]
                    if atype == unix_diag_peer:
                        peer = struct.unpack("=I", payload[:4])[0]
                    elif atype == unix_diag_name:
                        name = payload.split(b"\0", 1)[0].decode("utf-8", "replace")
                    attr += (alen + 3) & ~3
                found[inode] = (peer, name)
                offset += (length + 3) & ~3


def socket_inode(target):
    return int(target[len("socket:["):-1]) if target.startswith("socket:[") else None


def signal_state(pid):
    s = status_fields(pid)
    return {k: s[k] for k in ("SigBlk", "SigIgn", "SigCgt")}


# --- the tests -----------------------------------------------------------------------------------

class ForkServerTest(WorkersTestCase):
    """One daemon; its main env's template is warmed up at the start (the warm-up kernel keeps an
    exec'd worker running), and each fault test makes an env of its own."""

    CONFIG = f"""
[workers]
fork_server = true
template_idle_seconds = {IDLE_SECONDS}
registration_timeout_seconds = 10
backoff_initial_seconds = 0.1
backoff_max_seconds = 0.4
max_quick_failures = 3
stop_timeout_seconds = 2
memory_limit_mb = {MEMORY_MB}
open_files = {OPEN_FILES}
max_processes = {PROCESSES}
"""

    @classmethod
    def setUpClass(cls):
        if not h.FORK_SERVER:
            raise unittest.SkipTest("GSK_E2E_FORK_SERVER=0: these tests are about the fork server")
        super().setUpClass()
        _, cls.env, cls.template = cls.warm
        cls.exec_worker = list_workers(cls.daemon, "warm-up")[0]
        cls.envs = 0

    def tearDown(self):
        self.assertHealthy(self.daemon)

    @classmethod
    def own_env(cls, tag):
        """A requirement that gives a kernel an env of its own (a wheel of its own), and its
        warmed-up template: (requirements, warm-up kernel, env name, template pid)."""
        name = f"gsk-e2e-env-{tag}"
        h.write_package_wheel(cls.e2e_wheels, name, "1.0",
                              {f"gsk_e2e_env_{tag.replace('-', '_')}/__init__.py": ""})
        requirements = [f"{name}==1.0"]
        k, env, template = cls.warm_up(cls.daemon, requirements, name=f"warm-{tag}")
        return requirements, k, env, template

    def forked_workers(self, name, count, template, checked=True, **kw):
        """A kernel of `count` workers, all forked from `template`; returns them. `checked`: all
        its workers, later ones too, must be forked (see WorkersTestCase)."""
        self.kernel(name, workers=count, checked=checked, **kw)
        ws = wait_running(self.daemon, name, count)
        for w in ws:
            self.assertEqual(launch_kind(w["pid"]), "forked", proc_cmdline(w["pid"]))
            self.assertEqual(forked_from(self.daemon, w), template, w)
        return ws

    def wait_log(self, what, pattern, timeout=15):
        return wait_for(what, lambda: [ln for ln in self.daemon.log_lines() if pattern in ln],
                        lambda lines: lines, timeout)

    # --- what a forked worker is ---------------------------------------------------------------

    def test_a_forked_worker_comes_from_its_env_s_template(self):
        d = self.daemon
        (w,) = self.forked_workers("forked", 1, self.template)
        pid = w["pid"]
        # The template: the one the daemon started for this env, the env's Python running
        # serve-template, a child of the daemon. The worker has the template's command line
        # (PROTOCOL.md's caveat) but is no child of it: the daemon, a child subreaper, adopted it.
        self.assertEqual(template_pids(d, self.env), [self.template], d.log())
        venv_python = os.path.join(d.state_dir, "envs", self.env, "bin", "python")
        self.assertEqual(h.proc_argv(self.template),
                         [venv_python, "-m", "giskard_worker_shim", "serve-template"])
        self.assertEqual(h.proc_argv(pid), h.proc_argv(self.template))
        self.assertEqual(status_fields(self.template)["PPid"], str(d.pid))
        self.assertEqual(status_fields(pid)["PPid"], str(d.pid))
        self.assertEqual(os.getpgid(pid), pid)
        self.assertNotIn("GSK_TEMPLATE_FD", proc_environ(pid))
        self.assertIn(f"forked worker {w['id']} as pid {pid} ", template_log(d, self.env))
        # It reports itself (hello) as a worker of the env, with its own pid and start time.
        env = get_worker(d, w["id"])["environment"]
        self.assertEqual(env["pid"], pid, env)
        self.assertEqual(round(env["processStartTime"] * h.CLK_TCK), h.start_ticks(pid), env)
        self.assertEqual(env["pythonExecutable"], venv_python, env)
        # The exec'd worker of the same env (the env's first, started while the template warmed
        # up) has a command line of its own.
        self.assertEqual(launch_kind(self.exec_worker["pid"]), "exec")
        self.assertIsNone(forked_from(d, self.exec_worker))

    def test_a_forked_worker_holds_none_of_the_template_s_descriptors(self):
        d = self.daemon
        (w,) = self.forked_workers("clean", 1, self.template)
        forked, template = fd_table(w["pid"]), fd_table(self.template)
        executed = fd_table(self.exec_worker["pid"])
        # The template holds its socket to the daemon, and (the test wheel's doing, as a
        # preloaded model might) a file and a socket pair: none of them reached the worker.
        held = os.path.join(d.state_dir, "envs", self.env, "lib")
        self.assertTrue([t for t in template.values()
                         if t.startswith(held) and t.endswith("/e2e_misbehave.py")], template)
        self.assertGreaterEqual(len([t for t in template.values() if socket_inode(t)]), 3,
                                template)
        shared = (set(forked.values()) & set(template.values())) - {"/dev/null"}
        self.assertEqual(shared, set(), f"worker {forked}\ntemplate {template}")
        # What it holds: /dev/null, its own log, and sockets, on the same numbers as the exec'd
        # worker of the same env.
        log = os.path.join(d.state_dir, get_worker(d, w["id"])["logFile"])
        self.assertEqual((forked[0], forked[1], forked[2]), ("/dev/null", log, log), forked)
        self.assertEqual(sorted(forked), sorted(executed), f"forked {forked}\nexec'd {executed}")
        sockets = {fd: socket_inode(t) for fd, t in forked.items() if fd > 2}
        self.assertNotIn(None, sockets.values(), forked)
        # Which sockets: one connected to the daemon's workers.sock, and the worker's own pair
        # (its signal wake-up, worker.py), each end's peer in the worker itself.
        table = unix_sockets()
        daemon_inodes = {socket_inode(t) for t in fd_table(d.pid).values()}
        workers_sock = os.path.join(d.state_dir, "workers.sock")
        to_daemon = [fd for fd, ino in sockets.items()
                     if table.get(ino, (0, ""))[0] in daemon_inodes
                     and table[table[ino][0]][1] == workers_sock]
        self.assertEqual(len(to_daemon), 1, [(fd, table.get(i)) for fd, i in sockets.items()])
        own = {fd: table.get(ino, (0, ""))[0] for fd, ino in sockets.items()
               if fd not in to_daemon}
        self.assertEqual(len(own), 2, own)
        self.assertEqual(set(own.values()), {sockets[fd] for fd in own}, own)
        # Signals: as an exec'd worker has them (none blocked, the same ignored and caught).
        self.assertEqual(signal_state(w["pid"]), signal_state(self.exec_worker["pid"]))

    def test_the_kernel_s_environment_cwd_and_limits_reach_a_forked_worker(self):
        d = self.daemon
        home = self.new_dir("home")
        kenv = {"E2E_SECRET": "s3cret value", "E2E_ODD": "a b=c \u00fc\ttab", "HOME": home}
        (w,) = self.forked_workers("configured", 1, self.template, extra_env=kenv)
        # Its exec'd twin: the same variables, forkServer false.
        self.kernel("configured-exec", extra_env=kenv, fields={"forkServer": False},
                    checked=False)
        (x,) = wait_running(d, "configured-exec", 1)
        self.assertEqual(launch_kind(x["pid"]), "exec")
        forked, executed = proc_environ(w["pid"]), proc_environ(x["pid"])
        for key, value in kenv.items():
            self.assertEqual(forked.get(key), value, key)
        # Exactly the exec'd worker's environment, but for what is the worker's own, and the
        # token's pipe (a forked worker gets its token in the fork request).
        own = ("GSK_WORKER_ID", "GSK_KERNEL", "E2E_TEST_DIR")
        self.assertEqual(executed.pop("GSK_WORKER_TOKEN_FD"), "3")
        self.assertEqual({k: v for k, v in forked.items() if k not in own},
                         {k: v for k, v in executed.items() if k not in own})
        self.assertEqual((forked["GSK_WORKER_ID"], forked["GSK_KERNEL"]), (w["id"], "configured"))
        # Its own working directory, created mode 0700.
        cwd = os.readlink(f"/proc/{w['pid']}/cwd")
        self.assertEqual(cwd, os.path.join(d.state_dir, "workers", w["id"]))
        self.assertEqual(os.stat(cwd).st_mode & 0o777, 0o700)
        # The configured limits, as the exec'd worker has them; not the template's.
        limits = limits_text(w["pid"])
        self.assertEqual(limits, limits_text(x["pid"]))
        mem = str(MEMORY_MB * 1024 * 1024)
        self.assertEqual(limit_row(limits, "Max address space"), (mem, mem), limits)
        self.assertEqual(limit_row(limits, "Max open files"), (str(OPEN_FILES),) * 2, limits)
        self.assertEqual(limit_row(limits, "Max processes"), (str(PROCESSES),) * 2, limits)
        self.assertNotEqual(limit_row(limits_text(self.template), "Max address space"),
                            (mem, mem), "the template itself runs under a worker's limits")

    def test_a_python_variable_or_opting_out_gets_an_exec_d_worker(self):
        d = self.daemon
        self.forked_workers("forkable", 1, self.template)  # the template forks this env's workers
        for name, extra, fields in (("hashseed", {"PYTHONHASHSEED": "123"}, {}),
                                    ("opted-out", {}, {"forkServer": False})):
            with self.subTest(kernel=name):
                k = self.kernel(name, extra_env=extra, fields=fields, checked=False)
                (w,) = wait_running(d, name, 1)
                self.assertEqual(env_name(d, w["id"]), self.env)
                self.assertEqual(launch_kind(w["pid"]), "exec", proc_cmdline(w["pid"]))
                self.assertIsNone(forked_from(d, w))
                self.assertEqual(set(launch_kinds(k.dir).values()), {"exec"})
                for key, value in extra.items():
                    self.assertEqual(proc_environ(w["pid"]).get(key), value)
                self.assertEqual(d.get(f"/api/v1/kernels/{name}").json["forkServer"],
                                 not fields, name)
        self.assertEqual(template_pids(d, self.env), [self.template])

    def test_a_kernel_that_preloads_a_model_gets_a_template_that_loaded_it(self):
        d = self.daemon
        loads = os.path.join(self.new_dir("preload"), "loads")
        model = os.path.join(d.state_dir, "models", "preload-model")
        os.makedirs(os.path.join(model, "src"))
        with open(os.path.join(model, "giskard-model.json"), "w") as f:
            json.dump({"entrypoint": "e2e_premod:MODEL", "code": ["src"]}, f)
        with open(os.path.join(model, "src", "e2e_premod.py"), "w") as f:
            f.write("import os\n"
                    f"with open({loads!r}, 'a') as f:\n"
                    "    f.write(f'{os.getpid()}\\n')\n\n\n"
                    "class Model:\n"
                    "    def predict(self, X):\n"
                    "        return [os.getpid() for _ in X]\n\n\n"
                    "MODEL = Model()\n")
        # A path outside the model roots is refused when the kernel is written.
        doc = {"name": "preload-refused", "pythonVersion": "3.11", "workers": 0,
               "preloadModels": ["preload-model", "/etc/passwd"]}
        r = d.post("/api/v1/kernels", doc)
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json["error"]["details"].get("field"), "preloadModels[1]", r)
        self.assertIn("outside the model roots", r.json["error"]["message"], r)
        # The kernel's env is the main one, but a preload list gets a template of its own, which
        # imports the model before it forks: its first worker is exec'd meanwhile.
        self.kernel("preloading", fields={"preloadModels": ["preload-model"]}, checked=False)
        self.assertEqual(d.get("/api/v1/kernels/preloading").json["preloadModels"],
                         ["preload-model"])
        (first,) = wait_running(d, "preloading", 1)
        self.assertEqual(launch_kind(first["pid"]), "exec")
        starting = re.compile(rf"event=template\.starting env=({re.escape(self.env)}-preload-\w+)"
                              r" pid=(\d+) preload=1")
        name, pid = wait_for("the preloading template started",
                             lambda: [m.groups() for m in map(starting.search, d.log_lines()) if m],
                             lambda found: found, 30)[-1]
        template = wait_template_ready(d, name)
        self.assertEqual(template, int(pid))
        self.assertIn(f"preloaded model {os.path.realpath(model)} (entrypoint",
                      template_log(d, name))
        self.assertEqual(template_pids(d, self.env), [self.template])  # the plain one is kept
        # Two more workers: forked from the preloading template, with the model already loaded.
        r = d.post("/api/v1/kernels/preloading/start", {"workers": 3})
        self.assertEqual(r.status, 200, r)
        ws = wait_running(d, "preloading", 3)
        forked = [w for w in ws if w["pid"] != first["pid"]]
        for w in forked:
            self.assertEqual(launch_kind(w["pid"]), "forked", proc_cmdline(w["pid"]))
            self.assertEqual(forked_from(d, w), template, w)
        # Loading it on every worker imports it once more only: in the exec'd worker.
        r = d.post("/api/v1/kernels/preloading/models", {"model": "preload-model"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["loaded"], 3, r)
        with open(loads) as f:
            imported = sorted(int(line) for line in f.read().split())
        self.assertEqual(imported, sorted([template, first["pid"]]), ws)
        for _ in range(3):
            r = d.post("/api/v1/kernels/preloading/predict",
                       {"model": "preload-model", "rows": [[1], [2]]})
            self.assertEqual(r.status, 200, r)
            served = [w["pid"] for w in ws if w["id"] == r.json["worker"]]
            self.assertEqual(r.json["predictions"], served * 2, r)

    # --- the template's faults -----------------------------------------------------------------

    def test_a_killed_template_is_started_again_and_workers_keep_starting(self):
        d = self.daemon
        requirements, _, env, first = self.own_env("killed")
        ws = self.forked_workers("phoenix", 2, first, checked=False, requirements=requirements)
        os.kill(first, signal.SIGKILL)
        wait_pids_gone([first], 10, "the killed template")
        self.wait_log("the template's death logged", f"event=template.exited env={env}")
        # Its workers live on.
        for w in ws:
            self.assertTrue(alive(w["pid"]), w)
            self.assertEqual(get_worker(d, w["id"])["state"], "running")
        # A worker killed now is replaced (exec'd while a new template starts) ...
        victim, other = ws
        os.kill(victim["pid"], signal.SIGKILL)
        r = wait_worker(d, victim["id"], lambda w: w["state"] == "running"
                        and w["pid"] not in (0, victim["pid"]) and alive(w["pid"]),
                        "replaced after the template died", RUNNING_TIMEOUT)
        self.assertEqual(launch_kind(r["pid"]), "exec")
        second = wait_template_ready(d, env)
        self.assertNotEqual(second, first)
        self.assertEqual(template_pids(d, env), [first, second])
        # ... and the next one is forked from the new template.
        os.kill(other["pid"], signal.SIGKILL)
        r = wait_worker(d, other["id"], lambda w: w["state"] == "running"
                        and w["pid"] not in (0, other["pid"]) and alive(w["pid"]),
                        "replaced by a fork of the new template", RUNNING_TIMEOUT)
        self.assertEqual(launch_kind(r["pid"]), "forked")
        self.assertEqual(forked_from(d, r), second)

    def test_a_hung_template_is_given_up_after_the_fork_timeout(self):
        d = self.daemon
        requirements, _, env, template = self.own_env("hung")
        victim, other = self.forked_workers("frozen", 2, template, checked=False,
                                            requirements=requirements)
        os.kill(template, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            os.kill(victim["pid"], signal.SIGKILL)
            r = wait_worker(d, victim["id"], lambda w: w["state"] == "running"
                            and w["pid"] not in (0, victim["pid"]) and alive(w["pid"]),
                            "replaced despite the hung template", RUNNING_TIMEOUT)
            took = time.monotonic() - t0
            # By exec, once the daemon gave up waiting for the fork's answer; the template was
            # killed (stopped or not).
            self.assertEqual(launch_kind(r["pid"]), "exec", proc_cmdline(r["pid"]))
            self.assertGreaterEqual(took, FORK_TIMEOUT * 0.9, "no fork was even tried")
            self.wait_log("the template retired", f"event=template.retired env={env} "
                          f"reason=\"the template did not answer a fork within")
            wait_pids_gone([template], 10, "the hung template")
            self.assertEqual(get_worker(d, other["id"])["pid"], other["pid"])
            # Until the daemon tries the template again, the env's workers are exec'd at once.
            t0 = time.monotonic()
            os.kill(other["pid"], signal.SIGKILL)
            r = wait_worker(d, other["id"], lambda w: w["state"] == "running"
                            and w["pid"] not in (0, other["pid"]) and alive(w["pid"]),
                            "replaced by exec", RUNNING_TIMEOUT)
            self.assertEqual(launch_kind(r["pid"]), "exec")
            self.assertEqual(template_pids(d, env), [template])
        finally:
            if alive(template):
                os.kill(template, signal.SIGCONT)
                os.kill(template, signal.SIGKILL)

    def test_a_deleted_env_fails_the_next_start_clearly(self):
        d = self.daemon
        requirements, _, env, template = self.own_env("deleted")
        victim, other = self.forked_workers("homeless", 2, template, checked=False,
                                            requirements=requirements)
        venv = os.path.join(d.state_dir, "envs", env)
        shutil.rmtree(venv)
        os.kill(victim["pid"], signal.SIGKILL)
        # The next start fails (no template forks from a deleted env, and its Python is gone)
        # and says why; the worker backs off to fatal, nothing hangs.
        w = wait_worker(d, victim["id"], lambda w: w["state"] == "fatal", "fatal", 30)
        self.assertEqual(w["pid"], 0, w)
        self.assertIn(os.path.join(venv, "bin", "python"), w["lastError"] or "", w)
        self.wait_log("the template retired", f"event=template.retired env={env} "
                      f"reason=\"its interpreter {venv}/bin/python is gone")
        wait_pids_gone([template], 10, "the template of the deleted env")
        # The worker that was running goes on, and the daemon and its other envs are fine.
        self.assertEqual(get_worker(d, other["id"])["state"], "running")
        self.assertTrue(alive(other["pid"]))
        self.assertHealthy(d)
        self.forked_workers("elsewhere", 1, self.template)

    def test_a_template_lives_while_its_env_has_workers_then_stops(self):
        d = self.daemon
        requirements, _, env, template = self.own_env("idle")
        self.forked_workers("idler", 1, template, requirements=requirements)
        r = d.post("/api/v1/kernels/idler/stop", None)
        self.assertEqual(r.status, 200, r)
        wait_for("the idler's worker gone", lambda: list_workers(d, "idler"), lambda ws: not ws,
                 15)
        # Its env still has a worker (warm-idle's, exec'd): the template must not stop, and a
        # worker started after the idle time is still forked from it.
        time.sleep(IDLE_SECONDS * 2)
        r = d.post("/api/v1/kernels/idler/start", None)
        self.assertEqual(r.status, 200, r)
        (w,) = wait_running(d, "idler", 1)
        self.assertEqual(forked_from(d, w), template, d.log())
        self.assertTrue(alive(template))
        # No kernel of the env runs any more: the template stops after the idle time.
        for name in ("idler", "warm-idle"):
            r = d.post(f"/api/v1/kernels/{name}/stop", None)
            self.assertEqual(r.status, 200, r)
        wait_pids_gone([template], IDLE_SECONDS + 10, "the template of an env no longer in use")
        self.wait_log("the template stopped", f"event=template.stopping env={env}")


if __name__ == "__main__":
    h.main()
