"""The brief: the one schema behind the modal's fields, their validation and the model's prompt.

Field names drift when the form, the validation and the prompt each spell them; here they are
spelled once (`BRIEF_FIELDS`) and everything else is built from this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, field_validator

Tone = Literal["Professional", "Friendly", "Casual", "Bold", "Consultative"]
TONES: tuple[str, ...] = get_args(Tone)
DEFAULT_TONE: Tone = "Professional"

# The languages a sequence can be written in, by ISO 639-1 code, with their English names.
LANGUAGES: dict[str, str] = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "sv": "Swedish",
    "pl": "Polish",
    "ja": "Japanese",
}
DEFAULT_LANGUAGE = "en"


def language_from_locale(locale: str | None) -> str | None:
    """The language of a Slack locale such as "de-DE", when ColdCopy writes in it."""
    code = (locale or "").split("-")[0].split("_")[0].lower()
    return code if code in LANGUAGES else None


@dataclass(frozen=True)
class BriefField:
    key: str
    label: str
    placeholder: str
    max_length: int
    multiline: bool = False


BRIEF_FIELDS: tuple[BriefField, ...] = (
    BriefField("company", "Company", "e.g. Northwind Logistics", 100),
    BriefField("job_title", "Target job title", "e.g. Head of Operations", 100),
    BriefField(
        "problem",
        "Problem they face",
        "e.g. Dispatchers re-key every order into three systems",
        600,
        multiline=True,
    ),
    BriefField(
        "product",
        "Your product",
        "e.g. RouteSync connects order intake to dispatch in one place",
        600,
        multiline=True,
    ),
    BriefField(
        "benefit", "Key benefit", "e.g. Cuts order handling time by 40%", 300, multiline=True
    ),
    BriefField("call_to_action", "Call to action", "e.g. A 15-minute call next week", 200),
)
# Set once per workspace by an admin (not on the form) and sent with every brief as data
# about the sender: who they work for and the phrases they never want written.
CONTEXT_FIELDS: tuple[BriefField, ...] = (
    BriefField(
        "about_us",
        "About us",
        "e.g. RouteSync is a 40-person logistics software company in Leeds",
        500,
        multiline=True,
    ),
    BriefField(
        "never_use",
        "Phrases to never use",
        "One per line, e.g. synergy",
        500,
        multiline=True,
    ),
)
FIELDS_BY_KEY: dict[str, BriefField] = {f.key: f for f in (*BRIEF_FIELDS, *CONTEXT_FIELDS)}


# Characters a person does not mean to send: C0/C1 controls but tab and newline (NUL, the ESC
# of ANSI escapes), and the bidi embeddings, overrides and isolates that make text read
# differently from how it is stored (U+202E "right-to-left override").
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Half of a UTF-16 pair on its own: not text, and no database or API can encode it.
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def character_problem(label: str, value: str) -> str | None:
    """Why `value` cannot be used as the text of a field, or None when it can."""
    bad = LONE_SURROGATE.search(value)
    if bad is not None:
        return (
            f"{label} contains a broken character (U+{ord(bad.group()):04X}); "
            "please retype that part."
        )
    bad = CONTROL.search(value)
    if bad is not None:
        return (
            f"{label} contains an invisible control character (U+{ord(bad.group()):04X}); "
            "please remove it."
        )
    return None


class Brief(BaseModel):
    """A validated brief: every text field is stripped, non-empty and within its limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    company: str
    job_title: str
    problem: str
    product: str
    benefit: str
    call_to_action: str
    tone: Tone = DEFAULT_TONE
    # Briefs stored before languages existed have none: they were written in English.
    language: str = DEFAULT_LANGUAGE
    about_us: str | None = None
    never_use: str | None = None

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"unknown language {value!r}")
        return value

    @property
    def language_name(self) -> str:
        return LANGUAGES[self.language]

    def text_fields(self) -> list[tuple[BriefField, str]]:
        return [(f, getattr(self, f.key)) for f in BRIEF_FIELDS]

    def context_fields(self) -> list[tuple[BriefField, str]]:
        """The workspace's context that is set: (field, text)."""
        return [(f, getattr(self, f.key)) for f in CONTEXT_FIELDS if getattr(self, f.key)]


@dataclass(frozen=True)
class BriefErrors:
    """Per-field messages, keyed by BriefField.key (and "tone", "language"), to fix."""

    errors: dict[str, str]


def check_text(field: BriefField, value: object, *, required: bool = True) -> str | None:
    """The field's text, stripped; raises ValueError with a message naming the field.
    An optional field left empty is None."""
    if value is None or (isinstance(value, str) and value == ""):
        if required:
            raise ValueError(f"{field.label} is required.")
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field.label} must be text.")
    stripped = value.strip()
    problem = character_problem(field.label, stripped)
    if problem is not None:
        raise ValueError(problem)
    if not stripped:
        raise ValueError(f"{field.label} can't be only spaces.")
    if len(stripped) > field.max_length:
        raise ValueError(
            f"{field.label} must be at most {field.max_length} characters (it has {len(stripped)})."
        )
    return stripped


def check_choice(key: str, value: object, default: str | None) -> str | None:
    """A tone or language from its list (the default when unset); ValueError otherwise."""
    value = value or default
    if value is not None and not isinstance(value, str):
        value = ""  # not a choice at all (a list, a number): refused below
    if key == "tone" and value is not None and value not in TONES:
        raise ValueError(f"Tone must be one of {', '.join(TONES)}.")
    if key == "language" and value is not None and value not in LANGUAGES:
        raise ValueError(f"Language must be one of {', '.join(LANGUAGES.values())}.")
    return value  # type: ignore[return-value]


def validate_brief(raw: Mapping[str, object]) -> Brief | BriefErrors:
    """Check every field at run time; never raises on user input."""
    errors: dict[str, str] = {}
    values: dict[str, object] = {}
    for field in (*BRIEF_FIELDS, *CONTEXT_FIELDS):
        try:
            values[field.key] = check_text(
                field, raw.get(field.key), required=field in BRIEF_FIELDS
            )
        except ValueError as exc:
            errors[field.key] = str(exc)
    for key, default in (("tone", DEFAULT_TONE), ("language", DEFAULT_LANGUAGE)):
        try:
            values[key] = check_choice(key, raw.get(key), default)
        except ValueError as exc:
            errors[key] = str(exc)
    if errors:
        return BriefErrors(errors)
    return Brief(**values)
