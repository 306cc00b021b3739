"""Slack Web API clients: one per workspace, holding its bot token, looked up in the installation
store with its team (and Enterprise Grid org) id and renewed first when the workspace rotates
tokens (bot/slack/installations.py, the one place a refreshed token is saved); or the single
workspace's token. Every client rides out 429s, 5xx answers and dropped connections with
slack_sdk's own retry handlers.

`StoredAuthorize` is Bolt's authorize step on the same lookups: no `auth.test` before a
listener runs, since the installation already holds the bot's ids.
"""

from __future__ import annotations

import logging
import threading

from slack_bolt import BoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.token_rotation import TokenRotator

from bot.core.settings import Settings
from bot.slack.installations import TOKEN_ROTATION_MINUTES, WorkspaceInstallationStore

SLACK_TIMEOUT_SECONDS = 10


# slack_sdk's clients format a debug line with the whole payload of every call whenever their
# logger's own level is unset (~0.2 ms a call): theirs logs at the level this process does.
SDK_LOG = logging.getLogger("bot.slack.sdk")


def sdk_logger() -> logging.Logger:
    """The clients' logger, its level set from the process's once logging is set up."""
    if SDK_LOG.level == logging.NOTSET:
        SDK_LOG.setLevel(SDK_LOG.getEffectiveLevel())
    return SDK_LOG


def make_slack_client(settings: Settings, token: str | None = None) -> WebClient:
    """A Web API client on SLACK_API_URL that rides out 429s (honouring Retry-After), 5xx
    answers and dropped connections with slack_sdk's own retry handlers."""
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=SLACK_TIMEOUT_SECONDS,
        logger=sdk_logger(),
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class NotInstalled(LookupError):
    """ColdCopy has no installation (or no bot token) for this workspace."""


class SlackClients:
    """The client for each workspace this process talks to, made once and kept while its token
    stays the same."""

    def __init__(
        self,
        settings: Settings,
        installations: WorkspaceInstallationStore | None,
        identity: AuthorizeResult | None = None,
    ):
        self.settings = settings
        self.installations = installations
        self._clients: dict[str, WebClient] = {}
        self._identity = identity
        self._lock = threading.Lock()
        self._rotator = (
            TokenRotator(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret,
                client=make_slack_client(settings),
            )
            if installations is not None
            else None
        )

    def bot(self, team_id: str | None, enterprise_id: str | None = None) -> Bot | None:
        """The workspace's bot (OAuth installs), its token renewed first if it rotates and is
        about to expire."""
        if self.installations is None or team_id is None:
            return None
        return self.installations.fresh_bot(
            enterprise_id=enterprise_id, team_id=team_id, rotate=self._rotate
        )

    def _rotate(self, bot: Bot) -> Bot | None:
        return self._rotator.perform_bot_token_rotation(
            bot=bot, minutes_before_expiration=TOKEN_ROTATION_MINUTES
        )

    def client(self, team_id: str, enterprise_id: str | None = None) -> WebClient:
        """A client holding the bot token of `team_id` (or the single-workspace token)."""
        if self.installations is None:
            key, token = "single", self.settings.slack_bot_token
        else:
            bot = self.bot(team_id, enterprise_id)
            if bot is None:
                raise NotInstalled(f"ColdCopy is not installed in workspace {team_id}")
            key, token = team_id, bot.bot_token
        with self._lock:
            client = self._clients.get(key)
            if client is None or client.token != token:
                client = make_slack_client(self.settings, token)
                self._clients[key] = client
            return client

    def identity(self) -> AuthorizeResult:
        """The single workspace's bot, as `auth.test` describes it: asked once per process
        (at start-up), then remembered."""
        with self._lock:
            if self._identity is None:
                token = self.settings.slack_bot_token
                answer = make_slack_client(self.settings, token).auth_test()
                self._identity = AuthorizeResult.from_auth_test_response(
                    auth_test_response=answer, bot_token=token, user_token=None
                )
            return self._identity

    def forget(self, team_id: str) -> None:
        with self._lock:
            self._clients.pop(team_id, None)


class StoredAuthorize(Authorize):
    """Bolt's authorize step: the workspace's bot from the installation store (OAuth), or the
    single workspace's, with no Slack call while the request waits for its ack."""

    def __init__(self, clients: SlackClients):
        self.clients = clients

    def __call__(
        self,
        *,
        context: BoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        **actor: str | None,
    ) -> AuthorizeResult | None:
        if self.clients.installations is None:
            bot = self.clients.identity()  # the same fields as a stored Bot
        else:
            bot = self.clients.bot(team_id, enterprise_id)
        if bot is None:
            return None
        return AuthorizeResult(
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id,
            bot_user_id=bot.bot_user_id,
            bot_id=bot.bot_id,
            bot_token=bot.bot_token,
            bot_scopes=bot.bot_scopes,
            user_id=user_id,
        )
