"""The one draft campaign a sequence has in each sending tool, alone and with each of its lead
lists: claimed with an atomic insert
before anything is sent (a second click, or a second process, finds the claim instead of making
a second campaign), then advanced with the tool's progress record so a resumed attempt
continues without duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from storage.db import reading, transaction
from storage.models import utcnow
from storage.sending_models import DraftStatus, SequencerDraft

D = SequencerDraft.__table__
# A draft "running" this long without a word from its worker was left by a process that died:
# its owner may resume it.
STALE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class DraftRow:
    id: str
    generation_id: str
    team_id: str
    tool: str
    lead_list_id: str  # "" for the sequence alone
    requested_by: str
    status: str
    campaign_id: str | None
    url: str | None
    progress: dict | None
    error: str | None
    updated_at: datetime

    def resumable(self, now: datetime | None = None) -> bool:
        if self.status == DraftStatus.STOPPED:
            return True
        busy = self.status in (DraftStatus.QUEUED, DraftStatus.RUNNING)
        return busy and (now or utcnow()) - self.updated_at > STALE_AFTER


def _row(row) -> DraftRow:
    return DraftRow(**{name: getattr(row, name) for name in DraftRow.__dataclass_fields__})


def get_draft(engine: Engine, draft_id: str) -> DraftRow | None:
    with reading(engine) as conn:
        row = conn.execute(select(D).where(D.c.id == draft_id)).first()
    return _row(row) if row is not None else None


def draft_for(
    engine: Engine, generation_id: str, tool: str, lead_list_id: str = ""
) -> DraftRow | None:
    with reading(engine) as conn:
        row = conn.execute(
            select(D).where(
                D.c.generation_id == generation_id,
                D.c.tool == tool,
                D.c.lead_list_id == lead_list_id,
            )
        ).first()
    return _row(row) if row is not None else None


def claim_draft(
    engine: Engine,
    generation_id: str,
    team_id: str,
    tool: str,
    requested_by: str,
    *,
    timezone: str,
    lead_list_id: str = "",
) -> tuple[DraftRow, bool]:
    """(the draft, True) when this call claimed it; (the existing one, False) otherwise. The
    unique (generation, tool, lead list) constraint decides between two clicks at once.
    `timezone`: the requester's, kept for the sending window of every attempt."""
    now = utcnow()
    try:
        with transaction(engine) as conn:
            conn.execute(
                D.insert().values(
                    id=SequencerDraft().id,
                    generation_id=generation_id,
                    team_id=team_id,
                    tool=tool,
                    lead_list_id=lead_list_id,
                    requested_by=requested_by,
                    status=DraftStatus.QUEUED,
                    progress={"timezone": timezone, "record": None},
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        existing = draft_for(engine, generation_id, tool, lead_list_id)
        assert existing is not None, "a conflicting claim exists"
        return existing, False
    claimed = draft_for(engine, generation_id, tool, lead_list_id)
    assert claimed is not None
    return claimed, True


def _campaign_of(progress: dict) -> str | None:
    """The tool's campaign id in a stored state ({"timezone", "record": Progress fields})."""
    return (progress.get("record") or {}).get("campaign_id")


def _move(engine: Engine, draft_id: str, allowed: tuple[str, ...], **values) -> bool:
    with transaction(engine) as conn:
        return bool(
            conn.execute(
                update(D)
                .where(D.c.id == draft_id, D.c.status.in_(allowed))
                .values(updated_at=utcnow(), **values)
            ).rowcount
        )


def requeue_draft(engine: Engine, draft_id: str, *, now: datetime | None = None) -> bool:
    """Resume: a stopped (or abandoned) draft goes back in the queue; False when another
    click already did, or it is running or done."""
    draft = get_draft(engine, draft_id)
    if draft is None or not draft.resumable(now):
        return False
    with transaction(engine) as conn:
        return bool(
            conn.execute(
                update(D)
                .where(D.c.id == draft_id, D.c.updated_at == draft.updated_at)
                .values(status=DraftStatus.QUEUED, error=None, updated_at=utcnow())
            ).rowcount
        )


def start_draft(engine: Engine, draft_id: str) -> bool:
    """The worker's claim on a queued draft: only one attempt runs at a time."""
    return _move(engine, draft_id, (DraftStatus.QUEUED,), status=DraftStatus.RUNNING)


def save_progress(engine: Engine, draft_id: str, progress: dict) -> bool:
    """False when the draft is no longer running here (erased with its workspace, say)."""
    return _move(
        engine,
        draft_id,
        (DraftStatus.RUNNING,),
        progress=progress,
        campaign_id=_campaign_of(progress),
    )


def finish_draft(engine: Engine, draft_id: str, *, url: str, progress: dict) -> None:
    _move(
        engine,
        draft_id,
        (DraftStatus.RUNNING,),
        status=DraftStatus.CREATED,
        url=url,
        progress=progress,
        campaign_id=_campaign_of(progress),
        error=None,
    )


def stop_draft(
    engine: Engine, draft_id: str, *, error: str, progress: dict | None, url: str | None
) -> None:
    values: dict = {"status": DraftStatus.STOPPED, "error": error[:2000], "url": url}
    if progress is not None:
        values.update(progress=progress, campaign_id=_campaign_of(progress))
    _move(engine, draft_id, (DraftStatus.RUNNING, DraftStatus.QUEUED), **values)


def abandoned_drafts(engine: Engine, *, now: datetime | None = None) -> list[str]:
    """Drafts queued or running with no word from their job for STALE_AFTER: a process died."""
    cutoff = (now or utcnow()) - STALE_AFTER
    with reading(engine) as conn:
        return list(
            conn.execute(
                select(D.c.id).where(
                    D.c.status.in_((DraftStatus.QUEUED, DraftStatus.RUNNING)),
                    D.c.updated_at < cutoff,
                )
            ).scalars()
        )


def erase_drafts(conn: Connection, team_id: str) -> int:
    return conn.execute(delete(D).where(D.c.team_id == team_id)).rowcount
