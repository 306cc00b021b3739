"""Reading a workspace's quota: the limits per plan, and where a workspace stands right now
(plan, used, limit, reset), from one indexed read. The reservations that change it are in
storage/ledger.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, bindparam, select

from storage.db import reading
from storage.lead_lists import LeadPolicy
from storage.models import Plan, Workspace, utcnow
from storage.workspaces import month_window

W = Workspace.__table__
READ_QUOTA = select(W.c.plan, W.c.used, W.c.period_end, W.c.grace_until).where(
    W.c.team_id == bindparam("team")
)


@dataclass(frozen=True)
class QuotaPolicy:
    """Sequences per workspace per billing period, by plan; and leads per calendar month."""

    free: int
    pro: int
    free_leads: int = 25
    pro_leads: int = 2000

    @property
    def leads(self) -> LeadPolicy:
        return LeadPolicy(free=self.free_leads, pro=self.pro_leads)

    def limit_at(self, plan: str, grace_until: datetime | None, now: datetime) -> int:
        """A pro plan counts while its grace period (after a failed payment) lasts."""
        if plan == Plan.PRO and (grace_until is None or grace_until > now):
            return self.pro
        return self.free


@dataclass(frozen=True)
class QuotaExhausted:
    plan: str
    used: int
    limit: int
    resets_at: datetime


@dataclass(frozen=True)
class Standing:
    """Where a workspace's quota stands right now, from one indexed read."""

    plan: str
    used: int
    limit: int
    resets_at: datetime


def quota_standing(
    engine: Engine, policy: QuotaPolicy, team_id: str, *, now: datetime | None = None
) -> Standing:
    """Plan, used, limit and reset time, without the status view's per-user and token sums."""
    now = now or utcnow()
    with reading(engine) as conn:
        ws = conn.execute(READ_QUOTA, {"team": team_id}).first()
    return standing_of(policy, ws, now)


def standing_of(policy: QuotaPolicy, ws, now: datetime) -> Standing:
    """The standing from a workspace row read with (at least) plan, used, period_end and
    grace_until, or None for a workspace the database has never seen."""
    plan = ws.plan if ws is not None else Plan.FREE
    limit = policy.limit_at(plan, ws.grace_until if ws is not None else None, now)
    if ws is None or ws.period_end <= now:
        return Standing(plan, 0, limit, month_window(now)[1])  # new workspace or new period
    return Standing(plan, ws.used, limit, ws.period_end)


def quota_exhausted(
    engine: Engine, policy: QuotaPolicy, team_id: str, *, now: datetime | None = None
) -> QuotaExhausted | None:
    """A read-only look, for showing the upgrade prompt instead of the form; never a gate
    (the reservation is). One indexed read."""
    return exhausted(quota_standing(engine, policy, team_id, now=now))


def exhausted(standing: Standing) -> QuotaExhausted | None:
    """What the upgrade prompt says, when the workspace has used its whole quota."""
    if standing.used >= standing.limit:
        return QuotaExhausted(
            plan=standing.plan,
            used=standing.used,
            limit=standing.limit,
            resets_at=standing.resets_at,
        )
    return None
