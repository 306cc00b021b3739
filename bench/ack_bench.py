"""Benchmark of the ack path: signed `/coldcopy` commands and brief submissions sent to a real
`coldcopy serve` (gunicorn, one gthread worker process per core; PostgreSQL, Redis, the job
queue, the local FakeSlack), and the same load sent to a bare Bolt app served the same way (the same
worker processes and threads) whose listeners only ack (bench/bare_bolt.py), and for
submissions to a "floor": that bare app plus the round trips the flow must make before it
answers (a quota statement, a Redis call, a job statement, each the cheapest of its kind).

    python -m bench.ack_bench [--requests 2000] [--concurrency 1 16 64] [--workers 2] [--threads 16]

The `/coldcopy` phases are a flood: clients send the next command as soon as the ack arrives,
faster than forms can be opened. Each command ends one way: its form reached Slack within the
trigger's 3 s, or later (a form the user never sees), or the user was told ColdCopy is busy
(in the ack, or via response_url).

Every submission has its own view id and comes from one of many users over many workspaces,
with the quota and the rate limits set so high that every one is accepted: each is a full
reservation + rate-limit check + the job deferred to the PostgreSQL queue, then the answer
(serve posts nothing to Slack for a submission: the worker that starts it does). No worker
runs, so only the request path is measured.
A fresh PostgreSQL database is created for the run and dropped after; the bench Redis database
is flushed before and after.

The load generator runs in this process: one thread per concurrent client, each holding one
keep-alive http.client connection, sending pre-signed requests back to back (closed loop).
It shares the machine's cores with the server, PostgreSQL, Redis and the fake.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from bench.fake_slack_process import FakeSlackProcess
from bench.services import ROOT, flushed_redis, fresh_postgres, percentile
from bot.slack.modal import brief_view
from testkit.briefs import SAMPLE_BRIEF as BRIEF
from testkit.harness import SignedSlackClient
from testkit.processes import Server, cpu_seconds, served

SIGNING_SECRET = "bench-signing-secret"
WEB_THREADS = 16  # per worker process: ColdCopy's default
WEB_WORKERS = os.cpu_count() or 1  # ColdCopy's default in the scale-out mode
BUSY_MARKER = b"ColdCopy is busy"
CONCURRENCY = (1, 16, 64)
REQUESTS = 2_000
WARMUP = 100
WORKSPACES = 200
USERS_PER_WORKSPACE = 25
KINDS = ("submission", "slash")
# The floor (bare Bolt + the flow's round trips, bench/bare_bolt.py --floor) for submissions.
APPS = {"submission": ("bare", "floor", "coldcopy"), "slash": ("bare", "coldcopy")}
TARGET_SUBMISSION_P99_MS = 100.0
TARGET_RATIO = 1.5
TRIGGER_EXPIRY_S = 3.0  # Slack's trigger_id is good for 3 seconds: views.open must beat it


Request = tuple[bytes, dict[str, str], str]  # body, headers, trigger id


class SignedRequests(SignedSlackClient):
    """The harness's signed Slack payloads, built to be sent later."""

    def slash_request(self, team: str, user: str) -> Request:
        self.team_id = team
        fields = self.slash_fields("", user=user, channel="C1")
        return *self.signed(urlencode(fields)), fields["trigger_id"]

    def submission_request(self, team: str, user: str, view: dict, view_id: str) -> Request:
        self.team_id = team
        payload = self.submission(view, BRIEF, user=user, view_id=view_id)
        return *self.signed(self.interaction_body(payload)), ""


def build_requests(kind: str, count: int, run: str, builder: SignedRequests) -> list[Request]:
    """`count` requests spread round-robin over the workspaces and their users."""
    view = brief_view(None, "C1")
    requests: list[Request] = []
    for i in range(count):
        team = f"T{run}{i % WORKSPACES:03d}"
        user = f"U{(i // WORKSPACES) % USERS_PER_WORKSPACE:03d}"
        if kind == "slash":
            requests.append(builder.slash_request(team, user))
        else:
            requests.append(builder.submission_request(team, user, view, f"V{run}{i:07d}"))
    return requests


