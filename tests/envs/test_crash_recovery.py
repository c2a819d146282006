#!/usr/bin/env python3
"""Crash recovery of environment builds: `kill -9` of giskard-supervisor while a build runs (in
the venv step, in the pip step, with another build queued, after the env was ready), then a
restart on the same state directory.

What must hold: no env is marked ready that was not finished; what the interrupted build left is
deleted and built again; the final env works; the build processes of the killed daemon do not go
on running (they would write into the directory the new daemon rebuilds).

    /usr/bin/python3 tests/envs/test_crash_recovery.py --binary BUILD/supervisor/giskard-supervisor
"""

import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402

GRACE = 5.0  # seconds the build processes of a killed daemon get to exit
ORPHAN_BUG = ("build processes run in their own process group and outlive a kill -9 of the "
              "daemon (no PR_SET_PDEATHSIG); the restarted daemon does not kill them either, so "
              "an old pip can go on writing into the directory the new build uses")


def env_row_status(state_dir, env_hash):
    """The envs row's status in the daemon's SQLite file (the daemon is dead), None if no row."""
    path = os.path.join(state_dir, "supervisor.db")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT status FROM envs WHERE hash = ?", (env_hash,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


class CrashTestCase(h.EnvTestCase):

    def kill_and_check_builders(self, d, env_dir):
        """kill -9 the daemon; returns the build processes still alive GRACE seconds later
        (after SIGKILLing them, so that they cannot disturb the rest of the test)."""
        self.assertTrue(h.processes_mentioning(env_dir), "no build process is running")
        d.kill()
        survivors = h.wait_no_process_mentioning(env_dir, GRACE)
        if survivors:
            h.kill_leftovers(env_dir)
            self.assertEqual(h.wait_no_process_mentioning(env_dir, 10), [])
        return survivors

    def check_builders_end(self, d, name, env_dir, release=None):
        """kill -9 the daemon mid-build, restart it: the old build processes must be gone by
        the time the restarted daemon is ready at the latest (at the kill, ideally)."""
        old = [(pid, h.start_ticks(pid)) for pid, _ in h.processes_mentioning(env_dir)]
        self.assertTrue(old, "no build process is running")
        d.kill()
        after_kill = h.wait_gone_processes(old, GRACE)
        try:
            d.start()
            after_restart = h.wait_gone_processes(old, GRACE)
        finally:
            h.kill_processes(old)
        if release:
            release()
        if d.running():
            d.wait_status(name)
        self.assertEqual(after_restart, [],
                         f"build processes of the killed daemon {after_kill} were still running "
                         f"{GRACE} s after the kill and {GRACE} s after the restart (the test "
                         "killed them)")

    def plant_leftover(self, env_dir):
        """What a half-finished build leaves: a directory with some files (no ready marker)."""
        os.makedirs(os.path.join(env_dir, "lib"), exist_ok=True)
        sentinel = os.path.join(env_dir, "lib", "left-by-the-crash")
        with open(sentinel, "w") as f:
            f.write("half-written\n")
        return sentinel

    def restart_and_wait(self, d, name, env_hash, sentinel, release=None):
        """Restarts `d` on its state dir; checks the kernel is not ready before its build ends,
        then ready with the leftover gone and the env working. `release` is called once the
        restarted daemon answered its first GET (to let a held build go on)."""
        d.start()
        first = self.kernel(d, name)
        self.assertIn(first["status"], ("pending", "building"), first)
        if release:
            release()
        seen = [first["status"]]
        k = d.wait_status(name, seen=seen)
        self.assertEqual(k["status"], "ready", f"{k}\n{d.build_log(name)[-3000:]}")
        self.assertNotIn("ready", seen[:-1], seen)
        self.assertEqual(k["envHash"], env_hash)
        self.assertFalse(os.path.exists(sentinel), "the leftover of the crash was not deleted")
        env_dir = self.env_dir(d, env_hash)
        self.assertTrue(any("event=env.cleanup" in line and env_dir in line
                            for line in d.log_lines()), d.log())
        h.run_in_env(env_dir, "import giskard_worker_shim")
        self.assertEqual(len(self.env_events(d, env_hash, "env.build_started")), 2)
        return env_dir


class KillDuringPip(CrashTestCase):

    def start_held_build(self, **config):
        """A daemon whose build of kernel crash-pip is inside pip, held at the index."""
        index = self.start_index(held=True)
        d = self.start_daemon(h.config_toml(index_url=index.url, **config))
        py = self.pick_python(d)
        k = self.create(d, h.kernel_doc("crash-pip", py, ["gsk-alpha==2.0.0"]))
        self.assertTrue(index.wait_for_request(60), "pip never asked the index")
        phase = self.kernel(d, "crash-pip").get("build", {}).get("phase")
        self.assertIn(phase, ("installing", "resolving"))
        return d, index, py, k

    def test_kill_during_pip_then_restart(self):
        d, index, py, k = self.start_held_build(max_concurrent=1)
        queued = self.create(d, h.kernel_doc("crash-queued", py, ["gsk-gamma==2.0.0"]))
        self.assertEqual(queued["status"], "pending", queued)  # max_concurrent = 1
        env_hash = k["envHash"]
        env_dir = self.env_dir(d, env_hash)
        self.kill_and_check_builders(d, env_dir)  # see test_pip_dies_with_the_daemon
        self.assertNotEqual(env_row_status(d.state_dir, env_hash), "ready")
        self.assertNotEqual(env_row_status(d.state_dir, queued["envHash"]), "ready")
        sentinel = self.plant_leftover(env_dir)

        index.hold()
        self.restart_and_wait(d, "crash-pip", env_hash, sentinel, release=index.release)
        dists = h.env_distributions(env_dir)
        self.assertEqual((dists.get("gsk-alpha"), dists.get("gsk-beta")), ("2.0.0", "1.2.0"))
        q = self.wait_ready(d, "crash-queued")
        self.assertEqual(h.env_distributions(self.env_dir(d, q["envHash"])).get("gsk-gamma"),
                         "2.0.0")

    def test_sigterm_mid_build_stops_pip_then_restart_builds(self):
        # Not a crash: a clean stop kills its builds and leaves them to the next start.
        d, index, py, k = self.start_held_build()
        env_dir = self.env_dir(d, k["envHash"])
        self.assertEqual(d.stop(), 0, d.log())
        self.assertEqual(h.wait_no_process_mentioning(env_dir, GRACE), [],
                         "pip outlived a clean stop of the daemon")
        self.assertNotEqual(env_row_status(d.state_dir, k["envHash"]), "ready")
        sentinel = self.plant_leftover(env_dir)
        index.hold()
        self.restart_and_wait(d, "crash-pip", k["envHash"], sentinel, release=index.release)

    @h.known_bug(ORPHAN_BUG)
    def test_old_pip_does_not_outlive_the_restart(self):
        d, index, py, k = self.start_held_build()
        self.check_builders_end(d, "crash-pip", self.env_dir(d, k["envHash"]), index.release)


