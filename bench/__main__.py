"""`python -m bench [ack|quota|writer|stream|limiter|profile|burst|crash|send|leads ...]`: run the
benchmarks (all of them by default), print one table (figure, value, target, met?) and write it to
bench/README.md with the date, the machine and the command behind each figure.

Each part's latest figures are kept in bench/results.json, so running one part refreshes its
rows and leaves the others' (with their own dates) in the table.

`python -m bench smoke` is CI's check that the benchmarks still run: a small limiter and quota
run, recording nothing, whose exit status is 1 if the quota granted one unit over its limit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
README = HERE / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
PY = ".venv/bin/python"


@dataclass
class Row:
    figure: str
    value: str
    target: str = ""
    met: bool | None = None
    command: str = ""


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _verdict(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "**no**")


# --- the parts -------------------------------------------------------------------------------


def run_limiter(args) -> tuple[list[Row], dict]:
    from bench import limiter_bench as lb

    f = lb.measure()
    cmd = f"`{PY} -m bench limiter` (bench/limiter_bench.py)"
    worst = max(
        f[f"{dead}_{what}_max_ms"] for dead in ("refused", "silent") for what in ("check", "dedup")
    )
    rows = [
        Row(
            "limiter: rate-limit check on Redis, allowed (p50 / p99)",
            f"{f['redis_allowed_p50_ms']:.2f} / {f['redis_allowed_p99_ms']:.2f} ms",
            f"p99 < {lb.TARGET_P99_MS:g} ms",
            f["redis_allowed_p99_ms"] < lb.TARGET_P99_MS,
            cmd,
        ),
        Row(
            "limiter: rate-limit check on Redis, denied (p50 / p99)",
            f"{f['redis_denied_p50_ms']:.2f} / {f['redis_denied_p99_ms']:.2f} ms",
            command=cmd,
        ),
        Row(
            "limiter: de-duplication on Redis (p50 / p99)",
            f"{f['redis_dedup_p50_ms']:.2f} / {f['redis_dedup_p99_ms']:.2f} ms",
            command=cmd,
        ),
        Row(
            "limiter: in-memory check, allowed (p50 / p99)",
            f"{f['memory_allowed_p50_ms']:.3f} / {f['memory_allowed_p99_ms']:.3f} ms",
            command=cmd,
        ),
        Row(
            "limiter: fail-open against a dead or silent Redis, worst case",
            f"{worst:.0f} ms",
            f"< {lb.TARGET_FAIL_OPEN_MS:.0f} ms",
            worst < lb.TARGET_FAIL_OPEN_MS,
            cmd,
        ),
    ]
    return rows, f


def run_writer(args) -> tuple[list[Row], dict]:
    from bench import writer_bench as wb

    f = wb.measure_writer()
    share_target = getattr(wb, "TARGET_FIRST_EMAIL_SHARE", 0.20)
    tail_target = getattr(wb, "TARGET_AFTER_LAST_TOKEN", 0.300)
    cmd = f"`{PY} -m bench writer` (bench/writer_bench.py)"
    stream = float(f["stream_duration_s"])
    rows = [
        Row(
            f"writer: time to first email ({f['tokens_per_second']:g} tokens/s stream)",
            f"{f['first_email_s']:.2f} s of a {stream:.2f} s stream ({f['first_email_share']:.1%})",
            f"<= {share_target:.0%} of the stream",
            f["first_email_share"] <= share_target,
            cmd,
        ),
        Row(
            "writer: overhead after the model's last token (to the summary)",
            f"{f['last_token_to_summary_s'] * 1000:.1f} ms "
            f"(last email: {f['last_token_to_last_email_s'] * 1000:.1f} ms)",
            f"<= {tail_target * 1000:.0f} ms",
            f["last_token_to_summary_s"] <= tail_target,
            cmd,
        ),
    ]
    return rows, f


def run_stream(args) -> tuple[list[Row], dict]:
    from bench import stream_bench as sb

    f = sb.measure()
    cmd = f"`{PY} -m bench stream` (bench/stream_bench.py)"
    rows = [
        Row(
            f"stream: model's first body token -> visible in Slack ({f['tokens_per_second']:g} "
            f"tokens/s, {f['samples']} emails)",
            f"median {f['median_ms']:.0f} / p95 {f['p95_ms']:.0f} / max {f['max_ms']:.0f} ms",
            f"<= {sb.TARGET_VISIBLE_MS:.0f} ms",
            f["meets_target"],
            cmd,
        ),
        Row(
            "stream: any body text -> visible in Slack (appends spaced 1 s for the rate limit)",
            f"median {f['text_median_ms']:.0f} / p95 {f['text_p95_ms']:.0f} / max "
            f"{f['text_max_ms']:.0f} ms",
            command=cmd,
        ),
    ]
    return rows, f


def run_quota(args) -> tuple[list[Row], dict]:
    from bench import quota_bench as qb

    result = qb.measure(per_thread=args.quota_per_thread)
    per = result["per_thread"]
    flag = "" if per == qb.DEFAULT_PER_THREAD else f" --per-thread {per}"
    cmd = f"`{PY} -m bench quota{flag}` (bench/quota_bench.py)"
    scale = (
        f", scaled down from {result['threads']} x {qb.FULL_PER_THREAD:,}"
        if result["scaled_down"]
        else ""
    )
    rows = []
    for case in result["cases"].values():
        name = "PostgreSQL" if case["backend"] == "postgresql" else "SQLite"
        where = "1 workspace" if case["workspaces"] == 1 else f"{case['workspaces']} workspaces"
        granted = case["limit_per_workspace"] * case["workspaces"]
        rows.append(
            Row(
                f"quota: {name}, {where}, {case['threads']} threads x {per:,}{scale}",
                f"{case['per_second']:.0f} reservations/s; {case['reserved']:,} granted of "
                f"{case['attempts']:,} (limit {granted:,}), max used "
                f"{case['max_used']:,}/{case['limit_per_workspace']:,}, "
                f"{case['errors']} errors",
                "zero over-grant (used = rows = limit)",
                case["no_over_grant"],
                cmd,
            )
        )
    return rows, result


APP_LABELS = {
    "coldcopy": "ColdCopy",
    "bare": "bare Bolt",
    "floor": "the floor (bare Bolt + a quota statement, a Redis call, a job statement)",
}


def run_ack(args) -> tuple[list[Row], dict]:
    from bench import ack_bench as ab

    result = ab.measure(requests=args.requests)
    ab.print_report(result)
    flag = "" if args.requests == ab.REQUESTS else f" --requests {args.requests}"
    cmd = f"`{PY} -m bench ack{flag}` (bench/ack_bench.py)"
    phases, ratios = result["phases"], result["ratios"]
    top = max(ab.CONCURRENCY)
    rows = []
    for kind in ab.KINDS:
        label = "modal submission" if kind == "submission" else "`/coldcopy` command"
        for clients in ab.CONCURRENCY:
            for app in ab.APPS[kind]:
                f = phases[f"{app}.{kind}.c{clients}"]
                gated = (app, kind, clients) == ("coldcopy", "submission", top)
                rows.append(
                    Row(
                        f"ack: {label}, {clients} concurrent, {APP_LABELS[app]}",
                        f"p50 {f['p50_ms']:.1f} / p95 {f['p95_ms']:.1f} / p99 "
                        f"{f['p99_ms']:.1f} ms; {f['rps']:.0f} req/s"
                        + (f"; {f['failures']} failed" if f["failures"] else ""),
                        f"p99 <= {ab.TARGET_SUBMISSION_P99_MS:.0f} ms" if gated else "",
                        f["p99_ms"] <= ab.TARGET_SUBMISSION_P99_MS if gated else None,
                        cmd,
                    )
                )
            r = ratios[f"{kind}.c{clients}"]
            gated = kind == "submission" and clients == top
            rows.append(
                Row(
                    f"ack: {label}, {clients} concurrent, ColdCopy / bare",
                    f"p99 {r['p99']:.2f}x; req/s {r['rps']:.2f}x",
                    f"p99 <= {ab.TARGET_RATIO}x" if gated else "",
                    r["p99"] <= ab.TARGET_RATIO if gated else None,
                    cmd,
                )
            )
            if "floor_p99" in r:
                rows.append(
                    Row(
                        f"ack: {label}, {clients} concurrent, the floor / bare; ColdCopy / floor",
                        f"floor p99 {r['floor_p99']:.2f}x bare (+{r['floor_cpu_ms']:.2f} ms "
                        f"server CPU per request); ColdCopy p99 {r['p99_over_floor']:.2f}x the "
                        f"floor (+{r['ours_cpu_ms']:.2f} ms over bare)",
                        command=cmd,
                    )
                )
    lags = result["views_open_lag"]
    levels = " / ".join(f"{c}" for c in ab.CONCURRENCY)
    late = sum(lag["late"] for lag in lags.values())
    unanswered = sum(lag["unanswered"] for lag in lags.values())
    commands = sum(lag["commands"] for lag in lags.values())
    rows.append(
        Row(
            f"ack: `/coldcopy` flood at {levels} concurrent: share of forms opened within "
            f"{ab.TRIGGER_EXPIRY_S:.0f} s / answered busy / opened late",
            "; ".join(
                f"{lags[f'c{c}']['share_in_time']:.0%} / {lags[f'c{c}']['share_busy']:.0%} / "
                f"{lags[f'c{c}']['late']}"
                for c in ab.CONCURRENCY
            )
            + f" ({late:,} late and {unanswered:,} unanswered of {commands:,})",
            "every command opened in time or answered busy; none late",
            late == 0 and unanswered == 0,
            cmd,
        )
    )
    rows.append(
        Row(
            f"ack: `/coldcopy` flood at {levels} concurrent: command -> views.open p99 of the "
            "forms opened",
            " / ".join(f"{lags[f'c{c}']['p99_s']:.2f}" for c in ab.CONCURRENCY) + " s",
            command=cmd,
        )
    )
    rows.append(
        Row(
            f"ack: forms opened per second (views.open calls the app completed, per phase) at "
            f"{levels} concurrent",
            " / ".join(f"{lags[f'c{c}']['opened_per_s']:.0f}" for c in ab.CONCURRENCY) + " /s",
            command=cmd,
        )
    )
    return rows, result


def run_profile(args) -> tuple[list[Row], dict]:
    from bench import profile_ack as pa

    result = pa.measure(args.profile_submissions, show_lines=60)
    cmd = f"`{PY} -m bench.profile_ack` (bench/profile_ack.py)"
    shares = sorted(result["step_shares"].items(), key=lambda kv: -kv[1])
    rows = [
        Row(
            "profile: one submission in-process (no HTTP), PostgreSQL + Redis",
            f"{result['served_ms']:.1f} ms as served (process_before_response="
            f"{result['process_before_response']}), {result['poll_sleep_ms']:.1f} ms of it in "
            f"Bolt's ack polling; all its work in one thread {result['inline_ms']:.1f} ms",
            command=cmd,
        ),
        Row(
            "profile: where a submission's time goes",
            "; ".join(f"{label} {share:.0%}" for label, share in shares[:5]),
            command=cmd,
        ),
        Row(
            "profile: `/coldcopy`, ack + the form + views.open (after the ack, on a Bolt "
            "listener thread)",
            f"{result['command_ms']:.1f} ms: "
            + "; ".join(
                f"{label} {share:.0%}"
                for label, share in sorted(
                    result["command_step_shares"].items(), key=lambda kv: -kv[1]
                )[:4]
            ),
            command=cmd,
        ),
    ]
    return rows, result


def _mib(value: float) -> str:
    return f"{value:.1f}"


def run_burst(args) -> tuple[list[Row], dict]:
    from bench import burst_bench as bb

    result = bb.measure_burst(burst=args.burst)
    bb.print_burst(result)
    flag = "" if args.burst == bb.BURST else f" --burst {args.burst}"
    cmd = f"`{PY} -m bench burst{flag}` (bench/burst_bench.py)"
    rows = []
    for mode, f in result.items():
        where = "embedded (serve, SQLite)" if mode == "embedded" else "scale-out (1 worker)"
        n = f["burst"]
        slowest, first = f["slowest_ratio"], f["p95_first_ratio"]
        rows += [
            Row(
                f"burst: {where}, a lone sequence: first email / complete thread",
                f"{f['lone_first_email_s']:.2f} / {f['lone_complete_s']:.2f} s",
                command=cmd,
            ),
            Row(
                f"burst: {where}, {n} at once: first email p50 / p95 / max",
                f"{f['first_email_p50_s']:.2f} / {f['first_email_p95_s']:.2f} / "
                f"{f['first_email_max_s']:.2f} s; p95 {first:.2f}x the lone one",
                f"p95 <= {bb.TARGET_P95_FIRST_RATIO:g}x the lone one",
                first <= bb.TARGET_P95_FIRST_RATIO,
                cmd,
            ),
            Row(
                f"burst: {where}, {n} at once: complete thread p50 / p95 / max",
                f"{f['complete_p50_s']:.2f} / {f['complete_p95_s']:.2f} / "
                + (f"{f['complete_max_s']:.2f} s" if f["complete_max_s"] else "unfinished")
                + (f"; slowest {slowest:.2f}x the lone one" if slowest else "")
                + f"; {f['completed']} of {n} complete, {f['failed']} failed, "
                f"{f['duplicate_emails']} duplicate emails; load average "
                f"{f['load_average_before']}",
                f"slowest <= {bb.TARGET_SLOWEST_RATIO:g}x the lone one",
                bool(slowest) and slowest <= bb.TARGET_SLOWEST_RATIO,
                cmd,
            ),
            Row(
                f"burst: {where}, {n} at once: submission -> its model request p50 / p95 "
                "(queue + claim); CPU the burst cost",
                f"{f['to_model_p50_s']:.2f} / {f['to_model_p95_s']:.2f} s; "
                + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in f["cpu_s"].items()),
                command=cmd,
            ),
            Row(
                f"burst: {where}, resident memory per in-flight generation",
                f"{f['mib_per_generation']:.2f} MiB (RSS {_mib(f['idle_rss_mib'])} MiB idle, "
                f"{_mib(f['peak_rss_mib'])} MiB at peak, {f['model_streams_at_once']} "
                "model streams at once)",
                f"<= {bb.TARGET_MIB_PER_GENERATION:g} MiB",
                f["mib_per_generation"] <= bb.TARGET_MIB_PER_GENERATION,
                cmd,
            ),
        ]
    return rows, result


def run_crash(args) -> tuple[list[Row], dict]:
    from bench import burst_bench as bb

    result = bb.measure_crash()
    bb.print_crash(result)
    cmd = f"`{PY} -m bench crash` (bench/burst_bench.py)"
    rows = []
    for mode, f in result.items():
        who = "serve (embedded), restarted" if mode == "embedded" else "the worker, a new one"
        took = f["kill_to_complete_s"]
        rows.append(
            Row(
                f"crash: kill -9 of {who} after {f['emails_before_kill']} emails -> the "
                "resumed thread complete",
                (f"{took:.2f} s" if took is not None else "not finished")
                + f" (next email after {f['kill_to_next_email_s'] or 0:.2f} s); "
                f"{len(f['distinct_emails'])} distinct emails, {f['duplicate_emails']} "
                f"duplicates; a lone sequence takes {f['lone_complete_s']:.2f} s; load average "
                f"{f['load_average_before']}",
                f"<= 30 s + {f['remaining_model_s']:.1f} s of model time = {f['target_s']:.1f} s",
                took is not None and took <= f["target_s"] and f["duplicate_emails"] == 0,
                cmd,
            )
        )
    return rows, result


def run_cpu(args) -> tuple[list[Row], dict]:
    from bench import request_cpu as rc

    result = rc.measure()
    cmd = f"`{PY} -m bench.request_cpu` (bench/request_cpu.py)"
    rows = [
        Row(f"cpu: {label.strip()}", f"{cpu:.3f} ms CPU ({wall:.3f} ms wall) per call", command=cmd)
        for label, (cpu, wall) in result.items()
    ]
    return rows, {label: {"cpu_ms": c, "wall_ms": w} for label, (c, w) in result.items()}


def run_rush(args) -> tuple[list[Row], dict]:
    from bench import rush_bench as rb

    result = rb.measure()
    rb.print_report(result)
    cmd = f"`{PY} -m bench rush` (bench/rush_bench.py)"
    load = f"load average {result['load_average_before']:.1f}"
    rows = []
    ratios = rb.ratios(result)
    for mode, phases in result["modes"].items():
        near, far = phases["flood.0ms"], phases["flood.150ms"]
        rows.append(
            Row(
                f"rush: {mode}, {near['commands']} users in {rb.FLOOD_SECONDS:g} s, Slack at "
                "0 / 150 ms: forms opened per second (median of 3); in time / busy / late / "
                "unanswered",
                f"{near['pace_per_s']:.0f} / {far['pace_per_s']:.0f} per s ({ratios[mode]:.0%}); "
                + "; ".join(
                    f"{f['share_in_time']:.0%} / {f['share_busy']:.0%} / {f['late_all']} / "
                    f"{f['failed_all'] + f['unanswered_all']}"
                    for f in (near, far)
                )
                + f"; {load}",
                f"150 ms >= {rb.TARGET_LATENCY_RATIO:.0%} of 0 ms",
                ratios[mode] >= rb.TARGET_LATENCY_RATIO,
                cmd,
            )
        )
    for ms in ("0ms", "150ms"):
        f = result["modes"].get("embedded", {}).get(f"rush.{ms}")
        if f is None:
            continue
        gated = ms == "150ms"
        rows.append(
            Row(
                f"rush: embedded, {f['rate_asked']:.0f} /coldcopy per s for {rb.RUSH_SECONDS:g} s, "
                f"Slack at {ms[:-2]} ms: in time (median of 3) / busy / late / unanswered",
                f"{f['share_in_time']:.0%} / {f['share_busy']:.0%} / {f['late_all']} / "
                f"{f['unanswered_all'] + f['failed_all']}; command -> views.open p99 "
                f"{f['p99_s']:.2f} s; {load}",
                f">= {rb.TARGET_RUSH_SHARE:.0%} in time, none late or unanswered" if gated else "",
                rb.rush_met(f) if gated else None,
                cmd,
            )
        )
    return rows, result


def run_send(args) -> tuple[list[Row], dict]:
    from bench import send_bench as sb

    result = sb.measure()
    cmd = f"`{PY} -m bench send` (bench/send_bench.py)"
    ms = f"{result['latency_s'] * 1000:.0f} ms"
    rows = [
        Row(
            f'send: {name}, "Send to…" on a 7-email sequence -> draft link in the thread '
            f"(fake at {ms} a call)",
            f"{s['seconds']:.2f} s ({s['calls']} calls)",
            f"<= {sb.TARGET_CLICK_TO_LINK_S:g} s",
            s["seconds"] <= sb.TARGET_CLICK_TO_LINK_S,
            cmd,
        )
        for name, s in result["sends"].items()
    ]
    leads = result["leads"]
    rows.append(
        Row(
            f"send: {sb.LEADS:,} leads to Instantly (fake at {ms} a call)",
            f"{leads['leads_added']:,} added in {leads['lead_requests']} requests, "
            f"{leads['seconds']:.2f} s",
            f"<= {sb.TARGET_LEAD_REQUESTS} requests",
            leads["lead_requests"] <= sb.TARGET_LEAD_REQUESTS and leads["leads_added"] == sb.LEADS,
            cmd,
        )
    )
    return rows, result


def run_leads(args) -> tuple[list[Row], dict]:
    from bench import leads_bench as lb

    f = lb.measure(args.leads)
    lb.print_report(f)
    flag = "" if args.leads == lb.LEADS else f" --leads {args.leads}"
    cmd = f"`{PY} -m bench leads{flag}` (bench/leads_bench.py)"
    rows = [
        Row(
            f"leads: {f['leads']:,} leads at model cap {f['model_cap']} ({f['list_slots']} "
            f"slots for the list), one lead {f['lead_s']:.2f} s: wall time vs ideal (waves of "
            "the cap x one lead)",
            f"{f['wall_s']:.1f} s vs {f['ideal_s']:.1f} s ({f['wall_ratio']:.2f}x); vs the "
            f"list's share {f['ideal_share_s']:.1f} s ({f['wall_ratio_share']:.2f}x)",
            f"<= {lb.TARGET_WALL_RATIO}x",
            f["meets_wall"],
            cmd,
        ),
        Row(
            "leads: a lone sequence's first email during the list vs alone",
            f"{f['during_first_email_s']:.2f} s vs {f['lone_first_email_s']:.2f} s "
            f"({f['first_email_ratio']:.2f}x)",
            f"<= {lb.TARGET_FIRST_EMAIL_RATIO}x",
            f["meets_first_email"] and f["sequence_during_list"],
            cmd,
        ),
    ]
    memory = lb.measure_memory()
    lb.print_memory(memory)
    rows.append(
        Row(
            f"leads: a {memory['bytes'] / 2**20:.1f} MiB list of {memory['rows']:,} rows through "
            "the job in a fresh process (serve's database pool, the model at 80 tokens/s) to "
            "its five lead files in the thread: peak RSS above the idle process",
            f"{memory['rise_mib']:.1f} MiB ({memory['written']:,} written in "
            f"{memory['seconds']:.0f} s; {memory['files']} files, {memory['file_mib']:.1f} MiB)",
            f"<= {lb.TARGET_MEMORY_MIB} MiB",
            memory["rise_mib"] <= lb.TARGET_MEMORY_MIB,
            f"`{PY} -m bench.leads_bench --memory` (bench/leads_bench.py)",
        )
    )
    return rows, {**f, "memory": memory}


# CI's run: does each benchmark still work, and does the quota hold under contention?
SMOKE_PARTS = ("limiter", "quota")
SMOKE_PER_THREAD = 20

PARTS: dict[str, Callable] = {
    "limiter": run_limiter,
    "writer": run_writer,
    "stream": run_stream,
    "quota": run_quota,
    "ack": run_ack,
    "profile": run_profile,
    "burst": run_burst,
    "crash": run_crash,
    "cpu": run_cpu,
    "rush": run_rush,
    "send": run_send,
    "leads": run_leads,
}


# --- the table -------------------------------------------------------------------------------


def machine() -> dict:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": model,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def busy_elsewhere(seconds: float = 2.0) -> float:
    """Share of the machine's CPU in use while this process sits idle: other work that the
    figures share the cores with (the 1-minute load average also counts our previous part)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


