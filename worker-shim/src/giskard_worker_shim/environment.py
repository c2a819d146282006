"""What the worker reports about itself: interpreter, platform, process identity, packages.

An environment is immutable once built, so its package list is computed once, at build time,
by `write_packages` (`python -m giskard_worker_shim write-packages <venv>/.gsk-packages.json`);
the `hello` of every worker reads that file instead of scanning importlib.metadata, which is
slow. The `environment` request still scans afresh.

Pure functions (file reads and writes only), safe from any thread.
"""

import json
import logging
import os
import platform
import re
import socket
import sys
from typing import Any, Dict, List, Optional

from giskard_worker_shim import __version__

log = logging.getLogger("giskard_worker_shim")

_SEPARATORS = re.compile(r"[-_.]+")

PACKAGES_FILE = ".gsk-packages.json"  # in sys.prefix, the root of the virtualenv


def normalize_name(name: str) -> str:
    """PEP 503 normalized project name: `Foo.Bar_baz` -> `foo-bar-baz`."""
    return _SEPARATORS.sub("-", name).lower()


def process_start_time(pid: Optional[int] = None) -> Optional[float]:
    """Seconds after boot at which the process started (/proc/PID/stat field 22 / SC_CLK_TCK).

    None off Linux or if /proc cannot be read. Together with the pid this identifies a process
    across pid reuse.
    """
    path = "/proc/%s/stat" % ("self" if pid is None else pid)
    try:
        with open(path, "rb") as f:
            ticks = start_ticks(f.read().decode("utf-8", "replace"))
        ticks_per_second = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    if ticks is None or ticks_per_second <= 0:
        return None
    return ticks / ticks_per_second


def start_ticks(stat: str) -> Optional[int]:
    """Field 22 (starttime, in clock ticks after boot) of a /proc/PID/stat line."""
    # Field 2 (comm) is in parentheses and may itself contain spaces and parentheses.
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        return int(fields[22 - 3])
    except (IndexError, ValueError):
        return None


def installed_packages() -> List[Dict[str, str]]:
    """Distributions importable from sys.path, sorted by normalized name; first one on the path
    wins when a name appears twice (that is the one `import` finds)."""
    from importlib import metadata  # noqa: PLC0415 (only needed here; keeps startup lean)

    seen = {}  # type: Dict[str, str]
    for dist in metadata.distributions():
        try:
            raw_name = dist.metadata["Name"]
            version = dist.version
        except Exception:  # noqa: BLE001 (a broken dist-info must not break the worker)
            continue
        if not raw_name or version is None:
            continue
        name = normalize_name(raw_name)
        if name not in seen:
            seen[name] = str(version)
    return [{"name": name, "version": seen[name]} for name in sorted(seen)]


def packages_file() -> str:
    """Where the package list of this environment is stored: sys.prefix/.gsk-packages.json."""
    return os.path.join(sys.prefix, PACKAGES_FILE)


def write_packages(path: str) -> List[Dict[str, str]]:
    """Scans the packages (installed_packages) and writes them to `path` as a JSON list,
    atomically (a temporary file in the same directory, renamed over `path`). Returns them."""
    found = installed_packages()
    data = json.dumps(found, ensure_ascii=False, separators=(",", ":")) + "\n"
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return found


def read_packages(path: str) -> Optional[List[Dict[str, str]]]:
    """The list `write_packages` stored in `path`; None if the file is missing, unreadable or
    not such a list (a bad file is logged)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("cannot read %s (%s); scanning the installed packages instead", path, e)
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, list):
            raise ValueError("not a JSON list")
        stored = []  # type: List[Dict[str, str]]
        for entry in data:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                    or not isinstance(entry.get("version"), str):
                raise ValueError('an entry is not {"name": "...", "version": "..."}')
            stored.append({"name": entry["name"], "version": entry["version"]})
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError included
        log.warning("%s is not a package list (%s); scanning the installed packages instead",
                    path, e)
        return None
    return stored


def packages(scan: bool = False) -> List[Dict[str, str]]:
    """The environment's packages: from its .gsk-packages.json when there is one (unless
    `scan`), else scanned from importlib.metadata."""
    if not scan:
        stored = read_packages(packages_file())
        if stored is not None:
            return stored
    return installed_packages()


def collect(scan: bool = False) -> Dict[str, Any]:
    """The `env` object of `hello` (packages from .gsk-packages.json when present) and, with
    `scan`, the result of the `environment` request (packages scanned afresh)."""
    return {
        "pythonVersion": platform.python_version(),
        "pythonExecutable": sys.executable,
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "processStartTime": process_start_time(),
        "shimVersion": __version__,
        "packages": packages(scan),
    }
