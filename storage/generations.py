"""A generation's life after it was accepted: claimed once, placed in a thread, looked up,
found stuck after a crash, and its personal data erased on uninstall."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, case, func, literal, or_, select
from sqlalchemy import update as sa_update

from storage.db import reading, transaction
from storage.lead_models import LeadListJob, LeadListStatus
from storage.models import Generation, GenerationStatus, UTCDateTime, utcnow

G = Generation.__table__
LL = LeadListJob.__table__
# The advisory lock that serialises claims on PostgreSQL (any constant of our own).
CLAIM_LOCK_KEY = 0x436F6C64


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
    takeovers: int = 0
    lease_owner: str | None = None
    created_at: datetime | None = None
    # The workspace's Enterprise Grid org (None outside Grid): its installation is found by it.
    enterprise_id: str | None = None


def generation_row(r) -> GenerationRow:
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
        takeovers=r.takeovers,
        lease_owner=r.lease_owner,
        created_at=r.created_at,
        enterprise_id=r.enterprise_id,
    )


@dataclass(frozen=True)
class Claimed:
    """This process now runs the generation; `resumed` when it took it over from another."""

    generation: GenerationRow
    resumed: bool


@dataclass(frozen=True)
class ModelsBusy:
    """As many generations as the model may serve at once are running; try again shortly."""


@dataclass(frozen=True)
class BeingAnnounced:
    """Another process is posting this queued generation's parent message; try again shortly
    (its thread is then continued, not opened twice)."""


def _free(now):
    # Nobody holds it: never leased, handed back, or its holder's lease ran out.
    return or_(G.c.lease_owner.is_(None), G.c.lease_expires_at < now)


def _claimable(now):
    stale = and_(G.c.status == GenerationStatus.RUNNING, G.c.lease_expires_at < now)
    return or_(and_(G.c.status == GenerationStatus.QUEUED, _free(now)), stale)


def claim_generation(
    engine: Engine,
    generation_id: str,
    *,
    owner: str,
    lease_seconds: float,
    running_cap: int | None = None,
    now: datetime | None = None,
) -> Claimed | ModelsBusy | BeingAnnounced | None:
    """Take the generation with a lease: a queued one, or a running one whose lease expired
    (its process died). None when it is finished, or another process holds a live lease, so
    a job delivered twice runs once. With `running_cap`, only while fewer than that many
    generations hold live leases across every process: the model's rate limit is shared.
    BeingAnnounced while another process posts its parent message (`take_announcements`)."""
    now = now or utcnow()
    at = literal(now, UTCDateTime())
    with transaction(engine) as conn:
        if running_cap is not None:
            if conn.dialect.name == "postgresql":
                # Claims are rare and short: serialising them makes the count exact.
                conn.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK_KEY)))
            running = conn.execute(
                select(func.count())
                .select_from(G)
                .where(G.c.status == GenerationStatus.RUNNING, G.c.lease_expires_at >= at)
            ).scalar_one()
            # Running lead lists' model slots count too (their share: storage/lead_leases.py).
            running += conn.execute(
                select(func.coalesce(func.sum(LL.c.slots), 0)).where(
                    LL.c.status == LeadListStatus.RUNNING, LL.c.lease_expires_at >= at
                )
            ).scalar_one()
            if running >= running_cap:
                return ModelsBusy()
        row = conn.execute(
            sa_update(G)
            .where(G.c.id == generation_id, _claimable(at))
            .values(
                status=GenerationStatus.RUNNING,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                started_at=func.coalesce(G.c.started_at, at),
                updated_at=now,
                attempts=G.c.attempts + 1,
                takeovers=G.c.takeovers
                + case((G.c.status == GenerationStatus.RUNNING, 1), else_=0),
            )
            .returning(*G.c)
        ).first()
        if row is None:
            announcing = conn.execute(
                select(G.c.id).where(
                    G.c.id == generation_id,
                    G.c.status == GenerationStatus.QUEUED,
                    ~_free(at),
                )
            ).first()
            return BeingAnnounced() if announcing is not None else None
    claimed = generation_row(row)
    # A fresh claim has a period-less progress record; a takeover finds emails written.
    return Claimed(claimed, resumed=row.takeovers > 0 or bool(row.sequence))


def _while_held(
    engine: Engine, generation_id: str, owner: str, now: datetime | None = None, **values
) -> bool:
    """Update the generation while `owner` holds its lease; False once taken over or ended."""
    with transaction(engine) as conn:
        return bool(
            conn.execute(
                sa_update(G)
                .where(
                    G.c.id == generation_id,
                    G.c.lease_owner == owner,
                    G.c.status == GenerationStatus.RUNNING,
                )
                .values(**values, updated_at=now or utcnow())
            ).rowcount
        )


def renew_lease(
    engine: Engine,
    generation_id: str,
    *,
    owner: str,
    lease_seconds: float,
    now: datetime | None = None,
) -> bool:
    """Extend this process's lease; False when it no longer holds it."""
    now = now or utcnow()
    return _while_held(
        engine, generation_id, owner, now, lease_expires_at=now + timedelta(seconds=lease_seconds)
    )


