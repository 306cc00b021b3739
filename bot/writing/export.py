"""Export formats: the table of tools a finished sequence can be exported to, and the one
function that writes a sequence in any of them.

Each entry says what its tool expects: the merge tag for every placeholder the model writes,
whether delays count days after the previous step or the day of the sequence, whether
follow-ups leave the subject empty so the tool sends them as "Re:" replies in one thread,
whether it takes an A/B subject, and the file layout. Adding a sequencer is one entry in
`EXPORT_FORMATS`. Files are UTF-8; CSV is quoted by the csv module as RFC 4180 says, and a
cell a spreadsheet would run as a formula is neutralised (bot/writing/spreadsheet.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from bot.writing.placeholders import COMPANY, FIRST_NAME, PLACEHOLDERS
from bot.writing.spreadsheet import csv_text


class Delay(StrEnum):
    """How a tool counts the wait before a step."""

    AFTER_PREVIOUS = "days after the previous step"  # 0 for the first email
    ABSOLUTE = "day of the sequence"  # the first email on day 1


class Layout(StrEnum):
    """How a file holds the steps."""

    STEP_ROWS = "one row per step"
    LEAD_ROW = "one row per lead, the steps in columns"
    TEXT = "plain text"
    MARKDOWN = "Markdown"


# What a column carries. In the LEAD_ROW layout a column name holds "{n}", the step number.
Field = Literal["step", "delay", "subject_a", "subject_b", "body"]
CSV_LAYOUTS = (Layout.STEP_ROWS, Layout.LEAD_ROW)


@dataclass(frozen=True)
class ExportFormat:
    """One tool's import format."""

    key: str  # stable: it travels in the Slack menu's option values
    label: str
    extension: str
    mimetype: str
    merge_tags: Mapping[str, str]  # every placeholder the model writes -> the tool's tag
    delay: Delay
    threads_followups: bool  # follow-up subjects left empty: the tool replies in one thread
    ab_subjects: bool
    layout: Layout
    columns: tuple[tuple[str, Field], ...] = ()
    # LEAD_ROW: the lead's own columns, written empty for the user to fill.
    lead_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if set(self.merge_tags) != set(PLACEHOLDERS):
            raise ValueError(f"{self.key}: merge_tags must map exactly {PLACEHOLDERS}")
        fields = {field for _, field in self.columns}
        if (self.layout in CSV_LAYOUTS) != bool(self.columns):
            raise ValueError(f"{self.key}: CSV layouts name their columns, text layouts none")
        if "subject_b" in fields and not self.ab_subjects:
            raise ValueError(f"{self.key}: a subject B column needs ab_subjects")
        if self.layout is Layout.LEAD_ROW and not all("{n}" in name for name, _ in self.columns):
            raise ValueError(f"{self.key}: a lead row's step columns must hold {{n}}")


@dataclass(frozen=True)
class ExportFile:
    """A sequence written in one format, ready to upload."""

    filename: str
    title: str
    content: str
    mimetype: str


@dataclass(frozen=True)
class _Step:
    step: int
    day: int
    delay: int
    subject_a: str
    subject_b: str
    body: str

    def value(self, field: Field) -> str | int:
        return getattr(self, field)


# Our own columns, as the first CSV export had them, for any tool not listed here: absolute
# days, both subjects on every step, placeholders as the {{snake_case}} tags many tools read.
GENERIC_CSV = ExportFormat(
    key="generic",
    label="Generic CSV",
    extension="csv",
    mimetype="text/csv",
    merge_tags={FIRST_NAME: "{{first_name}}", COMPANY: "{{company}}"},
    delay=Delay.ABSOLUTE,
    threads_followups=False,
    ab_subjects=True,
    layout=Layout.STEP_ROWS,
    columns=(
        ("step", "step"),
        ("day", "day"),
        ("subject_a", "subject_a"),
        ("subject_b", "subject_b"),
        ("body", "body"),
    ),
)

