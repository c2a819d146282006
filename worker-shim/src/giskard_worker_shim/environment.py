"""What the worker reports about itself: interpreter, platform, process identity, packages.

Pure functions, safe from any thread.
"""

import os
import platform
import re
import sys
from typing import Any, Dict, List, Optional

from giskard_worker_shim import __version__

_SEPARATORS = re.compile(r"[-_.]+")


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


def collect() -> Dict[str, Any]:
    """The `env` object of `hello` and the result of the `environment` request."""
    return {
        "pythonVersion": platform.python_version(),
        "pythonExecutable": sys.executable,
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "pid": os.getpid(),
        "processStartTime": process_start_time(),
        "shimVersion": __version__,
        "packages": installed_packages(),
    }
