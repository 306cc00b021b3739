"""A generation's life after it was accepted: claimed once, placed in a thread, looked up,
found stuck after a crash, and its personal data erased on uninstall."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, literal, or_, select
from sqlalchemy import update as sa_update

from storage.db import reading, transaction
from storage.models import Generation, GenerationStatus, UTCDateTime, utcnow

G = Generation.__table__


@dataclass(frozen=True)
class GenerationRow:
    id: str
    team_id: str
    user_id: str
    channel_id: str
    posted_channel_id: str | None
    parent_ts: str | None
    status: str
    quota_state: str
    brief: dict | None
    sequence: list | None
    attempts: int
    error: str | None


def _row(r) -> GenerationRow:
    return GenerationRow(
        id=r.id,
        team_id=r.team_id,
        user_id=r.user_id,
        channel_id=r.channel_id,
        posted_channel_id=r.posted_channel_id,
        parent_ts=r.parent_ts,
        status=r.status,
        quota_state=r.quota_state,
        brief=r.brief,
        sequence=r.sequence,
        attempts=r.attempts,
        error=r.error,
    )


def claim_generation(
    engine: Engine, generation_id: str, *, now: datetime | None = None
) -> GenerationRow | None:
    """Move queued -> running in one statement; None when another worker already has it,
    so a job delivered twice runs once."""
    now = now or utcnow()
    with transaction(engine) as conn:
        row = conn.execute(
            sa_update(G)
            .where(G.c.id == generation_id, G.c.status == GenerationStatus.QUEUED)
            .values(
                status=GenerationStatus.RUNNING,
                started_at=now,
                updated_at=now,
                attempts=G.c.attempts + 1,
            )
            .returning(*G.c)
        ).first()
    return _row(row) if row is not None else None


def record_thread(engine: Engine, generation_id: str, channel_id: str, parent_ts: str) -> None:
    """Remember where the thread went, so retries, exports and crash notices can find it."""
    with transaction(engine) as conn:
        conn.execute(
            sa_update(G)
            .where(G.c.id == generation_id)
            .values(posted_channel_id=channel_id, parent_ts=parent_ts, updated_at=utcnow())
        )


def get_generation(engine: Engine, generation_id: str) -> GenerationRow | None:
    with reading(engine) as conn:
        row = conn.execute(select(G).where(G.c.id == generation_id)).first()
    return _row(row) if row is not None else None


def previous_brief(engine: Engine, team_id: str, user_id: str) -> dict | None:
    """The brief this user submitted most recently, to pre-fill the form."""
    with reading(engine) as conn:
        return conn.execute(
            select(G.c.brief)
            .where(G.c.team_id == team_id, G.c.user_id == user_id, G.c.brief.is_not(None))
            .order_by(G.c.created_at.desc())
            .limit(1)
        ).scalar_one_or_none()


def stuck_generations(
    engine: Engine, older_than: timedelta, *, now: datetime | None = None
) -> list[GenerationRow]:
    """Generations queued or running for longer than `older_than`: their worker has died."""
    cutoff = literal((now or utcnow()) - older_than, UTCDateTime())
    with reading(engine) as conn:
        rows = conn.execute(
            select(G).where(
                or_(
                    and_(G.c.status == GenerationStatus.QUEUED, G.c.updated_at < cutoff),
                    and_(G.c.status == GenerationStatus.RUNNING, G.c.updated_at < cutoff),
                )
            )
        ).all()
    return [_row(r) for r in rows]


def mark_redispatched(engine: Engine, generation_id: str) -> bool:
    """Count one re-dispatch of a generation that was queued but never claimed; False if it
    was claimed meanwhile or already re-dispatched once (`attempts` counts both)."""
    now = utcnow()
    with transaction(engine) as conn:
        return bool(
            conn.execute(
                sa_update(G)
                .where(
                    G.c.id == generation_id,
                    G.c.status == GenerationStatus.QUEUED,
                    G.c.attempts == 0,
                )
                .values(attempts=G.c.attempts + 1, updated_at=now)
            ).rowcount
        )


def touch_generation(engine: Engine, generation_id: str) -> None:
    """A heartbeat: a generation still making progress is not stuck."""
    with transaction(engine) as conn:
        conn.execute(
            sa_update(G)
            .where(G.c.id == generation_id, G.c.status == GenerationStatus.RUNNING)
            .values(updated_at=utcnow())
        )


def erase_personal_data(engine: Engine, team_id: str) -> int:
    """Forget briefs and sequences of a workspace (on uninstall); usage and billing stay."""
    with transaction(engine) as conn:
        return conn.execute(
            sa_update(G)
            .where(G.c.team_id == team_id)
            .values(brief=None, sequence=None, error=None, updated_at=utcnow())
        ).rowcount