@dataclass
class Phase:
    app: str
    kind: str
    concurrency: int
    latencies_ms: list[float]
    sent_at: list[float]  # time.monotonic() when each request was sent
    failures: int
    wall_s: float
    server_cpu_s: float
    client_cpu_s: float

    def figures(self) -> dict[str, float]:
        n = len(self.latencies_ms)
        return {
            "requests": n,
            "failures": self.failures,
            "p50_ms": percentile(self.latencies_ms, 50),
            "p95_ms": percentile(self.latencies_ms, 95),
            "p99_ms": percentile(self.latencies_ms, 99),
            "max_ms": max(self.latencies_ms),
            "rps": n / self.wall_s,
            "server_cpu_ms_per_request": 1000 * self.server_cpu_s / n,
            "client_cpu_share": self.client_cpu_s / self.wall_s / (os.cpu_count() or 1),
        }


def drive(
    port: int,
    requests: list[Request],
    concurrency: int,
    accepted: Callable[[int, bytes], bool],
    server_pid: int,
    busy: list[bool] | None = None,
) -> tuple[list[float], list[float], int, float, float, float]:
    """Send every request, `concurrency` at a time, each client on its own keep-alive
    connection; returns latencies (ms), send times, failures, wall, server and client CPU.
    `busy`, when given, is filled with whether each answer said ColdCopy is busy."""
    n = len(requests)
    latencies = [0.0] * n
    sent_at = [0.0] * n
    failed = [False] * n
    next_index = itertools.count()  # next() on a count is atomic under the GIL
    ready = threading.Barrier(concurrency + 1)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ready.wait()
        while (i := next(next_index)) < n:
            body, headers, _ = requests[i]
            sent_at[i] = time.monotonic()
            started = time.perf_counter()
            try:
                conn.request("POST", "/slack/events", body, headers)
                response = conn.getresponse()
                data = response.read()
                failed[i] = not accepted(response.status, data)
                if busy is not None:
                    busy[i] = BUSY_MARKER in data
                if response.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            except (OSError, http.client.HTTPException):
                failed[i] = True
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            latencies[i] = (time.perf_counter() - started) * 1000
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    ready.wait()
    server_cpu = cpu_seconds(server_pid)
    client_cpu = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return (
        latencies,
        sent_at,
        sum(failed),
        wall,
        cpu_seconds(server_pid) - server_cpu,
        time.process_time() - client_cpu,
    )


def coldcopy_answers_in_request_thread() -> bool:
    """Whether ColdCopy's Bolt app is built with `process_before_response` (acks from the
    request thread, slow work in lazy listeners); the bare baseline is built the same way."""
    from bot.core.settings import Settings
    from bot.runtime.wiring import build_services
    from bot.slack.app import build_app

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            slack_bot_token="xoxb-bench",
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url="http://127.0.0.1:9/api/",
            anthropic_api_key="sk-ant-bench",
            database_url=f"sqlite:///{tmp}/unused.db",  # never connected to
        )
        services = build_services(settings)
        try:
            return build_app(services).process_before_response
        finally:
            services.close()


def _accepts_submission(status: int, body: bytes) -> bool:
    # ColdCopy's answer for an accepted brief replaces the form with the "writing" view.
    return status == 200 and b"Writing your sequence" in body


def _plain_ack(status: int, body: bytes) -> bool:
    return status == 200


