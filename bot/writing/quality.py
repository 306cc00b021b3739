"""Deterministic quality notes on one written email: length, subjects, spam words,
placeholders, questions and readability, for the email's language.

No model call: these are cheap checks of the best practice the prompt asks for, shown to the
user under each email so they can fix a weak one before sending it. The limits below are also
what `bot/writing/prompt.py` tells the model, so the ask and the check cannot drift apart. The
spam-word lists are package data (`data/spam_words/<language>.txt`, one term a line); the
readability formulas come from textstat, one per language it has coefficients for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Literal

# textstat's per-call functions take the language as an argument; its `textstat.set_lang`
# changes one shared object, which would race between the writer's threads.
from textstat.backend import metrics

from bot.writing.brief import LANGUAGES
from bot.writing.placeholders import PLACEHOLDERS

# Cold-email best practice the prompt asks for and these notes check.
BODY_MIN_WORDS = 50
BODY_MAX_WORDS = 125
SUBJECT_MAX_CHARS = 50
SUBJECT_MAX_WORDS = 7
# Past school grade 12 (or below 50 on a 0-100 reading-ease scale) a text reads as academic.
READING_GRADE_MAX = 12
READING_EASE_MIN = 50
ALLOWED_PLACEHOLDERS: tuple[str, ...] = PLACEHOLDERS
DEFAULT_LANGUAGE = "en"
# Languages written without spaces between words: a count of words means nothing there, so
# an email's length is shown in characters and not judged against the word range, and its
# subjects are held to the character limit only.
WITHOUT_SPACES = frozenset({"ja"})

Scale = Literal["grade", "ease"]


@dataclass(frozen=True)
class ReadabilityFormula:
    """A readability formula for one language: a school grade (lower reads more easily) or a
    0-100 reading ease (higher reads more easily)."""

    name: str
    scale: Scale
    score: Callable[[str], float]


# Formulas that need no downloaded data: textstat counts English syllables with NLTK's CMU
# dictionary, fetched over the network on first use, so English uses Coleman-Liau (letters
# and sentences); other languages count syllables with pyphen's bundled dictionaries.
READABILITY: dict[str, ReadabilityFormula] = {
    "en": ReadabilityFormula("Coleman-Liau", "grade", metrics.coleman_liau_index),
    "de": ReadabilityFormula(
        "Wiener Sachtextformel", "grade", lambda text: metrics.wiener_sachtextformel(text, 1, "de")
    ),
    "es": ReadabilityFormula("Crawford", "grade", lambda text: metrics.crawford(text, "es")),
    "fr": ReadabilityFormula(
        "Flesch (Kandel-Moles)", "ease", lambda text: metrics.flesch_reading_ease(text, "fr")
    ),
    "it": ReadabilityFormula("Gulpease", "ease", metrics.gulpease_index),
    "nl": ReadabilityFormula(
        "Flesch-Douma", "ease", lambda text: metrics.flesch_reading_ease(text, "nl")
    ),
}

# Anything that looks like a mail-merge placeholder: [Like This] or {{like_this}}.
_PLACEHOLDER = re.compile(r"\[[^\[\]\n]{1,60}\]|\{\{[^{}\n]{0,60}\}\}")
_WORD = re.compile(r"\S+")
_WHITESPACE = re.compile(r"\s+")
_LANGUAGE_CODE = re.compile(r"[a-z]{2}")
# The checks that need data for the email's language, as the summary names them.
_LANGUAGE_CHECKS = {
    "length": "length in words",
    "spam_words": "spam words",
    "readability": "readability",
}
# How many stray placeholders a summary names before it says "+N more".
_SUMMARY_NAMES = 3


@dataclass(frozen=True)
class Readability:
    formula: str
    scale: Scale
    score: float

    @property
    def ok(self) -> bool:
        if self.scale == "grade":
            return self.score <= READING_GRADE_MAX
        return self.score >= READING_EASE_MIN

    def summary(self) -> str:
        if self.scale == "grade":
            line = f"reading grade {self.score:.0f}"
            return line if self.ok else f"⚠ {line} (aim for {READING_GRADE_MAX} or lower)"
        line = f"reading ease {self.score:.0f}"
        return line if self.ok else f"⚠ {line} (aim for {READING_EASE_MIN} or higher)"


@dataclass(frozen=True)
class QualityNotes:
    """What a reader should know about one email before sending it."""

    word_count: int
    body_chars: int
    subject_a_chars: int
    subject_b_chars: int
    subject_a_words: int
    subject_b_words: int
    spam_words: tuple[str, ...]
    stray_placeholders: tuple[str, ...]
    # More than one question usually means more than one ask; best practice is one.
    question_count: int
    readability: Readability | None = None
    language: str = DEFAULT_LANGUAGE
    # Which checks ran: spam words and readability only where the language has data for them.
    checks: tuple[str, ...] = ()

    @property
    def counts_words(self) -> bool:
        return "length" in self.checks

    @property
    def body_length_ok(self) -> bool:
        return not self.counts_words or BODY_MIN_WORDS <= self.word_count <= BODY_MAX_WORDS

    @property
    def subjects_ok(self) -> bool:
        return max(self.subject_a_chars, self.subject_b_chars) <= SUBJECT_MAX_CHARS and (
            not self.counts_words
            or max(self.subject_a_words, self.subject_b_words) <= SUBJECT_MAX_WORDS
        )

    @property
    def ok(self) -> bool:
        """True when the email meets every check that applied."""
        return (
            self.body_length_ok
            and self.subjects_ok
            and not self.spam_words
            and not self.stray_placeholders
            and self.question_count <= 1
            and (self.readability is None or self.readability.ok)
        )

    def summary(self) -> str:
        """One compact line for a Slack context block, warnings marked with ⚠."""
        if self.counts_words:
            words = f"{self.word_count} words"
            if not self.body_length_ok:
                words = f"⚠ {words} (aim for {BODY_MIN_WORDS}-{BODY_MAX_WORDS})"
            subjects = (
                f"subjects {self.subject_a_chars}/{self.subject_b_chars} chars, "
                f"{self.subject_a_words}/{self.subject_b_words} words"
            )
            limits = f"max {SUBJECT_MAX_CHARS} chars, {SUBJECT_MAX_WORDS} words"
        else:
            words = f"{self.body_chars} characters"
            subjects = f"subjects {self.subject_a_chars}/{self.subject_b_chars} chars"
            limits = f"max {SUBJECT_MAX_CHARS} chars"
        if not self.subjects_ok:
            subjects = f"⚠ {subjects} ({limits})"
        parts = [words, subjects]
        if self.readability is not None:
            parts.append(self.readability.summary())
        if self.spam_words:
            named = ", ".join(self.spam_words[:_SUMMARY_NAMES])
            extra = len(self.spam_words) - _SUMMARY_NAMES
            more = f" +{extra} more" if extra > 0 else ""
            parts.append(f"⚠ spam words: {named}{more}")
        if self.stray_placeholders:
            named = ", ".join(self.stray_placeholders[:_SUMMARY_NAMES])
            extra = len(self.stray_placeholders) - _SUMMARY_NAMES
            more = f" +{extra} more" if extra > 0 else ""
            parts.append(f"⚠ unfilled placeholders: {named}{more}")
        if self.question_count > 1:
            parts.append(f"⚠ {self.question_count} questions (one ask per email)")
        skipped = [name for check, name in _LANGUAGE_CHECKS.items() if check not in self.checks]
        if self.checks and skipped:
            # Say so where a check could not run, so a clean line is not read as a pass.
            language = LANGUAGES.get(self.language, self.language or "this language")
            parts.append(f"not checked in {language}: {', '.join(skipped)}")
        return " · ".join(parts)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready values, for storing next to the email."""
        return {
            "language": self.language,
            "checks": list(self.checks),
            "word_count": self.word_count,
            "body_chars": self.body_chars,
            "subject_a_chars": self.subject_a_chars,
            "subject_b_chars": self.subject_b_chars,
            "subject_a_words": self.subject_a_words,
            "subject_b_words": self.subject_b_words,
            "spam_words": list(self.spam_words),
            "stray_placeholders": list(self.stray_placeholders),
            "question_count": self.question_count,
            "readability": None
            if self.readability is None
            else {
                "formula": self.readability.formula,
                "scale": self.readability.scale,
                "score": round(self.readability.score, 1),
            },
            "ok": self.ok,
        }


