"""The writer: asks Claude for a 7-email sequence (or to rewrite one email of it) and hands on
each email's body as it is written and each email the moment it is complete.

`Writer.write_sequence(brief)` yields `BodyDelta`s while an email's body is being written,
`SequenceEmail`s in send order, then one `WriterSummary` (tokens, cost, model).
`Writer.rewrite_email(...)` yields the same events for one email. Any failure raises
`WriterError`, whose `kind` says what went wrong and whose `user_message` can be shown as it is.
Nothing here knows about Slack.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

import anthropic
import httpx2
import jiter
from pydantic import ValidationError

from bot.runtime.config import DEFAULT_MODEL, Settings, price_for
from bot.runtime.metrics import MODEL_TOKENS
from bot.writing.brief import Brief
from bot.writing.prompt import (
    REWRITE_TOOL_NAME,
    SEQUENCE_LENGTH,
    TOOL_NAME,
    Email,
    EmailSequence,
    RewrittenEmail,
    build_request,
    build_rewrite_request,
)
from bot.writing.quality import DEFAULT_LANGUAGE, QualityNotes, assess_email
from storage.tokens import TokenUsage

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
# The SDK retries 408, 409, 429, 5xx and 529 itself, with backoff that honours retry-after.
DEFAULT_MAX_RETRIES = 3

ErrorKind = Literal[
    "timeout",
    "overloaded",
    "rate_limited",
    "misconfigured",
    "unavailable",
    "stream_error",
    "invalid_output",
]

MISCONFIGURED_MESSAGE = "ColdCopy is not configured correctly, your admin has been told."
USER_MESSAGES: dict[ErrorKind, str] = {
    "timeout": "Claude took too long to write this sequence, so it was stopped. Please try again.",
    "overloaded": "Claude is overloaded right now. Please try again in a minute or two.",
    "rate_limited": "ColdCopy is busy with a lot of sequences right now. "
    "Please try again in a minute.",
    "misconfigured": MISCONFIGURED_MESSAGE,
    "unavailable": "Claude couldn't be reached just now. Please try again in a minute.",
    "stream_error": "Claude stopped partway through this sequence. Please try again.",
    "invalid_output": "Claude's answer didn't come out as a complete 7-email sequence. "
    "Please try again.",
}


@dataclass(frozen=True)
class SequenceEmail:
    """One finished, validated email of the sequence, with its quality notes."""

    step: int  # 1-based position in the sequence
    day: int
    subject_a: str
    subject_b: str
    body: str
    quality: QualityNotes

    def as_dict(self) -> dict[str, object]:
        return {
            "step": self.step,
            "day": self.day,
            "subject_a": self.subject_a,
            "subject_b": self.subject_b,
            "body": self.body,
            "quality": self.quality.as_dict(),
        }

    @classmethod
    def from_dict(cls, stored: dict[str, Any], language: str = DEFAULT_LANGUAGE) -> SequenceEmail:
        """An email as stored with its sequence; the quality notes are computed afresh."""
        subject_a, subject_b = str(stored["subject_a"]), str(stored["subject_b"])
        body = str(stored["body"])
        return cls(
            step=int(stored["step"]),
            day=int(stored["day"]),
            subject_a=subject_a,
            subject_b=subject_b,
            body=body,
            quality=assess_email(subject_a, subject_b, body, language=language),
        )


@dataclass(frozen=True)
class BodyDelta:
    """Body text of email `step` the model has just written, handed on before the email is
    complete so a reader can watch it being written. The heading is what is known so far."""

    step: int
    text: str
    day: int | None = None
    subject_a: str | None = None
    subject_b: str | None = None


@dataclass(frozen=True)
class WriterSummary:
    """What one answer cost: tokens by kind and USD from the price table in the settings."""

    model: str
    tokens: TokenUsage
    stop_reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"model": self.model, **self.tokens.as_dict(), "stop_reason": self.stop_reason}


class WriterError(Exception):
    """A sequence could not be written. `kind` is for code, `user_message` for the user,
    `usage` is what the attempt cost so far (None if the API reported no tokens)."""

    def __init__(self, kind: ErrorKind, detail: str, *, usage: WriterSummary | None = None):
        super().__init__(f"{kind}: {detail}")
        self.kind: ErrorKind = kind
        self.detail = detail
        self.user_message = USER_MESSAGES[kind]
        self.usage = usage


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
                # the whole answer by `_ModelStream`, which per-read timeouts cannot do.
                timeout=anthropic.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
                max_retries=max_retries,
                middleware=[_skip_abandoned_attempts],
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
        self, brief: Brief, written: Sequence[dict] = ()
    ) -> Iterator[BodyDelta | SequenceEmail | WriterSummary]:
        """Yield body deltas while each email is written, the 7 emails in send order as each
        one completes, then a `WriterSummary`.

        `written` holds emails already sent (a generation resumed after a crash, as
        `SequenceEmail.as_dict()`): the model sees them and writes only the rest, which are
        yielded with their steps after them.

        Raises `WriterError`; emails already yielded stay yielded, but the summary only ever
        follows a complete, valid sequence, so a consumer that waits for it never presents
        a half-written thread as finished.
        """
        sent = [Email.model_validate(_email_fields(email)) for email in written]
        yield from self._answer(
            brief,
            lambda: build_request(brief, model=self.model, written=sent),
            _SequenceParser(sent),
            TOOL_NAME,
        )

    def rewrite_email(
        self, brief: Brief, sequence: list[SequenceEmail], step: int, change: str
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
            _RewriteParser(step, day),
            REWRITE_TOOL_NAME,
        )

    def _answer(self, brief: Brief, request: Any, parser: Any, tool: str) -> Iterator[Any]:
        tokens = _TokenCount()
        stop_reason: str | None = None
        try:
            if self._client is None:
                raise WriterError(
                    "misconfigured", "ANTHROPIC_API_KEY is not set, so no sequence can be written"
                )
            with _ModelStream(self._client, request(), self.timeout) as stream:
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
        price = price_for(self.model)
        cost = (
            tokens.input * price.input
            + tokens.output * price.output
            + tokens.cache_creation * price.cache_write
            + tokens.cache_read * price.cache_read
        ) / Decimal(1_000_000)
        return WriterSummary(
            model=self.model,
            tokens=TokenUsage(
                input=tokens.input,
                output=tokens.output,
                cache_write=tokens.cache_creation,
                cache_read=tokens.cache_read,
                cost_usd=cost,
            ),
            stop_reason=stop_reason,
        )


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


class _ToolInput:
    """The streamed input JSON of one tool call: gathered across deltas, parsed partially as
    it grows, and whole when the content block ends."""

    tool_name = TOOL_NAME

    def __init__(self) -> None:
        self._tool_index: int | None = None
        self._json = b""
        self.complete = False

    def start_block(self, index: int, block: Any) -> None:
        if block.type == "tool_use" and block.name == self.tool_name and self._tool_index is None:
            self._tool_index = index

    def _grow(self, index: int, partial_json: str) -> Any:
        """The input so far (strings cut short), or None when the delta is not ours yet."""
        if index != self._tool_index:
            return None
        self._json += partial_json.encode()
        if not self._json.strip():
            return None
        try:
            return jiter.from_json(self._json, partial_mode="trailing-strings")
        except ValueError as exc:
            raise WriterError("invalid_output", f"the tool input is not JSON: {exc}") from None


class _SequenceParser(_ToolInput):
    """Follows the tool call's streamed JSON and validates each email once it is complete.

    An email is complete when the next one has begun in the partial JSON; the last one when
    the tool's content block ends and the whole answer parses and validates. When the first
    `written` emails were already sent (a resumed generation), the model is asked for the
    rest; an answer that repeats the whole sequence instead is accepted too, and its first
    emails are skipped, so the emails already sent are never replaced. The body of each email
    not yet complete is handed on as it grows.
    """

    def __init__(self, written: Sequence[Email] = ()) -> None:
        super().__init__()
        self._written = len(written)
        self._emails: list[Email] = list(written)
        # How many leading items of the answer repeat emails already sent; None: not known yet.
        self._skip: int | None = 0 if not written else None
        self._body_sent: dict[int, int] = {}  # step -> characters of its body handed on

    def add_json(self, index: int, partial_json: str) -> list[BodyDelta | tuple[int, Email]]:
        snapshot = self._grow(index, partial_json)
        if snapshot is None:
            return []
        items = _email_items(snapshot)
        if len(items) > SEQUENCE_LENGTH:
            raise WriterError("invalid_output", f"more than {SEQUENCE_LENGTH} emails")
        # Every item but the last is finished: the model has moved on to the next one.
        return self._events(items, finished=len(items) - 1)

    def finish_block(self, index: int) -> list[BodyDelta | tuple[int, Email]]:
        if index != self._tool_index:
            return []
        try:
            answer = jiter.from_json(self._json)
        except ValueError as exc:
            raise WriterError("invalid_output", f"the tool input is not JSON: {exc}") from None
        if not self._written:
            try:
                EmailSequence.model_validate(answer)
            except ValidationError as exc:
                raise WriterError("invalid_output", _describe(exc)) from None
        items = _email_items(answer)
        events = self._events(items, finished=len(items))
        if len(self._emails) != SEQUENCE_LENGTH:
            raise WriterError(
                "invalid_output", f"{len(self._emails)} emails instead of {SEQUENCE_LENGTH}"
            )
        self.complete = True
        return events

    def _events(self, items: list[Any], finished: int) -> list[BodyDelta | tuple[int, Email]]:
        """The body not handed on yet of each new email, each followed by the email itself
        once it is among the first `finished` items, so the deltas add up to its body."""
        self._skip_known_early(items)
        events: list[BodyDelta | tuple[int, Email]] = []
        for position, item in enumerate(items):
            if self._skip is not None:
                step = self._written + position - self._skip + 1
                if len(self._emails) < step <= SEQUENCE_LENGTH:
                    events.extend(_body_delta(step, item, self._body_sent))
            if position < finished:
                events.extend(self._hand_on(items[: position + 1]))
        return events

    def _skip_known_early(self, items: list[Any]) -> None:
        """Whether a resumed answer starts over from email 1 shows in its first day, once its
        body has begun (the day comes first, so it is complete by then)."""
        if self._skip is not None or not items or not isinstance(items[0], dict):
            return
        day = items[0].get("day")
        if isinstance(day, int) and not isinstance(day, bool) and "body" in items[0]:
            self._skip = self._written if day <= self._emails[-1].day else 0

    def _hand_on(self, items: list[Any]) -> list[tuple[int, Email]]:
        if self._skip is None:
            if not items:
                return []
            first = self._validated(items[0], 1)
            # A first day no later than the last one sent: the model started from email 1.
            self._skip = self._written if first.day <= self._emails[-1].day else 0
        finished: list[tuple[int, Email]] = []
        done = len(self._emails) - self._written + self._skip
        for position in range(done, len(items)):
            step = self._written + position - self._skip + 1
            if step > SEQUENCE_LENGTH:
                raise WriterError("invalid_output", f"more than {SEQUENCE_LENGTH} emails")
            email = self._validated(items[position], step)
            if self._emails and email.day <= self._emails[-1].day:
                raise WriterError(
                    "invalid_output",
                    f"email {step} is sent on day {email.day}, "
                    f"not after day {self._emails[-1].day}",
                )
            self._emails.append(email)
            finished.append((step, email))
        return finished

    @staticmethod
    def _validated(item: Any, step: int) -> Email:
        try:
            return Email.model_validate(item)
        except ValidationError as exc:
            raise WriterError("invalid_output", f"email {step}: {_describe(exc)}") from None


def _email_fields(email: dict) -> dict:
    return {key: email[key] for key in ("day", "subject_a", "subject_b", "body")}


class _RewriteParser(_ToolInput):
    """Follows the rewrite tool's streamed JSON (one email without its day) the same way."""

    tool_name = REWRITE_TOOL_NAME

    def __init__(self, step: int, day: int) -> None:
        super().__init__()
        self._step = step
        self._day = day
        self._body_sent: dict[int, int] = {}

    def add_json(self, index: int, partial_json: str) -> list[BodyDelta | tuple[int, Email]]:
        snapshot = self._grow(index, partial_json)
        if snapshot is None:
            return []
        if not isinstance(snapshot, dict):
            raise WriterError("invalid_output", "the tool input is not a JSON object")
        return list(_body_delta(self._step, {"day": self._day, **snapshot}, self._body_sent))

    def finish_block(self, index: int) -> list[BodyDelta | tuple[int, Email]]:
        if index != self._tool_index:
            return []
        try:
            answer = RewrittenEmail.model_validate(jiter.from_json(self._json))
        except ValueError as exc:  # pydantic's ValidationError is a ValueError too
            detail = _describe(exc) if isinstance(exc, ValidationError) else str(exc)
            raise WriterError("invalid_output", f"the rewritten email: {detail}") from None
        self.complete = True
        email = Email(day=self._day, **answer.model_dump())
        return [(self._step, email)]


