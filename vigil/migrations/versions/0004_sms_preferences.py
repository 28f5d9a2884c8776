"""customers' SMS preferences (opt-out / opt-in replies) and a normalised phone on every text

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:20:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from contingency.topology import normalize_phone

# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema; texts already stored get their normalised phone."""
    with op.batch_alter_table('sms_messages') as batch:
        batch.add_column(sa.Column('phone_key', sa.String(length=32), nullable=False, server_default=''))
        batch.create_index('ix_sms_messages_phone_key', ['phone_key'], unique=False)
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, phone FROM sms_messages")).all()
    for row_id, phone in rows:
        bind.execute(sa.text("UPDATE sms_messages SET phone_key = :k WHERE id = :i"),
                     {"k": normalize_phone(phone), "i": row_id})
    op.create_table('sms_preferences',
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.Column('text', sa.String(length=160), nullable=False),
    sa.PrimaryKeyConstraint('phone')
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('sms_preferences')
    with op.batch_alter_table('sms_messages') as batch:
        batch.drop_index('ix_sms_messages_phone_key')
        batch.drop_column('phone_key')
