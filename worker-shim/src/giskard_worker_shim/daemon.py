"""Process housekeeping for unmanaged workers: pid files locked by their worker, "is this pid one
of ours", the double-fork daemon and its report to the command that started it, and reading the
tail of a log file. Single-threaded use (before the worker's threads start), except
DaemonReport.send, which any one thread may call.

A pid file is held with flock(2) by the worker it names for the worker's whole life: the lock
goes away with the process (however it ends), so a pid file that nobody holds is stale whatever
pid it names, and pid reuse cannot make a dead worker look alive.
"""

import errno
import fcntl
import json
import os
import select
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple, Union

# A command line is one of ours if it runs the shim's module or console scripts with `worker`.
_PROGRAM_MARKERS = ("giskard_worker_shim", "giskard-worker")
_PROGRAM_NAMES = ("giskard",)

DAEMON_REPORT_SECONDS = 15.0
_CLAIM_ATTEMPTS = 80  # x 25 ms: how long a start waits for a starting worker to write its file

Record = Dict[str, Any]


# Pid files.

def parse_record(text: str) -> Optional[Record]:
    """A pid file's record: a JSON object with an integer "pid" (or, from older shims, just the
    pid). None if empty or malformed."""
    text = text.strip()
    if text.isdigit():
        return {"pid": int(text)} if int(text) > 0 else None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    pid = record.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return None
    return record


def read_record(path: str) -> Optional[Record]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_record(f.read())
    except OSError:
        return None


def read_pid(path: str) -> Optional[int]:
    record = read_record(path)
    return None if record is None else record["pid"]


