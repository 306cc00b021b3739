"""Workspace lifecycle events: an uninstall or revoked tokens erase the workspace's tokens
and personal data (briefs, sequences, rewrite texts, the workspace settings); usage and billing
records stay."""

from __future__ import annotations

import logging

from slack_bolt import BoltContext

from bot.slack.services import services_of
from storage.db import transaction
from storage.generations import erase_personal_data
from storage.rewrites import erase_rewrite_texts
from storage.settings import erase_settings

log = logging.getLogger(__name__)

EVENT_DEDUP_SECONDS = 3600


def forget_workspace(body: dict, context: BoltContext) -> None:
    services = services_of(context)
    event_id = body.get("event_id") or ""
    # Slack retries events it thinks we missed (X-Slack-Retry-Num); handle each once.
    if event_id and not services.dedup.first_time(f"event:{event_id}", EVENT_DEDUP_SECONDS):
        return
    team_id = context.team_id
    if services.slack.installations is not None:
        services.slack.installations.delete_all(
            enterprise_id=context.enterprise_id, team_id=team_id
        )
    services.slack.forget(team_id)
    erased = erase_personal_data(services.engine, team_id)
    erase_rewrite_texts(services.engine, team_id)
    with transaction(services.engine) as conn:  # what its admins wrote about their company
        erase_settings(conn, team_id)
    log.info(
        "workspace data erased (%d generations)",
        erased,
        extra={"team_id": team_id, "event_id": event_id},
    )
