"""Thumbs up or down on each email, one vote per user and email: voting again replaces it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.db import reading, transaction
from storage.models import EmailFeedback, FeedbackVote, Generation, UTCDateTime, utcnow

F = EmailFeedback.__table__
G = Generation.__table__


@dataclass(frozen=True)
class FeedbackCounts:
    positive: int = 0
    negative: int = 0


def record_feedback(
    engine: Engine, *, generation_id: str, team_id: str, step: int, user_id: str, vote: str
) -> None:
    """One atomic upsert: two clicks at once leave one row, holding the later vote."""
    if vote not in (FeedbackVote.POSITIVE, FeedbackVote.NEGATIVE):
        raise ValueError(f"unknown vote {vote!r}")
    now = utcnow()
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    statement = insert(F).values(
        generation_id=generation_id,
        step=step,
        user_id=user_id,
        team_id=team_id,
        vote=vote,
        updated_at=now,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[F.c.generation_id, F.c.step, F.c.user_id],
        set_={"vote": statement.excluded.vote, "updated_at": statement.excluded.updated_at},
    )
    with transaction(engine) as conn:
        conn.execute(statement)


def feedback_counts(engine: Engine, team_id: str, period_start: datetime) -> FeedbackCounts:
    """Votes on the emails of the sequences written in the period starting at `period_start`."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(F.c.vote, func.count())
            .select_from(F.join(G, G.c.id == F.c.generation_id))
            .where(
                F.c.team_id == team_id,
                G.c.period_start == literal(period_start, UTCDateTime()),
            )
            .group_by(F.c.vote)
        ).all()
    votes = dict(rows)
    return FeedbackCounts(
        positive=votes.get(FeedbackVote.POSITIVE, 0), negative=votes.get(FeedbackVote.NEGATIVE, 0)
    )


def votes_for(engine: Engine, generation_id: str) -> dict[tuple[int, str], str]:
    """(step, user) -> vote for one sequence."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(F.c.step, F.c.user_id, F.c.vote).where(F.c.generation_id == generation_id)
        ).all()
    return {(r.step, r.user_id): r.vote for r in rows}
