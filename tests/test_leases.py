"""Leases on generations, on both databases: one claim wins, a live lease is respected, an
expired one is taken over (and the old owner can no longer write), the model's global cap
holds, and a handed-back generation keeps its progress."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from helpers import BRIEF

from storage.generations import (
    Claimed,
    ModelsBusy,
    claim_generation,
    get_generation,
    hand_back,
    renew_lease,
    save_progress,
)
from storage.ledger import reserve_generation


def accepted(engine, policy, key: str) -> str:
    return reserve_generation(
        engine,
        policy,
        team_id="T1",
        user_id="U1",
        channel_id="C1",
        idempotency_key=key,
        brief=dict(BRIEF, tone="Professional"),
    ).generation_id


def claim(engine, gen_id: str, owner: str, **kw):
    return claim_generation(engine, gen_id, owner=owner, lease_seconds=15, **kw)


def test_twenty_processes_claiming_one_generation_give_it_to_exactly_one(engine, policy):
    gen_id = accepted(engine, policy, "a")
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda n: claim(engine, gen_id, f"p{n}"), range(20)))
    winners = [r for r in results if isinstance(r, Claimed)]
    assert len(winners) == 1 and results.count(None) == 19
    assert winners[0].resumed is False


def test_a_live_lease_is_respected_and_an_expired_one_taken_over(engine, policy):
    gen_id = accepted(engine, policy, "a")
    assert isinstance(claim(engine, gen_id, "A"), Claimed)
    assert claim(engine, gen_id, "B") is None  # A is alive
    later = datetime.now(UTC) + timedelta(seconds=16)  # A stopped renewing
    taken = claim(engine, gen_id, "B", now=later)
    assert isinstance(taken, Claimed) and taken.resumed
    assert taken.generation.takeovers == 1 and taken.generation.lease_owner == "B"
    # A, back from the dead, can neither renew nor record anything.
    assert renew_lease(engine, gen_id, owner="A", lease_seconds=15) is False
    assert save_progress(engine, gen_id, owner="A", emails=[{"step": 1}]) is False
    assert renew_lease(engine, gen_id, owner="B", lease_seconds=15) is True


def test_no_more_generations_write_at_once_than_the_cap(engine, policy):
    first, second = accepted(engine, policy, "a"), accepted(engine, policy, "b")
    assert isinstance(claim(engine, first, "A", running_cap=1), Claimed)
    assert isinstance(claim(engine, second, "A", running_cap=1), ModelsBusy)
    assert get_generation(engine, second).status == "queued"  # it waits, untouched
    later = datetime.now(UTC) + timedelta(seconds=16)  # the first one's process died
    assert isinstance(claim(engine, second, "B", running_cap=1, now=later), Claimed)


def test_a_handed_back_generation_keeps_its_progress_and_resumes(engine, policy):
    gen_id = accepted(engine, policy, "a")
    claim(engine, gen_id, "A")
    assert save_progress(engine, gen_id, owner="A", emails=[{"step": 1, "ts": "1.1"}])
    assert hand_back(engine, gen_id, owner="A")
    gen = get_generation(engine, gen_id)
    assert (gen.status, gen.sequence) == ("queued", [{"step": 1, "ts": "1.1"}])
    again = claim(engine, gen_id, "B")
    assert isinstance(again, Claimed) and again.resumed
    assert again.generation.takeovers == 0  # handed back, not taken over
