"""The App Home: published when a person opens the tab; its buttons open the brief form and
the workspace settings. Everything is acked first; the work happens after."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.runtime.metrics import count_slack_error
from bot.runtime.wiring import Runtime
from bot.slack import constants as K
from bot.slack.home_tab import publish_home
from bot.slack.listeners.actions import tell
from bot.slack.listeners.commands import form_view, open_settings
from bot.slack.listeners.ephemeral import answering_failures

log = logging.getLogger(__name__)


def register(app: App, rt: Runtime) -> None:
    def show_home(event: dict, client: WebClient, context: BoltContext) -> None:
        # The event also fires for the Messages tab, which has nothing to publish.
        if event.get("tab", "home") == "home":
            publish_home(rt, context.team_id, event.get("user") or context.user_id, client)

    def write_sequence(body: dict, client: WebClient, context: BoltContext) -> None:
        # The Home tab has no response_url: a failure is told in a modal instead.
        with answering_failures(in_modal(body, client), "open the form", context.team_id):
            view = form_view(rt, client, context.team_id, context.user_id, None)
            try:
                client.views_open(trigger_id=body["trigger_id"], view=view)
            except SlackApiError as exc:
                count_slack_error("views.open", exc)
                log.warning("could not open the form from Home", extra={"team_id": context.team_id})

    def workspace_settings(body: dict, client: WebClient, context: BoltContext) -> None:
        with answering_failures(in_modal(body, client), "open the settings", context.team_id):
            open_settings(rt, client, context, body["trigger_id"])

    app.event("app_home_opened")(ack=acknowledge, lazy=[show_home])
    app.action(K.OPEN_FORM_ACTION)(ack=acknowledge, lazy=[write_sequence])
    app.action(K.SETTINGS_ACTION)(ack=acknowledge, lazy=[workspace_settings])


def acknowledge(ack: Ack) -> None:
    ack()


def in_modal(body: dict, client: WebClient):
    def say(text: str) -> None:
        tell(body, client, None, text)

    return say
