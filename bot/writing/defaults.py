"""A workspace's defaults for every brief, set by its admins: the fields and limits are the
brief's own (bot.writing.brief), every one optional.

Product, benefit, call to action, tone and language pre-fill the form of anyone without a
brief of their own; "about us" and the phrases to never use go with every brief, as data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from bot.writing.brief import (
    CONTEXT_FIELDS,
    FIELDS_BY_KEY,
    BriefErrors,
    BriefField,
    check_choice,
    check_text,
)

# The form fields a workspace may set a default for, then the context it sends with each brief.
DEFAULT_FIELDS: tuple[BriefField, ...] = (
    FIELDS_BY_KEY["product"],
    FIELDS_BY_KEY["benefit"],
    FIELDS_BY_KEY["call_to_action"],
)
TEXT_FIELDS: tuple[BriefField, ...] = (*DEFAULT_FIELDS, *CONTEXT_FIELDS)
CHOICES = ("tone", "language")


@dataclass(frozen=True)
class WorkspaceDefaults:
    """What a workspace's admins set; None means "no default"."""

    product: str | None = None
    benefit: str | None = None
    call_to_action: str | None = None
    tone: str | None = None
    language: str | None = None
    about_us: str | None = None
    never_use: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def form_prefill(self) -> dict[str, str]:
        """The values that pre-fill the brief form (the context never appears on it)."""
        keys = [f.key for f in DEFAULT_FIELDS] + list(CHOICES)
        return {k: v for k in keys if (v := getattr(self, k))}

    def context(self) -> dict[str, str | None]:
        """What goes with every brief of the workspace."""
        return {f.key: getattr(self, f.key) for f in CONTEXT_FIELDS}

    @property
    def is_empty(self) -> bool:
        return not any(self.as_dict().values())


def validate_defaults(raw: Mapping[str, object]) -> WorkspaceDefaults | BriefErrors:
    """Check each field as the brief form does, except that any may be left empty."""
    errors: dict[str, str] = {}
    values: dict[str, str | None] = {}
    for field in TEXT_FIELDS:
        try:
            values[field.key] = check_text(field, raw.get(field.key), required=False)
        except ValueError as exc:
            errors[field.key] = str(exc)
    for key in CHOICES:
        try:
            values[key] = check_choice(key, raw.get(key), None)
        except ValueError as exc:
            errors[key] = str(exc)
    if errors:
        return BriefErrors(errors)
    return WorkspaceDefaults(**values)


def form_prefill(previous: Mapping[str, object] | None, defaults: WorkspaceDefaults) -> dict:
    """What the brief form opens with: the user's last brief wins, else the workspace's
    defaults. A last brief from before languages existed takes the workspace's language."""
    if previous:
        prefill = dict(previous)
        if not prefill.get("language") and defaults.language:
            prefill["language"] = defaults.language
        return prefill
    return defaults.form_prefill()
