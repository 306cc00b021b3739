"""Workspace lifecycle events. An uninstall, or the revocation of the bot's token, erases the
workspace: its work in flight is stopped first, then its tokens and personal data (briefs,
sequences, rewrite texts, lead lists, the workspace settings and their history, the sending
tools' keys) go, in one transaction
(storage/retention.py); usage and billing records stay. A revocation naming only people's own
(user) tokens deletes those tokens and nothing else."""

from __future__ import annotations

import logging

from slack_bolt import BoltContext

from bot.slack.services import services_of
from storage.erasure import forget_user_tokens
from storage.retention import forget_workspace

log = logging.getLogger(__name__)

EVENT_DEDUP_SECONDS = 3600


def _first_delivery(body: dict, context: BoltContext) -> bool:
    event_id = body.get("event_id") or ""
    # Slack retries events it thinks we missed (X-Slack-Retry-Num); handle each once.
    return not event_id or services_of(context).dedup.first_time(
        f"event:{event_id}", EVENT_DEDUP_SECONDS
    )


def app_uninstalled(body: dict, context: BoltContext) -> None:
    if _first_delivery(body, context):
        erase_workspace(body, context)


def tokens_revoked(body: dict, event: dict, context: BoltContext) -> None:
    """`tokens`: {"oauth": [user ids], "bot": [bot user ids]}, each list optional."""
    if not _first_delivery(body, context):
        return
    tokens = event.get("tokens") if isinstance(event.get("tokens"), dict) else {}
    bots = tokens.get("bot") if isinstance(tokens.get("bot"), list) else []
    users = tokens.get("oauth") if isinstance(tokens.get("oauth"), list) else []
    if bots:
        erase_workspace(body, context)
    elif users:
        services = services_of(context)
        gone = forget_user_tokens(services.engine, context.team_id, users)
        log.info(
            "user tokens revoked: %d installation rows cleared",
            gone,
            extra={"team_id": context.team_id, "event_id": body.get("event_id")},
        )


def erase_workspace(body: dict, context: BoltContext) -> None:
    services = services_of(context)
    team_id = context.team_id
    erased = forget_workspace(services.engine, team_id)
    # This process's client for it goes too; any other process's finds no token next time.
    services.slack.forget(team_id)
    log.info(
        "workspace data erased (%d generations)",
        erased.generations if erased else 0,
        extra={"team_id": team_id, "event_id": body.get("event_id")},
    )
