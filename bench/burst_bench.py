"""Benchmarks of the generation runtime as users meet it: a burst of 40 simultaneous
submissions, and a crash mid-generation, each in both deployment modes.

    python -m bench.burst_bench [burst] [crash] [--burst 40] [--tokens-per-second 80]

Everything goes over HTTP to real processes, as in production: signed view submissions to a
real `coldcopy serve`, the generations running in `serve` itself (embedded: SQLite, the
in-process pool) or in ONE `coldcopy worker` (scale-out: a fresh PostgreSQL database with the
Procrastinate queue, and Redis), their threads posted to the local FakeSlack (in a process of
its own) and the model played by the local fake Messages API streaming at 80 tokens/s. Apart
from what the benchmark itself needs (the quota and the workspace rate limit raised so that no
submission is refused, and no worker metrics port, which other runs on this machine may hold)
every setting is the default.

- **burst**: per mode, one submission on an idle system (the lone sequence, the baseline),
  then 40 at the same moment from 40 users, each asking for its thread in its own channel.
  Per generation: time from sending its submission to its first email reply in Slack, and to
  the complete thread (the parent message showing it finished); p50/p95/max against the lone
  one. Also the resident memory of the process running the generations (serve, or the
  worker) at its peak during the burst minus its idle figure just before, per generation in
  flight (model streams open at once, counted at the fake).
- **crash**: per mode, a lone sequence, then one submission whose process is killed with
  SIGKILL once 2 emails are in Slack; a new one is started at once (the worker in scale-out,
  `serve` on the same database in embedded). Measured: time from the kill to the complete,
  resumed thread, against 30 s plus the model time of the 5 remaining emails.

Targets: slowest complete thread <= 1.5x the lone sequence and p95 first email <= 2x the lone
one in both modes; <= 2 MiB per in-flight generation; kill -9 to resumed thread <= 30 s plus
the remaining model time.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench.ack_bench import SignedRequests
from bench.fake_slack_process import FakeSlackProcess
from bench.services import ROOT, flushed_redis, fresh_postgres, percentile
from bot.slack.modal import brief_view
from testkit.briefs import SAMPLE_BRIEF as BRIEF
from testkit.fakes.anthropic import (
    CHARS_PER_TOKEN,
    FakeAnthropic,
    SequenceReply,
    sample_sequence,
    sequence_json,
)
from testkit.processes import Server, children, cpu_seconds, rss_kib, served

SIGNING_SECRET = "bench-signing-secret"
BURST = 40
TOKENS_PER_SECOND = 80.0
TARGET_SLOWEST_RATIO = 1.5  # slowest complete thread of the burst / the lone sequence's
TARGET_P95_FIRST_RATIO = 2.0  # p95 first email of the burst / the lone sequence's
TARGET_MIB_PER_GENERATION = 2.0
TARGET_TAKEOVER_S = 30.0  # plus the model time of what remains to write
KILL_AFTER_EMAILS = 2
RSS_EVERY_S = 0.05
# Every wait is bounded: a part that cannot finish says so instead of hanging.
GENERATION_TIMEOUT_S = 240.0
MODES = ("embedded", "scale-out")
# Not the tests' Redis database (15) nor the ack (13) or limiter (14) benchmarks': flushed.
REDIS_URL = os.environ.get("COLDCOPY_BENCH_BURST_REDIS_URL", "redis://127.0.0.1:6379/5")
EMAIL_TEXT = re.compile(r"Email (\d) \(day")


def stream_seconds(emails: list[dict], tokens_per_second: float) -> float:
    """How long the fake takes to stream `emails` as the tool input at this pace."""
    text, _ = sequence_json(emails)
    return len(text) / CHARS_PER_TOKEN / tokens_per_second


# --- Slack's side of the generations ---------------------------------------------------------


@dataclass
class Thread:
    """One generation's thread as the user saw it, on the machine-wide monotonic clock."""

    channel: str
    sent_at: float
    # step -> the time of each delivery of that email: posted whole, or its streamed reply
    # turned into the formatted email.
    emails: dict[int, list[float]] = field(default_factory=dict)
    # When a reply started streaming in the thread (the first words of an email).
    streams: list[float] = field(default_factory=list)
    finished_at: float | None = None
    failed_at: float | None = None

    @property
    def first_email_at(self) -> float | None:
        """When the first email was in the thread whole (posted, or its stream formatted)."""
        times = [t for posts in self.emails.values() for t in posts]
        return min(times) if times else None

    @property
    def first_words_at(self) -> float | None:
        """When the first words of an email appeared (its reply started streaming)."""
        return min(self.streams, default=None)

    @property
    def done(self) -> bool:
        return self.finished_at is not None or self.failed_at is not None

    @property
    def duplicates(self) -> int:
        return sum(len(posts) - 1 for posts in self.emails.values())


