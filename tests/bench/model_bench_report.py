"""The printed report of model_bench.py: the setting (machine, date, load, placement), one table
per measurement (with the unmanaged worker's rows in (1) and (2) beside the managed ones), the
daemon's and the workers' CPU per call, the answers checked against the model's direct output,
and the README's goals next to the numbers."""

import json
import os
import platform

from model_bench_common import cpu_model


def us(v):
    return "n/a" if v is None else f"{v:,.0f}"


def ms(v):
    return "n/a" if v is None else f"{v:,.1f}"


def per_call(result, pids, calls):
    """CPU µs per call of `pids` (summed) over a run of `calls` calls."""
    total = sum(result["cpu_ms"].get(p, 0.0) for p in pids)
    return total * 1000.0 / calls if calls else None


def check(first, expected, problems, what):
    """Compares an answer (JSON text) with the model's direct output; returns "ok" or why not."""
    if first is None:
        problems.append(f"{what}: no answer to check")
        return "none"
    doc = json.loads(first)
    for key, value in expected.items():
        got = doc.get(key)
        if key == "probabilities_head":
            got = (doc.get("probabilities") or [])[:len(value)]
        if got != value:
            problems.append(f"{what}: {key} differs from the model's direct output")
            return "DIFFERS"
    return "ok"


def verdict(ok, text):
    return ("met: " if ok else "MISSED: ") + text


def unmanaged_row(r):
    """The (label, 1 connection, 8 connections) of the unmanaged worker in (2), or None."""
    return next((row for row in r["iris"] if "unmanaged" in row[0]), None)


def print_unmanaged_setting(u):
    if not u:
        return
    print(f"  unmanaged:  `{u['command']} worker start -k KEY -u http://127.0.0.1:PORT --name "
          f"bench-remote` in the foreground, with the iris kernel's own venv (same shim, numpy, "
          f"scikit-learn as the managed workers; not a separate user venv), GSK_HOME in the "
          f"run's temporary directory; pid {u['pid']}, CPUs {u['cpus']} (unpinned, like the "
          f"managed workers); models fetched once and warmed before (1); stopped after (2) by "
          f"{u.get('stopped', 'NOT STOPPED')}"
          + ("" if u.get("gone_from_kernel", True) else " (STILL LISTED by the daemon)"))


def print_unmanaged_costs(r, iris_n, seq_n, d_pid, managed_iris, best_t):
    """Rows of the "where the time goes" table: the unmanaged worker against the managed one."""
    row = unmanaged_row(r)
    if row is None or "trivial_remote" not in r:
        return
    t, i = r["trivial_remote"], row[1]

    def split(res, n):
        return (per_call(res, [d_pid], n),
                per_call(res, [p for p in res["cpu_ms"] if p != d_pid], n))
    dt, wt = split(t, seq_n)
    di, wi = split(i, iris_n)
    print(f"| unmanaged worker: REST, then WebSocket on loopback instead of the Unix socket | "
          f"{us(t['latency_us']['p50'])} | {us(i['latency_us']['p50'])} | - |")
    print(f"| unmanaged - managed (1 worker) at p50 | "
          f"{us(t['latency_us']['p50'] - best_t['latency_us']['p50'])} | "
          f"{us(i['latency_us']['p50'] - managed_iris['latency_us']['p50'])} | - |")
    print(f"| daemon / worker CPU per call, unmanaged | {us(dt)} / {us(wt)} | {us(di)} / {us(wi)}"
          f" | - |")


