"""The App Home: published when a person opens the tab; its buttons open the brief form and
the workspace settings. Everything is acked first; the work happens after."""

from __future__ import annotations

import logging

from slack_bolt import BoltContext
from slack_sdk import WebClient

from bot.slack.answers import Answer, answering
from bot.slack.forms import form_view, settings_modal
from bot.slack.home_tab import publish_home
from bot.slack.modal import message_view
from bot.slack.services import Services, services_of
from bot.slack.wording import ADMINS_ONLY

log = logging.getLogger(__name__)

TOO_LATE = "Slack's window to open that form passed while ColdCopy was busy. Please click again."


def show_home(event: dict, client: WebClient, context: BoltContext) -> None:
    # The event also fires for the Messages tab, which has nothing to publish.
    if event.get("tab", "home") == "home":
        user_id = event.get("user") or context.user_id
        publish_home(services_of(context), context.team_id, user_id, client)


@answering("open the form")
def write_sequence(client: WebClient, context: BoltContext, services: Services, answer: Answer):
    """The Home tab's Write a sequence button: the brief form (or the upgrade prompt)."""
    view = form_view(services, client, context.team_id, context.user_id, None)
    answer.show(view, fallback=TOO_LATE)


@answering("open the settings")
def workspace_settings(client: WebClient, context: BoltContext, services, answer: Answer):
    view = settings_modal(services, client, context)
    answer.show(view or message_view(ADMINS_ONLY), fallback=TOO_LATE)
