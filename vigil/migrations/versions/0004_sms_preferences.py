"""customers' SMS preferences (opt-out / opt-in replies)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:20:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
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