class KillDuringVenv(CrashTestCase):
    """The venv step takes 40 ms; an interpreter wrapper holds it the first time it runs."""

    WRAPPER = """#!/bin/sh
# Test wrapper: holds `python -m venv` the first time until RELEASE exists (at most 120 s).
for a in "$@"; do
  if [ "$a" = venv ] && [ ! -e '{blocked}' ]; then
    : > '{blocked}'
    i=0
    while [ ! -e '{release}' ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
  fi
done
exec '{python}' "$@"
"""

    def start_held_build(self):
        """A daemon whose build of kernel crash-venv is held in `python -m venv`; returns
        (daemon, python version, kernel, release file)."""
        # Which interpreter the wrapper runs: one the daemon finds usable by itself.
        probe = self.start_daemon(self.offline_config())
        minors = h.usable_minors(probe)
        py = h.preferred_minor(minors)
        probe.stop()
        if py is None:
            self.skipTest("the daemon found no usable Python interpreter")
        work = self.new_dir("wrapper")
        blocked, release = os.path.join(work, "blocked"), os.path.join(work, "release")
        wrapper = os.path.join(work, f"python{py}-held")
        with open(wrapper, "w") as f:
            f.write(self.WRAPPER.format(blocked=blocked, release=release, python=minors[py]))
        os.chmod(wrapper, 0o755)

        d = self.start_daemon(self.offline_config(interpreters=[wrapper]))
        self.assertEqual(h.usable_minors(d).get(py), wrapper)
        k = self.create(d, h.kernel_doc("crash-venv", py, ["gsk-alpha==1.0.0"]))
        deadline = time.monotonic() + 60
        while not os.path.exists(blocked) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(os.path.exists(blocked), "the venv step never started")
        self.assertEqual(self.kernel(d, "crash-venv").get("build", {}).get("phase"),
                         "creating-venv")
        return d, py, k, release

    def test_kill_during_venv_then_restart(self):
        d, py, k, release = self.start_held_build()
        env_hash = k["envHash"]
        env_dir = self.env_dir(d, env_hash)
        self.kill_and_check_builders(d, env_dir)  # see test_venv_step_dies_with_the_daemon
        open(release, "w").close()
        self.assertNotEqual(env_row_status(d.state_dir, env_hash), "ready")
        sentinel = self.plant_leftover(env_dir)
        env_dir = self.restart_and_wait(d, "crash-venv", env_hash, sentinel)
        self.assertEqual(h.env_distributions(env_dir).get("gsk-alpha"), "1.0.0")

    @h.known_bug(ORPHAN_BUG)
    def test_old_venv_step_does_not_outlive_the_restart(self):
        d, py, k, release = self.start_held_build()
        try:
            self.check_builders_end(d, "crash-venv", self.env_dir(d, k["envHash"]))
        finally:
            open(release, "w").close()


class KillWhenReady(CrashTestCase):

    def test_ready_env_survives_kill(self):
        d = self.start_daemon(self.offline_config())
        py = self.pick_python(d)
        self.create(d, h.kernel_doc("crash-ready", py, ["gsk-tool"]))
        k = self.wait_ready(d, "crash-ready")
        d.kill()
        self.assertEqual(env_row_status(d.state_dir, k["envHash"]), "ready")
        d.start()
        again = self.kernel(d, "crash-ready")
        self.assertEqual(again["status"], "ready", again)
        self.assertEqual(len(self.env_events(d, k["envHash"], "env.build_started")), 1)
        h.run_in_env(self.env_dir(d, k["envHash"]), "import gsk_tool, giskard_worker_shim")

    def test_ready_env_without_marker_is_rebuilt(self):
        # A ready row whose directory lost its marker (a crash between the marker and the row,
        # or someone deleting files) is not trusted: the env is built again.
        d = self.start_daemon(self.offline_config())
        py = self.pick_python(d)
        self.create(d, h.kernel_doc("crash-marker", py, ["gsk-beta==1.0.0"]))
        k = self.wait_ready(d, "crash-marker")
        env_dir = self.env_dir(d, k["envHash"])
        d.kill()
        os.remove(os.path.join(env_dir, ".gsk-env.json"))
        sentinel = self.plant_leftover(env_dir)
        self.restart_and_wait(d, "crash-marker", k["envHash"], sentinel)


if __name__ == "__main__":
    h.main()
