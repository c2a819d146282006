#!/usr/bin/env python3
"""The load generators of model_bench.py, run as separate processes so that they can be pinned to
their own CPU (`--cpu N`: sched_setaffinity on itself, as `taskset -c N` would). Standard library
only. Each prints one JSON line with its results on stdout.

    model_bench_client.py seq   --port P --path PATH --token T --body FILE --warmup W --calls N
    model_bench_client.py load  --port P --path PATH --token T --body FILE --connections C
                                --seconds S --warmup-seconds W
    model_bench_client.py burst --port P --path PATH --token T --body FILE --connections N
                                --deadline S
    model_bench_client.py floor --python ENV/bin/python --work DIR

`seq`: one keep-alive TCP connection (TCP_NODELAY), one call at a time, the request written with
one send; latency percentiles over N calls after W warm-up calls, the client's own CPU per call,
and the durationMs/queuedMs the answers carry. A server that closes the connection (gunicorn's
sync workers answer "Connection: close") is dialled again, and the reconnects are counted (their
time is part of the latency, as for any client of such a server).

`load`: C keep-alive connections, each a closed loop (send, read the answer, send again), all on
one thread with epoll: throughput and latency over S seconds after W seconds of warm-up.

`burst`: N connections opened first, then one request written on each as fast as possible, then
every answer read: counts by status, 429s with Retry-After, connections that broke without an
answer ("lost") and calls still unanswered at the deadline ("hung").

`floor`: the shim protocol without the supervisor: listens on a Unix socket of its own, starts
`ENV/bin/python -m giskard_worker_shim serve-managed` (GSK_WORKER_TOKEN in its environment),
accepts its hello, sends welcome, then takes commands on stdin, one JSON object a line:
{"op": "seq", "body": FILE, "warmup": W, "calls": N} sends `predict` requests (params: the
body) one at a time and answers like `seq`; {"op": "cxx", "client": PATH, ...} has
model_call_bench (C++) send them instead, on the same connection, which it inherits;
{"op": "quit"} shuts the worker down. The worker
is started before this process pins itself, so it runs where the OS places it.
"""

import argparse
import json
import os
import resource
import select
import socket
import struct
import subprocess
import sys
import time

CRLF2 = b"\r\n\r\n"


# --- statistics -----------------------------------------------------------------------------------

def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summary_us(latencies_ns):
    """{"n", "p50", "p90", "p99", "min", "max", "mean"} in microseconds."""
    v = sorted(latencies_ns)
    if not v:
        return {"n": 0}
    us = 1000.0
    return {"n": len(v), "p50": percentile(v, 50) / us, "p90": percentile(v, 90) / us,
            "p99": percentile(v, 99) / us, "min": v[0] / us, "max": v[-1] / us,
            "mean": sum(v) / len(v) / us}


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pin(cpu):
    if cpu is not None and cpu >= 0:
        os.sched_setaffinity(0, {cpu})


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- HTTP/1.1 -------------------------------------------------------------------------------------

def build_request(path, token, body):
    if body is None:  # a GET without a body (calibration: GET /healthz)
        return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").encode("latin-1")
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class Parser:
    """Incremental parser of HTTP/1.1 answers with a Content-Length (what every server measured
    here sends). feed() returns the answers completed, as (status, headers, body)."""

    __slots__ = ("buf",)

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            end = self.buf.find(CRLF2)
            if end < 0:
                return out
            head = self.buf[:end]
            length = 0
            headers = {}
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0"))
            if len(self.buf) < end + 4 + length:
                return out
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            out.append((int(head[9:12]), headers, body))


