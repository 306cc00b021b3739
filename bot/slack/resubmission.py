"""A new generation from a stored brief (Try again, Regenerate), through the same rules as a
form (quota, then rate, then de-duplication), answered privately."""

from __future__ import annotations

from slack_bolt import BoltContext, Respond

from bot.domain.limits import RateLimited
from bot.domain.submission import Accepted, Outcome
from bot.slack.account_messages import plain_message, rate_limited_text, upgrade_message
from bot.slack.answers import reply
from bot.slack.block_kit import Message
from bot.slack.services import Services
from bot.writing.brief import BriefErrors
from storage.generations import GenerationRow
from storage.ledger import DuplicateRequest
from storage.quota import QuotaExhausted


def resubmit(
    services: Services,
    gen: GenerationRow,
    context: BoltContext,
    respond: Respond,
    *,
    key: str,
    verb: str = "Trying again",
) -> None:
    outcome = services.submissions.submit(
        team_id=context.team_id,
        user_id=context.user_id,
        channel_id=gen.channel_id,
        fields=gen.brief or {},
        idempotency_key=key,
        enterprise_id=context.enterprise_id,
    )
    message = resubmitted(outcome, services.billing.enabled, verb=verb)
    if message is not None:
        reply(respond, message)


def resubmitted(
    outcome: Outcome, billing_enabled: bool, verb: str = "Trying again"
) -> Message | None:
    if isinstance(outcome, Accepted):
        return plain_message(f":repeat: {verb}: a new thread will appear in a moment.")
    if isinstance(outcome, QuotaExhausted):
        return upgrade_message(outcome, billing_enabled)
    if isinstance(outcome, RateLimited):
        return plain_message(rate_limited_text(outcome.minutes))
    if isinstance(outcome, DuplicateRequest):
        return None  # already asked once; that thread is on its way
    if isinstance(outcome, BriefErrors):
        return plain_message("That brief can't be used any more. Run /coldcopy to start again.")
    return None
