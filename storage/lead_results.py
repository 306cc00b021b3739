"""Each lead's answer, saved the moment it arrives: keyed by list and lead, so a second write
(a process that died just after saving, a job delivered twice) is a no-op and no lead is
written or billed twice; and what a workspace's leads cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, literal, select

from storage.db import reading, transaction
from storage.lead_models import LeadListJob, LeadResult
from storage.models import UTCDateTime, utcnow
from storage.tokens import TokenUsage
from storage.workspaces import dialect_insert

R = LeadResult.__table__
L = LeadListJob.__table__


@dataclass(frozen=True)
class LeadAnswer:
    """One lead's saved answer (opening None: not usable, the lead needs review)."""

    lead_index: int
    email: str
    opening: str | None
    subject_a: str | None
    too_little: bool
    model: str | None = None
    tokens: TokenUsage = field(default_factory=TokenUsage)


def save_answer(engine: Engine, list_id: str, team_id: str, answer: LeadAnswer) -> bool:
    """Save one lead's answer; False when it was already saved (by a process that died just
    after, or a second delivery): the first one stands, and is the only one counted. Nothing
    is saved once the list's file was erased (storage/lead_lists.py, `erase_lead_data`)."""
    values = {
        "list_id": list_id,
        "lead_index": answer.lead_index,
        "team_id": team_id,
        "email": answer.email,
        "opening": answer.opening,
        "subject_a": answer.subject_a,
        "too_little": answer.too_little,
        "model": answer.model,
        "created_at": utcnow(),
        **answer.tokens.columns(),
    }
    row = select(*(literal(v, R.c[k].type).label(k) for k, v in values.items())).where(
        select(L.c.id).where(L.c.id == list_id, L.c.source.is_not(None)).exists()
    )
    with transaction(engine) as conn:
        inserted = conn.execute(
            dialect_insert(conn, R)
            .from_select(list(values), row)
            .on_conflict_do_nothing()
            .returning(R.c.lead_index)
        ).first()
    return inserted is not None


def saved_answers(engine: Engine, list_id: str) -> dict[int, LeadAnswer]:
    with reading(engine) as conn:
        rows = conn.execute(select(R).where(R.c.list_id == list_id)).all()
    return {
        r.lead_index: LeadAnswer(
            r.lead_index,
            r.email,
            r.opening,
            r.subject_a,
            r.too_little,
            r.model,
            TokenUsage(
                r.input_tokens,
                r.output_tokens,
                r.cache_creation_tokens,
                r.cache_read_tokens,
                r.cost_usd,
            ),
        )
        for r in rows
    }


def count_written(engine: Engine, list_id: str) -> int:
    with reading(engine) as conn:
        return conn.execute(
            select(func.count()).select_from(R).where(R.c.list_id == list_id)
        ).scalar_one()


def lead_usage(engine: Engine, team_id: str, since: datetime) -> tuple[int, TokenUsage]:
    """Leads written for the workspace since `since`, and what they cost."""
    with reading(engine) as conn:
        row = conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(R.c.input_tokens), 0),
                func.coalesce(func.sum(R.c.output_tokens), 0),
                func.coalesce(func.sum(R.c.cache_creation_tokens), 0),
                func.coalesce(func.sum(R.c.cache_read_tokens), 0),
                func.coalesce(func.sum(R.c.cost_usd), 0),
            ).where(R.c.team_id == team_id, R.c.created_at >= literal(since, UTCDateTime()))
        ).one()
    return row[0], TokenUsage(row[1], row[2], row[3], row[4], row[5])
