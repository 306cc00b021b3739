"""The lease on a running lead list, and its share of the model cap: at most a bounded share
for all lists together, never what running generations hold, so a sequence started during a
list still finds a model slot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, case, func, literal, or_, select
from sqlalchemy import update as sa_update

from storage.db import reading, transaction
from storage.generations import CLAIM_LOCK_KEY
from storage.lead_lists import OPEN, L, LeadListRow, lead_list_row, row_columns
from storage.lead_models import LeadListStatus
from storage.lead_results import count_written
from storage.models import Generation, GenerationStatus, UTCDateTime, utcnow

G = Generation.__table__


@dataclass(frozen=True)
class ListClaimed:
    lead_list: LeadListRow
    resumed: bool


@dataclass(frozen=True)
class ListsBusy:
    """The share of the model cap lead lists may use is taken; try again shortly."""


def _undelivered():
    """Succeeded, its lead files not yet in the thread."""
    return and_(L.c.status == LeadListStatus.SUCCEEDED, L.c.delivered_at.is_(None))


def _leased():
    """A list whose lease means something: being written, or its files being delivered."""
    return or_(L.c.status == LeadListStatus.RUNNING, _undelivered())


def _claimable(at):
    free = or_(L.c.lease_owner.is_(None), L.c.lease_expires_at < at)
    stale = and_(L.c.status == LeadListStatus.RUNNING, L.c.lease_expires_at < at)
    return or_(and_(L.c.status == LeadListStatus.QUEUED, free), stale)


def list_slots_in_use(conn, at) -> int:  # claim_generation counts them the same way
    """Model calls the running lead lists may have in flight, across every process."""
    return conn.execute(
        select(func.coalesce(func.sum(L.c.slots), 0)).where(
            L.c.status == LeadListStatus.RUNNING, L.c.lease_expires_at >= at
        )
    ).scalar_one()


def claim_lead_list(
    engine: Engine,
    list_id: str,
    *,
    owner: str,
    lease_seconds: float,
    model_cap: int,
    share: float,
    now: datetime | None = None,
) -> ListClaimed | ListsBusy | None:
    """Take the list with a lease and a number of model slots: at most `share` of the model
    cap for all lists together, and never what running generations hold, so a sequence
    started during a list still finds a slot. None when it is finished or held elsewhere."""
    now = now or utcnow()
    at = literal(now, UTCDateTime())
    with transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK_KEY)))
        generations = conn.execute(
            select(func.count())
            .select_from(G)
            .where(G.c.status == GenerationStatus.RUNNING, G.c.lease_expires_at >= at)
        ).scalar_one()
        lists = list_slots_in_use(conn, at)
        share_cap = max(1, int(model_cap * share))
        slots = min(share_cap - lists, model_cap - generations - lists)
        if slots < 1:
            return ListsBusy() if _claimable_now(conn, list_id, at) else None
        row = conn.execute(
            sa_update(L)
            .where(L.c.id == list_id, _claimable(at), L.c.cancel_requested.is_(False))
            .values(
                status=LeadListStatus.RUNNING,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                slots=slots,
                updated_at=now,
                takeovers=L.c.takeovers + case((L.c.status == LeadListStatus.RUNNING, 1), else_=0),
            )
            .returning(*row_columns())
        ).first()
    if row is None:
        return None
    done = count_written(engine, list_id)
    return ListClaimed(lead_list_row(row), resumed=row.takeovers > 0 or done > 0)


def _claimable_now(conn, list_id: str, at) -> bool:
    return conn.execute(select(L.c.id).where(L.c.id == list_id, _claimable(at))).first() is not None


def renew_list_lease(
    engine: Engine, list_id: str, *, owner: str, lease_seconds: float, now: datetime | None = None
) -> bool:
    now = now or utcnow()
    with transaction(engine) as conn:
        return bool(
            conn.execute(
                sa_update(L)
                .where(L.c.id == list_id, L.c.lease_owner == owner, _leased())
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
            ).rowcount
        )


def hand_back_list(engine: Engine, list_id: str, *, owner: str) -> bool:
    """Put a running list back in the queue (this process stops); its results stay."""
    with transaction(engine) as conn:
        return bool(
            conn.execute(
                sa_update(L)
                .where(
                    L.c.id == list_id,
                    L.c.lease_owner == owner,
                    L.c.status == LeadListStatus.RUNNING,
                )
                .values(
                    status=LeadListStatus.QUEUED,
                    lease_owner=None,
                    lease_expires_at=None,
                    slots=0,
                    updated_at=utcnow(),
                )
            ).rowcount
        )


def claim_delivery(
    engine: Engine,
    list_id: str,
    *,
    owner: str,
    lease_seconds: float,
    now: datetime | None = None,
) -> bool:
    """Take the right to post a succeeded list's lead files, by one conditional UPDATE: one
    process at a time, so the thread gets one copy. A process that dies while posting loses
    it when its lease runs out, and whoever claims it next posts them."""
    now = now or utcnow()
    free = or_(L.c.lease_owner.is_(None), L.c.lease_expires_at < literal(now, UTCDateTime()))
    with transaction(engine) as conn:
        return bool(
            conn.execute(
                sa_update(L)
                .where(L.c.id == list_id, _undelivered(), free)
                .values(
                    lease_owner=owner,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    updated_at=now,
                )
            ).rowcount
        )


def mark_delivered(engine: Engine, list_id: str, *, owner: str) -> bool:
    """The lead files are in the thread (or there was nothing to post): nobody posts again."""
    now = utcnow()
    with transaction(engine) as conn:
        return bool(
            conn.execute(
                sa_update(L)
                .where(L.c.id == list_id, L.c.lease_owner == owner, _undelivered())
                .values(delivered_at=now, lease_owner=None, lease_expires_at=None, updated_at=now)
            ).rowcount
        )


def record_progress_message(engine: Engine, list_id: str, channel_id: str, ts: str) -> None:
    with transaction(engine) as conn:
        conn.execute(
            sa_update(L).where(L.c.id == list_id).values(channel_id=channel_id, progress_ts=ts)
        )


def orphaned_lead_lists(engine: Engine, *, now: datetime | None = None) -> list[str]:
    """Lists nobody holds: running with an expired lease, queued and unleased, or succeeded
    with their lead files not delivered and nobody delivering them."""
    at = literal(now or utcnow(), UTCDateTime())
    free = or_(L.c.lease_owner.is_(None), L.c.lease_expires_at < at)
    owed = and_(_undelivered(), free)
    with reading(engine) as conn:
        return list(
            conn.execute(
                select(L.c.id).where(or_(and_(_claimable(at), L.c.status.in_(OPEN)), owed))
            ).scalars()
        )


def resize_list_slots(
    engine: Engine,
    list_id: str,
    *,
    owner: str,
    model_cap: int,
    share: float,
    now: datetime | None = None,
) -> int | None:
    """The model slots the list may use now: its share of the cap, less what running and
    waiting sequences need (never below one, so the list goes on). Recorded on the row, so
    sequences' claims count it. None when the list's lease is no longer `owner`'s."""
    now = now or utcnow()
    at = literal(now, UTCDateTime())
    with transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK_KEY)))
        running = and_(G.c.status == GenerationStatus.RUNNING, G.c.lease_expires_at >= at)
        sequences = conn.execute(
            select(func.count())
            .select_from(G)
            .where(or_(running, G.c.status == GenerationStatus.QUEUED))
        ).scalar_one()
        others = conn.execute(
            select(func.coalesce(func.sum(L.c.slots), 0)).where(
                L.c.status == LeadListStatus.RUNNING, L.c.lease_expires_at >= at, L.c.id != list_id
            )
        ).scalar_one()
        share_cap = max(1, int(model_cap * share))
        slots = max(1, min(share_cap - others, model_cap - sequences - others))
        kept = conn.execute(
            sa_update(L)
            .where(
                L.c.id == list_id, L.c.lease_owner == owner, L.c.status == LeadListStatus.RUNNING
            )
            .values(slots=slots)
        ).rowcount
    return slots if kept else None


def list_owners(engine: Engine) -> list[str]:
    """The processes holding lists' leases, writing or delivering (a restarted serve checks
    which are dead)."""
    with reading(engine) as conn:
        return list(
            conn.execute(
                select(L.c.lease_owner).where(_leased(), L.c.lease_owner.is_not(None)).distinct()
            ).scalars()
        )


def expire_list_leases(engine: Engine, owners: list[str], *, now: datetime | None = None) -> int:
    """End the leases of dead processes: their lists are taken over now, not a lease later."""
    if not owners:
        return 0
    now = now or utcnow()
    with transaction(engine) as conn:
        return conn.execute(
            sa_update(L)
            .where(_leased(), L.c.lease_owner.in_(owners))
            .values(lease_expires_at=now - timedelta(seconds=1), updated_at=now)
        ).rowcount
