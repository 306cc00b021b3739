"""workspace settings and their history

New tables only: workspaces that exist keep every row and simply have no settings yet.

Revision ID: 0014
Revises: 0003
Create Date: 2026-11-29 00:31:07.541370
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sqlmodel
import storage.models

revision: str = '0014'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('workspace_settings',
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('product', sqlmodel.sql.sqltypes.AutoString(length=600), nullable=True),
    sa.Column('benefit', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('call_to_action', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('tone', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('about_us', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('never_use', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('updated_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('team_id')
    )
    op.create_table('workspace_settings_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('changed_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('changed_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('workspace_settings_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workspace_settings_changes_team_id'), ['team_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('workspace_settings_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workspace_settings_changes_team_id'))

    op.drop_table('workspace_settings_changes')
    op.drop_table('workspace_settings')
