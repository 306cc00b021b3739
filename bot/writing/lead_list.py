"""Reading a lead list: a CSV file as people export it (any of the encodings and delimiters
Excel, Google Sheets and the sequencers write) turned into checked leads, with every row that
could not be used reported by its spreadsheet row number and reason, never silently dropped.

`read_lead_list(data)` returns a `LeadList` or a `LeadListRefused` whose message can be shown as
it is. Rows are read one at a time from the bytes; only the leads are kept, so a 5 MB file costs
about what its leads cost.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from email_validator import EmailNotValidError, validate_email

from bot.writing.lead_columns import FIELD_LABELS, ColumnMap, LeadField, column_name, map_columns
from bot.writing.uploaded_csv import DELIMITERS, SNIFF_CHARS, detect_encoding, sniff_delimiter

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5_000
# A fact longer than this is a pasted page, not a fact; cut, and said so.
MAX_CELL_CHARS = 500
# Invisible characters nobody means to send: C0/C1 controls but tab and newline, and the bidi
# controls that make a cell read differently from how it is stored.
INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2066-\u2069\ufeff]")

RefusalKind = Literal["too_large", "too_many_rows", "no_email_column", "empty", "unreadable"]
IssueKind = Literal["no_email", "invalid_email", "duplicate", "cut", "extra_cells"]


@dataclass(frozen=True)
class LeadListRefused:
    """The file cannot be used at all; `message` says why and what to change."""

    kind: RefusalKind
    message: str


@dataclass(frozen=True)
class RowIssue:
    """Something about one row: it was skipped (no or invalid email), merged into an earlier
    row (same email), or a cell was cut. `row` is the spreadsheet row, the header being row 1."""

    row: int
    kind: IssueKind
    message: str


@dataclass(frozen=True)
class Lead:
    """One lead: the standard fields (empty when the file has none) and every other non-empty
    cell as a named fact. `values` are the cleaned cells in the file's column order."""

    row: int
    email: str  # normalised: the domain in lower case
    first_name: str
    last_name: str
    company: str
    title: str
    website: str
    linkedin_url: str
    facts: tuple[tuple[str, str], ...]
    values: tuple[str, ...]

    def field(self, name: LeadField) -> str:
        return getattr(self, name.value)


@dataclass(frozen=True)
class LeadList:
    columns: ColumnMap
    leads: tuple[Lead, ...]
    rows: int  # data rows read, blank lines not counted
    issues: tuple[RowIssue, ...]
    encoding: str
    delimiter: str

    @property
    def skipped(self) -> tuple[RowIssue, ...]:
        return tuple(i for i in self.issues if i.kind in ("no_email", "invalid_email"))

    @property
    def merged(self) -> tuple[RowIssue, ...]:
        return tuple(i for i in self.issues if i.kind == "duplicate")

    def summary(self, samples: int = 3) -> MappingSummary:
        cols = self.columns
        return MappingSummary(
            mapped=tuple((cols.headers[i], FIELD_LABELS[f]) for f, i in cols.fields.items()),
            facts=tuple(cols.headers[i] for i in cols.facts),
            missing=tuple(FIELD_LABELS[f] for f in cols.missing),
            rows=self.rows,
            valid=len(self.leads),
            invalid=len(self.skipped),
            merged=len(self.merged),
            samples=tuple(
                tuple((h, v) for h, v in zip(cols.headers, lead.values, strict=True) if v)
                for lead in self.leads[:samples]
            ),
            encoding=self.encoding,
            delimiter=DELIMITERS[self.delimiter],
        )


@dataclass(frozen=True)
class MappingSummary:
    """What the confirmation step shows before any lead is personalised."""

    mapped: tuple[tuple[str, str], ...]  # (header in the file, field it fills)
    facts: tuple[str, ...]  # headers kept as facts about the lead
    missing: tuple[str, ...]  # fields no column fills
    rows: int
    valid: int
    invalid: int
    merged: int
    samples: tuple[tuple[tuple[str, str], ...], ...]  # (header, value) of the first leads
    encoding: str
    delimiter: str


def clean(cell: str) -> str:
    return INVISIBLE.sub("", cell.replace("\r\n", "\n")).strip()


def read_lead_list(data: bytes) -> LeadList | LeadListRefused:
    """Check and read a lead list; never raises on what a user uploads."""
    if len(data) > MAX_BYTES:
        return LeadListRefused(
            "too_large",
            f"This file is {len(data) / 1024 / 1024:.1f} MB; a lead list can be at most "
            f"{MAX_BYTES // 1024 // 1024} MB. Split it into smaller files.",
        )
    encoding = detect_encoding(data)
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors="replace", newline="")
    delimiter = sniff_delimiter(stream.read(SNIFF_CHARS))
    stream.seek(0)
    # The csv module refuses a cell over 128 KiB, a process-wide limit; a file within MAX_BYTES
    # may hold one (a pasted page, an unclosed quote), and it is cut and reported instead.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_BYTES))
    try:
        return _read(csv.reader(stream, delimiter=delimiter), encoding, delimiter)
    except csv.Error as exc:
        return LeadListRefused("unreadable", f"This file can't be read as CSV: {exc}.")


