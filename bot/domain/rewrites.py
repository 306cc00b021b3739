"""Admitting a rewrite of one email: the quick choices, which email a request names, the
per-user rate limit (failing open like every limit) and the cap per sequence. No quota unit is
used. Plain Python: the Slack side streams the rewrite and renders the outcomes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Engine

from bot.domain.limits import RateLimited, RateLimiter
from bot.writing.events import SequenceEmail
from bot.writing.prompt import SEQUENCE_LENGTH
from storage.generations import GenerationRow
from storage.rewrites import (
    NotRewritable,
    RewriteCapReached,
    RewriteStarted,
    start_rewrite,
)


@dataclass(frozen=True)
class RewriteRequest:
    """Someone asked to rewrite email `step` of a sequence, in these words."""

    team_id: str
    user_id: str
    generation_id: str
    step: int
    change: str = ""
    # A quick choice's key instead of words: its wording needs the email (bot/flows/rewrite.py).
    quick: str | None = None


@dataclass(frozen=True)
class QuickChange:
    key: str
    label: str  # what the menu shows
    change: str  # what the model is asked


QUICK_CHANGES: tuple[QuickChange, ...] = (
    QuickChange("shorter", "Shorter", "Make it noticeably shorter; keep the one call to action."),
    QuickChange("warmer", "Warmer", "Make it warmer and more personable, never gushing."),
    QuickChange("direct", "More direct", "Make it more direct: lead with the point, cut hedging."),
    QuickChange(
        "angle",
        "Another angle",
        "Take a different angle on the same step of the sequence, with new subject lines.",
    ),
    QuickChange(
        "fix",
        "Fix the quality notes",
        "Fix every problem these quality notes point out, changing as little else as you can:",
    ),
)
QUICK_BY_KEY = {quick.key: quick for quick in QUICK_CHANGES}
MAX_CHANGE_CHARS = 500


def quick_change(key: str, generation: GenerationRow | None, step: int) -> str | None:
    """What a quick choice asks the model; "fix" names the email's current quality notes."""
    quick = QUICK_BY_KEY.get(key)
    if quick is None:
        return None
    if key != "fix":
        return quick.change
    sequence = (generation.sequence if generation else None) or []
    if not 1 <= step <= len(sequence):
        return quick.change
    notes = SequenceEmail.from_dict(sequence[step - 1]).quality.summary()
    return f"{quick.change} {notes or 'none; tighten the wording instead.'}"


# "email 3", "Email #3", "the 3rd email", "step 3"
_NAMED_EMAIL = re.compile(
    r"\b(?:email|e-mail|mail|step)\s*#?\s*(\d{1,2})\b|\b(\d{1,2})(?:st|nd|rd|th)\s+(?:email|e-mail)\b",
    re.IGNORECASE,
)
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
# An email's number as our controls send it: ASCII digits, no sign, no leading zero.
_STEP = re.compile(r"[1-9][0-9]?")
# Control characters (but tab and newline) have no place in what a person asks the model.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def email_step(value: object) -> int | None:
    """The email number in a payload's value, 1 to the sequence's length; None for anything
    else (a forged 99999999999, "-1", "³"), so no value from Slack reaches the database or an
    index unchecked."""
    text = str(value) if isinstance(value, int | str) else ""
    if not _STEP.fullmatch(text):
        return None
    step = int(text)
    return step if step <= SEQUENCE_LENGTH else None


def named_email(text: str) -> int | None:
    """The email number a request names ("make email 3 shorter"), or None."""
    match = _NAMED_EMAIL.search(text)
    if match is None:
        return None
    return email_step(match.group(1) or match.group(2))


def mention_request(text: str) -> str:
    """The request in an app mention, without the mention itself."""
    return " ".join(_MENTION.sub(" ", text).split())


@dataclass(frozen=True)
class Rewrites:
    """Admits rewrites: rate limit first (cheap, fails open), then the cap (in the database)."""

    engine: Engine
    limiter: RateLimiter
    cap: int

    def admit(
        self, *, team_id: str, user_id: str, generation_id: str, step: int, change: str
    ) -> RewriteStarted | RewriteCapReached | NotRewritable | RateLimited:
        # A forged submission is bound by none of the modal's limits: checked here, for all.
        change = _CONTROL.sub(" ", change or "").strip()
        if not change:
            return NotRewritable("Tell me how to change the email.")
        if len(change) > MAX_CHANGE_CHARS:
            return NotRewritable(
                f"That request is {len(change)} characters; keep it under {MAX_CHANGE_CHARS}."
            )
        # Rewrites have a window of their own, apart from the sequences' windows.
        limited = self.limiter.check(team_id, f"rewrite/{user_id}")
        if isinstance(limited, RateLimited):
            return limited
        return start_rewrite(
            self.engine,
            generation_id=generation_id,
            team_id=team_id,
            step=step,
            user_id=user_id,
            change=change,
            cap=self.cap,
        )
