"""The one harness of the Python tests (tests/e2e, tests/envs, tests/wheels) and benchmarks
(tests/bench): the real `giskard-supervisor serve` on a temporary state directory and a free
port, driven over REST (TCP), the admin Unix socket and the CLI. Standard library only. Every
wait is bounded, every subprocess has a timeout, and every daemon started here is stopped by its
pid (SIGTERM, then SIGKILL).

A test puts tests/ on sys.path and imports the package:

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import harness as h  # noqa: E402
    ...
    if __name__ == "__main__":
        h.main()  # takes `--binary PATH` (or GSK_SUPERVISOR_BIN) and runs unittest

Modules (everything public is also here, as harness.NAME):
  settings      the binary, the timeouts, FORK_SERVER (GSK_E2E_FORK_SERVER), clean_env(), main()
  http_io       Response, http.client over TCP and the admin socket, raw-socket helpers
  documents     the Hub's kernel document, kernel_doc(), config_toml(), with_fork_server(),
                BASE_CONFIG
  daemon        Daemon (start, stop, log, REST, kernels, events), run_cli(), integrity_check()
  processes     /proc readings, processes by command line, bounded waits, kills of leftovers
  environments  test wheels, a local index that can be held, interpreters, looks into envs
  testcase      DaemonTestCase and EnvTestCase
"""

# Re-exports (unused here on purpose): everything public is also harness.NAME.
from . import settings
from .daemon import READY_RE, Daemon, integrity_check, run_cli
from .documents import (BASE_CONFIG, HEX64_RE, HUB_KERNEL, KERNEL_STATUSES, VOLATILE_FIELDS,
                        config_toml, kernel_doc, stable, toml_str, with_fork_server)
from .environments import (STRICT, ControlledIndex, build_wheels, env_distributions, known_bug,
                           minor_of, preferred_minor, pyenv_pythons, run_in_env, usable_minors,
                           write_big_wheel, write_package_wheel)
from .http_io import (Response, UnixHTTPConnection, do_request, free_port, parse_raw_response,
                      raw_exchange, read_one_response, read_until_closed, send_streaming)
from .processes import (CLK_TCK, alive, cpu_seconds, cpu_ticks, kill_all, kill_leftovers,
                        kill_processes, other_pids, proc_argv, proc_cmdline, proc_environ,
                        processes_mentioning, rss_kib, start_ticks, state, still_running,
                        wait_for, wait_gone_processes, wait_no_process_mentioning,
                        wait_pids_gone)
from .settings import (BUILD_TIMEOUT, CLI_TIMEOUT, FORK_SERVER, HOLD_MAX, HTTP_TIMEOUT,
                       PROC_TIMEOUT, PYENV_ROOT, START_TIMEOUT, STOP_TIMEOUT, clean_env, main,
                       set_binary, take_binary_arg)
from .testcase import DaemonTestCase, EnvTestCase


def __getattr__(name):
    # BINARY changes once main() has read --binary: always answer the current value.
    if name == "BINARY":
        return settings.BINARY
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
