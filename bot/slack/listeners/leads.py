"""Lead lists from Slack: the "Personalise for a lead list" button opens the upload modal; its
submission is read (files.info, then the file with the bot token) into the confirmation view;
confirming starts the list (leads first, then the rate limit); Cancel stops it. Only the
sequence's owner or an admin may start or cancel one (storage/access.py)."""

from __future__ import annotations

import json

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error
from bot.domain.lead_lists import ListRequest
from bot.domain.limits import RateLimited
from bot.slack import constants as K
from bot.slack.account_messages import rate_limited_text
from bot.slack.answers import Answer, answering
from bot.slack.block_kit import slack_date
from bot.slack.lead_upload import fetch_lead_file
from bot.slack.lead_views import confirm_view, lead_file_view
from bot.slack.modal import message_view, working_view
from bot.slack.services import Services, services_of
from bot.slack.wording import GONE, not_yours
from bot.writing.lead_list import LeadList, read_lead_list
from storage.access import Act, NotYours
from storage.generations import GenerationRow
from storage.lead_lists import (
    LeadsExhausted,
    finish_lead_list,
    get_lead_list,
    leads_standing,
    request_cancel,
)
from storage.lead_models import LeadListStatus
from storage.models import GenerationStatus


def _sequence(services: Services, client, context, generation_id: str) -> GenerationRow | str:
    gen = services.generation(client, context, generation_id, Act.PERSONALISE)
    if isinstance(gen, NotYours):
        return not_yours(gen)
    if gen is None or not gen.sequence or gen.status != GenerationStatus.SUCCEEDED:
        return GONE
    return gen


@answering("open the lead list upload")
def open_upload(action: dict, client: WebClient, context, services: Services, answer: Answer):
    gen = _sequence(services, client, context, action.get("value") or "")
    if isinstance(gen, str):
        answer.say(gen)
        return
    answer.show(lead_file_view(gen.id), fallback="ColdCopy was too slow to open the upload.")


def _picked_file(view: dict) -> dict | None:
    state = (view.get("state") or {}).get("values") or {}
    files = (state.get(K.LEAD_FILE_BLOCK) or {}).get("file", {}).get("files") or []
    return files[0] if files else None


def check_upload(ack: Ack, view: dict) -> None:
    """Within Slack's 3 seconds, no Slack call: a file was picked, or say so."""
    if _picked_file(view) is None:
        ack(response_action="errors", errors={K.LEAD_FILE_BLOCK: "Pick one CSV file."})
        return
    ack(response_action="update", view=working_view("Reading your lead list…"))


def _read(services: Services, client: WebClient, file_id: str) -> tuple[bytes, LeadList] | str:
    data = fetch_lead_file(client, file_id, services.settings.slack_api_url)
    if isinstance(data, str):
        return data
    leads = read_lead_list(data)
    if not isinstance(leads, LeadList):
        return leads.message
    if not leads.leads:
        return "No row of this file has a valid email address; nothing to personalise."
    return data, leads


def _show(client: WebClient, view_id: str, view: dict) -> None:
    try:
        client.views_update(view_id=view_id, view=view)
    except SlackApiError as exc:
        count_slack_error("views.update", exc)


def read_upload(view: dict, client: WebClient, context: BoltContext) -> None:
    """After the ack: the file read and checked, then the mapping, samples and problems."""
    services = services_of(context)
    generation_id = json.loads(view.get("private_metadata") or "{}").get("generation_id", "")
    gen = _sequence(services, client, context, generation_id)
    picked = _picked_file(view) or {}
    read = gen if isinstance(gen, str) else _read(services, client, picked.get("id", ""))
    if isinstance(read, str):
        _show(client, view["id"], message_view(read))
        return
    _, leads = read
    _, used, limit = leads_standing(services.engine, services.policy.leads, context.team_id)
    shown = confirm_view(generation_id, picked["id"], leads, max(limit - used, 0))
    _show(client, view["id"], shown)


def check_confirm(ack: Ack) -> None:
    ack(response_action="update", view=working_view("Starting…"))


def start_list(view: dict, client: WebClient, context: BoltContext) -> None:
    """After the ack: the list started (leads reserved, then the rate limit) or why not."""
    services = services_of(context)
    meta = json.loads(view.get("private_metadata") or "{}")
    gen = _sequence(services, client, context, meta.get("generation_id", ""))
    read = gen if isinstance(gen, str) else _read(services, client, meta.get("file_id", ""))
    if isinstance(read, str):
        _show(client, view["id"], message_view(read))
        return
    data, leads = read
    started = services.lead_lists.start(
        ListRequest(
            team_id=context.team_id,
            user_id=context.user_id,
            generation_id=gen.id,
            leads=len(leads.leads),
            source=data,
            filename="leads.csv",
            key=f"lead-list:{view['id']}",
            channel_id=gen.posted_channel_id or gen.channel_id,
            thread_ts=gen.parent_ts,
            enterprise_id=gen.enterprise_id,
        )
    )
    if isinstance(started, LeadsExhausted):
        text = (
            f":no_entry: This list has {started.asked:,} leads; your workspace has used "
            f"{started.used:,} of its {started.limit:,} this month (they reset "
            f"{slack_date(started.resets_at)}). Type `/coldcopy upgrade` for more."
        )
    elif isinstance(started, RateLimited):
        text = rate_limited_text(started.minutes)
    else:
        text = (
            f":white_check_mark: Personalising {len(leads.leads):,} leads. Progress and the "
            "lead files will appear in the sequence's thread."
        )
    _show(client, view["id"], message_view(text))


@answering("cancel the lead list")
def cancel(action: dict, client: WebClient, context, services: Services, answer: Answer):
    row = get_lead_list(services.engine, action.get("value") or "")
    if row is None or row.team_id != context.team_id:
        answer.say(GONE)
        return
    gen = services.generation(client, context, row.generation_id, Act.PERSONALISE)
    if isinstance(gen, NotYours):
        answer.say(not_yours(gen))
        return
    if not request_cancel(services.engine, row.id):
        answer.say("That list has already finished.")
        return
    # A list no process runs yet ends here; a running one stops at its next lead.
    finish_lead_list(
        services.engine, row.id, status=LeadListStatus.CANCELLED, when=LeadListStatus.QUEUED
    )
