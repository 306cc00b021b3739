"""What the writer hands on: each email's body while it is written (`BodyDelta`), each finished
email (`SequenceEmail`), what the answer cost (`WriterSummary`), and `WriterError`, whose `kind`
says what went wrong and whose `user_message` can be shown as it is. Slack, the job runtime and
the exports all read these; nothing here calls the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bot.writing.quality import DEFAULT_LANGUAGE, QualityNotes, assess_email
from storage.tokens import TokenUsage

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


class WriterStopped(Exception):
    """The caller stopped the answer (its work was taken over, handed back or erased): not a
    failure of the model, and nothing to tell the user."""
