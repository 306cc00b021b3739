"""The fast layer: block and modal builders, the submission rules, and the generation's
progress line, tested directly (no HTTP, no fakes, milliseconds each)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from helpers import BRIEF, make_settings
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.domain.limits import RateLimited, RateLimiter
from bot.domain.submission import Accepted, Submissions
from bot.slack import constants as K
from bot.slack.blocks import Progress, email_message, failure_message, parent_message
from bot.slack.modal import brief_view, upgrade_view
from bot.writing.brief import Brief
from bot.writing.prompt import SEQUENCE_LENGTH
from storage.quota import QuotaExhausted, QuotaPolicy
from storage.usage import workspace_usage

FIELDS = dict(BRIEF, tone="Professional")


def valid_blocks(blocks: list[dict]) -> None:
    """slack_sdk's own models accept every block, within Slack's per-message limit."""
    assert len(blocks) <= K.MAX_BLOCKS_PER_MESSAGE
    for block in blocks:
        Block.parse(block).validate_json()


# --- the parent message's progress line -----------------------------------------------------


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (Progress(queued_ahead=3), "Queued: 3 ahead of you."),
        (Progress(queued_ahead=0), "Queued: you're next."),
        (Progress(posted=2), f"Writing email 3 of {SEQUENCE_LENGTH}…"),
        (Progress(posted=2, recovered=True), "Picked up again after an interruption"),
        (Progress(posted=7, finished=True, used=2, limit=3), "7 emails · 2 of 3 used this month"),
        (Progress(posted=2, failed=True), "Incomplete: 2 of 7 emails"),
        (Progress(failed=True), "could not be written. Nothing was counted."),
    ],
)
def test_the_progress_line_says_where_a_generation_stands(progress, expected):
    assert expected in progress.line()


def test_a_finished_parent_offers_export_and_a_waiting_one_does_not():
    brief = Brief(**FIELDS)
    waiting = parent_message(brief, "U1", Progress(queued_ahead=1), "gen-1")
    finished = parent_message(brief, "U1", Progress(posted=7, finished=True), "gen-1")
    valid_blocks(waiting.blocks)
    valid_blocks(finished.blocks)
    assert "actions" not in [b["type"] for b in waiting.blocks]
    assert "actions" in [b["type"] for b in finished.blocks]


def test_a_company_name_at_the_field_limit_still_fits_the_header():
    brief = Brief(**dict(FIELDS, company="N" * 100, job_title="T" * 100))
    header = parent_message(brief, "U1", Progress(), "gen-1").blocks[0]
    assert header["type"] == "header" and len(header["text"]["text"]) <= K.MAX_HEADER_TEXT


def test_an_email_reply_escapes_what_the_model_wrote():
    from bot.writing.quality import assess_email

    class Email:
        day, subject_a, subject_b = 3, "<!channel> hi", "Re: & more"
        body = "Hello <@U123>,\n\nsee *this*."
        quality = assess_email(subject_a, subject_b, body)

    message = email_message(2, Email())
    valid_blocks(message.blocks)
    text = str(message.blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<@U123>" not in text


def test_a_failure_offers_try_again_for_that_generation():
    message = failure_message("Claude is overloaded.", "gen-9")
    valid_blocks(message.blocks)
    button = message.blocks[-1]["elements"][0]
    assert (button["action_id"], button["value"]) == (K.RETRY_ACTION, "gen-9")


# --- the modals ------------------------------------------------------------------------------


def test_the_form_is_prefilled_and_valid():
    view = brief_view(FIELDS, "C42")
    View(**view).validate_json()
    assert len(view["title"]["text"]) <= K.MAX_MODAL_TITLE
    assert FIELDS["company"] in str(view) and "C42" in str(view)


def test_the_upgrade_view_without_billing_sends_people_to_an_admin():
    exhausted = QuotaExhausted(plan="free", used=3, limit=3, resets_at=datetime.now(UTC))
    view = upgrade_view(exhausted, billing_enabled=False)
    View(**view).validate_json()
    assert "Ask a workspace admin" in str(view) and K.UPGRADE_ACTION not in str(view)


# --- the submission rules --------------------------------------------------------------------


def submissions(engine, *, free: int, user_rate: str, handed=None) -> Submissions:
    settings = make_settings(user_rate=user_rate, workspace_rate="1000/hour")
    return Submissions(
        engine=engine,
        policy=QuotaPolicy(free=free, pro=200),
        limiter=RateLimiter.from_settings(settings),  # in memory: no REDIS_URL
        model="m",
        hand_on=(handed if handed is not None else []).append,
    )


def submit(subs: Submissions, key: str):
    return subs.submit(
        team_id="T1", user_id="U1", channel_id="C1", fields=FIELDS, idempotency_key=key
    )


def test_an_exhausted_quota_wins_over_the_rate_limit(sqlite_engine):
    subs = submissions(sqlite_engine, free=1, user_rate="1/minute")
    assert isinstance(submit(subs, "a"), Accepted)
    # Out of quota and over the rate limit at once: the upgrade prompt, not "slow down".
    assert isinstance(submit(subs, "b"), QuotaExhausted)


def test_a_rate_limited_submission_gives_its_unit_back(sqlite_engine):
    subs = submissions(sqlite_engine, free=3, user_rate="1/minute")
    assert isinstance(submit(subs, "a"), Accepted)
    limited = submit(subs, "b")
    assert isinstance(limited, RateLimited) and limited.minutes >= 1
    usage = workspace_usage(sqlite_engine, subs.policy, "T1")
    assert (usage.used, usage.in_flight) == (1, 1)  # only the accepted one holds a unit


def test_only_an_accepted_submission_is_handed_to_a_worker(sqlite_engine):
    handed: list[str] = []
    subs = submissions(sqlite_engine, free=2, user_rate="2/minute", handed=handed)
    accepted = submit(subs, "a")
    assert isinstance(accepted, Accepted) and handed == [accepted.generation_id]
    submit(subs, "a")  # the same form delivered twice
    assert isinstance(submit(subs, "b"), Accepted) and len(handed) == 2
    assert isinstance(submit(subs, "c"), QuotaExhausted)
    assert len(handed) == 2


def test_bad_fields_are_answered_before_any_unit_is_taken(sqlite_engine):
    subs = submissions(sqlite_engine, free=3, user_rate="5/minute")
    outcome = subs.submit(
        team_id="T1",
        user_id="U1",
        channel_id="C1",
        fields=dict(FIELDS, company="   "),
        idempotency_key="x",
    )
    assert "company" in outcome.errors
    assert workspace_usage(sqlite_engine, subs.policy, "T1").used == 0
