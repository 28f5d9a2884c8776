"""repair: the columns added to migrations 0003, 0004 and 0005 after they had shipped

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:00:00

silences.scheduled (added to 0003), sms_messages.phone_key and its index (added to 0004) and
incidents.event_elements (added to 0005) were written into those migrations after vigil
versions had already brought databases to 0003/0004/0005. Alembic never runs a migration
twice, so such a database never got them and the current vigil failed at its first query
(UndefinedColumn). This migration adds each of them only where it is missing (a database made
by the edited migrations already has them), with the values those migrations give:
scheduled = false, phone_key = normalize_phone(phone), event_elements = NULL (an incident's
events then count as on its own element, as for any incident recorded before 0005).

Shipped migrations are never edited: a schema change is always a new migration
(see vigil/migrations/README.md).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from contingency.topology import normalize_phone

# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def _indexes(table: str) -> set[str]:
    return {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}


def upgrade() -> None:
    """Add silences.scheduled, sms_messages.phone_key (+ index, backfilled) and
    incidents.event_elements where a database made by an older vigil lacks them."""
    if "scheduled" not in _columns('silences'):
        with op.batch_alter_table('silences') as batch:
            batch.add_column(sa.Column('scheduled', sa.Boolean(), nullable=False, server_default=sa.false()))

    if "phone_key" not in _columns('sms_messages'):
        with op.batch_alter_table('sms_messages') as batch:
            batch.add_column(sa.Column('phone_key', sa.String(length=32), nullable=False, server_default=''))
        bind = op.get_bind()
        rows = bind.execute(sa.text("SELECT id, phone FROM sms_messages")).all()
        for row_id, phone in rows:
            bind.execute(sa.text("UPDATE sms_messages SET phone_key = :k WHERE id = :i"),
                         {"k": normalize_phone(phone or ""), "i": row_id})
    if "ix_sms_messages_phone_key" not in _indexes('sms_messages'):
        op.create_index('ix_sms_messages_phone_key', 'sms_messages', ['phone_key'], unique=False)

    if "event_elements" not in _columns('incidents'):
        with op.batch_alter_table('incidents') as batch:
            batch.add_column(sa.Column('event_elements', sa.JSON(), nullable=True))


def downgrade() -> None:
    """Nothing: the columns belong to 0003/0004/0005, whose downgrades drop them."""
