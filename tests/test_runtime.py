"""Running in production: OAuth installs, uninstalls, health, readiness, metrics, the sweeper
and the operator's usage command."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from helpers import (
    BRIEF,
    all_text,
    generations,
    install,
    make_settings,
    oauth_overrides,
    open_form,
    thread_posts,
    used,
)
from sqlalchemy import func, select, update

from bot.core.clock import SYSTEM_CLOCK
from bot.flows.sweeper import ANNOUNCE_AFTER, sweep
from bot.slack import constants as K
from storage.db import reading, transaction
from storage.generations import orphaned_generations
from storage.ledger import reserve_generation
from storage.models import Generation, slack_bots, slack_installations
from storage.settings import read_settings, save_settings, settings_history
from testkit.clock import ManualClock
from testkit.fakes.anthropic import FakeAnthropic, sample_sequence
from testkit.fakes.slack import FakeSlack
from testkit.harness import ServedApp
from testkit.waiting import wait_until

G = Generation.__table__


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        fake.add_user("U1")
        yield fake


@pytest.fixture
def claude():
    with FakeAnthropic() as fake:
        yield fake


def serve(
    slack, claude, engine, client: dict | None = None, clock=SYSTEM_CLOCK, **overrides
) -> ServedApp:
    """ColdCopy served against the fakes; `client` options for its SignedSlackClient."""
    settings = make_settings(
        slack_api_url=slack.base_url,
        anthropic_base_url=claude.base_url,
        database_url=str(engine.url),
        **overrides,
    )
    return ServedApp(settings, engine, clock, slack=slack, **(client or {}))


def accepted_generation(engine, policy, key: str) -> str:
    """A generation accepted for U1 in T0001 (reserved and queued), as a submission leaves it."""
    return reserve_generation(
        engine,
        policy,
        team_id="T0001",
        user_id="U1",
        channel_id="C1",
        idempotency_key=key,
        brief=dict(BRIEF, tone="Professional"),
    ).generation_id


def count(engine, table) -> int:
    with reading(engine) as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_an_oauth_install_is_stored_and_a_reinstall_updates_it(slack, claude, engine):
    with serve(slack, claude, engine, **oauth_overrides()) as app:
        install(app)
        assert count(engine, slack_bots) == 1
        assert count(engine, slack_installations) == 1
        access = slack.calls_to("oauth.v2.access")[-1]
        assert access.params["code"] == "fake-code"

        install(app)
        assert count(engine, slack_bots) == 1
        assert count(engine, slack_installations) == 1

        # The stored token now authorises the workspace's commands.
        view = open_form(app, slack)
        assert view["callback_id"] == K.BRIEF_VIEW
        assert slack.calls_to("views.open")[-1].token == slack.oauth_response["access_token"]


def test_a_grid_workspace_installed_with_oauth_is_answered_with_its_own_token(claude, engine):
    # Slack names the enterprise in every request from a Grid workspace; the install is found
    # by enterprise and team together (lesson 21).
    with FakeSlack(enterprise_id="E0001", enterprise_name="Globex") as grid:
        grid.add_user("U1")
        grid_client = {"enterprise_id": "E0001", "enterprise_name": "Globex"}
        with serve(grid, claude, engine, grid_client, **oauth_overrides()) as app:
            install(app)
            view = open_form(app, grid)
        assert view["callback_id"] == K.BRIEF_VIEW
        assert grid.calls_to("views.open")[-1].token == grid.oauth_response["access_token"]
        with reading(engine) as conn:
            assert conn.execute(select(slack_bots.c.enterprise_id)).scalar_one() == "E0001"


def test_uninstall_erases_tokens_and_personal_data_but_keeps_usage(slack, claude, engine):
    with serve(slack, claude, engine, **oauth_overrides()) as app:
        install(app)
        save_settings(engine, "T0001", {"never_use": "synergy"}, changed_by="UADMIN")
        claude.enqueue_sequence()
        app.submit(open_form(app, slack), BRIEF)
        thread_posts(slack, 8)
        wait_until(lambda: generations(engine)[0].status == "succeeded")

        reply = app.event({"type": "app_uninstalled"}, event_id="EvUninstall")
        assert reply.status == 200
        # Erased after the answer, the settings last.
        wait_until(lambda: read_settings(engine, "T0001")["never_use"] is None)
        gen = generations(engine)[0]
        assert gen.brief is None and gen.sequence is None
        assert gen.output_tokens > 0 and gen.status == "succeeded"
        assert used(engine) == 1
        assert count(engine, slack_bots) == 0
        assert count(engine, slack_installations) == 0
        assert settings_history(engine, "T0001") == []


def test_health_readiness_and_metrics(slack, claude, sqlite_engine):
    with serve(slack, claude, sqlite_engine) as app:
        assert app.request("GET", "/healthz").status == 200
        ready = app.request("GET", "/readyz")
        assert ready.status == 200 and ready.json()["checks"] == {"database": "ok"}

        claude.enqueue_sequence()
        app.submit(open_form(app, slack), BRIEF)
        thread_posts(slack, 8)
        wait_until(lambda: generations(sqlite_engine)[0].status == "succeeded")
        metrics = app.request("GET", "/metrics").body.decode()
        assert 'coldcopy_generations_total{status="succeeded"}' in metrics
        assert "coldcopy_time_to_first_email_seconds_bucket" in metrics
        assert 'coldcopy_model_tokens_total{kind="output"}' in metrics


def test_readyz_reports_redis_down_but_stays_ready(slack, claude, sqlite_engine):
    # Without Redis only rate limits and de-duplication are off (they fail open): taking the
    # replica out of the load balancer would turn a degraded service into an outage.
    with serve(slack, claude, sqlite_engine, redis_url="redis://127.0.0.1:1/0") as app:
        ready = app.request("GET", "/readyz")
        assert ready.status == 200
        assert ready.json()["checks"]["redis"] == "unreachable"


def test_readyz_is_503_when_the_database_is_unreachable(slack, claude, sqlite_engine):
    from storage.db import make_engine

    with serve(slack, claude, sqlite_engine) as app:
        # The database goes away: a server on a port where nothing listens.
        app.services.engine = make_engine("postgresql://postgres@127.0.0.1:1/coldcopy")
        ready = app.request("GET", "/readyz")
        assert ready.status == 503
        assert ready.json()["checks"]["database"].startswith("unreachable")


def test_a_generation_whose_process_died_is_taken_over_and_resumed(slack, claude, engine):
    with serve(slack, claude, engine) as app:
        # A generation whose process died after posting two emails: running, lease expired.
        gen_id = accepted_generation(engine, app.services.policy, "crashed")
        posted = [
            {**email, "step": step, "quality": {}, "ts": f"1700000000.00020{step}"}
            for step, email in enumerate(sample_sequence()[:2], 1)
        ]
        with transaction(engine) as conn:
            conn.execute(
                update(G)
                .where(G.c.id == gen_id)
                .values(
                    status="running",
                    parent_ts="1700000000.000100",
                    posted_channel_id="C1",
                    sequence=posted,
                    lease_owner="elsewhere:1:dead",
                    lease_expires_at=datetime.now(UTC) - timedelta(seconds=1),
                )
            )
        claude.enqueue_sequence(sample_sequence()[2:])
        assert sweep(app.services, app.dispatcher) == 1
        wait_until(lambda: generations(engine)[0].status == "succeeded")
        replies = slack.wait_for_posts(5)
        assert [c.params["thread_ts"] for c in replies] == ["1700000000.000100"] * 5
        assert [c.params["text"][:7] for c in replies] == [f"Email {n}" for n in range(3, 8)]
        gen = generations(engine)[0]
        assert (gen.takeovers, gen.quota_state, used(engine)) == (1, "committed", 1)
        assert sweep(app.services, app.dispatcher) == 0  # nothing left to take over


def test_after_two_takeovers_a_generation_fails_and_gives_its_unit_back(slack, claude, engine):
    with serve(slack, claude, engine) as app:
        gen_id = accepted_generation(engine, app.services.policy, "cursed")
        with transaction(engine) as conn:
            conn.execute(
                update(G)
                .where(G.c.id == gen_id)
                .values(
                    status="running",
                    parent_ts="1700000000.000100",
                    posted_channel_id="C1",
                    takeovers=2,
                    lease_owner="elsewhere:1:dead",
                    lease_expires_at=datetime.now(UTC) - timedelta(seconds=1),
                )
            )
        assert sweep(app.services, app.dispatcher) == 1
        wait_until(lambda: generations(engine)[0].status == "failed")
        assert used(engine) == 0 and generations(engine)[0].quota_state == "released"
        notice = slack.wait_for("chat.postMessage")[-1]
        assert notice.params["thread_ts"] == "1700000000.000100"
        assert "stopped several times" in all_text([notice])
        assert K.RETRY_ACTION in all_text([notice])
        assert claude.requests == []  # no model call for a generation given up


def test_a_queued_generation_whose_job_was_lost_is_handed_on_again(slack, claude, sqlite_engine):
    with serve(slack, claude, sqlite_engine) as app:
        # Accepted (row written) but its process died before handing it to a worker.
        gen_id = accepted_generation(sqlite_engine, app.services.policy, "lost")
        claude.enqueue_sequence()
        assert sweep(app.services, app.dispatcher) == 0  # fresh: its job may still be on its way
        assert sweep(app.services, app.dispatcher, queued_for=timedelta(0)) == 1
        thread_posts(slack, 8)
        wait_until(lambda: generations(sqlite_engine)[0].status == "succeeded")
        assert generations(sqlite_engine)[0].id == gen_id


def test_usage_command_prints_each_workspace(sqlite_engine, sqlite_url, tmp_path, policy):
    for i in range(2):
        reserve_generation(
            sqlite_engine,
            policy,
            team_id="TA",
            user_id=f"U{i}",
            channel_id="C",
            idempotency_key=f"a{i}",
        )
    reserve_generation(
        sqlite_engine, policy, team_id="TB", user_id="U9", channel_id="C", idempotency_key="b0"
    )
    env = {"DATABASE_URL": sqlite_url, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "bot.runtime.cli", "usage", "--json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=True,
    ).stdout
    rows = {r["team_id"]: r for r in json.loads(out)}
    assert rows["TA"]["used"] == 2 and rows["TA"]["limit"] == 3 and rows["TA"]["in_flight"] == 2
    assert rows["TB"]["per_user"] == [{"user_id": "U9", "generations": 1}]
    one = subprocess.run(
        [sys.executable, "-m", "bot.runtime.cli", "usage", "--team", "TB"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=True,
    )
    assert "TB" in one.stdout and "TA" not in one.stdout and "1/3" in one.stdout


def test_fresh_work_is_not_orphaned(sqlite_engine, policy):
    reserve_generation(
        sqlite_engine, policy, team_id="T", user_id="U", channel_id="C", idempotency_key="fresh"
    )
    assert orphaned_generations(sqlite_engine, queued_for=timedelta(seconds=20)) == []


class NobodyListens:
    """A job queue whose every worker is down."""

    def __init__(self):
        self.handed: list[str] = []

    def dispatch(self, generation_id: str) -> None:
        self.handed.append(generation_id)

    def waiting(self, generation_ids: list[str]) -> set[str]:
        return set(self.handed).intersection(generation_ids)

    def shutdown(self, grace: float) -> None:
        return None


def test_a_generation_no_worker_starts_in_time_fails_and_says_so(slack, claude, sqlite_engine):
    from bot.runtime.wiring import build_services

    settings = make_settings(
        slack_api_url=slack.base_url,
        anthropic_base_url=claude.base_url,
        database_url=str(sqlite_engine.url),
    )  # COLDCOPY_STUCK_AFTER as deployed: 180 s (lesson 16)
    services = build_services(settings, engine=sqlite_engine)

    queue = NobodyListens()
    gen_id = accepted_generation(sqlite_engine, services.policy, "orphan")
    clock = ManualClock()  # from now on, time moves when the test says
    assert sweep(services, queue, queued_for=timedelta(0), clock=clock) == 1
    assert queue.handed == [gen_id] and generations(sqlite_engine)[0].status == "queued"
    clock.advance(settings.stuck_after)
    assert sweep(services, queue, clock=clock) == 1 and queue.handed == [gen_id]  # not again
    gen = generations(sqlite_engine)[0]
    assert (gen.status, gen.quota_state) == ("failed", "released")
    assert used(sqlite_engine) == 0
    notice = slack.wait_for("chat.postMessage", count=2)[-1]
    assert "no worker was free" in all_text([notice]) and K.RETRY_ACTION in all_text([notice])


def test_with_every_worker_down_the_user_hears_the_queue_then_the_failure_in_one_thread(
    slack, claude, sqlite_engine
):
    from bot.flows.sweeper import STUCK_NOTICE_FRACTION, Sweeper
    from bot.runtime.wiring import build_services

    clock = ManualClock()
    settings = make_settings(
        slack_api_url=slack.base_url,
        anthropic_base_url=claude.base_url,
        database_url=str(sqlite_engine.url),
    )  # COLDCOPY_STUCK_AFTER as deployed: 180 s, the notice after a sixth of it
    services = build_services(settings, engine=sqlite_engine)
    queue = NobodyListens()
    gen_id = accepted_generation(sqlite_engine, services.policy, "waiting")
    queue.dispatch(gen_id)
    sweeper = Sweeper(services, queue, clock=clock).start()
    try:
        clock.until_waiting()
        clock.advance(sweeper.interval)  # its first pass
        assert slack.calls_to("chat.postMessage") == []  # just accepted: a worker may take it
        clock.advance(settings.stuck_after / STUCK_NOTICE_FRACTION)
        [parent] = slack.calls_to("chat.postMessage")
        assert "Queued: you're next." in all_text([parent])
        assert generations(sqlite_engine)[0].parent_ts is not None
        clock.advance(settings.stuck_after)
    finally:
        sweeper.stop()
    assert generations(sqlite_engine)[0].status == "failed"
    # The failure is told in that same thread: a reply under the parent, which says so too.
    parents = [c for c in slack.calls_to("chat.postMessage") if "thread_ts" not in c.params]
    assert parents == [parent]
    notice = slack.calls_to("chat.postMessage")[-1]
    assert notice.params["thread_ts"] == generations(sqlite_engine)[0].parent_ts
    assert "no worker was free" in all_text([notice]) and K.RETRY_ACTION in all_text([notice])


def test_a_queued_generation_whose_workspace_uninstalled_fails_quietly(slack, claude, engine):
    from bot.flows.generation import run_generation
    from bot.flows.leases import LeaseKeeper
    from bot.runtime.wiring import build_services
    from storage.generations import erase_personal_data

    settings = make_settings(slack_api_url=slack.base_url, anthropic_base_url=claude.base_url)
    services = build_services(settings, engine=engine)
    gen_id = accepted_generation(engine, services.policy, "gone")
    erase_personal_data(engine, "T0001")
    keeper = LeaseKeeper(services.engine, services.settings.lease_seconds)
    try:
        run_generation(services, keeper, gen_id)
    finally:
        keeper.stop()
    gen = generations(engine)[0]
    assert (gen.status, gen.quota_state) == ("failed", "released")
    assert used(engine) == 0
    assert slack.calls_to("chat.postMessage") == []
    assert claude.requests == []


def test_a_generation_waiting_for_a_worker_is_told_its_place_in_the_queue(slack, claude, engine):
    for user in ("U2", "U3"):
        slack.add_user(user)
    clock = ManualClock()  # the pool's announcer passes when the test moves time on
    first = claude.enqueue_sequence(tokens_per_second=250)  # writing while the others wait
    for _ in range(2):
        claude.enqueue_sequence(tokens_per_second=400)
    with serve(slack, claude, engine, job_threads=1, clock=clock) as app:  # a queue forms
        for user in ("U1", "U2", "U3"):
            assert app.submit(open_form(app, slack, user=user), BRIEF, user=user).status == 200
        assert first.started.wait(10) and not first.finished.is_set()
        clock.advance(ANNOUNCE_AFTER.total_seconds() + 10)  # the announcer's pass
        wait_until(lambda: [g.status for g in generations(engine)].count("succeeded") == 3, 60)
    parents = [c for c in slack.calls_to("chat.postMessage") if "thread_ts" not in c.params]
    assert len(parents) == 3  # one thread each: by its worker, or on its turn in the queue
    third = next(c for c in parents if "<@U3>" in all_text([c]))
    assert "Queued: 1 ahead of you." in all_text([third])
    # When the model starts, the same message turns into the writing progress.
    updates = [c for c in slack.calls_to("chat.update") if "<@U3>" in all_text([c])]
    assert "Writing email 1 of 7" in all_text(updates[:1])


@pytest.mark.parametrize("left", ["a reply still streaming", "an email being finished"])
def test_a_takeover_tidies_the_reply_the_dead_process_was_streaming(
    slack, claude, sqlite_engine, left
):
    from slack_sdk import WebClient

    with serve(slack, claude, sqlite_engine) as app:
        gen_id = accepted_generation(sqlite_engine, app.services.policy, "streaming")
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        parent = client.chat_postMessage(channel="C1", text="parent")["ts"]
        posted = []
        for step, email in enumerate(sample_sequence()[:2], 1):
            ts = client.chat_postMessage(channel="C1", thread_ts=parent, text=f"Email {step}")
            posted.append({**email, "step": step, "quality": {}, "ts": ts["ts"]})
        # The dead process had started streaming email 3 into a reply of its own.
        stream = client.chat_startStream(
            channel="C1", thread_ts=parent, recipient_user_id="U1", recipient_team_id="T0001"
        )["ts"]
        client.chat_appendStream(channel="C1", ts=stream, markdown_text="Hi [FirstName], when I")
        if left == "a reply still streaming":
            third = {"step": 3, "stream_ts": stream}
            claude.enqueue_sequence(sample_sequence()[2:])
        else:  # written whole, not yet turned into the formatted reply (an older version)
            third = {**sample_sequence()[2], "step": 3, "ts": None, "stream_ts": stream}
            claude.enqueue_sequence(sample_sequence()[3:])
        with transaction(sqlite_engine) as conn:
            conn.execute(
                update(G)
                .where(G.c.id == gen_id)
                .values(
                    status="running",
                    parent_ts=parent,
                    posted_channel_id="C1",
                    sequence=[*posted, third],
                    lease_owner="elsewhere:1:dead",
                    lease_expires_at=datetime.now(UTC) - timedelta(seconds=1),
                )
            )
        assert sweep(app.services, app.dispatcher) == 1
        wait_until(lambda: generations(sqlite_engine)[0].status == "succeeded")
        replies = [c for c in slack.posts() if c.params.get("thread_ts") == parent]
        # Seven replies, email 3 once and whole: the partial one finished or removed.
        assert len(replies) == 7
        gen = generations(sqlite_engine)[0]
        assert [e["step"] for e in gen.sequence] == [1, 2, 3, 4, 5, 6, 7]
        assert all(e.get("ts") and "stream_ts" not in e for e in gen.sequence)
        # The stream the dead process left is removed; email 3 is in the thread once, whole.
        assert stream in [c.params["ts"] for c in slack.calls_to("chat.delete")]
        assert gen.sequence[2]["ts"] != stream
