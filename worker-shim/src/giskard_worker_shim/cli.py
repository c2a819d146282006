"""Command line: `giskard worker start|stop|logs` (the same as `giskard-worker ...` and
`python -m giskard_worker_shim ...`), and the hidden commands giskard-supervisor runs in managed
virtualenvs: `serve-managed` (a worker), `serve-template` (a fork server of workers) and
`write-packages PATH` (the package list of a freshly built environment).

Imports stay light here (managed workers start through this module); the unmanaged commands
import what they need when they run.
"""

import argparse
import os
import sys
import traceback
from typing import Callable, List, Optional

from giskard_worker_shim import __version__, log
from giskard_worker_shim.runfiles import UsageError, default_name

DEFAULT_URL = "http://localhost:40051"  # connection.DEFAULT_URL, without importing ssl here
DESCRIPTION = "Run a Giskard ML worker in this Python environment."
EPILOG = """examples:
  giskard worker start -k KEY -u http://HOST:40051 --name my-laptop -d
  giskard worker start -k KEY -h HOST -p 40051          (the first-generation flags)
  giskard worker logs -f
  giskard worker stop --name my-laptop                  (or -a: all workers)

`giskard`, `giskard-worker` and `python -m giskard_worker_shim` are the same command.

environment:
  GSK_HOME      home directory (default ~/giskard-home): pid files and logs in $GSK_HOME/run,
                the latest background worker's log also as $GSK_HOME/run/ml-worker.log,
                models fetched from the server in $GSK_HOME/cache/models
  GSK_API_KEY   the API key, instead of -k (which other users can see in `ps`)
  GSK_HF_TOKEN  the Hugging Face token, instead of --hf-token
  GSK_START_WAIT_SECONDS  how long `start -d` waits for the first connection (default 5)"""


def _add_server_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("-u", "--url", help="URL of the Giskard server%s" % what)
    parser.add_argument("-h", "--host", help="host of the Giskard server: the first-generation "
                        "form of -u, meaning http://HOST:PORT")
    parser.add_argument("-p", "--port", type=int,
                        help="port of the Giskard server with -h (default: 40051)")
    parser.add_argument("--help", action="help", help="show this help message and exit")


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

    start = actions.add_parser(
        "start", add_help=False, help="start a worker (in the foreground unless -d)",
        description="Start an ML worker that connects to a Giskard server and runs models in "
        "this Python environment, e.g. `%s worker start -k KEY -u http://HOST:40051 --name "
        "my-laptop -d`." % prog)
    start.add_argument("-k", "--key", help="API key of the Giskard server (or GSK_API_KEY)")
    _add_server_options(start, " (default: %s)" % DEFAULT_URL)
    start.add_argument("--name", help="name of this worker and of its kernel (default: this "
                       "machine's host name, here %r)" % default_name())
    start.add_argument("-d", "--daemon", action="store_true",
                       help="run in the background, logging to a file in $GSK_HOME/run "
                       "(the latest one is also $GSK_HOME/run/ml-worker.log)")
    start.add_argument("--hf-token", help="access token for a Giskard server hosted in a "
                       "private Hugging Face Space (or GSK_HF_TOKEN)")
    start.add_argument("--ca-file", metavar="PATH", help="for https:// servers: verify the "
                       "certificate with the CA certificates of this PEM file instead of the "
                       "system's (e.g. the server's own self-signed certificate)")
    start.add_argument("-v", "--verbose", action="store_true", help="log debug details")

    stop = actions.add_parser(
        "stop", add_help=False, help="stop running workers",
        description="Stop the workers started on this machine (in this $GSK_HOME) that match "
        "--name and the server; with neither, the only one running.")
    stop.add_argument("--name", help="stop the workers of this name")
    _add_server_options(stop, ": stop the workers started for that server")
    stop.add_argument("-a", "--all", action="store_true", help="stop all running workers")

    logs = actions.add_parser("logs", help="show the log of a worker started with -d",
                              description="Show the log of the latest worker started with -d "
                              "($GSK_HOME/run/ml-worker.log), or of the one named --name.")
    logs.add_argument("--name", help="the worker (default: the latest started with -d)")
    logs.add_argument("-n", "--lines", type=int, default=10,
                      help="show the last N lines (default: %(default)s)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.set_defaults(_help=parser.print_help)
    worker.set_defaults(_help=worker.print_help)
    return parser


def _server_url(args: argparse.Namespace) -> Optional[str]:
    """-u URL, or -h HOST / -p PORT as http://HOST:PORT; None if neither is given."""
    first_generation = args.host is not None or args.port is not None
    if args.url is not None and first_generation:
        raise UsageError("give the server either as -u URL or as -h HOST -p PORT, not both")
    if first_generation:
        from giskard_worker_shim.connection import first_generation_url  # noqa: PLC0415

        return first_generation_url(args.host, args.port)
    return args.url


def _run(args: argparse.Namespace, prog: str) -> int:
    from giskard_worker_shim import unmanaged  # noqa: PLC0415

    environ = os.environ
    if args.action == "start":
        log.configure(verbose=args.verbose)
        return unmanaged.start(environ, unmanaged.StartOptions(
            name=args.name, url=_server_url(args) or DEFAULT_URL, key=args.key,
            hf_token=args.hf_token, detach=args.daemon, ca_file=args.ca_file, prog=prog))
    if args.action == "stop":
        return unmanaged.stop(environ, args.name, _server_url(args), args.all, prog)
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
    prog = prog or os.path.basename(sys.argv[0]) or "giskard"
    if argv[:1] == ["write-packages"]:
        return _write_packages(argv[1:], prog)
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if args.command is None or getattr(args, "action", None) is None:
        args._help()
        return 2
    try:
        return _run(args, prog)
    except UsageError as e:
        print("%s: error: %s" % (prog, e), file=sys.stderr)
        return 2
