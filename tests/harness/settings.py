"""What every test and benchmark shares: the binary under test, the timeouts, the environment
the daemon and the CLI run with, and main()."""

import os
import sys
import unittest

# The binary under test: `--binary PATH` on the command line (CTest passes
# $<TARGET_FILE:giskard-supervisor>), or the GSK_SUPERVISOR_BIN environment variable. Read it as
# harness.BINARY; set it with set_binary() (main() does).
BINARY = os.environ.get("GSK_SUPERVISOR_BIN", "")

# Generous bounds: sanitizer builds start and answer several times slower.
START_TIMEOUT = 60.0    # daemon start to ready (it probes every interpreter it finds)
STOP_TIMEOUT = 30.0     # SIGTERM to exit
HTTP_TIMEOUT = 30.0     # one request
BUILD_TIMEOUT = 240.0   # one env build: 1-3 s offline here; sanitizer builds and slow disks more
PROC_TIMEOUT = 60.0     # one subprocess run by a test (env python, venv)
CLI_TIMEOUT = 60.0      # one run of the giskard-supervisor CLI
HOLD_MAX = 120.0        # longest a held index request waits for release

# GSK_E2E_FORK_SERVER=0 runs every daemon started here with `[workers] fork_server = false`
# (workers started by exec), unless its config sets fork_server itself; unset or 1 leaves the
# daemon's default, the fork server. CTest runs tests/e2e/test_workers.py both ways.
FORK_SERVER = os.environ.get("GSK_E2E_FORK_SERVER", "1") != "0"

# Where pyenv's interpreters are (GSK_PYENV_ROOT first, then pyenv's own PYENV_ROOT).
PYENV_ROOT = (os.environ.get("GSK_PYENV_ROOT") or os.environ.get("PYENV_ROOT")
              or os.path.expanduser("~/.pyenv"))

# Variables of the caller's environment that would change what the daemon or the CLI does.
_SCRUBBED_ENV = ("GISKARD_SUPERVISOR_URL", "GISKARD_SUPERVISOR_TOKEN",
                 "GISKARD_SUPERVISOR_SOCKET", "STATE_DIRECTORY", "RUNTIME_DIRECTORY",
                 "NOTIFY_SOCKET", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID")


def clean_env(**extra):
    """The caller's environment minus _SCRUBBED_ENV, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(extra)
    return env


def set_binary(path):
    global BINARY
    BINARY = os.path.abspath(path) if path else ""


def take_binary_arg(argv):
    """Takes `--binary PATH` out of argv (a list, changed in place) into BINARY; exits when
    there is no executable binary either way. Returns argv."""
    if "--binary" in argv:
        i = argv.index("--binary")
        if i + 1 >= len(argv):
            sys.exit("--binary needs a path")
        set_binary(argv[i + 1])
        del argv[i:i + 2]
    if not BINARY or not os.access(BINARY, os.X_OK):
        sys.exit("no giskard-supervisor binary: pass --binary PATH or set GSK_SUPERVISOR_BIN "
                 f"(got {BINARY!r})")
    return argv


def main():
    """unittest.main() that first takes `--binary PATH` out of the arguments."""
    unittest.main(argv=take_binary_arg(list(sys.argv)), verbosity=2)
