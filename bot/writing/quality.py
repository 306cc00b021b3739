"""Deterministic quality notes on one written email: length, subjects, spam words, placeholders.

No model call: these are cheap checks of the best practice the prompt asks for, shown to the
user under each email so they can fix a weak one before sending it. The limits below are also
what `bot/prompt.py` tells the model, so the ask and the check cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Cold-email best practice the prompt asks for and these notes check.
BODY_MIN_WORDS = 50
BODY_MAX_WORDS = 125
SUBJECT_MAX_CHARS = 50
ALLOWED_PLACEHOLDERS: tuple[str, ...] = ("[FirstName]", "[Company]")

# Words and phrases that commonly raise spam-filter scores or read as hype in a cold email.
# A short, hand-picked subset of the "spam trigger word" lists that email deliverability
# guides publish (HubSpot, Mailchimp, Mailmodo); matched case-insensitively as whole words.
# It is a nudge for the writer, not a deliverability verdict: keep it small and obvious.
SPAM_TRIGGER_WORDS: tuple[str, ...] = (
    "free",
    "guarantee",
    "guaranteed",
    "risk-free",
    "no obligation",
    "no cost",
    "act now",
    "limited time",
    "urgent",
    "buy now",
    "click here",
    "order now",
    "special promotion",
    "exclusive deal",
    "winner",
    "congratulations",
    "cash",
    "double your",
    "earn money",
    "100%",
    "once in a lifetime",
    "no strings attached",
)

_SPAM_PATTERNS = tuple(
    (word, re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", re.IGNORECASE))
    for word in SPAM_TRIGGER_WORDS
)
# Anything that looks like a mail-merge placeholder: [Like This] or {{like_this}}.
_PLACEHOLDER = re.compile(r"\[[^\[\]\n]{1,60}\]|\{\{[^{}\n]{0,60}\}\}")
_WORD = re.compile(r"\S+")
# How many stray placeholders a summary names before it says "+N more".
_SUMMARY_NAMES = 3


@dataclass(frozen=True)
class QualityNotes:
    """What a reader should know about one email before sending it."""

    word_count: int
    subject_a_chars: int
    subject_b_chars: int
    spam_words: tuple[str, ...]
    stray_placeholders: tuple[str, ...]
    # More than one question usually means more than one ask; best practice is one.
    question_count: int

    @property
    def body_length_ok(self) -> bool:
        return BODY_MIN_WORDS <= self.word_count <= BODY_MAX_WORDS

    @property
    def subjects_ok(self) -> bool:
        return max(self.subject_a_chars, self.subject_b_chars) <= SUBJECT_MAX_CHARS

    @property
    def ok(self) -> bool:
        """True when the email meets every check."""
        return (
            self.body_length_ok
            and self.subjects_ok
            and not self.spam_words
            and not self.stray_placeholders
            and self.question_count <= 1
        )

    def summary(self) -> str:
        """One compact line for a Slack context block, warnings marked with ⚠."""
        words = f"{self.word_count} words"
        if not self.body_length_ok:
            words = f"⚠ {words} (aim for {BODY_MIN_WORDS}-{BODY_MAX_WORDS})"
        subjects = f"subjects {self.subject_a_chars}/{self.subject_b_chars} chars"
        if not self.subjects_ok:
            subjects = f"⚠ {subjects} (max {SUBJECT_MAX_CHARS})"
        parts = [words, subjects]
        if self.spam_words:
            parts.append(f"⚠ spam words: {', '.join(self.spam_words)}")
        if self.stray_placeholders:
            named = ", ".join(self.stray_placeholders[:_SUMMARY_NAMES])
            extra = len(self.stray_placeholders) - _SUMMARY_NAMES
            more = f" +{extra} more" if extra > 0 else ""
            parts.append(f"⚠ unfilled placeholders: {named}{more}")
        if self.question_count > 1:
            parts.append(f"⚠ {self.question_count} questions (one ask per email)")
        return " · ".join(parts)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready values, for storing next to the email."""
        return {
            "word_count": self.word_count,
            "subject_a_chars": self.subject_a_chars,
            "subject_b_chars": self.subject_b_chars,
            "spam_words": list(self.spam_words),
            "stray_placeholders": list(self.stray_placeholders),
            "question_count": self.question_count,
            "ok": self.ok,
        }


def assess_email(subject_a: str, subject_b: str, body: str) -> QualityNotes:
    """Check one email against the best practice the prompt asks for."""
    text = "\n".join((subject_a, subject_b, body))
    return QualityNotes(
        word_count=len(_WORD.findall(body)),
        subject_a_chars=len(subject_a),
        subject_b_chars=len(subject_b),
        spam_words=tuple(word for word, pattern in _SPAM_PATTERNS if pattern.search(text)),
        stray_placeholders=_stray_placeholders(text),
        question_count=body.count("?"),
    )


def _stray_placeholders(text: str) -> tuple[str, ...]:
    found: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        token = match.group(0)
        if token not in ALLOWED_PLACEHOLDERS and token not in found:
            found.append(token)
    return tuple(found)
