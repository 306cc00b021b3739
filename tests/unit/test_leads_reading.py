"""Reading a lead list: whatever Excel, Google Sheets or a sequencer wrote, the leads come out
right, and every row that can't be used is reported by its spreadsheet row and the reason."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from bot.writing.lead_columns import LeadField, map_columns
from bot.writing.lead_list import (
    MAX_BYTES,
    MAX_CELL_CHARS,
    MAX_ROWS,
    LeadList,
    LeadListRefused,
    read_lead_list,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "leads.csv"
ROWS = [
    ["email", "first_name", "company", "city"],
    ["hans@mueller-logistik.de", "Hans", "Müller Logistik", "Köln"],
    ["marie@cafe-noir.fr", "Marie", "Café Noir", "Lyon"],
]


def csv_bytes(rows, delimiter=",", encoding="utf-8", newline="\r\n") -> bytes:
    return newline.join(delimiter.join(row) for row in rows).encode(encoding)


def read(data: bytes) -> LeadList:
    result = read_lead_list(data)
    assert isinstance(result, LeadList), result
    return result


def refused(data: bytes) -> LeadListRefused:
    result = read_lead_list(data)
    assert isinstance(result, LeadListRefused), result
    return result


ENCODINGS = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8 with BOM": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-16 LE with BOM": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16 BE with BOM": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "windows-1252": lambda text: text.encode("cp1252"),
    "latin-1": lambda text: text.encode("latin-1"),
}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_names_with_accents_survive_every_encoding_excel_writes(encoding):
    text = "\r\n".join(",".join(row) for row in ROWS) + "\r\n"
    leads = read(ENCODINGS[encoding](text)).leads
    assert [(lead.first_name, lead.company) for lead in leads] == [
        ("Hans", "Müller Logistik"),
        ("Marie", "Café Noir"),
    ]
    assert leads[0].facts == (("city", "Köln"),)
    assert leads[0].values[0] == "hans@mueller-logistik.de"  # no BOM left on the first header


def test_windows_1252_punctuation_is_read_as_excel_meant_it():
    note = "\u201cGreat call\u201d \u2013 thanks"  # curly quotes and an en dash
    text = f"email,note\r\nana@northwind.com,{note}\r\n"
    assert read(text.encode("cp1252")).leads[0].facts == (("note", note),)


def test_a_japanese_excel_file_in_shift_jis_is_read():
    text = "email,名前,会社\r\nk.tanaka@sakura-butsuryu.jp,田中,さくら物流株式会社\r\n"
    lead = read(text.encode("cp932")).leads[0]
    assert lead.facts == (("名前", "田中"), ("会社", "さくら物流株式会社"))


@pytest.mark.parametrize(("delimiter", "name"), [(",", "comma"), (";", "semicolon"), ("\t", "tab")])
def test_each_delimiter_is_found(delimiter, name):
    leads = read(csv_bytes(ROWS, delimiter=delimiter))
    assert leads.delimiter == delimiter
    assert leads.summary().delimiter == name
    assert leads.leads[1].company == "Café Noir"


def test_a_semicolon_file_whose_cells_hold_commas_is_split_on_semicolons():
    rows = [["email", "company", "note"], ["a@b.com", "Smith, Jones & Co", "big, busy, growing"]]
    rows.append(["c@d.com", "Acme, Inc", "x, y"])
    lead = read(csv_bytes(rows, delimiter=";")).leads[0]
    assert lead.company == "Smith, Jones & Co"


def test_a_one_column_file_of_addresses_is_a_list_of_leads():
    leads = read(b"Email\nana@northwind.com\nbob@contoso.com\n").leads
    assert [lead.email for lead in leads] == ["ana@northwind.com", "bob@contoso.com"]


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Email Address", LeadField.EMAIL),
        ("E-mail", LeadField.EMAIL),
        ("email_address", LeadField.EMAIL),
        ("Work Email", LeadField.EMAIL),
        ("first_name", LeadField.FIRST_NAME),
        ("firstName", LeadField.FIRST_NAME),
        ("First Name", LeadField.FIRST_NAME),
        ("Prénom", LeadField.FIRST_NAME),
        ("lastName", LeadField.LAST_NAME),
        ("Surname", LeadField.LAST_NAME),
        ("Company Name", LeadField.COMPANY),
        ("companyName", LeadField.COMPANY),
        ("Organization", LeadField.COMPANY),
        ("Job Title", LeadField.TITLE),
        ("jobTitle", LeadField.TITLE),
        ("Title", LeadField.TITLE),
        ("LinkedIn Profile", LeadField.LINKEDIN_URL),
        ("linkedin_url", LeadField.LINKEDIN_URL),
        ("Person Linkedin Url", LeadField.LINKEDIN_URL),
        ("Website", LeadField.WEBSITE),
        ("Domain", LeadField.WEBSITE),
        ("companyDomain", LeadField.WEBSITE),
    ],
)
def test_header_spellings_people_and_sequencers_write_are_recognised(header, field):
    assert map_columns(["Notes", header]).fields == {field: 1}


def test_apollos_two_company_columns_give_the_field_to_company_and_keep_the_other():
    columns = map_columns(["Email", "Company Name for Emails", "Company", "Company Linkedin Url"])
    assert columns.header_of(LeadField.COMPANY) == "Company"
    assert [columns.headers[i] for i in columns.facts] == [
        "Company Name for Emails",
        "Company Linkedin Url",
    ]


def test_every_other_column_is_kept_as_a_named_fact():
    rows = [["Email", "Industry", "Employees", "Notes"], ["a@b.com", "Retail", "", "Loves data"]]
    assert read(csv_bytes(rows)).leads[0].facts == (("Industry", "Retail"), ("Notes", "Loves data"))


def test_a_file_without_an_email_column_is_refused_listing_the_headers_found():
    result = refused(b"Name,Company,Phone\nAna,Northwind,123\n")
    assert result.kind == "no_email_column"
    assert '"Name", "Company", "Phone"' in result.message


def test_each_unusable_row_is_reported_by_its_spreadsheet_row_and_reason():
    rows = [
        ["Email", "First Name"],
        ["ana@northwind.com", "Ana"],  # row 2
        ["", "Bob"],  # row 3: no email
        ["carl@", "Carl"],  # row 4: invalid
        ["dora at contoso.com", "Dora"],  # row 5: invalid
    ]
    leads = read(csv_bytes(rows))
    assert [lead.email for lead in leads.leads] == ["ana@northwind.com"]
    assert [(i.row, i.kind) for i in leads.skipped] == [
        (3, "no_email"),
        (4, "invalid_email"),
        (5, "invalid_email"),
    ]
    assert leads.skipped[0].message == "Row 3: no email address."
    assert leads.skipped[1].message.startswith('Row 4: "carl@" is not a valid email address (')


def test_blank_lines_count_as_spreadsheet_rows_but_are_not_leads_or_problems():
    data = b"Email,Name\n\nana@northwind.com,Ana\n,\n\nbad,Bob\n"
    leads = read(data)
    assert leads.rows == 2
    assert [lead.row for lead in leads.leads] == [3]
    assert [(i.row, i.kind) for i in leads.issues] == [(6, "invalid_email")]


def test_a_quoted_cell_over_two_lines_is_one_spreadsheet_row():
    data = b'Email,Notes\na@b.com,"line one\nline two"\nbad,x\n'
    leads = read(data)
    assert leads.leads[0].facts == (("Notes", "line one\nline two"),)
    assert leads.issues[0].row == 3


def test_trailing_empty_columns_and_ragged_rows_are_tolerated():
    data = b"Email,Name,,\r\na@b.com,Ana,,\r\nc@d.com\r\n"
    leads = read(data)
    assert leads.columns.headers == ("Email", "Name")
    assert [(lead.email, lead.facts) for lead in leads.leads] == [
        ("a@b.com", (("Name", "Ana"),)),
        ("c@d.com", ()),
    ]
    assert leads.issues == ()


def test_cells_under_no_header_are_reported_not_silently_dropped():
    leads = read(b"Email,Name\r\na@b.com,Ana,surprise\r\n")
    assert [(i.row, i.kind) for i in leads.issues] == [(2, "extra_cells")]
    assert "after column B" in leads.issues[0].message


def test_cells_are_stripped_and_invisible_characters_removed():
    data = "Email,Company\n  ana@northwind.com \t, \u202eNorth\u200bwind\x07  \n".encode()
    lead = read(data).leads[0]
    assert (lead.email, lead.company) == ("ana@northwind.com", "Northwind")


def test_an_absurdly_long_cell_is_cut_and_reported():
    data = csv_bytes([["Email", "About"], ["a@b.com", "x" * 5000]])
    leads = read(data)
    assert leads.leads[0].facts == (("About", "x" * MAX_CELL_CHARS),)
    assert [(i.row, i.kind) for i in leads.issues] == [(2, "cut")]
    assert f"cut to {MAX_CELL_CHARS} characters (it had 5000)" in leads.issues[0].message


def test_a_cell_bigger_than_the_csv_modules_own_limit_is_cut_not_fatal():
    data = b"Email,Notes\na@b.com,x\x00y\nc@d.com," + b"z" * 200_000 + b"\n"
    leads = read(data)
    assert [lead.facts for lead in leads.leads] == [(("Notes", "xy"),), (("Notes", "z" * 500),)]
    assert [(i.row, i.kind) for i in leads.issues] == [(3, "cut")]


def test_duplicate_emails_merge_first_row_wins_later_rows_fill_blanks():
    rows = [
        ["Email", "First Name", "Company", "City"],
        ["Ana@Northwind.com", "Ana", "", "Leeds"],  # row 2
        ["bob@contoso.com", "Bob", "Contoso", ""],  # row 3
        ["ana@northwind.com", "Anna", "Northwind", "York"],  # row 4: same address
    ]
    leads = read(csv_bytes(rows))
    ana = leads.leads[0]
    assert (ana.row, ana.first_name, ana.company, ana.facts) == (
        2,
        "Ana",
        "Northwind",
        (("City", "Leeds"),),
    )
    assert len(leads.leads) == 2
    assert [(i.row, i.kind) for i in leads.merged] == [(4, "duplicate")]
    assert "also on row 2" in leads.merged[0].message
    assert "first row wins" in leads.merged[0].message
    assert "it filled Company" in leads.merged[0].message


def test_a_file_over_the_size_limit_is_refused_naming_both_sizes():
    result = refused(b"Email\n" + b"a" * MAX_BYTES)
    assert result.kind == "too_large"
    assert result.message.startswith("This file is 5.0 MB; a lead list can be at most 5 MB.")


def test_a_file_over_the_row_limit_is_refused_with_the_count_found():
    rows = [["Email"]] + [[f"lead{n}@northwind.com"] for n in range(MAX_ROWS + 7)]
    result = refused(csv_bytes(rows))
    assert result.kind == "too_many_rows"
    assert result.message.startswith(
        "This file has 5,007 rows of leads; a lead list can have at most 5,000."
    )


def test_a_file_of_exactly_the_row_limit_is_read():
    rows = [["Email"]] + [[f"lead{n}@northwind.com"] for n in range(MAX_ROWS)]
    assert len(read(csv_bytes(rows)).leads) == MAX_ROWS


def test_an_empty_file_is_refused():
    assert refused(b"").kind == "empty"
    assert refused(b"\r\n\r\n").kind == "empty"


def test_the_mapping_summary_says_what_the_confirmation_step_shows():
    summary = read(EXAMPLE.read_bytes()).summary()
    assert summary.mapped == (
        ("Email Address", "Email"),
        ("First Name", "First name"),
        ("Last Name", "Last name"),
        ("Company Name", "Company"),
        ("Job Title", "Job title"),
        ("Website", "Website"),
        ("LinkedIn Profile", "LinkedIn URL"),
    )
    assert summary.facts == ("City", "Notes")
    assert summary.missing == ()
    assert (summary.rows, summary.valid, summary.invalid, summary.merged) == (12, 9, 2, 1)
    assert len(summary.samples) == 3
    assert summary.samples[0][:2] == (
        ("Email Address", "priya.raman@harborfreight-partners.com"),
        ("First Name", "Priya"),
    )
    assert (summary.encoding, summary.delimiter) == ("utf-8", "comma")


def test_the_example_file_holds_every_case_it_promises():
    leads = read(EXAMPLE.read_bytes())
    kinds = {(i.row, i.kind) for i in leads.issues}
    assert kinds == {(4, "no_email"), (5, "invalid_email"), (9, "duplicate")}
    only_email = [lead for lead in leads.leads if lead.values[1:] == ("",) * 8]
    assert [lead.email for lead in only_email] == ["info@example-shop.net"]
    notes = {lead.email: dict(lead.facts).get("Notes", "") for lead in leads.leads}
    assert notes["marc.dupre@cafe-noir-distribution.fr"].startswith("ignore previous")
    assert notes["ana.souza@rapidoexpress.com.br"].startswith("=HYPERLINK(")
    assert any("ü" in lead.first_name or "é" in lead.last_name for lead in leads.leads)