def measure(
    *,
    requests: int = REQUESTS,
    concurrency: tuple[int, ...] = CONCURRENCY,
    web_threads: int = WEB_THREADS,
    web_workers: int = WEB_WORKERS,
    verbose: bool = True,
) -> dict:
    """Both apps, both request kinds, each concurrency level; figures per phase and ratios."""
    say = print if verbose else (lambda *a, **k: None)
    run = uuid.uuid4().hex[:4]
    builder = SignedRequests("http://unused", SIGNING_SECRET)
    phases: list[Phase] = []
    lags: dict[str, dict[str, float]] = {}
    in_request_thread = coldcopy_answers_in_request_thread()
    say(f"ColdCopy's Bolt app: process_before_response={in_request_thread} (the baseline too)")
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres("coldcopy_bench_ack"))
        redis_url = stack.enter_context(flushed_redis())
        slack = stack.enter_context(FakeSlackProcess())
        builder.response_base = slack.response_base
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="coldcopy-ack-")))
        base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
        }
        coldcopy_env = base_env | {
            "ANTHROPIC_API_KEY": "sk-ant-bench",
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",  # never called: no worker runs
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "COLDCOPY_FREE_QUOTA": "1000000000",
            "COLDCOPY_USER_RATE": "100000/minute",
            "COLDCOPY_WORKSPACE_RATE": "100000/minute",
            "COLDCOPY_WEB_THREADS": str(web_threads),
            "COLDCOPY_WEB_WORKERS": str(web_workers),
            "COLDCOPY_STUCK_AFTER": "86400",  # the sweeper must not re-dispatch during the run
        }
        bare_args = [
            "bench.bare_bolt",
            "--threads",
            str(web_threads),
            "--workers",
            str(web_workers),
        ] + (["--process-before-response"] if in_request_thread else [])
        floor_env = base_env | {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
        servers = {
            "bare": stack.enter_context(served("bare", bare_args, base_env, logs)),
            "floor": stack.enter_context(served("floor", [*bare_args, "--floor"], floor_env, logs)),
            "coldcopy": stack.enter_context(
                served("coldcopy", ["bot.runtime.cli", "serve"], coldcopy_env, logs)
            ),
        }
        # Warm up both: connection pools filled, Lua scripts loaded, code paths imported.
        for server in servers.values():
            for kind in KINDS:
                batch = build_requests(kind, WARMUP, run + "w", builder)
                busy = [False] * len(batch)
                drive(server.port, batch, 16, _plain_ack, server.proc.pid, busy)
                if (server.name, kind) == ("coldcopy", "slash"):
                    _settle(slack, server, batch, busy)

        for kind in KINDS:
            for clients in concurrency:
                for app in APPS[kind]:
                    server = servers[app]
                    slack.reset()
                    batch = build_requests(kind, requests, f"{run}{app[0]}{clients}", builder)
                    check = (
                        _accepts_submission
                        if (app, kind) == ("coldcopy", "submission")
                        else _plain_ack
                    )
                    busy = [False] * len(batch)
                    latencies, sent_at, failures, wall, server_cpu, client_cpu = drive(
                        server.port, batch, clients, check, server.proc.pid, busy
                    )
                    phase = Phase(
                        app,
                        kind,
                        clients,
                        latencies,
                        sent_at,
                        failures,
                        wall,
                        server_cpu,
                        client_cpu,
                    )
                    phases.append(phase)
                    f = phase.figures()
                    say(
                        f"{app:<9}{kind:<11} c={clients:<3} p50 {f['p50_ms']:7.1f} ms  "
                        f"p95 {f['p95_ms']:7.1f}  p99 {f['p99_ms']:7.1f}  {f['rps']:7.0f} req/s  "
                        f"server {f['server_cpu_ms_per_request']:.2f} ms CPU/req  "
                        f"client {f['client_cpu_share']:.0%} of the CPUs  failures {failures}"
                    )
                    if (app, kind) == ("coldcopy", "slash"):
                        lag = _flood_outcomes(slack, server, batch, sent_at, busy)
                        lags[f"c{clients}"] = lag
                        say(
                            f"{'':<20} flood of {lag['commands']}: {lag['in_time']} forms "
                            f"opened within {TRIGGER_EXPIRY_S:.0f} s, {lag['late']} later (the "
                            f"trigger would have expired), {lag['busy_ack']} answered busy in "
                            f"the ack, {lag['busy_later']} busy via response_url, "
                            f"{lag['unanswered']} unanswered; command -> views.open p50 "
                            f"{lag['p50_s']:.2f} s, p99 {lag['p99_s']:.2f} s, max "
                            f"{lag['max_s']:.2f} s; {lag['opened_per_s']:.0f} forms opened/s"
                        )
                    time.sleep(0.5)
        generations = _count_generations(database_url)
        violations = slack.violations()
    result = _summarise(phases, lags, generations, violations, requests, web_threads)
    result["web_workers"] = web_workers
    result["process_before_response"] = in_request_thread
    return result


def _command_number(trigger: str) -> str:
    return trigger.removeprefix("trigger-")  # the harness numbers trigger and response_url alike


def _settle(
    slack: FakeSlackProcess,
    server: Server,
    batch: list[Request],
    busy: list[bool],
    timeout: float = 60,
) -> tuple[dict[str, float], dict[str, str]]:
    """Wait until every command of `batch` has its answer: a form opened, or "busy" in its
    ack or via its response_url; at most `timeout` seconds, after which the commands still
    without one are left to be counted as unanswered. Returns the fake's opened and responded
    records."""
    started = time.monotonic()
    while True:
        opened, responded = slack.opened(), slack.responded()
        answered_later = {path.rsplit("/", 1)[1] for path in responded}
        pending = [
            trigger
            for (_, _, trigger), in_ack in zip(batch, busy, strict=True)
            if not in_ack
            and trigger not in opened
            and _command_number(trigger) not in answered_later
        ]
        if not pending:
            return opened, responded
        if time.monotonic() - started > timeout:
            print(f"{len(pending)} of {len(batch)} commands got no answer in {timeout:.0f} s")
            errors = [
                line for line in server.log_path.read_text().splitlines() if '"error"' in line
            ]
            print("\n".join(errors[-5:]))
            return opened, responded
        time.sleep(0.2)


def _flood_outcomes(
    slack: FakeSlackProcess,
    server: Server,
    batch: list[Request],
    sent_at: list[float],
    busy: list[bool],
) -> dict[str, float]:
    """How each command of a `/coldcopy` flood ended, and how late the forms that opened were."""
    opened, responded = _settle(slack, server, batch, busy)
    busy_later = {
        path.rsplit("/", 1)[1]
        for path, text in responded.items()
        if text and BUSY_MARKER.decode() in text
    }
    lags = [
        opened[trigger] - sent
        for (_, _, trigger), sent in zip(batch, sent_at, strict=True)
        if trigger in opened
    ]
    late = sum(1 for lag in lags if lag > TRIGGER_EXPIRY_S)
    busy_ack = sum(busy)
    busy_via_url = sum(1 for _, _, trigger in batch if _command_number(trigger) in busy_later)
    span = (max(opened.values()) - min(sent_at)) if opened else 1.0
    n = len(batch)
    return {
        "commands": n,
        "opened": len(lags),
        "in_time": len(lags) - late,
        "late": late,
        "busy_ack": busy_ack,
        "busy_later": busy_via_url,
        "unanswered": n - len(lags) - busy_ack - busy_via_url,
        "share_in_time": (len(lags) - late) / n,
        "share_busy": (busy_ack + busy_via_url) / n,
        # How fast the app got forms open over the phase: its capacity when acks outrun it.
        "opened_per_s": len(opened) / span,
        "p50_s": percentile(lags, 50) if lags else 0.0,
        "p99_s": percentile(lags, 99) if lags else 0.0,
        "max_s": max(lags) if lags else 0.0,
    }


def _count_generations(database_url: str) -> int:
    from sqlalchemy import func, select

    from storage.db import make_engine, reading
    from storage.models import Generation

    engine = make_engine(database_url, pool_size=1)
    try:
        with reading(engine) as conn:
            return conn.execute(select(func.count()).select_from(Generation.__table__)).scalar_one()
    finally:
        engine.dispose()


def _summarise(
    phases: list[Phase],
    lags: dict,
    generations: int,
    violations: int,
    requests: int,
    web_threads: int,
) -> dict:
    by_key = {f"{p.app}.{p.kind}.c{p.concurrency}": p.figures() for p in phases}
    ratios = {}
    for p in phases:
        if p.app != "coldcopy":
            continue
        ours = by_key[f"coldcopy.{p.kind}.c{p.concurrency}"]
        bare = by_key[f"bare.{p.kind}.c{p.concurrency}"]
        ratios[f"{p.kind}.c{p.concurrency}"] = {
            "p99": ours["p99_ms"] / bare["p99_ms"],
            "rps": ours["rps"] / bare["rps"],
        }
        floor = by_key.get(f"floor.{p.kind}.c{p.concurrency}")
        if floor is not None:
            ratios[f"{p.kind}.c{p.concurrency}"] |= {
                "floor_p99": floor["p99_ms"] / bare["p99_ms"],
                "p99_over_floor": ours["p99_ms"] / floor["p99_ms"],
                "floor_cpu_ms": floor["server_cpu_ms_per_request"]
                - bare["server_cpu_ms_per_request"],
                "ours_cpu_ms": ours["server_cpu_ms_per_request"]
                - bare["server_cpu_ms_per_request"],
            }
    submissions_sent = sum(
        len(p.latencies_ms) for p in phases if (p.app, p.kind) == ("coldcopy", "submission")
    )
    return {
        "phases": by_key,
        "ratios": ratios,
        "views_open_lag": lags,
        "generations_written": generations,
        "submissions_sent": submissions_sent + WARMUP,
        "fake_slack_violations": violations,
        "requests_per_phase": requests,
        "web_threads": web_threads,
    }


def print_report(result: dict) -> None:
    print()
    print(
        f"{'app':<9}{'kind':<11}{'conc':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'req/s':>8}{'fail':>6}{'p99 x':>7}{'rps x':>7}"
    )
    for key, f in result["phases"].items():
        app, kind, conc = key.split(".")
        ratio = result["ratios"].get(f"{kind}.{conc}") if app == "coldcopy" else None
        print(
            f"{app:<9}{kind:<11}{conc[1:]:>5}{f['p50_ms']:9.1f}{f['p95_ms']:9.1f}"
            f"{f['p99_ms']:9.1f}{f['rps']:8.0f}{f['failures']:6d}"
            + (f"{ratio['p99']:7.2f}{ratio['rps']:7.2f}" if ratio else "")
        )
    print(
        f"generations written: {result['generations_written']} "
        f"(submissions sent incl. warm-up: {result['submissions_sent']}); "
        f"FakeSlack violations: {result['fake_slack_violations']}"
    )
    for key, ratio in result["ratios"].items():
        if "floor_p99" in ratio:
            print(
                f"{key}: the flow's round trips alone (floor) cost "
                f"{ratio['floor_cpu_ms']:.2f} ms of server CPU over bare Bolt and put its p99 "
                f"at {ratio['floor_p99']:.2f}x bare; ColdCopy costs {ratio['ours_cpu_ms']:.2f} ms "
                f"over bare, p99 {ratio['p99_over_floor']:.2f}x the floor"
            )
    top = max(c for c in (int(k.split(".c")[1]) for k in result["phases"]))
    sub = result["phases"].get(f"coldcopy.submission.c{top}")
    ratio = result["ratios"].get(f"submission.c{top}")
    if sub and ratio:
        print(
            f"target: submission ack p99 <= {TARGET_SUBMISSION_P99_MS:.0f} ms at {top} "
            f"concurrent: {sub['p99_ms']:.1f} ms, "
            f"{'met' if sub['p99_ms'] <= TARGET_SUBMISSION_P99_MS else 'MISSED'}"
        )
        print(
            f"target: submission ack p99 <= {TARGET_RATIO}x bare Bolt at {top} concurrent: "
            f"{ratio['p99']:.2f}x, {'met' if ratio['p99'] <= TARGET_RATIO else 'MISSED'}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=REQUESTS, help="per phase")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--workers", type=int, default=WEB_WORKERS, help="worker processes")
    parser.add_argument(
        "--threads", type=int, default=WEB_THREADS, help="request threads per worker"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    result = measure(
        requests=args.requests,
        concurrency=tuple(args.concurrency),
        web_threads=args.threads,
        web_workers=args.workers,
    )
    print_report(result)
    print(f"ack benchmark took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