def code_version() -> str:
    """The commit the figures were measured on, marked when bot/ or storage/ had changes."""
    root = HERE.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "bot", "storage"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "?"
    return (commit or "?") + (" + uncommitted changes" if dirty else "")


def load_results() -> dict:
    if RESULTS.exists():
        return json.loads(RESULTS.read_text())
    return {"parts": {}}


def render(results: dict) -> str:
    rows = [Row(**row) for part in PARTS for row in results["parts"].get(part, {}).get("rows", [])]
    m = results.get("machine", machine())
    lines = [
        "| figure | value | target | met? | command |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.figure} | {row.value} | {row.target} | {_verdict(row.met)} | {row.command} |"
        )
    lines.append("")
    lines.append(
        f"Machine: {m['cores']} cores (os.cpu_count()), {m['memory_gib']} GiB memory "
        f"(/proc/meminfo), {m['cpu'] or 'unknown CPU'}; Python {m['python']}, {m['os']}."
    )
    lines.append("")
    lines.append("| part | run at (UTC) | code | took | CPU busy with other work just before |")
    lines.append("|---|---|---|---|---|")
    for part in PARTS:
        info = results["parts"].get(part)
        if info:
            lines.append(
                f"| {part} | {info['date']} | {info.get('code', '?')} | {info['seconds']:.0f} s "
                f"| {_share(info.get('busy_before'))} |"
            )
    return "\n".join(lines)


