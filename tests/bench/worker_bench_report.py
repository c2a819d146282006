"""The printed report of worker_bench.py: the setting (machine, load, binary), one table with a
column per supervisor (giskard-supervisor with its fork server, the same with exec, supervisord),
and the goals of the fork server (issue 10, README "Performance") next to the numbers, each with
its verdict. Numbers only: nothing here fails."""

import os
import statistics
import time

from worker_bench_common import pct_ms, percentile, stats_ms

LABELS = {"giskard-fork": "giskard-supervisor, fork server",
          "giskard-exec": "giskard-supervisor, exec"}


def _mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


def _med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _p(values, p):
    return percentile(values, p)


def _verdict(ok, text):
    if ok is None:
        return "n/a"
    return ("met: " if ok else "MISSED: ") + text


def _table(p, names, labels, R, args):
    """The measurements: a row each, a column per supervisor ("n/a" where one has none)."""
    p("| measurement | " + " | ".join(labels[n] for n in names) + " |")
    p("|---|" + "---:|" * len(names))

    def row(title, fn):
        cells = []
        for n in names:
            try:
                cells.append(fn(R[n]))
            except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError,
                    statistics.StatisticsError):
                cells.append("n/a")
        p(f"| {title} | " + " | ".join(cells) + " |")

    _latency_rows(row, args)
    _burst_rows(row, args)
    _stop_rows(row, args)
    _resource_rows(row, args)


def _latency_rows(row, args):
    """Rows of one worker's start, --many workers' start and a kill -9."""
    many = args.many
    row("start -> running, 1 worker, observed (giskard: POST start, GET every 2 ms; "
        "supervisord: startProcess wait=True)", lambda r: stats_ms(r["start1"][0]))
    row("same runs, by the supervisor's own clock (command sent -> worker.running event / "
        "`success:` log line)", lambda r: stats_ms(r["start1"][1]))
    row("start -> running, 1 worker, unobserved (own clock; nobody polling)",
        lambda r: stats_ms(r["start1q"][1]))
    row("of which: command -> process launched (worker.starting event / `spawned:` line), "
        "unobserved", lambda r: stats_ms(r["start1q"][2]))
    row("giskard: worker.starting -> worker.running inside the 1-worker starts (fork or "
        "interpreter start, set-up, dial, hello/welcome)", lambda r: stats_ms(r["launch1"]))
    row(f"start -> all running, {many} workers, observed (kernel's runningWorkers every 10 ms "
        "/ startProcessGroup wait=True)", lambda r: stats_ms(r["startN"][0]))
    row(f"start -> all running, {many} workers, unobserved (own clock: last worker)",
        lambda r: stats_ms(r["startNq"][1]))
    row(f"of which: command -> all {many} launched, unobserved",
        lambda r: stats_ms(r["startNq"][2]))
    row("kill -9 -> replacement running, observed (poll every 2 ms)",
        lambda r: stats_ms(r["crash"][0]))
    row("kill -9 -> replacement running, unobserved (own clock)",
        lambda r: stats_ms(r["crashq"][1]))
    row("of which: kill -9 -> exit noticed (worker.exited event / `exited:` line), unobserved",
        lambda r: stats_ms(r["crashq"][2]))
    row("of which: kill -9 -> replacement launched (worker.starting / `spawned:`), unobserved",
        lambda r: stats_ms(r["crashq"][3]))


