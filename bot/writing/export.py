"""Writing a sequence in one export format (bot/writing/export_formats.py): CSV rows, plain
text or Markdown. Files are UTF-8; CSV is quoted by the csv module as RFC 4180 says, and a
cell a spreadsheet would run as a formula is neutralised (bot/writing/spreadsheet.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.writing.export_formats import ExportFormat, Field, Layout, step_delays
from bot.writing.spreadsheet import csv_text


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
    days = [int(email["day"]) for email in sequence]
    delays = step_delays(days, fmt.delay)
    steps: list[_Step] = []
    for number, (email, day, delay) in enumerate(zip(sequence, days, delays, strict=True), 1):
        threaded = fmt.threads_followups and number > 1
        steps.append(
            _Step(
                step=number,
                day=day,
                delay=delay,
                subject_a="" if threaded else _convert(fmt, str(email["subject_a"])),
                subject_b=""
                if threaded or not fmt.ab_subjects
                else _convert(fmt, str(email["subject_b"])),
                body=_convert(fmt, str(email["body"])),
            )
        )
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