class PidFile:
    """A pid file this process created and holds locked. The lock is shared with the processes
    this one forks (the daemon keeps it after the starting command exits)."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd = fd  # type: Optional[int]

    def update(self, record: Record) -> None:
        data = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Removes the file if it is still ours, and drops the lock (when no forked process
        shares it)."""
        if self._fd is None:
            return
        try:
            if _same_file(self.path, self._fd):
                remove_file(self.path)
        finally:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """Closes this process's descriptor only: a forked daemon keeps the file and the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def claim_pid_file(path: str, record: Record) -> Union[PidFile, Record]:
    """Creates (or takes over a stale) `path`, locks it and writes `record`. Returns the PidFile,
    or the record of the live worker that holds it. Raises OSError if the file cannot be
    created."""
    for _ in range(_CLAIM_ATTEMPTS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = parse_record(_read_fd(fd))
            if owner is not None and is_our_worker(owner["pid"]):
                os.close(fd)
                return owner
            if owner is not None:
                # Held, but not by the worker it names (a process that worker forked): stale.
                if _same_file(path, fd):
                    remove_file(path)
            else:
                time.sleep(0.025)  # a worker is starting and has not written its record yet
            os.close(fd)
            continue
        if not _same_file(path, fd):  # removed as stale between our open and our lock
            os.close(fd)
            continue
        pid_file = PidFile(path, fd)
        pid_file.update(record)
        return pid_file
    raise OSError(errno.EAGAIN, "could not lock the pid file %s" % path)


def live_owner(path: str, remove_stale: bool = False) -> Optional[Record]:
    """The record of the live worker that holds `path`, or None. With `remove_stale`, a file
    that no live worker holds is removed (under its lock when possible, so that a worker
    starting at that very moment keeps its file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = parse_record(_read_fd(fd))
            if owner is None:
                return None  # being written by a worker that is starting: leave it
            if is_our_worker(owner["pid"]):
                return owner
            if remove_stale and _same_file(path, fd):
                remove_file(path)
            return None
        if remove_stale and _same_file(path, fd):
            remove_file(path)
        return None
    finally:
        os.close(fd)  # also drops our probe lock


def _read_fd(fd: int) -> str:
    return os.pread(fd, 65536, 0).decode("utf-8", "replace")


def _same_file(path: str, fd: int) -> bool:
    try:
        a, b = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


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
    """True if `pid` is alive and runs `giskard worker start ...`, `giskard-worker worker start
    ...` or `python -m giskard_worker_shim worker start ...`."""
    argv = command_line(pid)
    for i, arg in enumerate(argv):
        base = os.path.basename(arg)
        if base in _PROGRAM_NAMES or any(marker in base for marker in _PROGRAM_MARKERS):
            rest = argv[i + 1:]
            return "worker" in rest and "start" in rest[rest.index("worker"):]
    return False


# The daemon.

class DaemonReport:
    """The daemon's end of the pipe to the command that started it: one line per event. The
    command waits for the lines, so the last one must be sent with final=True (it closes the
    pipe); a daemon that dies closes it too."""

    def __init__(self, fd: int) -> None:
        self._fd = fd  # type: Optional[int]

    def send(self, line: str, final: bool = False) -> None:
        fd = self._fd
        if fd is None:
            return
        if final:
            self._fd = None
        try:
            os.write(fd, (line.replace("\n", " ") + "\n").encode("utf-8", "replace"))
        except OSError:  # the command stopped waiting
            pass
        if final:
            os.close(fd)

    @property
    def open(self) -> bool:
        return self._fd is not None


class ReportReader:
    """The starting command's end of the pipe: the daemon's lines, one at a time."""

    def __init__(self, fd: int) -> None:
        self._fd = fd  # type: Optional[int]
        self._buffer = b""
        self.at_eof = False  # the daemon closed its end (or died)

    def read_line(self, timeout: float) -> Optional[str]:
        """The next line, or None at end of file (the daemon closed it or died) or timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer and self._fd is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._fd], [], [], remaining)[0]:
                return None
            chunk = os.read(self._fd, 4096)
            if not chunk:
                self.at_eof = True
                self.close()
                break
            self._buffer += chunk
        if b"\n" not in self._buffer:
            return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "replace")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def daemonize(log_path: str) -> Tuple[Optional[DaemonReport], Optional[ReportReader]]:
    """Double fork. In the daemon (detached from the terminal, in its own session, with stdin
    on /dev/null, stdout and stderr appended to `log_path`, and none of the descriptors it
    inherited from whoever ran the command) returns (report, None); in the original process,
    once the intermediate child has exited, returns (None, reader)."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child > 0:
        os.close(write_end)
        os.waitpid(child, 0)
        return None, ReportReader(read_end)
    os.close(read_end)
    try:
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        os.chdir("/")
        _redirect_stdio(log_path)
        _close_inherited_descriptors()
    except BaseException as e:  # noqa: BLE001 (report anything to the waiting command)
        try:
            os.write(write_end, ("error %s\n" % e).encode("utf-8", "replace"))
        finally:
            os._exit(1)
    return DaemonReport(write_end), None


def _redirect_stdio(log_path: str) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def _close_inherited_descriptors() -> None:
    """Closes descriptors 3 and up that the command inherited from its parent (a notebook's
    pipes, a terminal): those are the inheritable ones, as Python makes its own close-on-exec
    (PEP 446). Holding one would keep the parent waiting for end of file."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 256))
    for fd in fds:
        if fd < 3:
            continue
        try:
            if os.get_inheritable(fd):
                os.close(fd)
        except OSError:
            pass


def tail(path: str, lines: int) -> List[str]:
    """The last `lines` lines of a text file (reads backwards in blocks)."""
    with open(path, "rb") as f:
        return tail_of(f, lines)


def tail_of(f: Any, lines: int) -> List[str]:
    """The last `lines` lines of the binary file `f`, as far as it goes now; leaves `f` at that
    end, so that reading on gives exactly what was written since."""
    end = f.seek(0, os.SEEK_END)
    position, data = end, b""
    while lines > 0 and position > 0 and data.count(b"\n") <= lines:
        step = min(65536, position)
        position -= step
        f.seek(position)
        data = f.read(step) + data
    f.seek(end)
    if lines <= 0:
        return []
    text = data.decode("utf-8", "replace").splitlines(keepends=True)
    return text[-lines:]
