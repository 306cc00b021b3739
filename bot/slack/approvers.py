"""Who approves a sequence before it goes to a sending tool: the workspace's admins, or the
members of the Slack user group an admin picked (usergroups.users.list, scope usergroups:read)."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error
from bot.slack.services import Services
from storage.approvals import Policy

# DMs sent for one approval request at most; a bigger group still sees it in the thread.
MAX_APPROVER_DMS = 25


def group_members(client: WebClient, group_id: str) -> list[str]:
    try:
        return list(client.usergroups_users_list(usergroup=group_id).get("users") or [])
    except SlackApiError as exc:
        count_slack_error("usergroups.users.list", exc)
        return []


def workspace_groups(client: WebClient) -> list[tuple[str, str]]:
    """(id, handle) of the workspace's enabled user groups; none when Slack won't say (a free
    plan has no user groups, or the install predates the scope)."""
    try:
        groups = client.usergroups_list().get("usergroups") or []
    except SlackApiError as exc:
        count_slack_error("usergroups.list", exc)
        return []
    return [(g["id"], g.get("handle") or g.get("name") or g["id"]) for g in groups][:90]


def is_approver(
    services: Services, client: WebClient, team_id: str, user_id: str, policy: Policy
) -> bool:
    if policy.approver_group:
        return user_id in group_members(client, policy.approver_group)
    return services.people.is_admin(client, team_id, user_id)
