"""enterprise ids on generations and rewrites

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-03 12:45:00

A workspace inside an Enterprise Grid org is installed with its org's id (E...), and slack_sdk's
installation store finds its bot only when asked with that id: work done outside a request
(writing a sequence, a rewrite, the Home tab, billing notices) reads it from these rows.
Existing rows get the id their workspace row already holds.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('generations', 'email_rewrites')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('enterprise_id', sa.String(length=32), nullable=True))
        op.execute(
            f"UPDATE {table} SET enterprise_id = (SELECT w.enterprise_id FROM workspaces w "
            f"WHERE w.team_id = {table}.team_id)"
        )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('enterprise_id')
