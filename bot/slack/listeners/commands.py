"""`/coldcopy` and its subcommands: the form, status, settings, upgrade and help.

The ack answers at once; the work behind it (opening the form or the settings, status, the
upgrade link) runs afterwards on a pool whose backlog is bounded. When the backlog is full the
ack itself says "busy", and a modal whose trigger would expire before views.open reaches Slack
is not opened: the user is told, privately, to try again. Either is better than a form that
never appears.
"""

from __future__ import annotations

import logging
import time

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.runtime.backlog import BoundedPool
from bot.runtime.metrics import FORMS_NOT_OPENED, count_slack_error, slack_error
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

BUSY = "ColdCopy is busy right now and couldn't open the form in time. Please run /coldcopy again."
BUSY_OTHER = "ColdCopy is busy right now. Please run /coldcopy again in a moment."
# Waiting work per thread: at ~10 ms per form, a full backlog still opens in well under a
# second; a longer one would only hold forms that end up too late.
BACKLOG_PER_THREAD = 2
OPENS_A_MODAL = ("", "settings")


def subcommand(command: dict) -> tuple[str, str]:
    """The first word of the command's text, lowercased, and the whole text."""
    text = (command.get("text") or "").strip()
    return (text.split()[0].lower() if text else ""), text


def register(app: App, rt: Runtime) -> None:
    # Mostly waiting on Slack (views.open, users.info) and the database: more threads than
    # cores. Bolt's lazy listeners queue without bound, hence a pool of our own.
    threads = max(8, rt.settings.web_threads)
    pool = BoundedPool(threads, threads * BACKLOG_PER_THREAD, name="coldcopy-command")

    def acknowledge(
        ack: Ack, command: dict, client: WebClient, respond: Respond, context: BoltContext
    ) -> None:
        """Within Slack's 3 seconds: help is answered right here, the rest after the ack."""
        name, text = subcommand(command)
        if name == "help":
            ack(**_reply(help_message()))
            return
        if name not in ("", "status", "settings", "upgrade"):
            ack(**_reply(help_message(unknown=text[:50])))
            return
        received = context.get(K.RECEIVED_AT) or time.monotonic()
        if pool.try_submit(work, name, command, client, respond, context, received):
            ack()
            return
        if name in OPENS_A_MODAL:
            FORMS_NOT_OPENED.labels(reason="overloaded").inc()
            log.warning("too busy to open a form", extra={"team_id": context.team_id})
        ack(text=BUSY if name in OPENS_A_MODAL else BUSY_OTHER, response_type="ephemeral")

    def work(
        name: str,
        command: dict,
        client: WebClient,
        respond: Respond,
        context: BoltContext,
        received: float,
    ) -> None:
        # The last moment views.open may still leave for Slack with this command's trigger.
        deadline = received + K.TRIGGER_SECONDS - K.VIEWS_OPEN_MARGIN_SECONDS
        if name == "":
            with answering_failures(respond, "open the form", context.team_id):
                open_form(rt, client, respond, context, command, deadline)
        elif name == "status":
            with answering_failures(respond, "look up your usage", context.team_id):
                show_status(rt, client, respond, context)
        elif name == "settings":
            with answering_failures(respond, "open the settings", context.team_id):
                open_settings(
                    rt, client, context, command["trigger_id"], respond, deadline=deadline
                )
        elif name == "upgrade":
            with answering_failures(respond, "prepare the upgrade link", context.team_id):
                send_upgrade_link(rt, respond, context.team_id, context.user_id)

    app.command(K.COMMAND)(acknowledge)


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
    rt: Runtime,
    client: WebClient,
    respond: Respond,
    context: BoltContext,
    command: dict,
    deadline: float,
) -> None:
    """The form (or the upgrade prompt); neither when views.open could no longer reach Slack
    before the trigger expires."""
    if too_late(deadline, respond, context):
        return
    view = form_view(rt, client, context.team_id, context.user_id, command.get("channel_id"))
    if too_late(deadline, respond, context):
        return
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


def too_late(deadline: float, respond: Respond, context: BoltContext) -> bool:
    """Past the deadline, tell the user ColdCopy is busy instead of opening the modal."""
    if time.monotonic() <= deadline:
        return False
    FORMS_NOT_OPENED.labels(reason="expired").inc()
    log.warning("modal not opened: its trigger would expire", extra={"team_id": context.team_id})
    reply(respond, BUSY)
    return True


def open_settings(
    rt: Runtime,
    client: WebClient,
    context: BoltContext,
    trigger_id: str,
    respond: Respond | None = None,
    *,
    deadline: float | None = None,
) -> None:
    """The workspace settings modal for an admin; anyone else is told who can change them."""
    if not rt.people.is_admin(client, context.team_id, context.user_id):
        if respond is not None:
            reply(respond, ADMINS_ONLY)
            return
        view = message_view(ADMINS_ONLY)
    else:
        view = settings_view(WorkspaceDefaults(**read_settings(rt.engine, context.team_id)))
    if deadline is not None and respond is not None and too_late(deadline, respond, context):
        return
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
