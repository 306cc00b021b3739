"""generation leases, and the PostgreSQL job queue

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 00:40:00

A running generation holds a lease (owner, expiry) so another process can take it over and
resume it after a crash; `takeovers` counts how often that happened. On PostgreSQL the job
queue's own tables (Procrastinate's schema) are created here too, so `coldcopy migrate`
remains the one release step.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=80), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", storage.models.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("takeovers", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_index(
            "ix_generations_status_created", ["status", "created_at"], unique=False
        )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from procrastinate.schema import SchemaManager

        # Straight to psycopg, without parameters: the schema's functions hold colons and
        # percent signs that SQLAlchemy or psycopg would otherwise read as placeholders.
        # Same connection, so it commits or rolls back with this migration.
        bind.connection.driver_connection.execute(SchemaManager.get_schema())


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(
            "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, "
            "procrastinate_jobs, procrastinate_workers, procrastinate_version CASCADE"
        )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("ix_generations_status_created")
        batch_op.drop_column("takeovers")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
