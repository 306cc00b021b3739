"""`/coldcopy` and its subcommands: the form, status, settings, upgrade and help."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.runtime.metrics import count_slack_error, slack_error
from bot.runtime.wiring import Runtime
from bot.slack import constants as K
from bot.slack.blocks import admin_status_message, help_message, member_status_message
from bot.slack.listeners.billing_flow import send_upgrade_link
from bot.slack.listeners.ephemeral import answering_failures, outage_text, reply
from bot.slack.modal import brief_view, message_view, settings_view, upgrade_view
from bot.slack.wording import ADMINS_ONLY
from bot.writing.brief import DEFAULT_LANGUAGE
from bot.writing.defaults import WorkspaceDefaults, form_prefill
from storage.generations import previous_brief
from storage.ledger import quota_exhausted
from storage.settings import read_settings
from storage.usage import user_usage, workspace_usage

log = logging.getLogger(__name__)


def subcommand(command: dict) -> tuple[str, str]:
    """The first word of the command's text, lowercased, and the whole text."""
    text = (command.get("text") or "").strip()
    return (text.split()[0].lower() if text else ""), text


def register(app: App, rt: Runtime) -> None:
    def acknowledge(ack: Ack, command: dict) -> None:
        """Within Slack's 3 seconds: help is answered right here, the rest works lazily."""
        name, text = subcommand(command)
        if name == "help":
            ack(**_reply(help_message()))
        elif name not in ("", "status", "settings", "upgrade"):
            ack(**_reply(help_message(unknown=text[:50])))
        else:
            ack()

    def work(command: dict, client: WebClient, respond: Respond, context: BoltContext) -> None:
        name, _ = subcommand(command)
        if name == "":
            with answering_failures(respond, "open the form", context.team_id):
                open_form(rt, client, respond, context, command)
        elif name == "status":
            with answering_failures(respond, "look up your usage", context.team_id):
                show_status(rt, client, respond, context)
        elif name == "settings":
            with answering_failures(respond, "open the settings", context.team_id):
                open_settings(rt, client, context, command["trigger_id"], respond)
        elif name == "upgrade":
            with answering_failures(respond, "prepare the upgrade link", context.team_id):
                send_upgrade_link(rt, respond, context.team_id, context.user_id)

    app.command(K.COMMAND)(ack=acknowledge, lazy=[work])


def _reply(message) -> dict:
    return {"text": message.text, "blocks": message.blocks, "response_type": "ephemeral"}


def form_view(
    rt: Runtime, client: WebClient, team_id: str, user_id: str, channel_id: str | None
) -> dict:
    """The brief form, or the upgrade prompt when the form could not be used anyway.

    Pre-filled with the user's last brief, else the workspace's defaults; the language is
    their last one, else the workspace's, else their Slack locale's, else English."""
    exhausted = quota_exhausted(rt.engine, rt.policy, team_id)
    if exhausted is not None:
        return upgrade_view(exhausted, rt.billing.enabled)
    defaults = WorkspaceDefaults(**read_settings(rt.engine, team_id))
    prefill = form_prefill(previous_brief(rt.engine, team_id, user_id), defaults)
    if not prefill.get("language"):
        # users.info only when nothing else decides; it is cached for a few minutes.
        prefill["language"] = rt.people.language(client, team_id, user_id) or DEFAULT_LANGUAGE
    return brief_view(prefill, channel_id)


def open_form(
    rt: Runtime, client: WebClient, respond: Respond, context: BoltContext, command: dict
) -> None:
    view = form_view(rt, client, context.team_id, context.user_id, command.get("channel_id"))
    try:
        client.views_open(trigger_id=command["trigger_id"], view=view)
    except SlackApiError as exc:
        count_slack_error("views.open", exc)
        log.warning(
            "could not open the form: %s", slack_error(exc), extra={"team_id": context.team_id}
        )
        if slack_error(exc) == "expired_trigger_id":
            reply(respond, "Slack didn't let me open the form in time. Please run /coldcopy again.")
        else:
            reply(respond, outage_text(exc, "open the form"))


def open_settings(
    rt: Runtime,
    client: WebClient,
    context: BoltContext,
    trigger_id: str,
    respond: Respond | None = None,
) -> None:
    """The workspace settings modal for an admin; anyone else is told who can change them."""
    if not rt.people.is_admin(client, context.team_id, context.user_id):
        if respond is not None:
            reply(respond, ADMINS_ONLY)
            return
        view = message_view(ADMINS_ONLY)
    else:
        view = settings_view(WorkspaceDefaults(**read_settings(rt.engine, context.team_id)))
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        count_slack_error("views.open", exc)
        log.warning("could not open the settings", extra={"team_id": context.team_id})
        if respond is not None:
            reply(respond, "Slack didn't let me open the settings in time. Please try again.")


def show_status(rt: Runtime, client: WebClient, respond: Respond, context: BoltContext) -> None:
    if rt.people.is_admin(client, context.team_id, context.user_id):
        usage = workspace_usage(rt.engine, rt.policy, context.team_id)
        paying = usage.plan == "pro" and usage.stripe_customer_id is not None
        message = admin_status_message(usage, rt.billing.enabled, paying)
    else:
        message = member_status_message(
            user_usage(rt.engine, rt.policy, context.team_id, context.user_id)
        )
    reply(respond, message)
