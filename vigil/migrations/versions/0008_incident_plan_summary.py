"""incidents.plan_summary: what the incident list shows of a plan, without its customers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:00:00

The agent page polls the incident list every 3 s; reading each incident's plan (the snapshot of
up to 100,000 customers) to print its areas and customer count cost ~0.4 s per past incident.
plan_summary holds the areas, the customer count, the cause and the maintenance window; stored
incidents get theirs from their plan here, one row at a time.
"""
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _summary(plan: Any) -> dict[str, Any] | None:
    """contingency.store.plan_summary as of this revision (a migration never follows later code)."""
    if isinstance(plan, str | bytes):
        plan = json.loads(plan)
    if not isinstance(plan, dict):
        return None
    return {
        "areas": [dict(a) for a in plan.get("areas") or ()],
        "customers": len(plan.get("customers") or ()),
        "cause": plan.get("cause", ""),
        "maintenance": plan.get("maintenance"),
        "maintenance_over": bool(plan.get("maintenance_over", False)),
    }


def upgrade() -> None:
    """Upgrade schema; backfill each stored incident's summary from its plan."""
    with op.batch_alter_table('incidents') as batch:
        batch.add_column(sa.Column('plan_summary', sa.JSON(), nullable=True))
    bind = op.get_bind()
    incidents = sa.table('incidents', sa.column('id', sa.Integer()), sa.column('plan', sa.JSON()),
                         sa.column('plan_summary', sa.JSON()))
    ids = bind.execute(sa.select(incidents.c.id).order_by(incidents.c.id)).scalars().all()
    for incident_id in ids:  # one plan in memory at a time
        plan = bind.execute(sa.select(incidents.c.plan).where(incidents.c.id == incident_id)).scalar()
        summary = _summary(plan)
        if summary is not None:
            bind.execute(incidents.update().where(incidents.c.id == incident_id).values(plan_summary=summary))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('incidents') as batch:
        batch.drop_column('plan_summary')