EXPORT_FORMATS: tuple[ExportFormat, ...] = (
    GENERIC_CSV,
    # Instantly: campaign steps wait `delay` days after the previous step and hold subject/body
    # variants (A/B); a follow-up with an empty subject goes out as a reply in the same thread;
    # lead variables are {{firstName}} and {{companyName}}.
    # https://developer.instantly.ai/ (API v2, Campaign: sequences[].steps[].delay, variants[])
    ExportFormat(
        key="instantly",
        label="Instantly",
        extension="csv",
        mimetype="text/csv",
        merge_tags={FIRST_NAME: "{{firstName}}", COMPANY: "{{companyName}}"},
        delay=Delay.AFTER_PREVIOUS,
        threads_followups=True,
        ab_subjects=True,
        layout=Layout.STEP_ROWS,
        columns=(
            ("step", "step"),
            ("delay_days", "delay"),
            ("subject", "subject_a"),
            ("body", "body"),
            ("variant_b_subject", "subject_b"),
        ),
    ),
    # Smartlead: seq_number, seq_delay_details.delay_in_days (after the previous email),
    # subject, email_body and A/B seq_variants; an empty follow-up subject threads the email;
    # variables {{first_name}}, {{company_name}}.
    # https://api.smartlead.ai/core/campaigns and
    # https://helpcenter.smartlead.ai/en/articles/59-how-do-follow-ups-work-in-smartlead
    ExportFormat(
        key="smartlead",
        label="Smartlead",
        extension="csv",
        mimetype="text/csv",
        merge_tags={FIRST_NAME: "{{first_name}}", COMPANY: "{{company_name}}"},
        delay=Delay.AFTER_PREVIOUS,
        threads_followups=True,
        ab_subjects=True,
        layout=Layout.STEP_ROWS,
        columns=(
            ("seq_number", "step"),
            ("delay_in_days", "delay"),
            ("subject", "subject_a"),
            ("email_body", "body"),
            ("variant_b_subject", "subject_b"),
        ),
    ),
    # lemlist: default lead variables {{firstName}} and {{companyName}}; steps wait a number
    # of days after the previous one, an empty follow-up subject replies in the thread, and
    # steps can be A/B tested.
    # https://developer.lemlist.com/api-reference/endpoints/leads/add-lead-variables and
    # https://help.lemlist.com/en/articles/12875247-how-does-sequencing-and-lead-management-work-in-lemlist-campaigns
    ExportFormat(
        key="lemlist",
        label="lemlist",
        extension="csv",
        mimetype="text/csv",
        merge_tags={FIRST_NAME: "{{firstName}}", COMPANY: "{{companyName}}"},
        delay=Delay.AFTER_PREVIOUS,
        threads_followups=True,
        ab_subjects=True,
        layout=Layout.STEP_ROWS,
        columns=(
            ("step", "step"),
            ("delay_days", "delay"),
            ("subject", "subject_a"),
            ("body", "body"),
            ("subject_b", "subject_b"),
        ),
    ),
    # Apollo: emailer_steps wait `wait_time` days after the previous step; more than one
    # touch per step is an A/B test; later automatic emails can reply in the first thread;
    # dynamic variables {{first_name}} and {{company}}.
    # https://docs.apollo.io/reference/create-sequence and
    # https://knowledge.apollo.io/hc/en-us/articles/4409735256845-Use-Advanced-Dynamic-Variables
    ExportFormat(
        key="apollo",
        label="Apollo",
        extension="csv",
        mimetype="text/csv",
        merge_tags={FIRST_NAME: "{{first_name}}", COMPANY: "{{company}}"},
        delay=Delay.AFTER_PREVIOUS,
        threads_followups=True,
        ab_subjects=True,
        layout=Layout.STEP_ROWS,
        columns=(
            ("position", "step"),
            ("wait_time_days", "delay"),
            ("subject", "subject_a"),
            ("body", "body"),
            ("touch_b_subject", "subject_b"),
        ),
    ),
    # HubSpot sequences: each step runs a number of days after the previous one, follow-up
    # emails thread onto the first, no A/B subjects; personalization tokens
    # {{contact.firstname}} and {{contact.company}}.
    # https://knowledge.hubspot.com/sequences/what-time-will-steps-execute-sequences and
    # https://knowledge.hubspot.com/conversations/how-do-i-add-personalization-tokens-to-a-template-or-snippet
    ExportFormat(
        key="hubspot",
        label="HubSpot",
        extension="csv",
        mimetype="text/csv",
        merge_tags={FIRST_NAME: "{{contact.firstname}}", COMPANY: "{{contact.company}}"},
        delay=Delay.AFTER_PREVIOUS,
        threads_followups=True,
        ab_subjects=False,
        layout=Layout.STEP_ROWS,
        columns=(
            ("step", "step"),
            ("delay_days", "delay"),
            ("subject", "subject_a"),
            ("body", "body"),
        ),
    ),
    # For copy and paste into any tool or document.
    ExportFormat(
        key="text",
        label="Plain text",
        extension="txt",
        mimetype="text/plain",
        merge_tags={FIRST_NAME: "{{first_name}}", COMPANY: "{{company}}"},
        delay=Delay.ABSOLUTE,
        threads_followups=False,
        ab_subjects=True,
        layout=Layout.TEXT,
    ),
    ExportFormat(
        key="markdown",
        label="Markdown",
        extension="md",
        mimetype="text/markdown",
        merge_tags={FIRST_NAME: "{{first_name}}", COMPANY: "{{company}}"},
        delay=Delay.ABSOLUTE,
        threads_followups=False,
        ab_subjects=True,
        layout=Layout.MARKDOWN,
    ),
)
FORMATS_BY_KEY: dict[str, ExportFormat] = {f.key: f for f in EXPORT_FORMATS}
assert len(FORMATS_BY_KEY) == len(EXPORT_FORMATS), "export format keys must be unique"


