"""Accepting a brief: validate, reserve quota, check the rate limit, de-duplicate.

The order is a product decision: an exhausted quota always wins and shows the
upgrade prompt; only then does the rate limit speak, and a rate denial gives the reserved
unit back. A submission delivered twice (same view id) is stopped by the generation's unique
idempotency key in the same transaction as the reservation, so it holds even while Redis is
down. Plain Python: the Slack listeners translate the typed results into views.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from bot.domain.limits import RateLimited, RateLimiter
from bot.runtime.metrics import QUOTA_DENIALS
from bot.writing.brief import CONTEXT_FIELDS, BriefErrors, validate_brief
from storage.ledger import (
    DuplicateRequest,
    QuotaExhausted,
    QuotaPolicy,
    reserve_generation,
    withdraw_generation,
)
from storage.settings import read_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    generation_id: str
    company: str
    channel_id: str
    used: int
    limit: int


Outcome = Accepted | BriefErrors | QuotaExhausted | RateLimited | DuplicateRequest


@dataclass
class Submissions:
    engine: Engine
    policy: QuotaPolicy
    limiter: RateLimiter
    model: str

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
        # The workspace's context (who the sender works for, phrases to avoid) goes with
        # every brief as it stands now, replacing whatever an older brief carried.
        settings = read_settings(self.engine, team_id)
        context = {f.key: settings[f.key] for f in CONTEXT_FIELDS}
        brief = validate_brief({**fields, **context})
        if isinstance(brief, BriefErrors):
            return brief

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

        return Accepted(
            generation_id=reserved.generation_id,
            company=brief.company,
            channel_id=channel_id,
            used=reserved.used,
            limit=reserved.limit,
        )
