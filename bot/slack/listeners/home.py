"""The App Home: published when a person opens the tab; its buttons open the brief form and
the workspace settings. Everything is acked first; the work happens after."""

from __future__ import annotations

import logging

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error
from bot.slack.answers import answering
from bot.slack.forms import form_view, open_settings
from bot.slack.home_tab import publish_home
from bot.slack.services import Services, services_of

log = logging.getLogger(__name__)


def show_home(event: dict, client: WebClient, context: BoltContext) -> None:
    # The event also fires for the Messages tab, which has nothing to publish.
    if event.get("tab", "home") == "home":
        user_id = event.get("user") or context.user_id
        publish_home(services_of(context), context.team_id, user_id, client)


@answering("open the form")
def write_sequence(body: dict, client: WebClient, context: BoltContext, services: Services):
    """The Home tab's Write a sequence button: the brief form (or the upgrade prompt)."""
    view = form_view(services, client, context.team_id, context.user_id, None)
    try:
        client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:
        count_slack_error("views.open", exc)
        log.warning("could not open the form from Home", extra={"team_id": context.team_id})


@answering("open the settings")
def workspace_settings(body: dict, client: WebClient, context: BoltContext, services: Services):
    open_settings(services, client, context, body["trigger_id"])
