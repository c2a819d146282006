"""Unmanaged mode: `giskard worker start|stop|logs`, run by a user in their own Python environment
(a terminal, a notebook, another machine). The worker dials its server over a WebSocket and
authenticates with an API key; its files are described in runfiles.py.
"""

import logging
import os
import platform
import signal
import sys
import time
import uuid
from typing import Any, Dict, List, MutableMapping, NamedTuple, Optional, Tuple

from giskard_worker_shim import __version__, blobs, daemon, runfiles, tabular
from giskard_worker_shim.connection import (Dialer, auth_headers, endpoint_url, http_base,
                                            tls_context)
from giskard_worker_shim.dispatch import Dispatcher, default_dispatcher
from giskard_worker_shim.protocol import ConnectionClosed
from giskard_worker_shim.runfiles import Instance, UsageError
from giskard_worker_shim.worker import EXIT_REJECTED, Rejected, Worker, WorkerOptions

log = logging.getLogger("giskard_worker_shim")

CONNECTED_LINE = "Connected to Giskard server."
STOP_WAIT_SECONDS = 10.0
START_WAIT_SECONDS = 5.0  # how long `start -d` waits for the first connection (or its failure)


class StartOptions(NamedTuple):
    name: Optional[str]       # None: the host name (runfiles.default_name)
    url: str
    key: Optional[str]        # None: GSK_API_KEY
    hf_token: Optional[str]   # None: GSK_HF_TOKEN
    detach: bool
    ca_file: Optional[str]
    prog: str = "giskard"     # how the user runs the command, for the hints we print


def start(environ: MutableMapping[str, str], options: StartOptions) -> int:
    name = runfiles.check_name(options.name) if options.name else runfiles.default_name()
    endpoint = endpoint_url(options.url)
    # Read the secrets, then keep them from model code and its subprocesses.
    key = options.key or environ.get("GSK_API_KEY")
    hf_token = options.hf_token or environ.get("GSK_HF_TOKEN")
    environ.pop("GSK_API_KEY", None)
    environ.pop("GSK_HF_TOKEN", None)
    if not key:
        raise UsageError("an API key is required: pass -k KEY or set GSK_API_KEY")
    tls = tls_context(options.ca_file) if endpoint.startswith("wss:") or options.ca_file \
        else None
    instance = Instance(name, runfiles.instance_id(name, endpoint))
    log_file = runfiles.log_path(environ, instance) if options.detach else None
    os.makedirs(runfiles.run_dir(environ), exist_ok=True)
    record = {"pid": os.getpid(), "name": name, "endpoint": endpoint,
              "python": sys.executable, "log": log_file}
    pid_file = daemon.claim_pid_file(runfiles.pid_path(environ, instance), record)
    if not isinstance(pid_file, daemon.PidFile):
        print("Worker %s is already running for %s from this Python (pid %d%s); stop it with "
              "`%s worker stop --name %s`" % (
                  name, http_base(endpoint), pid_file["pid"],
                  "; log: %s" % pid_file["log"] if pid_file.get("log") else "",
                  options.prog, name), file=sys.stderr)
        return 1
    report = None  # type: Optional[daemon.DaemonReport]
    if log_file is not None:
        _prepare_log(environ, log_file)
        report, reader = daemon.daemonize(log_file)
        if reader is not None:  # The command: the daemon runs on its own now.
            pid_file.close()
            code = _await_daemon(reader, name, log_file, options.prog,
                                 _start_wait_seconds(environ))
            if code != 0:  # the daemon is gone, or going: its file must not stay behind
                daemon.live_owner(pid_file.path, remove_stale=True)
            return code
        assert report is not None
        pid_file.update(dict(record, pid=os.getpid()))
        report.send("ready %d" % os.getpid())
    outcome = _Outcome(report)
    try:
        code = _run(environ, endpoint, name, auth_headers(key, hf_token), tls, outcome)
    finally:
        pid_file.release()
    # Last, so that the command that waits for it finds the pid file gone.
    outcome.tell("rejected %s" % outcome.rejection if outcome.rejection else "exited %d" % code)
    return code


class _Outcome:
    """What the daemon tells the command that started it (nothing in the foreground): the first
    connection, or the first failure; or the refusal that ends the worker."""

    def __init__(self, report: Optional[daemon.DaemonReport]) -> None:
        self._report = report
        self.rejection = None  # type: Optional[str]

    def tell(self, line: str) -> None:
        if self._report is not None:
            self._report.send(line, final=True)


