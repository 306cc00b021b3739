"""manifest.yml agrees with the code: the command, the events, the request URLs, and exactly
the bot scopes that the Web API methods the code calls need."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from slack_sdk import WebClient

from bot.slack import constants as K
from bot.slack import listeners
from bot.slack.app import BOT_SCOPES, REDIRECT_PATH
from bot.slack.listeners.commands import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())

# The scope each Web API method needs (Slack's method reference). A call the code makes
# that is missing here fails the test, so a new call cannot ship without its scope.
SCOPE_OF_METHOD = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_delete": "chat:write",
    "chat_stream": "chat:write",  # chat.startStream, chat.appendStream, chat.stopStream
    "chat_stopStream": "chat:write",
    "conversations_join": "channels:join",
    "conversations_open": "im:write",
    "users_info": "users:read",
    "users_list": "users:read",
    # https://docs.slack.dev/reference/methods/usergroups.list and usergroups.users.list
    "usergroups_list": "usergroups:read",
    "usergroups_users_list": "usergroups:read",
    "files_upload_v2": "files:write",
    # https://docs.slack.dev/reference/methods/files.getUploadURLExternal and
    # files.completeUploadExternal: the two steps files_upload_v2 makes (bot/slack/file_shares.py)
    "files_getUploadURLExternal": "files:write",
    "files_completeUploadExternal": "files:write",
    "files_info": "files:read",  # also what file_input needs to hand a file over
    "views_open": None,
    "auth_test": None,  # the start-up check of SLACK_BOT_TOKEN needs no scope
    "views_update": None,
    "views_push": None,
    "views_publish": None,
    "chat_getPermalink": None,
}
# Scopes no method call shows: the slash command itself, and posting to public channels
# the bot has not joined.
IMPLIED_SCOPES = {"commands", "chat:write.public"}
# The scope each event the app subscribes to needs (Slack's event reference).
SCOPE_OF_EVENT = {
    "app_home_opened": None,
    "app_mention": "app_mentions:read",
    "app_uninstalled": None,
    "tokens_revoked": None,
}


# Only these layers talk to Slack (README, "Layout"); below them a `client` is another
# service's (a sequencer's `client.create_draft`, say), not a Slack WebClient.
SLACK_LAYERS = ("bot/slack", "bot/flows", "bot/runtime")


def web_api_calls() -> set[str]:
    """The Slack Web API methods the code calls (a sequencer client's calls are not Slack's)."""
    methods: set[str] = set()
    for path in [p for layer in SLACK_LAYERS for p in ROOT.glob(f"{layer}/**/*.py")]:
        methods |= set(re.findall(r"client\.([a-z]+_[A-Za-z0-9_]+)\(", path.read_text()))
    return {name for name in methods if hasattr(WebClient, name)}


def test_the_slash_command_is_the_one_the_code_listens_to():
    (command,) = MANIFEST["features"]["slash_commands"]
    assert command["command"] == K.COMMAND
    assert command["url"].endswith("/slack/events")


def test_every_request_url_is_slack_events_and_the_redirect_is_ours():
    settings = MANIFEST["settings"]
    assert settings["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    (redirect,) = MANIFEST["oauth_config"]["redirect_urls"]
    assert redirect.endswith(REDIRECT_PATH)


def handled_events() -> set[str]:
    return set(listeners.EVENTS)


def test_the_events_are_the_ones_the_code_handles():
    events = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    assert (
        events
        == handled_events()
        == {
            "app_home_opened",
            "app_mention",
            "app_uninstalled",
            "tokens_revoked",
        }
    )


def test_the_home_tab_is_enabled_because_the_code_publishes_it():
    publishes = "views_publish" in web_api_calls()
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is publishes is True
    # Threads fall back to the DM, so its Messages tab stays readable.
    assert MANIFEST["features"]["app_home"]["messages_tab_enabled"] is True


def test_the_usage_hint_names_every_subcommand():
    (command,) = MANIFEST["features"]["slash_commands"]
    subcommands = {name for name in SUBCOMMANDS if name} | {"help"}
    assert set(command["usage_hint"].strip("[]").split(" | ")) == subcommands


def test_the_scopes_are_exactly_what_the_code_calls_need():
    calls = web_api_calls()
    unknown = calls - SCOPE_OF_METHOD.keys()
    assert not unknown, f"add these Web API methods and their scopes to the table: {unknown}"
    needed = {SCOPE_OF_METHOD[m] for m in calls} | {SCOPE_OF_EVENT[e] for e in handled_events()}
    needed -= {None}
    manifest_scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert needed | IMPLIED_SCOPES == manifest_scopes
    assert manifest_scopes == set(BOT_SCOPES)
