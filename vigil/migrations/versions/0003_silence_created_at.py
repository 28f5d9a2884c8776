"""silences remember when they were made and whether they were announced ahead (a maintenance window)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 18:40:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import alerts.store  # noqa: F401 - custom column types

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema: silences made before this column existed count as created when last updated."""
    with op.batch_alter_table('silences') as batch:
        batch.add_column(sa.Column('created_at', alerts.store.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('scheduled', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE silences SET created_at = updated_at WHERE created_at IS NULL")


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('silences') as batch:
        batch.drop_column('scheduled')
        batch.drop_column('created_at')
