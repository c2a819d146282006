#!/usr/bin/env python3
"""End-to-end: unmanaged workers. A user's own environment (a venv made here, with nothing but
the shim, installed with pip from the supervisor's /downloads/ URL) runs the seed's command
`giskard worker start -k KEY -u URL --name NAME`; the worker dials the WebSocket endpoint with a
worker key, its UNMANAGED kernel appears, and model calls to that kernel run in it, with the
model's bytes fetched from the supervisor (by content hash, once). Also: the most recent worker
takes the calls and a standby takes over; a call on a worker that is lost gets 502; a managed
kernel's name, a wrong key and a revoked key end the worker with exit code 77 and a message;
after a network cut and after a supervisor restart the worker is registered again, once;
hostile WebSocket peers are closed while /healthz keeps answering.

    /usr/bin/python3 -B tests/e2e/test_unmanaged.py --binary BUILD/supervisor/giskard-supervisor
"""

import base64
import http.client
import json
import os
import pickle
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import wait_for  # noqa: E402

HEARTBEAT = 1.0        # [workers] heartbeat_seconds: a silent worker is lost after 3
CONNECT_TIMEOUT = 30   # `giskard worker start` to "Connected to Giskard server."
CALL_TIMEOUT = 30

# A model folder (giskard-model.json with its code): sent to the worker as a tar blob.
MODEL_CODE = r'''
import time


def model(X):
    """Doubles each row's first value; a row ["sleep", s] sleeps s seconds first."""
    out = []
    for row in X:
        if row and row[0] == "sleep":
            time.sleep(float(row[1]))
            out.append(0)
        else:
            out.append(2 * row[0])
    return out
'''


def until(check, timeout, what):
    """Polls check() until it is true; fails after `timeout` seconds naming `what`."""
    return wait_for(what, check, bool, timeout)