def _burst_rows(row, args):
    """Rows of the --idle workers' start."""
    n = args.idle
    row(f"start {n} workers -> all running, observed (s; giskard: POST /kernels with "
        f"workers={n}, then the kernel's runningWorkers every 20 ms; supervisord: "
        "startProcessGroup wait=True)", lambda r: f"{r['idle']['start_all']:.3f}")
    row(f"start {n} workers -> all running, own clock (s; last worker.running event / "
        "`success:` line)", lambda r: f"{r['idle']['start_all_own']:.3f}")
    row("launch -> running per worker during that start (own clock, median (p90) ms)",
        lambda r: stats_ms(r["idle"]["launch_to_running"]))
    row("during that start: last worker launched / first worker running (s after the command)",
        lambda r: f"{r['idle']['last_launch']:.2f} / {r['idle']['first_running']:.2f}")
    row(f"during that start: a request every {args.sample_interval * 1000:.0f} ms on one "
        "kept-open connection from its own process (GET /api/v1/kernels / XML-RPC getState): "
        "p50 / p99 / max ms (n)",
        lambda r: "{:.1f} / {:.1f} / {:.1f} ({})".format(
            r["idle"]["sampled"]["p50"] * 1000, r["idle"]["sampled"]["p99"] * 1000,
            r["idle"]["sampled"]["max"] * 1000, r["idle"]["sampled"]["n"])
        + (f", {r['idle']['sampled']['errors']} errors" if r["idle"]["sampled"]["errors"]
           else ""))
    row("during that start: slowest health request, every 100 ms on a new connection (ms; "
        "GET /healthz / XML-RPC getState)", lambda r: f"{r['idle']['ping_worst'] * 1000:.0f}")
    row("during that start: the supervisor's CPU / its wait for a CPU while runnable "
        "(run queue, /proc/PID/task/*/schedstat) / the env's template's CPU (s)",
        lambda r: f"{r['idle']['start_cpu']:.2f} / {r['idle']['start_runq']:.2f} / " + (
            f"{r['idle']['start_template_cpu']:.2f}"
            if r["idle"].get("start_template_cpu") is not None else "-"))
    row(f"each of the {n} workers once running: CPU ms / minor page faults, median (p90) "
        "(a forked worker counts from its fork)",
        lambda r: f"{statistics.median(r['idle']['start_fleet']['cpu']) * 1000:.1f} "
                  f"({_p(r['idle']['start_fleet']['cpu'], 90) * 1000:.1f}) / "
                  f"{statistics.median(r['idle']['start_fleet']['minflt']):.0f} "
                  f"({_p(r['idle']['start_fleet']['minflt'], 90):.0f})")


def _stop_rows(row, args):
    """Rows of the --idle workers' stop."""
    n = args.idle
    row(f"stop {n} workers -> all gone, observed (s; POST stop, then GET /workers?kernel every "
        "20 ms until empty / stopProcessGroup wait=True)", lambda r: f"{r['idle']['stop_all']:.3f}")
    row(f"stop {n} workers -> every process exited (s; /proc read every 5 ms)",
        lambda r: f"{r['idle']['stop_exited']:.3f}")
    row(f"stop {n} workers, own clock (s; last worker.stopped event / `stopped:` line)",
        lambda r: f"{r['idle']['stop_own']:.3f}")
    row("of which: command -> last worker signalled (last worker.stopping event; s)",
        lambda r: f"{r['idle']['stop_signalled']:.3f}")
    row("supervisor CPU during the stop (s)", lambda r: f"{r['idle']['stop_cpu']:.2f}")


def _resource_rows(row, args):
    """Rows of memory and idle CPU with --idle workers, and of the fork server itself."""
    n, many = args.idle, args.many
    row("supervisor RSS, 0 workers (MiB)", lambda r: _mib(r["idle"]["rss0"]))
    row(f"supervisor RSS, {n} idle workers (MiB)", lambda r: _mib(r["idle"]["rss"]))
    row(f"supervisor PSS, {n} idle workers (MiB)", lambda r: _mib(r["idle"]["pss"]))
    row(f"of the RSS: anonymous (its own memory) / file-backed (binary, shared libraries), "
        f"0 and {n} workers (MiB)",
        lambda r: f"{_mib(r['idle']['split0'][0])} / {_mib(r['idle']['split0'][1])}; "
                  f"{_mib(r['idle']['split'][0])} / {_mib(r['idle']['split'][1])}")
    row(f"the env's template, {n} workers forked from it: RSS / PSS (MiB; PSS divides the "
        "pages it shares with its workers)",
        lambda r: f"{_mib(r['idle']['template_rss'])} / {_mib(r['idle']['template_pss'])}")
    row(f"supervisor CPU, {n} idle workers, over {args.window:.0f} s (ms; % of one core)",
        lambda r: f"{r['idle']['cpu_s'] * 1000:.0f} "
                  f"({100 * r['idle']['cpu_s'] / r['idle']['elapsed']:.2f} %)")
    row(f"all {n} workers' CPU over the same window (ms)",
        lambda r: f"{r['idle']['workers_cpu_s'] * 1000:.0f}")
    row("timed workers that were forked from the template / timed (1-worker starts, "
        f"{many}-worker starts, crashes, {n} idle)",
        lambda r: ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in r["tally"].items()) or "n/a")
    row("the template's own fork (its log: request read -> worker's pid sent), median (p90) ms",
        lambda r: stats_ms(r["fork_ms"]))


# The goals' values (None when missing) and their formats.

def _get(r, fn):
    try:
        return fn(r) if r else None
    except (KeyError, TypeError, IndexError):
        return None


def _start1(r):
    return _med(r["start1"][0])


def _crash(r):
    return _med(r["crash"][0])