def dial(port, timeout=60.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def closes(headers):
    return headers.get(b"connection", b"").lower() == b"close"


def server_ms(bodies):
    """The daemon's own durationMs/queuedMs of the answers that carry them."""
    dur, que = [], []
    for b in bodies:
        i = b.rfind(b'"durationMs":')
        if i < 0:
            continue
        try:
            tail = json.loads(b"{" + b[i:])
        except ValueError:
            continue
        dur.append(tail.get("durationMs"))
        que.append(tail.get("queuedMs"))
    if not dur:
        return None
    dur.sort()
    que.sort()
    return {"n": len(dur), "duration_p50": percentile(dur, 50), "duration_max": dur[-1],
            "queued_p50": percentile(que, 50), "queued_max": que[-1]}


def run_seq(a):
    body = open(a.body, "rb").read() if a.body else None
    req = build_request(a.path, a.token, body)
    deadline = time.monotonic() + a.deadline
    sock = dial(a.port)
    parser = Parser()
    reconnects = 0
    statuses = {}
    lat = []
    bodies = []
    recv = sock.recv
    clock = time.perf_counter_ns
    cpu0 = None
    for i in range(a.warmup + a.calls):
        if i == a.warmup:
            cpu0 = cpu_seconds()
        t0 = clock()
        sock.sendall(req)
        answers = []
        while not answers:
            data = recv(262144)
            if not data:
                raise RuntimeError(f"connection closed by the server before answer {i}")
            answers = parser.feed(data)
        t1 = clock()
        status, headers, answer = answers[0]
        if closes(headers):
            sock.close()
            reconnects += 1
            sock = dial(a.port)
            recv = sock.recv
            parser = Parser()
        if i >= a.warmup:
            lat.append(t1 - t0)
            statuses[status] = statuses.get(status, 0) + 1
            bodies.append(answer)
        if time.monotonic() > deadline:
            break
    cpu = cpu_seconds() - (cpu0 if cpu0 is not None else cpu_seconds())
    sock.close()
    n = len(lat)
    return {"latency_us": summary_us(lat), "statuses": statuses, "reconnects": reconnects,
            "client_cpu_us_per_call": cpu * 1e6 / n if n else None,
            "server_ms": server_ms(bodies), "first": bodies[0].decode() if bodies else None,
            "timed_out": n < a.calls}


# --- many connections on one thread (epoll) -------------------------------------------------------

class Conn:
    __slots__ = ("sock", "parser", "t0", "answered")

    def __init__(self, sock):
        self.sock = sock
        self.parser = Parser()
        self.t0 = 0
        self.answered = False


def run_load(a):
    body = open(a.body, "rb").read()
    req = build_request(a.path, a.token, body)
    ep = select.epoll()
    conns = {}
    clock = time.perf_counter_ns
    reconnects = 0
    errors = 0

    def open_conn():
        s = dial(a.port)
        s.setblocking(False)
        c = Conn(s)
        conns[s.fileno()] = c
        ep.register(s.fileno(), select.EPOLLIN)
        return c

    def send(c):
        c.t0 = clock()
        if c.sock.send(req) != len(req):  # a request of a few hundred bytes: never partial
            raise RuntimeError("partial send")

    for _ in range(a.connections):
        send(open_conn())
    start = time.monotonic()
    measure_from = start + a.warmup_seconds
    end = measure_from + a.seconds
    lat = []
    statuses = {}
    cpu0 = None
    while True:
        now = time.monotonic()
        if cpu0 is None and now >= measure_from:
            cpu0 = cpu_seconds()
            t_measure = time.monotonic()
        if now >= end:
            break
        for fd, _ in ep.poll(0.5):
            c = conns[fd]
            try:
                data = c.sock.recv(262144)
            except BlockingIOError:
                continue
            if not data:
                errors += 1
                ep.unregister(fd)
                del conns[fd]
                c.sock.close()
                send(open_conn())
                continue
            answers = c.parser.feed(data)
            if not answers:
                continue
            t1 = clock()
            status, headers, _ = answers[0]
            if cpu0 is not None:
                lat.append(t1 - c.t0)
                statuses[status] = statuses.get(status, 0) + 1
            if closes(headers):
                reconnects += 1
                ep.unregister(fd)
                del conns[fd]
                c.sock.close()
                c = open_conn()
            send(c)
    elapsed = time.monotonic() - t_measure if cpu0 is not None else 0
    cpu = cpu_seconds() - cpu0 if cpu0 is not None else 0
    for c in conns.values():
        c.sock.close()
    ep.close()
    n = len(lat)
    return {"requests": n, "seconds": elapsed, "rps": n / elapsed if elapsed else 0,
            "latency_us": summary_us(lat), "statuses": statuses, "reconnects": reconnects,
            "broken": errors, "client_cpu_share": cpu / elapsed if elapsed else None,
            "client_cpu_us_per_call": cpu * 1e6 / n if n else None}


def run_burst(a):
    raise_nofile(a.connections + 256)
    body = open(a.body, "rb").read()
    req = build_request(a.path, a.token, body)
    t_start = time.monotonic()
    socks = []
    for _ in range(a.connections):
        socks.append(dial(a.port, timeout=30))
    t_connected = time.monotonic()
    ep = select.epoll()
    conns = {}
    for s in socks:
        s.setblocking(False)
        c = Conn(s)
        conns[s.fileno()] = c
        ep.register(s.fileno(), select.EPOLLIN)
    clock = time.perf_counter_ns
    t0 = clock()
    for c in conns.values():
        c.t0 = t0
        c.sock.send(req)
    t_sent = time.monotonic()
    statuses = {}
    retry_after = 0
    retry_values = set()
    lost = 0
    lat = []
    pending = len(conns)
    deadline = t_sent + a.deadline
    while pending and time.monotonic() < deadline:
        for fd, _ in ep.poll(0.5):
            c = conns[fd]
            if c.answered:
                continue
            try:
                data = c.sock.recv(262144)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                lost += 1
                c.answered = True
                pending -= 1
                ep.unregister(fd)
                continue
            answers = c.parser.feed(data)
            if not answers:
                continue
            lat.append(clock() - c.t0)
            status, headers, _ = answers[0]
            statuses[status] = statuses.get(status, 0) + 1
            if status == 429 and b"retry-after" in headers:
                retry_after += 1
                retry_values.add(headers[b"retry-after"].decode())
            c.answered = True
            pending -= 1
            ep.unregister(fd)
    t_end = time.monotonic()
    for c in conns.values():
        c.sock.close()
    ep.close()
    return {"connections": a.connections, "statuses": statuses, "retry_after": retry_after,
            "retry_after_values": sorted(retry_values), "lost": lost, "hung": pending,
            "connect_s": t_connected - t_start, "send_s": t_sent - t_connected,
            "wall_s": t_end - t_connected, "latency_us": summary_us(lat),
            "deadline_s": a.deadline}


# --- the floor: the shim protocol straight to a worker --------------------------------------------

HEADER = struct.Struct(">I")


class Floor:
    def __init__(self, python, work):
        self.work = work
        self.path = os.path.join(work, "floor.sock")
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(1)
        env_dir = os.path.dirname(os.path.dirname(python))
        env = {"PATH": os.path.join(env_dir, "bin") + ":/usr/bin:/bin", "LANG": "C.UTF-8",
               "LC_ALL": "C.UTF-8", "VIRTUAL_ENV": env_dir, "HOME": work,
               "PYTHONUNBUFFERED": "1", "GSK_SUPERVISOR_SOCKET": self.path,
               "GSK_WORKER_ID": "floor-1", "GSK_WORKER_TOKEN": "floor-token",
               "GSK_HEARTBEAT_SECONDS": "3600", "GSK_ORPHAN_GRACE_SECONDS": "0",
               "GSK_MODEL_CACHE_SIZE": "4"}
        self.log = open(os.path.join(work, "floor-worker.log"), "ab")
        self.proc = subprocess.Popen([python, "-m", "giskard_worker_shim", "serve-managed"],
                                     cwd=work, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.srv.settimeout(60)
        self.sock, _ = self.srv.accept()
        self.sock.settimeout(None)
        self.buf = b""
        hello = json.loads(self.read_frame())
        if hello.get("type") != "hello" or hello.get("token") != "floor-token":
            raise RuntimeError(f"unexpected first frame from the worker: {hello}")
        self.send({"type": "welcome", "protocol": 1, "heartbeatSeconds": 3600,
                   "supervisorPid": os.getpid()})
        self.n = 0

    def send(self, message):
        payload = json.dumps(message, separators=(",", ":")).encode()
        self.sock.sendall(HEADER.pack(len(payload)) + payload)

    def read_frame(self):
        while len(self.buf) < 4:
            self._more()
        (length,) = HEADER.unpack_from(self.buf)
        while len(self.buf) < 4 + length:
            self._more()
        payload = self.buf[4:4 + length]
        self.buf = self.buf[4 + length:]
        return payload

    def _more(self):
        data = self.sock.recv(262144)
        if not data:
            raise RuntimeError("the floor worker closed the connection")
        self.buf += data

    def frame(self, params_bytes):
        self.n += 1
        payload = (b'{"type":"request","id":"f%d","method":"predict","params":' % self.n
                   + params_bytes + b"}")
        return HEADER.pack(len(payload)) + payload

    def seq(self, body_file, warmup, calls, deadline):
        params = open(body_file, "rb").read().strip()
        frames = [self.frame(params) for _ in range(warmup + calls)]
        lat = []
        replies = []
        clock = time.perf_counter_ns
        sock = self.sock
        end = time.monotonic() + deadline
        cpu0 = None
        for i, f in enumerate(frames):
            if i == warmup:
                cpu0 = cpu_seconds()
            t0 = clock()
            sock.sendall(f)
            while True:
                payload = self.read_frame()
                if payload.startswith(b'{"type":"reply"'):
                    break  # anything else (a heartbeat) is skipped
            t1 = clock()
            if i >= warmup:
                lat.append(t1 - t0)
                replies.append(payload)
            if time.monotonic() > end:
                break
        cpu = cpu_seconds() - (cpu0 if cpu0 is not None else cpu_seconds())
        first = json.loads(replies[0]) if replies else None
        errors = sum(1 for r in replies if b'"error":' in r[:200] and b'"result":' not in r)
        return {"latency_us": summary_us(lat), "errors": errors,
                "client_cpu_us_per_call": cpu * 1e6 / len(lat) if lat else None,
                "first": json.dumps(first.get("result", first)) if first else None,
                "timed_out": len(lat) < calls}

    def cxx(self, client, body_file, warmup, calls, deadline, first_out):
        """The same series sent by model_call_bench (C++) on this registered connection, which it
        inherits; it runs pinned where this process is."""
        fd = self.sock.fileno()
        cmd = [client, "frames", "--fd", str(fd), "--body", body_file, "--warmup", str(warmup),
               "--calls", str(calls), "--max-seconds", str(deadline), "--first-out", first_out]
        p = subprocess.run(cmd, pass_fds=(fd,), capture_output=True, text=True,
                           timeout=deadline + 60)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr[-2000:]}")
        out = json.loads(p.stdout.strip().splitlines()[-1])
        with open(first_out) as f:
            first = json.load(f)
        out["first"] = json.dumps(first.get("result", first))
        return out

    def quit(self):
        try:
            self.send({"type": "request", "id": "bye", "method": "shutdown", "params": {}})
            self.sock.settimeout(10)
            self.proc.wait(15)
        except (OSError, subprocess.TimeoutExpired, RuntimeError):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.sock.close()
        self.srv.close()
        self.log.close()
        return self.proc.returncode


def run_floor(a):
    floor = Floor(a.python, a.work)  # the worker starts before this process pins itself
    pin(a.cpu)
    print(json.dumps({"ready": True, "worker_pid": floor.proc.pid}), flush=True)
    try:
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["op"] == "quit":
                break
            if cmd["op"] == "seq":
                out = floor.seq(cmd["body"], cmd["warmup"], cmd["calls"], cmd.get("deadline", 120))
                print(json.dumps(out), flush=True)
            elif cmd["op"] == "cxx":
                out = floor.cxx(cmd["client"], cmd["body"], cmd["warmup"], cmd["calls"],
                                cmd.get("deadline", 120), cmd["first_out"])
                print(json.dumps(out), flush=True)
    finally:
        rc = floor.quit()
    print(json.dumps({"quit": True, "worker_exit": rc}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("seq", "load", "burst", "floor"))
    p.add_argument("--cpu", type=int, default=None, help="pin this process to CPU N")
    p.add_argument("--port", type=int)
    p.add_argument("--path", default="/")
    p.add_argument("--token", default="")
    p.add_argument("--body")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--warmup-seconds", type=float, default=1.0)
    p.add_argument("--deadline", type=float, default=120.0, help="bound of the whole run (s)")
    p.add_argument("--python", help="floor: the env's python")
    p.add_argument("--work", help="floor: a directory for the socket and the worker's log")
    a = p.parse_args()
    if a.mode == "floor":
        return run_floor(a)
    pin(a.cpu)
    out = {"seq": run_seq, "load": run_load, "burst": run_burst}[a.mode](a)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
