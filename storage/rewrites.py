"""Rewrites of one email of a finished sequence: the cap per sequence, the version each one
replaced, the sequence's latest versions, and what each model call cost.

The generation's `sequence` always holds the latest version of every email (so exports need
nothing else); each rewrite row keeps the version it replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, func, literal, select
from sqlalchemy import update as sa_update

from storage.db import reading, transaction
from storage.models import (
    EmailRewrite,
    Generation,
    GenerationStatus,
    RewriteStatus,
    UTCDateTime,
    utcnow,
)
from storage.tokens import TokenUsage

G = Generation.__table__
R = EmailRewrite.__table__


@dataclass(frozen=True)
class RewriteStarted:
    rewrite_id: str
    number: int  # this sequence's rewrites so far, this one included


@dataclass(frozen=True)
class RewriteCapReached:
    cap: int


@dataclass(frozen=True)
class NotRewritable:
    """The sequence is unfinished, erased, or has no email with that number."""

    reason: str


def generation_for_thread(engine: Engine, channel_id: str, parent_ts: str) -> str | None:
    """The generation whose thread hangs off message `parent_ts` in `channel_id`."""
    with reading(engine) as conn:
        return conn.execute(
            select(G.c.id).where(G.c.posted_channel_id == channel_id, G.c.parent_ts == parent_ts)
        ).scalar_one_or_none()


def record_replies(engine: Engine, generation_id: str, replies: dict[int, str]) -> None:
    """Remember the message of each email's reply, so a rewrite can update it in place."""
    with transaction(engine) as conn:
        sequence = conn.execute(
            select(G.c.sequence).where(G.c.id == generation_id).with_for_update()
        ).scalar_one_or_none()
        if not sequence:
            return
        updated = [
            {**email, "ts": replies[email["step"]]} if email.get("step") in replies else email
            for email in sequence
        ]
        conn.execute(sa_update(G).where(G.c.id == generation_id).values(sequence=updated))


def start_rewrite(
    engine: Engine,
    *,
    generation_id: str,
    team_id: str,
    step: int,
    user_id: str,
    change: str,
    cap: int,
) -> RewriteStarted | RewriteCapReached | NotRewritable:
    """Count one rewrite of the sequence, unless it already had `cap` of them.

    The generation row is locked while counting, so two rewrites at once cannot both take the
    last one (SQLite's immediate write transactions serialise them the same way)."""
    with transaction(engine) as conn:
        found = conn.execute(
            select(G.c.status, G.c.sequence, G.c.enterprise_id)
            .where(G.c.id == generation_id, G.c.team_id == team_id)
            .with_for_update()
        ).first()
        if found is not None and found.status in (
            GenerationStatus.QUEUED,
            GenerationStatus.RUNNING,
        ):
            return NotRewritable("This sequence is still being written; try again once it's done.")
        if found is not None and found.status == GenerationStatus.FAILED:
            return NotRewritable("This sequence didn't finish, so its emails can't be rewritten.")
        sequence = found.sequence if found is not None else None
        if not sequence:
            return NotRewritable("That sequence is no longer available.")
        if not 1 <= step <= len(sequence):
            return NotRewritable(f"This sequence has emails 1 to {len(sequence)}.")
        done = conn.execute(
            select(func.count()).select_from(R).where(R.c.generation_id == generation_id)
        ).scalar_one()
        if done >= cap:
            return RewriteCapReached(cap)
        row = EmailRewrite(
            generation_id=generation_id,
            team_id=team_id,
            enterprise_id=found.enterprise_id,
            step=step,
            user_id=user_id,
            change=change[:1000],
        )
        conn.execute(R.insert().values(**row.model_dump()))
    return RewriteStarted(rewrite_id=row.id, number=done + 1)


