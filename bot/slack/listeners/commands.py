"""`/coldcopy` and its subcommands: the form, status, upgrade and help."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.runtime.metrics import count_slack_error
from bot.runtime.wiring import Runtime
from bot.slack import constants as K
from bot.slack.admins import AdminDirectory
from bot.slack.blocks import admin_status_message, help_message, member_status_message
from bot.slack.listeners.billing_flow import send_upgrade_link
from bot.slack.listeners.ephemeral import reply
from bot.slack.modal import brief_view, upgrade_view
from storage.generations import previous_brief
from storage.ledger import quota_exhausted
from storage.usage import user_usage, workspace_usage

log = logging.getLogger(__name__)


def subcommand(command: dict) -> tuple[str, str]:
    """The first word of the command's text, lowercased, and the whole text."""
    text = (command.get("text") or "").strip()
    return (text.split()[0].lower() if text else ""), text


def register(app: App, rt: Runtime, admins: AdminDirectory) -> None:
    def acknowledge(ack: Ack, command: dict) -> None:
        """Within Slack's 3 seconds: help is answered right here, the rest works lazily."""
        name, text = subcommand(command)
        if name == "help":
            ack(**_reply(help_message()))
        elif name not in ("", "status", "upgrade"):
            ack(**_reply(help_message(unknown=text[:50])))
        else:
            ack()

    def work(command: dict, client: WebClient, respond: Respond, context: BoltContext) -> None:
        name, _ = subcommand(command)
        if name == "":
            open_form(rt, client, respond, context, command)
        elif name == "status":
            show_status(rt, admins, client, respond, context)
        elif name == "upgrade":
            send_upgrade_link(rt, respond, context.team_id, context.user_id)

    app.command(K.COMMAND)(ack=acknowledge, lazy=[work])


def _reply(message) -> dict:
    return {"text": message.text, "blocks": message.blocks, "response_type": "ephemeral"}


def open_form(
    rt: Runtime, client: WebClient, respond: Respond, context: BoltContext, command: dict
) -> None:
    """The brief form, or the upgrade prompt when the form could not be used anyway."""
    exhausted = quota_exhausted(rt.engine, rt.policy, context.team_id)
    if exhausted is not None:
        view = upgrade_view(exhausted, rt.billing.enabled)
    else:
        view = brief_view(
            previous_brief(rt.engine, context.team_id, context.user_id),
            command.get("channel_id"),
        )
    try:
        client.views_open(trigger_id=command["trigger_id"], view=view)
    except SlackApiError as exc:
        count_slack_error("views.open", exc)
        log.warning("could not open the form", extra={"team_id": context.team_id})
        reply(respond, "Slack didn't let me open the form in time. Please run /coldcopy again.")


def show_status(
    rt: Runtime, admins: AdminDirectory, client: WebClient, respond: Respond, context: BoltContext
) -> None:
    if admins.is_admin(client, context.team_id, context.user_id):
        usage = workspace_usage(rt.engine, rt.policy, context.team_id)
        paying = usage.plan == "pro" and usage.stripe_customer_id is not None
        message = admin_status_message(usage, rt.billing.enabled, paying)
    else:
        message = member_status_message(
            user_usage(rt.engine, rt.policy, context.team_id, context.user_id)
        )
    reply(respond, message)