def save_progress(engine: Engine, generation_id: str, *, owner: str, emails: list) -> bool:
    """Record the emails written and posted so far (with their Slack message ts), so a
    takeover resumes after them. False when this process no longer holds the lease."""
    return _while_held(engine, generation_id, owner, sequence=emails)


def record_brief(engine: Engine, generation_id: str, *, owner: str, brief: dict) -> bool:
    """Store the brief exactly as the model gets it; False once the lease is not ours."""
    return _while_held(engine, generation_id, owner, brief=brief)


def hand_back(
    engine: Engine, generation_id: str, *, owner: str, available_at: datetime | None = None
) -> bool:
    """Put a running generation back in the queue (shutting down, or the model asked us to
    slow down), keeping its progress; the next claim resumes it, not before `available_at`."""
    return _while_held(
        engine,
        generation_id,
        owner,
        status=GenerationStatus.QUEUED,
        lease_owner=None,
        lease_expires_at=available_at,
    )


def expire_leases(engine: Engine, owners: list[str], *, now: datetime | None = None) -> int:
    """End the leases of dead processes: their generations are taken over now, not later."""
    if not owners:
        return 0
    now = now or utcnow()
    with transaction(engine) as conn:
        return conn.execute(
            sa_update(G)
            .where(G.c.status == GenerationStatus.RUNNING, G.c.lease_owner.in_(owners))
            .values(lease_expires_at=now - timedelta(seconds=1), updated_at=now)
        ).rowcount


def running_owners(engine: Engine) -> list[str]:
    with reading(engine) as conn:
        return list(
            conn.execute(
                select(G.c.lease_owner)
                .where(G.c.status == GenerationStatus.RUNNING, G.c.lease_owner.is_not(None))
                .distinct()
            ).scalars()
        )


def queue_position(engine: Engine, generation_id: str) -> int:
    """How many queued generations are ahead of this one (older and not started)."""
    with reading(engine) as conn:
        created = conn.execute(
            select(G.c.created_at).where(G.c.id == generation_id)
        ).scalar_one_or_none()
        if created is None:
            return 0
        return conn.execute(
            select(func.count())
            .select_from(G)
            .where(
                G.c.status == GenerationStatus.QUEUED,
                G.c.created_at < literal(created, UTCDateTime()),
            )
        ).scalar_one()


