"""Command line: `giskard-worker worker start|stop|logs` (also `python -m giskard_worker_shim`),
and the hidden commands giskard-supervisor runs in managed virtualenvs: `serve-managed` (a
worker), `serve-template` (a fork server of workers) and `write-packages PATH` (the package
list of a freshly built environment).
"""

import argparse
import os
import sys
import traceback
from typing import Callable, List, Optional

from giskard_worker_shim import __version__, log
from giskard_worker_shim.unmanaged import DEFAULT_URL, UsageError

DESCRIPTION = "Run a Giskard ML worker in this Python environment."
EPILOG = """environment:
  GSK_HOME      home directory (default ~/giskard-home); pid files and logs go in $GSK_HOME/run
  GSK_API_KEY   the API key, instead of -k (which other users can see in `ps`)
  GSK_HF_TOKEN  the Hugging Face token, instead of --hf-token"""


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version="giskard-worker-shim %s" % __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    worker = commands.add_parser("worker", help="ML worker management", description=(
        "Start, stop and read the logs of ML workers that connect to a Giskard server."),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = worker.add_subparsers(dest="action", metavar="ACTION")

    start = actions.add_parser("start", help="start a worker (in the foreground unless -d)")
    start.add_argument("-k", "--key", help="API key of the Giskard server (or GSK_API_KEY)")
    start.add_argument("-u", "--url", default=DEFAULT_URL,
                       help="URL of the Giskard server (default: %(default)s)")
    start.add_argument("--name", required=True, help="name of this worker and of its kernel")
    start.add_argument("-d", "--daemon", action="store_true",
                       help="run in the background, logging to $GSK_HOME/run/worker-NAME.log")
    start.add_argument("--hf-token", help="access token for a Giskard server hosted in a "
                       "private Hugging Face Space (or GSK_HF_TOKEN)")
    start.add_argument("-v", "--verbose", action="store_true", help="log debug details")

    stop = actions.add_parser("stop", help="stop a running worker")
    stop.add_argument("--name", help="the worker to stop (default: the only one running)")
    stop.add_argument("-a", "--all", action="store_true", help="stop all running workers")

    logs = actions.add_parser("logs", help="show the log of a worker started with -d")
    logs.add_argument("--name", help="the worker (default: the only one with a log)")
    logs.add_argument("-n", "--lines", type=int, default=10,
                      help="show the last N lines (default: %(default)s)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.set_defaults(_help=parser.print_help)
    worker.set_defaults(_help=worker.print_help)
    return parser


def _run(args: argparse.Namespace) -> int:
    from giskard_worker_shim import unmanaged  # noqa: PLC0415

    environ = os.environ
    if args.action == "start":
        log.configure(verbose=args.verbose)
        return unmanaged.start(environ, args.name, args.url, args.key, args.hf_token,
                               args.daemon)
    if args.action == "stop":
        return unmanaged.stop(environ, args.name, args.all)
    return unmanaged.logs(environ, args.name, args.lines, args.follow)


def _serve_and_exit(serve: Callable[[], int]) -> int:
    """Runs a managed worker or template, then ends the process at once (managed.exit_now):
    no interpreter finalization. An unexpected exception is printed and exits 1."""
    from giskard_worker_shim.managed import exit_now  # noqa: PLC0415

    log.configure(verbose=os.environ.get("GSK_WORKER_VERBOSE") == "1")
    try:
        code = serve()
    except SystemExit as e:
        code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001 (a bug: say where, and exit like Python would)
        traceback.print_exc()
        code = 1
    exit_now(code)
    return code  # not reached


def _write_packages(argv: List[str], prog: str) -> int:
    if len(argv) != 1 or not argv[0] or argv[0].startswith("-"):
        print("usage: %s write-packages PATH" % prog, file=sys.stderr)
        return 2
    from giskard_worker_shim import environment  # noqa: PLC0415

    try:
        packages = environment.write_packages(argv[0])
    except OSError as e:
        print("%s: error: cannot write %s: %s" % (prog, argv[0], e), file=sys.stderr)
        return 1
    print("wrote %d packages to %s" % (len(packages), argv[0]))
    return 0


def main(argv: Optional[List[str]] = None, prog: Optional[str] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve-managed"]:
        from giskard_worker_shim.managed import serve_managed  # noqa: PLC0415

        return _serve_and_exit(lambda: serve_managed(os.environ))
    if argv[:1] == ["serve-template"]:
        from giskard_worker_shim.template import serve_template  # noqa: PLC0415

        return _serve_and_exit(lambda: serve_template(os.environ))
    prog = prog or os.path.basename(sys.argv[0]) or "giskard-worker"
    if argv[:1] == ["write-packages"]:
        return _write_packages(argv[1:], prog)
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if args.command is None or getattr(args, "action", None) is None:
        args._help()
        return 2
    try:
        return _run(args)
    except UsageError as e:
        print("%s: error: %s" % (prog, e), file=sys.stderr)
        return 2
