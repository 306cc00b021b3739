"""The PostgreSQL job queue as serve uses it: a defer runs on the process's own pooled
connection (no pool of the queue's own), a generation has one waiting job however often it is
handed on, and the sweeper asks the queue about every queued generation in one query, handing
on only those whose job is missing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import BRIEF, make_settings
from sqlalchemy import text

from bot.flows.sweeper import sweep
from bot.runtime.queue import QueueDispatcher
from bot.runtime.wiring import build_services
from storage.db import make_engine, reading
from storage.drafts import claim_draft
from storage.ledger import reserve_generation
from storage.migrate import upgrade
from storage.quota import QuotaPolicy


@pytest.fixture
def pg(postgres_url):
    engine = make_engine(postgres_url, pool_size=4)
    upgrade(engine)
    yield engine
    engine.dispose()


def accepted(engine, key: str) -> str:
    return reserve_generation(
        engine,
        QuotaPolicy(free=10, pro=10),
        team_id="T1",
        user_id="U1",
        channel_id="C1",
        idempotency_key=key,
        brief=dict(BRIEF, tone="Professional"),
    ).generation_id


def jobs(engine) -> list[tuple[str, str, bool]]:
    """(generation id, status, scheduled in the future) of every job."""
    with reading(engine) as conn:
        rows = conn.execute(
            text(
                "SELECT args->>'generation_id', status, "
                "coalesce(scheduled_at > now(), false) FROM procrastinate_jobs ORDER BY id"
            )
        ).all()
    return [tuple(row) for row in rows]


def backends(engine) -> int:
    with reading(engine) as conn:
        return conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        ).scalar_one()


def test_a_generation_waits_in_the_queue_once_and_the_queue_opens_no_pool(pg, postgres_url):
    services = build_services(make_settings(database_url=postgres_url), engine=pg)
    before = backends(pg)
    dispatcher = QueueDispatcher(services.settings, services.engine)
    first, second, third = (accepted(pg, key) for key in "abc")
    dispatcher.dispatch(first)
    dispatcher.dispatch(first)  # handed on twice while it waits: still one job
    dispatcher.dispatch(second, delay=15)  # the model asked us to wait
    assert jobs(pg) == [(first, "todo", False), (second, "todo", True)]
    assert dispatcher.waiting([first, second, third]) == {first, second}
    assert dispatcher.waiting([]) == set()
    # Every query above ran on the engine's own pool: the queue added no connections.
    assert backends(pg) <= before + 1


def test_the_sweeper_hands_on_only_queued_generations_whose_job_is_missing(pg, postgres_url):
    services = build_services(make_settings(database_url=postgres_url), engine=pg)
    dispatcher = QueueDispatcher(services.settings, services.engine)
    waiting, lost = accepted(pg, "a"), accepted(pg, "b")
    dispatcher.dispatch(waiting)  # `lost`'s process died before it handed it on
    assert sweep(services, dispatcher, queued_for=timedelta(0)) == 1
    assert sorted(jobs(pg)) == sorted([(waiting, "todo", False), (lost, "todo", False)])
    assert sweep(services, dispatcher, queued_for=timedelta(0)) == 0  # both wait now


def test_a_draft_job_waits_in_the_queue_once_however_often_it_is_handed_on(pg, postgres_url):
    services = build_services(make_settings(database_url=postgres_url), engine=pg)
    dispatcher = QueueDispatcher(services.settings, services.engine)
    generation_id = accepted(pg, "a")
    draft, claimed = claim_draft(pg, generation_id, "T1", "instantly", "U1", timezone="UTC")
    assert claimed
    # What serve does in the scale-out mode: the draft goes to the queue `coldcopy worker` runs.
    services.work.hand_drafts_to(dispatcher.queue.defer_draft)
    services.work.send_draft(draft.id)
    services.work.send_draft(draft.id)
    with reading(pg) as conn:
        rows = conn.execute(
            text("SELECT task_name, args->>'draft_id', status FROM procrastinate_jobs")
        ).all()
    assert [tuple(r) for r in rows] == [("coldcopy.create_draft", draft.id, "todo")]