def ws_handshake(port, key, extra=b""):
    """A raw WebSocket client socket after a 101 (or the refusal's status line and body)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    nonce = base64.b64encode(os.urandom(16))
    sock.sendall(b"GET /api/v1/workers/connect HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 b"Sec-WebSocket-Key: " + nonce + b"\r\nAuthorization: Bearer " +
                 key.encode() + b"\r\n" + extra + b"\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head


def ws_frame(opcode, payload, announced=None):
    """A masked client frame; `announced` lies about the payload's length."""
    n = len(payload) if announced is None else announced
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def closed_within(sock, seconds):
    """True if the server closes the connection (EOF or reset) within `seconds`."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


class Proxy:
    """A TCP relay 127.0.0.1:port -> target port that the test can cut (every connection closed
    at once) to play a network failure."""

    def __init__(self, target_port):
        self.target = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.pairs = []
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            except OSError:  # the supervisor is down (restarting): the client redials
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        socks = [a, b]
        try:
            while True:
                ready, _, _ = select.select(socks, [], [], 1.0)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in socks:
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self):
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass

    def stop(self):
        self.stopped = True
        self.listener.close()
        self.cut()


class UnmanagedWorkersTest(h.DaemonTestCase):
    CHECK_LEFTOVERS = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.workers = []
        cls.port = h.free_port()
        cls.state = cls.new_state_dir()
        config = h.BASE_CONFIG + f"\n[workers]\nheartbeat_seconds = {HEARTBEAT}\n"
        cls.d = h.Daemon(cls.state, config_text=config)
        cls._daemons.append(cls.d)
        cls.d.start(listen=f"127.0.0.1:{cls.port}")
        cls.key = cls.create_key("laptop-key")
        # The model folder, under the default model root.
        folder = os.path.join(cls.state, "models", "doubler")
        os.makedirs(os.path.join(folder, "src"))
        with open(os.path.join(folder, "giskard-model.json"), "w") as f:
            json.dump({"entrypoint": "doubler_model:model", "code": ["src"]}, f)
        with open(os.path.join(folder, "src", "doubler_model.py"), "w") as f:
            f.write(MODEL_CODE)
        with open(os.path.join(cls.state, "models", "identity.pkl"), "wb") as f:
            pickle.dump(list, f)  # list(X): the rows back, as lists
        # The user's environment: a venv with only the shim, installed from the supervisor.
        cls.venv = os.path.join(cls.tmp, "user-venv")
        subprocess.run([sys.executable, "-m", "venv", cls.venv], check=True, timeout=120)
        listing = cls.d.get("/downloads/", token=None)
        assert listing.status == 200 and listing.json["files"], listing
        wheel_url = cls.d.url + listing.json["files"][0]["url"]
        pip = subprocess.run([os.path.join(cls.venv, "bin", "pip"), "install", "--no-index",
                              "--disable-pip-version-check", wheel_url],
                             capture_output=True, text=True, timeout=180)
        assert pip.returncode == 0, pip.stdout + pip.stderr
        cls.giskard = os.path.join(cls.venv, "bin", "giskard")
        assert os.path.exists(cls.giskard), "the wheel installs no `giskard` command"

    @classmethod
    def cleanup_class(cls):
        for proc, _ in getattr(cls, "workers", []):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        super().cleanup_class()

    @classmethod
    def create_key(cls, name):
        r = cls.d.post("/api/v1/keys", {"name": name})
        assert r.status == 201, r
        return r.json["key"]

    def start_worker(self, name, key=None, url=None, home=None, expect_connected=True):
        """`giskard worker start -k KEY -u URL --name NAME` in the foreground; returns the
        process once it printed that it is connected (or, if not expected, once it exited)."""
        home = home or os.path.join(self.tmp, "home-" + name)
        env = dict(os.environ, GSK_HOME=home)
        proc = subprocess.Popen(
            [self.giskard, "worker", "start", "-k", key or self.key, "-u", url or self.d.url,
             "--name", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.workers.append((proc, home))
        if not expect_connected:
            out, err = proc.communicate(timeout=CONNECT_TIMEOUT)
            return proc, out + err
        line = self.read_line(proc, CONNECT_TIMEOUT)
        self.assertEqual(line.strip(), "Connected to Giskard server.", proc.stderr)
        return proc, home

    @staticmethod
    def read_line(proc, timeout):
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            raise AssertionError(f"no output within {timeout} s")
        return proc.stdout.readline()

    def stop_worker(self, proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def remote_workers(self, kernel):
        r = self.d.get(f"/api/v1/workers?kernel={kernel}")
        self.assertEqual(r.status, 200, r)
        return [w for w in r.json["workers"] if not w["managed"]]

    def predict(self, kernel, model, rows, timeout=CALL_TIMEOUT):
        return self.d.post(f"/api/v1/kernels/{kernel}/predict",
                           {"model": model, "rows": rows, "timeoutSeconds": timeout},
                           timeout=timeout + 10)

    def test_a_worker_joins_creates_its_kernel_and_runs_its_calls(self):
        proc, home = self.start_worker("laptop")
        try:
            k = self.d.get("/api/v1/kernels/laptop")
            self.assertEqual(k.status, 200, k)
            self.assertEqual(k.json["type"], "UNMANAGED")
            self.assertEqual(k.json["runningWorkers"], 1)
            [w] = self.remote_workers("laptop")
            self.assertTrue(w["active"])
            self.assertTrue(w["remoteAddress"].startswith("127.0.0.1:"), w)
            self.assertEqual(w["keyName"], "laptop-key")
            shown = self.d.get(f"/api/v1/workers/{w['id']}")
            self.assertTrue(shown.json["environment"]["pythonExecutable"].startswith(
                os.path.join(self.venv, "bin", "python")), shown.json["environment"])
            cli = h.run_cli("--state-dir", self.state, "workers", "list")
            self.assertIn("127.0.0.1:", cli.stdout)
            # A folder model: its tar blob is fetched once and cached by hash.
            r = self.predict("laptop", "doubler", [[1], [2.5]])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["predictions"], [2, 5.0])
            self.assertEqual(r.json["worker"], w["id"])
            cache = os.path.join(home, "cache", "models")
            [blob] = os.listdir(cache)
            self.assertRegex(blob, h.HEX64_RE)
            # The supervisor's packed copy goes: the worker's cache serves the next call.
            packed = os.path.join(self.state, "cache", "model-blobs")
            for f in os.listdir(packed):
                os.remove(os.path.join(packed, f))
            r = self.predict("laptop", "doubler", [[4]])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["predictions"], [8])
            # A file model.
            r = self.predict("laptop", "identity.pkl", [[1, "a"], [2, "b"]])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["predictions"], [[1, "a"], [2, "b"]])
            # Outside the roots: refused before any worker sees it.
            self.assertEqual(self.predict("laptop", "/etc/passwd", [[1]]).status, 403)
        finally:
            self.stop_worker(proc)
        self.assertEqual(proc.returncode, 0)
        until(lambda: not self.remote_workers("laptop"), 10, "the worker is gone from the list")
        r = self.predict("laptop", "doubler", [[1]])
        self.assertEqual(r.status, 503, r)
        self.assertIn("giskard worker start", r.json["error"]["message"])

    def test_the_most_recent_worker_takes_calls_and_a_standby_takes_over(self):
        first, _ = self.start_worker("pair", home=os.path.join(self.tmp, "pair-1"))
        second, _ = self.start_worker("pair", home=os.path.join(self.tmp, "pair-2"))
        try:
            workers = self.remote_workers("pair")
            self.assertEqual(len(workers), 2)
            active = [w for w in workers if w["active"]]
            self.assertEqual(len(active), 1)
            r = self.predict("pair", "doubler", [[1]])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["worker"], active[0]["id"])
            # A call in flight on the active worker when it is lost: 502, not a hang.
            result = {}

            def slow_call():
                result["r"] = self.predict("pair", "doubler", [["sleep", 20]])

            t = threading.Thread(target=slow_call)
            t.start()
            time.sleep(1.5)
            second.kill()
            t.join(15)
            self.assertFalse(t.is_alive(), "the call hangs after its worker was lost")
            self.assertEqual(result["r"].status, 502, result["r"])
            self.assertEqual(result["r"].error_code, "WORKER_LOST")
            # The standby takes over.
            until(lambda: len(self.remote_workers("pair")) == 1, 10, "the lost worker goes")
            r = self.predict("pair", "doubler", [[3]])
            self.assertEqual(r.status, 200, r)
            self.assertNotEqual(r.json["worker"], active[0]["id"])
        finally:
            self.stop_worker(first)
            self.stop_worker(second)

    def test_refusals_end_the_worker_with_77_and_a_message(self):
        doc = h.kernel_doc("managed-one", "3.11")
        self.assertEqual(self.d.post("/api/v1/kernels", doc).status, 201)
        proc, output = self.start_worker("managed-one", expect_connected=False)
        self.assertEqual(proc.returncode, 77, output)
        self.assertIn("managed kernel", output)
        proc, output = self.start_worker("wrong-key", key="gsk_" + "0" * 64,
                                         expect_connected=False)
        self.assertEqual(proc.returncode, 77, output)
        self.assertNotIn("Traceback", output)
        # A revoked key: the worker is closed, cannot come back, and says why.
        key = self.create_key("short-lived")
        proc, _ = self.start_worker("revoked", key=key)
        self.assertEqual(self.d.request("DELETE", "/api/v1/keys/short-lived").status, 200)
        proc.wait(CONNECT_TIMEOUT)
        self.assertEqual(proc.returncode, 77)
        self.assertEqual(self.remote_workers("revoked"), [])
        # A worker key opens nothing else.
        self.assertEqual(self.d.get("/api/v1/kernels", token=self.key).status, 403)

    def test_after_a_network_cut_and_a_restart_the_worker_is_registered_once(self):
        proxy = Proxy(self.port)
        proc, _ = self.start_worker("roamer", url=f"http://127.0.0.1:{proxy.port}")
        try:
            [before] = self.remote_workers("roamer")
            proxy.cut()
            until(lambda: [w["id"] for w in self.remote_workers("roamer")] == [before["id"]]
                     and self.remote_workers("roamer")[0]["startedAt"] != before["startedAt"],
                     30, "the worker redials through the proxy and is registered again")
            self.assertEqual(self.predict("roamer", "doubler", [[5]]).json["predictions"], [10])
            # A supervisor restart on the same port: the worker redials, nothing duplicated.
            kernels = self.d.kernel_count()
            self.assertEqual(self.d.stop(), 0)
            self.d.start(listen=f"127.0.0.1:{self.port}")
            until(lambda: [w["id"] for w in self.remote_workers("roamer")] == [before["id"]],
                     30, "the worker is registered again after the restart")
            self.assertEqual(self.d.kernel_count(), kernels)
            self.assertEqual(self.predict("roamer", "doubler", [[6]]).json["predictions"], [12])
            # Silent (stopped): lost after 3 heartbeats; it redials once it runs again.
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                until(lambda: not self.remote_workers("roamer"), 6 * HEARTBEAT + 5,
                         "a silent worker is marked lost")
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            until(lambda: len(self.remote_workers("roamer")) == 1, 30,
                     "the worker comes back once it runs again")
        finally:
            self.stop_worker(proc)
            proxy.stop()

    def test_hostile_websocket_peers_are_closed_and_the_daemon_keeps_serving(self):
        sock, head = ws_handshake(self.port, "gsk_" + "1" * 64)
        self.assertTrue(head.startswith(b"HTTP/1.1 401"), head)
        sock.close()
        # A binary message.
        sock, head = ws_handshake(self.port, self.key)
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        sock.sendall(ws_frame(0x2, b"\x00\x01"))
        self.assertTrue(closed_within(sock, 10))
        sock.close()
        # A frame announcing more than 16 MiB: closed without reading it.
        sock, head = ws_handshake(self.port, self.key)
        sock.sendall(ws_frame(0x1, b"{", announced=(16 << 20) + 1))
        self.assertTrue(closed_within(sock, 10))
        sock.close()
        # Not a hello: an error message, then closed.
        sock, head = ws_handshake(self.port, self.key)
        sock.sendall(ws_frame(0x1, b'{"type":"request","id":"x","method":"ping"}'))
        self.assertTrue(closed_within(sock, 10))
        sock.close()
        # Many silent upgraded peers: /healthz and the API still answer.
        idle = [ws_handshake(self.port, self.key)[0] for _ in range(20)]
        try:
            self.assertEqual(self.d.get("/healthz", token=None).status, 200)
            self.assertEqual(self.d.get("/api/v1/kernels").status, 200)
        finally:
            for s in idle:
                s.close()
        # The name of a managed kernel is refused before the upgrade.
        self.assertEqual(self.d.post("/api/v1/kernels", h.kernel_doc("taken", "3.11")).status, 201)
        sock, head = ws_handshake(self.port, self.key, b"X-Giskard-Worker-Name: taken\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 409"), head)
        sock.close()


    def test_a_websocket_client_this_project_did_not_write(self):
        """Debian's python3-websockets against the endpoint: the handshake and a session,
        an oversized message, a binary message, an abrupt close."""
        try:
            import asyncio
            import websockets.client
            import websockets.exceptions
        except ImportError:
            self.skipTest("python3-websockets is not installed (apt-get install python3-websockets)")
        uri = f"ws://127.0.0.1:{self.port}/api/v1/workers/connect"
        headers = {"Authorization": "Bearer " + self.key}
        hello = {"type": "hello", "protocol": 1, "workerId": "ws-lib-1", "name": "ws-lib",
                 "reconnect": False, "env": {"pythonVersion": "3.11.2", "pid": 1}}

        async def session():
            async with websockets.client.connect(uri, extra_headers=headers,
                                                 max_size=None) as ws:
                await ws.send(json.dumps(hello))
                welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
                self.assertEqual(welcome["type"], "welcome")
                self.assertEqual(welcome["heartbeatSeconds"], HEARTBEAT)
                self.assertEqual([w["id"] for w in self.remote_workers("ws-lib")], ["ws-lib-1"])
                # A request comes, and its reply is relayed.
                result = {}

                def call():
                    result["r"] = self.predict("ws-lib", "identity.pkl", [[1]])

                t = threading.Thread(target=call)
                t.start()
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if msg["type"] == "request":
                        break
                self.assertEqual(msg["method"], "predict")
                self.assertEqual(msg["params"]["rows"], [[1]])
                await ws.send(json.dumps({"type": "reply", "id": msg["id"],
                                          "result": {"predictions": ["from-the-lib"]}}))
                await asyncio.get_running_loop().run_in_executor(None, t.join, 15)
                self.assertEqual(result["r"].json["predictions"], ["from-the-lib"])
                # Over 16 MiB: the server closes with 1009 (message too big).
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as closed:
                    await ws.send("x" * ((16 << 20) + 10))
                    while True:
                        await asyncio.wait_for(ws.recv(), 10)
                self.assertEqual(closed.exception.code, 1009)

        async def binary():
            async with websockets.client.connect(uri, extra_headers=headers) as ws:
                await ws.send(b"\x00\x01")
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), 10)
                self.assertEqual(closed.exception.code, 1003)

        async def abrupt():
            ws = await websockets.client.connect(uri, extra_headers=headers)
            await ws.send(json.dumps(dict(hello, workerId="ws-lib-2")))
            await asyncio.wait_for(ws.recv(), 10)
            ws.transport.abort()  # no close frame: a TCP reset

        asyncio.run(session())
        asyncio.run(binary())
        asyncio.run(abrupt())
        until(lambda: not self.remote_workers("ws-lib"), 10, "the aborted worker is dropped")
        self.assertEqual(self.d.get("/healthz", token=None).status, 200)

    def test_the_seeds_commands_detached_logs_stop_and_first_generation_flags(self):
        home = os.path.join(self.tmp, "home-cli")
        env = dict(os.environ, GSK_HOME=home)

        def giskard(*args, timeout=CONNECT_TIMEOUT):
            return subprocess.run([self.giskard, *args], capture_output=True, text=True,
                                  env=env, timeout=timeout)

        self.assertEqual(giskard("worker", "--help").returncode, 0)
        for name, server in (("cli-new", ["-u", self.d.url]),
                             ("cli-old", ["-h", "127.0.0.1", "-p", str(self.port)])):
            started = time.monotonic()
            r = giskard("worker", "start", "-d", "-k", self.key, *server, "--name", name)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("Connected to Giskard server.", r.stdout)
            self.assertLess(time.monotonic() - started, 10)
            until(lambda: len(self.remote_workers(name)) == 1, 10, f"{name} is registered")
        self.assertTrue(os.path.exists(os.path.join(home, "run", "ml-worker.log")))
        again = giskard("worker", "start", "-d", "-k", self.key, "-u", self.d.url,
                        "--name", "cli-new")
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("already running", again.stdout + again.stderr)
        logs = giskard("worker", "logs", "--name", "cli-new")
        self.assertEqual(logs.returncode, 0, logs.stderr)
        self.assertIn("cli-new", logs.stdout)
        stop = giskard("worker", "stop", "-h", "127.0.0.1", "-p", str(self.port),
                       "--name", "cli-old")
        self.assertEqual(stop.returncode, 0, stop.stdout + stop.stderr)
        until(lambda: not self.remote_workers("cli-old"), 10, "cli-old is gone")
        self.assertEqual(len(self.remote_workers("cli-new")), 1)
        stop_all = giskard("worker", "stop", "-a")
        self.assertEqual(stop_all.returncode, 0, stop_all.stdout + stop_all.stderr)
        until(lambda: not self.remote_workers("cli-new"), 10, "cli-new is gone")


class TlsTest(h.DaemonTestCase):
    """[server] tls_certificate and tls_private_key: HTTPS, and WSS for workers that verify the
    supervisor's self-made certificate with --ca-file."""

    CHECK_LEFTOVERS = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.proc = None
        if not shutil.which("openssl"):
            raise unittest.SkipTest("no openssl command to make a certificate (apt-get install openssl)")
        cls.cert = os.path.join(cls.tmp, "cert.pem")
        cls.key_file = os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        cls.key_file, "-out", cls.cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        config = h.BASE_CONFIG.replace("[packages]", "[server]\ntls_certificate = " +
                                       h.toml_str(cls.cert) + "\ntls_private_key = " +
                                       h.toml_str(cls.key_file) + "\n[packages]", 1)
        cls.state = cls.new_state_dir()
        cls.d = h.Daemon(cls.state, config_text=config)
        cls._daemons.append(cls.d)
        cls.d.launch()
        cls.port = wait_for("the TLS daemon is ready", cls._ready_port, bool, 30)

    @classmethod
    def _ready_port(cls):
        for line in cls.d.log_lines():
            m = h.READY_RE.search(line)
            if m:
                return int(m.group(2))
        return None

    @classmethod
    def cleanup_class(cls):
        if cls.proc is not None:
            if cls.proc.poll() is None:
                cls.proc.kill()
                cls.proc.wait(10)
            cls.proc.stdout.close()
            cls.proc.stderr.close()
        super().cleanup_class()

    def https(self, method, path, body=None, token=None):
        ctx = ssl.create_default_context(cafile=self.cert)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=ctx)
        headers = {"Authorization": "Bearer " + (token or self.d.token)}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            return h.do_request(conn, method, path, body, headers)
        finally:
            conn.close()

    def test_https_and_a_worker_over_wss(self):
        self.assertEqual(self.https("GET", "/healthz").status, 200)
        # Plain HTTP on the TLS port gets no answer it could take for one.
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(10)
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            self.assertFalse(data.startswith(b"HTTP/1.1 200"), data)
        # A client that does not trust the certificate is refused by its own check.
        with self.assertRaises(ssl.SSLError):
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10,
                                               context=ssl.create_default_context())
            conn.request("GET", "/healthz")
        key = self.https("POST", "/api/v1/keys", {"name": "tls-key"}).json["key"]
        shim_src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "worker-shim", "src")
        env = dict(os.environ, GSK_HOME=os.path.join(self.tmp, "home"), PYTHONPATH=shim_src)
        type(self).proc = subprocess.Popen(
            [sys.executable, "-m", "giskard_worker_shim", "worker", "start", "-k", key, "-u",
             f"https://127.0.0.1:{self.port}", "--ca-file", self.cert, "--name", "secure"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], CONNECT_TIMEOUT)
        self.assertTrue(ready, "the worker did not connect over wss")
        self.assertEqual(self.proc.stdout.readline().strip(), "Connected to Giskard server.")
        workers = self.https("GET", "/api/v1/workers?kernel=secure").json["workers"]
        self.assertEqual(len(workers), 1)
        models = os.path.join(self.state, "models")
        os.makedirs(models, exist_ok=True)
        with open(os.path.join(models, "identity.pkl"), "wb") as f:
            pickle.dump(list, f)
        r = self.https("POST", "/api/v1/kernels/secure/predict",
                       {"model": "identity.pkl", "rows": [[7]]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["predictions"], [[7]])
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(15)
        # Without --ca-file, the self-made certificate is refused: exit 77 with a message.
        env_no_ca = dict(env, SSL_CERT_FILE="/nonexistent")
        bad = subprocess.run(
            [sys.executable, "-m", "giskard_worker_shim", "worker", "start", "-k", key, "-u",
             f"https://127.0.0.1:{self.port}", "--name", "insecure"],
            capture_output=True, text=True, env=env_no_ca, timeout=CONNECT_TIMEOUT)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("certificate", (bad.stdout + bad.stderr).lower())


if __name__ == "__main__":
    h.main()
