"""Where unmanaged workers keep their files: $GSK_HOME (default ~/giskard-home), with pid files
and logs in $GSK_HOME/run and fetched models in $GSK_HOME/cache/models. Pure path logic plus
the `ml-worker.log` link; no state.

A worker is one (interpreter, server, name): starting the same name for the same server from the
same interpreter finds the one already running, while another interpreter (another virtualenv)
may run a worker of the same name beside it. Its files are `worker-NAME@ID.pid` and
`worker-NAME@ID.log`, ID being 8 hex digits of a hash of the three.
"""

import hashlib
import os
import re
import socket
import sys
from typing import List, Mapping, NamedTuple, Optional

NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
LATEST_LOG = "ml-worker.log"  # the path of Giskard's documentation: the latest daemon's log
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FILE = re.compile(r"^worker-([A-Za-z0-9][A-Za-z0-9._-]{0,63})@([0-9a-f]{8})\.(pid|log)$")


class UsageError(Exception):
    """A user mistake; the message says what to do."""


def home_dir(environ: Mapping[str, str]) -> str:
    # Absolute, because the daemon changes its working directory to /.
    return os.path.abspath(os.path.expanduser(environ.get("GSK_HOME") or "~/giskard-home"))


def run_dir(environ: Mapping[str, str]) -> str:
    return os.path.join(home_dir(environ), "run")


def models_cache_dir(environ: Mapping[str, str]) -> str:
    return os.path.join(home_dir(environ), "cache", "models")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError("invalid worker name %r: use %s" % (name, NAME_RULE))
    return name


def default_name(hostname: Optional[str] = None) -> str:
    """The machine's host name made to fit the name rule: characters other than letters,
    digits, '.', '_' and '-' become '-', leading '.', '_' and '-' are dropped, and the result is
    cut to 64 characters ("worker" if nothing is left)."""
    host = socket.gethostname() if hostname is None else hostname
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", host).lstrip("._-")[:64]
    return name if _NAME.match(name) else "worker"


def instance_id(name: str, endpoint: str, python: str = sys.executable) -> str:
    key = "\n".join((python, endpoint, name)).encode("utf-8", "surrogateescape")
    return hashlib.sha1(key).hexdigest()[:8]


class Instance(NamedTuple):
    name: str
    id: str

    @property
    def stem(self) -> str:
        return "worker-%s@%s" % (self.name, self.id)


def pid_path(environ: Mapping[str, str], instance: Instance) -> str:
    return os.path.join(run_dir(environ), instance.stem + ".pid")


def log_path(environ: Mapping[str, str], instance: Instance) -> str:
    return os.path.join(run_dir(environ), instance.stem + ".log")


def latest_log_path(environ: Mapping[str, str]) -> str:
    return os.path.join(run_dir(environ), LATEST_LOG)


def listed(environ: Mapping[str, str], suffix: str) -> List[Instance]:
    """The workers with a `suffix` ("pid" or "log") file in the run directory, sorted."""
    try:
        entries = os.listdir(run_dir(environ))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        match = _FILE.match(entry)
        if match and match.group(3) == suffix:
            found.append(Instance(match.group(1), match.group(2)))
    return sorted(found)


def link_latest_log(environ: Mapping[str, str], log: str) -> None:
    """Points $GSK_HOME/run/ml-worker.log at `log` (a file in the same directory), replacing
    the link atomically. Raises OSError."""
    link = latest_log_path(environ)
    tmp = "%s.%d.tmp" % (link, os.getpid())
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(os.path.basename(log), tmp)
    try:
        os.replace(tmp, link)
    except OSError:
        os.unlink(tmp)
        raise
