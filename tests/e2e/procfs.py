"""Reading /proc for the tests and benchmarks: a process's state, start time, CPU time,
environment and command line. Linux only; standard library only. Each function answers None
(or False, or "") for a process that is gone or unreadable."""

import os
import signal

CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """Fields 3.. of /proc/<pid>/stat (index 0 is the state), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data.rsplit(")", 1)[1].split()


def alive(pid):
    """The process exists and is not a zombie."""
    if not pid:
        return False
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def start_ticks(pid):
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


def cpu_seconds(pid):
    """utime + stime of the process (all its threads), in seconds."""
    return cpu_ticks(pid) / CLK_TCK


def proc_environ(pid):
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


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def cpu_ticks(pid):
    """utime + stime of the process (all its threads), in clock ticks; None if it is gone."""
    fields = stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else None


def state(pid):
    """The state letter of /proc/<pid>/stat ("R", "S", "Z", ...), or None."""
    fields = stat_fields(pid)
    return fields[0] if fields else None


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


def kill_all(pids):
    """SIGKILL each of `pids` (leftovers a test or benchmark started), ignoring those gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