def _prepare_log(environ: MutableMapping[str, str], log_file: str) -> None:
    with open(log_file, "a"):
        pass
    try:
        runfiles.link_latest_log(environ, log_file)
    except OSError as e:
        print("warning: cannot point %s at %s: %s" % (runfiles.latest_log_path(environ),
                                                      log_file, e), file=sys.stderr)


def _run(environ: MutableMapping[str, str], endpoint: str, name: str, headers: Dict[str, str],
         tls: Any, outcome: _Outcome) -> int:
    log.info("starting worker %r for %s: Python %s at %s, shim %s, pid %d, home %s", name,
             endpoint, platform.python_version(), sys.executable, __version__, os.getpid(),
             runfiles.home_dir(environ))
    dialer = Dialer(endpoint, name, headers, tls)
    fetcher = blobs.ModelFetcher(http_base(endpoint), headers,
                                 runfiles.models_cache_dir(environ), tls)

    def dial() -> Any:
        try:
            return dialer()
        except Rejected as e:
            outcome.rejection = str(e)
            raise
        except (OSError, ConnectionClosed) as e:
            outcome.tell("retrying %s" % e)
            raise

    def on_welcome(welcome: Dict[str, object]) -> None:
        del welcome
        dialer.welcomed = True
        print(CONNECTED_LINE, flush=True)
        outcome.tell("connected")

    options = WorkerOptions(uuid.uuid4().hex, name=name, grace_seconds=None, backoff_max=10.0,
                            peer="Giskard server")
    return Worker(dial, options, dispatcher=unmanaged_dispatcher(fetcher),
                  on_welcome=on_welcome).run()


def unmanaged_dispatcher(fetcher: blobs.ModelFetcher) -> Dispatcher:
    """The methods of protocol version 1, with models fetched by blob (PROTOCOL.md, *Model
    blobs*) when the supervisor sends `modelBlob`."""
    dispatcher = default_dispatcher()
    for method, check in (("load_model", None), ("predict", tabular.parse_table)):
        handler = dispatcher.lookup(method)
        assert handler is not None
        dispatcher.register(method, blobs.with_blobs(handler, fetcher, check))
    return dispatcher


def _await_daemon(reader: daemon.ReportReader, name: str, log_file: str, prog: str,
                  wait: float) -> int:
    """In the command that ran `start -d`: says how the daemon's start went. Returns at the
    daemon's first connection, refusal or failure, or after `wait` seconds."""
    try:
        line = reader.read_line(daemon.DAEMON_REPORT_SECONDS) or ""
        if not line.startswith("ready "):
            print("The worker daemon failed to start: %s" % (
                line[6:] if line.startswith("error ") else "no report (see %s)" % log_file),
                file=sys.stderr)
            return 1
        pid = line[6:]
        outcome = reader.read_line(wait) or ""
    finally:
        reader.close()
    kind, _, text = outcome.partition(" ")
    running = ("Worker %s runs in the background (pid %s); its log is %s. Stop it with "
               "`%s worker stop --name %s`." % (name, pid, log_file, prog, name))
    if kind == "connected":
        print(CONNECTED_LINE)
        print(running)
        return 0
    if kind == "rejected":
        print("Worker %s stopped: %s" % (name, text), file=sys.stderr)
        return EXIT_REJECTED
    if kind == "retrying":
        print("Cannot reach the Giskard server yet (%s); the worker keeps trying." % text)
        print(running)
        return 0
    if kind == "exited" or (not outcome and reader.at_eof):
        print("Worker %s exited%s. The end of its log, %s:" % (
            name, " with code %s" % text if text else "", log_file), file=sys.stderr)
        sys.stderr.writelines(daemon.tail(log_file, 5))
        return int(text) if text.isdigit() else 1
    print("The worker is still connecting.")
    print(running)
    return 0


def _start_wait_seconds(environ: MutableMapping[str, str]) -> float:
    raw = environ.get("GSK_START_WAIT_SECONDS", "")
    try:
        return max(0.0, float(raw)) if raw else START_WAIT_SECONDS
    except ValueError:
        return START_WAIT_SECONDS


# stop

