"""Presses of the buttons that cost a unit (Regenerate, Try again), de-duplicated in the
database: a double click is one new sequence with or without Redis."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, literal, select

from storage.db import transaction
from storage.models import ButtonPress, UTCDateTime, utcnow
from storage.workspaces import dialect_insert

P = ButtonPress.__table__
# Presses by one person on one sequence's button within this many seconds are one press.
PRESS_BUCKET_SECONDS = 10


def press_bucket(now: datetime) -> int:
    return int(now.timestamp()) // PRESS_BUCKET_SECONDS


def first_press(
    engine: Engine, generation_id: str, user_id: str, action: str, *, now: datetime | None = None
) -> int | None:
    """The press's bucket when it is the first of `user_id` on `action` of `generation_id` in
    its ten-second bucket (one atomic insert-or-ignore: of two at once, one wins); None for a
    repeat. Old presses are cleared on the way."""
    now = now or utcnow()
    bucket = press_bucket(now)
    with transaction(engine) as conn:
        inserted = conn.execute(
            dialect_insert(conn, P)
            .values(
                generation_id=generation_id,
                user_id=user_id,
                action=action[:16],
                bucket=bucket,
                pressed_at=now,
            )
            .on_conflict_do_nothing()
            # RETURNING, not rowcount: psycopg reports a row for an ignored insert.
            .returning(P.c.bucket)
        ).first()
        # A double click across a bucket's edge: the press just before it, in the last one.
        just_before = conn.execute(
            select(P.c.bucket).where(
                P.c.generation_id == generation_id,
                P.c.user_id == user_id,
                P.c.action == action[:16],
                P.c.bucket == bucket - 1,
                P.c.pressed_at
                > literal(now - timedelta(seconds=PRESS_BUCKET_SECONDS), UTCDateTime()),
            )
        ).first()
        conn.execute(
            delete(P).where(P.c.pressed_at < literal(now - timedelta(hours=1), UTCDateTime()))
        )
    return bucket if inserted is not None and just_before is None else None