def finish_rewrite(
    engine: Engine,
    rewrite_id: str,
    email: dict,
    *,
    model: str,
    tokens: TokenUsage,
) -> dict | None:
    """Put the rewritten email into the sequence and keep the one it replaced; returns the
    new version as stored (with its reply's message and who edited it). None, and nothing
    written, when the rewrite was stopped meanwhile (its workspace erased)."""
    now = utcnow()
    with transaction(engine) as conn:
        of_rewrite = select(R.c.generation_id).where(R.c.id == rewrite_id).scalar_subquery()
        sequence = conn.execute(
            select(G.c.sequence).where(G.c.id == of_rewrite).with_for_update()
        ).scalar_one_or_none()
        rewrite = conn.execute(select(R).where(R.c.id == rewrite_id)).first()
        if rewrite is None or rewrite.status != RewriteStatus.RUNNING or not sequence:
            return None
        previous = sequence[rewrite.step - 1]
        latest = {
            **email,
            "ts": previous.get("ts"),
            "edited_by": rewrite.user_id,
            "version": int(previous.get("version", 1)) + 1,
        }
        updated = [latest if i == rewrite.step - 1 else e for i, e in enumerate(sequence)]
        conn.execute(sa_update(G).where(G.c.id == rewrite.generation_id).values(sequence=updated))
        conn.execute(
            sa_update(R)
            .where(R.c.id == rewrite_id)
            .values(
                status=RewriteStatus.SUCCEEDED,
                previous=previous,
                model=model,
                finished_at=now,
                **tokens.columns(),
            )
        )
    return latest


def still_running(engine: Engine, rewrite_id: str) -> bool:
    """False once the rewrite was stopped (its workspace erased): its stream should close."""
    with reading(engine) as conn:
        status = conn.execute(select(R.c.status).where(R.c.id == rewrite_id)).scalar_one_or_none()
    return status == RewriteStatus.RUNNING


def fail_rewrite(
    engine: Engine,
    rewrite_id: str,
    error: str,
    *,
    model: str | None = None,
    tokens: TokenUsage | None = None,
) -> bool:
    """The email stays as it was; what the attempt cost still counts. False when the rewrite
    was already stopped (its workspace erased): then nobody is told anything."""
    with transaction(engine) as conn:
        return bool(
            conn.execute(
                sa_update(R)
                # A rewrite stopped by an erasure keeps its reason.
                .where(R.c.id == rewrite_id, R.c.status == RewriteStatus.RUNNING)
                .values(
                    status=RewriteStatus.FAILED,
                    error=error[:500],
                    model=model,
                    finished_at=utcnow(),
                    **(tokens or TokenUsage()).columns(),
                )
            ).rowcount
        )


def rewrite_tokens(engine: Engine, team_id: str, start: datetime, end: datetime) -> TokenUsage:
    """What a workspace's rewrites cost between `start` and `end`."""
    with reading(engine) as conn:
        totals = conn.execute(
            select(
                func.coalesce(func.sum(R.c.input_tokens), 0),
                func.coalesce(func.sum(R.c.output_tokens), 0),
                func.coalesce(func.sum(R.c.cache_creation_tokens), 0),
                func.coalesce(func.sum(R.c.cache_read_tokens), 0),
                func.coalesce(func.sum(R.c.cost_usd), 0),
            ).where(
                R.c.team_id == team_id,
                R.c.created_at >= literal(start, UTCDateTime()),
                R.c.created_at < literal(end, UTCDateTime()),
            )
        ).one()
    return TokenUsage(
        input=int(totals[0]),
        output=int(totals[1]),
        cache_write=int(totals[2]),
        cache_read=int(totals[3]),
        cost_usd=Decimal(str(totals[4])).quantize(Decimal("0.000001")),
    )


def rewrite_history(engine: Engine, generation_id: str) -> list:
    """Every rewrite of a sequence, oldest first."""
    with reading(engine) as conn:
        return conn.execute(
            select(R).where(R.c.generation_id == generation_id).order_by(R.c.created_at)
        ).all()


def erase_rewrite_texts(engine: Engine, team_id: str) -> int:
    """Forget what users asked for and the versions replaced (on uninstall); costs stay."""
    with transaction(engine) as conn:
        return conn.execute(
            sa_update(R).where(R.c.team_id == team_id).values(change=None, previous=None)
        ).rowcount
