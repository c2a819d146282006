"""Processes for the tests and benchmarks: /proc readings (state, start time, CPU time, memory,
environment, command line), lookups by command line, bounded waits, and kills of leftovers.

Linux only. Each reading answers None (or False, or "") for a process that is gone or
unreadable. The only processes ever signalled are those passed in, or those whose command line
names a path of the caller's own temporary directory."""

import os
import signal
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- /proc readings ------------------------------------------------------------------------------

def stat_fields(pid):
    """Fields 3.. of /proc/<pid>/stat (index 0 is the state), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data.rsplit(")", 1)[1].split()


def state(pid):
    """The state letter of /proc/<pid>/stat ("R", "S", "Z", ...), or None."""
    fields = stat_fields(pid)
    return fields[0] if fields else None


def alive(pid):
    """The process exists and is not a zombie."""
    if not pid:
        return False
    return state(pid) not in (None, "Z", "X")


def start_ticks(pid):
    """The process's start time (clock ticks since boot), None when it is gone or a zombie:
    with the pid, what identifies a process (pids are reused)."""
    fields = stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def cpu_ticks(pid):
    """utime + stime of the process (all its threads), in clock ticks; None if it is gone."""
    fields = stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else None


def cpu_seconds(pid):
    """utime + stime of the process (all its threads), in seconds."""
    return cpu_ticks(pid) / CLK_TCK


def rss_kib(pid):
    """VmRSS of the process in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_environ(pid):
    """The process's environment as a dict, or None."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return None
    env = {}
    for item in data.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return env


def proc_argv(pid):
    """The process's command line as a list ([] for a kernel thread or a gone process)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    if not raw:
        return []
    return [a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0")]


def proc_cmdline(pid):
    """The process's command line as one string (arguments joined by spaces), or ""."""
    return " ".join(proc_argv(pid))


def other_pids():
    """The pids in /proc, but this process's own."""
    me = os.getpid()
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != me]


# --- lookups and kills ---------------------------------------------------------------------------

def processes_mentioning(text):
    """[(pid, argv)] of live processes (not zombies) whose command line contains `text`."""
    found = []
    for pid in other_pids():
        argv = proc_argv(pid)
        if argv and any(text in a for a in argv) and alive(pid):
            found.append((pid, argv))
    return found


def still_running(processes):
    """The (pid, start ticks) pairs of `processes` that still run."""
    return [(pid, t) for pid, t in processes if t is not None and start_ticks(pid) == t]


def kill_all(pids):
    """SIGKILL each of `pids` (leftovers a test or benchmark started), ignoring those gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def kill_processes(processes):
    """SIGKILLs the process groups of the (pid, start ticks) pairs that still run (processes
    the test caused to exist: build processes of a daemon it killed)."""
    for pid, t in still_running(processes):
        try:
            pgid = os.getpgid(pid)
            if pgid != os.getpgid(0) and start_ticks(pid) == t:
                os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


def kill_leftovers(text):
    """SIGKILLs processes whose command line names `text` (a path inside the test's temporary
    directory, so only processes the test caused to exist) and their process groups."""
    for pid, _ in processes_mentioning(text):
        try:
            pgid = os.getpgid(pid)
            if pgid != os.getpgid(0):
                os.killpg(pgid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# --- bounded waits -------------------------------------------------------------------------------

def wait_for(what, probe, check, timeout, interval=0.1):
    """Calls probe() until check(value) holds and returns that value; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if check(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout}s; last: {value!r}")
        time.sleep(interval)


def wait_pids_gone(pids, timeout, what):
    """Waits until none of `pids` is alive; fails after `timeout` naming `what`."""
    return wait_for(what, lambda: [p for p in pids if alive(p)], lambda left: not left, timeout,
                    interval=0.05)


def wait_gone_processes(processes, timeout):
    """Waits until none of the (pid, start ticks) pairs runs; returns those still running."""
    deadline = time.monotonic() + timeout
    while still_running(processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    return still_running(processes)


def wait_no_process_mentioning(text, timeout):
    """Waits until no process's command line contains `text`; returns those left."""
    deadline = time.monotonic() + timeout
    while True:
        left = processes_mentioning(text)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)
