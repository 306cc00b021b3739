"""Lead files out: a personalised lead list as a CSV of the user's own columns plus the new
ones, and as one file per sequencer with the field names that tool's import documents; and email
1 of a stored sequence with the tool's merge tag for the personal opening.

Adding a sequencer is one entry in `LEAD_FORMATS`, keyed like its entry in
bot/writing/export.py. Every cell goes through bot/writing/spreadsheet.py, because a lead's
cells and the model's openings are text a spreadsheet would otherwise run as a formula.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.writing.export import ExportFile, slug
from bot.writing.export_formats import FORMATS_BY_KEY
from bot.writing.lead_columns import LeadField, header_key
from bot.writing.lead_list import Lead, LeadList
from bot.writing.personal_prompt import PersonalOpening
from bot.writing.spreadsheet import csv_text

PERSONALIZATION = "personalization"
SUBJECT_A = "subject_a"
NEEDS_REVIEW = "needs_review"

# Where a column's value comes from: a standard field, the model's answer, or derived.
Source = LeadField | Literal["personalization", "subject_a", "needs_review", "domain"]


@dataclass(frozen=True)
class LeadFormat:
    """One sequencer's lead import: its columns (name, source) in order, then the lead's other
    facts as custom fields under their own headers; and the merge tags that read our columns."""

    key: str  # the same key as the tool's sequence export in export.py
    label: str
    columns: tuple[tuple[str, Source], ...]
    opening_tag: str  # the merge tag that inserts `personalization` in an email
    subject_tag: str  # the merge tag that inserts `subject_a`

    def __post_init__(self) -> None:
        sources = {source for _, source in self.columns}
        if not {LeadField.EMAIL, PERSONALIZATION, SUBJECT_A} <= sources:
            raise ValueError(f"{self.key}: a lead file needs the email and both answers")
        if self.key not in FORMATS_BY_KEY:
            raise ValueError(f"{self.key}: no sequence export with this key in export.py")


LEAD_FORMATS: tuple[LeadFormat, ...] = (
    # Instantly's lead fields (API v2 "Create lead": email, first_name, last_name,
    # company_name, job_title, website, personalization; anything else is a custom variable).
    # `personalization` is Instantly's own field and the editor inserts it as
    # {{personalization}}; custom variables are {{name}}.
    # https://developer.instantly.ai/api-reference/lead
    LeadFormat(
        key="instantly",
        label="Instantly",
        columns=(
            ("email", LeadField.EMAIL),
            ("first_name", LeadField.FIRST_NAME),
            ("last_name", LeadField.LAST_NAME),
            ("company_name", LeadField.COMPANY),
            ("job_title", LeadField.TITLE),
            ("website", LeadField.WEBSITE),
            ("linkedin_url", LeadField.LINKEDIN_URL),
            ("personalization", PERSONALIZATION),
            ("subject_a", SUBJECT_A),
        ),
        opening_tag="{{personalization}}",
        subject_tag="{{subject_a}}",
    ),
    # Smartlead's standard lead fields (email, first_name, last_name, company_name, website,
    # linkedin_profile); everything else is a custom field, used in a sequence as {{name}}.
    # Smartlead has no personalization field of its own, so the opening is a custom field.
    # https://api.smartlead.ai/guides/lead-management and
    # https://api.smartlead.ai/api-reference/leads/add-to-campaign
    LeadFormat(
        key="smartlead",
        label="Smartlead",
        columns=(
            ("email", LeadField.EMAIL),
            ("first_name", LeadField.FIRST_NAME),
            ("last_name", LeadField.LAST_NAME),
            ("company_name", LeadField.COMPANY),
            ("website", LeadField.WEBSITE),
            ("linkedin_profile", LeadField.LINKEDIN_URL),
            ("job_title", LeadField.TITLE),
            ("personalization", PERSONALIZATION),
            ("subject_a", SUBJECT_A),
        ),
        opening_tag="{{personalization}}",
        subject_tag="{{subject_a}}",
    ),
    # lemlist's default lead variables: email, firstName, lastName, picture, phone,
    # linkedinUrl, companyName, companyDomain and icebreaker - the variable lemlist keeps for
    # a personal first line, {{icebreaker}}. Other columns become custom variables.
    # https://developer.lemlist.com/api-reference/endpoints/leads/add-lead-variables
    LeadFormat(
        key="lemlist",
        label="lemlist",
        columns=(
            ("email", LeadField.EMAIL),
            ("firstName", LeadField.FIRST_NAME),
            ("lastName", LeadField.LAST_NAME),
            ("companyName", LeadField.COMPANY),
            ("companyDomain", "domain"),
            ("linkedinUrl", LeadField.LINKEDIN_URL),
            ("jobTitle", LeadField.TITLE),
            ("icebreaker", PERSONALIZATION),
            ("subjectA", SUBJECT_A),
        ),
        opening_tag="{{icebreaker}}",
        subject_tag="{{subjectA}}",
    ),
    # Apollo's contact CSV import: First Name, Last Name, Title, Company Name, Company Website
    # (the domain only, without www.), Contact LinkedIn URL, Contact Email; the opening and
    # the subject go into custom contact fields the user maps on import.
    # https://knowledge.apollo.io/hc/en-us/articles/4409161532045-Import-a-CSV-of-Contacts and
    # https://knowledge.apollo.io/hc/en-us/articles/4409735256845-Use-Advanced-Dynamic-Variables
    LeadFormat(
        key="apollo",
        label="Apollo",
        columns=(
            ("Contact Email", LeadField.EMAIL),
            ("First Name", LeadField.FIRST_NAME),
            ("Last Name", LeadField.LAST_NAME),
            ("Title", LeadField.TITLE),
            ("Company Name", LeadField.COMPANY),
            ("Company Website", "domain"),
            ("Contact LinkedIn URL", LeadField.LINKEDIN_URL),
            ("Personalization", PERSONALIZATION),
            ("Subject A", SUBJECT_A),
        ),
        opening_tag="{{personalization}}",
        subject_tag="{{subject_a}}",
    ),
)
LEAD_FORMATS_BY_KEY: dict[str, LeadFormat] = {f.key: f for f in LEAD_FORMATS}
assert len(LEAD_FORMATS_BY_KEY) == len(LEAD_FORMATS), "lead format keys must be unique"


def domain(website: str) -> str:
    """The bare domain of a website cell: "https://www.Northwind.com/about" -> "northwind.com"."""
    text = website.strip()
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    return host.removeprefix("www.")


def _answer_cells(answer: PersonalOpening | None) -> dict[str, str]:
    if answer is None:  # not personalised (failed or not reached): the user must look
        return {PERSONALIZATION: "", SUBJECT_A: "", NEEDS_REVIEW: "TRUE"}
    return {
        PERSONALIZATION: answer.opening,
        SUBJECT_A: answer.subject_a,
        NEEDS_REVIEW: "TRUE" if answer.too_little else "FALSE",
    }


def lead_csv(leads: LeadList, answers: Mapping[str, PersonalOpening], company: str) -> ExportFile:
    """The user's own columns, then personalization, subject_a and needs_review. `answers` is
    keyed by the lead's email as read (`Lead.email`); a lead without one needs review. A column
    of the user's with one of our names is kept, renamed "... (original)"."""
    ours = (PERSONALIZATION, SUBJECT_A, NEEDS_REVIEW)
    header = [
        f"{h} (original)" if header_key(h) in {header_key(n) for n in ours} else h
        for h in leads.columns.headers
    ]
    rows: list[list[object]] = [[*header, *ours]]
    for lead in leads.leads:
        cells = _answer_cells(answers.get(lead.email))
        rows.append([*lead.values, *(cells[name] for name in ours)])
    return ExportFile(
        filename=f"coldcopy-{slug(company)}-leads.csv",
        title=f"Personalised leads: {company}",
        content=csv_text(rows),
        mimetype="text/csv",
    )


