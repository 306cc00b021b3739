"""Scale-out for real: `coldcopy serve` and `coldcopy worker` processes on one PostgreSQL and
one Redis, with the Slack and Claude fakes: no over-grant and no lost request. (A worker
killed mid-generation is tests/test_resume.py's.)"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import BRIEF
from sqlalchemy import select, text

from bot.slack.modal import brief_view
from storage.db import make_engine, reading
from storage.migrate import upgrade
from storage.models import Generation, Workspace
from testkit.fakes.anthropic import FakeAnthropic, SequenceReply, sample_sequence, sequence_json
from testkit.fakes.slack import FakeSlack
from testkit.harness import SignedSlackClient
from testkit.processes import Processes, coldcopy_env
from testkit.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
G = Generation.__table__
W = Workspace.__table__


@pytest.fixture
def cluster(postgres_url, redis_url, tmp_path):
    with FakeSlack() as slack, FakeAnthropic() as claude:
        engine = make_engine(postgres_url)
        upgrade(engine)
        env = coldcopy_env(
            slack,
            claude,
            postgres_url,
            REDIS_URL=redis_url,
            COLDCOPY_FREE_QUOTA="5",
            COLDCOPY_USER_RATE="1000/minute",
            COLDCOPY_WORKSPACE_RATE="1000/minute",
            COLDCOPY_WORKER_METRICS_PORT="0",  # several workers share this host
        )
        procs = Processes(env, tmp_path, slack)
        try:
            yield procs, slack, claude, engine
        finally:
            procs.stop_all()
            engine.dispose()


def submit(client: SignedSlackClient, team: str, user: str, view_id: str) -> dict:
    client.team_id = team
    view = brief_view(None, "C1")
    view["id"] = view_id
    return client.submit(view, BRIEF, user=user, view_id=view_id).json()


def test_two_servers_and_two_workers_never_over_grant_or_lose_a_request(cluster):
    procs, slack, claude, engine = cluster
    claude.default_reply = SequenceReply(tool_input=sequence_json(sample_sequence())[0])
    servers = [procs.serve("serve-1"), procs.serve("serve-2")]
    procs.start("worker", name="worker-1")
    procs.start("worker", name="worker-2")

    started = time.monotonic()
    jobs = [
        (f"T{t:02d}", f"U{t:02d}{n:02d}", f"V{t:02d}{n:02d}") for t in range(10) for n in range(10)
    ]

    def one(i_job):
        i, (team, user, view_id) = i_job
        # Each submission gets its own client: the harness client is not thread-safe.
        client = SignedSlackClient(servers[i % 2].url, slack=slack)
        return team, submit(client, team, user, view_id)

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(one, enumerate(jobs)))
    ack_seconds = time.monotonic() - started

    others = [
        a for _, a in answers if "Writing your sequence" not in str(a) and "used all" not in str(a)
    ]
    assert not others, f"answers that are neither accepted nor out of quota: {others[:3]}"
    accepted = Counter(team for team, a in answers if "Writing your sequence" in str(a))
    upgrade_prompts = Counter(team for team, a in answers if "used all" in str(a))
    assert accepted == {f"T{t:02d}": 5 for t in range(10)}
    assert upgrade_prompts == {f"T{t:02d}": 5 for t in range(10)}

    def all_finished() -> bool:
        with reading(engine) as conn:
            statuses = conn.execute(select(G.c.status)).scalars().all()
        return len(statuses) == 50 and all(s in ("succeeded", "failed") for s in statuses)

    wait_until(all_finished, timeout=240)
    finished_seconds = time.monotonic() - started

    with reading(engine) as conn:
        used = dict(conn.execute(select(W.c.team_id, W.c.used)).all())
        statuses = Counter(conn.execute(select(G.c.status)).scalars())
    assert used == {f"T{t:02d}": 5 for t in range(10)}
    assert statuses == {"succeeded": 50}

    posts = [c for c in slack.posts() if c.ok]
    parents = [c for c in posts if "thread_ts" not in c.params]
    replies = defaultdict(int)
    for c in posts:
        if "thread_ts" in c.params:
            replies[c.params["thread_ts"]] += 1
    assert len(parents) == 50
    assert sorted(replies.values()) == [7] * 50
    print(
        f"\n100 submissions acked in {ack_seconds:.1f}s; 50 threads done in {finished_seconds:.1f}s"
    )


def test_logs_are_json_lines_with_ids_and_never_the_brief_or_a_token(cluster):
    procs, slack, claude, engine = cluster
    claude.default_reply = SequenceReply(tool_input=sequence_json(sample_sequence())[0])
    server = procs.serve("serve-1")
    procs.start("worker", name="worker-1")
    assert "Writing your sequence" in str(submit(server, "T0001", "U1", "VLOG"))

    def done() -> bool:
        with reading(engine) as conn:
            return conn.execute(select(G.c.status)).scalar_one() == "succeeded"

    wait_until(done, timeout=60)
    procs.stop_all()
    lines = []
    for name in ("serve-1", "worker-1"):
        text = (procs.workdir / f"{name}.log").read_text()
        for forbidden in (BRIEF["company"], BRIEF["problem"], "xoxb-test", "sk-ant-test"):
            assert forbidden not in text
        lines += [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    started = [entry for entry in lines if entry["message"] == "generation started"]
    assert started and started[0]["team_id"] == "T0001" and started[0]["generation_id"]
    assert all({"ts", "level", "logger", "message"} <= entry.keys() for entry in lines)


def test_sigterm_lets_an_in_flight_generation_finish(postgres_url, tmp_path):
    """The embedded mode: `serve` runs generations itself and finishes them on SIGTERM."""
    with FakeSlack() as slack, FakeAnthropic() as claude:
        engine = make_engine(postgres_url)
        upgrade(engine)
        procs = Processes(coldcopy_env(slack, claude, postgres_url), tmp_path, slack)
        try:
            claude.enqueue_sequence(tokens_per_second=300)  # about three seconds
            server = procs.serve("serve-1")
            assert "Writing your sequence" in str(submit(server, "T0001", "U1", "VTERM"))
            wait_until(lambda: len(slack.posts()) >= 2, timeout=20)
            serve = procs.running[0]
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(timeout=60) == 0
            with reading(engine) as conn:
                assert conn.execute(select(G.c.status)).scalar_one() == "succeeded"
            assert len(slack.wait_for_posts(8, timeout=5)) == 8
        finally:
            procs.stop_all()
            engine.dispose()


def test_serve_answers_without_slack_and_a_busy_worker_announces_the_queue(cluster):
    procs, slack, claude, engine = cluster
    # One worker process, so a later request is answered by the process that took these.
    client = procs.serve("serve", "--workers", "1")
    for _ in range(3):
        claude.enqueue_sequence(tokens_per_second=400)
    answers = [submit(client, "T01", f"U0{n}", f"V0{n}") for n in range(3)]
    assert all("Writing your sequence" in str(a) for a in answers), answers
    # Each job was in the queue by the time its answer came back, and serve itself said
    # nothing to Slack: the thread is the worker's to open.
    with reading(engine) as conn:
        todo = conn.execute(
            text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")
        ).scalar_one()
    assert todo == 3
    assert slack.calls_to("chat.postMessage") == []
    # Serve's work after an answer runs on its own threads: once it has answered a later
    # command there too, anything it meant to say about these submissions has been said.
    client.slash("status", user="U00")
    slack.wait_for("response_url")
    assert slack.calls_to("chat.postMessage") == []

    procs.start("worker", "--concurrency", "1", name="worker")

    def all_succeeded() -> bool:
        with reading(engine) as conn:
            statuses = conn.execute(select(G.c.status)).scalars().all()
        return statuses == ["succeeded"] * 3

    wait_until(all_succeeded, timeout=120)
    posts = [c for c in slack.posts() if c.ok]
    parents = [c for c in posts if "thread_ts" not in c.params]
    assert len(parents) == 3  # one thread each, never a second parent
    # With one slot, at least two waited: their threads said so, with their place in the
    # queue (the first too, if the worker took over a second to fetch it).
    queued = [c for c in parents if "Queued" in str(c.params)]
    assert len(queued) >= 2, [c.params.get("text") for c in parents]
    replies = Counter(c.params["thread_ts"] for c in posts if "thread_ts" in c.params)
    assert sorted(replies.values()) == [7, 7, 7]
