"""The lead lists' tables: a workspace's monthly allowance of leads, each list being
personalised for one sequence (its file, reservation, lease and share of the model), and each
lead's answer. Their tables join storage.models' metadata (storage/schema.py gathers them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Column, ForeignKey, Integer, LargeBinary, Numeric, String
from sqlmodel import Field, SQLModel

from storage.models import QuotaState, tz_column, utcnow


class LeadListStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class LeadAllowance(SQLModel, table=True):
    """Leads a workspace reserved or wrote in one calendar month: the lead lists' own quota."""

    __tablename__ = "lead_allowances"

    team_id: str = Field(
        sa_column=Column(String(32), ForeignKey("workspaces.team_id"), primary_key=True)
    )
    period_start: datetime = Field(sa_column=tz_column(primary_key=True))
    used: int = Field(default=0)


class LeadListJob(SQLModel, table=True):
    """One lead list being personalised for one sequence: the uploaded file (re-read on a
    takeover), its reservation of leads, its lease, and where its progress shows in Slack."""

    __tablename__ = "lead_lists"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    team_id: str = Field(
        sa_column=Column(String(32), ForeignKey("workspaces.team_id"), nullable=False, index=True)
    )
    enterprise_id: str | None = Field(default=None, max_length=32)
    user_id: str = Field(max_length=32)
    generation_id: str = Field(
        sa_column=Column(String(36), ForeignKey("generations.id"), nullable=False, index=True)
    )
    channel_id: str | None = Field(default=None, max_length=32)
    thread_ts: str | None = Field(default=None, max_length=32)
    progress_ts: str | None = Field(default=None, max_length=32)
    filename: str = Field(default="leads.csv", max_length=255)
    source: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    total: int = Field(default=0)
    status: str = Field(default=LeadListStatus.QUEUED, max_length=16, index=True)
    # Leads reserved at the start; what was not written goes back when the list ends.
    reserved: int = Field(default=0)
    quota_state: str = Field(default=QuotaState.RESERVED, max_length=16)
    period_start: datetime = Field(sa_column=tz_column(nullable=False))
    # Model calls this list may have in flight at once (its share of the global cap).
    slots: int = Field(default=0)
    cancel_requested: bool = Field(default=False)
    idempotency_key: str = Field(max_length=200, unique=True)
    error: str | None = Field(default=None, max_length=500)
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_expires_at: datetime | None = Field(default=None, sa_column=tz_column(nullable=True))
    takeovers: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=tz_column(nullable=True))
    # When the lead files reached the thread (or there was nothing to send): a list that
    # succeeded without it is delivered by whoever claims it next (bot/flows/lead_job.py).
    delivered_at: datetime | None = Field(default=None, sa_column=tz_column(nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))


class LeadResult(SQLModel, table=True):
    """One lead's answer, saved the moment it arrives; its key makes a second write a no-op."""

    __tablename__ = "lead_results"

    list_id: str = Field(
        sa_column=Column(String(36), ForeignKey("lead_lists.id"), primary_key=True)
    )
    lead_index: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    team_id: str = Field(max_length=32, index=True)
    email: str = Field(max_length=320)
    opening: str | None = Field(default=None, max_length=1000)
    subject_a: str | None = Field(default=None, max_length=300)
    too_little: bool = Field(default=False)
    model: str | None = Field(default=None, max_length=64)
    input_tokens: int = Field(default=0)
    output_tokens: int = Field(default=0)
    cache_creation_tokens: int = Field(default=0)
    cache_read_tokens: int = Field(default=0)
    cost_usd: Decimal = Field(
        default=Decimal(0), sa_column=Column(Numeric(12, 6), nullable=False, default=0)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))