class Watcher:
    """Follows the threads in FakeSlack, by channel (every submission asks for its own)."""

    def __init__(self, slack: FakeSlackProcess):
        self.slack = slack
        self.threads: dict[str, Thread] = {}
        self._next = 0

    def expect(self, channel: str, sent_at: float) -> Thread:
        self.threads[channel] = Thread(channel, sent_at)
        return self.threads[channel]

    def poll(self) -> None:
        messages, self._next = self.slack.messages(self._next)
        for message in messages:
            thread = self.threads.get(message["channel"])
            if thread is None:
                continue
            match = EMAIL_TEXT.match(message["text"])
            if message["method"] == "chat.startStream":
                thread.streams.append(message["at"])
            elif match and (message["method"] == "chat.update" or message["thread_ts"]):
                # A reply posted whole, or a streamed reply turned into the formatted email.
                thread.emails.setdefault(int(match[1]), []).append(message["at"])
            elif message["method"] == "chat.update" and message["state"] == "finished":
                thread.finished_at = thread.finished_at or message["at"]
            elif message["method"] == "chat.update" and message["state"] == "failed":
                thread.failed_at = thread.failed_at or message["at"]

    def wait(self, threads: list[Thread], until, timeout: float = GENERATION_TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if all(until(t) for t in threads):
                return True
            time.sleep(0.05)
        return False


# --- the deployment --------------------------------------------------------------------------


class Deployment:
    """The processes of one mode: `serve` (and a worker in scale-out), wired to the fakes."""

    def __init__(
        self,
        mode: str,
        stack: ExitStack,
        logs: Path,
        tokens_per_second: float,
        extra_env: dict[str, str] | None = None,
    ):
        self.mode = mode
        self.stack = stack
        self.logs = logs
        self.claude = stack.enter_context(FakeAnthropic())
        # A request nobody scripted (a retry) still gets a paced, valid answer.
        self.claude.default_reply = SequenceReply(
            sequence_json(sample_sequence())[0], tokens_per_second=tokens_per_second
        )
        self.slack = stack.enter_context(FakeSlackProcess())
        self.watcher = Watcher(self.slack)
        self.builder = SignedRequests("http://unused", SIGNING_SECRET)
        self.builder.response_base = self.slack.response_base
        self.run = uuid.uuid4().hex[:4].upper()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": self.slack.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-bench",
            "ANTHROPIC_BASE_URL": self.claude.base_url,
            # One workspace sending a burst: its quota and hourly rate must not refuse any.
            "COLDCOPY_FREE_QUOTA": "1000000",
            "COLDCOPY_WORKSPACE_RATE": "100000/hour",
        }
        if mode == "embedded":
            self.env["DATABASE_URL"] = f"sqlite:///{logs / 'coldcopy.db'}"
        else:
            database_url = stack.enter_context(fresh_postgres("coldcopy_bench_burst"))
            self.env["DATABASE_URL"] = database_url
            self.env["REDIS_URL"] = stack.enter_context(flushed_redis(REDIS_URL))
            self.env["COLDCOPY_WORKER_METRICS_PORT"] = "0"
        self.env.update(extra_env or {})
        self.serves: list[Server] = []
        self.workers: list[subprocess.Popen] = []
        stack.callback(self._stop_workers)
        self.start_serve()
        if mode == "scale-out":
            self.start_worker(wait=True)
        self._ids = 0

    @property
    def serve(self) -> Server:
        return self.serves[-1]

    @property
    def runner_pid(self) -> int:
        """The process running the generations: the worker, or serve's one gunicorn worker
        process (its master only supervises)."""
        if self.mode == "scale-out":
            return self.workers[-1].pid
        master = self.serve.proc.pid
        workers = children(master)
        return workers[0] if len(workers) == 1 else master

    def start_serve(self) -> Server:
        name = f"serve-{len(self.serves) + 1}"
        server = self.stack.enter_context(
            served(name, ["bot.runtime.cli", "serve"], self.env, self.logs)
        )
        self.serves.append(server)
        return server

    def start_worker(self, *, wait: bool) -> subprocess.Popen:
        path = self.logs / f"worker-{len(self.workers) + 1}.log"
        with open(path, "w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot.runtime.cli", "worker"],
                cwd=self.logs,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        proc.log_path = path
        self.workers.append(proc)
        deadline = time.monotonic() + 60
        while wait and "worker running up to" not in path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{path.read_text()}")
            time.sleep(0.05)
        return proc

    def _stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()

    def submit(self, count: int, tag: str) -> list[Thread]:
        """`count` submissions sent at the same moment, each from its own user to its own
        channel, each on its own connection; their threads, to be watched."""
        view = brief_view(None, "C1")
        requests = []
        for _ in range(count):
            self._ids += 1
            self.builder.team_id = "T0001"
            channel = f"C{self.run}{tag}{self._ids:03d}"
            payload = self.builder.submission(
                view,
                BRIEF,
                user=f"U{self.run}{self._ids:03d}",
                view_id=f"V{self.run}{self._ids:05d}",
                channel=channel,
            )
            body, headers = self.builder.signed(self.builder.interaction_body(payload))
            requests.append((channel, body, headers))
        sent: dict[str, float] = {}
        failures: list[str] = []
        ready = threading.Barrier(count)

        def send(channel: str, body: bytes, headers: dict) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.serve.port, timeout=60)
            conn.connect()
            ready.wait()
            sent[channel] = time.monotonic()
            try:
                conn.request("POST", "/slack/events", body, headers)
                response = conn.getresponse()
                answer = response.read()
                if response.status != 200 or b"Writing your sequence" not in answer:
                    failures.append(f"{response.status} {answer[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
            finally:
                conn.close()

        senders = [threading.Thread(target=send, args=r, daemon=True) for r in requests]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        if failures:
            raise SystemExit(f"{len(failures)} submissions refused, e.g. {failures[0]}")
        return [self.watcher.expect(channel, sent[channel]) for channel, _, _ in requests]

    def logs_say(self, needle: str) -> int:
        paths = [s.log_path for s in self.serves] + [w.log_path for w in self.workers]
        return sum(p.read_text(errors="replace").count(needle) for p in paths if p.exists())


class RssSampler:
    """Samples a process's resident memory every RSS_EVERY_S until stopped."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list[tuple[float, int]] = []  # (time.perf_counter(), KiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.perf_counter(), rss_kib(self.pid)))
            except OSError:
                return
            self._stop.wait(RSS_EVERY_S)


def streams_in_flight(replies) -> int:
    """The most model streams the fake served at once."""
    edges = []
    for reply in replies:
        if reply.started_at is not None:
            edges.append((reply.started_at, 1))
            edges.append((reply.finished_at or time.perf_counter(), -1))
    most = current = 0
    for _, step in sorted(edges):
        current += step
        most = max(most, current)
    return most


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# --- burst -----------------------------------------------------------------------------------


def _lone(dep: Deployment, tokens_per_second: float, tag: str) -> Thread:
    dep.claude.enqueue_sequence(tokens_per_second=tokens_per_second)
    (lone,) = dep.submit(1, tag)
    if not dep.watcher.wait([lone], lambda t: t.done) or lone.failed_at:
        raise SystemExit(f"the lone sequence did not finish in {dep.mode}; logs in {dep.logs}")
    return lone


def measure_burst_mode(
    mode: str,
    *,
    burst: int = BURST,
    tokens_per_second: float = TOKENS_PER_SECOND,
    extra_env: dict[str, str] | None = None,
    say=print,
) -> dict:
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="coldcopy-burst-")))
        dep = Deployment(mode, stack, logs, tokens_per_second, extra_env)
        say(f"[{mode}] up; load average {load_average()}; the lone sequence...")
        lone = _lone(dep, tokens_per_second, "L")
        lone_first = lone.first_email_at - lone.sent_at
        lone_done = lone.finished_at - lone.sent_at
        lone_words = lone.first_words_at - lone.sent_at if lone.first_words_at else None
        say(f"[{mode}] lone: first email {lone_first:.2f} s, complete {lone_done:.2f} s")
        time.sleep(1.0)  # let the process settle before its idle figure
        pid = dep.runner_pid
        idle_kib = rss_kib(pid)
        replies = [
            dep.claude.enqueue_sequence(tokens_per_second=tokens_per_second) for _ in range(burst)
        ]
        load_before = load_average()
        asked_before = len(dep.claude.requests)
        pids = {"serve": dep.serve.proc.pid}
        if mode == "scale-out":
            pids["worker"] = pid
        cpu_before = {name: cpu_seconds(p) for name, p in pids.items()}
        bench_cpu = time.process_time()
        with RssSampler(pid) as sampler:
            threads = dep.submit(burst, "B")
            say(f"[{mode}] {burst} submitted; waiting for their threads...")
            finished = dep.watcher.wait(threads, lambda t: t.done)
        # CPU the burst cost each process (the fakes and the watcher run in this one).
        cpu = {name: cpu_seconds(p) - cpu_before[name] for name, p in pids.items()}
        cpu["bench"] = time.process_time() - bench_cpu
        load_after = load_average()
        peak_kib = max(kib for _, kib in sampler.samples)
        in_flight = streams_in_flight(replies)
        done = [t for t in threads if t.finished_at is not None]
        firsts = [t.first_email_at - t.sent_at for t in threads if t.first_email_at]
        words = [t.first_words_at - t.sent_at for t in threads if t.first_words_at]
        # Where the wait goes: from the burst's sending to each model request reaching the
        # fake (both clocks are CLOCK_MONOTONIC), i.e. the queue, the claim and the writer's
        # request; the rest of the time to the first email is the model's stream.
        burst_sent = min(t.sent_at for t in threads)
        to_model = [r.received_at - burst_sent for r in dep.claude.requests[asked_before:]]
        completes = [t.finished_at - t.sent_at for t in done]
        figures = {
            "mode": mode,
            "burst": burst,
            "tokens_per_second": tokens_per_second,
            "stream_s": stream_seconds(sample_sequence(), tokens_per_second),
            "lone_first_email_s": lone_first,
            "lone_complete_s": lone_done,
            "completed": len(done),
            "failed": sum(1 for t in threads if t.failed_at),
            "unfinished": 0 if finished else sum(1 for t in threads if not t.done),
            "duplicate_emails": sum(t.duplicates for t in threads),
            "incomplete_threads": sum(1 for t in done if sorted(t.emails) != list(range(1, 8))),
            "first_email_p50_s": percentile(firsts, 50),
            "first_email_p95_s": percentile(firsts, 95),
            "first_email_max_s": max(firsts),
            # The first words of an email in the thread (its reply streaming), beside.
            "lone_first_words_s": lone_words,
            "first_words_p95_s": percentile(words, 95) if words else None,
            "to_model_p50_s": percentile(to_model, 50),
            "to_model_p95_s": percentile(to_model, 95),
            "to_model_max_s": max(to_model),
            "complete_p50_s": percentile(completes, 50) if completes else None,
            "complete_p95_s": percentile(completes, 95) if completes else None,
            "complete_max_s": max(completes) if completes and finished else None,
            "model_streams_at_once": in_flight,
            "model_requests": len(dep.claude.requests),
            "cpu_s": cpu,
            "idle_rss_mib": idle_kib / 1024,
            "peak_rss_mib": peak_kib / 1024,
            "load_average_before": load_before,
            "load_average_after": load_after,
        }
        figures["slowest_ratio"] = (
            figures["complete_max_s"] / lone_done if figures["complete_max_s"] else None
        )
        figures["p95_first_ratio"] = figures["first_email_p95_s"] / lone_first
        figures["mib_per_generation"] = (peak_kib - idle_kib) / 1024 / max(1, in_flight)
        figures["model_busy_waits"] = dep.logs_say("model asked us to slow down")
        say(
            f"[{mode}] {len(done)}/{burst} complete; first email p50 "
            f"{figures['first_email_p50_s']:.2f} p95 {figures['first_email_p95_s']:.2f} max "
            f"{figures['first_email_max_s']:.2f} s; complete p50 {figures['complete_p50_s']:.2f}"
            f" p95 {figures['complete_p95_s']:.2f} max {figures['complete_max_s'] or 0:.2f} s; "
            f"{in_flight} model streams at once; RSS {figures['idle_rss_mib']:.1f} -> "
            f"{figures['peak_rss_mib']:.1f} MiB; CPU "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu.items())
            + f"; load average {load_before} -> {load_after}"
        )
    return figures


def measure_burst(
    *,
    burst: int = BURST,
    tokens_per_second: float = TOKENS_PER_SECOND,
    extra_env: dict[str, str] | None = None,
) -> dict:
    return {
        mode: measure_burst_mode(
            mode, burst=burst, tokens_per_second=tokens_per_second, extra_env=extra_env
        )
        for mode in MODES
    }


# --- crash -----------------------------------------------------------------------------------


def measure_crash_mode(
    mode: str, *, tokens_per_second: float = TOKENS_PER_SECOND, say=print
) -> dict:
    remaining = sample_sequence()[KILL_AFTER_EMAILS:]
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="coldcopy-crash-")))
        dep = Deployment(mode, stack, logs, tokens_per_second)
        say(f"[{mode}] up; load average {load_average()}; the lone sequence...")
        lone = _lone(dep, tokens_per_second, "L")
        lone_done = lone.finished_at - lone.sent_at
        say(f"[{mode}] lone: complete {lone_done:.2f} s")
        dep.claude.enqueue_sequence(tokens_per_second=tokens_per_second)
        # What a continuation gets: the emails still missing, at the same pace.
        continuation = dep.claude.enqueue_sequence(remaining, tokens_per_second=tokens_per_second)
        (thread,) = dep.submit(1, "K")
        if not dep.watcher.wait([thread], lambda t: len(t.emails) >= KILL_AFTER_EMAILS, 60):
            raise SystemExit(f"[{mode}] no {KILL_AFTER_EMAILS} emails to kill after; {logs}")
        victim = dep.workers[-1] if mode == "scale-out" else dep.serve.proc
        load_before = load_average()
        killed_at = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        posted_before = len(thread.emails)
        if mode == "scale-out":
            dep.start_worker(wait=False)
        else:
            dep.start_serve()
        restarted_at = time.monotonic()
        finished = dep.watcher.wait([thread], lambda t: t.done)
        after = sorted(t for step, times in thread.emails.items() for t in times)
        resumed_email_at = next((t for t in after if t > killed_at), None)
        figures = {
            "mode": mode,
            "tokens_per_second": tokens_per_second,
            "lone_complete_s": lone_done,
            "emails_before_kill": posted_before,
            "restart_s": restarted_at - killed_at,
            "finished": bool(finished and thread.finished_at),
            "kill_to_next_email_s": (resumed_email_at - killed_at) if resumed_email_at else None,
            "kill_to_complete_s": (thread.finished_at - killed_at) if thread.finished_at else None,
            "remaining_model_s": stream_seconds(remaining, tokens_per_second),
            "continuation_stream_s": continuation.duration,
            "distinct_emails": sorted(thread.emails),
            "duplicate_emails": thread.duplicates,
            "model_requests": len(dep.claude.requests),
            "load_average_before": load_before,
            "load_average_after": load_average(),
        }
        figures["target_s"] = TARGET_TAKEOVER_S + figures["remaining_model_s"]
        say(
            f"[{mode}] killed after {posted_before} emails; next email "
            f"{figures['kill_to_next_email_s'] or float('nan'):.2f} s, complete "
            f"{figures['kill_to_complete_s'] or float('nan'):.2f} s after the kill (target "
            f"{figures['target_s']:.1f} s); emails {figures['distinct_emails']}, "
            f"{thread.duplicates} duplicates; load average {load_before}"
        )
    return figures


def measure_crash(*, tokens_per_second: float = TOKENS_PER_SECOND) -> dict:
    return {mode: measure_crash_mode(mode, tokens_per_second=tokens_per_second) for mode in MODES}


# --- report ----------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_burst(result: dict) -> None:
    print()
    print(f"{'':34}" + "".join(f"{mode:>22}" for mode in result))
    rows = [
        ("lone: first email (s)", "lone_first_email_s"),
        ("lone: complete thread (s)", "lone_complete_s"),
        ("burst: to the model p50 (s)", "to_model_p50_s"),
        ("burst: to the model p95 (s)", "to_model_p95_s"),
        ("burst: first email p50 (s)", "first_email_p50_s"),
        ("burst: first email p95 (s)", "first_email_p95_s"),
        ("burst: first email max (s)", "first_email_max_s"),
        ("burst: complete p50 (s)", "complete_p50_s"),
        ("burst: complete p95 (s)", "complete_p95_s"),
        ("burst: complete max (s)", "complete_max_s"),
        (f"slowest / lone (<= {TARGET_SLOWEST_RATIO}x)", "slowest_ratio"),
        (f"p95 first / lone (<= {TARGET_P95_FIRST_RATIO}x)", "p95_first_ratio"),
        ("model streams at once", "model_streams_at_once"),
        ("RSS idle -> peak (MiB)", None),
        (f"MiB per generation (<= {TARGET_MIB_PER_GENERATION:g})", "mib_per_generation"),
        ("completed / failed", None),
        ("CPU: s(erve) w(orker) b(ench), s", "cpu_s"),
        ("load average before", "load_average_before"),
    ]
    for label, key in rows:
        cells = []
        for f in result.values():
            if key is None and label.startswith("RSS"):
                cells.append(f"{f['idle_rss_mib']:.1f} -> {f['peak_rss_mib']:.1f}")
            elif key is None:
                cells.append(f"{f['completed']} / {f['failed']}")
            elif key == "cpu_s":
                cells.append(" ".join(f"{n[0]}{v:.1f}" for n, v in f[key].items()))
            else:
                value = f[key]
                cells.append(_s(value) if isinstance(value, float) or value is None else value)
        print(f"{label:34}" + "".join(f"{c!s:>22}" for c in cells))


def print_crash(result: dict) -> None:
    print()
    for mode, f in result.items():
        print(
            f"{mode}: lone {f['lone_complete_s']:.2f} s; kill -9 after "
            f"{f['emails_before_kill']} emails -> next email {_s(f['kill_to_next_email_s'])} s, "
            f"complete {_s(f['kill_to_complete_s'])} s; target {f['target_s']:.1f} s "
            f"(30 s + {f['remaining_model_s']:.1f} s of model time); emails "
            f"{f['distinct_emails']}, {f['duplicate_emails']} duplicates"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", choices=["burst", "crash"], default=[])
    parser.add_argument("--burst", type=int, default=BURST)
    parser.add_argument("--tokens-per-second", type=float, default=TOKENS_PER_SECOND)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="burst: a setting for the processes, to see what it changes (default: none)",
    )
    args = parser.parse_args(argv)
    parts = args.parts or ["burst", "crash"]
    extra_env = dict(item.split("=", 1) for item in args.set)
    if "burst" in parts:
        print_burst(
            measure_burst(
                burst=args.burst, tokens_per_second=args.tokens_per_second, extra_env=extra_env
            )
        )
    if "crash" in parts:
        print_crash(measure_crash(tokens_per_second=args.tokens_per_second))
    return 0


if __name__ == "__main__":
    sys.exit(main())
