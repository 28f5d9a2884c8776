"""incidents carry the NOC's expected restoration time and the element of each of their events

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:40:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('incidents') as batch:
        batch.add_column(sa.Column('eta', sa.Double(), nullable=True))
        batch.add_column(sa.Column('event_elements', sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('incidents') as batch:
        batch.drop_column('event_elements')
        batch.drop_column('eta')
