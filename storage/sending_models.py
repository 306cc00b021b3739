"""The sending tools' tables: a workspace's API key per tool, the one draft campaign a
sequence has in a tool, whether sending needs approval and by whom, and each decision. Their
tables join storage.models' metadata (storage/schema.py gathers them)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, Column, ForeignKey, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models import tz_column, utcnow


class SequencerConnection(SQLModel, table=True):
    """A workspace's API key for one sending tool, Fernet-encrypted like the Slack tokens; only
    its last four characters are ever shown again."""

    __tablename__ = "sequencer_connections"
    __table_args__ = (UniqueConstraint("team_id", "tool", name="uq_sequencer_connections_tool"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(
        sa_column=Column(String(32), ForeignKey("workspaces.team_id"), nullable=False)
    )
    tool: str = Field(max_length=16)
    api_key: str = Field(sa_column=Column(Text, nullable=False))
    last4: str = Field(max_length=4)
    added_by: str = Field(max_length=32)
    added_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))


class DraftStatus:
    QUEUED = "queued"
    RUNNING = "running"
    CREATED = "created"
    STOPPED = "stopped"  # the attempt failed; `progress` says how far it got


class SequencerDraft(SQLModel, table=True):
    """The one draft campaign a sequence has in one tool, alone or with one of its lead lists:
    claimed before anything is sent, so a second click finds it, and holding the progress
    record a resumed attempt continues from."""

    __tablename__ = "sequencer_drafts"
    __table_args__ = (
        UniqueConstraint(
            "generation_id", "tool", "lead_list_id", name="uq_sequencer_drafts_generation_tool_list"
        ),
    )

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    generation_id: str = Field(
        sa_column=Column(String(36), ForeignKey("generations.id"), nullable=False)
    )
    team_id: str = Field(max_length=32, index=True)
    tool: str = Field(max_length=16)
    # The lead list whose leads go with the sequence; "" for the sequence alone. Not NULL:
    # PostgreSQL's unique constraints treat NULLs as distinct, so two "no list" drafts of one
    # sequence in one tool would both be allowed.
    lead_list_id: str = Field(
        default="", sa_column=Column(String(36), nullable=False, server_default="")
    )
    requested_by: str = Field(max_length=32)
    status: str = Field(default=DraftStatus.QUEUED, max_length=16)
    campaign_id: str | None = Field(default=None, max_length=64)
    url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    progress: dict | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))


class SendingPolicy(SQLModel, table=True):
    """Whether a workspace wants a sequence approved before it goes to a tool, and by whom:
    its admins, or the members of one Slack user group."""

    __tablename__ = "sending_policies"

    team_id: str = Field(
        sa_column=Column(String(32), ForeignKey("workspaces.team_id"), primary_key=True)
    )
    require_approval: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="0")
    )
    approver_group: str | None = Field(default=None, max_length=32)
    updated_by: str = Field(max_length=32)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))


class SequenceApproval(SQLModel, table=True):
    """One approval decision (requested, approved, changes requested) on a sequence, with who
    and when, and a digest of the emails it was about: a rewrite since needs a new approval."""

    __tablename__ = "sequence_approvals"

    id: int | None = Field(default=None, primary_key=True)
    generation_id: str = Field(
        sa_column=Column(String(36), ForeignKey("generations.id"), nullable=False, index=True)
    )
    team_id: str = Field(max_length=32)
    decision: str = Field(max_length=24)
    user_id: str = Field(max_length=32)
    sequence_digest: str = Field(max_length=64)
    decided_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))