def stop(environ: MutableMapping[str, str], name: Optional[str], url: Optional[str],
         stop_all: bool, prog: str = "giskard") -> int:
    """Stops the workers selected by name and/or server URL (all with `stop_all`; with
    neither, the only one running)."""
    if name:
        runfiles.check_name(name)
    endpoint = endpoint_url(url) if url else None
    running, stale = _scan(environ)
    if stop_all:
        targets = running
    else:
        targets = [(i, r) for i, r in running
                   if (not name or i.name == name)
                   and (endpoint is None or r.get("endpoint") == endpoint)]
        if not name and endpoint is None and len(targets) > 1:
            raise UsageError("several workers are running (%s): pass --name NAME, -u URL or -a"
                             % ", ".join(_describe(i, r) for i, r in targets))
    for instance in stale:
        if stop_all or instance.name == name:
            print("Worker %s is not running." % instance.name)
    if not targets:
        if not stale or not (stop_all or any(i.name == name for i in stale)):
            print("No worker is running." if not running else
                  "No running worker matches; running: %s (`%s worker stop -a` stops them all)"
                  % (", ".join(_describe(i, r) for i, r in running), prog))
        return 0
    return _stop_all(environ, targets)


def _scan(environ: MutableMapping[str, str]) -> Tuple[List[Tuple[Instance, Dict[str, Any]]],
                                                      List[Instance]]:
    """The running workers with their records, and the stale pid files (removed)."""
    running, stale = [], []
    for instance in runfiles.listed(environ, "pid"):
        record = daemon.live_owner(runfiles.pid_path(environ, instance), remove_stale=True)
        if record is None:
            stale.append(instance)
        else:
            running.append((instance, record))
    return running, stale


def _describe(instance: Instance, record: Dict[str, Any]) -> str:
    endpoint = record.get("endpoint")
    return "%s (%s)" % (instance.name, http_base(endpoint)) if endpoint else instance.name


def _stop_all(environ: MutableMapping[str, str],
              targets: List[Tuple[Instance, Dict[str, Any]]]) -> int:
    """Signals every target, then waits for them together (each one finishes its request and
    says goodbye to the server in parallel), up to STOP_WAIT_SECONDS."""
    for _, record in targets:
        try:
            os.kill(record["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    waiting = list(targets)
    while waiting and time.monotonic() < deadline:
        time.sleep(0.02)
        waiting = [(i, r) for i, r in waiting if daemon.is_our_worker(r["pid"])]
    code = 0
    for instance, record in targets:
        pid = record["pid"]
        if (instance, record) in waiting:
            print("Worker %s (pid %d) did not stop within %g s; it may still be finishing a "
                  "request." % (instance.name, pid, STOP_WAIT_SECONDS), file=sys.stderr)
            code = 1
            continue
        pid_file = runfiles.pid_path(environ, instance)
        if daemon.read_pid(pid_file) == pid:
            daemon.remove_file(pid_file)
        print("Stopped worker %s (pid %d)." % (instance.name, pid))
    return code


# logs

def logs(environ: MutableMapping[str, str], name: Optional[str], lines: int,
         follow: bool) -> int:
    """Prints the end of the log of the latest worker started with -d ($GSK_HOME/run/
    ml-worker.log), or of the latest one named `name`; with `follow`, then its new lines."""
    if name:
        runfiles.check_name(name)
        paths = [runfiles.log_path(environ, i) for i in runfiles.listed(environ, "log")
                 if i.name == name]
        if not paths:
            raise UsageError("no log of a worker named %s in %s (only workers started with -d "
                             "write one)" % (name, runfiles.run_dir(environ)))
        path = max(paths, key=_mtime)
    else:
        path = runfiles.latest_log_path(environ)
        if not os.path.exists(path):
            raise UsageError("no log file %s: it is the log of the latest worker started with "
                             "-d, and there has been none" % path)
    with open(path, "rb") as f:
        sys.stdout.writelines(daemon.tail_of(f, lines))
        sys.stdout.flush()
        if not follow:
            return 0
        try:
            while True:
                chunk = f.read()
                if chunk:
                    sys.stdout.write(chunk.decode("utf-8", "replace"))
                    sys.stdout.flush()
                else:
                    time.sleep(0.2)
        except KeyboardInterrupt:
            return 0


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
