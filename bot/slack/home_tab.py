"""Publishing a person's App Home: gather what they may see, link their threads, and
`views.publish` it. Called when they open the tab, after they change the workspace settings,
and by the job runtime after each of their generations, so it is current the next time."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error
from bot.slack.home import AdminHome, HomeSequence, HomeState, home_view
from bot.slack.services import Services
from bot.writing.defaults import WorkspaceDefaults
from storage.access import Act
from storage.settings import read_settings
from storage.usage import RecentSequence, recent_sequences, user_usage, workspace_usage

log = logging.getLogger(__name__)

RECENT_SEQUENCES = 5


def home_state(services: Services, client: WebClient, team_id: str, user_id: str) -> HomeState:
    recent = [
        HomeSequence(seq, _thread_link(services, client, team_id, seq))
        for seq in recent_sequences(services.engine, team_id, user_id, limit=RECENT_SEQUENCES)
    ]
    admin = None
    if services.may_in(client, team_id, user_id, Act.WORKSPACE_USAGE):
        admin = AdminHome(
            usage=workspace_usage(services.engine, services.policy, team_id),
            defaults=WorkspaceDefaults(**read_settings(services.engine, team_id)),
            billing_enabled=services.billing.enabled,
        )
    return HomeState(
        usage=user_usage(services.engine, services.policy, team_id, user_id),
        recent=recent,
        admin=admin,
    )


def _thread_link(
    services: Services, client: WebClient, team_id: str, seq: RecentSequence
) -> str | None:
    if not (seq.channel_id and seq.parent_ts):
        return None
    return services.permalinks.link(client, team_id, seq.channel_id, seq.parent_ts)


def publish_home(
    services: Services,
    team_id: str,
    user_id: str,
    client: WebClient | None = None,
    *,
    enterprise_id: str | None = None,
) -> bool:
    """Publish `user_id`'s Home tab; never raises (a stale Home must not fail the caller's
    work). False when it could not be published."""
    context = {"team_id": team_id}
    try:
        client = client or services.slack.client(team_id, enterprise_id)
        client.views_publish(
            user_id=user_id, view=home_view(home_state(services, client, team_id, user_id))
        )
        return True
    except SlackApiError as exc:
        count_slack_error("views.publish", exc)
        log.warning("could not publish the Home tab", extra=context)
    except LookupError:
        log.info("no Home tab to publish: ColdCopy is not installed there", extra=context)
    except Exception:
        log.exception("could not build the Home tab", extra=context)
    return False
