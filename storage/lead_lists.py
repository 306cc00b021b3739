"""Lead lists as durable jobs: the leads allowance (reserved for a whole list by one conditional
UPDATE, what was not written given back when the list ends), the list's row and lease, and
each lead's answer saved as it arrives, keyed so that no lead is written or billed twice."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, case, delete, func, literal, or_, select, true
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError

from storage.db import reading, transaction
from storage.lead_models import LeadAllowance, LeadListJob, LeadListStatus, LeadResult
from storage.models import Generation, Plan, QuotaState, UTCDateTime, Workspace, utcnow
from storage.workspaces import dialect_insert, ensure_workspace, month_window

A = LeadAllowance.__table__
L = LeadListJob.__table__
R = LeadResult.__table__
W = Workspace.__table__
G = Generation.__table__
OPEN = (LeadListStatus.QUEUED, LeadListStatus.RUNNING)


@dataclass(frozen=True)
class LeadPolicy:
    """Leads per workspace per calendar month, by plan."""

    free: int
    pro: int


@dataclass(frozen=True)
class LeadsReserved:
    list_id: str
    used: int
    limit: int
    again: bool = False  # the same request was already accepted: this is its list


@dataclass(frozen=True)
class LeadsExhausted:
    plan: str
    used: int
    limit: int
    asked: int
    resets_at: datetime


@dataclass(frozen=True)
class LeadListRow:
    id: str
    team_id: str
    enterprise_id: str | None
    user_id: str
    generation_id: str
    channel_id: str | None
    thread_ts: str | None
    progress_ts: str | None
    filename: str
    total: int
    status: str
    reserved: int
    slots: int
    cancel_requested: bool
    takeovers: int
    delivered_at: datetime | None = None
    source: bytes | None = None


def lead_list_row(r) -> LeadListRow:
    return LeadListRow(
        id=r.id,
        team_id=r.team_id,
        enterprise_id=r.enterprise_id,
        user_id=r.user_id,
        generation_id=r.generation_id,
        channel_id=r.channel_id,
        thread_ts=r.thread_ts,
        progress_ts=r.progress_ts,
        filename=r.filename,
        total=r.total,
        status=r.status,
        reserved=r.reserved,
        slots=r.slots,
        cancel_requested=r.cancel_requested,
        takeovers=r.takeovers,
        delivered_at=r.delivered_at,
        source=getattr(r, "source", None),
    )


def _limit(policy: LeadPolicy, now: datetime):
    pro = and_(
        W.c.plan == Plan.PRO,
        or_(W.c.grace_until.is_(None), W.c.grace_until > literal(now, UTCDateTime())),
    )
    plan_limit = select(case((pro, policy.pro), else_=policy.free)).where(
        W.c.team_id == A.c.team_id
    )
    return plan_limit.scalar_subquery()


def create_lead_list(
    engine: Engine,
    policy: LeadPolicy,
    *,
    team_id: str,
    user_id: str,
    generation_id: str,
    leads: int,
    source: bytes,
    filename: str,
    idempotency_key: str,
    channel_id: str | None = None,
    thread_ts: str | None = None,
    enterprise_id: str | None = None,
    now: datetime | None = None,
) -> LeadsReserved | LeadsExhausted:
    """Reserve `leads` of the workspace's month and write the queued list, in one transaction.
    The leads are taken by ONE conditional UPDATE (`used + leads <= limit`), so two lists at
    once can never both take the last of the month. A second call with the same key returns
    the first list's reservation."""
    now = now or utcnow()
    start, end = month_window(now)
    at = literal(start, UTCDateTime())
    try:
        with transaction(engine) as conn:
            ensure_workspace(conn, team_id, enterprise_id=enterprise_id, now=now)
            conn.execute(
                dialect_insert(conn, A)
                .values(team_id=team_id, period_start=start, used=0)
                .on_conflict_do_nothing()
            )
            taken = conn.execute(
                sa_update(A)
                .where(
                    A.c.team_id == team_id,
                    A.c.period_start == at,
                    A.c.used + leads <= _limit(policy, now),
                )
                .values(used=A.c.used + leads)
                .returning(A.c.used)
            ).first()
            if taken is None:
                used = conn.execute(
                    select(A.c.used).where(A.c.team_id == team_id, A.c.period_start == at)
                ).scalar_one()
                plan, limit = _plan_limit(conn, policy, team_id, now)
                return LeadsExhausted(plan, used, limit, leads, end)
            list_id = str(uuid.uuid4())
            conn.execute(
                L.insert().values(
                    id=list_id,
                    team_id=team_id,
                    enterprise_id=enterprise_id,
                    user_id=user_id,
                    generation_id=generation_id,
                    channel_id=channel_id,
                    thread_ts=thread_ts,
                    filename=filename[:255],
                    source=source,
                    total=leads,
                    status=LeadListStatus.QUEUED,
                    reserved=leads,
                    quota_state=QuotaState.RESERVED,
                    period_start=start,
                    slots=0,
                    cancel_requested=False,
                    idempotency_key=idempotency_key,
                    takeovers=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            _, limit = _plan_limit(conn, policy, team_id, now)
            return LeadsReserved(list_id, taken.used, limit)
    except IntegrityError:
        with reading(engine) as conn:
            existing = conn.execute(
                select(L.c.id).where(L.c.idempotency_key == idempotency_key)
            ).scalar_one_or_none()
        if existing is None:
            raise
        _, used, limit = leads_standing(engine, policy, team_id, now=now)
        return LeadsReserved(existing, used, limit, again=True)


def _plan_limit(conn, policy: LeadPolicy, team_id: str, now: datetime) -> tuple[str, int]:
    ws = conn.execute(select(W.c.plan, W.c.grace_until).where(W.c.team_id == team_id)).first()
    plan = ws.plan if ws is not None else Plan.FREE
    pro = plan == Plan.PRO and (ws.grace_until is None or ws.grace_until > now)
    return plan, policy.pro if pro else policy.free


def leads_standing(
    engine: Engine, policy: LeadPolicy, team_id: str, *, now: datetime | None = None
) -> tuple[str, int, int]:
    """(plan, leads used this month, leads allowed this month)."""
    now = now or utcnow()
    start, _ = month_window(now)
    with reading(engine) as conn:
        used = conn.execute(
            select(A.c.used).where(
                A.c.team_id == team_id, A.c.period_start == literal(start, UTCDateTime())
            )
        ).scalar_one_or_none()
        plan, limit = _plan_limit(conn, policy, team_id, now)
    return plan, used or 0, limit


def withdraw_lead_list(engine: Engine, list_id: str) -> bool:
    """Undo a list accepted then refused (rate limited): delete it, give its leads back."""
    with transaction(engine) as conn:
        row = conn.execute(
            delete(L)
            .where(L.c.id == list_id, L.c.status == LeadListStatus.QUEUED)
            .returning(L.c.team_id, L.c.period_start, L.c.reserved)
        ).first()
        if row is None:
            return False
        _give_back(conn, row.team_id, row.period_start, row.reserved)
        return True


def _give_back(conn, team_id: str, period_start: datetime, leads: int) -> None:
    if leads <= 0:
        return
    conn.execute(
        sa_update(A)
        .where(A.c.team_id == team_id, A.c.period_start == literal(period_start, UTCDateTime()))
        .values(used=case((A.c.used > leads, A.c.used - leads), else_=0))
    )


# --- the end of a list -----------------------------------------------------------------------


def request_cancel(engine: Engine, list_id: str) -> bool:
    """Ask the list to stop; the process running it stops at its next lead. True when it was
    still open."""
    with transaction(engine) as conn:
        return bool(
            conn.execute(
                sa_update(L)
                .where(L.c.id == list_id, L.c.status.in_(OPEN))
                .values(cancel_requested=True, updated_at=utcnow())
            ).rowcount
        )


def is_cancelled(engine: Engine, list_id: str) -> bool:
    with reading(engine) as conn:
        return bool(
            conn.execute(select(L.c.cancel_requested).where(L.c.id == list_id)).scalar_one()
        )


def finish_lead_list(
    engine: Engine,
    list_id: str,
    *,
    status: str,
    error: str | None = None,
    when: str | None = None,
) -> int | None:
    """End the list (only while its status is `when`, if given): the leads written stay
    used, the rest of its reservation goes back. Returns how many leads were written
    (billed), or None when it had already ended (or was not `when`)."""
    now = utcnow()
    with transaction(engine) as conn:
        row = conn.execute(
            sa_update(L)
            .where(
                L.c.id == list_id,
                L.c.quota_state == QuotaState.RESERVED,
                true() if when is None else L.c.status == when,
            )
            .values(
                status=status,
                quota_state=QuotaState.COMMITTED,
                error=(error or None) and error[:500],
                lease_owner=None,
                slots=0,
                finished_at=now,
                # A list that succeeded still owes its lead files (storage/lead_leases.py,
                # `claim_delivery`); one that failed or was cancelled has none to send.
                delivered_at=None if status == LeadListStatus.SUCCEEDED else now,
                updated_at=now,
            )
            .returning(L.c.team_id, L.c.period_start, L.c.reserved)
        ).first()
        if row is None:
            return None
        written = conn.execute(
            select(func.count()).select_from(R).where(R.c.list_id == list_id)
        ).scalar_one()  # in this transaction: the count the release is based on
        _give_back(conn, row.team_id, row.period_start, row.reserved - written)
        return written


def row_columns(*, with_source: bool = False) -> list:
    """A list's columns, without its file unless asked: 5 MB that most readers never use."""
    return [c for c in L.c if with_source or c.name != "source"]


def get_lead_list(engine: Engine, list_id: str, *, with_source: bool = False) -> LeadListRow | None:
    columns = row_columns(with_source=with_source)
    with reading(engine) as conn:
        row = conn.execute(select(*columns).where(L.c.id == list_id)).first()
    return lead_list_row(row) if row is not None else None


def has_source(engine: Engine, list_id: str) -> bool:
    """Whether the list's file is still there (not erased), without reading it."""
    with reading(engine) as conn:
        found = conn.execute(select(L.c.id).where(L.c.id == list_id, L.c.source.is_not(None)))
        return found.first() is not None


def erase_lead_data(conn: Connection, *, team_id: str | None = None, before=None) -> int:
    """Forget the prospects' data of a workspace's lists (or of lists created before
    `before`): the uploaded files and every lead's email and opening. An open list is asked
    to stop first, and nothing is saved for a list whose file is gone, so a process still
    running one writes nothing back (bot/flows/lead_job.py, storage/lead_results.py)."""
    which = L.c.team_id == team_id if team_id is not None else L.c.created_at < before
    ids = select(L.c.id).where(which).scalar_subquery()
    conn.execute(
        sa_update(L)
        .where(which)
        .values(
            source=None,
            cancel_requested=case((L.c.status.in_(OPEN), True), else_=L.c.cancel_requested),
            updated_at=utcnow(),
        )
    )
    return conn.execute(
        sa_update(R)
        .where(R.c.list_id.in_(ids), or_(R.c.email != "", R.c.opening.is_not(None)))
        .values(email="", opening=None, subject_a=None)
    ).rowcount
