"""lead lists, their results and the leads allowance

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 16:40:00

A lead list is personalised as a durable job like a generation: its row holds the uploaded
file, its reservation of leads and its lease; each lead's answer is its own row, keyed by list
and lead, so a takeover neither writes nor bills a lead twice. Leads have their own monthly
allowance per workspace (lead_allowances), apart from the sequences' quota.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'lead_allowances',
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('period_start', UTCDateTime(), nullable=False),
        sa.Column('used', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id']),
        sa.PrimaryKeyConstraint('team_id', 'period_start'),
    )
    op.create_table(
        'lead_lists',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('enterprise_id', sa.String(length=32), nullable=True),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('generation_id', sa.String(length=36), nullable=False),
        sa.Column('channel_id', sa.String(length=32), nullable=True),
        sa.Column('thread_ts', sa.String(length=32), nullable=True),
        sa.Column('progress_ts', sa.String(length=32), nullable=True),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('source', sa.LargeBinary(), nullable=True),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reserved', sa.Integer(), nullable=False),
        sa.Column('quota_state', sa.String(length=16), nullable=False),
        sa.Column('period_start', UTCDateTime(), nullable=False),
        sa.Column('slots', sa.Integer(), nullable=False),
        sa.Column('cancel_requested', sa.Boolean(), nullable=False),
        sa.Column('idempotency_key', sa.String(length=200), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('lease_owner', sa.String(length=80), nullable=True),
        sa.Column('lease_expires_at', UTCDateTime(), nullable=True),
        sa.Column('takeovers', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('finished_at', UTCDateTime(), nullable=True),
        sa.Column('delivered_at', UTCDateTime(), nullable=True),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['generation_id'], ['generations.id']),
        sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('idempotency_key'),
    )
    with op.batch_alter_table('lead_lists', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_lists_generation_id'), ['generation_id'])
        batch_op.create_index(batch_op.f('ix_lead_lists_status'), ['status'])
        batch_op.create_index(batch_op.f('ix_lead_lists_team_id'), ['team_id'])
    op.create_table(
        'lead_results',
        sa.Column('list_id', sa.String(length=36), nullable=False),
        sa.Column('lead_index', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('opening', sa.String(length=1000), nullable=True),
        sa.Column('subject_a', sa.String(length=300), nullable=True),
        sa.Column('too_little', sa.Boolean(), nullable=False),
        sa.Column('model', sa.String(length=64), nullable=True),
        sa.Column('input_tokens', sa.Integer(), nullable=False),
        sa.Column('output_tokens', sa.Integer(), nullable=False),
        sa.Column('cache_creation_tokens', sa.Integer(), nullable=False),
        sa.Column('cache_read_tokens', sa.Integer(), nullable=False),
        sa.Column('cost_usd', sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['list_id'], ['lead_lists.id']),
        sa.PrimaryKeyConstraint('list_id', 'lead_index'),
    )
    with op.batch_alter_table('lead_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_results_team_id'), ['team_id'])


def downgrade() -> None:
    with op.batch_alter_table('lead_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lead_results_team_id'))
    op.drop_table('lead_results')
    with op.batch_alter_table('lead_lists', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lead_lists_team_id'))
        batch_op.drop_index(batch_op.f('ix_lead_lists_status'))
        batch_op.drop_index(batch_op.f('ix_lead_lists_generation_id'))
    op.drop_table('lead_lists')
    op.drop_table('lead_allowances')
