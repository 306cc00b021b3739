"""Sending a finished sequence to a tool: "Send to…", Resume, approval (request, approve,
request changes) and the admins' "Sending tools" modal (API keys and the approval rule). Every
click is acked first; drafts are created by a job after the ack (bot/flows/sending.py)."""

from __future__ import annotations

import logging

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error
from bot.sequencers import SEQUENCERS, KeyRefused, SequencerError
from bot.slack import constants as K
from bot.slack.answers import Answer, answering
from bot.slack.approvers import MAX_APPROVER_DMS, group_members, is_approver, workspace_groups
from bot.slack.block_kit import Message
from bot.slack.modal import message_view, working_view
from bot.slack.sending_blocks import (
    approval_needed_message,
    approval_request_message,
    approvers_text,
    connections_view,
    decision_text,
    draft_link_message,
    draft_stopped_message,
    parse_send_option,
    policy_from,
    read_tools_submission,
    tool_label,
)
from bot.slack.services import Services, services_of
from bot.slack.wording import ADMINS_ONLY, GONE, not_yours
from storage.access import Act, NotYours
from storage.approvals import Decision, is_approved, read_policy, record_decision, save_policy
from storage.approvals import sequence_digest as digest_of
from storage.connections import connections, remove_connection, save_connection
from storage.drafts import DraftRow, claim_draft, draft_for, get_draft, requeue_draft
from storage.generations import GenerationRow
from storage.lead_lists import get_lead_list, has_source
from storage.lead_models import LeadListStatus
from storage.models import GenerationStatus
from storage.sending_models import DraftStatus

log = logging.getLogger(__name__)

NOT_CONNECTED = (
    "{label} isn't connected yet: a workspace admin adds its API key under *Sending tools* in "
    "ColdCopy's App Home."
)
LIST_UNAVAILABLE = (
    "That lead list can't be sent: it has not finished, or its data was erased. Personalise "
    "the list again to send it."
)
NO_CIPHER = (
    "ColdCopy can't store API keys here: its operator has to set COLDCOPY_ENCRYPTION_KEY first."
)


def _finished(services: Services, client, context, generation_id: str, answer: Answer, act: Act):
    gen = services.generation(client, context, generation_id, act)
    if isinstance(gen, NotYours):
        answer.say(not_yours(gen))
        return None
    if gen is None or not gen.sequence or gen.status != GenerationStatus.SUCCEEDED:
        answer.say(GONE)
        return None
    return gen


def _approved(services: Services, gen: GenerationRow, answer: Answer) -> bool:
    policy = read_policy(services.engine, gen.team_id)
    if policy.require_approval and not is_approved(services.engine, gen.id, gen.sequence):
        answer.say(approval_needed_message(gen.id))
        return False
    return True


def _existing(draft: DraftRow, answer: Answer) -> None:
    """Where a sequence's (or a lead list's) draft in a tool stands, instead of making a
    second one."""
    if draft.status == DraftStatus.CREATED and draft.url:
        listed = bool(draft.lead_list_id)
        answer.say(draft_link_message(draft.tool, draft.url, existing=True, for_list=listed))
    elif draft.resumable():
        error = (
            draft.error or f"The last attempt to create the {tool_label(draft.tool)} draft stopped."
        )
        answer.say(draft_stopped_message(draft.tool, error, draft.id))
    else:
        answer.say(
            f"The {tool_label(draft.tool)} draft of this "
            f"{'lead list' if draft.lead_list_id else 'sequence'} is being created; its link "
            "will appear in the thread."
        )


def _sendable_list(services: Services, gen: GenerationRow, lead_list_id: str) -> bool:
    """A finished list of this sequence whose data is still there (its file: the check that
    needs no file read; the job reads it again before sending anything)."""
    row = get_lead_list(services.engine, lead_list_id)
    return (
        row is not None
        and row.generation_id == gen.id
        and row.team_id == gen.team_id
        and row.status == LeadListStatus.SUCCEEDED
        and has_source(services.engine, lead_list_id)
    )


