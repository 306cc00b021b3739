"""Usage reports for `/coldcopy status`, `coldcopy usage` and the App Home: plan, quota, people,
tokens and cost (sequences and rewrites), feedback on the emails, and a member's recent
sequences."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, and_, func, literal, select

from storage.db import reading
from storage.feedback import FeedbackCounts, feedback_counts
from storage.lead_lists import leads_standing
from storage.lead_results import lead_usage
from storage.models import (
    Generation,
    GenerationStatus,
    Plan,
    QuotaState,
    UTCDateTime,
    Workspace,
    utcnow,
)
from storage.quota import QuotaPolicy
from storage.rewrites import rewrite_tokens
from storage.tokens import TokenUsage
from storage.workspaces import month_window

W = Workspace.__table__
G = Generation.__table__


@dataclass(frozen=True)
class WorkspaceUsage:
    team_id: str
    plan: str
    used: int
    limit: int
    resets_at: datetime
    in_flight: int
    per_user: list[tuple[str, int]] = field(default_factory=list)
    # Sequences and rewrites together: everything the workspace's model calls cost.
    tokens: TokenUsage = field(default_factory=TokenUsage)
    feedback: FeedbackCounts = field(default_factory=FeedbackCounts)
    subscription_status: str | None = None
    name: str | None = None
    stripe_customer_id: str | None = None
    # Lead lists: leads reserved or written this calendar month, the month's allowance, and
    # what writing them cost (also counted in `tokens`).
    leads_used: int = 0
    leads_limit: int = 0
    lead_tokens: TokenUsage = field(default_factory=TokenUsage)

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


@dataclass(frozen=True)
class UserUsage:
    user_id: str
    used: int
    workspace: WorkspaceUsage


def _counted():
    return G.c.quota_state.in_((QuotaState.RESERVED, QuotaState.COMMITTED))


def workspace_usage(
    engine: Engine,
    policy: QuotaPolicy,
    team_id: str,
    *,
    top: int = 10,
    now: datetime | None = None,
) -> WorkspaceUsage:
    """Plan, used/limit, reset time, in flight, top users, tokens and cost this period."""
    now = now or utcnow()
    with reading(engine) as conn:
        ws = conn.execute(select(W).where(W.c.team_id == team_id)).first()
        if ws is None:
            _, end = month_window(now)
            return WorkspaceUsage(
                team_id=team_id,
                plan=Plan.FREE,
                used=0,
                limit=policy.free,
                resets_at=end,
                in_flight=0,
                leads_limit=policy.free_leads,
            )
        limit = policy.limit_at(ws.plan, ws.grace_until, now)
        if ws.period_end <= now:
            # The period has ended but no reservation has rolled it over yet.
            period_start, resets_at = month_window(now)
            used = 0
        else:
            period_start, resets_at, used = ws.period_start, ws.period_end, ws.used
        in_period = and_(
            G.c.team_id == team_id, G.c.period_start == literal(period_start, UTCDateTime())
        )
        in_flight = conn.execute(
            select(func.count())
            .select_from(G)
            .where(
                G.c.team_id == team_id,
                G.c.status.in_((GenerationStatus.QUEUED, GenerationStatus.RUNNING)),
            )
        ).scalar_one()
        per_user = [
            (r.user_id, r.n)
            for r in conn.execute(
                select(G.c.user_id, func.count().label("n"))
                .where(in_period, _counted())
                .group_by(G.c.user_id)
                .order_by(func.count().desc(), G.c.user_id)
                .limit(top)
            )
        ]
        totals = conn.execute(
            select(
                func.coalesce(func.sum(G.c.input_tokens), 0),
                func.coalesce(func.sum(G.c.output_tokens), 0),
                func.coalesce(func.sum(G.c.cache_creation_tokens), 0),
                func.coalesce(func.sum(G.c.cache_read_tokens), 0),
                func.coalesce(func.sum(G.c.cost_usd), 0),
            ).where(in_period)
        ).one()
    sequences = TokenUsage(
        input=int(totals[0]),
        output=int(totals[1]),
        cache_write=int(totals[2]),
        cache_read=int(totals[3]),
        cost_usd=Decimal(str(totals[4])).quantize(Decimal("0.000001")),
    )
    _, leads_used, leads_limit = leads_standing(engine, policy.leads, team_id, now=now)
    _, lead_tokens = lead_usage(engine, team_id, month_window(now)[0])
    return WorkspaceUsage(
        team_id=team_id,
        plan=ws.plan,
        used=used,
        limit=limit,
        resets_at=resets_at,
        in_flight=in_flight,
        per_user=per_user,
        tokens=sequences + rewrite_tokens(engine, team_id, period_start, resets_at) + lead_tokens,
        feedback=feedback_counts(engine, team_id, period_start),
        subscription_status=ws.subscription_status,
        name=ws.name,
        stripe_customer_id=ws.stripe_customer_id,
        leads_used=leads_used,
        leads_limit=leads_limit,
        lead_tokens=lead_tokens,
    )


def user_usage(
    engine: Engine, policy: QuotaPolicy, team_id: str, user_id: str, *, now: datetime | None = None
) -> UserUsage:
    """One member's generations this period, with the workspace's figures."""
    now = now or utcnow()
    ws = workspace_usage(engine, policy, team_id, top=0, now=now)
    with reading(engine) as conn:
        current = conn.execute(
            select(W.c.period_start, W.c.period_end).where(W.c.team_id == team_id)
        ).first()
        if current is None or current.period_end <= now:
            return UserUsage(user_id=user_id, used=0, workspace=ws)
        mine = conn.execute(
            select(func.count())
            .select_from(G)
            .where(
                G.c.team_id == team_id,
                G.c.user_id == user_id,
                G.c.period_start == literal(current.period_start, UTCDateTime()),
                _counted(),
            )
        ).scalar_one()
    return UserUsage(user_id=user_id, used=mine, workspace=ws)


@dataclass(frozen=True)
class RecentSequence:
    """One of a member's latest generations, for their App Home."""

    generation_id: str
    company: str
    job_title: str
    language: str | None
    status: str
    created_at: datetime
    channel_id: str | None
    parent_ts: str | None


def recent_sequences(
    engine: Engine, team_id: str, user_id: str, *, limit: int = 5
) -> list[RecentSequence]:
    """This member's latest generations whose brief is still kept, newest first."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(
                G.c.id,
                G.c.brief,
                G.c.status,
                G.c.created_at,
                G.c.channel_id,
                G.c.posted_channel_id,
                G.c.parent_ts,
            )
            .where(G.c.team_id == team_id, G.c.user_id == user_id, G.c.brief.is_not(None))
            .order_by(G.c.created_at.desc())
            .limit(limit)
        ).all()
    return [
        RecentSequence(
            generation_id=r.id,
            company=str(r.brief.get("company") or ""),
            job_title=str(r.brief.get("job_title") or ""),
            language=r.brief.get("language"),
            status=r.status,
            created_at=r.created_at,
            channel_id=r.posted_channel_id or r.channel_id,
            parent_ts=r.parent_ts,
        )
        for r in rows
    ]
