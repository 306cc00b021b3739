"""Telling a workspace's admins and owners, by DM, about what only they can fix (billing)."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error
from bot.slack.services import Services
from storage.workspaces import enterprise_of

log = logging.getLogger(__name__)


def notify_admins(services: Services, team_id: str, text: str) -> None:
    """DM every admin and owner of the workspace; failures are logged, never raised."""
    try:
        client = services.slack.client(team_id, enterprise_of(services.engine, team_id))
        cursor = None
        while True:
            page = client.users_list(cursor=cursor, limit=200)
            for member in page.get("members", []):
                if member.get("deleted") or member.get("is_bot"):
                    continue
                if member.get("is_admin") or member.get("is_owner"):
                    dm = client.conversations_open(users=member["id"])["channel"]["id"]
                    client.chat_postMessage(channel=dm, text=text)
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
    except SlackApiError as exc:
        count_slack_error("users.list", exc)
        log.error("could not tell the admins about billing", extra={"team_id": team_id})
    except LookupError:
        log.error("billing notice for a workspace without an install", extra={"team_id": team_id})