def print_report(bench, a):
    r, x = bench.r, bench.x
    problems = r["problems"]
    seq_n = a.warmup + a.calls
    iris_n = a.warmup + a.iris_calls
    d_pid = bench.daemon.pid
    print()
    print("giskard-supervisor model call benchmark (tests/bench/model_bench.py)")
    print(f"  date:       {r['date']}; whole run {r.get('wall_s', 0):.0f} s"
          + (" (--quick)" if a.quick else ""))
    print(f"  machine:    {platform.node()}, {os.cpu_count()} CPUs (nproc), {cpu_model()}, "
          f"Linux {platform.release()}")
    la0, la1 = r["loadavg_start"], r.get("loadavg_end")
    print(f"  load avg:   at start {la0[0]:.2f} {la0[1]:.2f} {la0[2]:.2f}"
          + (f"; at end {la1[0]:.2f} {la1[1]:.2f} {la1[2]:.2f}" if la1 else "")
          + ("; compilers running at start: " + ", ".join(sorted(set(r["compilers_start"])))
             if r["compilers_start"] else "; no compiler running at start"))
    print("  1-min load at the start of each phase: "
          + ", ".join(f"{t} {v:.2f}" for t, v in r.get("phase_load", [])))
    if "waited_load" in r:
        la, ok = r["waited_load"]
        print(f"  waited for the load average to fall under {a.wait_load:g} before measuring: "
              f"{'reached' if ok else 'NOT reached'} ({la:.2f})")
    opt = getattr(a, "optimization", "unknown")
    print(f"  binary:     {a.binary} ({a.build_type or 'build type unknown'}; compiled with "
          f"{opt}" + (": UNOPTIMIZED, the optimized build (preset ci) is -O2" if "-O0" in opt
                      else "") + ")")
    v = x["versions"]
    print(f"  env:        Python {x['python']} ({x['base']}), scikit-learn {v['sklearn']}, "
          f"numpy {v['numpy']}, scipy {v['scipy']} (Debian 12's builds repacked as wheels, "
          f"built into the kernel's venv by the daemon in {r.get('env_build_s', 0):.0f} s); "
          f"no pandas, so X = numpy.asarray(rows) everywhere")
    if bench.pinned:
        wk = ", ".join(f"{p}: CPUs {c}" for p, c in sorted(bench.placement.items()))
        print("  placement:  daemon pinned to CPU 0 (taskset -c 0); every client, and the floor's "
              "client (which plays the supervisor), pinned to CPU 1 (sched_setaffinity, as "
              "taskset -c 1 does)")
        print(f"              workers and peers placed by the OS: the daemon's children had their "
              f"affinity reset to every CPU (they inherit taskset's) ({wk}); floor worker: "
              f"CPUs {r.get('floor_worker_cpus')}; peers started unpinned")
    else:
        print("  placement:  nothing pinned (fewer than 2 CPUs, no taskset, or --no-pin)")
    if bench.cxx:
        print(f"  client:     model_call_bench (C++, {bench.cxx}): HTTP/1.1 keep-alive, "
              f"TCP_NODELAY, request head and body in one send; 8 connections: closed loops on "
              f"one thread (epoll); floor: the same program sending frames on the worker's "
              f"registered connection; the burst: model_bench_client.py (Python, epoll); the "
              f"client's own CPU per call is printed")
    else:
        print("  client:     model_bench_client.py (Python: model_call_bench not built), raw "
              "socket HTTP/1.1 keep-alive, TCP_NODELAY, request head and body in one send; 8 "
              "connections: closed loops on one thread (epoll); its own CPU per call is printed")
    print(f"  bodies:     10 rows {r['body_bytes']['iris']} B; 10,000 rows "
          f"{r['body_bytes']['iris10k']:,} B")
    print_unmanaged_setting(r.get("unmanaged"))

    # (1)
    print()
    print(f"(1) trivial model (predict returns [0]*len(X)), 10 rows (columns + rows), 1 "
          f"connection, {a.calls} calls after {a.warmup} warm-up; two rounds")
    print("| path | p50 µs | p90 µs | p99 µs | mean µs | max µs | client CPU µs/call | "
          "daemon CPU µs/call | worker CPU µs/call |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in (("trivial_rest", "REST, round 1"), ("trivial_floor", "floor, round 1"),
                       ("trivial_rest2", "REST, round 2"), ("trivial_floor2", "floor, round 2")):
        res = r[key]
        lat = res["latency_us"]
        if "rest" in key:
            daemon = per_call(res, [d_pid], seq_n)
            worker = per_call(res, [p for p in res["cpu_ms"] if p != d_pid], seq_n)
        else:
            daemon, worker = None, per_call(res, list(res["cpu_ms"]), seq_n)
        print(f"| {label} | {us(lat['p50'])} | {us(lat['p90'])} | {us(lat['p99'])} | "
              f"{us(lat['mean'])} | {us(lat['max'])} | {us(res['client_cpu_us_per_call'])} | "
              f"{'-' if daemon is None else us(daemon)} | {us(worker)} |")
    if "trivial_remote" in r:
        res = r["trivial_remote"]
        lat = res["latency_us"]
        print(f"| REST, unmanaged worker (WebSocket) | {us(lat['p50'])} | {us(lat['p90'])} | "
              f"{us(lat['p99'])} | {us(lat['mean'])} | {us(lat['max'])} | "
              f"{us(res['client_cpu_us_per_call'])} | {us(per_call(res, [d_pid], seq_n))} | "
              f"{us(per_call(res, [p for p in res['cpu_ms'] if p != d_pid], seq_n))} |")
        check(res["first"], {"predictions": [0] * 10, "rows": 10}, problems,
              "trivial REST, unmanaged worker")
    rest_p50 = min(r["trivial_rest"]["latency_us"]["p50"], r["trivial_rest2"]["latency_us"]["p50"])
    floor_p50 = min(r["trivial_floor"]["latency_us"]["p50"],
                    r["trivial_floor2"]["latency_us"]["p50"])
    t_ok = check(r["trivial_rest"]["first"], {"predictions": [0] * 10, "rows": 10}, problems,
                 "trivial REST")
    print(f"  REST - floor at p50 (best round each): {rest_p50 - floor_p50:,.0f} µs; answers: "
          f"{t_ok}; statuses {r['trivial_rest']['statuses']}")

    # (2)
    print()
    print(f"(2) iris LogisticRegression, 10 rows, predictions + probabilities: 1 connection "
          f"({a.iris_calls} calls after {a.warmup}), 8 connections ({a.seconds:g} s after "
          f"{a.warmup_seconds:g} s)")
    print("| server | 1 conn p50 µs | p90 µs | p99 µs | 8 conns req/s | 8 conns p50 µs | "
          "p99 µs | server CPU µs/call (1 conn) | server CPU (8 conns) | client CPU (8 conns) "
          "| answers | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    expected = dict(x["iris10"], rows=10)
    best_peer_p50 = best_peer_rps = None
    for label, one, eight in r["iris"]:
        lat, l8 = one["latency_us"], eight["latency_us"]
        server_pids = [p for p in one["cpu_ms"]]
        cpu1 = per_call(one, server_pids, iris_n)
        window_ms = (a.seconds + a.warmup_seconds) * 1000.0
        cpu8 = sum(eight["cpu_ms"].values()) / window_ms * 100.0
        notes = []
        if one["reconnects"] or eight["reconnects"]:
            notes.append(f"Connection: close on every answer ({one['reconnects']} + "
                         f"{eight['reconnects']} reconnects)")
        if eight.get("broken"):
            notes.append(f"{eight['broken']} connections broken")
        bad = {k: v for k, v in list(one["statuses"].items()) + list(eight["statuses"].items())
               if k != "200"}
        if bad:
            notes.append(f"non-200: {bad}")
        if label.startswith("giskard"):
            dcpu = per_call(one, [d_pid], iris_n)
            notes.append(f"daemon {us(dcpu)} µs/call of it")
            sm = one.get("server_ms")
            if sm:
                notes.append(f"durationMs p50 {sm['duration_p50']:g}, queuedMs p50 "
                             f"{sm['queued_p50']:g}")
        else:
            if best_peer_p50 is None or lat["p50"] < best_peer_p50[1]:
                best_peer_p50 = (label, lat["p50"])
            if best_peer_rps is None or eight["rps"] > best_peer_rps[1]:
                best_peer_rps = (label, eight["rps"])
        ok = check(one["first"], expected, problems, label)
        print(f"| {label} | {us(lat['p50'])} | {us(lat['p90'])} | {us(lat['p99'])} | "
              f"{eight['rps']:,.0f} | {us(l8['p50'])} | {us(l8['p99'])} | {us(cpu1)} | "
              f"{cpu8:.0f} % of a CPU | {eight['client_cpu_share'] * 100:.0f} % "
              f"({us(eight['client_cpu_us_per_call'])} µs/call) | {ok} | {'; '.join(notes)} |")
    fl = r["iris_floor"]
    f_ok = check(fl["first"], expected, problems, "iris floor")
    print(f"| floor (shim protocol to a worker) | {us(fl['latency_us']['p50'])} | "
          f"{us(fl['latency_us']['p90'])} | {us(fl['latency_us']['p99'])} | - | - | - | "
          f"{us(per_call(fl, list(fl['cpu_ms']), iris_n))} (worker) | - | - | {f_ok} | "
          f"reference |")

    print("  notes: uvicorn --workers N hands its workers a listening socket made without "
          "IPPROTO_TCP, so asyncio sets no TCP_NODELAY on their connections and every answer "
          "(head and body in two writes) waits for the client's delayed ACK (~40 ms); the "
          "patched row sets it (model_bench_peers.py). gunicorn's sync workers close the "
          "connection after each answer. The FastAPI route is async def on the raw body (no "
          f"pydantic model, no threadpool hop); uvicorn's HTTP parser and loop: "
          f"{r.get('uvicorn_stack', '?')}.")

    # (3)
    print()
    rr, rf = r["rows_rest"], r["rows_floor"]
    print(f"(3) 10,000 rows (iris, predictions + probabilities), {a.rows_calls} calls after 1 "
          f"warm-up, one connection")
    print("| path | median ms | min ms | max ms | client CPU ms/call | daemon CPU ms/call | "
          "worker CPU ms/call | daemon's durationMs p50 | queuedMs p50 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    n10k = a.rows_calls + 1
    for label, res in (("REST", rr), ("floor", rf)):
        lat = res["latency_us"]
        is_rest = label == "REST"
        dcpu = per_call(res, [d_pid], n10k) if is_rest else None
        wcpu = per_call(res, [p for p in res["cpu_ms"] if p != d_pid], n10k)
        sm = res.get("server_ms") or {}
        print(f"| {label} | {ms(lat['p50'] / 1000)} | {ms(lat['min'] / 1000)} | "
              f"{ms(lat['max'] / 1000)} | {ms(res['client_cpu_us_per_call'] / 1000)} | "
              f"{'-' if dcpu is None else ms(dcpu / 1000)} | {ms(wcpu / 1000)} | "
              f"{sm.get('duration_p50', '-')} | {sm.get('queued_p50', '-')} |")
    exp10k = {"predictions": x["iris10k"]["predictions"],
              "probabilities_head": x["iris10k"]["probabilities_head"], "rows": 10000}
    ok_r = check(rr["first"], exp10k, problems, "10,000 rows REST")
    ok_f = check(rf["first"], exp10k, problems, "10,000 rows floor")
    ratio = rr["latency_us"]["p50"] / rf["latency_us"]["p50"]
    print(f"  REST / floor (medians): {ratio:.3f} (+{(ratio - 1) * 100:.1f} %); answers: REST "
          f"{ok_r}, floor {ok_f}")

    # (4)
    b = r["burst"]
    print()
    print(f"(4) burst: {b['connections']} connections opened, then one 10-row iris call "
          f"written on each at once, to {bench.k1} (1 worker, [models] queue_size = 100)")
    st = {str(k): v for k, v in b["statuses"].items()}
    answered = sum(b["statuses"].values())
    lat = b["latency_us"]
    print(f"  answers: {answered} of {b['connections']}: " + ", ".join(
        f"{k}: {v}" for k, v in sorted(st.items())) + f"; 429 with Retry-After: "
        f"{b['retry_after']} (values {', '.join(b['retry_after_values']) or '-'}); lost "
        f"(connection closed without an answer): {b['lost']}; hung (no answer within "
        f"{b['deadline_s']:g} s): {b['hung']}")
    print(f"  wall time: connect {b['connect_s'] * 1000:,.0f} ms, write all {b['send_s'] * 1000:,.0f}"
          f" ms, last answer {b['wall_s'] * 1000:,.0f} ms after the connects; latency p50 "
          f"{us(lat.get('p50'))} µs, max {us(lat.get('max'))} µs; /healthz after: "
          f"{r['health_after_burst']}; daemon CPU over the burst "
          f"{sum(v for p, v in b['cpu_ms'].items() if p == d_pid):,.0f} ms")

    # Where the time goes
    ip = r["inproc"]
    iris_rest = r["iris"][0][1]
    d_iris = per_call(iris_rest, [d_pid], iris_n)
    w_iris = per_call(iris_rest, [p for p in iris_rest["cpu_ms"] if p != d_pid], iris_n)
    w_iris_floor = per_call(fl, list(fl["cpu_ms"]), iris_n)
    best_t = min((r["trivial_rest"], r["trivial_rest2"]), key=lambda z: z["latency_us"]["p50"])
    best_f = min((r["trivial_floor"], r["trivial_floor2"]), key=lambda z: z["latency_us"]["p50"])
    d_triv = per_call(best_t, [d_pid], seq_n)
    w_triv = per_call(best_t, [p for p in best_t["cpu_ms"] if p != d_pid], seq_n)
    w_triv_floor = per_call(best_f, list(best_f["cpu_ms"]), seq_n)
    d_10k = per_call(rr, [d_pid], n10k)
    w_10k = per_call(rr, [p for p in rr["cpu_ms"] if p != d_pid], n10k)
    w_10k_floor = per_call(rf, list(rf["cpu_ms"]), n10k)
    print()
    print("Where the time goes (µs per call; latencies are p50 on 1 connection, or medians)")
    print("| layer | trivial, 10 rows | iris, 10 rows | iris, 10,000 rows |")
    print("|---|---:|---:|---:|")
    print(f"| iris model alone, in one process (asarray, predict, predict_proba, tolist) | - | "
          f"{us(ip['iris']['model_us'])} | {us(ip['iris10k']['model_us'])} |")
    print(f"| the shim's predict handler alone, in one process | "
          f"{us(ip['trivial']['handler_us'])} | {us(ip['iris']['handler_us'])} | "
          f"{us(ip['iris10k']['handler_us'])} |")
    print(f"| + decoding the request frame and encoding the reply (the shim's whole work) | "
          f"{us(ip['trivial']['shim_us'])} | {us(ip['iris']['shim_us'])} | "
          f"{us(ip['iris10k']['shim_us'])} |")
    print(f"| of which: decoding the request frame (json.loads) / encoding the reply (json.dumps) "
          f"| {us(ip['trivial']['decode_us'])} / {us(ip['trivial']['encode_us'])} | "
          f"{us(ip['iris']['decode_us'])} / {us(ip['iris']['encode_us'])} | "
          f"{us(ip['iris10k']['decode_us'])} / {us(ip['iris10k']['encode_us'])} |")
    print(f"| floor: + Unix socket, the shim's I/O loop, the client | "
          f"{us(floor_p50)} | {us(fl['latency_us']['p50'])} | {us(rf['latency_us']['p50'])} |")
    print(f"| REST: + HTTP and the daemon's relay | {us(rest_p50)} | "
          f"{us(iris_rest['latency_us']['p50'])} | {us(rr['latency_us']['p50'])} |")
    print(f"| REST - floor | {us(rest_p50 - floor_p50)} | "
          f"{us(iris_rest['latency_us']['p50'] - fl['latency_us']['p50'])} | "
          f"{us(rr['latency_us']['p50'] - rf['latency_us']['p50'])} |")
    print(f"| daemon CPU per call (REST) | {us(d_triv)} | {us(d_iris)} | {us(d_10k)} |")
    print(f"| worker CPU per call, REST / floor | {us(w_triv)} / {us(w_triv_floor)} | "
          f"{us(w_iris)} / {us(w_iris_floor)} | {us(w_10k)} / {us(w_10k_floor)} |")
    print(f"| client CPU per call, REST / floor | "
          f"{us(best_t['client_cpu_us_per_call'])} / {us(best_f['client_cpu_us_per_call'])} | "
          f"{us(iris_rest['client_cpu_us_per_call'])} / {us(fl['client_cpu_us_per_call'])} | "
          f"{us(rr['client_cpu_us_per_call'])} / {us(rf['client_cpu_us_per_call'])} |")
    print_unmanaged_costs(r, iris_n, seq_n, d_pid, iris_rest, best_t)

    # Goals
    print()
    print("Goals (README, Performance)")
    print("| measure | goal | measured | verdict |")
    print("|---|---|---|---|")
    g1 = rest_p50 < 250
    print(f"| trivial model, p50 through REST, 1 connection | under 250 µs (the floor is about "
          f"100 µs on 2 cores) | {rest_p50:,.0f} µs (floor {floor_p50:,.0f} µs) | "
          + verdict(g1, f"{rest_p50 - 250:+,.0f} µs against 250 ({rest_p50 / 250 * 100 - 100:+.0f} %)")
          + " |")
    gk1 = r["iris"][0][1]["latency_us"]["p50"]
    gk2 = r["iris"][1][1]["latency_us"]["p50"]
    g2 = gk1 < best_peer_p50[1]
    print(f"| iris, p50, 1 connection | lower than every peer | {gk1:,.0f} µs (2 workers: "
          f"{gk2:,.0f}); best peer {best_peer_p50[0]}: {best_peer_p50[1]:,.0f} µs | "
          + verdict(g2, f"{gk1 - best_peer_p50[1]:+,.0f} µs "
                    f"({(gk1 / best_peer_p50[1] - 1) * 100:+.0f} %) against the best peer") + " |")
    rps2 = r["iris"][1][2]["rps"]
    g3 = rps2 >= 1.5 * best_peer_rps[1]
    print(f"| iris, throughput, 2 workers and 8 connections | at least 1.5x the best peer | "
          f"{rps2:,.0f} req/s; best peer {best_peer_rps[0]}: {best_peer_rps[1]:,.0f} req/s "
          f"({rps2 / best_peer_rps[1]:.2f}x) | "
          + verdict(g3, f"{rps2 / best_peer_rps[1]:.2f}x against 1.5x (needs "
                    f"{1.5 * best_peer_rps[1]:,.0f} req/s)") + " |")
    g4 = ratio <= 1.2
    print(f"| 10,000 rows | the daemon adds at most 20 % to the floor | "
          f"{rr['latency_us']['p50'] / 1000:,.1f} ms vs floor {rf['latency_us']['p50'] / 1000:,.1f}"
          f" ms (+{(ratio - 1) * 100:.1f} %) | " + verdict(g4, f"+{(ratio - 1) * 100:.1f} % "
                                                            f"against +20 %") + " |")
    um = unmanaged_row(r)
    if um is not None:
        p50u = um[1]["latency_us"]["p50"]
        print(f"| unmanaged worker, iris 10 rows p50, 1 connection | under 400 µs | "
              f"{p50u:,.0f} µs (p99 {um[1]['latency_us']['p99']:,.0f}; 8 connections "
              f"{um[2]['rps']:,.0f} req/s; managed 1 worker {gk1:,.0f} µs) | "
              + verdict(p50u < 400, f"{p50u - 400:+,.0f} µs against 400 "
                        f"({p50u / 400 * 100 - 100:+.0f} %)") + " |")
    lost = b["lost"] + b["hung"]
    print(f"| {b['connections']} calls at once, queue 100 | every call answered (200 or 429 with "
          f"Retry-After), none lost or hung | {answered} answered, {lost} lost or hung, "
          f"{int(st.get('429', 0)) - b['retry_after']} 429s "
          f"without Retry-After | "
          + verdict(lost == 0 and answered == b["connections"] and set(st) <= {"200", "429"}
                    and b["retry_after"] == int(st.get("429", 0)), "checked") + " |")
    if problems:
        print()
        print("Problems seen:")
        for p in problems:
            print(f"  - {p}")


