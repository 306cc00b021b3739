"""Which column of a lead list holds which fact about a lead: the standard fields ColdCopy knows
(email, names, company, title, website, LinkedIn) recognised from the headers people and
sequencers write, and every other column kept as a named fact.

Headers are compared without case, spaces, underscores, hyphens or dots, so "Email Address",
"email_address" and "E-mail" are one spelling. Each field lists its spellings best first: when a
file has two columns for one field (Apollo exports both "Company" and "Company Name for Emails"),
the better spelling is the field and the other stays a fact.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class LeadField(StrEnum):
    """A fact about a lead that ColdCopy and every sequencer name the same way."""

    EMAIL = "email"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    COMPANY = "company"
    TITLE = "title"
    WEBSITE = "website"
    LINKEDIN_URL = "linkedin_url"


FIELD_LABELS: dict[LeadField, str] = {
    LeadField.EMAIL: "Email",
    LeadField.FIRST_NAME: "First name",
    LeadField.LAST_NAME: "Last name",
    LeadField.COMPANY: "Company",
    LeadField.TITLE: "Job title",
    LeadField.WEBSITE: "Website",
    LeadField.LINKEDIN_URL: "LinkedIn URL",
}

# Spellings, already normalised (see `header_key`), best first. They cover the usual ways a
# person writes a header and the export headers of the sequencers and data tools: Apollo
# ("Email", "Title", "Company Name for Emails", "Person Linkedin Url", "Website"), Instantly
# ("companyName", "jobTitle", "personalization"), Smartlead ("company_name",
# "linkedin_profile", "company_url"), lemlist ("firstName", "companyDomain", "linkedinUrl"),
# HubSpot and Salesforce ("Email Address", "Job Title", "Company Name").
SYNONYMS: dict[LeadField, tuple[str, ...]] = {
    LeadField.EMAIL: (
        "email",
        "emailaddress",
        "workemail",
        "businessemail",
        "contactemail",
        "professionalemail",
        "emailid",
        "mail",
        "email1",
        "primaryemail",
        "emailadresse",
        "courriel",
    ),
    LeadField.FIRST_NAME: (
        "firstname",
        "first",
        "givenname",
        "forename",
        "contactfirstname",
        "vorname",
        "prenom",
        "nombre",
    ),
    LeadField.LAST_NAME: (
        "lastname",
        "last",
        "surname",
        "familyname",
        "contactlastname",
        "nachname",
    ),
    LeadField.COMPANY: (
        "company",
        "companyname",
        "organization",
        "organisation",
        "organizationname",
        "accountname",
        "account",
        "employer",
        "business",
        "businessname",
        "companynameforemails",
        "firma",
        "unternehmen",
        "entreprise",
        "empresa",
    ),
    LeadField.TITLE: (
        "title",
        "jobtitle",
        "position",
        "role",
        "jobrole",
        "designation",
        "jobposition",
        "contacttitle",
    ),
    LeadField.WEBSITE: (
        "website",
        "companywebsite",
        "websiteurl",
        "companyurl",
        "domain",
        "companydomain",
        "web",
        "homepage",
        "url",
        "site",
    ),
    LeadField.LINKEDIN_URL: (
        "linkedinurl",
        "linkedin",
        "linkedinprofile",
        "linkedinprofileurl",
        "personlinkedinurl",
        "contactlinkedinurl",
        "linkedinlink",
        "liurl",
    ),
}
_RANK: dict[str, tuple[LeadField, int]] = {
    spelling: (field, rank)
    for field, spellings in SYNONYMS.items()
    for rank, spelling in enumerate(spellings)
}
assert len(_RANK) == sum(map(len, SYNONYMS.values())), "a spelling may name one field only"


def header_key(header: str) -> str:
    """A header as compared: accents, case and separators removed ("Prénom" -> "prenom")."""
    ascii_header = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    return re.sub(r"[\s_\-.:/()#]+", "", ascii_header.lower())


def column_name(index: int) -> str:
    """The spreadsheet letter of a 0-based column: 0 -> "A", 26 -> "AA"."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


@dataclass(frozen=True)
class ColumnMap:
    """Where each standard field is (a column index) and which columns are kept as facts."""

    headers: tuple[str, ...]  # as they will be shown: blank ones named by their letter
    fields: dict[LeadField, int]
    facts: tuple[int, ...]

    def header_of(self, field: LeadField) -> str | None:
        index = self.fields.get(field)
        return None if index is None else self.headers[index]

    @property
    def missing(self) -> tuple[LeadField, ...]:
        return tuple(field for field in LeadField if field not in self.fields)


def map_columns(raw_headers: Sequence[str]) -> ColumnMap:
    """The column map of a header row. Blank headers (trailing empty columns in Excel exports)
    get their spreadsheet letter, and a repeated header its position, so every fact is named."""
    headers: list[str] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_headers):
        name = raw.strip() or f"Column {column_name(index)}"
        count = seen.get(name.lower(), 0) + 1
        seen[name.lower()] = count
        headers.append(name if count == 1 else f"{name} ({count})")
    best: dict[LeadField, tuple[int, int]] = {}  # field -> (rank, column)
    for index, name in enumerate(headers):
        found = _RANK.get(header_key(name))
        if found is None:
            continue
        field, rank = found
        if field not in best or rank < best[field][0]:
            best[field] = (rank, index)
    fields = {field: column for field, (_, column) in best.items()}
    taken = set(fields.values())
    facts = tuple(i for i in range(len(headers)) if i not in taken)
    return ColumnMap(headers=tuple(headers), fields=fields, facts=facts)
