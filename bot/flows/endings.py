"""Where a generation's user hears from it: its thread, found again in whatever state the
generation is, and the failure ending (the unit given back first, then the user told, with a
Try again button)."""

from __future__ import annotations

import logging

from bot.core.metrics import GENERATIONS
from bot.slack.services import Services
from bot.slack.thread import SequenceThread
from bot.writing.brief import Brief
from bot.writing.events import WriterSummary
from storage.erasure import was_erased
from storage.generations import GenerationRow
from storage.ledger import Delivery, record_usage, release_generation
from storage.models import GenerationStatus

log = logging.getLogger(__name__)

GENERIC_FAILURE = "Something went wrong on our side while writing this sequence."
NOT_COUNTED = " Nothing was counted against your quota."


def thread_for(services: Services, gen: GenerationRow, *, posted: int = 0) -> SequenceThread:
    """The Slack side of `gen`: attached to its parent message when one was posted."""
    thread = SequenceThread(
        services.slack.client(gen.team_id, gen.enterprise_id),
        services.budget,
        services.memberships,
        generation_id=gen.id,
        brief=Brief(**gen.brief),
        user_id=gen.user_id,
        channel_id=gen.channel_id,
        team_id=gen.team_id,
    )
    if gen.parent_ts is not None:
        thread.attach(gen.posted_channel_id or gen.channel_id, gen.parent_ts, posted=posted)
    return thread


def record_spent(services: Services, generation_id: str, usage: WriterSummary | None) -> None:
    """What a model call that did not deliver still cost."""
    if usage is not None:
        record_usage(services.engine, generation_id, Delivery([], usage.model, usage.tokens))


def fail_generation(
    services: Services,
    gen: GenerationRow,
    thread: SequenceThread | None,
    user_message: str,
    reason: str,
    usage: WriterSummary | None,
) -> None:
    """Give the unit back first (the user must never pay for a failure), then tell them."""
    released = release_generation(services.engine, gen.id, error=reason)
    record_spent(services, gen.id, usage)
    if released:
        GENERATIONS.labels(status=GenerationStatus.FAILED).inc()
    elif was_erased(services.engine, gen.id):
        # Its workspace was erased: no notice (its token is gone, and so is its brief).
        if thread is not None:
            thread.abandon()
        return
    try:
        if thread is None:
            thread = thread_for(services, gen, posted=len(gen.sequence or []))
        thread.fail(user_message + NOT_COUNTED)
    except Exception as exc:  # the failure notice itself could not be posted
        log.error(
            "could not tell the user about a failure: %s",
            exc,
            extra={"generation_id": gen.id},
        )
