"""index for a users latest brief

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:22:42.035110
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sqlmodel
import storage.models

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.create_index('ix_generations_team_user_created', ['team_id', 'user_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_index('ix_generations_team_user_created')