def _body_delta(step: int, item: Any, sent: dict[int, int]) -> list[BodyDelta]:
    """The body text of `item` not handed on yet, if any."""
    if not isinstance(item, dict) or not isinstance(item.get("body"), str):
        return []
    body = item["body"]
    already = sent.get(step, 0)
    if len(body) <= already:
        return []
    sent[step] = len(body)

    def text(key: str) -> str | None:
        value = item.get(key)
        return value if isinstance(value, str) else None

    day = item.get("day")
    return [
        BodyDelta(
            step=step,
            text=body[already:],
            day=day if isinstance(day, int) and not isinstance(day, bool) else None,
            subject_a=text("subject_a"),
            subject_b=text("subject_b"),
        )
    ]


def _email_items(snapshot: object) -> list[Any]:
    if not isinstance(snapshot, dict):
        raise WriterError("invalid_output", "the tool input is not a JSON object")
    items = snapshot.get("emails", [])
    if not isinstance(items, list):
        raise WriterError("invalid_output", "emails is not a list")
    return items


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'answer'}: {error['msg']}"
        for error in exc.errors()[:3]
    )


@dataclass(frozen=True)
class _Failure:
    error: Exception
    mid_stream: bool  # False: the request itself failed (after the SDK's retries)


_END = object()
# The pump thread's "this generation was abandoned" flag, read by `_skip_abandoned_attempts`.
_attempt_state = threading.local()


