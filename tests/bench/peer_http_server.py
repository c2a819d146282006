"""The benchmark's peer: a stdlib http.server that serves kernel documents from a dict, as a
naive Python service would. `--tuned` sets TCP_NODELAY and writes headers and body in one send
(the two fixes for the delayed-ACK stall DESIGN.md describes); the default is the naive server.

    python3 peer_http_server.py --port P --token T --doc FILE --copies N [--tuned]

Serves GET /api/v1/kernels/{name} (names bench-000000 .. N-1, all with FILE's document) and
GET /healthz. Runs until SIGTERM or SIGINT.
"""

import argparse
import json
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/api/v1/kernels/"


def make_handler(kernels, token, tuned):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            if tuned:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def reply(self, status, doc):
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if tuned:
                # Headers and body in one write.
                self._headers_buffer.append(b"\r\n" + body)
                self.flush_headers()
            else:
                self.end_headers()
                self.wfile.write(body)

        def do_GET(self):
            if self.path == "/healthz":
                return self.reply(200, {"status": "ok"})
            if self.headers.get("Authorization") != f"Bearer {token}":
                return self.reply(401, {"error": {"code": "UNAUTHENTICATED"}})
            doc = kernels.get(self.path[len(PREFIX):]) if self.path.startswith(PREFIX) else None
            if doc is None:
                return self.reply(404, {"error": {"code": "NOT_FOUND"}})
            return self.reply(200, doc)

        def log_message(self, format, *args):
            pass

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--doc", required=True, help="a kernel document (JSON file)")
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--tuned", action="store_true")
    args = parser.parse_args()
    with open(args.doc) as f:
        doc = json.load(f)
    kernels = {}
    for i in range(args.copies):
        name = f"bench-{i:06d}"
        kernels[name] = dict(doc, name=name)
    server = ThreadingHTTPServer(("127.0.0.1", args.port),
                                 make_handler(kernels, args.token, args.tuned))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"peer ready on 127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
