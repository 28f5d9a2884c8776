"""The database: migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from alerts.store import AlertsBase
from contingency.store import ContingencyBase
from vigil.db import create_database
from vigil.migrate import current_revision, head_revision


def test_migrations_match_the_models(db_url: str) -> None:
    engine, sessions = create_database(db_url)
    try:
        assert current_revision(engine) == head_revision() is not None
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, [AlertsBase.metadata, ContingencyBase.metadata])
        assert diff == [], f"models and migrations differ: write a migration ({diff})"
        tables = set(inspect(engine).get_table_names())
        assert {"alerts", "alert_notifications", "incidents", "tickets", "banners", "sms_messages"} <= tables
        # a second start on the same database is a no-op
        engine2, _ = create_database(db_url)
        assert current_revision(engine2) == head_revision()
        engine2.dispose()
        with sessions() as session:
            assert session.bind is engine
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    engine, _ = create_database(f"sqlite:///{tmp_path / 'v.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
    assert create_engine(f"sqlite:///{tmp_path / 'v.db'}")
