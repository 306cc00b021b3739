"""Block Kit for sending a sequence (alone or with a lead list) to a tool, as pure functions:
the "Send to…" menu, the draft's link and what went with it, a stopped draft with Resume, an
approval request with its buttons, a decision, and the admins' "Sending tools" modal (keys
shown only by their last four characters)."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.sequencers.tools import SEQUENCERS
from bot.slack import constants as K
from bot.slack.block_kit import Message, escape, mrkdwn, render, slack_date
from storage.approvals import Decided, Decision, Policy
from storage.connections import Connected

NO_APPROVAL = "none"
ADMINS_APPROVE = "admins"
GROUP_PREFIX = "group:"
LIST_GONE = (
    "This lead list's data was erased (the file and the leads' openings), so its draft was not "
    "made and no lead was sent. Run the list again to send it."
)


def tool_label(tool: str) -> str:
    info = SEQUENCERS.get(tool)
    return info.label if info else tool


def send_menu(generation_id: str, lead_list_id: str = "") -> StaticSelectElement:
    """ "Send to…": one option per tool; the value carries the generation, the tool and, on a
    lead list's result, the list (whose leads go with the sequence)."""
    tail = f":{lead_list_id}" if lead_list_id else ""
    return StaticSelectElement(
        action_id=K.SEND_ACTION,
        placeholder=PlainTextObject(text="Send to…", emoji=True),
        options=[
            Option(text=f"{info.label} (draft)", value=f"{generation_id}:{key}{tail}")
            for key, info in SEQUENCERS.items()
        ],
    )


def parse_send_option(value: str) -> tuple[str, str, str]:
    """(generation id, tool, lead list id or "")."""
    generation_id, _, rest = (value or "").partition(":")
    tool, _, lead_list_id = rest.partition(":")
    return generation_id, tool, lead_list_id


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}" + ("" if n == 1 else "s")


def list_leads_text(added: int, sent: int, plain: int, unwritten: int, invalid: int) -> str:
    """What went with a lead list's draft, and what did not."""
    text = f"{added:,} of the list's {_count(sent, 'lead')} added with their personal openings"
    if plain:
        text += f"; {plain:,} had too little to go on and carry a plain line (needs_review)"
    text += "."
    if invalid:
        text += f" Not sent: {_count(invalid, 'row')} without a valid email address."
    if unwritten:
        text += f" Not sent: {_count(unwritten, 'lead')} without an opening."
    return text


def draft_link_message(
    tool: str, url: str, *, existing: bool = False, for_list: bool = False, notes: str = ""
) -> Message:
    label = tool_label(tool)
    if existing:
        what = "lead list" if for_list else "sequence"
        text = (
            f"This {what} already has a draft in {label}: <{url}|open the draft>. "
            "Nothing new was created."
        )
    else:
        text = (
            f":outbox_tray: Draft campaign created in {label}: <{url}|open the draft>. It is not "
            "active: check the sending mailbox and the leads there, then launch it."
        )
    if notes:
        text = f"{text} {escape(notes)}"
    return Message(text=text, blocks=render([SectionBlock(text=mrkdwn(text))]))


def draft_stopped_message(tool: str, error: str, draft_id: str) -> Message:
    """A partial failure: what happened, what to do, and Resume (which creates nothing twice)."""
    text = (
        f":warning: {escape(error)}\nFix what {tool_label(tool)} refused, then press *Resume*: "
        "what already exists there is kept and nothing is created twice."
    )
    blocks: list[Block] = [
        SectionBlock(text=mrkdwn(text)),
        ActionsBlock(
            elements=[ButtonElement(text="Resume", action_id=K.RESUME_SEND_ACTION, value=draft_id)]
        ),
    ]
    return Message(text=text, blocks=render(blocks))


def approval_needed_message(generation_id: str) -> Message:
    text = (
        "This workspace requires approval before a sequence goes to a sending tool, and this "
        "one (as it reads now) is not approved. Ask for approval:"
    )
    blocks: list[Block] = [
        SectionBlock(text=mrkdwn(text)),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Request approval",
                    action_id=K.REQUEST_APPROVAL_ACTION,
                    value=generation_id,
                )
            ]
        ),
    ]
    return Message(text=text, blocks=render(blocks))


