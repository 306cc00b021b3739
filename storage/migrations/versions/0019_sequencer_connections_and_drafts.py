"""sequencer connections, drafts, sending policies and approvals

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 17:00:00

New tables only: a workspace's API key per sending tool (encrypted like the Slack tokens), the
one draft a sequence has in each tool, alone or with one lead list (unique per generation,
tool and list, "" meaning none, so a second click finds it), whether a workspace wants approval before sending, and every approval decision.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sequencer_connections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('tool', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('api_key', sa.Text(), nullable=False),
    sa.Column('last4', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
    sa.Column('added_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('added_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('team_id', 'tool', name='uq_sequencer_connections_tool')
    )
    op.create_table('sequencer_drafts',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('generation_id', sa.String(length=36), nullable=False),
    sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('tool', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('lead_list_id', sa.String(length=36), server_default='', nullable=False),
    sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('campaign_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('progress', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['generation_id'], ['generations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('generation_id', 'tool', 'lead_list_id', name='uq_sequencer_drafts_generation_tool_list')
    )
    with op.batch_alter_table('sequencer_drafts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sequencer_drafts_team_id'), ['team_id'], unique=False)
    op.create_table('sending_policies',
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('require_approval', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('approver_group', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('updated_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('team_id')
    )
    op.create_table('sequence_approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('generation_id', sa.String(length=36), nullable=False),
    sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('sequence_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('decided_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['generation_id'], ['generations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sequence_approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sequence_approvals_generation_id'), ['generation_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sequence_approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sequence_approvals_generation_id'))
    op.drop_table('sequence_approvals')
    op.drop_table('sending_policies')
    with op.batch_alter_table('sequencer_drafts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sequencer_drafts_team_id'))
    op.drop_table('sequencer_drafts')
    op.drop_table('sequencer_connections')
