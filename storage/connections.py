"""A workspace's API keys for the sending tools: stored encrypted with the Slack tokens' keys
(storage/encryption.py), shown again only as their last four characters, and every change
recorded in the settings history without the key itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update

from storage.db import reading, transaction
from storage.encryption import TokenCipher
from storage.models import WorkspaceSettingsChange, utcnow
from storage.sending_models import SequencerConnection
from storage.workspaces import ensure_workspace, lock_workspace

K = SequencerConnection.__table__
C = WorkspaceSettingsChange.__table__


@dataclass(frozen=True)
class Connected:
    """A connected tool as an admin may see it: never the key, only its end."""

    tool: str
    last4: str
    added_by: str
    added_at: datetime


def key_end(api_key: str) -> str:
    return api_key.strip()[-4:]


def history_label(tool: str) -> str:
    return f"{tool} API key"


def _record(conn: Connection, team_id: str, tool: str, old, new, by: str, now: datetime) -> None:
    # Only the last four characters go into the history: it is shown to admins as it is.
    changes = {history_label(tool): {"from": old and f"…{old}", "to": new and f"…{new}"}}
    conn.execute(insert(C).values(team_id=team_id, changed_by=by, changed_at=now, changes=changes))


def save_connection(
    engine: Engine,
    cipher: TokenCipher,
    team_id: str,
    tool: str,
    api_key: str,
    *,
    added_by: str,
    now: datetime | None = None,
) -> Connected:
    """Store (or replace) the workspace's key for `tool`, already checked with the tool."""
    now = now or utcnow()
    api_key = api_key.strip()
    sealed = cipher.encrypt(api_key)
    end = key_end(api_key)
    with transaction(engine) as conn:
        ensure_workspace(conn, team_id, now=now)
        lock_workspace(conn, team_id)
        old = conn.execute(
            select(K.c.last4).where(K.c.team_id == team_id, K.c.tool == tool)
        ).scalar()
        values = {"api_key": sealed, "last4": end, "added_by": added_by, "added_at": now}
        if old is None:
            conn.execute(insert(K).values(team_id=team_id, tool=tool, **values))
        else:
            conn.execute(update(K).where(K.c.team_id == team_id, K.c.tool == tool).values(**values))
        _record(conn, team_id, tool, old, end, added_by, now)
    return Connected(tool, end, added_by, now)


def remove_connection(
    engine: Engine, team_id: str, tool: str, *, removed_by: str, now: datetime | None = None
) -> bool:
    """Forget the workspace's key for `tool`; False when there was none."""
    now = now or utcnow()
    with transaction(engine) as conn:
        lock_workspace(conn, team_id)
        old = conn.execute(
            select(K.c.last4).where(K.c.team_id == team_id, K.c.tool == tool)
        ).scalar()
        if old is None:
            return False
        conn.execute(delete(K).where(K.c.team_id == team_id, K.c.tool == tool))
        _record(conn, team_id, tool, old, None, removed_by, now)
    return True


def connections(engine: Engine, team_id: str) -> list[Connected]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(K.c.tool, K.c.last4, K.c.added_by, K.c.added_at)
            .where(K.c.team_id == team_id)
            .order_by(K.c.tool)
        ).all()
    return [Connected(r.tool, r.last4, r.added_by, r.added_at) for r in rows]


def connection_key(engine: Engine, cipher: TokenCipher, team_id: str, tool: str) -> str | None:
    """The decrypted key, for the client that creates a draft; None when not connected."""
    with reading(engine) as conn:
        sealed = conn.execute(
            select(K.c.api_key).where(K.c.team_id == team_id, K.c.tool == tool)
        ).scalar()
    return cipher.decrypt(sealed) if sealed is not None else None


def erase_connections(conn: Connection, team_id: str) -> int:
    """Delete a workspace's keys, in the caller's transaction."""
    return conn.execute(delete(K).where(K.c.team_id == team_id)).rowcount
