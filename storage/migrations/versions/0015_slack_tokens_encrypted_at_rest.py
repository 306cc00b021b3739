"""slack tokens encrypted at rest

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 01:00:00

Token columns become text (a Fernet token outgrows String(200)). Tokens stored in plain text
are encrypted here when the migration runs with COLDCOPY_ENCRYPTION_KEY set; without it they
stay as they are and the next `coldcopy migrate` or `coldcopy serve` with the key seals them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOKEN_COLUMNS = {
    'slack_installations': ('bot_token', 'bot_refresh_token', 'user_token', 'user_refresh_token'),
    'slack_bots': ('bot_token', 'bot_refresh_token'),
}


def upgrade() -> None:
    for table, columns in TOKEN_COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column, existing_type=sa.String(length=200), type_=sa.Text(),
                    existing_nullable=True,
                )
    cipher = op.get_context().config.attributes.get('token_cipher')
    if cipher is not None:
        from storage.encryption import seal_plaintext_tokens

        seal_plaintext_tokens(op.get_bind(), cipher)


def downgrade() -> None:
    # Encrypted tokens do not fit String(200): downgrading needs the tokens in plain text,
    # which this migration will not write back.
    for table, columns in TOKEN_COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column, existing_type=sa.Text(), type_=sa.String(length=200),
                    existing_nullable=True,
                )
