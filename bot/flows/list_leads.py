"""The leads a personalised lead list sends with its sequence to a tool: each valid row's lead with
its opening in the tool's personalization field and subject A as a custom variable, and email 1
carrying the tool's merge tags for both. Read again from the stored file and answers at every
attempt, so a resumed draft is the same draft, and a list whose data was erased sends nobody."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from bot.sequencers.draft import Lead
from bot.writing.lead_files import LEAD_FORMATS_BY_KEY, SUBJECT_A, personal_email_one
from bot.writing.lead_list import LeadList, read_lead_list
from storage.lead_lists import get_lead_list
from storage.lead_models import LeadListStatus
from storage.lead_results import LeadAnswer, saved_answers

# The tools whose clients carry a lead's opening and custom variables (bot/sequencers); Apollo
# keeps them only in custom fields a person creates in Apollo, so its email 1 stays as written
# and its client says so in a note.
CARRIES_PERSONALIZATION = frozenset({"instantly", "smartlead", "lemlist"})


@dataclass(frozen=True)
class ListLeads:
    """What a draft of the sequence with one lead list holds, and what was left out."""

    list_id: str
    filename: str
    leads: tuple[Lead, ...]
    emails: tuple[dict, ...]  # the sequence, email 1 with the tool's merge tags
    plain: int  # flagged "too little to go on": sent with their plain line
    unwritten: int  # no opening was saved for them: not sent
    invalid: int  # rows without a valid email address: not sent


def subject_variable(tool: str) -> str:
    """The custom variable subject A travels in: the column name of the tool's lead file."""
    fmt = LEAD_FORMATS_BY_KEY[tool]
    return next(name for name, source in fmt.columns if source == SUBJECT_A)


def leads_for_tool(
    tool: str,
    parsed: LeadList,
    answers: Mapping[int, LeadAnswer],
    sequence: Sequence[Mapping],
    *,
    list_id: str = "",
    filename: str = "",
) -> ListLeads:
    """Pure: the leads of `parsed` that have an opening, in the file's order (a draft's
    fingerprint depends on it), shaped for `tool`."""
    personal = tool in CARRIES_PERSONALIZATION
    leads: list[Lead] = []
    plain = unwritten = 0
    for index, lead in enumerate(parsed.leads):
        answer = answers.get(index)
        if answer is None or not answer.opening or not answer.subject_a or not answer.email:
            unwritten += 1
            continue
        plain += answer.too_little
        leads.append(
            Lead(
                email=lead.email,
                first_name=lead.first_name,
                last_name=lead.last_name,
                company=lead.company,
                personalization=answer.opening if personal else "",
                variables={subject_variable(tool): answer.subject_a} if personal else {},
            )
        )
    emails = [dict(e) for e in sequence]
    if personal and emails:
        emails[0] = personal_email_one(LEAD_FORMATS_BY_KEY[tool], emails)
    return ListLeads(
        list_id=list_id,
        filename=filename,
        leads=tuple(leads),
        emails=tuple(emails),
        plain=plain,
        unwritten=unwritten,
        invalid=len(parsed.skipped),
    )


def list_leads(
    engine: Engine, list_id: str, team_id: str, tool: str, sequence: Sequence[Mapping]
) -> ListLeads | None:
    """The list's leads for `tool`; None when the list is not a finished list of this
    workspace or its data was erased (its file and the leads' answers are gone)."""
    row = get_lead_list(engine, list_id, with_source=True)
    if row is None or row.team_id != team_id or row.status != LeadListStatus.SUCCEEDED:
        return None
    if not row.source:
        return None
    parsed = read_lead_list(row.source)
    if not isinstance(parsed, LeadList):
        return None
    answers = saved_answers(engine, list_id)
    if not any(a.email for a in answers.values()):
        return None  # the answers were erased with the prospects' data
    return leads_for_tool(tool, parsed, answers, sequence, list_id=list_id, filename=row.filename)
