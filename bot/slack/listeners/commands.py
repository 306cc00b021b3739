"""`/coldcopy` and its subcommands: the form, status, settings, upgrade and help.

The ack answers at once; the work behind it runs afterwards: the form with many in flight at
once (bot/slack/form_opener.py), the settings, status and the upgrade link on a pool whose
backlog is bounded. When either is full the ack itself says "busy", and a modal whose trigger
would expire before views.open reaches Slack is not opened: the user is told, privately, to
try again. Either is better than a form that never appears.
"""

from __future__ import annotations

import logging
import time

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.core.metrics import FORMS_NOT_OPENED
from bot.slack import constants as K
from bot.slack.account_messages import admin_status_message, help_message, member_status_message
from bot.slack.answers import answering_failures, reply
from bot.slack.billing_answers import billing_answer
from bot.slack.forms import BUSY, open_settings
from bot.slack.services import Services, services_of
from storage.access import Act
from storage.usage import user_usage, workspace_usage

log = logging.getLogger(__name__)

BUSY_OTHER = "ColdCopy is busy right now. Please run /coldcopy again in a moment."
OPENS_A_MODAL = ("", "settings")
SUBCOMMANDS = ("", "status", "settings", "upgrade")


def subcommand(command: dict) -> tuple[str, str]:
    """The first word of the command's text, lowercased, and the whole text."""
    text = (command.get("text") or "").strip()
    return (text.split()[0].lower() if text else ""), text


def coldcopy_command(
    ack: Ack, command: dict, client: WebClient, respond: Respond, context: BoltContext
) -> None:
    """Within Slack's 3 seconds: help is answered right here, the rest after the ack."""
    name, text = subcommand(command)
    if name == "help":
        ack(**_ephemeral(help_message()))
        return
    if name not in SUBCOMMANDS:
        ack(**_ephemeral(help_message(unknown=text[:50])))
        return
    services = services_of(context)
    received = context.get(K.RECEIVED_AT) or time.monotonic()
    if name == "":
        taken = services.forms.try_open(client, context, command, received)
    else:
        work = (services, name, command, client, respond, context, received)
        taken = services.after_ack.try_submit(after_the_ack, *work)
    if taken:
        ack()
        return
    if name in OPENS_A_MODAL:
        FORMS_NOT_OPENED.labels(reason="overloaded").inc()
        log.warning("too busy to open a form", extra={"team_id": context.team_id})
    ack(text=BUSY if name in OPENS_A_MODAL else BUSY_OTHER, response_type="ephemeral")


def after_the_ack(
    services: Services,
    name: str,
    command: dict,
    client: WebClient,
    respond: Respond,
    context: BoltContext,
    received: float,
) -> None:
    # The last moment views.open may still leave for Slack with this command's trigger.
    deadline = received + K.TRIGGER_SECONDS - K.VIEWS_OPEN_MARGIN_SECONDS
    if name == "status":
        with answering_failures(respond, "look up your usage", context.team_id):
            show_status(services, client, respond, context)
    elif name == "settings":
        with answering_failures(respond, "open the settings", context.team_id):
            open_settings(
                services, client, context, command["trigger_id"], respond, deadline=deadline
            )
    elif name == "upgrade":
        with answering_failures(respond, "prepare the upgrade link", context.team_id):
            message, _ = billing_answer(services, client, context.team_id, context.user_id)
            reply(respond, message)


def show_status(
    services: Services, client: WebClient, respond: Respond, context: BoltContext
) -> None:
    """The whole workspace's usage for admins and owners; their own for everyone else."""
    if services.may(client, context, Act.WORKSPACE_USAGE):
        usage = workspace_usage(services.engine, services.policy, context.team_id)
        paying = usage.plan == "pro" and usage.stripe_customer_id is not None
        message = admin_status_message(usage, services.billing.enabled, paying)
    else:
        message = member_status_message(
            user_usage(services.engine, services.policy, context.team_id, context.user_id)
        )
    reply(respond, message)


def _ephemeral(message) -> dict:
    return {"text": message.text, "blocks": message.blocks, "response_type": "ephemeral"}
