"""Process housekeeping for unmanaged workers: pid files, "is this pid one of ours", the
double-fork daemon, and reading the tail of a log file. Single-threaded use (before the worker's
threads start).
"""

import os
import select
import subprocess
import sys
from typing import List, Optional

# A command line is one of ours if it runs the shim's module or console script with `worker`.
_PROGRAM_MARKERS = ("giskard_worker_shim", "giskard-worker")

DAEMON_REPORT_SECONDS = 15.0


def read_pid(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def write_pid_file(path: str, pid: int) -> None:
    """Atomically replaces `path` with one holding `pid`."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % pid)
    os.replace(tmp, path)


def claim_pid_file(path: str) -> Optional[int]:
    """Creates `path` holding our pid. Returns None on success, or the pid of the live worker
    that already owns it (a stale file, whose pid is gone or not ours, is replaced)."""
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pid = read_pid(path)
            if pid is not None and is_our_worker(pid):
                return pid
            remove_file(path)
            continue
        with os.fdopen(fd, "w") as f:
            f.write("%d\n" % os.getpid())
        return None
    raise OSError("could not create the pid file %s" % path)


def remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_pid_file_if_mine(path: str) -> None:
    if read_pid(path) == os.getpid():
        remove_file(path)


def command_line(pid: int) -> List[str]:
    """The process's argv, or [] if it does not exist (or is a zombie) or cannot be read."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read()
        return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return []
    except OSError:
        return []
    try:  # No /proc (macOS): ask ps.
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return out.decode("utf-8", "replace").split()


def is_our_worker(pid: int) -> bool:
    """True if `pid` is alive and runs `giskard-worker worker start ...` or
    `python -m giskard_worker_shim worker start ...`."""
    argv = command_line(pid)
    for i, arg in enumerate(argv):
        if any(marker in os.path.basename(arg) for marker in _PROGRAM_MARKERS):
            rest = argv[i + 1:]
            return "worker" in rest and "start" in rest[rest.index("worker"):]
    return False


def daemonize(log_path: str, pid_path: str) -> Optional[int]:
    """Double fork. Returns None in the daemon (detached, stdio on `log_path`, pid file
    written); in the original process waits for the daemon's report and returns an exit code.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child > 0:
        os.close(write_end)
        os.waitpid(child, 0)
        return _await_daemon_report(read_end, log_path)
    os.close(read_end)
    try:
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        os.chdir("/")
        _redirect_stdio(log_path)
        write_pid_file(pid_path, os.getpid())
        os.write(write_end, b"ok %d" % os.getpid())
    except BaseException as e:  # noqa: BLE001 (report anything to the waiting parent)
        try:
            os.write(write_end, ("error %s" % e).encode("utf-8", "replace"))
        finally:
            os._exit(1)
    os.close(write_end)
    return None


def _redirect_stdio(log_path: str) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def _await_daemon_report(read_end: int, log_path: str) -> int:
    data = b""
    try:
        while True:
            readable, _, _ = select.select([read_end], [], [], DAEMON_REPORT_SECONDS)
            if not readable:
                break
            chunk = os.read(read_end, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_end)
    report = data.decode("utf-8", "replace")
    if report.startswith("ok "):
        print("Worker started in the background (pid %s); its log is %s"
              % (report[3:], log_path))
        return 0
    print("The worker daemon failed to start: %s"
          % (report[6:] if report.startswith("error ") else "no report"), file=sys.stderr)
    return 1


def tail(path: str, lines: int) -> List[str]:
    """The last `lines` lines of a text file (reads backwards in blocks)."""
    if lines <= 0:
        return []
    with open(path, "rb") as f:
        position = f.seek(0, os.SEEK_END)
        data = b""
        while position > 0 and data.count(b"\n") <= lines:
            step = min(65536, position)
            position -= step
            f.seek(position)
            data = f.read(step) + data
    text = data.decode("utf-8", "replace").splitlines(keepends=True)
    return text[-lines:]
