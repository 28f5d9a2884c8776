"""Alembic environment: every room's tables, on the connection vigil hands over."""

from __future__ import annotations

from alembic import context

from alerts.store import AlertsBase
from contingency.store import ContingencyBase

target_metadata = [AlertsBase.metadata, ContingencyBase.metadata]


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("vigil runs migrations online only (vigil db upgrade)")
run_migrations_online()
