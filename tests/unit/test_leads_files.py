"""Lead files out: the user's own lead list comes back with the personal line, the subject and a
review flag; each sequencer gets the columns its import documents; and no cell of any file can
run as a formula in a spreadsheet."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from bot.writing.export_formats import FORMATS_BY_KEY
from bot.writing.lead_files import (
    LEAD_FORMATS,
    LEAD_FORMATS_BY_KEY,
    domain,
    lead_csv,
    personal_email_one,
    sequencer_lead_file,
)
from bot.writing.lead_list import LeadList, read_lead_list
from bot.writing.personal_prompt import PersonalOpening
from testkit.fakes.anthropic import sample_sequence

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "leads.csv"
COMPANY = "Northwind Logistics"

# The columns each tool's lead import documents (cited in bot/writing/lead_files.py), in order.
EXPECTED_COLUMNS = {
    "instantly": [
        "email",
        "first_name",
        "last_name",
        "company_name",
        "job_title",
        "website",
        "linkedin_url",
        "personalization",
        "subject_a",
    ],
    "smartlead": [
        "email",
        "first_name",
        "last_name",
        "company_name",
        "website",
        "linkedin_profile",
        "job_title",
        "personalization",
        "subject_a",
    ],
    "lemlist": [
        "email",
        "firstName",
        "lastName",
        "companyName",
        "companyDomain",
        "linkedinUrl",
        "jobTitle",
        "icebreaker",
        "subjectA",
    ],
    "apollo": [
        "Contact Email",
        "First Name",
        "Last Name",
        "Title",
        "Company Name",
        "Company Website",
        "Contact LinkedIn URL",
        "Personalization",
        "Subject A",
    ],
}
EXPECTED_TAGS = {
    "instantly": ("{{personalization}}", "{{subject_a}}"),
    "smartlead": ("{{personalization}}", "{{subject_a}}"),
    "lemlist": ("{{icebreaker}}", "{{subjectA}}"),
    "apollo": ("{{personalization}}", "{{subject_a}}"),
}


def example_leads() -> LeadList:
    leads = read_lead_list(EXAMPLE.read_bytes())
    assert isinstance(leads, LeadList)
    return leads


def answers_for(leads: LeadList) -> dict[str, PersonalOpening]:
    """An answer for every lead but the last; the lead with only an email had too little."""
    answers = {
        lead.email: PersonalOpening(
            opening=f"Opening for {lead.first_name or 'you'}.",
            subject_a=f"Subject for {lead.company or 'your team'}",
            too_little=not lead.first_name,
        )
        for lead in leads.leads[:-1]
    }
    return answers


def rows(content: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content, newline="")))


def test_the_lead_csv_is_the_users_columns_then_the_personal_ones():
    leads = example_leads()
    table = rows(lead_csv(leads, answers_for(leads), COMPANY).content)
    assert table[0] == [*leads.columns.headers, "personalization", "subject_a", "needs_review"]
    assert len(table) == 1 + len(leads.leads)
    priya = table[1]
    assert priya[:2] == ["priya.raman@harborfreight-partners.com", "Priya"]
    assert priya[-3:] == ["Opening for Priya.", "Subject for Harbor Freight Partners", "FALSE"]


def test_a_lead_with_too_little_or_no_answer_is_flagged_for_review():
    leads = example_leads()
    by_email = {row[0]: row for row in rows(lead_csv(leads, answers_for(leads), COMPANY).content)}
    assert by_email["info@example-shop.net"][-1] == "TRUE"  # too little to go on
    last = leads.leads[-1]  # no answer at all (failed, or the job never reached it)
    assert by_email[last.values[0]][-3:] == ["", "", "TRUE"]


def test_a_users_own_personalization_column_is_kept_under_another_name():
    leads = read_lead_list(b"Email,Personalization\na@b.com,their old line\n")
    assert isinstance(leads, LeadList)
    header = rows(lead_csv(leads, {}, COMPANY).content)[0]
    assert header[:2] == ["Email", "Personalization (original)"]
    assert header[2:] == ["personalization", "subject_a", "needs_review"]


@pytest.mark.parametrize("key", EXPECTED_COLUMNS)
def test_each_sequencer_file_has_the_columns_its_import_documents(key):
    leads = example_leads()
    fmt = LEAD_FORMATS_BY_KEY[key]
    exported = sequencer_lead_file(fmt, leads, answers_for(leads), COMPANY)
    header = rows(exported.content)[0]
    assert header == [*EXPECTED_COLUMNS[key], "City", "Notes", "needs_review"]
    assert exported.filename == f"coldcopy-northwind-logistics-leads-{key}.csv"
    assert (fmt.opening_tag, fmt.subject_tag) == EXPECTED_TAGS[key]


def test_the_table_has_one_entry_per_sequencer_export_and_nothing_else():
    assert [f.key for f in LEAD_FORMATS] == list(EXPECTED_COLUMNS)
    assert all(f.key in FORMATS_BY_KEY for f in LEAD_FORMATS)


@pytest.mark.parametrize("key", EXPECTED_COLUMNS)
def test_each_sequencer_file_puts_the_answer_in_its_personalization_field(key):
    leads = example_leads()
    fmt = LEAD_FORMATS_BY_KEY[key]
    table = rows(sequencer_lead_file(fmt, leads, answers_for(leads), COMPANY).content)
    first = dict(zip(table[0], table[1], strict=True))
    opening_column = EXPECTED_COLUMNS[key][-2]
    assert first[opening_column] == "Opening for Priya."
    assert first[EXPECTED_COLUMNS[key][0]] == "priya.raman@harborfreight-partners.com"


def test_tools_that_take_a_domain_get_the_bare_domain():
    leads = example_leads()
    for key, column in (("lemlist", "companyDomain"), ("apollo", "Company Website")):
        table = rows(sequencer_lead_file(LEAD_FORMATS_BY_KEY[key], leads, {}, COMPANY).content)
        assert dict(zip(table[0], table[1], strict=True))[column] == "harborfreight-partners.com"
    assert domain("https://www.Northwind.com/about?x=1") == "northwind.com"
    assert domain("lumenbank.co.uk") == "lumenbank.co.uk"
    assert domain("") == ""


def every_output_file(answers):
    leads = example_leads()
    yield "lead csv", lead_csv(leads, answers, COMPANY).content
    for fmt in LEAD_FORMATS:
        yield fmt.key, sequencer_lead_file(fmt, leads, answers, COMPANY).content


def test_formula_cells_are_neutralised_in_every_output_file():
    leads = example_leads()
    hostile = {  # what a model steered by a cell could write
        lead.email: PersonalOpening(
            opening='=HYPERLINK("http://evil.example","Hi")',
            subject_a="+1 for you",
            too_little=False,
        )
        for lead in leads.leads
    }
    for name, content in every_output_file(hostile):
        cells = [cell for row in rows(content) for cell in row]
        assert not [c for c in cells if c.startswith(("=", "+", "-", "@"))], name
        assert '\'=HYPERLINK("http://evil.example","click")' in cells, name  # the lead's cell
        assert '\'=HYPERLINK("http://evil.example","Hi")' in cells, name  # the model's


def test_email_one_gets_the_tools_opening_tag_after_the_greeting():
    sequence = sample_sequence()
    before = [dict(email) for email in sequence]
    email = personal_email_one(LEAD_FORMATS_BY_KEY["instantly"], sequence)
    paragraphs = email["body"].split("\n\n")
    assert paragraphs[:3] == [
        "Hi {{firstName}},",
        "{{personalization}}",
        paragraphs[2],
    ]
    assert paragraphs[2].startswith("When I talk to operations leads")
    assert email["subject_a"] == "{{subject_a}}"
    assert email["subject_b"] == "A question about dispatch at {{companyName}}"
    assert "[FirstName]" not in email["body"] and "[Company]" not in email["body"]
    assert sequence == before  # the stored sequence is not changed


def test_email_one_keeps_its_own_subject_when_asked():
    fmt = LEAD_FORMATS_BY_KEY["lemlist"]
    email = personal_email_one(fmt, sample_sequence(), personal_subject=False)
    assert email["subject_a"] == "Re-keying orders at {{companyName}}"
    assert "{{icebreaker}}" in email["body"]


def test_a_body_without_a_greeting_starts_with_the_opening():
    sequence = [{"day": 1, "subject_a": "s", "subject_b": "t", "body": "Teams re-key orders."}]
    email = personal_email_one(LEAD_FORMATS_BY_KEY["smartlead"], sequence)
    assert email["body"] == "{{personalization}}\n\nTeams re-key orders."
