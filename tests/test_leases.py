"""Leases on generations, on both databases: one claim wins, a live lease is respected, an
expired one is taken over (and the old owner can no longer write), the model's global cap
holds, and a handed-back generation keeps its progress."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from helpers import BRIEF
from sqlalchemy import select

from bot.flows.leases import LeaseKeeper
from storage.db import reading
from storage.generations import (
    BeingAnnounced,
    Claimed,
    ModelsBusy,
    claim_generation,
    end_announcement,
    get_generation,
    hand_back,
    renew_lease,
    save_progress,
    take_announcements,
)
from storage.ledger import reserve_generation
from storage.models import Generation
from testkit.clock import ManualClock


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


def announce(engine, owner: str, **kw):
    kw.setdefault("waited", timedelta(0))
    return take_announcements(engine, owner=owner, lease_seconds=15, limit=50, **kw)


def test_an_announcement_and_a_claim_exclude_each_other(engine, policy):
    gen_id = accepted(engine, policy, "a")
    [taken] = announce(engine, "announcer")
    assert taken.id == gen_id and taken.status == "queued"
    # While its parent message is being posted, a worker is told to come back, not to open
    # a second thread; and no other announcer takes it.
    assert isinstance(claim(engine, gen_id, "worker"), BeingAnnounced)
    assert announce(engine, "other") == []
    assert end_announcement(engine, gen_id, owner="announcer", posted=("C1", "1.5"))
    claimed = claim(engine, gen_id, "worker")
    assert isinstance(claimed, Claimed)
    assert (claimed.generation.posted_channel_id, claimed.generation.parent_ts) == ("C1", "1.5")
    # Announced and running: nothing left to announce.
    assert announce(engine, "announcer") == []


def test_a_claimed_generation_is_never_announced_and_a_stale_announcement_loses(engine, policy):
    running = accepted(engine, policy, "a")
    assert isinstance(claim(engine, running, "worker"), Claimed)
    waiting = accepted(engine, policy, "b")
    assert [g.id for g in announce(engine, "announcer")] == [waiting]
    # The announcer stalled past its lease: a worker takes the generation and opens the
    # thread itself, and the late announcer can record nothing.
    later = datetime.now(UTC) + timedelta(seconds=16)
    assert isinstance(claim(engine, waiting, "worker", now=later), Claimed)
    assert not end_announcement(engine, waiting, owner="announcer", posted=("C1", "9.9"))
    assert get_generation(engine, waiting).parent_ts is None


def test_only_generations_that_waited_long_enough_are_announced_each_once(engine, policy):
    ids = [accepted(engine, policy, key) for key in "abc"]
    assert announce(engine, "early", waited=timedelta(minutes=5)) == []
    with ThreadPoolExecutor(max_workers=6) as pool:
        batches = list(pool.map(lambda n: announce(engine, f"p{n}"), range(6)))
    taken = [g.id for batch in batches for g in batch]
    assert sorted(taken) == sorted(ids)  # every one, by exactly one announcer
    for batch in batches:  # oldest first, so positions are said in order
        assert [g.id for g in batch] == [i for i in ids if i in {g.id for g in batch}]


# --- the lease keeper, on a clock the test moves ----------------------------------------------


def lease_of(engine, gen_id: str):
    G = Generation.__table__
    with reading(engine) as conn:
        return conn.execute(
            select(G.c.lease_owner, G.c.lease_expires_at).where(G.c.id == gen_id)
        ).one()


def test_the_keeper_renews_each_third_of_a_lease_and_stops_a_generation_taken_over(engine, policy):
    clock = ManualClock()
    keeper = LeaseKeeper(engine, lease_seconds=15, clock=clock)
    gen_id = accepted(engine, policy, "a")
    claim_generation(engine, gen_id, owner=keeper.owner, lease_seconds=15, now=clock.now())
    lost = keeper.hold(gen_id)
    keeper.start()
    try:
        clock.until_waiting()
        clock.advance(5)  # a third of the lease: renewed to 15 s from now
        assert lease_of(engine, gen_id).lease_expires_at == clock.now() + timedelta(seconds=15)
        assert not lost.is_set()
        # This process stalled past its lease and another took the generation over: at its
        # next renewal the keeper finds out, and the generation's loop is told to stop.
        later = clock.now() + timedelta(seconds=16)
        assert isinstance(claim(engine, gen_id, "B", now=later), Claimed)
        clock.advance(5)
        assert lost.is_set() and keeper.held() == []
        assert lease_of(engine, gen_id).lease_owner == "B"
    finally:
        keeper.stop()
