"""The peers of model_bench.py: the same pickled model served by FastAPI (uvicorn), Flask
(gunicorn) and a stdlib ThreadingHTTPServer. Each loads the model once per process and answers
POST /api/v1/kernels/{name}/predict like giskard-supervisor's worker does: X =
numpy.asarray(rows) (what the shim builds when the env has numpy and no pandas), then
predict(X) and predict_proba(X), converted with tolist() and written as compact JSON:
{"predictions", "probabilities", "classes", "rows"}. GET /healthz answers {"status": "ok"}.

Run with Debian's /usr/bin/python3 and PYTHONPATH=<kernel venv site-packages>:/usr/lib/python3/
dist-packages, so that numpy and scikit-learn are the venv's and the frameworks Debian's. The
model and the expected bearer token come from the environment (MODEL_BENCH_MODEL,
MODEL_BENCH_TOKEN); MODEL_BENCH_PEER names the app to build (fastapi, flask):

    python3 -m uvicorn model_bench_peers:fastapi_app --workers N --port P   (cwd tests/bench)
    python3 -m gunicorn -w 2 -k sync -b 127.0.0.1:P model_bench_peers:flask_app
    python3 model_bench_peers.py stdlib --port P
"""

import json
import os
import pickle
import socket
import sys

MODEL_PATH = os.environ.get("MODEL_BENCH_MODEL", "")
AUTH = "Bearer " + os.environ.get("MODEL_BENCH_TOKEN", "")
PEER = os.environ.get("MODEL_BENCH_PEER", "")
UNAUTHORIZED = b'{"error":{"code":"UNAUTHENTICATED"}}'
HEALTH = b'{"status":"ok"}'


def load_model():
    import numpy  # noqa: F401  (imported once, at start, like the model's own imports)
    with open(MODEL_PATH, "rb") as f:
        return pickle.load(f)


if os.environ.get("MODEL_BENCH_NODELAY") == "1":
    # uvicorn --workers N hands its workers a listening socket made with socket.socket(family)
    # (proto 0), and asyncio only sets TCP_NODELAY on accepted sockets whose proto is
    # IPPROTO_TCP: without this, a response written in two sends (head, body) waits for the
    # client's delayed ACK (40 ms). This sets it on every accepted TCP socket.
    import asyncio.base_events as _base_events

    def _set_nodelay(sock):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    _base_events._set_nodelay = _set_nodelay

MODEL = load_model() if MODEL_PATH else None
if MODEL is not None and os.environ.get("MODEL_BENCH_READY_DIR"):
    # One file per process that has the model loaded: the benchmark waits for all of them.
    open(os.path.join(os.environ["MODEL_BENCH_READY_DIR"], str(os.getpid())), "w").close()


def predict(body):
    """The answer's bytes for a request body (bytes)."""
    import numpy as np
    doc = json.loads(body)
    rows = doc["rows"]
    X = np.asarray(rows)
    out = {"predictions": MODEL.predict(X).tolist()}
    if hasattr(MODEL, "predict_proba"):
        out["probabilities"] = MODEL.predict_proba(X).tolist()
        out["classes"] = MODEL.classes_.tolist()
    out["rows"] = len(rows)
    return json.dumps(out, allow_nan=False, separators=(",", ":")).encode()


# --- FastAPI (ASGI, uvicorn) ----------------------------------------------------------------------

def make_fastapi():
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    # async def with the raw body: the fastest FastAPI form (no pydantic model, no threadpool
    # hop); the model runs on the event loop, one call at a time per process, like a worker.
    @app.post("/api/v1/kernels/{name}/predict")
    async def predict_route(name: str, request: Request):
        if request.headers.get("authorization") != AUTH:
            return Response(UNAUTHORIZED, status_code=401, media_type="application/json")
        return Response(predict(await request.body()), media_type="application/json")

    @app.get("/healthz")
    async def healthz():
        return Response(HEALTH, media_type="application/json")

    return app


# --- Flask (WSGI, gunicorn) -----------------------------------------------------------------------

def make_flask():
    from flask import Flask, Response, request

    app = Flask("model_bench_peer")

    @app.post("/api/v1/kernels/<name>/predict")
    def predict_route(name):
        if request.headers.get("Authorization") != AUTH:
            return Response(UNAUTHORIZED, status=401, mimetype="application/json")
        return Response(predict(request.get_data()), mimetype="application/json")

    @app.get("/healthz")
    def healthz():
        return Response(HEALTH, mimetype="application/json")

    return app


fastapi_app = make_fastapi() if PEER == "fastapi" else None
flask_app = make_flask() if PEER == "flask" else None


# --- stdlib ThreadingHTTPServer, TCP_NODELAY, header and body in one write ------------------------

def serve_stdlib(port):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def reply(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self._headers_buffer.append(b"\r\n" + body)  # headers and body in one write
            self.flush_headers()

        def do_GET(self):
            if self.path == "/healthz":
                return self.reply(200, HEALTH)
            return self.reply(404, b'{"error":{"code":"NOT_FOUND"}}')

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Authorization") != AUTH:
                return self.reply(401, UNAUTHORIZED)
            if not (self.path.startswith("/api/v1/kernels/") and self.path.endswith("/predict")):
                return self.reply(404, b'{"error":{"code":"NOT_FOUND"}}')
            return self.reply(200, predict(body))

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "stdlib" and sys.argv[2] == "--port":
        serve_stdlib(int(sys.argv[3]))
    else:
        sys.exit("usage: model_bench_peers.py stdlib --port P")
