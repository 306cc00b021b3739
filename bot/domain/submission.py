"""Accepting a brief: validate, reserve quota, check the rate limit, de-duplicate, hand on.

The order is a product decision: an exhausted quota always wins and shows the
upgrade prompt; only then does the rate limit speak, and a rate denial gives the reserved
unit back. A submission delivered twice (same view id) is stopped by the generation's unique
idempotency key in the same transaction as the reservation, so it holds even while Redis is
down. Plain Python: the Slack listeners translate the typed results into views.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from bot.core.metrics import QUOTA_DENIALS
from bot.domain.limits import RateLimited, RateLimiter
from bot.writing.brief import CONTEXT_FIELDS, BriefErrors, validate_brief
from storage.ledger import DuplicateRequest, reserve_generation, withdraw_generation
from storage.models import Generation
from storage.quota import QuotaExhausted, QuotaPolicy
from storage.settings import read_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    generation_id: str
    company: str
    channel_id: str
    used: int
    limit: int


@dataclass(frozen=True)
class InvalidRequest:
    """An id in the request is longer than any Slack id: refused before anything is stored,
    the same on every database (SQLite would store it, PostgreSQL would fail)."""

    field: str


Outcome = Accepted | BriefErrors | QuotaExhausted | RateLimited | DuplicateRequest | InvalidRequest

G = Generation.__table__
ID_LIMITS = {
    "team_id": G.c.team_id.type.length,
    "user_id": G.c.user_id.type.length,
    "channel_id": G.c.channel_id.type.length,
}
IDEMPOTENCY_KEY_LIMIT = G.c.idempotency_key.type.length


def bounded_key(key: str) -> str:
    """The idempotency key, hashed when longer than its column: still one key per request."""
    if len(key) <= IDEMPOTENCY_KEY_LIMIT:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def in_workspace_context(engine: Engine, team_id: str, brief: dict) -> dict:
    """The brief with the workspace's context as it stands now (who the sender works for,
    phrases to avoid), replacing whatever an older brief carried. Saved settings were checked
    with the brief's own limits."""
    settings = read_settings(engine, team_id)
    return {**brief, **{f.key: settings[f.key] for f in CONTEXT_FIELDS}}


@dataclass
class Submissions:
    engine: Engine
    policy: QuotaPolicy
    limiter: RateLimiter
    model: str
    # Hands an accepted generation to whatever runs it (the job queue, or this process's
    # pool); never raises: a generation it could not hand on is found by the sweeper.
    hand_on: Callable[[str], None]

    def submit(
        self,
        *,
        team_id: str,
        user_id: str,
        channel_id: str,
        fields: dict,
        idempotency_key: str,
        team_name: str | None = None,
        enterprise_id: str | None = None,
    ) -> Outcome:
        # The workspace's context (who the sender works for, phrases to avoid) is added when
        # the writing starts (`in_workspace_context`): no settings read while Slack waits.
        brief = validate_brief(fields)
        if isinstance(brief, BriefErrors):
            return brief
        ids = {"team_id": team_id, "user_id": user_id, "channel_id": channel_id}
        for name, value in ids.items():
            if not value or len(value) > ID_LIMITS[name]:
                return InvalidRequest(field=name)
        idempotency_key = bounded_key(idempotency_key)

        reserved = reserve_generation(
            self.engine,
            self.policy,
            team_id=team_id,
            user_id=user_id,
            channel_id=channel_id,
            idempotency_key=idempotency_key,
            brief=brief.model_dump(),
            model=self.model,
            team_name=team_name,
            enterprise_id=enterprise_id,
        )
        if isinstance(reserved, QuotaExhausted):
            QUOTA_DENIALS.inc()
            return reserved
        if isinstance(reserved, DuplicateRequest):
            return reserved

        limited = self.limiter.check(team_id, user_id)
        if isinstance(limited, RateLimited):
            withdraw_generation(self.engine, reserved.generation_id)
            return limited

        self.hand_on(reserved.generation_id)
        return Accepted(
            generation_id=reserved.generation_id,
            company=brief.company,
            channel_id=channel_id,
            used=reserved.used,
            limit=reserved.limit,
        )
