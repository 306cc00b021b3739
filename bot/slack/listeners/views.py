"""The brief form's submission: answered within Slack's 3 seconds, the writing happens later."""

from __future__ import annotations

from slack_bolt import Ack, App, BoltContext

from bot.domain.limits import RateLimited
from bot.domain.submission import Accepted, Submissions
from bot.runtime.jobs import Dispatcher, hand_on
from bot.runtime.wiring import Runtime
from bot.slack import constants as K
from bot.slack.blocks import rate_limited_text
from bot.slack.modal import read_submission, upgrade_view, writing_view
from bot.writing.brief import BRIEF_FIELDS, BriefErrors
from storage.generations import generation_for_key
from storage.ledger import DuplicateRequest, QuotaExhausted

FIRST_BLOCK = BRIEF_FIELDS[0].key


def register(app: App, rt: Runtime, submissions: Submissions, dispatcher: Dispatcher) -> None:
    def submit_brief(ack: Ack, view: dict, context: BoltContext):
        submission = read_submission(view)
        if not submission.channel_id:
            ack(
                response_action="errors",
                errors={K.CHANNEL_BLOCK: "Pick a conversation to post the sequence in."},
            )
            return
        outcome = submissions.submit(
            team_id=context.team_id,
            user_id=context.user_id,
            channel_id=submission.channel_id,
            fields=submission.fields,
            idempotency_key=f"view:{view['id']}",
            enterprise_id=context.enterprise_id,
        )
        ack(**answer(outcome, rt.billing.enabled))

    def start_writing(view: dict):
        # After the answer reached Slack: the thread's parent message says the request is
        # queued, then a worker gets it. A duplicate delivery finds it already done.
        generation_id = generation_for_key(rt.engine, f"view:{view['id']}")
        if generation_id is not None:
            hand_on(rt, dispatcher, generation_id)

    app.view(K.BRIEF_VIEW)(ack=submit_brief, lazy=[start_writing])


def answer(outcome, billing_enabled: bool) -> dict:
    """The view_submission response for each outcome of `Submissions.submit`."""
    if isinstance(outcome, BriefErrors):
        errors = {
            (K.TONE_BLOCK if key == "tone" else key): message
            for key, message in outcome.errors.items()
        }
        return {"response_action": "errors", "errors": errors}
    if isinstance(outcome, QuotaExhausted):
        return {"response_action": "update", "view": upgrade_view(outcome, billing_enabled)}
    if isinstance(outcome, RateLimited):
        # Keep the form (and what they typed) open; the message sits on its first field.
        return {
            "response_action": "errors",
            "errors": {FIRST_BLOCK: rate_limited_text(outcome.minutes)},
        }
    if isinstance(outcome, Accepted):
        return {
            "response_action": "update",
            "view": writing_view(outcome.company, outcome.channel_id),
        }
    if isinstance(outcome, DuplicateRequest):
        # The first delivery already answered and is writing; close the form quietly.
        return {"response_action": "clear"}
    raise TypeError(f"unexpected submission outcome {outcome!r}")
