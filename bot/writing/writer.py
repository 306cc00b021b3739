"""The writer: asks Claude for a 7-email sequence (or to rewrite one email of it) and hands on
each email's body as it is written and each email the moment it is complete.

`Writer.write_sequence(brief)` yields `BodyDelta`s while an email's body is being written,
`SequenceEmail`s in send order, then one `WriterSummary` (tokens, cost, model).
`Writer.rewrite_email(...)` yields the same events for one email. Any failure raises
`WriterError` (bot/writing/events.py). Nothing here knows about Slack.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

import anthropic

from bot.core.metrics import MODEL_TOKENS
from bot.core.settings import DEFAULT_MODEL, Settings
from bot.writing.brief import Brief
from bot.writing.events import BodyDelta, SequenceEmail, WriterError, WriterSummary
from bot.writing.model_stream import ModelStream, skip_abandoned_attempts
from bot.writing.personal_writer import Openings
from bot.writing.pricing import priced
from bot.writing.prompt import (
    REWRITE_TOOL_NAME,
    TOOL_NAME,
    Email,
    build_request,
    build_rewrite_request,
)
from bot.writing.quality import assess_email
from bot.writing.stream_parser import RewriteParser, SequenceParser, email_fields

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
# The SDK retries 408, 409, 429, 5xx and 529 itself, with backoff that honours retry-after.
DEFAULT_MAX_RETRIES = 3


class Writer:
    """Writes sequences with one Anthropic client; safe to share between job threads."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        timeout: float = 90.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ):
        self.model = model
        self.timeout = timeout
        # Without a key the SDK would go looking in the environment and profile files;
        # configuration is read once in bot/config.py, so a missing key is a config error here.
        self._client: anthropic.Anthropic | None = None
        if api_key:
            self._client = anthropic.Anthropic(
                api_key=api_key,
                base_url=base_url,
                # Each read may take the whole budget; the budget itself is enforced over
                # the whole answer by `ModelStream`, which per-read timeouts cannot do.
                timeout=anthropic.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
                max_retries=max_retries,
                middleware=[skip_abandoned_attempts],
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Writer:
        return cls(
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            model=settings.model,
            timeout=settings.model_timeout,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write_sequence(
        self,
        brief: Brief,
        written: Sequence[dict] = (),
        *,
        stop: threading.Event | None = None,
    ) -> Iterator[BodyDelta | SequenceEmail | WriterSummary]:
        """Yield body deltas while each email is written, the 7 emails in send order as each
        one completes, then a `WriterSummary`.

        `written` holds emails already sent (a generation resumed after a crash, as
        `SequenceEmail.as_dict()`): the model sees them and writes only the rest, which are
        yielded with their steps after them.

        Raises `WriterError`; emails already yielded stay yielded, but the summary only ever
        follows a complete, valid sequence, so a consumer that waits for it never presents
        a half-written thread as finished. Once `stop` is set it raises `WriterStopped`, even
        while the model is silent.
        """
        sent = [Email.model_validate(email_fields(email)) for email in written]
        yield from self._answer(
            brief,
            lambda: build_request(brief, model=self.model, written=sent),
            SequenceParser(sent),
            TOOL_NAME,
            stop,
        )

    def rewrite_email(
        self,
        brief: Brief,
        sequence: list[SequenceEmail],
        step: int,
        change: str,
        *,
        stop: threading.Event | None = None,
    ) -> Iterator[BodyDelta | SequenceEmail | WriterSummary]:
        """Rewrite email `step` of `sequence` as `change` asks, the other emails as context.

        Yields body deltas, the rewritten email (same step and send day, notes computed
        afresh), then a `WriterSummary`; raises `WriterError` like `write_sequence`.
        """
        day = sequence[step - 1].day
        others = [email.as_dict() for email in sequence]
        yield from self._answer(
            brief,
            lambda: build_rewrite_request(brief, others, step, change, model=self.model),
            RewriteParser(step, day),
            REWRITE_TOOL_NAME,
            stop,
        )

    def openings(self) -> Openings:
        """A lead list's openings, written on the calling event loop with a client of its own
        (an async client's connections belong to one loop): `async with writer.openings()`."""
        if self._client is None:
            raise WriterError("misconfigured", "ANTHROPIC_API_KEY is not set")
        client = anthropic.AsyncAnthropic(
            api_key=self._client.api_key,
            base_url=self._client.base_url,
            timeout=self._client.timeout,
            max_retries=self._client.max_retries,
        )
        return Openings(client, self.model, self.timeout)

    def _answer(
        self,
        brief: Brief,
        request: Any,
        parser: Any,
        tool: str,
        stop: threading.Event | None = None,
    ) -> Iterator[Any]:
        tokens = _TokenCount()
        stop_reason: str | None = None
        try:
            if self._client is None:
                raise WriterError(
                    "misconfigured", "ANTHROPIC_API_KEY is not set, so no sequence can be written"
                )
            with ModelStream(self._client, request(), self.timeout, stop) as stream:
                for event in stream.events():
                    if event.type == "message_start":
                        tokens.update(event.message.usage)
                    elif event.type == "content_block_start":
                        parser.start_block(event.index, event.content_block)
                    elif event.type == "content_block_delta":
                        if event.delta.type == "input_json_delta":
                            yield from self._finished(
                                parser.add_json(event.index, event.delta.partial_json),
                                brief.language,
                            )
                    elif event.type == "content_block_stop":
                        yield from self._finished(parser.finish_block(event.index), brief.language)
                    elif event.type == "message_delta":
                        tokens.update(event.usage)
                        stop_reason = event.delta.stop_reason
                    elif event.type == "message_stop":
                        break
                else:
                    raise WriterError("stream_error", "the stream ended before message_stop")
            if not parser.complete:
                raise WriterError(
                    "invalid_output", f"the answer has no {tool} call (stop: {stop_reason})"
                )
        except WriterError as error:
            error.usage = self._summary(tokens, stop_reason) if tokens.reported else None
            level = logging.ERROR if error.kind == "misconfigured" else logging.WARNING
            log.log(level, "writer failed (%s): %s", error.kind, error.detail)
            raise
        finally:
            # Tokens are spent whether the answer succeeded, failed or was abandoned.
            tokens.count_in_metrics()
        yield self._summary(tokens, stop_reason)

    def _finished(
        self, events: list[BodyDelta | tuple[int, Email]], language: str
    ) -> Iterator[BodyDelta | SequenceEmail]:
        for event in events:
            if isinstance(event, BodyDelta):
                yield event
                continue
            step, email = event
            yield SequenceEmail(
                step=step,
                day=email.day,
                subject_a=email.subject_a,
                subject_b=email.subject_b,
                body=email.body,
                quality=assess_email(
                    email.subject_a, email.subject_b, email.body, language=language
                ),
            )

    def _summary(self, tokens: _TokenCount, stop_reason: str | None) -> WriterSummary:
        usage = priced(
            self.model,
            input=tokens.input,
            output=tokens.output,
            cache_write=tokens.cache_creation,
            cache_read=tokens.cache_read,
        )
        return WriterSummary(model=self.model, tokens=usage, stop_reason=stop_reason)


class _TokenCount:
    """Token counts as the stream reports them; each report is a cumulative total."""

    def __init__(self) -> None:
        self.input = self.output = self.cache_creation = self.cache_read = 0
        self.reported = False

    def update(self, usage: Any) -> None:
        # message_start carries every count; message_delta repeats the ones that changed.
        self.reported = True
        if usage.input_tokens is not None:
            self.input = usage.input_tokens
        if usage.output_tokens is not None:
            self.output = usage.output_tokens
        if usage.cache_creation_input_tokens is not None:
            self.cache_creation = usage.cache_creation_input_tokens
        if usage.cache_read_input_tokens is not None:
            self.cache_read = usage.cache_read_input_tokens

    def count_in_metrics(self) -> None:
        for kind, count in (
            ("input", self.input),
            ("output", self.output),
            ("cache_creation", self.cache_creation),
            ("cache_read", self.cache_read),
        ):
            if count:
                MODEL_TOKENS.labels(kind=kind).inc(count)
