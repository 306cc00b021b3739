"""The long-lived objects one ColdCopy process needs, built once from the settings: the
database engine, limiter, writer, billing and Slack clients."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import Engine

from bot.runtime.config import Settings

if TYPE_CHECKING:
    from bot.domain.billing import Billing
    from bot.writing.writer import Writer
from bot.domain.limits import Deduplicator, RateLimiter, connect_redis
from bot.slack.admins import AdminDirectory
from bot.slack.installations import WorkspaceInstallationStore
from bot.slack.permalinks import Permalinks
from storage.db import make_engine
from storage.encryption import TokenCipher
from storage.ledger import QuotaPolicy

log = logging.getLogger(__name__)

SLACK_TIMEOUT_SECONDS = 10
# Renew a rotating bot token this long before it expires (Bolt's own default).
TOKEN_ROTATION_MINUTES = 120


def make_slack_client(settings: Settings, token: str | None = None) -> WebClient:
    """A Web API client on SLACK_API_URL that rides out 429s (honouring Retry-After), 5xx
    answers and dropped connections with slack_sdk's own retry handlers."""
    client = WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=SLACK_TIMEOUT_SECONDS,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )
    return client


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    policy: QuotaPolicy
    limiter: RateLimiter
    dedup: Deduplicator
    writer: Writer
    billing: Billing
    redis: redis.Redis | None
    installation_store: SQLAlchemyInstallationStore | None
    # Admin flags and locales from users.info, shared by the listeners and the Home tab.
    people: AdminDirectory = field(default_factory=AdminDirectory)
    permalinks: Permalinks = field(default_factory=Permalinks)
    _clients: dict[str, WebClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def slack_client(self, team_id: str, enterprise_id: str | None = None) -> WebClient:
        """A client holding the bot token of `team_id` (or the single-workspace token)."""
        if self.installation_store is None:
            key = "single"
            token = self.settings.slack_bot_token
        else:
            key = team_id
            bot = self.installation_store.find_bot(enterprise_id=enterprise_id, team_id=team_id)
            if bot is None:
                raise LookupError(f"ColdCopy is not installed in workspace {team_id}")
            token = self._fresh_bot_token(bot)
        with self._lock:
            client = self._clients.get(key)
            if client is None or client.token != token:
                client = make_slack_client(self.settings, token)
                self._clients[key] = client
            return client

    def _fresh_bot_token(self, bot) -> str:
        """The bot token, renewed first with slack_sdk's TokenRotator when the workspace uses
        token rotation and it is about to expire (workers run outside Bolt's authorize step,
        which does the same for requests)."""
        if not bot.bot_refresh_token or bot.bot_token_expires_at is None:
            return bot.bot_token
        from slack_sdk.oauth.token_rotation import TokenRotator

        rotator = TokenRotator(
            client_id=self.settings.slack_client_id,
            client_secret=self.settings.slack_client_secret,
            client=make_slack_client(self.settings),
        )
        renewed = rotator.perform_bot_token_rotation(
            bot=bot, minutes_before_expiration=TOKEN_ROTATION_MINUTES
        )
        if renewed is None:
            return bot.bot_token
        self.installation_store.save_bot(renewed)
        return renewed.bot_token

    def forget_client(self, team_id: str) -> None:
        with self._lock:
            self._clients.pop(team_id, None)

    def close(self) -> None:
        self.engine.dispose()
        if self.redis is not None:
            self.redis.close()


def build_runtime(settings: Settings, *, engine: Engine | None = None) -> Runtime:
    from bot.domain.billing import Billing
    from bot.writing.writer import Writer

    engine = engine or make_engine(settings.database_url, pool_size=settings.web_threads)
    client = connect_redis(settings.redis_url) if settings.redis_url else None
    installation_store = (
        WorkspaceInstallationStore(
            client_id=settings.slack_client_id,
            engine=engine,
            cipher=TokenCipher(settings.encryption_key or ""),
        )
        if settings.oauth_enabled
        else None
    )
    return Runtime(
        settings=settings,
        engine=engine,
        policy=QuotaPolicy(free=settings.free_quota, pro=settings.pro_quota),
        limiter=RateLimiter.from_settings(settings, client),
        dedup=Deduplicator.from_settings(settings, client),
        writer=Writer.from_settings(settings),
        billing=Billing.from_settings(settings, engine),
        redis=client,
        installation_store=installation_store,
    )