def assess_email(
    subject_a: str, subject_b: str, body: str, *, language: str = DEFAULT_LANGUAGE
) -> QualityNotes:
    """Check one email against the best practice the prompt asks for. `language` is an ISO
    639-1 code ("en", "de"); an unknown one gets the checks that need no language data."""
    code = language_code(language)
    text = "\n".join((subject_a, subject_b, body))
    checks = ["subjects", "placeholders", "questions"]
    if code not in WITHOUT_SPACES:
        checks.insert(0, "length")
    spam_found: tuple[str, ...] = ()
    patterns = _spam_patterns(code)
    if patterns is not None:
        checks.append("spam_words")
        normalised = text.replace("\u2019", "'")  # a typographic apostrophe is still one
        spam_found = tuple(term for term, pattern in patterns if pattern.search(normalised))
    readability = None
    formula = READABILITY.get(code)
    if formula is not None:
        checks.append("readability")
        readability = Readability(formula.name, formula.scale, formula.score(body))
    return QualityNotes(
        word_count=_words(body),
        body_chars=len(_WHITESPACE.sub("", body)),
        subject_a_chars=len(subject_a),
        subject_b_chars=len(subject_b),
        subject_a_words=_words(subject_a),
        subject_b_words=_words(subject_b),
        spam_words=spam_found,
        stray_placeholders=_stray_placeholders(text),
        question_count=body.count("?"),
        readability=readability,
        language=code,
        checks=tuple(checks),
    )


