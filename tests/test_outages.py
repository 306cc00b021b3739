"""The generation runtime under load and outages, with real processes: Redis down for the
whole flow, the database cut mid-generation, and forty people submitting at once."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import BRIEF, email_steps, make_settings
from sqlalchemy import func, select

from bot.slack.modal import brief_view
from storage.db import SQLITE_BUSY_TIMEOUT_MS, make_engine, reading
from storage.ledger import reserve_generation
from storage.migrate import upgrade
from storage.models import Generation, Workspace
from testkit.fakes.anthropic import FakeAnthropic, SequenceReply, sample_sequence, sequence_json
from testkit.fakes.slack import FakeSlack
from testkit.fakes.tcp_proxy import TCPProxy
from testkit.harness import ServedApp
from testkit.processes import Processes, coldcopy_env, free_port
from testkit.waiting import wait_until

G = Generation.__table__
W = Workspace.__table__


def submit(client, view_id: str, *, user: str = "U1", team: str = "T0001") -> dict:
    client.team_id = team
    view = brief_view(None, "C1")
    view["id"] = view_id
    return client.submit(view, BRIEF, user=user, view_id=view_id).json()


def statuses(engine) -> list[str]:
    with reading(engine) as conn:
        return list(conn.execute(select(G.c.status)).scalars())


def test_with_redis_down_the_whole_time_submissions_are_written_and_delivered(
    postgres_url, tmp_path
):
    with FakeSlack() as slack, FakeAnthropic() as claude:
        slack.add_user("U1")
        claude.default_reply = SequenceReply(tool_input=sequence_json(sample_sequence())[0])
        engine = make_engine(postgres_url)
        upgrade(engine)
        dead_redis = f"redis://127.0.0.1:{free_port()}/0"
        env = coldcopy_env(
            slack,
            claude,
            postgres_url,
            REDIS_URL=dead_redis,
            COLDCOPY_FREE_QUOTA="2",
            COLDCOPY_WORKER_METRICS_PORT="0",
        )
        procs = Processes(env, tmp_path, slack)
        try:
            server = procs.serve("serve-1")
            procs.start("worker", name="worker-1")
            answers = [submit(server, f"V{n}") for n in range(3)]
            assert ["Writing your sequence" in str(a) for a in answers] == [True, True, False]
            assert "used all" in str(answers[2])  # the quota, in the database, still holds
            wait_until(lambda: statuses(engine) == ["succeeded"] * 2, timeout=60)
            assert sorted(email_steps(slack)) == sorted([*range(1, 8)] * 2)
            with reading(engine) as conn:
                assert conn.execute(select(W.c.used)).scalar_one() == 2
        finally:
            procs.stop_all()
            engine.dispose()


@pytest.mark.parametrize("mode", ["embedded", "scale-out"])
def test_a_database_restart_mid_generation_is_ridden_out(postgres_url, redis_url, tmp_path, mode):
    with FakeSlack() as slack, FakeAnthropic() as claude, TCPProxy(5432) as proxy:
        slack.add_user("U1")
        engine = make_engine(postgres_url)
        upgrade(engine)
        # Every coldcopy process reaches PostgreSQL through the proxy; the test does not.
        through_proxy = postgres_url.replace(":5432/", f":{proxy.port}/")
        extra = {"COLDCOPY_WORKER_METRICS_PORT": "0"}
        if mode == "scale-out":
            extra["REDIS_URL"] = redis_url
        procs = Processes(coldcopy_env(slack, claude, through_proxy, **extra), tmp_path, slack)
        try:
            claude.enqueue_sequence(tokens_per_second=150)
            claude.default_reply = SequenceReply(tool_input=sequence_json(sample_sequence()[2:])[0])
            server = procs.serve("serve-1")
            if mode == "scale-out":
                procs.start("worker", name="worker-1")
            assert "Writing your sequence" in str(submit(server, "VPG"))
            wait_until(lambda: len(email_steps(slack)) >= 2, timeout=30)
            proxy.outage(3)  # every connection dropped, new ones refused for 3 s
            wait_until(lambda: statuses(engine) == ["succeeded"], timeout=90)
            assert sorted(email_steps(slack)) == [1, 2, 3, 4, 5, 6, 7]
            with reading(engine) as conn:
                assert conn.execute(select(W.c.used)).scalar_one() == 1
        finally:
            procs.stop_all()
            engine.dispose()


def test_forty_people_at_once_are_written_side_by_side(sqlite_engine):
    with FakeSlack() as slack, FakeAnthropic() as claude:
        for n in range(40):
            slack.add_user(f"U{n}")
        # Each sequence streams for about two seconds.
        claude.default_reply = SequenceReply(
            tool_input=sequence_json(sample_sequence())[0], tokens_per_second=1000
        )
        settings = make_settings(
            slack_api_url=slack.base_url,
            anthropic_base_url=claude.base_url,
            database_url=str(sqlite_engine.url),
        )
        peak = 0
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                with reading(sqlite_engine) as conn:
                    running = conn.execute(
                        select(func.count()).select_from(G).where(G.c.status == "running")
                    ).scalar_one()
                peak = max(peak, running)
                done.wait(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        with ServedApp(settings, sqlite_engine, slack=slack) as app:
            watcher.start()
            with ThreadPoolExecutor(max_workers=40) as pool:
                answers = list(
                    pool.map(
                        lambda n: submit(app, f"V{n}", user=f"U{n}", team=f"T{n:02d}"), range(40)
                    )
                )
            assert all("Writing your sequence" in str(a) for a in answers)
            wait_until(lambda: statuses(sqlite_engine) == ["succeeded"] * 40, timeout=120)
            done.set()
        # Sixteen at once by default, not one after another.
        assert peak >= 12
        assert len(email_steps(slack)) == 40 * 7


def test_a_job_whose_claim_finds_the_database_locked_runs_again(
    make_app, claude, sqlite_engine, caplog
):
    # Under a burst, SQLite's write lock can outlast its busy timeout: the claim fails with
    # "database is locked". The job must come back, not be dropped until the sweeper notices.
    app = make_app()
    claude.enqueue_sequence()
    reserved = reserve_generation(
        sqlite_engine,
        app.services.policy,
        team_id=app.team_id,
        user_id="U1",
        channel_id="C1",
        idempotency_key="locked-claim",
        brief=dict(BRIEF),
    )
    locker = sqlite3.connect(sqlite_engine.url.database, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the lock past the busy timeout
    try:
        app.dispatcher.dispatch(reserved.generation_id)
        wait_until(
            lambda: any("database unavailable" in r.getMessage() for r in caplog.records),
            timeout=SQLITE_BUSY_TIMEOUT_MS / 1000 + 20,
        )
    finally:
        locker.rollback()
        locker.close()
    wait_until(lambda: status_of(sqlite_engine, reserved.generation_id) == "succeeded", timeout=60)


def status_of(engine, generation_id: str) -> str:
    with reading(engine) as conn:
        return conn.execute(select(G.c.status).where(G.c.id == generation_id)).scalar_one()
