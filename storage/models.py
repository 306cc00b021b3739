"""The core of the database schema: workspaces (plan and quota), their settings and its
history, generations, rewrites of one email and feedback on each, button presses, processed
Stripe events, and Slack's own installation and OAuth-state tables. The lead lists' tables
(storage/lead_models.py) and the sending tools' (storage/sending_models.py) join the same
metadata; storage/schema.py gathers all of them for Alembic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def tz_column(**kwargs: Any) -> Column:
    return Column(UTCDateTime(), **kwargs)


class Plan:
    FREE = "free"
    PRO = "pro"


class GenerationStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class QuotaState:
    """Where a generation's unit of quota stands: held, turned into usage, or given back."""

    RESERVED = "reserved"
    COMMITTED = "committed"
    RELEASED = "released"


class Workspace(SQLModel, table=True):
    __tablename__ = "workspaces"

    team_id: str = Field(primary_key=True, max_length=32)
    enterprise_id: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, max_length=200)
    plan: str = Field(default=Plan.FREE, max_length=16)
    period_start: datetime = Field(sa_column=tz_column(nullable=False))
    period_end: datetime = Field(sa_column=tz_column(nullable=False))
    # Units reserved or committed in the current period; the quota gate is `used < limit`.
    used: int = Field(default=0)
    stripe_customer_id: str | None = Field(default=None, max_length=64, unique=True)
    stripe_subscription_id: str | None = Field(default=None, max_length=64)
    subscription_status: str | None = Field(default=None, max_length=32)
    # Stripe's creation time of the last billing event applied: older events arrive late.
    billing_event_at: datetime | None = Field(default=None, sa_column=tz_column(nullable=True))
    # While a subscription is past_due, pro access lasts until this time.
    grace_until: datetime | None = Field(default=None, sa_column=tz_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))


# What a workspace's admins set for every brief; the column sizes are the brief's field limits.
SETTINGS_COLUMNS = (
    "product",
    "benefit",
    "call_to_action",
    "tone",
    "language",
    "about_us",
    "never_use",
)


class WorkspaceSettings(SQLModel, table=True):
    __tablename__ = "workspace_settings"

    team_id: str = Field(
        sa_column=Column(String(32), ForeignKey("workspaces.team_id"), primary_key=True)
    )
    product: str | None = Field(default=None, max_length=600)
    benefit: str | None = Field(default=None, max_length=300)
    call_to_action: str | None = Field(default=None, max_length=200)
    tone: str | None = Field(default=None, max_length=32)
    language: str | None = Field(default=None, max_length=8)
    about_us: str | None = Field(default=None, max_length=500)
    never_use: str | None = Field(default=None, max_length=500)
    updated_by: str = Field(max_length=32)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))


class WorkspaceSettingsChange(SQLModel, table=True):
    """Who changed a workspace's settings, when, and each changed field's old and new value."""

    __tablename__ = "workspace_settings_changes"

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(
        sa_column=Column(String(32), ForeignKey("workspaces.team_id"), nullable=False, index=True)
    )
    changed_by: str = Field(max_length=32)
    changed_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))
    changes: dict = Field(sa_column=Column(JSON, nullable=False))


class Generation(SQLModel, table=True):
    __tablename__ = "generations"
    # A user's latest brief pre-fills the form on every /coldcopy.
    __table_args__ = (
        Index("ix_generations_team_user_created", "team_id", "user_id", "created_at"),
        # "N ahead of you" counts the queued generations older than one.
        Index("ix_generations_status_created", "status", "created_at"),
        # A mention in a sequence's thread finds its generation by the thread's parent.
        Index("ix_generations_thread", "posted_channel_id", "parent_ts"),
    )

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    team_id: str = Field(
        sa_column=Column(String(32), ForeignKey("workspaces.team_id"), nullable=False, index=True)
    )
    # The Enterprise Grid org of the workspace (E...), None outside Grid: every installation
    # lookup for this generation's workspace needs it.
    enterprise_id: str | None = Field(default=None, max_length=32)
    user_id: str = Field(max_length=32, index=True)
    channel_id: str = Field(max_length=32)
    parent_ts: str | None = Field(default=None, max_length=32)
    # Where the thread ended up when the chosen channel refused us (a DM), else the channel.
    posted_channel_id: str | None = Field(default=None, max_length=32)
    status: str = Field(default=GenerationStatus.QUEUED, max_length=16, index=True)
    quota_state: str = Field(default=QuotaState.RESERVED, max_length=16)
    # The period start of the workspace when the unit was reserved: a release after a
    # rollover must not give back a unit of the new period.
    period_start: datetime = Field(sa_column=tz_column(nullable=False))
    brief: dict | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    sequence: list | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    model: str | None = Field(default=None, max_length=64)
    input_tokens: int = Field(default=0)
    output_tokens: int = Field(default=0)
    cache_creation_tokens: int = Field(default=0)
    cache_read_tokens: int = Field(default=0)
    cost_usd: Decimal = Field(
        default=Decimal(0), sa_column=Column(Numeric(12, 6), nullable=False, default=0)
    )
    error: str | None = Field(default=None, max_length=500)
    idempotency_key: str = Field(max_length=200, unique=True)
    attempts: int = Field(default=0)
    # The process running this generation holds a lease it renews while it works; once the
    # lease has expired, any process may take the generation over and resume it.
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_expires_at: datetime | None = Field(default=None, sa_column=tz_column(nullable=True))
    takeovers: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    created_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=tz_column(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=tz_column(nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))