@answering("send the sequence")
def send_to(action: dict, client: WebClient, context: BoltContext, services, answer: Answer):
    """ "Send to…" on a finished sequence or on its finished lead list: claim the draft in the
    tool, then create it after the ack; a second choice of the same tool (for the same list)
    says where the first draft is."""
    value = (action.get("selected_option") or {}).get("value")
    generation_id, tool, lead_list_id = parse_send_option(value)
    if tool not in SEQUENCERS:
        answer.say("That sending tool is no longer offered. Pick another one.")
        return
    gen = _finished(services, client, context, generation_id, answer, Act.SEND)
    if gen is None:
        return
    if lead_list_id and not _sendable_list(services, gen, lead_list_id):
        answer.say(LIST_UNAVAILABLE)
        return
    existing = draft_for(services.engine, gen.id, tool, lead_list_id)
    if existing is not None:
        _existing(existing, answer)
        return
    if services.cipher is None or tool not in {
        c.tool for c in connections(services.engine, gen.team_id)
    }:
        answer.say(NOT_CONNECTED.format(label=tool_label(tool)))
        return
    if not _approved(services, gen, answer):
        return
    timezone = services.people.person(client, context.team_id, context.user_id).tz or "UTC"
    draft, claimed = claim_draft(
        services.engine,
        gen.id,
        gen.team_id,
        tool,
        context.user_id,
        timezone=timezone,
        lead_list_id=lead_list_id,
    )
    if not claimed:
        _existing(draft, answer)
        return
    services.work.send_draft(draft.id)


@answering("resume the draft")
def resume_send(action: dict, client: WebClient, context: BoltContext, services, answer: Answer):
    draft = get_draft(services.engine, action.get("value") or "")
    if draft is None or draft.team_id != context.team_id:
        answer.say(GONE)
        return
    gen = _finished(services, client, context, draft.generation_id, answer, Act.SEND)
    if gen is None or not _approved(services, gen, answer):
        return
    if not requeue_draft(services.engine, draft.id):
        _existing(get_draft(services.engine, draft.id) or draft, answer)
        return
    services.work.send_draft(draft.id)


# --- approval ---------------------------------------------------------------------------------


def _post(client: WebClient, channel: str, message: Message, thread_ts: str | None = None):
    try:
        client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=message.text, blocks=message.blocks
        )
    except SlackApiError as exc:
        count_slack_error("chat.postMessage", exc)


def _thread(gen: GenerationRow) -> tuple[str, str | None]:
    return gen.posted_channel_id or gen.channel_id, gen.parent_ts


@answering("ask for approval")
def request_approval(action: dict, client: WebClient, context, services, answer: Answer):
    """Tell the approvers (in the thread, and by DM to a chosen group's members)."""
    gen = _finished(services, client, context, action.get("value") or "", answer, Act.SEND)
    if gen is None:
        return
    policy = read_policy(services.engine, gen.team_id)
    record_decision(
        services.engine, gen.id, gen.team_id, Decision.REQUESTED, context.user_id,
        digest_of(gen.sequence),
    )  # fmt: skip
    request = approval_request_message(gen.id, context.user_id, approvers_text(policy))
    channel, thread = _thread(gen)
    _post(client, channel, request, thread)
    if policy.approver_group:
        for member in group_members(client, policy.approver_group)[:MAX_APPROVER_DMS]:
            if member != context.user_id:
                _post(client, member, request)
    answer.say(
        f"Approval requested from {approvers_text(policy)}; their answer will show in the thread."
    )


def _decide(decision: str, action: dict, client, context, services: Services, answer: Answer):
    gen = _finished(services, client, context, action.get("value") or "", answer, Act.EXPORT)
    if gen is None:
        return
    policy = read_policy(services.engine, gen.team_id)
    if not is_approver(services, client, context.team_id, context.user_id, policy):
        answer.say(f"Only {approvers_text(policy)} can decide on this sequence.")
        return
    decided = record_decision(
        services.engine, gen.id, gen.team_id, decision, context.user_id, digest_of(gen.sequence)
    )
    channel, thread = _thread(gen)
    text = decision_text(decided)
    _post(client, channel, Message(text=text, blocks=None), thread)


@answering("approve the sequence")
def approve(action: dict, client: WebClient, context, services, answer: Answer):
    _decide(Decision.APPROVED, action, client, context, services, answer)


