"""silences and maintenance windows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 20:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import alerts.store  # noqa: F401 - custom column types

# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('silences',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('matchers', sa.JSON(), nullable=False),
    sa.Column('starts_at', alerts.store.UTCDateTime(), nullable=False),
    sa.Column('ends_at', alerts.store.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('updated_at', alerts.store.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_silences_window', 'silences', ['starts_at', 'ends_at'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_silences_window', table_name='silences')
    op.drop_table('silences')
