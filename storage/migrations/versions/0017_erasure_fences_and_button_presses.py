"""erasure fences and button presses

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 16:45:00

Regenerate and Try again are de-duplicated in the database (one row per sequence, person,
button and ten-second bucket, the first insert winning), so a double click makes one new
sequence without Redis. Erasing a workspace fails its queued and running generations and
rewrites with the error 'erased' (storage/retention.py): the index finds them by workspace
and status.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'button_presses',
        sa.Column('generation_id', sa.String(length=36), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('bucket', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('pressed_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('generation_id', 'user_id', 'action', 'bucket'),
    )
    op.create_index('ix_button_presses_pressed_at', 'button_presses', ['pressed_at'])


def downgrade() -> None:
    op.drop_index('ix_button_presses_pressed_at', table_name='button_presses')
    op.drop_table('button_presses')
