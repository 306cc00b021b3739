"""Erasure's fence: when a workspace is forgotten, uninstalled or its bot token revoked, the
work it has in flight is stopped first, in the erasing transaction, so nothing is written back
afterwards. A stopped generation is `failed` with the error ERASED and its unit given back; a
stopped rewrite is `failed` the same way. Every later write of that work is refused by what it
already requires: a lease holder's writes need the generation `running` under its lease, the
final commit needs the reservation, a rewrite's result needs the rewrite `running`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, Engine, select
from sqlalchemy import update as sa_update

from storage.db import reading, transaction
from storage.ledger import give_back_unit
from storage.models import (
    EmailRewrite,
    Generation,
    GenerationStatus,
    QuotaState,
    RewriteStatus,
    slack_installations,
)

G = Generation.__table__
R = EmailRewrite.__table__
I = slack_installations  # noqa: E741
# The error of work stopped because its workspace was erased.
ERASED = "erased"
IN_FLIGHT = (GenerationStatus.QUEUED, GenerationStatus.RUNNING)


def stop_in_flight(conn: Connection, team_id: str, *, now: datetime) -> int:
    """Fail every queued or running generation and running rewrite of the workspace with
    ERASED, giving the generations' units back; in the caller's transaction. Returns how many
    generations were stopped."""
    stopped = {
        "status": GenerationStatus.FAILED,
        "error": ERASED,
        "lease_owner": None,
        "lease_expires_at": None,
        "finished_at": now,
        "updated_at": now,
    }
    in_flight = (G.c.team_id == team_id) & G.c.status.in_(IN_FLIGHT)
    reserved = conn.execute(
        sa_update(G)
        .where(in_flight, G.c.quota_state == QuotaState.RESERVED)
        .values(**stopped, quota_state=QuotaState.RELEASED)
        .returning(G.c.period_start)
    ).all()
    for row in reserved:
        give_back_unit(conn, team_id, row.period_start, now)
    others = conn.execute(sa_update(G).where(in_flight).values(**stopped)).rowcount
    conn.execute(
        sa_update(R)
        .where(R.c.team_id == team_id, R.c.status == RewriteStatus.RUNNING)
        .values(status=RewriteStatus.FAILED, error=ERASED, finished_at=now)
    )
    return len(reserved) + others


def was_erased(engine: Engine, generation_id: str) -> bool:
    """Stopped by an erasure of its workspace: nobody is told anything more about it (its
    token is gone, and so is what it was about)."""
    with reading(engine) as conn:
        error = conn.execute(select(G.c.error).where(G.c.id == generation_id)).scalar_one_or_none()
    return error == ERASED


def forget_user_tokens(engine: Engine, team_id: str, user_ids: Iterable[str]) -> int:
    """`tokens_revoked` naming people's own (user) tokens: those tokens go, and nothing else
    (the bot token, briefs and settings stay). Returns how many installation rows held one."""
    users = [u for u in user_ids if isinstance(u, str) and u][:1000]
    if not users:
        return 0
    with transaction(engine) as conn:
        return conn.execute(
            sa_update(I)
            .where(I.c.team_id == team_id, I.c.user_id.in_(users))
            .values(
                user_token=None,
                user_refresh_token=None,
                user_token_expires_at=None,
                user_scopes=None,
            )
        ).rowcount