def _all_up(r):
    return r["idle"]["start_all"]


def _stop(r):
    return r["idle"]["stop_all"]


def _rss(r):
    return r["idle"]["rss"]


def _p99(r):
    return r["idle"]["sampled"]["p99"]


def _ms(v):
    return "n/a" if v is None else f"{v * 1000:.1f} ms"


def _s(v):
    return "n/a" if v is None else f"{v:.3f} s"


def _mib_text(v):
    return "n/a" if v is None else f"{v / 1024:.1f} MiB"


def _under(fn, limit, fmt):
    """The verdict of "fn(r) under limit"."""
    def judge(r):
        value = _get(r, fn)
        if value is None:
            return "n/a"
        return _verdict(value < limit, f"{fmt(value)} against {fmt(limit)}")
    return judge


def _faster(sd):
    """The verdict of "all up under 1 s and at least 2x faster than supervisord"."""
    sd_up = _get(sd, _all_up)

    def judge(r):
        t = _get(r, _all_up)
        if t is None:
            return "n/a"
        ratio = sd_up / t if sd_up else None
        ok = t < 1.0 and (ratio is not None and ratio >= 2.0)
        return _verdict(ok, f"{t:.3f} s against 1 s; " + (
            f"{ratio:.2f}x supervisord's {sd_up:.3f} s (needs 2x)" if ratio else "no peer"))
    return judge


def _half_rss(sd):
    """The verdict of "RSS at most half of supervisord's"."""
    sd_rss = _get(sd, _rss)

    def judge(r):
        v = _get(r, _rss)
        if v is None or not sd_rss:
            return "n/a"
        return _verdict(v <= sd_rss / 2, f"{v / sd_rss:.2f} of supervisord's (needs at most "
                                          f"0.50, i.e. {sd_rss / 2048:.1f} MiB)")
    return judge


def _goal_list(args, sd):
    """(goal, value, shown value, verdict) of each goal of issue 10."""
    n = args.idle

    def show(fn, fmt):
        return lambda r: fmt(_get(r, fn))
    return [
        ("start -> running, 1 worker, observed (median)", "under 15 ms",
         show(_start1, _ms), _under(_start1, 0.015, _ms)),
        (f"{n} workers -> all running (observed)", "under 1 s, and at least 2x faster than "
         f"supervisord's {n} programs", show(_all_up, _s), _faster(sd)),
        ("kill -9 -> replacement running, observed (median)", "under 20 ms",
         show(_crash, _ms), _under(_crash, 0.020, _ms)),
        (f"stop {n} workers -> all gone (observed)", "under 0.5 s",
         show(_stop, _s), _under(_stop, 0.5, _s)),
        (f"supervisor RSS with {n} workers", "at most 1/2 of supervisord's",
         show(_rss, _mib_text), _half_rss(sd)),
        (f"a REST request during a {n}-worker start (GET /api/v1/kernels every "
         f"{args.sample_interval * 1000:.0f} ms)", "p99 under 50 ms",
         show(_p99, _ms), _under(_p99, 0.050, _ms)),
    ]


def _goals(p, R, args, sd_name):
    """The goals table: a verdict for each giskard mode, supervisord's value beside."""
    g, x = R.get("giskard-fork"), R.get("giskard-exec")
    sd = R.get(sd_name) if sd_name else None
    p(f"Goals of the fork server (issue 10): medians of {args.runs} runs for one worker and "
      f"kill -9, one measurement for the {args.idle}-worker rows")
    p("")
    p("| goal | value | fork server | verdict | exec | verdict (exec) | supervisord |")
    p("|---|---|---:|---|---:|---|---:|")
    for title, value, show, judge in _goal_list(args, sd):
        p(f"| {title} | {value} | {show(g)} | {judge(g) if g else 'n/a'} | {show(x)} | "
          f"{judge(x) if x else 'n/a'} | {show(sd)} |")


def report(sups, R, args, floors, setting, machine):
    """The whole report, Markdown: the setting, the table, the goals, notes, problems."""
    names = [s.NAME for s in sups]
    sd_name = next((s.NAME for s in sups if s.NAME == "supervisord"), None)
    labels = dict(LABELS)
    if sd_name:
        labels[sd_name] = "supervisord " + next(s.version for s in sups if s.NAME == sd_name)
    lines = []
    p = lines.append
    p(f"## Worker supervision: giskard-supervisor (fork server, exec) vs supervisord "
      f"({time.strftime('%Y-%m-%d %H:%M')})")
    p("")
    _setting(p, args, setting, machine)
    p(f"- {args.runs} runs of each latency after an untimed warm-up, interleaved (fork, exec, "
      "supervisord); cells are median (p90) in ms unless said")
    p("")
    _table(p, names, labels, R, args)
    p("")
    _goals(p, R, args, sd_name)
    p("")
    _notes(p, args, floors)
    _problems(p, sups)
    return "\n".join(lines) + "\n"