def export_sequence(fmt: ExportFormat, sequence: Sequence[Mapping], company: str) -> ExportFile:
    """The sequence (emails as stored: day, subject_a, subject_b, body) as one file in `fmt`."""
    steps = _steps(fmt, sequence)
    if fmt.layout is Layout.STEP_ROWS:
        content = _step_rows(fmt, steps)
    elif fmt.layout is Layout.LEAD_ROW:
        content = _lead_row(fmt, steps)
    elif fmt.layout is Layout.MARKDOWN:
        content = _markdown(steps, company)
    else:
        content = _text(steps, company)
    return ExportFile(
        filename=f"coldcopy-{slug(company)}-{fmt.key}.{fmt.extension}",
        title=f"Cold email sequence: {company} ({fmt.label})",
        content=content,
        mimetype=fmt.mimetype,
    )


def slug(text: str) -> str:
    """A file-name-safe form of a company name: "Café Nørd & Co." -> "cafe-nrd-co"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:40] or "sequence"


def _convert(fmt: ExportFormat, text: str) -> str:
    for placeholder, tag in fmt.merge_tags.items():
        text = text.replace(placeholder, tag)
    return text


def _steps(fmt: ExportFormat, sequence: Sequence[Mapping]) -> list[_Step]:
    steps: list[_Step] = []
    previous_day = 1  # the sequence starts on day 1, so the first email waits day - 1 days
    for number, email in enumerate(sequence, 1):
        day = int(email["day"])
        threaded = fmt.threads_followups and number > 1
        steps.append(
            _Step(
                step=number,
                day=day,
                delay=day if fmt.delay is Delay.ABSOLUTE else day - previous_day,
                subject_a="" if threaded else _convert(fmt, str(email["subject_a"])),
                subject_b=""
                if threaded or not fmt.ab_subjects
                else _convert(fmt, str(email["subject_b"])),
                body=_convert(fmt, str(email["body"])),
            )
        )
        previous_day = day
    return steps


def _step_rows(fmt: ExportFormat, steps: list[_Step]) -> str:
    header = [name for name, _ in fmt.columns]
    return csv_text([header] + [[s.value(field) for _, field in fmt.columns] for s in steps])


def _lead_row(fmt: ExportFormat, steps: list[_Step]) -> str:
    header = list(fmt.lead_columns)
    row: list = [""] * len(fmt.lead_columns)
    for s in steps:
        for name, field in fmt.columns:
            header.append(name.format(n=s.step))
            row.append(s.value(field))
    return csv_text([header, row])


def _text(steps: list[_Step], company: str) -> str:
    parts = [f"Cold email sequence: {company}"]
    for s in steps:
        parts.append(
            f"Email {s.step} · Day {s.day}\nSubject A: {s.subject_a}\nSubject B: {s.subject_b}"
            f"\n\n{s.body}"
        )
    return "\n\n---\n\n".join(parts) + "\n"


def _markdown(steps: list[_Step], company: str) -> str:
    parts = [f"# Cold email sequence: {company}"]
    for s in steps:
        parts.append(
            f"## Email {s.step} · Day {s.day}\n\n**Subject A:** {s.subject_a}  \n"
            f"**Subject B:** {s.subject_b}\n\n{s.body}"
        )
    return "\n\n".join(parts) + "\n"
