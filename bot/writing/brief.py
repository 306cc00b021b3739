"""The brief: the one schema behind the modal's fields, their validation and the model's prompt.

Field names drift when the form, the validation and the prompt each spell them; here they are
spelled once (`BRIEF_FIELDS`) and everything else is built from this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

Tone = Literal["Professional", "Friendly", "Casual", "Bold", "Consultative"]
TONES: tuple[str, ...] = get_args(Tone)
DEFAULT_TONE: Tone = "Professional"


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
FIELDS_BY_KEY: dict[str, BriefField] = {f.key: f for f in BRIEF_FIELDS}


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

    def text_fields(self) -> list[tuple[BriefField, str]]:
        return [(f, getattr(self, f.key)) for f in BRIEF_FIELDS]


@dataclass(frozen=True)
class BriefErrors:
    """Per-field messages, keyed by BriefField.key (and "tone"), for the user to fix."""

    errors: dict[str, str]


def validate_brief(raw: Mapping[str, object]) -> Brief | BriefErrors:
    """Check every field at run time; never raises on user input."""
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for field in BRIEF_FIELDS:
        value = raw.get(field.key)
        if value is None or (isinstance(value, str) and value == ""):
            errors[field.key] = f"{field.label} is required."
            continue
        if not isinstance(value, str):
            errors[field.key] = f"{field.label} must be text."
            continue
        stripped = value.strip()
        if not stripped:
            errors[field.key] = f"{field.label} can't be only spaces."
        elif len(stripped) > field.max_length:
            errors[field.key] = (
                f"{field.label} must be at most {field.max_length} characters "
                f"(it has {len(stripped)})."
            )
        else:
            values[field.key] = stripped
    tone = raw.get("tone") or DEFAULT_TONE
    if tone not in TONES:
        errors["tone"] = f"Tone must be one of {', '.join(TONES)}."
    if errors:
        return BriefErrors(errors)
    return Brief(**values, tone=tone)
