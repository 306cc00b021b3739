"""Opening ColdCopy's modals in time: the brief form from a click (or the upgrade prompt when
the form could not be used anyway; `/coldcopy`'s own is in form_opener.py) and the workspace
settings. Slack's trigger opens a modal only within 3 seconds of the click or command, so a
modal that could no longer reach Slack in time is not opened: the user is told, privately, to
try again."""

from __future__ import annotations

import logging
import time

from slack_bolt import BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import FORMS_NOT_OPENED, count_slack_error
from bot.slack.answers import reply
from bot.slack.modal import brief_view, settings_view, upgrade_view
from bot.slack.services import Services
from bot.slack.wording import ADMINS_ONLY
from bot.writing.brief import DEFAULT_LANGUAGE
from bot.writing.defaults import WorkspaceDefaults, form_prefill
from storage.access import Act
from storage.form_reads import read_form
from storage.settings import read_settings

log = logging.getLogger(__name__)

BUSY = "ColdCopy is busy right now and couldn't open the form in time. Please run /coldcopy again."


def form_view(
    services: Services, client: WebClient, team_id: str, user_id: str, channel_id: str | None
) -> dict:
    """The brief form, or the upgrade prompt when the form could not be used anyway (for a
    click; `/coldcopy` opens its form in bot/slack/form_opener.py, by the same rules).

    Pre-filled with the user's last brief, else the workspace's defaults; the language is
    their last one, else the workspace's, else their Slack locale's, else English."""
    reads = read_form(services.engine, services.policy, team_id, user_id)
    if reads.exhausted is not None:
        return upgrade_view(reads.exhausted, services.billing.enabled)
    prefill = form_prefill(reads.previous_brief, WorkspaceDefaults(**reads.settings))
    if not prefill.get("language"):
        # users.info only when nothing else decides; it is cached for a few minutes.
        prefill["language"] = services.people.language(client, team_id, user_id) or DEFAULT_LANGUAGE
    return brief_view(prefill, channel_id)


def too_late(deadline: float, respond: Respond, context: BoltContext) -> bool:
    """Past the deadline, tell the user ColdCopy is busy instead of opening the modal."""
    if time.monotonic() <= deadline:
        return False
    FORMS_NOT_OPENED.labels(reason="expired").inc()
    log.warning("modal not opened: its trigger would expire", extra={"team_id": context.team_id})
    reply(respond, BUSY)
    return True


def settings_modal(services: Services, client: WebClient, context: BoltContext) -> dict | None:
    """The workspace settings for an admin; None for anyone else (they are told who can)."""
    if not services.may(client, context, Act.SETTINGS):
        return None
    return settings_view(WorkspaceDefaults(**read_settings(services.engine, context.team_id)))


def open_settings(
    services: Services,
    client: WebClient,
    context: BoltContext,
    trigger_id: str,
    respond: Respond,
    *,
    deadline: float,
) -> None:
    """`/coldcopy settings`: the settings modal for an admin; anyone else is told who can."""
    view = settings_modal(services, client, context)
    if view is None:
        reply(respond, ADMINS_ONLY)
        return
    if too_late(deadline, respond, context):
        return
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        count_slack_error("views.open", exc)
        log.warning("could not open the settings", extra={"team_id": context.team_id})
        reply(respond, "Slack didn't let me open the settings in time. Please try again.")
