"""Workspace lifecycle events: an uninstall or revoked tokens erase the workspace's tokens
and personal data (briefs, sequences, rewrite texts, the workspace settings); usage and billing
records stay."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App, BoltContext

from bot.runtime.wiring import Runtime
from storage.db import transaction
from storage.generations import erase_personal_data
from storage.rewrites import erase_rewrite_texts
from storage.settings import erase_settings

log = logging.getLogger(__name__)

EVENT_DEDUP_SECONDS = 3600


def register(app: App, rt: Runtime) -> None:
    def forget_workspace(body: dict, context: BoltContext) -> None:
        event_id = body.get("event_id") or ""
        # Slack retries events it thinks we missed (X-Slack-Retry-Num); handle each once.
        if event_id and not rt.dedup.first_time(f"event:{event_id}", EVENT_DEDUP_SECONDS):
            return
        team_id = context.team_id
        if rt.installation_store is not None:
            rt.installation_store.delete_all(enterprise_id=context.enterprise_id, team_id=team_id)
        rt.forget_client(team_id)
        erased = erase_personal_data(rt.engine, team_id)
        erase_rewrite_texts(rt.engine, team_id)
        with transaction(rt.engine) as conn:  # what its admins wrote about their company
            erase_settings(conn, team_id)
        log.info(
            "workspace data erased (%d generations)",
            erased,
            extra={"team_id": team_id, "event_id": event_id},
        )

    app.event("app_uninstalled")(ack=acknowledge, lazy=[forget_workspace])
    app.event("tokens_revoked")(ack=acknowledge, lazy=[forget_workspace])


def acknowledge(ack: Ack) -> None:
    ack()
