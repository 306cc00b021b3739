"""Workspace rows: their billing-month window, race-safe creation, and the one way to lock one."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import reading
from storage.models import Plan, Workspace, utcnow

W = Workspace.__table__


def month_window(now: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) that contains `now`: the free plan's billing period."""
    now = now.astimezone(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def dialect_insert(conn: Connection, table):
    """An INSERT that knows the dialect's ON CONFLICT clause."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {name!r}")


_NEW_WORKSPACE: dict[str, object] = {}


def ensure_workspace(
    conn: Connection,
    team_id: str,
    *,
    name: str | None = None,
    enterprise_id: str | None = None,
    now: datetime | None = None,
) -> None:
    """Create the workspace row if it is missing; safe when many first requests race."""
    now = now or utcnow()
    start, end = month_window(now)
    stmt = _NEW_WORKSPACE.get(conn.dialect.name)
    if stmt is None:
        stmt = dialect_insert(conn, W).on_conflict_do_nothing(index_elements=[W.c.team_id])
        _NEW_WORKSPACE[conn.dialect.name] = stmt
    conn.execute(
        stmt,
        {
            "team_id": team_id,
            "name": name,
            "enterprise_id": enterprise_id,
            "plan": Plan.FREE,
            "period_start": start,
            "period_end": end,
            "used": 0,
            "created_at": now,
            "updated_at": now,
        },
    )


def lock_workspace(conn: Connection, team_id: str):
    """The workspace row, locked until the transaction ends; None when there is none.

    FOR UPDATE on PostgreSQL; SQLite renders none and relies on BEGIN IMMEDIATE, which
    already serialises every writer."""
    return conn.execute(select(W).where(W.c.team_id == team_id).with_for_update()).first()


def all_team_ids(engine: Engine) -> list[str]:
    with reading(engine) as conn:
        return list(conn.execute(select(W.c.team_id).order_by(W.c.team_id)).scalars())


def enterprise_of(engine: Engine, team_id: str) -> str | None:
    """The Enterprise Grid org a workspace belongs to (None outside Grid or when unknown)."""
    with reading(engine) as conn:
        return conn.execute(
            select(W.c.enterprise_id).where(W.c.team_id == team_id)
        ).scalar_one_or_none()