def _skip_abandoned_attempts(request: Any, call_next: Any) -> Any:
    """SDK middleware: don't start a retry for a generation that has already given up.

    The SDK honours retry-after however long it is; without this, a retry could wake up after
    the deadline and pay for an answer that nobody reads.
    """
    abandoned = getattr(_attempt_state, "abandoned", None)
    if abandoned is not None and abandoned.is_set():
        raise RuntimeError("generation abandoned; retry not sent")
    return call_next(request)


class _ModelStream:
    """Runs one streamed request on a background thread, so the reader can wait for each event
    with a real wall-clock deadline.

    httpx timeouts bound each connect and each read, not the whole answer: a stream that keeps
    trickling tokens, or retries that keep backing off, would never time out. Here the reader
    waits on a queue for whatever is left of the budget. On a timeout the thread is left to
    finish by itself: it stops at its next event, and a read blocked on a silent server ends at
    the SDK's read timeout.
    """

    def __init__(self, client: anthropic.Anthropic, request: dict[str, Any], budget: float):
        self._client = client
        self._request = request
        self._budget = budget
        self._deadline = time.monotonic() + budget
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._abandoned = threading.Event()
        self._thread = threading.Thread(target=self._run, name="coldcopy-model-stream", daemon=True)

    def __enter__(self) -> _ModelStream:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._abandoned.set()

    def events(self) -> Iterator[Any]:
        """The raw stream events, in order; raises WriterError when the stream fails."""
        while True:
            remaining = self._deadline - time.monotonic()
            try:
                # Events that arrived in time are still read when the consumer was slow.
                if remaining > 0:
                    item = self._queue.get(timeout=remaining)
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                raise WriterError(
                    "timeout", f"no complete answer within {self._budget:g} s"
                ) from None
            if item is _END:
                return
            if isinstance(item, _Failure) and item.mid_stream:
                raise _stream_failure(item.error)
            if isinstance(item, _Failure):
                raise _request_failure(item.error)
            yield item

    def _run(self) -> None:
        _attempt_state.abandoned = self._abandoned
        try:
            stream = self._client.messages.create(**self._request, stream=True)
        except Exception as exc:
            self._queue.put(_Failure(exc, mid_stream=False))
            return
        try:
            with stream:
                for event in stream:
                    self._queue.put(event)
                    if self._abandoned.is_set():
                        return
        except Exception as exc:
            self._queue.put(_Failure(exc, mid_stream=True))
            return
        self._queue.put(_END)


