"""Starting a lead list: its leads reserved from the month's allowance first (one conditional
UPDATE), then the rate limit (a refused list gives its leads back), then handed to a worker.
Quota first, then rate: a workspace out of leads is shown the upgrade, never "slow down"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from bot.domain.limits import RateLimited, RateLimiter
from storage.lead_lists import (
    LeadPolicy,
    LeadsExhausted,
    LeadsReserved,
    create_lead_list,
    withdraw_lead_list,
)


@dataclass(frozen=True)
class ListRequest:
    team_id: str
    user_id: str
    generation_id: str
    leads: int
    source: bytes
    filename: str
    key: str  # the same request twice (a double submission) is one list
    channel_id: str | None = None
    thread_ts: str | None = None
    enterprise_id: str | None = None


@dataclass
class LeadLists:
    engine: Engine
    policy: LeadPolicy
    limiter: RateLimiter
    hand_on: Callable[[str], None]

    def start(self, request: ListRequest) -> LeadsReserved | LeadsExhausted | RateLimited:
        reserved = create_lead_list(
            self.engine,
            self.policy,
            team_id=request.team_id,
            user_id=request.user_id,
            generation_id=request.generation_id,
            leads=request.leads,
            source=request.source,
            filename=request.filename,
            idempotency_key=request.key,
            channel_id=request.channel_id,
            thread_ts=request.thread_ts,
            enterprise_id=request.enterprise_id,
        )
        if isinstance(reserved, LeadsExhausted):
            return reserved
        if not reserved.again:
            limited = self.limiter.check(request.team_id, request.user_id)
            if isinstance(limited, RateLimited):
                withdraw_lead_list(self.engine, reserved.list_id)
                return limited
        self.hand_on(reserved.list_id)
        return reserved
