#!/usr/bin/env python3
"""Request sampler of the worker benchmark, run as its own process (so that the benchmark's
threads and JSON parsing never delay it under one GIL): sends one request every --interval s on
one kept-open connection until its stdin closes, then prints one JSON line, {"latencies":
[seconds...], "errors": n, "first_error": "..."}. Prints "ready" once its first request got an
answer. Started by worker_bench_common.Sampler; not a program to run by hand.

  worker_bench_sampler.py --interval 0.01 http PORT PATH     (token: $GSK_BENCH_TOKEN)
  worker_bench_sampler.py --interval 0.01 xmlrpc SOCKET METHOD

Requests are sent on a fixed schedule (every --interval from the start of the previous one; at
once when the previous one was late), never more than one at a time."""

import argparse
import http.client
import json
import os
import select
import sys
import time
import xmlrpc.client

from supervisord_peer import _UnixTransport


def http_caller(port, path, timeout):
    headers = {"Authorization": "Bearer " + os.environ.get("GSK_BENCH_TOKEN", "")}
    state = {"conn": None}

    def call():
        if state["conn"] is None:
            state["conn"] = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            state["conn"].request("GET", path, headers=headers)
            resp = state["conn"].getresponse()
            resp.read()
        except (http.client.HTTPException, OSError):
            state["conn"].close()
            state["conn"] = None
            raise
        if (resp.getheader("Connection") or "").lower() == "close":
            state["conn"].close()
            state["conn"] = None
        if resp.status != 200:
            raise RuntimeError(f"GET {path} -> {resp.status}")
    return call


def xmlrpc_caller(sock, method, timeout):
    proxy = xmlrpc.client.ServerProxy("http://localhost/RPC2",
                                      transport=_UnixTransport(sock, timeout))
    fn = proxy
    for part in method.split("."):
        fn = getattr(fn, part)
    return lambda: fn()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--nice", type=int, default=0, help="os.nice() increment (negative: root)")
    p.add_argument("kind", choices=("http", "xmlrpc"))
    p.add_argument("where")
    p.add_argument("what")
    a = p.parse_args()
    if a.nice:
        try:
            os.nice(a.nice)
        except OSError:
            pass
    call = (http_caller(int(a.where), a.what, a.timeout) if a.kind == "http"
            else xmlrpc_caller(a.where, a.what, a.timeout))
    call()  # the connection is open before the measured part begins
    print("ready", flush=True)
    print(json.dumps(sample(call, a.interval)), flush=True)


def sample(call, interval):
    """Calls call() every `interval` s (at once when the previous one was late) until stdin
    closes; returns {"latencies": [s...], "errors": n, "first_error": text or None}."""
    latencies, errors, first_error = [], 0, None
    next_at = time.monotonic()
    while True:
        wait = max(0.0, next_at - time.monotonic())
        if select.select([sys.stdin], [], [], wait)[0]:
            if not sys.stdin.buffer.read1(4096):
                break
        start = time.monotonic()
        if start < next_at:
            continue
        try:
            call()
        except Exception as e:  # noqa: BLE001 (counted; sampling goes on)
            errors += 1
            first_error = first_error or repr(e)[:300]
        end = time.monotonic()
        latencies.append(end - start)
        next_at = max(start + interval, end)
    return {"latencies": latencies, "errors": errors, "first_error": first_error}


if __name__ == "__main__":
    main()