def _request_failure(error: Exception) -> WriterError:
    """Map a request that failed before any answer arrived (after the SDK's retries)."""
    if isinstance(error, anthropic.APITimeoutError):
        return WriterError("timeout", "the Anthropic API did not answer in time")
    if isinstance(error, anthropic.APIConnectionError):
        return WriterError("unavailable", f"cannot reach the Anthropic API: {error}")
    if not isinstance(error, anthropic.APIStatusError):
        return WriterError("unavailable", f"the request failed: {type(error).__name__}: {error}")
    what = f"{error.status_code} {error.type or 'error'}: {error.api_message or error.message}"
    where = f" (request-id {error.request_id})" if error.request_id else ""
    if isinstance(error, anthropic.OverloadedError) or error.type == "overloaded_error":
        return WriterError("overloaded", f"the Anthropic API is overloaded: {what}{where}")
    if isinstance(error, anthropic.RateLimitError):
        return WriterError("rate_limited", f"rate limited by the Anthropic API: {what}{where}")
    if error.status_code >= 500 or error.status_code in (408, 409):
        return WriterError("unavailable", f"the Anthropic API failed: {what}{where}")
    # Every other 4xx is ours to fix: a bad key, a model we may not use, a malformed request.
    if isinstance(error, anthropic.AuthenticationError):
        hint = "set ANTHROPIC_API_KEY to a valid key"
    elif isinstance(error, anthropic.NotFoundError):
        hint = "check that COLDCOPY_MODEL names a model this key can use"
    elif isinstance(error, anthropic.PermissionDeniedError):
        hint = "this API key may not use this model or feature"
    else:
        hint = "the request ColdCopy sends was rejected"
    return WriterError(
        "misconfigured", f"the Anthropic API refused ColdCopy, {hint}: {what}{where}"
    )


def _stream_failure(error: Exception) -> WriterError:
    """Map a failure after the answer had begun: an error event, a broken or stalled stream."""
    if isinstance(error, anthropic.APITimeoutError | httpx2.TimeoutException):
        return WriterError("timeout", f"the stream stalled: {type(error).__name__}")
    if isinstance(error, anthropic.APIStatusError):
        what = f"{error.type or 'error'}: {error.api_message or error.message}"
        return WriterError("stream_error", f"error event mid-stream: {what}")
    return WriterError("stream_error", f"the stream broke off: {type(error).__name__}: {error}")