def take_announcements(
    engine: Engine,
    *,
    owner: str,
    waited: timedelta,
    lease_seconds: float,
    limit: int,
    now: datetime | None = None,
) -> list[GenerationRow]:
    """The oldest queued generations that have waited `waited` with no parent message yet,
    leased to `owner` for posting one (status stays queued): a worker that claims one
    meanwhile is told to wait, so its thread is opened once. Oldest first."""
    now = now or utcnow()
    at = literal(now, UTCDateTime())
    waiting = and_(
        G.c.status == GenerationStatus.QUEUED,
        G.c.parent_ts.is_(None),
        G.c.brief.is_not(None),
        _free(at),
    )
    oldest = (
        select(G.c.id)
        .where(waiting, G.c.created_at < literal(now - waited, UTCDateTime()))
        .order_by(G.c.created_at)
        .limit(limit)
    )
    with transaction(engine) as conn:
        rows = conn.execute(
            sa_update(G)
            # Re-checked on the row itself: of two processes picking the same one, one wins.
            .where(G.c.id.in_(oldest.scalar_subquery()), waiting)
            .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds))
            .returning(*G.c)
        ).all()
    return sorted((generation_row(r) for r in rows), key=lambda g: g.created_at or now)


def end_announcement(
    engine: Engine,
    generation_id: str,
    *,
    owner: str,
    posted: tuple[str, str] | None,
    now: datetime | None = None,
) -> bool:
    """Give back the lease `take_announcements` gave, recording the parent message posted
    (channel, ts) if there is one. False when the lease was no longer this owner's."""
    values: dict = {"lease_owner": None, "lease_expires_at": None, "updated_at": now or utcnow()}
    if posted is not None:
        values |= {"posted_channel_id": posted[0], "parent_ts": posted[1]}
    with transaction(engine) as conn:
        return bool(
            conn.execute(
                sa_update(G)
                .where(
                    G.c.id == generation_id,
                    G.c.lease_owner == owner,
                    G.c.status == GenerationStatus.QUEUED,
                )
                .values(**values)
            ).rowcount
        )


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
    return generation_row(row) if row is not None else None


def orphaned_generations(
    engine: Engine, *, queued_for: timedelta, now: datetime | None = None
) -> list[GenerationRow]:
    """Work no process is doing: running with an expired lease (its process died), or queued
    and untouched for `queued_for` (its job was lost before any worker saw it)."""
    now = now or utcnow()
    at = literal(now, UTCDateTime())
    waited = literal(now - queued_for, UTCDateTime())
    with reading(engine) as conn:
        rows = conn.execute(
            select(G).where(
                or_(
                    and_(G.c.status == GenerationStatus.RUNNING, G.c.lease_expires_at < at),
                    and_(
                        G.c.status == GenerationStatus.QUEUED,
                        G.c.updated_at < waited,
                        or_(G.c.lease_expires_at.is_(None), G.c.lease_expires_at < at),
                    ),
                )
            )
        ).all()
    return [generation_row(r) for r in rows]


def never_started(
    engine: Engine, *, waited: timedelta, now: datetime | None = None
) -> list[GenerationRow]:
    """Queued generations no worker has started in `waited` since they were accepted."""
    cutoff = literal((now or utcnow()) - waited, UTCDateTime())
    with reading(engine) as conn:
        rows = conn.execute(
            select(G).where(
                G.c.status == GenerationStatus.QUEUED,
                G.c.started_at.is_(None),
                G.c.created_at < cutoff,
            )
        ).all()
    return [generation_row(r) for r in rows]


def touch_queued(engine: Engine, generation_id: str, *, now: datetime | None = None) -> None:
    """The generation was handed to a queue (again): it is waiting, not lost."""
    with transaction(engine) as conn:
        conn.execute(
            sa_update(G)
            .where(G.c.id == generation_id, G.c.status == GenerationStatus.QUEUED)
            .values(updated_at=now or utcnow())
        )


def erase_personal_data(engine: Engine, team_id: str) -> int:
    """Forget briefs and sequences of a workspace (on uninstall); usage and billing stay."""
    with transaction(engine) as conn:
        return conn.execute(
            sa_update(G)
            .where(G.c.team_id == team_id)
            .values(brief=None, sequence=None, error=None, updated_at=utcnow())
        ).rowcount
