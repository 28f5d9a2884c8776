"""customer texts carry what the gateway's delivery reports (Kannel DLR) say

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 10:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema; texts already stored have no report (NULL)."""
    with op.batch_alter_table('sms_messages') as batch:
        batch.add_column(sa.Column('delivery', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('delivery_detail', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('reported_at', sa.Double(), nullable=True))
        batch.add_column(sa.Column('delivered_at', sa.Double(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('sms_messages') as batch:
        batch.drop_column('delivered_at')
        batch.drop_column('reported_at')
        batch.drop_column('delivery_detail')
        batch.drop_column('delivery')
