"""A workspace's settings (the defaults its admins set for every brief) and the record of
who changed them and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update

from storage.db import reading, transaction
from storage.models import (
    SETTINGS_COLUMNS,
    WorkspaceSettings,
    WorkspaceSettingsChange,
    utcnow,
)
from storage.workspaces import ensure_workspace, lock_workspace

S = WorkspaceSettings.__table__
C = WorkspaceSettingsChange.__table__


@dataclass(frozen=True)
class SettingsChange:
    changed_by: str
    changed_at: datetime
    # Each changed field: {"from": old value, "to": new value}.
    changes: dict[str, dict[str, str | None]]


def read_settings(engine: Engine, team_id: str) -> dict[str, str | None]:
    """The workspace's settings by column name; every value None when none were ever saved."""
    with reading(engine) as conn:
        row = conn.execute(
            select(*(S.c[name] for name in SETTINGS_COLUMNS)).where(S.c.team_id == team_id)
        ).first()
    if row is None:
        return dict.fromkeys(SETTINGS_COLUMNS)
    return dict(row._mapping)


def save_settings(
    engine: Engine,
    team_id: str,
    values: dict[str, str | None],
    *,
    changed_by: str,
    now: datetime | None = None,
) -> dict[str, dict[str, str | None]]:
    """Store the settings and record what changed, in one transaction; returns the changes.

    The workspace row is locked first, so two admins saving at once are applied one after
    the other and each change record compares against what the other wrote."""
    unknown = set(values) - set(SETTINGS_COLUMNS)
    if unknown:
        raise ValueError(f"not a workspace setting: {', '.join(sorted(unknown))}")
    now = now or utcnow()
    new = {name: values.get(name) for name in SETTINGS_COLUMNS}
    with transaction(engine) as conn:
        ensure_workspace(conn, team_id, now=now)
        lock_workspace(conn, team_id)
        row = conn.execute(select(S).where(S.c.team_id == team_id)).first()
        old = (
            {name: getattr(row, name) for name in SETTINGS_COLUMNS}
            if row is not None
            else dict.fromkeys(SETTINGS_COLUMNS)
        )
        changes = {
            name: {"from": old[name], "to": new[name]}
            for name in SETTINGS_COLUMNS
            if old[name] != new[name]
        }
        if not changes:
            return {}
        stamp = {"updated_by": changed_by, "updated_at": now}
        if row is None:
            conn.execute(insert(S).values(team_id=team_id, **new, **stamp))
        else:
            conn.execute(update(S).where(S.c.team_id == team_id).values(**new, **stamp))
        conn.execute(
            insert(C).values(
                team_id=team_id, changed_by=changed_by, changed_at=now, changes=changes
            )
        )
    return changes


def settings_history(engine: Engine, team_id: str, *, limit: int = 20) -> list[SettingsChange]:
    """The workspace's most recent settings changes, newest first."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(C.c.changed_by, C.c.changed_at, C.c.changes)
            .where(C.c.team_id == team_id)
            .order_by(C.c.id.desc())
            .limit(limit)
        ).all()
    return [SettingsChange(r.changed_by, r.changed_at, r.changes) for r in rows]


def erase_settings(conn: Connection, team_id: str) -> int:
    """Delete a workspace's settings and the record of their changes (which holds their old
    and new texts), in the caller's transaction; returns how many changes were recorded."""
    changes = conn.execute(delete(C).where(C.c.team_id == team_id)).rowcount
    conn.execute(delete(S).where(S.c.team_id == team_id))
    return changes
