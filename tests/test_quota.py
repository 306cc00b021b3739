"""The quota ledger, on SQLite and PostgreSQL: atomic reservations, idempotent commit and
release, safe first touch, period rollover and plan changes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select, update

from storage.db import reading, transaction
from storage.ledger import (
    CommitRefused,
    Delivery,
    DuplicateRequest,
    Reserved,
    commit_generation,
    release_generation,
    reserve_generation,
    withdraw_generation,
)
from storage.models import Generation, GenerationStatus, QuotaState, Workspace
from storage.quota import QuotaExhausted, QuotaPolicy
from storage.tokens import TokenUsage
from storage.usage import user_usage, workspace_usage
from storage.workspaces import month_window

W = Workspace.__table__
G = Generation.__table__


def reserve(engine, policy, team="T1", user="U1", key=None, now=None):
    return reserve_generation(
        engine,
        policy,
        team_id=team,
        user_id=user,
        channel_id="C1",
        idempotency_key=key or f"key-{threading.get_ident()}-{datetime.now().timestamp()}",
        brief={"company": "Acme"},
        model="claude-test",
        now=now,
    )


def used(engine, team="T1") -> int:
    with reading(engine) as conn:
        return conn.execute(select(W.c.used).where(W.c.team_id == team)).scalar_one()


def set_plan(engine, team: str, plan: str) -> None:
    with transaction(engine) as conn:
        conn.execute(update(W).where(W.c.team_id == team).values(plan=plan))


def test_fifty_threads_against_a_quota_of_ten_get_exactly_ten(engine):
    policy = QuotaPolicy(free=10, pro=200)
    barrier = threading.Barrier(50)

    def attempt(i: int):
        barrier.wait()
        return reserve(engine, policy, user=f"U{i}", key=f"view-{i}")

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(attempt, range(50)))

    granted = [r for r in results if isinstance(r, Reserved)]
    refused = [r for r in results if isinstance(r, QuotaExhausted)]
    assert len(granted) == 10
    assert len(refused) == 40
    assert used(engine) == 10
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(G)).scalar_one() == 10
        assert conn.execute(select(func.count()).select_from(W)).scalar_one() == 1


def test_concurrent_first_touch_of_a_new_workspace_makes_one_row(engine, policy):
    barrier = threading.Barrier(20)
    wide = QuotaPolicy(free=100, pro=200)

    def attempt(i: int):
        barrier.wait()
        return reserve(engine, wide, team="TNEW", user=f"U{i}", key=f"first-{i}")

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(attempt, range(20)))

    assert all(isinstance(r, Reserved) for r in results)
    with reading(engine) as conn:
        rows = conn.execute(select(func.count()).select_from(W).where(W.c.team_id == "TNEW"))
        assert rows.scalar_one() == 1
    assert used(engine, "TNEW") == 20


def test_the_first_request_of_a_new_workspace_is_checked_against_the_quota(engine):
    zero = QuotaPolicy(free=0, pro=200)
    result = reserve(engine, zero, team="TZERO")
    assert isinstance(result, QuotaExhausted)
    assert result.limit == 0
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(G)).scalar_one() == 0


def test_exhausted_reports_the_reset_time(engine, policy):
    now = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
    for i in range(3):
        assert isinstance(reserve(engine, policy, key=f"k{i}", now=now), Reserved)
    result = reserve(engine, policy, key="k4", now=now)
    assert isinstance(result, QuotaExhausted)
    assert (result.used, result.limit, result.plan) == (3, 3, "free")
    assert result.resets_at == datetime(2026, 4, 1, tzinfo=UTC)


def test_release_after_failure_restores_exactly_one(engine, policy):
    first = reserve(engine, policy, key="a")
    reserve(engine, policy, key="b")
    assert used(engine) == 2

    assert release_generation(engine, first.generation_id, error="model overloaded") is True
    assert used(engine) == 1
    with reading(engine) as conn:
        row = conn.execute(select(G).where(G.c.id == first.generation_id)).one()
    assert row.status == GenerationStatus.FAILED
    assert row.quota_state == QuotaState.RELEASED
    assert row.error == "model overloaded"


def test_double_release_is_a_no_op(engine, policy):
    first = reserve(engine, policy, key="a")
    reserve(engine, policy, key="b")
    assert release_generation(engine, first.generation_id, error="x") is True
    assert release_generation(engine, first.generation_id, error="x") is False
    assert used(engine) == 1


def test_concurrent_releases_give_back_once(engine, policy):
    first = reserve(engine, policy, key="a")
    reserve(engine, policy, key="b")
    barrier = threading.Barrier(8)

    def attempt(_):
        barrier.wait()
        return release_generation(engine, first.generation_id, error="x")

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count(True) == 1
    assert used(engine) == 1


def test_commit_turns_the_reservation_into_usage_and_is_idempotent(engine, policy):
    reserved = reserve(engine, policy, key="a")
    delivery = Delivery(sequence=[{"step": 1}], model="m", tokens=TokenUsage(input=10, output=20))
    commit_generation(engine, reserved.generation_id, delivery)
    commit_generation(engine, reserved.generation_id, delivery)
    assert used(engine) == 1
    # A committed unit is usage: releasing it afterwards gives nothing back.
    assert release_generation(engine, reserved.generation_id, error="late") is False
    assert used(engine) == 1
    with reading(engine) as conn:
        row = conn.execute(select(G).where(G.c.id == reserved.generation_id)).one()
    assert row.status == GenerationStatus.SUCCEEDED
    assert row.output_tokens == 20


def test_committing_a_released_reservation_is_refused(engine, policy):
    reserved = reserve(engine, policy, key="a")
    release_generation(engine, reserved.generation_id, error="timeout")
    with pytest.raises(CommitRefused):
        commit_generation(engine, reserved.generation_id, Delivery(sequence=[], model="m"))
    assert used(engine) == 0


def test_a_duplicate_idempotency_key_reserves_nothing(engine, policy):
    first = reserve(engine, policy, key="view-1")
    second = reserve(engine, policy, key="view-1")
    assert isinstance(second, DuplicateRequest)
    assert second.generation_id == first.generation_id
    assert used(engine) == 1


def test_withdrawing_a_rate_limited_request_leaves_no_row_and_gives_back(engine, policy):
    reserved = reserve(engine, policy, key="view-1")
    assert withdraw_generation(engine, reserved.generation_id) is True
    assert withdraw_generation(engine, reserved.generation_id) is False
    assert used(engine) == 0
    # The same view can be submitted again later.
    assert isinstance(reserve(engine, policy, key="view-1"), Reserved)


def test_period_rolls_over_at_the_month_boundary(engine, policy):
    with freeze_time("2026-01-31 23:59:59", tz_offset=0):
        for i in range(3):
            assert isinstance(reserve(engine, policy, key=f"jan-{i}"), Reserved)
        exhausted = reserve(engine, policy, key="jan-4")
        assert isinstance(exhausted, QuotaExhausted)
        assert exhausted.resets_at == datetime(2026, 2, 1, tzinfo=UTC)
    with freeze_time("2026-02-01 00:00:00", tz_offset=0):
        fresh = reserve(engine, policy, key="feb-1")
        assert isinstance(fresh, Reserved)
        assert fresh.used == 1
        assert fresh.resets_at == datetime(2026, 3, 1, tzinfo=UTC)


def test_a_january_failure_released_in_february_does_not_free_a_february_unit(engine, policy):
    with freeze_time("2026-01-31 23:59:59", tz_offset=0):
        jan = reserve(engine, policy, key="jan")
    with freeze_time("2026-02-01 00:00:01", tz_offset=0):
        reserve(engine, policy, key="feb")
        release_generation(engine, jan.generation_id, error="crash")
        assert used(engine) == 1


def test_a_plan_change_raises_or_lowers_the_limit_at_once(engine, policy):
    for i in range(3):
        reserve(engine, policy, key=f"k{i}")
    assert isinstance(reserve(engine, policy, key="k3"), QuotaExhausted)

    set_plan(engine, "T1", "pro")
    upgraded = reserve(engine, policy, key="k4")
    assert isinstance(upgraded, Reserved)
    assert upgraded.limit == 200

    set_plan(engine, "T1", "free")
    downgraded = reserve(engine, policy, key="k5")
    assert isinstance(downgraded, QuotaExhausted)
    assert downgraded.limit == 3


def test_an_expired_grace_period_means_the_free_limit(engine, policy):
    reserve(engine, policy, key="k0")
    past = datetime.now(UTC) - timedelta(minutes=1)
    with transaction(engine) as conn:
        conn.execute(update(W).values(plan="pro", grace_until=past))
    for i in range(1, 3):
        reserve(engine, policy, key=f"k{i}")
    assert isinstance(reserve(engine, policy, key="k9"), QuotaExhausted)


def test_usage_for_the_status_view(engine, policy):
    wide = QuotaPolicy(free=10, pro=200)
    a1 = reserve(engine, wide, user="UA", key="a1")
    reserve(engine, wide, user="UA", key="a2")
    b1 = reserve(engine, wide, user="UB", key="b1")
    c1 = reserve(engine, wide, user="UC", key="c1")
    commit_generation(
        engine,
        a1.generation_id,
        Delivery(
            sequence=[],
            model="m",
            tokens=TokenUsage(input=1000, output=2000, cache_read=500, cost_usd=Decimal("0.045")),
        ),
    )
    release_generation(engine, b1.generation_id, error="x")
    del c1

    usage = workspace_usage(engine, wide, "T1")
    assert (usage.plan, usage.used, usage.limit, usage.remaining) == ("free", 3, 10, 7)
    assert usage.in_flight == 2  # a2 and c1 are still queued
    assert usage.per_user == [("UA", 2), ("UC", 1)]
    assert (usage.tokens.input, usage.tokens.output, usage.tokens.cache_read) == (1000, 2000, 500)
    assert str(usage.tokens.cost_usd) == "0.045000"
    assert usage.resets_at == month_window(datetime.now(UTC))[1]

    mine = user_usage(engine, wide, "T1", "UA")
    assert mine.used == 2
    assert mine.workspace.remaining == 7


def test_usage_of_an_unknown_workspace_is_empty_not_an_error(engine, policy):
    usage = workspace_usage(engine, policy, "TUNKNOWN")
    assert (usage.used, usage.limit, usage.in_flight, usage.per_user) == (0, 3, 0, [])


def test_the_quota_peek_for_the_form_matches_what_reserve_would_say(engine):
    from storage.quota import quota_exhausted

    now = datetime(2026, 5, 20, tzinfo=UTC)
    one = QuotaPolicy(free=1, pro=5)
    assert quota_exhausted(engine, one, "TPEEK", now=now) is None  # a new workspace
    assert quota_exhausted(engine, QuotaPolicy(free=0, pro=5), "TPEEK", now=now) is not None
    reserve(engine, one, team="TPEEK", key="p1", now=now)
    exhausted = quota_exhausted(engine, one, "TPEEK", now=now)
    assert exhausted is not None and exhausted.resets_at == datetime(2026, 6, 1, tzinfo=UTC)
    assert isinstance(reserve(engine, one, team="TPEEK", key="p2", now=now), QuotaExhausted)
    # a new month: the form is offered again
    assert quota_exhausted(engine, one, "TPEEK", now=datetime(2026, 6, 1, tzinfo=UTC)) is None