def print_table(results: dict, parts=PARTS) -> None:
    rows = [Row(**row) for part in parts for row in results["parts"].get(part, {}).get("rows", [])]
    width = max((len(r.figure) for r in rows), default=10)
    print()
    print(f"{'figure':<{width}}  {'value':<60}  {'target':<32}  met?")
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "NO")
        print(f"{r.figure:<{width}}  {r.value:<60}  {r.target:<32}  {met}")


def write_readme(table: str) -> None:
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{table}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "parts",
        nargs="*",
        metavar="PART",
        help=f"any of {', '.join(PARTS)} (default: all), or smoke alone",
    )
    parser.add_argument("--requests", type=int, default=None, help="ack: requests per phase")
    parser.add_argument("--quota-per-thread", type=int, default=None)
    parser.add_argument("--profile-submissions", type=int, default=None)
    parser.add_argument("--burst", type=int, default=None, help="burst: submissions at once")
    parser.add_argument("--leads", type=int, default=None, help="leads: leads in the list")
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="print the table only; leave bench/README.md and results.json as they are",
    )
    args = parser.parse_args(argv)
    smoke = args.parts == ["smoke"]
    if smoke:
        args.parts = list(SMOKE_PARTS)
        args.quota_per_thread = args.quota_per_thread or SMOKE_PER_THREAD
        args.no_record = True
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    from bench import ack_bench, burst_bench, profile_ack, quota_bench

    args.requests = args.requests or ack_bench.REQUESTS
    args.quota_per_thread = args.quota_per_thread or quota_bench.DEFAULT_PER_THREAD
    args.profile_submissions = args.profile_submissions or profile_ack.SUBMISSIONS
    args.burst = args.burst or burst_bench.BURST
    args.leads = args.leads or 1000
    chosen = args.parts or list(PARTS)
    results = load_results()
    results["machine"] = machine()
    for part in chosen:
        print(f"\n##### {part}", flush=True)
        busy = busy_elsewhere()
        code = code_version()
        started = time.monotonic()
        rows, figures = PARTS[part](args)
        results["parts"][part] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
            "seconds": time.monotonic() - started,
            "busy_before": busy,
            "code": code,
            "rows": [asdict(r) for r in rows],
            "figures": figures,
        }
        if not args.no_record:
            RESULTS.write_text(json.dumps(results, indent=1, default=str) + "\n")
        print(f"{part} took {results['parts'][part]['seconds']:.0f} s", flush=True)
    # The smoke run shows only what it measured, not the recorded figures beside it.
    print_table(results, chosen if smoke else PARTS)
    if not args.no_record:
        write_readme(render(results))
        print(f"\nwritten to {README.relative_to(HERE.parent)}")
    if smoke:
        return smoke_verdict(results["parts"]["quota"]["rows"])
    return 0


def smoke_verdict(quota_rows: list[dict]) -> int:
    """0 when every quota case granted exactly its limit, else 1 (CI fails on an over-grant)."""
    over = [row["figure"] for row in quota_rows if row["met"] is not True]
    for figure in over:
        print(f"smoke: over-grant (or a failed case): {figure}", file=sys.stderr)
    if not quota_rows:
        print("smoke: the quota benchmark reported nothing", file=sys.stderr)
    return 1 if over or not quota_rows else 0


if __name__ == "__main__":
    sys.exit(main())