def _value(lead: Lead, source: Source, cells: Mapping[str, str]) -> str:
    if source == "domain":
        return domain(lead.website)
    if isinstance(source, LeadField):
        return lead.field(source)
    return cells[source]


def sequencer_lead_file(
    fmt: LeadFormat, leads: LeadList, answers: Mapping[str, PersonalOpening], company: str
) -> ExportFile:
    """The leads in `fmt`'s columns, then the leads' other facts under their own headers (each
    tool imports unknown columns as custom fields or lets the user map them)."""
    names = {header_key(name) for name, _ in fmt.columns}
    facts = [i for i in leads.columns.facts if header_key(leads.columns.headers[i]) not in names]
    header = [name for name, _ in fmt.columns] + [leads.columns.headers[i] for i in facts]
    header.append(NEEDS_REVIEW)
    rows: list[list[object]] = [header]
    for lead in leads.leads:
        cells = _answer_cells(answers.get(lead.email))
        row = [_value(lead, source, cells) for _, source in fmt.columns]
        rows.append([*row, *(lead.values[i] for i in facts), cells[NEEDS_REVIEW]])
    return ExportFile(
        filename=f"coldcopy-{slug(company)}-leads-{fmt.key}.csv",
        title=f"Personalised leads for {fmt.label}: {company}",
        content=csv_text(rows),
        mimetype="text/csv",
    )


def personal_email_one(
    fmt: LeadFormat, sequence: Sequence[Mapping[str, Any]], *, personal_subject: bool = True
) -> dict[str, Any]:
    """Email 1 of a stored sequence, as a new dict, ready to paste into `fmt`'s tool: the
    tool's opening tag as the first paragraph after the greeting, subject A replaced by the
    tool's subject tag (unless `personal_subject` is False), and the sequence's placeholders
    turned into the tool's merge tags as its sequence export writes them."""
    email = dict(sequence[0])
    tags = FORMATS_BY_KEY[fmt.key].merge_tags

    def convert(text: str) -> str:
        for placeholder, tag in tags.items():
            text = text.replace(placeholder, tag)
        return text

    paragraphs = convert(str(email["body"])).split("\n\n")
    greeting = len(paragraphs) > 1 and "\n" not in paragraphs[0] and len(paragraphs[0]) <= 40
    at = 1 if greeting else 0
    email["body"] = "\n\n".join([*paragraphs[:at], fmt.opening_tag, *paragraphs[at:]])
    email["subject_a"] = fmt.subject_tag if personal_subject else convert(str(email["subject_a"]))
    email["subject_b"] = convert(str(email["subject_b"]))
    return email