def language_code(language: str) -> str:
    """ "de", "DE" and "de-AT" -> "de"; anything that is not a two-letter code -> ""."""
    code = (language or "").strip().lower().replace("_", "-").split("-")[0]
    return code if _LANGUAGE_CODE.fullmatch(code) else ""


@cache
def spam_words(language: str) -> tuple[str, ...] | None:
    """The spam-trigger terms shipped for a language, lower-cased, in file order; None when
    there is no list for it."""
    code = language_code(language)
    if not code:
        return None  # never build a file name from anything but two letters
    resource = files("bot.writing").joinpath("data", "spam_words", f"{code}.txt")
    if not resource.is_file():
        return None
    terms: list[str] = []
    for line in resource.read_text(encoding="utf-8").splitlines():
        term = line.strip().lower()
        if term and not term.startswith("#") and term not in terms:
            terms.append(term)
    return tuple(terms)


@cache
def _spam_patterns(language: str) -> tuple[tuple[str, re.Pattern[str]], ...] | None:
    terms = spam_words(language)
    if terms is None:
        return None
    return tuple((term, _term_pattern(term)) for term in terms)


def _term_pattern(term: str) -> re.Pattern[str]:
    # Whole words only ("free" is not in "freedom"), where the term begins or ends with a
    # letter or digit: "!!!" is still found in "now!!!". Within a phrase a space or a hyphen
    # matches either, so "risk-free" also finds "risk free".
    body = r"[\s-]+".join(re.escape(part) for part in re.split(r"[\s-]+", term))
    before = r"(?<![\w-])" if term[0].isalnum() else ""
    after = r"(?![\w-])" if term[-1].isalnum() else ""
    return re.compile(before + body + after, re.IGNORECASE)


# The English list: the prompt quotes its first entries to the model.
SPAM_TRIGGER_WORDS: tuple[str, ...] = spam_words(DEFAULT_LANGUAGE) or ()


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _stray_placeholders(text: str) -> tuple[str, ...]:
    found: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        token = match.group(0)
        if token not in ALLOWED_PLACEHOLDERS and token not in found:
            found.append(token)
    return tuple(found)
