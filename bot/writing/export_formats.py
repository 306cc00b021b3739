"""Export formats: the table of tools a finished sequence can be exported to.

Each entry says what its tool expects: the merge tag for every placeholder the model writes,
what the number on a step means (days after the previous step, days before the next step, or
the day of the sequence: lesson 24), whether follow-ups leave the subject empty so the tool
sends them as "Re:" replies in one thread, whether it takes an A/B subject, and the file
layout. Adding a sequencer is one entry in `EXPORT_FORMATS`; the sequencer clients
(bot/sequencers) read the same entries, so a file and a draft never disagree.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from bot.writing.placeholders import COMPANY, FIRST_NAME, PLACEHOLDERS


class Delay(StrEnum):
    """What the number a tool stores on a step means."""

    # On the step that waits: days after the previous step; 0 on the first email.
    AFTER_PREVIOUS = "days after the previous step"
    # On the step before the wait: days until the next step goes out; never 0, which would
    # send the next step at once (Instantly). The last step has no next step: LAST_STEP_WAIT.
    BEFORE_NEXT = "days before the next step"
    ABSOLUTE = "day of the sequence"  # the first email on day 1


# What goes under the last step where the number means "days before the next step": there is
# no next step, and Instantly's help centre says never to leave a delay at 0.
LAST_STEP_WAIT = 1


def step_delays(days: Sequence[int], delay: Delay) -> list[int]:
    """The number each step carries so that the emails go out on `days` (the sequence starts on
    day 1), in the meaning `delay`. The writer's schema makes days strictly increase, so no
    wait is 0; a file writes what a stored sequence holds, and the sequencer clients refuse a
    draft whose days do not increase (bot/sequencers/draft.py) before anything is sent."""
    if not days:
        return []
    gaps = [b - a for a, b in itertools.pairwise(days)]
    if delay is Delay.AFTER_PREVIOUS:
        return [max(days[0] - 1, 0), *gaps]  # the first email waits from day 1 to its day
    if delay is Delay.BEFORE_NEXT:
        return [*gaps, LAST_STEP_WAIT]
    return list(days)


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
    # Instantly: the delay under step N is the wait before step N+1, counted from when step N
    # was sent, and 0 sends the next step at once, so the first step carries the wait before
    # the second (https://help.instantly.ai/en/articles/7916860-days-to-wait-between-steps).
    # Steps hold subject/body variants (A/B); a follow-up with an empty subject goes out as a
    # reply in the same thread; lead variables are {{firstName}} and {{companyName}}
    # (https://developer.instantly.ai/api/v2/campaign/listcampaign: sequences[].steps[]).
    ExportFormat(
        key="instantly",
        label="Instantly",
        extension="csv",
        mimetype="text/csv",
        merge_tags={FIRST_NAME: "{{firstName}}", COMPANY: "{{companyName}}"},
        delay=Delay.BEFORE_NEXT,
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
    # Smartlead: seq_number, seq_delay_details.delay_in_days ("days to wait before sending",
    # 0 on the first email), subject, email_body and A/B seq_variants; a follow-up's subject is
    # optional and without one it goes out as "Re:" in the thread; variables {{first_name}},
    # {{company_name}} (https://api.smartlead.ai/api-reference/campaigns/update-sequences,
    # https://helpcenter.smartlead.ai/en/articles/59-how-do-follow-ups-work-in-smartlead).
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
    # lemlist: default lead variables {{firstName}} and {{companyName}}; a step's delay is the
    # days to wait before it runs, 0 on the first step, counted on the schedule's sending days
    # (https://developer.lemlist.com/api-reference/objects-definitions/step,
    # https://developer.lemlist.com/api-reference/endpoints/sequences/add-step-to-sequence,
    # https://help.lemlist.com/en/articles/12875247-how-does-sequencing-and-lead-management-work-in-lemlist-campaigns);
    # an empty follow-up subject replies in the thread, and steps can be A/B tested
    # (https://developer.lemlist.com/api-reference/endpoints/leads/add-lead-variables).
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
    # Apollo: emailer_steps wait `wait_time` days after the previous step (0 on the first);
    # more than one touch per step is an A/B test; later automatic emails can reply in the
    # first thread; dynamic variables {{first_name}} and {{company}}.
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
    # HubSpot sequences: the first email goes out at enrollment and each later step "if no
    # reply after N days", i.e. N days after the previous one; follow-up emails thread onto
    # the first, no A/B subjects; personalization tokens {{contact.firstname}} and
    # {{contact.company}}. Its sequences API needs an OAuth app, so it stays a file.
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
    # Outreach sequences (steps by day interval): step 1 goes out on day 1 and each later step
    # a set interval after the previous one, the rest moving with it when a step waits for
    # the schedule (https://support.outreach.io/hc/en-us/articles/205689787-Sequence-Schedule-Overview,
    # https://support.outreach.io/support/solutions/articles/159000425524-outreach-sequence-overview).
    # Every step keeps its subject (threading is a per-step choice in Outreach) and A/B tests
    # live in its templates, so one subject; variables {{first_name}} and {{account.name}}.
    # Its API needs an OAuth app, so it stays a file.
    ExportFormat(
        key="outreach",
        label="Outreach",
        extension="csv",
        mimetype="text/csv",
        merge_tags={FIRST_NAME: "{{first_name}}", COMPANY: "{{account.name}}"},
        delay=Delay.AFTER_PREVIOUS,
        threads_followups=False,
        ab_subjects=False,
        layout=Layout.STEP_ROWS,
        columns=(
            ("step", "step"),
            ("interval_days", "delay"),
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