@answering("request changes")
def request_changes(action: dict, client: WebClient, context, services, answer: Answer):
    _decide(Decision.CHANGES_REQUESTED, action, client, context, services, answer)


# --- the admins' "Sending tools" modal ----------------------------------------------------------


def _tools_view(services: Services, client: WebClient, team_id: str) -> dict:
    return connections_view(
        connections(services.engine, team_id),
        read_policy(services.engine, team_id),
        workspace_groups(client),
    )


@answering("open the sending tools")
def open_tools(body: dict, client: WebClient, context: BoltContext, services, answer: Answer):
    """From the Home tab a modal; from the Workspace settings modal, pushed over it."""
    if not services.may(client, context, Act.SETTINGS):
        answer.say(ADMINS_ONLY)
        return
    view = _tools_view(services, client, context.team_id)
    if (body.get("view") or {}).get("type") == "modal" and answer.trigger_fresh():
        try:
            client.views_push(trigger_id=body["trigger_id"], view=view)
            return
        except SlackApiError as exc:
            count_slack_error("views.push", exc)
    answer.show(view, fallback=ADMINS_ONLY)


def check_tools(ack: Ack, view: dict) -> None:
    """Within 3 seconds and without a call to the tool: a key needs its tool and a tool its
    key; the check with the tool happens after the ack, while the modal says so."""
    sub = read_tools_submission(view)
    if sub.api_key and not sub.tool:
        ack(
            response_action="errors",
            errors={K.CONNECT_TOOL_BLOCK: "Pick the tool this key is for."},
        )
        return
    if sub.tool and not sub.api_key:
        ack(response_action="errors", errors={K.CONNECT_KEY_BLOCK: "Paste the tool's API key."})
        return
    doing = f"Checking the key with {tool_label(sub.tool)}…" if sub.tool else "Saving…"
    ack(response_action="update", view=working_view(doing))


def save_tools(view: dict, client: WebClient, context: BoltContext) -> None:
    """An admin's key (checked with a cheap authenticated call first) and approval rule."""
    services = services_of(context)
    if not services.may(client, context, Act.SETTINGS):
        lines = [ADMINS_ONLY]
    else:
        sub = read_tools_submission(view)
        lines = [_save_policy(services, context, sub.approval)]
        if sub.tool and sub.api_key:
            lines.append(_connect(services, context, sub.tool, sub.api_key))
    try:
        client.views_update(view_id=view["id"], view=message_view("\n".join(lines)))
    except SlackApiError as exc:
        count_slack_error("views.update", exc)


def _save_policy(services: Services, context: BoltContext, choice: str | None) -> str:
    policy = policy_from(choice)
    save_policy(services.engine, context.team_id, policy, changed_by=context.user_id)
    if not policy.require_approval:
        return "Sequences can be sent to a tool without approval."
    return f"Sequences need approval by {approvers_text(policy)} before they are sent."


def _connect(services: Services, context: BoltContext, tool: str, api_key: str) -> str:
    label = tool_label(tool)
    if services.cipher is None:
        return NO_CIPHER
    client = SEQUENCERS[tool].connect(api_key, services.settings.sequencer_url(tool))
    try:
        client.check_key()
    except KeyRefused as exc:
        return f":x: {exc.message} The key was not saved."
    except SequencerError as exc:
        return f":x: Couldn't check the key with {label}: {exc.message} The key was not saved."
    finally:
        client.close()
    saved = save_connection(
        services.engine, services.cipher, context.team_id, tool, api_key, added_by=context.user_id
    )
    return f":white_check_mark: {label} is connected (key ending `{saved.last4}`)."


@answering("remove the key")
def disconnect(action: dict, body: dict, client: WebClient, context, services, answer: Answer):
    if not services.may(client, context, Act.SETTINGS):
        answer.say(ADMINS_ONLY)
        return
    tool = action.get("value") or ""
    remove_connection(services.engine, context.team_id, tool, removed_by=context.user_id)
    view_id = (body.get("view") or {}).get("id")
    if view_id:
        try:
            client.views_update(
                view_id=view_id, view=_tools_view(services, client, context.team_id)
            )
        except SlackApiError as exc:
            count_slack_error("views.update", exc)