def _records(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Non-blank records with their spreadsheet row number (a blank line is a row too)."""
    for number, record in enumerate(reader, 1):
        if any(cell.strip() for cell in record):
            yield number, record


@dataclass
class _Draft:
    row: int
    email: str
    values: list[str]
    merged_from: list[int] = field(default_factory=list)


def _read(reader: Iterator[list[str]], encoding: str, delimiter: str) -> LeadList | LeadListRefused:
    records = _records(reader)
    first = next(records, None)
    if first is None:
        return LeadListRefused("empty", "This file has no rows. Add a header row and leads.")
    _, header_cells = first
    headers = [clean(c) for c in header_cells]
    while headers and not headers[-1]:  # the empty columns Excel leaves after the last one
        headers.pop()
    columns = map_columns(headers)
    if LeadField.EMAIL not in columns.fields:
        found = ", ".join(f'"{h}"' for h in columns.headers)
        return LeadListRefused(
            "no_email_column",
            f"No column holds email addresses. Name one of them Email. Headers found: {found}.",
        )
    width = len(columns.headers)
    drafts: dict[str, _Draft] = {}
    issues: list[RowIssue] = []
    rows = 0
    for number, record in records:
        rows += 1
        if rows > MAX_ROWS:
            continue  # keep counting, so the refusal can say how many rows there are
        if any(c.strip() for c in record[width:]):
            issues.append(
                RowIssue(
                    number,
                    "extra_cells",
                    f"Row {number} has cells after column {column_name(width - 1)}, which "
                    "has no header; they were left out.",
                )
            )
        values = [clean(c) for c in record[:width]] + [""] * (width - len(record))
        for index, value in enumerate(values):
            if len(value) > MAX_CELL_CHARS:
                values[index] = value[:MAX_CELL_CHARS].rstrip()
                issues.append(
                    RowIssue(
                        number,
                        "cut",
                        f'Row {number}, "{columns.headers[index]}": cut to {MAX_CELL_CHARS} '
                        f"characters (it had {len(value)}).",
                    )
                )
        _add_row(number, values, columns, drafts, issues)
    if rows > MAX_ROWS:
        return LeadListRefused(
            "too_many_rows",
            f"This file has {rows:,} rows of leads; a lead list can have at most "
            f"{MAX_ROWS:,}. Split it into smaller files.",
        )
    leads = tuple(_lead(columns, draft) for draft in drafts.values())
    issues.sort(key=lambda issue: issue.row)
    return LeadList(columns, leads, rows, tuple(issues), encoding, delimiter)


def _add_row(
    number: int,
    values: list[str],
    columns: ColumnMap,
    drafts: dict[str, _Draft],
    issues: list[RowIssue],
) -> None:
    raw = values[columns.fields[LeadField.EMAIL]]
    if not raw:
        issues.append(RowIssue(number, "no_email", f"Row {number}: no email address."))
        return
    try:
        email = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        issues.append(
            RowIssue(
                number,
                "invalid_email",
                f'Row {number}: "{raw[:80]}" is not a valid email address ({exc})',
            )
        )
        return
    key = email.casefold()
    earlier = drafts.get(key)
    if earlier is None:
        drafts[key] = _Draft(number, email, values)
        return
    filled = []
    for index, value in enumerate(values):
        if value and not earlier.values[index]:
            earlier.values[index] = value
            filled.append(columns.headers[index])
    issues.append(RowIssue(number, "duplicate", _merge_message(number, earlier, filled)))


def _merge_message(number: int, earlier: _Draft, filled: list[str]) -> str:
    what = f"; it filled {', '.join(filled)}" if filled else ""
    return (
        f"Row {number}: {earlier.email} is also on row {earlier.row}; merged into row "
        f"{earlier.row} (the first row wins, later rows only fill its empty cells{what})."
    )


def _lead(columns: ColumnMap, draft: _Draft) -> Lead:
    def value(name: LeadField) -> str:
        index = columns.fields.get(name)
        return "" if index is None else draft.values[index]

    return Lead(
        row=draft.row,
        email=draft.email,
        first_name=value(LeadField.FIRST_NAME),
        last_name=value(LeadField.LAST_NAME),
        company=value(LeadField.COMPANY),
        title=value(LeadField.TITLE),
        website=value(LeadField.WEBSITE),
        linkedin_url=value(LeadField.LINKEDIN_URL),
        facts=tuple(
            (columns.headers[i], draft.values[i]) for i in columns.facts if draft.values[i]
        ),
        values=tuple(draft.values),
    )
