"""Rewrites and feedback in the database, on SQLite and PostgreSQL: the cap holds under
concurrency, each rewrite keeps the version it replaced, votes are one per user and email,
and the usage report counts rewrite costs and the period's votes. (Which email a mention
names, and the finished email's blocks, are tests/unit/test_rewrite_requests.py's.)"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.writing.events import SequenceEmail
from storage.feedback import feedback_counts, record_feedback, votes_for
from storage.generations import get_generation, record_thread
from storage.ledger import Delivery, Reserved, commit_generation, reserve_generation
from storage.quota import QuotaPolicy
from storage.retention import erase_expired_briefs, forget_workspace
from storage.rewrites import (
    NotRewritable,
    RewriteCapReached,
    RewriteStarted,
    erase_rewrite_texts,
    fail_rewrite,
    finish_rewrite,
    generation_for_thread,
    record_replies,
    rewrite_history,
    start_rewrite,
)
from storage.tokens import TokenUsage
from storage.usage import workspace_usage
from testkit.fakes.anthropic import sample_sequence

POLICY = QuotaPolicy(free=3, pro=200)


def stored_sequence() -> list[dict]:
    return [
        SequenceEmail.from_dict({**email, "step": step}).as_dict()
        for step, email in enumerate(sample_sequence(), 1)
    ]


def written(engine, key: str = "view-1") -> str:
    reserved = reserve_generation(
        engine,
        POLICY,
        team_id="T1",
        user_id="U1",
        channel_id="C1",
        idempotency_key=key,
        brief={"company": "Acme"},
        model="claude-test",
    )
    assert isinstance(reserved, Reserved)
    commit_generation(
        engine,
        reserved.generation_id,
        Delivery(sequence=stored_sequence(), model="claude-test", tokens=TokenUsage(input=10)),
    )
    return reserved.generation_id


def test_a_rewrite_keeps_the_version_it_replaced_and_the_sequence_holds_the_latest(engine):
    generation_id = written(engine)
    record_replies(engine, generation_id, {3: "1700000000.000300"})
    started = start_rewrite(
        engine,
        generation_id=generation_id,
        team_id="T1",
        step=3,
        user_id="U2",
        change="shorter",
        cap=20,
    )
    assert isinstance(started, RewriteStarted) and started.number == 1
    new = {**stored_sequence()[2], "body": "Short now."}
    tokens = TokenUsage(input=100, output=50, cost_usd=Decimal("0.001050"))
    latest = finish_rewrite(engine, started.rewrite_id, new, model="claude-test", tokens=tokens)
    assert latest["ts"] == "1700000000.000300"  # the reply to update in place
    sequence = get_generation(engine, generation_id).sequence
    assert sequence[2]["body"] == "Short now."
    assert (sequence[2]["edited_by"], sequence[2]["version"]) == ("U2", 2)
    assert sequence[1]["body"] == sample_sequence()[1]["body"]
    (row,) = rewrite_history(engine, generation_id)
    assert row.previous["body"] == sample_sequence()[2]["body"]
    assert (row.status, row.input_tokens, row.output_tokens) == ("succeeded", 100, 50)
    usage = workspace_usage(engine, POLICY, "T1")
    assert usage.tokens.input == 110 and usage.tokens.cost_usd == Decimal("0.001050")
    # On uninstall what users asked for and the replaced text go; the costs stay.
    erase_rewrite_texts(engine, "T1")
    (row,) = rewrite_history(engine, generation_id)
    assert (row.change, row.previous, row.input_tokens) == (None, None, 100)


def test_the_cap_per_sequence_holds_when_rewrites_arrive_at_once(engine):
    generation_id = written(engine)
    barrier = threading.Barrier(12)

    def attempt(i: int):
        barrier.wait()
        return start_rewrite(
            engine,
            generation_id=generation_id,
            team_id="T1",
            step=1 + i % 7,
            user_id=f"U{i}",
            change="warmer",
            cap=5,
        )

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(attempt, range(12)))
    assert sum(isinstance(o, RewriteStarted) for o in outcomes) == 5
    assert sum(isinstance(o, RewriteCapReached) for o in outcomes) == 7
    assert len(rewrite_history(engine, generation_id)) == 5


def test_a_failed_rewrite_changes_nothing_but_its_cost_counts(engine):
    generation_id = written(engine)
    started = start_rewrite(
        engine, generation_id=generation_id, team_id="T1", step=2, user_id="U1", change="x", cap=3
    )
    fail_rewrite(engine, started.rewrite_id, "stream_error", tokens=TokenUsage(input=7))
    assert get_generation(engine, generation_id).sequence == stored_sequence()
    assert workspace_usage(engine, POLICY, "T1").tokens.input == 17


@pytest.mark.parametrize(
    ("step", "team", "reason"),
    [(8, "T1", "emails 1 to 7"), (0, "T1", "emails 1 to 7"), (1, "T2", "no longer available")],
)
def test_a_rewrite_of_an_email_that_is_not_there_is_refused(engine, step, team, reason):
    generation_id = written(engine)
    outcome = start_rewrite(
        engine,
        generation_id=generation_id,
        team_id=team,
        step=step,
        user_id="U1",
        change="x",
        cap=3,
    )
    assert isinstance(outcome, NotRewritable) and reason in outcome.reason


def test_a_sequence_still_being_written_cannot_be_rewritten_yet(engine):
    reserved = reserve_generation(
        engine, POLICY, team_id="T1", user_id="U1", channel_id="C1", idempotency_key="k"
    )
    outcome = start_rewrite(
        engine,
        generation_id=reserved.generation_id,
        team_id="T1",
        step=1,
        user_id="U1",
        change="x",
        cap=3,
    )
    assert isinstance(outcome, NotRewritable) and "still being written" in outcome.reason


def test_a_vote_is_one_per_user_and_email_and_the_last_one_counts(engine):
    generation_id = written(engine)
    votes = ["positive", "negative"] * 10

    def cast(vote: str) -> None:
        record_feedback(
            engine, generation_id=generation_id, team_id="T1", step=1, user_id="U1", vote=vote
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(cast, votes))
    assert list(votes_for(engine, generation_id)) == [(1, "U1")]
    cast("positive")
    record_feedback(
        engine, generation_id=generation_id, team_id="T1", step=2, user_id="U2", vote="negative"
    )
    usage = workspace_usage(engine, POLICY, "T1")
    assert (usage.feedback.positive, usage.feedback.negative) == (1, 1)
    # The votes belong to this period's sequences; the next period starts with none.
    counts = feedback_counts(engine, "T1", usage.resets_at)
    assert (counts.positive, counts.negative) == (0, 0)
    with pytest.raises(ValueError):
        cast("meh")


def test_a_thread_finds_its_generation(engine):
    generation_id = written(engine)
    record_thread(engine, generation_id, "C9", "1700000000.000100")
    assert generation_for_thread(engine, "C9", "1700000000.000100") == generation_id
    assert generation_for_thread(engine, "C9", "1700000000.000999") is None


def test_forgetting_a_workspace_and_the_retention_pass_erase_what_rewrites_were_asked(engine):
    generation_id = written(engine)
    started = start_rewrite(
        engine, generation_id=generation_id, team_id="T1", step=1, user_id="U1", change="x", cap=3
    )
    finish_rewrite(
        engine, started.rewrite_id, stored_sequence()[0], model="m", tokens=TokenUsage(input=5)
    )
    erase_expired_briefs(engine, 30, now=datetime.now(UTC) + timedelta(days=31))
    (row,) = rewrite_history(engine, generation_id)
    assert (row.change, row.previous, row.input_tokens) == (None, None, 5)

    other = written(engine, key="view-2")
    start_rewrite(
        engine, generation_id=other, team_id="T1", step=2, user_id="U1", change="y", cap=3
    )
    forget_workspace(engine, "T1")
    assert [r.change for r in rewrite_history(engine, other)] == [None]
