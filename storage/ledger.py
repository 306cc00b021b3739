"""The quota ledger: reserve a unit atomically, commit it on delivery, give it back on failure.

A unit is reserved by ONE conditional UPDATE that also rolls an expired period over, so two
submissions at once can never both take the last unit. Committing and releasing are guarded by
the generation's `quota_state`, which makes both idempotent. Nothing here knows Slack.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    delete,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError

from storage.db import reading, transaction
from storage.models import (
    Generation,
    GenerationStatus,
    Plan,
    QuotaState,
    UTCDateTime,
    Workspace,
    utcnow,
)
from storage.quota import READ_QUOTA, QuotaExhausted, QuotaPolicy
from storage.tokens import TokenUsage
from storage.workspaces import ensure_workspace, month_window

W = Workspace.__table__
G = Generation.__table__


@dataclass(frozen=True)
class Reserved:
    generation_id: str
    used: int
    limit: int
    resets_at: datetime


@dataclass(frozen=True)
class DuplicateRequest:
    """The same idempotency key was already accepted; nothing was reserved this time."""

    generation_id: str


class CommitRefused(Exception):
    """The reservation was already released (or never held): its usage cannot be committed."""


# The hot path's statements are built once with bound parameters: building SQLAlchemy
# constructs per request cost more CPU than the database round trips themselves.
_NOW = bindparam("now", type_=UTCDateTime())
_EXPIRED = W.c.period_end <= _NOW
_PRO_ACTIVE = and_(W.c.plan == Plan.PRO, or_(W.c.grace_until.is_(None), W.c.grace_until > _NOW))
_LIMIT = case((_PRO_ACTIVE, bindparam("pro_quota")), else_=bindparam("free_quota"))

# ONE statement rolls an expired period over and takes a unit only while one is left.
_TAKE_UNIT = (
    sa_update(W)
    .where(W.c.team_id == bindparam("team"), or_(_EXPIRED, W.c.used < _LIMIT))
    .values(
        used=case((_EXPIRED, 1), else_=W.c.used + 1),
        period_start=case(
            (_EXPIRED, bindparam("new_start", type_=UTCDateTime())), else_=W.c.period_start
        ),
        period_end=case(
            (_EXPIRED, bindparam("new_end", type_=UTCDateTime())), else_=W.c.period_end
        ),
        updated_at=_NOW,
    )
    # The limit is recomputed in Python: bound parameters inside RETURNING are not
    # reliably ordered on SQLite's positional paramstyle.
    .returning(W.c.used, W.c.period_start, W.c.period_end, W.c.plan, W.c.grace_until)
)
_INSERT_GENERATION = insert(G)


# PostgreSQL: the unit and the generation row in ONE statement, run in autocommit (one round
# trip, no BEGIN/COMMIT): the UPDATE's RETURNING feeds the INSERT, and a statement is atomic,
# so a duplicate idempotency key undoes the unit with it. No row back means no unit was taken
# (quota used up, or no workspace row yet): the transaction below then sorts that out.
_TAKEN = _TAKE_UNIT.cte("taken")
_GENERATION_COLUMNS = (
    "id",
    "team_id",
    "enterprise_id",
    "user_id",
    "channel_id",
    "status",
    "quota_state",
    "brief",
    "model",
    "idempotency_key",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "attempts",
)
_INSERTED = (
    insert(G)
    .from_select(
        [*_GENERATION_COLUMNS, "period_start", "created_at", "updated_at"],
        # Typed parameters (psycopg renders each with its cast, so PostgreSQL knows them),
        # prefixed: a parameter named like a workspace column would join the UPDATE's SET.
        select(
            *(bindparam(f"g_{name}", type_=G.c[name].type) for name in _GENERATION_COLUMNS),
            _TAKEN.c.period_start,
            _NOW,
            _NOW,
        ),
        include_defaults=False,
    )
    .returning(G.c.id)
    .cte("inserted")
)
_RESERVE_IN_ONE_STATEMENT = select(
    _TAKEN.c.used, _TAKEN.c.period_start, _TAKEN.c.period_end, _TAKEN.c.plan, _TAKEN.c.grace_until
).select_from(_TAKEN.join(_INSERTED, true()))


def reserve_generation(
    engine: Engine,
    policy: QuotaPolicy,
    *,
    team_id: str,
    user_id: str,
    channel_id: str,
    idempotency_key: str,
    brief: dict | None = None,
    model: str | None = None,
    team_name: str | None = None,
    enterprise_id: str | None = None,
    now: datetime | None = None,
) -> Reserved | QuotaExhausted | DuplicateRequest:
    """Take one unit of the workspace's quota and write the queued generation, atomically.

    The unit is taken by a single UPDATE that rolls an expired period over and succeeds only
    while `used < limit`; the generation row is inserted in the same statement (PostgreSQL) or
    transaction (SQLite), so a duplicate idempotency key rolls the reservation back with it.
    A brand-new workspace's row is created (race-safely) only when the UPDATE finds none.
    """
    now = now or utcnow()
    new_start, new_end = month_window(now)
    params = {
        "team": team_id,
        "now": now,
        "new_start": new_start,
        "new_end": new_end,
        "pro_quota": policy.pro,
        "free_quota": policy.free,
    }
    generation = {
        "id": str(uuid.uuid4()),
        "team_id": team_id,
        "enterprise_id": enterprise_id,
        "user_id": user_id,
        "channel_id": channel_id,
        "status": GenerationStatus.QUEUED,
        "quota_state": QuotaState.RESERVED,
        "brief": brief,
        "model": model,
        "idempotency_key": idempotency_key,
        "cost_usd": Decimal(0),
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_tokens": 0,
        "cache_read_tokens": 0,
        "attempts": 0,
    }
    try:
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                row = (
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                    .execute(
                        _RESERVE_IN_ONE_STATEMENT,
                        params | {f"g_{name}": value for name, value in generation.items()},
                    )
                    .first()
                )
            if row is not None:
                return _reserved(generation["id"], row, policy, now)
        with transaction(engine) as conn:
            row = conn.execute(_TAKE_UNIT, params).first()
            if row is None:
                # No unit, or no row yet. Create the row if it is missing, then try once more:
                # a concurrent first request may have created it after our UPDATE looked.
                if conn.execute(READ_QUOTA, {"team": team_id}).first() is None:
                    ensure_workspace(
                        conn, team_id, name=team_name, enterprise_id=enterprise_id, now=now
                    )
                row = conn.execute(_TAKE_UNIT, params).first()
            if row is None:
                ws = conn.execute(READ_QUOTA, {"team": team_id}).one()
                return QuotaExhausted(
                    plan=ws.plan,
                    used=ws.used,
                    limit=policy.limit_at(ws.plan, ws.grace_until, now),
                    resets_at=ws.period_end,
                )
            conn.execute(
                _INSERT_GENERATION,
                generation
                | {"period_start": row.period_start, "created_at": now, "updated_at": now},
            )
            return _reserved(generation["id"], row, policy, now)
    except IntegrityError:
        with reading(engine) as conn:
            existing = conn.execute(
                select(G.c.id).where(G.c.idempotency_key == idempotency_key)
            ).scalar_one_or_none()
        if existing is None:
            raise
        return DuplicateRequest(generation_id=existing)


def _reserved(generation_id: str, row, policy: QuotaPolicy, now: datetime) -> Reserved:
    return Reserved(
        generation_id=generation_id,
        used=row.used,
        limit=policy.limit_at(row.plan, row.grace_until, now),
        resets_at=row.period_end,
    )


def give_back_unit(conn: Connection, team_id: str, period_start: datetime, now: datetime) -> None:
    # Only a unit of the same period goes back: after a rollover the old unit is already gone.
    conn.execute(
        sa_update(W)
        .where(
            W.c.team_id == team_id,
            W.c.period_start == literal(period_start, UTCDateTime()),
            W.c.used > 0,
        )
        .values(used=W.c.used - 1, updated_at=literal(now, UTCDateTime()))
    )


def release_generation(
    engine: Engine, generation_id: str, *, error: str, now: datetime | None = None
) -> bool:
    """Mark the generation failed and give its unit back. True only for the call that gave it
    back; releasing twice gives back once."""
    now = now or utcnow()
    with transaction(engine) as conn:
        row = conn.execute(
            sa_update(G)
            .where(G.c.id == generation_id, G.c.quota_state == QuotaState.RESERVED)
            .values(
                quota_state=QuotaState.RELEASED,
                status=GenerationStatus.FAILED,
                error=error[:500],
                finished_at=now,
                updated_at=now,
            )
            .returning(G.c.team_id, G.c.period_start)
        ).first()
        if row is None:
            return False
        give_back_unit(conn, row.team_id, row.period_start, now)
        return True


def withdraw_generation(engine: Engine, generation_id: str, *, now: datetime | None = None) -> bool:
    """Undo an accepted-then-refused request (rate limited): delete its row, give the unit back."""
    now = now or utcnow()
    with transaction(engine) as conn:
        row = conn.execute(
            delete(G)
            .where(
                G.c.id == generation_id,
                G.c.quota_state == QuotaState.RESERVED,
                G.c.status == GenerationStatus.QUEUED,
            )
            .returning(G.c.team_id, G.c.period_start)
        ).first()
        if row is None:
            return False
        give_back_unit(conn, row.team_id, row.period_start, now)
        return True


@dataclass(frozen=True)
class Delivery:
    """What the model delivered for a generation, recorded when it succeeds."""

    sequence: list
    model: str
    tokens: TokenUsage = field(default_factory=TokenUsage)

    def usage_columns(self, now: datetime) -> dict:
        """The generation columns that record what the model call cost."""
        return {"model": self.model, **self.tokens.columns(), "updated_at": now}


def commit_generation(
    engine: Engine, generation_id: str, delivery: Delivery, *, now: datetime | None = None
) -> None:
    """Mark the generation succeeded: its reserved unit becomes usage. Committing twice is a
    no-op; committing a released reservation raises CommitRefused."""
    now = now or utcnow()
    with transaction(engine) as conn:
        done = conn.execute(
            sa_update(G)
            .where(G.c.id == generation_id, G.c.quota_state == QuotaState.RESERVED)
            .values(
                quota_state=QuotaState.COMMITTED,
                status=GenerationStatus.SUCCEEDED,
                sequence=delivery.sequence,
                error=None,
                finished_at=now,
                **delivery.usage_columns(now),
            )
        ).rowcount
        if done:
            return
        state = conn.execute(
            select(G.c.quota_state).where(G.c.id == generation_id)
        ).scalar_one_or_none()
    if state != QuotaState.COMMITTED:
        raise CommitRefused(f"generation {generation_id} holds no reservation (state {state})")


def record_usage(
    engine: Engine, generation_id: str, delivery: Delivery, *, now: datetime | None = None
) -> None:
    """Store tokens and cost of a generation that failed after the model answered."""
    now = now or utcnow()
    with transaction(engine) as conn:
        conn.execute(
            sa_update(G).where(G.c.id == generation_id).values(**delivery.usage_columns(now))
        )