class RewriteStatus:
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class EmailRewrite(SQLModel, table=True):
    """One request to rewrite one email of a sequence: who asked for what, the version it
    replaced (the sequence itself always holds the latest), and what the model call cost."""

    __tablename__ = "email_rewrites"
    __table_args__ = (Index("ix_email_rewrites_team_created", "team_id", "created_at"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    generation_id: str = Field(
        sa_column=Column(String(36), ForeignKey("generations.id"), nullable=False, index=True)
    )
    team_id: str = Field(max_length=32)
    enterprise_id: str | None = Field(default=None, max_length=32)
    step: int
    user_id: str = Field(max_length=32)
    change: str | None = Field(default=None, max_length=1000)
    status: str = Field(default=RewriteStatus.RUNNING, max_length=16)
    previous: dict | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    model: str | None = Field(default=None, max_length=64)
    input_tokens: int = Field(default=0)
    output_tokens: int = Field(default=0)
    cache_creation_tokens: int = Field(default=0)
    cache_read_tokens: int = Field(default=0)
    cost_usd: Decimal = Field(
        default=Decimal(0), sa_column=Column(Numeric(12, 6), nullable=False, default=0)
    )
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=tz_column(nullable=True))


class FeedbackVote:
    POSITIVE = "positive"
    NEGATIVE = "negative"


class EmailFeedback(SQLModel, table=True):
    """One user's vote on one email; voting again replaces it."""

    __tablename__ = "email_feedback"

    generation_id: str = Field(
        sa_column=Column(String(36), ForeignKey("generations.id"), primary_key=True)
    )
    step: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    user_id: str = Field(sa_column=Column(String(32), primary_key=True))
    team_id: str = Field(max_length=32, index=True)
    vote: str = Field(max_length=8)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))


class ButtonPress(SQLModel, table=True):
    """One person's press of Regenerate or Try again on one sequence within a short time
    bucket: the first insert wins, so a double click makes one new sequence without Redis."""

    __tablename__ = "button_presses"

    generation_id: str = Field(sa_column=Column(String(36), primary_key=True))
    user_id: str = Field(sa_column=Column(String(32), primary_key=True))
    action: str = Field(sa_column=Column(String(16), primary_key=True))
    bucket: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    pressed_at: datetime = Field(
        default_factory=utcnow, sa_column=tz_column(nullable=False, index=True)
    )


class StripeEvent(SQLModel, table=True):
    __tablename__ = "stripe_events"

    event_id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    team_id: str | None = Field(default=None, max_length=32)
    event_created_at: datetime = Field(sa_column=tz_column(nullable=False))
    processed_at: datetime = Field(default_factory=utcnow, sa_column=tz_column(nullable=False))


# Slack's installation and OAuth state tables live in our metadata so Alembic creates them.
slack_installations = SQLAlchemyInstallationStore.build_installations_table(
    SQLModel.metadata, SQLAlchemyInstallationStore.default_installations_table_name
)
slack_bots = SQLAlchemyInstallationStore.build_bots_table(
    SQLModel.metadata, SQLAlchemyInstallationStore.default_bots_table_name
)
# Tokens are stored encrypted (storage/tokens.py): a Fernet token of a long Slack token
# outgrows slack_sdk's String(200), so these columns hold text of any length.
for _table, _columns in (
    (slack_installations, ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")),
    (slack_bots, ("bot_token", "bot_refresh_token")),
):
    for _column in _columns:
        _table.c[_column].type = Text()
slack_oauth_states = SQLAlchemyOAuthStateStore.build_oauth_states_table(
    SQLModel.metadata, SQLAlchemyOAuthStateStore.default_table_name
)

metadata = SQLModel.metadata