def _setting(p, args, setting, machine):
    """Machine, binaries, load and others' CPU, as a list."""
    for m in machine:
        p(f"- {m}")
    la0, la1 = setting["load_start"], os.getloadavg()
    p(f"- load average (1/5/15 min) at the start: {' / '.join(f'{v:.2f}' for v in la0)}; "
      f"at the end: {' / '.join(f'{v:.2f}' for v in la1)}")
    if setting.get("waited") is not None:
        la, ok, secs = setting["waited"]
        p(f"- waited {secs:.0f} s for the 1-minute load average to fall under "
          f"{args.wait_load:g}: {'reached' if ok else 'NOT reached, measured anyway'} ({la:.2f})")
    if setting.get("page_fault_us") is not None:
        p(f"- one page fault (first write to a page of a fresh mapping) costs "
          f"{setting['page_fault_us']:.1f} µs on this machine; every interpreter start and "
          "every copy-on-write page of a forked worker pays it")
    p("- compilers running at the start: " + (", ".join(setting["compilers"]) or "none")
      + "; at the end: " + (", ".join(setting.get("compilers_end") or []) or "none"))
    p("- 1-minute load at the start of each phase: "
      + ", ".join(f"{t} {v:.2f}" for t, v in setting.get("phase_load", [])))
    if setting.get("others"):
        p("- CPU used by processes outside the benchmark (others' builds and tests) in each "
          "phase, of the machine's " + f"{os.cpu_count()} CPUs: " + "; ".join(
              f"{name} {cpu:.1f} s in {wall:.0f} s ({100 * cpu / wall / os.cpu_count():.0f} %"
              + (": " + ", ".join(top) if top and cpu >= 1 else "") + ")"
              for name, wall, cpu, top in setting["others"]))
    if setting.get("quiet_waits"):
        p(f"- before each phase, waited for 5 s in which others used under "
          f"{100 * args.quiet_share:.0f} % of the CPUs (at most {args.quiet_seconds:.0f} s): "
          + "; ".join(f"{name} {secs:.0f} s" + ("" if share is None or share < args.quiet_share
                                               else f" (NOT reached: {100 * share:.0f} %)")
                      for name, secs, share in setting["quiet_waits"]))


def _notes(p, args, floors):
    """The floors without a supervisor, and how the programs and the method differ."""
    for label, values in floors:
        p(f"- floor without any supervisor: {label}: {stats_ms(values)} ms "
          f"(p99 {pct_ms(values, 99)})")
    p("- fork server: before each timed start the env's template is made ready (an env's first "
      "worker is exec'd while its template starts, and the daemon logs `template.ready` only "
      "when a launch finds it ready: the benchmark starts and stops a 1-worker kernel until "
      "that line is logged); the \"forked / timed\" row checks each timed worker's command line "
      "(a forked worker keeps its template's `serve-template`)")
    p("- the programs differ: giskard runs its worker shim, which must be running the shim "
      "(forked from the env's template, or a new interpreter that imports it) and register "
      "over the worker socket with its token before it is \"running\"; supervisord runs the same "
      "venv's python idle (`-c \"import signal; signal.pause()\"`, startsecs=0), \"running\" "
      "once its main loop turns after the spawn; its main loop sleeps up to 1 s in poll() when "
      "nothing wakes it, which the unobserved rows show")
    p("- the request sampler runs in its own process at nice -10 (as root), so that its own "
      "wait for a CPU among the starting workers is not counted as the server's; supervisord's "
      "sampled request is getState, its lightest")
    p(f"- giskard config: [workers] start_seconds = {args.start_seconds}, "
      f"registration_timeout_seconds = {args.registration_timeout}, fork_server = true (fork) "
      "or false (exec), other [workers] keys default (heartbeat_seconds = 5, "
      "template_idle_seconds = 30); supervisord: autorestart=true, startsecs=0, "
      "redirect_stderr, logs to files")


def _problems(p, sups):
    """Daemon misbehaviour seen during the run (never a failure of the benchmark)."""
    problems = list(dict.fromkeys(f"{s.NAME}: {m}" for s in sups for m in s.problems))
    if problems:
        p("")
        p("Problems seen:")
        for m in problems:
            p(f"- {m}")
