"""Optional third-party modules (numpy, pandas, joblib), imported lazily and at most once: never
at start-up, so the worker starts fast in environments where they are missing or heavy.

Used from the worker's I/O thread. The cache tolerates a race anyway: two threads would at worst
both import a module, which Python's import lock makes safe.
"""

import importlib
import logging
from typing import Any, Dict

log = logging.getLogger("giskard_worker_shim")

_modules = {}  # type: Dict[str, Any]  # name -> module, or None when it cannot be imported


def optional_module(name: str) -> Any:
    """The module `name`, or None if it cannot be imported. The outcome is cached: a module
    installed after the first attempt is seen only by a new worker."""
    if name not in _modules:
        try:
            _modules[name] = importlib.import_module(name)
        except ImportError:
            _modules[name] = None
        except Exception as e:  # noqa: BLE001 (a broken install: go on without it)
            log.warning("importing %s failed (%s: %s); going on without it",
                        name, type(e).__name__, e)
            _modules[name] = None
    return _modules[name]
