"""Writing one lead's opening: one model call with the list's cached prefix, the answer checked
(bot/writing/personal_answer.py), asked once more when it can't be used, and a lead whose
answers both fail left for review rather than filled with a line we can't stand behind.

The same code serves the lead-list job and `coldcopy personalise`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anthropic

from bot.writing.events import WriterError
from bot.writing.lead_list import Lead
from bot.writing.model_stream import _request_failure
from bot.writing.personal_answer import check_opening, tool_input_of
from bot.writing.personal_prompt import (
    ListPrefix,
    OpeningRejected,
    PersonalOpening,
    build_opening_request,
    cache_outcome,
)
from bot.writing.pricing import priced
from storage.tokens import TokenUsage

log = logging.getLogger(__name__)

# A rejected answer is asked for once more; a second rejection leaves the lead for review.
ATTEMPTS = 2


@dataclass(frozen=True)
class OpeningWritten:
    """One lead's outcome: its opening (None: both answers were unusable, review it), what
    the calls cost, and whether the prefix was read from the cache."""

    opening: PersonalOpening | None
    tokens: TokenUsage
    model: str
    cache: str
    rejected: tuple[str, ...] = ()


def write_opening(
    client: anthropic.Anthropic, model: str, prefix: ListPrefix, lead: Lead
) -> OpeningWritten:
    """Ask for the lead's opening; raises WriterError when the model can't be reached."""
    tokens = TokenUsage()
    cache = "not cached"
    reasons: tuple[str, ...] = ()
    request = build_opening_request(prefix, lead, model=model)
    for _ in range(ATTEMPTS):
        try:
            with client.messages.stream(**request) as stream:
                message = stream.get_final_message()
        except anthropic.APIError as exc:
            raise _request_failure(exc) from exc
        usage = message.usage
        tokens += priced(
            model,
            input=usage.input_tokens,
            output=usage.output_tokens,
            cache_write=usage.cache_creation_input_tokens or 0,
            cache_read=usage.cache_read_input_tokens or 0,
        )
        cache = cache_outcome(usage)
        answer = check_opening(tool_input_of(message.content), lead, prefix)
        if isinstance(answer, PersonalOpening):
            return OpeningWritten(answer, tokens, model, cache)
        reasons = answer.reasons
        log.info("an opening was rejected: %s", "; ".join(reasons))
    return OpeningWritten(None, tokens, model, cache, reasons)


__all__ = ["OpeningRejected", "OpeningWritten", "WriterError", "write_opening"]
