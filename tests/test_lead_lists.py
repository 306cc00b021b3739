"""Lead lists in the database, on both backends: their own monthly allowance (reserved for the
whole list by one conditional UPDATE, what was not written given back), a lease another
process takes over, each lead saved once, and a bounded share of the model cap."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from helpers import make_settings
from sqlalchemy import select

from bot.domain.lead_lists import LeadLists, ListRequest
from bot.domain.limits import RateLimited, RateLimiter
from storage.db import transaction
from storage.generations import Claimed, ModelsBusy, claim_generation
from storage.lead_leases import (
    ListClaimed,
    ListsBusy,
    claim_delivery,
    claim_lead_list,
    list_owners,
    mark_delivered,
    orphaned_lead_lists,
    renew_list_lease,
    resize_list_slots,
)
from storage.lead_lists import (
    LeadPolicy,
    LeadsExhausted,
    LeadsReserved,
    create_lead_list,
    finish_lead_list,
    get_lead_list,
    is_cancelled,
    leads_standing,
    request_cancel,
    withdraw_lead_list,
)
from storage.lead_models import LeadListJob, LeadListStatus
from storage.lead_results import LeadAnswer, count_written, lead_usage, save_answer, saved_answers
from storage.ledger import reserve_generation
from storage.models import utcnow
from storage.quota import QuotaPolicy
from storage.retention import forget_workspace
from storage.tokens import TokenUsage

POLICY = LeadPolicy(free=25, pro=2000)


def a_generation(engine, team="T1") -> str:
    reserved = reserve_generation(
        engine,
        QuotaPolicy(free=3, pro=200),
        team_id=team,
        user_id="U1",
        channel_id="C1",
        idempotency_key=f"k-{team}-{utcnow().timestamp()}",
    )
    return reserved.generation_id


def new_list(engine, generation_id: str, leads: int, key: str, team="T1"):
    return create_lead_list(
        engine,
        POLICY,
        team_id=team,
        user_id="U1",
        generation_id=generation_id,
        leads=leads,
        source=b"email\na@example.com\n",
        filename="leads.csv",
        idempotency_key=key,
    )


def test_a_list_reserves_all_its_leads_at_once_and_a_list_past_the_month_is_refused(engine):
    gen = a_generation(engine)
    first = new_list(engine, gen, 20, "a")
    assert isinstance(first, LeadsReserved) and first.used == 20 and first.limit == 25
    refused = new_list(engine, gen, 6, "b")
    assert isinstance(refused, LeadsExhausted)
    assert (refused.used, refused.limit, refused.asked) == (20, 25, 6)
    assert isinstance(new_list(engine, gen, 5, "c"), LeadsReserved)
    assert leads_standing(engine, POLICY, "T1")[1:] == (25, 25)


def test_two_lists_at_once_never_both_take_the_last_leads(engine):
    gen = a_generation(engine)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: new_list(engine, gen, 10, f"k{n}"), range(8)))
    assert sum(isinstance(r, LeadsReserved) for r in results) == 2
    assert leads_standing(engine, POLICY, "T1")[1] == 20


def test_the_same_request_twice_is_one_list(engine):
    gen = a_generation(engine)
    one = new_list(engine, gen, 10, "same")
    two = new_list(engine, gen, 10, "same")
    assert one.list_id == two.list_id
    assert leads_standing(engine, POLICY, "T1")[1] == 10


def test_a_withdrawn_list_gives_every_lead_back(engine):
    gen = a_generation(engine)
    made = new_list(engine, gen, 10, "w")
    assert withdraw_lead_list(engine, made.list_id)
    assert leads_standing(engine, POLICY, "T1")[1] == 0


def test_a_lead_is_saved_and_billed_once_and_the_rest_goes_back_at_the_end(engine):
    gen = a_generation(engine)
    made = new_list(engine, gen, 10, "e")
    tokens = TokenUsage(100, 40, 0, 900, cost_usd=__import__("decimal").Decimal("0.001"))
    answer = LeadAnswer(0, "a@example.com", "Saw your post.", "Hi", False, "m", tokens)
    assert save_answer(engine, made.list_id, "T1", answer)
    assert not save_answer(engine, made.list_id, "T1", answer)  # a second write is a no-op
    save_answer(engine, made.list_id, "T1", LeadAnswer(1, "b@example.com", None, None, True))
    assert count_written(engine, made.list_id) == 2
    assert request_cancel(engine, made.list_id)
    assert finish_lead_list(engine, made.list_id, status=LeadListStatus.CANCELLED) == 2
    assert finish_lead_list(engine, made.list_id, status=LeadListStatus.FAILED) is None
    assert leads_standing(engine, POLICY, "T1")[1] == 2  # 8 of the 10 given back, once
    written, usage = lead_usage(engine, "T1", utcnow() - timedelta(days=1))
    assert written == 2 and usage.cache_read == 900 and usage.input == 100


def test_a_dead_process_s_list_is_taken_over_when_its_lease_runs_out(engine):
    gen = a_generation(engine)
    made = new_list(engine, gen, 10, "t")
    now = utcnow()
    claim = dict(lease_seconds=15, model_cap=64, share=0.8)
    first = claim_lead_list(engine, made.list_id, owner="a", now=now, **claim)
    assert isinstance(first, ListClaimed) and not first.resumed and first.lead_list.slots == 51
    assert claim_lead_list(engine, made.list_id, owner="b", now=now, **claim) is None
    assert renew_list_lease(engine, made.list_id, owner="a", lease_seconds=15, now=now)
    later = now + timedelta(seconds=16)
    taken = claim_lead_list(engine, made.list_id, owner="b", now=later, **claim)
    assert isinstance(taken, ListClaimed) and taken.resumed and taken.lead_list.takeovers == 1
    assert not renew_list_lease(engine, made.list_id, owner="a", lease_seconds=15, now=later)


def test_a_succeeded_list_s_files_are_delivered_by_one_process_and_owed_until_they_are(engine):
    gen = a_generation(engine)
    made = new_list(engine, gen, 5, "d")
    now = utcnow()
    claim_lead_list(engine, made.list_id, owner="a", lease_seconds=15, model_cap=10, share=0.8)
    assert finish_lead_list(engine, made.list_id, status=LeadListStatus.SUCCEEDED) == 0
    # Finished but not delivered: the sweeper hands it on, and only one process may post.
    assert orphaned_lead_lists(engine, now=now) == [made.list_id]
    with ThreadPoolExecutor(8) as pool:
        won = list(
            pool.map(
                lambda n: claim_delivery(
                    engine, made.list_id, owner=f"p{n}", lease_seconds=15, now=now
                ),
                range(8),
            )
        )
    assert won.count(True) == 1
    holder = f"p{won.index(True)}"
    assert orphaned_lead_lists(engine, now=now) == []  # being delivered
    assert list_owners(engine) == [holder]
    # The holder died while posting: once its lease runs out another process delivers.
    later = now + timedelta(seconds=16)
    assert orphaned_lead_lists(engine, now=later) == [made.list_id]
    assert claim_delivery(engine, made.list_id, owner="b", lease_seconds=15, now=later)
    assert not mark_delivered(engine, made.list_id, owner=holder)  # too late: not its own
    assert mark_delivered(engine, made.list_id, owner="b")
    assert get_lead_list(engine, made.list_id).delivered_at is not None
    far = later + timedelta(hours=1)
    assert not claim_delivery(engine, made.list_id, owner="c", lease_seconds=15, now=far)
    assert orphaned_lead_lists(engine, now=far) == []


def test_a_cancelled_list_owes_no_delivery(engine):
    gen = a_generation(engine)
    made = new_list(engine, gen, 5, "x")
    assert finish_lead_list(engine, made.list_id, status=LeadListStatus.CANCELLED) == 0
    assert not claim_delivery(engine, made.list_id, owner="a", lease_seconds=15)
    assert orphaned_lead_lists(engine) == []


def test_lists_share_at_most_their_part_of_the_model_cap(engine):
    gen = a_generation(engine)
    one = new_list(engine, gen, 5, "s1")
    two = new_list(engine, gen, 5, "s2")
    claim = dict(lease_seconds=15, model_cap=10, share=0.8)
    assert claim_lead_list(engine, one.list_id, owner="a", **claim).lead_list.slots == 8
    assert isinstance(claim_lead_list(engine, two.list_id, owner="a", **claim), ListsBusy)
    with transaction(engine) as conn:
        status = conn.execute(
            select(LeadListJob.__table__.c.status).where(LeadListJob.__table__.c.id == two.list_id)
        ).scalar_one()
    assert status == LeadListStatus.QUEUED


def test_a_sequence_started_during_a_list_finds_a_model_slot_and_the_list_s_share_counts(engine):
    gen = a_generation(engine)
    made = new_list(engine, gen, 5, "g")
    claim = dict(lease_seconds=15, model_cap=10, share=0.8)
    assert claim_lead_list(engine, made.list_id, owner="a", **claim).lead_list.slots == 8
    ids = [a_generation(engine, team=f"T{n}") for n in range(3)]
    claimed = [
        claim_generation(engine, g, owner="b", lease_seconds=15, running_cap=10) for g in ids
    ]
    assert isinstance(claimed[0], Claimed) and isinstance(claimed[1], Claimed)
    assert isinstance(claimed[2], ModelsBusy)  # 8 list slots + 2 sequences = the cap


def test_a_list_gives_model_slots_back_while_sequences_wait_for_one(engine):
    gen = a_generation(engine)
    made = new_list(engine, gen, 5, "r")
    claim = dict(model_cap=10, share=0.8)
    assert claim_lead_list(engine, made.list_id, owner="a", lease_seconds=15, **claim)
    assert resize_list_slots(engine, made.list_id, owner="a", **claim) == 8
    for n in range(4):
        a_generation(engine, team=f"W{n}")  # queued: waiting for a model slot
    # 10 - the 5 queued (the list's own sequence row here is still queued too)
    assert resize_list_slots(engine, made.list_id, owner="a", **claim) == 5
    assert resize_list_slots(engine, made.list_id, owner="b", **claim) is None


def test_forgetting_a_workspace_erases_its_prospects_and_refuses_late_writers(engine):
    gen = a_generation(engine)
    made = new_list(engine, gen, 5, "f")
    save_answer(engine, made.list_id, "T1", LeadAnswer(0, "a@example.com", "Hi there.", "S", False))
    assert forget_workspace(engine, "T1") is not None
    (kept,) = saved_answers(engine, made.list_id).values()
    assert (kept.email, kept.opening, kept.subject_a) == ("", None, None)
    # A process still running the list writes nothing back, and the list is asked to stop.
    late = LeadAnswer(1, "b@example.com", "Hello.", "S", False)
    assert not save_answer(engine, made.list_id, "T1", late)
    assert is_cancelled(engine, made.list_id)
    assert get_lead_list(engine, made.list_id, with_source=True).source is None


def test_leads_first_then_the_rate_limit_and_a_refused_list_gives_its_leads_back(engine):
    gen = a_generation(engine)
    limiter = RateLimiter.from_settings(make_settings(user_rate="1/hour"), None)
    handed: list[str] = []
    lists = LeadLists(engine=engine, policy=POLICY, limiter=limiter, hand_on=handed.append)

    def start(leads: int, key: str):
        return lists.start(ListRequest("T1", "U1", gen, leads, b"email\n", "l.csv", key))

    first = start(10, "one")
    assert isinstance(first, LeadsReserved) and handed == [first.list_id]
    assert isinstance(start(10, "two"), RateLimited)  # the user's rate: its leads go back
    assert leads_standing(engine, POLICY, "T1")[1] == 10
    assert isinstance(start(20, "three"), LeadsExhausted)  # out of leads wins over the rate
    assert isinstance(start(10, "one"), LeadsReserved)  # the same request again: its list
    assert handed == [first.list_id, first.list_id]
