"""The lead-list modals, as pure functions: the upload (Slack's `file_input` element, one CSV;
https://docs.slack.dev/reference/block-kit/block-elements/file-input-element), and the
confirmation with the column mapping, three sample rows and every row problem."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import ContextBlock, DividerBlock, SectionBlock
from slack_sdk.models.blocks.basic_components import MarkdownTextObject
from slack_sdk.models.views import View

from bot.slack import constants as K
from bot.slack.block_kit import escape
from bot.writing.lead_list import MAX_BYTES, MAX_ROWS, LeadList, MappingSummary

TITLE = "Personalise leads"
# Row problems listed one per line; past this many, a count says how many more there are.
PROBLEMS_SHOWN = 15


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text[: K.MAX_SECTION_TEXT])


def lead_file_view(generation_id: str) -> dict:
    """The upload: one CSV file, its limits said before anyone picks a file."""
    intro = SectionBlock(
        text=_md(
            "Upload a CSV of your leads: one row per person, with a header row. ColdCopy writes "
            "a personal first line and subject for email 1 from each row's own facts.\n"
            f"*One file, up to {MAX_ROWS:,} rows and {MAX_BYTES // 1024 // 1024} MB.* "
            "Columns are matched by their headers (email, first and last name, company, title, "
            "website, LinkedIn); any other column is kept as a fact about the lead."
        )
    )
    view = View(
        type="modal",
        callback_id=K.LEAD_FILE_VIEW,
        title=TITLE,
        submit="Read the list",
        close="Cancel",
        blocks=[intro],
        private_metadata=json.dumps({"generation_id": generation_id}),
    ).to_dict()
    # slack_sdk has no model of file_input: the element as the Block Kit reference gives it.
    view["blocks"].append(
        {
            "type": "input",
            "block_id": K.LEAD_FILE_BLOCK,
            "label": {"type": "plain_text", "text": "Lead list (CSV)"},
            "element": {
                "type": "file_input",
                "action_id": "file",
                "filetypes": ["csv"],
                "max_files": 1,
            },
        }
    )
    return view


def confirm_view(generation_id: str, file_id: str, leads: LeadList, left: int) -> dict:
    """What will happen, before any lead is counted: the mapping, samples and problems."""
    summary = leads.summary()
    blocks = [SectionBlock(text=_md(_mapping(summary))), DividerBlock()]
    for number, sample in enumerate(summary.samples, 1):
        cells = " · ".join(f"{escape(h)}: {escape(v)}" for h, v in sample)
        blocks.append(SectionBlock(text=_md(f"*Sample {number}*\n{cells}")))
    problems = [issue.message for issue in leads.issues]
    if problems:
        shown = "\n".join(f"• {escape(p)}" for p in problems[:PROBLEMS_SHOWN])
        more = len(problems) - PROBLEMS_SHOWN
        shown += f"\n…and {more:,} more." if more > 0 else ""
        blocks += [DividerBlock(), SectionBlock(text=_md(f"*Row problems*\n{shown}"))]
    count = len(leads.leads)
    fits = count <= left
    note = (
        f"This uses {count:,} of the {left:,} leads your workspace has left this month."
        if fits
        else f"This list has {count:,} leads; your workspace has {left:,} left this month. "
        "Upgrade, or upload a shorter list."
    )
    blocks.append(ContextBlock(elements=[_md(note)]))
    return View(
        type="modal",
        callback_id=K.LEAD_CONFIRM_VIEW,
        title=TITLE,
        submit=f"Personalise {count:,} leads"[:24] if fits and count else None,
        close="Cancel",
        blocks=blocks,
        private_metadata=json.dumps({"generation_id": generation_id, "file_id": file_id}),
    ).to_dict()


def _mapping(summary: MappingSummary) -> str:
    mapped = "\n".join(f"• {escape(h)} → {field}" for h, field in summary.mapped)
    lines = [
        f"*{summary.valid:,} leads* from {summary.rows:,} rows "
        f"({summary.encoding}, {summary.delimiter}-separated).",
        f"*Columns*\n{mapped}",
    ]
    if summary.facts:
        lines.append("*Kept as facts*: " + ", ".join(escape(h) for h in summary.facts))
    if summary.missing:
        lines.append("*Not in the file*: " + ", ".join(summary.missing))
    if summary.invalid or summary.merged:
        lines.append(
            f"{summary.invalid:,} rows skipped (no or invalid email), "
            f"{summary.merged:,} duplicates merged."
        )
    return "\n".join(lines)
