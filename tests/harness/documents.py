"""What the tests send to the daemon and compare: kernel documents and config files."""

import json
import re

# The Giskard Hub's kernel document, exactly as the Hub sends it.
HUB_KERNEL = {
    "name": "my-kernel",
    "pythonVersion": "3.11",
    "requestedDependencies": ["giskard[llm]>=2.14", "scikit-learn==1.3.2"],
    "frozenDependencies": "joblib==1.3.2\nnumpy==1.26.4\nscikit-learn==1.3.2",
    "type": "PROCESS",
    "version": "2.14.0",
}

# Kernel fields that change by themselves while an env build runs, and "warnings", which only
# create and replace responses carry.
VOLATILE_FIELDS = ("status", "lastError", "updatedAt", "build", "warnings", "runningWorkers")
KERNEL_STATUSES = ("pending", "building", "ready", "failed")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")


def stable(kernel):
    """A kernel minus the fields an env build changes: what must stay equal over time."""
    return {k: v for k, v in kernel.items() if k not in VOLATILE_FIELDS}


def kernel_doc(name, python, requested=(), frozen=None, workers=0):
    """A managed kernel document. No workers by default: a ready kernel with workers would start
    worker processes (tests/e2e/test_workers.py is about those)."""
    doc = {"name": name, "pythonVersion": python, "requestedDependencies": list(requested),
           "type": "PROCESS", "version": "2.14.0", "workers": workers}
    if frozen is not None:
        doc["frozenDependencies"] = frozen
    return doc


def toml_str(value):
    return json.dumps(str(value))  # a TOML basic string for the paths and URLs used here


def config_toml(find_links=None, offline=False, index_url=None, timeout_seconds=None,
                max_concurrent=None, disk_budget_mb=None, interpreters=None, cache_dir=None):
    """The text of a daemon config file with these [packages], [builds] and [python] keys."""
    lines = ["[packages]"]
    if offline:
        lines.append("offline = true")
    if index_url:
        lines.append(f"index_url = {toml_str(index_url)}")
    if find_links:
        lines.append("find_links = [" + ", ".join(toml_str(f) for f in find_links) + "]")
    if cache_dir:
        lines.append(f"cache_dir = {toml_str(cache_dir)}")
    lines.append("[builds]")
    if timeout_seconds is not None:
        lines.append(f"timeout_seconds = {int(timeout_seconds)}")
    if max_concurrent is not None:
        lines.append(f"max_concurrent = {int(max_concurrent)}")
    if disk_budget_mb is not None:
        lines.append(f"disk_budget_mb = {int(disk_budget_mb)}")
    if interpreters:
        lines.append("[python]")
        lines.append("interpreters = [" + ", ".join(toml_str(p) for p in interpreters) + "]")
    return "\n".join(lines) + "\n"


_WORKERS_TABLE = re.compile(r"^[ \t]*\[[ \t]*workers[ \t]*\][ \t]*(#.*)?$", re.M)
_FORK_SERVER_KEY = re.compile(r"^[ \t]*fork_server[ \t]*=", re.M)


def with_fork_server(config_text, enabled):
    """`config_text` with `[workers] fork_server = true|false`, unless it sets fork_server
    itself: added to its [workers] table when it has one (TOML allows a table only once), else
    as a new [workers] table at the end."""
    if _FORK_SERVER_KEY.search(config_text):
        return config_text
    line = "fork_server = " + ("true" if enabled else "false")
    m = _WORKERS_TABLE.search(config_text)
    if m:
        return config_text[:m.end()] + "\n" + line + config_text[m.end():]
    if config_text and not config_text.endswith("\n"):
        config_text += "\n"
    return config_text + "[workers]\n" + line + "\n"


# The config of a Daemon unless told otherwise: offline, so that env builds (which start on every
# kernel create) fail fast with "no matching distribution" instead of reaching for PyPI; one
# build at a time. Tests add sections of their own after it (BASE_CONFIG + "[server]\n...").
BASE_CONFIG = config_toml(offline=True, max_concurrent=1)