def approval_request_message(generation_id: str, requester: str, approvers: str) -> Message:
    text = (
        f":raised_hand: <@{requester}> asks {approvers} to approve this sequence before it is "
        "sent to a sending tool."
    )
    blocks: list[Block] = [
        SectionBlock(text=mrkdwn(text)),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Approve", action_id=K.APPROVE_ACTION, value=generation_id, style="primary"
                ),
                ButtonElement(
                    text="Request changes", action_id=K.REQUEST_CHANGES_ACTION, value=generation_id
                ),
            ]
        ),
    ]
    return Message(text=text, blocks=render(blocks))


def decision_text(decided: Decided) -> str:
    when = slack_date(decided.decided_at, "{date_short_pretty} at {time}")
    what = {
        Decision.APPROVED: ":white_check_mark: Approved for sending",
        Decision.CHANGES_REQUESTED: ":memo: Changes requested",
        Decision.REQUESTED: ":raised_hand: Approval requested",
    }[decided.decision]
    return f"{what} by <@{decided.user_id}> on {when}."


def approvers_text(policy: Policy) -> str:
    return f"<!subteam^{policy.approver_group}>" if policy.approver_group else "a workspace admin"


# --- the admins' "Sending tools" modal ------------------------------------------------------


@dataclass(frozen=True)
class ToolsSubmission:
    tool: str | None
    api_key: str | None
    approval: str | None


def connections_view(
    connected: list[Connected], policy: Policy, groups: list[tuple[str, str]]
) -> dict:
    """Connected tools (last four characters only, with Remove), a form to add or replace a
    key, and who approves before sending. `groups`: (id, handle) of the workspace's groups."""
    blocks: list[Block] = []
    for c in connected:
        blocks.append(
            SectionBlock(
                text=mrkdwn(
                    f"*{tool_label(c.tool)}* · key ending `{escape(c.last4)}` · added by "
                    f"<@{c.added_by}> on {slack_date(c.added_at, '{date_short}')}"
                ),
                accessory=ButtonElement(
                    text="Remove", action_id=K.DISCONNECT_ACTION, value=c.tool, style="danger"
                ),
            )
        )
    if not connected:
        blocks.append(ContextBlock(elements=[mrkdwn("No sending tool is connected yet.")]))
    blocks.append(
        InputBlock(
            block_id=K.CONNECT_TOOL_BLOCK,
            label="Connect a tool",
            optional=True,
            element=StaticSelectElement(
                action_id=K.CONNECT_TOOL_BLOCK,
                options=[Option(text=i.label, value=k) for k, i in SEQUENCERS.items()],
            ),
        )
    )
    blocks.append(
        InputBlock(
            block_id=K.CONNECT_KEY_BLOCK,
            label="Its API key",
            optional=True,
            hint="Checked with the tool when you save; afterwards only its last 4 characters show.",
            element=PlainTextInputElement(action_id=K.CONNECT_KEY_BLOCK, max_length=500),
        )
    )
    choices = [
        Option(text="No approval needed", value=NO_APPROVAL),
        Option(text="Approval by an admin", value=ADMINS_APPROVE),
        *(Option(text=f"Approval by @{h}"[:75], value=f"{GROUP_PREFIX}{g}") for g, h in groups),
    ]
    current = (
        NO_APPROVAL
        if not policy.require_approval
        else f"{GROUP_PREFIX}{policy.approver_group}"
        if policy.approver_group
        else ADMINS_APPROVE
    )
    blocks.append(
        InputBlock(
            block_id=K.APPROVAL_BLOCK,
            label="Before sending to a tool",
            element=StaticSelectElement(
                action_id=K.APPROVAL_BLOCK,
                options=choices,
                initial_option=next((o for o in choices if o.value == current), choices[0]),
            ),
        )
    )
    view = View(
        type="modal",
        callback_id=K.CONNECTIONS_VIEW,
        title="Sending tools",
        submit="Save",
        close="Cancel",
        blocks=blocks,
    )
    return view.to_dict()


def read_tools_submission(view: dict) -> ToolsSubmission:
    values = (view.get("state") or {}).get("values") or {}

    def picked(block: str) -> str | None:
        option = (values.get(block) or {}).get(block, {}).get("selected_option") or {}
        return option.get("value")

    key = ((values.get(K.CONNECT_KEY_BLOCK) or {}).get(K.CONNECT_KEY_BLOCK) or {}).get("value")
    return ToolsSubmission(
        picked(K.CONNECT_TOOL_BLOCK), (key or "").strip() or None, picked(K.APPROVAL_BLOCK)
    )


def policy_from(choice: str | None) -> Policy:
    if choice and choice.startswith(GROUP_PREFIX):
        return Policy(True, choice.removeprefix(GROUP_PREFIX))
    return Policy(choice == ADMINS_APPROVE, None)
