"""Writing leads' openings: one model call per lead with the list's cached prefix, the answer
checked (bot/writing/personal_answer.py), asked once more when it can't be used, and a lead
whose answers both fail left for review rather than filled with a line we can't stand behind.

A list's leads are written on one asyncio event loop (`Openings`): one async client and one
task per lead in flight, instead of one thread per model slot, so a 5,000-lead list at the
whole model cap costs a few coroutines, not fifty threads with their stacks and malloc arenas.
The same code serves the lead-list job and `coldcopy personalise`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from types import TracebackType

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


class Openings:
    """Writes lead openings on the running event loop, any number at once. Open it with
    `async with` inside the loop that uses it: the client's connections belong to that loop."""

    def __init__(self, client: anthropic.AsyncAnthropic, model: str, timeout: float):
        self._client = client
        self.model = model
        self.timeout = timeout

    async def __aenter__(self) -> Openings:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.close()

    async def write(self, prefix: ListPrefix, lead: Lead) -> OpeningWritten:
        """Ask for the lead's opening; raises WriterError when the model can't be reached or
        an answer takes longer than the writer's timeout (a whole answer, not one read)."""
        tokens = TokenUsage()
        cache = "not cached"
        reasons: tuple[str, ...] = ()
        request = build_opening_request(prefix, lead, model=self.model)
        for _ in range(ATTEMPTS):
            try:
                async with asyncio.timeout(self.timeout):
                    async with self._client.messages.stream(**request) as stream:
                        message = await stream.get_final_message()
            except TimeoutError:
                raise WriterError("timeout", "the Anthropic API did not answer in time") from None
            except anthropic.APIError as exc:
                raise _request_failure(exc) from exc
            usage = message.usage
            tokens += priced(
                self.model,
                input=usage.input_tokens,
                output=usage.output_tokens,
                cache_write=usage.cache_creation_input_tokens or 0,
                cache_read=usage.cache_read_input_tokens or 0,
            )
            cache = cache_outcome(usage)
            answer = check_opening(tool_input_of(message.content), lead, prefix)
            if isinstance(answer, PersonalOpening):
                return OpeningWritten(answer, tokens, self.model, cache)
            reasons = answer.reasons
            log.info("an opening was rejected: %s", "; ".join(reasons))
        return OpeningWritten(None, tokens, self.model, cache, reasons)


__all__ = ["OpeningRejected", "OpeningWritten", "Openings", "WriterError"]
