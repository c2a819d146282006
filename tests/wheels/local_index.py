#!/usr/bin/env python3
"""A local PEP 503 "simple" package index over HTTP on 127.0.0.1, serving the wheels of a directory.

Standard library only. As a program:

    python3 local_index.py --dir DIR [--port 0] [--port-file F] [--max-seconds 3600]

binds 127.0.0.1 (port 0 = any free port), writes the port to F once it accepts connections
(atomically: F.tmp then rename), and serves until SIGTERM/SIGINT, until its parent process dies
(checked every second) or for --max-seconds at most. As a module:

    server, url = start_index(dir)  # daemon thread; url = "http://127.0.0.1:P/simple/"
    ...
    server.stop()

Routes: /simple/ (all projects), /simple/<normalized-name>/ (one project: links to its files
with #sha256= fragments; other spellings redirect to the normalized one, unknown projects 404),
/files/<filename> (the wheel bytes). The directory is rescanned on every request, so wheels
added later are served too. "Index down" for a test: use a port where nothing listens (stop the
server, or bind-and-close a socket to get a free port).
"""

import argparse
import hashlib
import html
import http.server
import os
import re
import signal
import sys
import threading
import time
import urllib.parse

def normalize(name):
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename):
    """Normalized project name of a distribution file name, or None if it is not one."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        return normalize(parts[0]) if len(parts) in (5, 6) else None
    for ext in (".tar.gz", ".zip"):
        if filename.endswith(ext):
            stem = filename[: -len(ext)]
            return normalize(stem.rsplit("-", 1)[0]) if "-" in stem else None
    return None


class WheelDirectory:
    """The distribution files of one directory, with cached sha256 digests. Thread-safe."""

    def __init__(self, directory):
        self.directory = os.path.abspath(directory)
        self._lock = threading.Lock()
        self._digests = {}  # filename -> ((size, mtime_ns), hexdigest)

    def projects(self):
        """{normalized name: sorted [filename]}."""
        result = {}
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return result
        for filename in names:
            project = project_of(filename)
            if project and os.path.isfile(os.path.join(self.directory, filename)):
                result.setdefault(project, []).append(filename)
        return result

    def sha256(self, filename):
        path = os.path.join(self.directory, filename)
        st = os.stat(path)
        key = (st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._digests.get(filename)
            if cached and cached[0] == key:
                return cached[1]
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        with self._lock:
            self._digests[filename] = (key, digest)
        return digest


def _page(title, links):
    body = "".join(f'    <a href="{html.escape(href)}">{html.escape(text)}</a><br/>\n'
                   for href, text in links)
    return ("<!DOCTYPE html>\n<html>\n  <head>\n"
            '    <meta name="pypi:repository-version" content="1.0">\n'
            f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
            f"    <h1>{html.escape(title)}</h1>\n{body}  </body>\n</html>\n").encode("utf-8")


class IndexHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as pip's requests session expects
    disable_nagle_algorithm = True  # TCP_NODELAY: no delayed-ACK stall between header and body
    server_version = "gsk-local-index/1.0"

    def log_message(self, format, *args):  # noqa: A002 (signature from the base class)
        pass  # quiet

    def _send(self, status, body=b"", content_type="text/html; charset=utf-8", headers=(),
              head_only=False):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if body and not head_only:
            self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802 (name from the base class)
        self._route(head_only=True)

    def do_GET(self):  # noqa: N802
        self._route(head_only=False)

    def _route(self, head_only):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        wheels = self.server.wheels
        if path in ("/", "/simple"):
            self._send(301, headers=[("Location", "/simple/")], head_only=head_only)
        elif path == "/simple/":
            links = [(f"{p}/", p) for p in sorted(wheels.projects())]
            self._send(200, _page("Simple index", links), head_only=head_only)
        elif path.startswith("/simple/"):
            self._project(path[len("/simple/"):], head_only)
        elif path.startswith("/files/"):
            self._file(path[len("/files/"):], head_only)
        else:
            self._send(404, b"not found\n", "text/plain", head_only=head_only)

    def _project(self, rest, head_only):
        name = rest.rstrip("/")
        wanted = normalize(name)
        if not name or "/" in name:
            self._send(404, b"not found\n", "text/plain", head_only=head_only)
            return
        if name != wanted or not rest.endswith("/"):
            self._send(301, headers=[("Location", f"/simple/{wanted}/")], head_only=head_only)
            return
        files = self.server.wheels.projects().get(wanted)
        if not files:
            self._send(404, b"not found\n", "text/plain", head_only=head_only)
            return
        links = [(f"../../files/{urllib.parse.quote(f)}#sha256={self.server.wheels.sha256(f)}", f)
                 for f in files]
        self._send(200, _page(f"Links for {wanted}", links), head_only=head_only)

    def _file(self, filename, head_only):
        wheels = self.server.wheels
        if "/" in filename or filename.startswith(".") or project_of(filename) is None:
            self._send(404, b"not found\n", "text/plain", head_only=head_only)
            return
        try:
            with open(os.path.join(wheels.directory, filename), "rb") as f:
                data = f.read()
        except OSError:
            self._send(404, b"not found\n", "text/plain", head_only=head_only)
            return
        self._send(200, data, "application/octet-stream", head_only=head_only)


class IndexServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, directory, port=0):
        super().__init__(("127.0.0.1", port), IndexHandler)
        self.wheels = WheelDirectory(directory)
        self._thread = None

    @property
    def port(self):
        return self.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/simple/"

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="gsk-local-index", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops serving and closes the listening socket; connections then get refused."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()


def start_index(directory, port=0):
    """Serves directory in a daemon thread; returns (server, url). Call server.stop() after."""
    server = IndexServer(directory, port).start()
    return server, server.url


def stop(server):
    """Same as server.stop()."""
    server.stop()


def _write_port_file(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def _watchdog(server, parent, deadline):
    """Stops the server once the parent is gone or the deadline has passed."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent or time.monotonic() >= deadline:
            threading.Thread(target=server.shutdown, daemon=True).start()
            return


def main(argv=None):
    parent = os.getppid()  # first thing, so a parent that dies during start-up is noticed
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="directory holding the wheels")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any)")
    parser.add_argument("--port-file", help="write the chosen port here once listening")
    parser.add_argument("--max-seconds", type=float, default=3600.0,
                        help="exit after this long at most (default 3600)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.dir):
        parser.error(f"--dir {args.dir!r} is not a directory")

    server = IndexServer(args.dir, args.port)

    def on_signal(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=_watchdog,
                     args=(server, parent, time.monotonic() + args.max_seconds),
                     daemon=True).start()
    if args.port_file:
        _write_port_file(args.port_file, server.port)
    print(f"serving {server.wheels.directory} at {server.url}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
