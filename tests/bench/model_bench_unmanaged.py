"""The unmanaged worker of model_bench.py, started as a user starts one: a worker key from
POST /api/v1/keys, then `giskard worker start -k KEY -u http://127.0.0.1:PORT --name NAME` in the
foreground. The command is the shim's console script in the iris kernel's own venv (the daemon
installed the shim there from the same wheel it serves at /downloads/), so that the worker has
the managed workers' numpy and scikit-learn, and its rows differ from the managed ones only in
how a call reaches the worker: over its WebSocket on loopback instead of a Unix socket, naming
the model by its blob (fetched once, then read from the worker's cache). GSK_HOME is a
directory of the benchmark (its model cache starts empty); the process starts unpinned, as the
managed workers run. Every wait is bounded; stop() uses `giskard worker stop` with the same
arguments, then the pid.
"""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import wait_for  # noqa: E402

CONNECT_TIMEOUT = 60  # the command to a running worker in the kernel's list
STOP_TIMEOUT = 30     # `giskard worker stop` (it waits up to 10 s itself)


class UnmanagedWorker:
    def __init__(self, daemon, env, work, name):
        self.daemon = daemon
        self.name = name
        self.work = work
        giskard = os.path.join(env, "bin", "giskard")
        python = os.path.join(env, "bin", "python")
        # The console script when pip made it; else its module form (README: same thing).
        self.command = [giskard] if os.access(giskard, os.X_OK) else [
            python, "-m", "giskard_worker_shim"]
        self.env = {"PATH": os.path.join(env, "bin") + ":/usr/bin:/bin", "LANG": "C.UTF-8",
                    "LC_ALL": "C.UTF-8", "VIRTUAL_ENV": env, "HOME": work,
                    "GSK_HOME": os.path.join(work, "gsk-home"), "PYTHONUNBUFFERED": "1"}
        self.proc = None
        self.log = None
        self.stopped = None  # how stop() ended it

    def server_args(self):
        return ["-u", self.daemon.url, "--name", self.name]

    def start(self):
        """Creates a key, starts the worker, and returns once its kernel lists it running."""
        r = self.daemon.post("/api/v1/keys", {"name": self.name + "-key"})
        if r.status != 201:
            raise RuntimeError(f"creating a worker key: {r}")
        os.makedirs(self.work, exist_ok=True)
        self.log = open(os.path.join(self.work, "worker.log"), "ab")
        cmd = self.command + ["worker", "start", "-k", r.json["key"]] + self.server_args()
        self.proc = subprocess.Popen(cmd, cwd=self.work, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(f"the unmanaged worker {self.name} running in its kernel", self.running,
                      bool, CONNECT_TIMEOUT)
        return self

    def running(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"`giskard worker start` exited with {self.proc.returncode}:\n"
                               + self.log_tail())
        r = self.daemon.get(f"/api/v1/kernels/{self.name}")
        if r.status != 200 or r.json.get("type") != "UNMANAGED":
            return False
        return self.pid in self.worker_pids()

    def worker_pids(self):
        ws = self.daemon.get(f"/api/v1/workers?kernel={self.name}").json["workers"]
        return [w["pid"] for w in ws if not w["managed"] and w["state"] == "running"]

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def log_tail(self, n=3000):
        try:
            with open(os.path.join(self.work, "worker.log"), "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        """`giskard worker stop` with the start's arguments; then SIGTERM, SIGKILL by pid if the
        process is still there. Records how it ended in self.stopped; idempotent."""
        if self.proc is None or self.stopped is not None:
            return self.stopped
        how = "giskard worker stop"
        try:
            p = subprocess.run(self.command + ["worker", "stop"] + self.server_args(),
                               cwd=self.work, env=self.env, capture_output=True, text=True,
                               timeout=STOP_TIMEOUT)
            if p.returncode != 0:
                how += f" (exit {p.returncode}: {(p.stdout + p.stderr).strip()[-300:]})"
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            how += " did not end it within its bound"
        if self.proc.poll() is None:
            how += "; then SIGTERM by pid"
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                how += ", SIGKILL"
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        self.stopped = f"{how}; exit {self.proc.returncode}"
        return self.stopped

    def gone_from_kernel(self, timeout=10):
        """True once the daemon no longer lists the worker (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid not in self.worker_pids():
                return True
            time.sleep(0.1)
        return False
