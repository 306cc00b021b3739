"""Following a tool call's streamed JSON: the input grows delta by delta, is parsed partially
as it grows (jiter's trailing-strings mode), and each email is validated once the model has
moved on to the next one. The body of an email still being written is handed on as it grows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jiter
from pydantic import ValidationError

from bot.writing.events import BodyDelta, WriterError
from bot.writing.prompt import (
    REWRITE_TOOL_NAME,
    SEQUENCE_LENGTH,
    TOOL_NAME,
    Email,
    EmailSequence,
    RewrittenEmail,
)


class ToolInput:
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


class SequenceParser(ToolInput):
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


def email_fields(email: dict) -> dict:
    return {key: email[key] for key in ("day", "subject_a", "subject_b", "body")}


class RewriteParser(ToolInput):
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
