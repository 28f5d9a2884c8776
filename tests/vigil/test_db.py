"""The database: migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from alerts.store import AlertsBase
from contingency.store import ContingencyBase
from vigil.db import create_database
from vigil.migrate import alembic_config, current_revision, head_revision, upgrade


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


def test_migration_0006_adds_delivery_reports_to_texts_already_stored(db_url: str) -> None:
    """A database at 0005 with a text in it: 0006 keeps the text (no report yet) and takes
    reports; downgrading drops the columns and keeps the text."""
    engine = create_engine(db_url)
    try:
        upgrade(engine, "0005")
        assert "delivery" not in {c["name"] for c in inspect(engine).get_columns("sms_messages")}
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO incidents (id, key, open_key, element, status, title, areas, plan, fingerprints,"
                " opened_at) VALUES (1, 'olt-a1', 'olt-a1', 'olt-a1', 'open', 'down', '[]', '{}', '{}', 1.0)"))
            conn.execute(text(
                "INSERT INTO sms_messages (message_id, incident_id, phone, phone_key, account, kind, text, language,"
                " status, segments, attempts, queued_at, due_at, sent_at)"
                " VALUES ('m-old', 1, '13800000001', '13800000001', 'GZ1', 'outage', 'hi', 'en', 'sent', 1, 1,"
                " 1.0, 2.0, 3.0)"))
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        columns = {c["name"] for c in inspect(engine).get_columns("sms_messages")}
        assert {"delivery", "delivery_detail", "reported_at", "delivered_at"} <= columns
        with engine.begin() as conn:
            row = conn.execute(text("SELECT status, sent_at, delivery, reported_at, delivered_at FROM sms_messages"
                                    " WHERE message_id = 'm-old'")).one()
            assert tuple(row) == ("sent", 3.0, None, None, None)
            conn.execute(text("UPDATE sms_messages SET delivery = 'delivered', delivered_at = 4.0"))
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
        assert "delivery" not in {c["name"] for c in inspect(engine).get_columns("sms_messages")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT message_id FROM sms_messages")).scalars().all() == ["m-old"]
    finally:
        engine.dispose()


def test_migration_0007_gives_an_older_database_the_phone_key_of_its_texts(db_url: str) -> None:
    """A database an older vigil brought to 0004 before phone_key was added to that migration:
    0007 adds the column and its index and fills it with each stored text's normalised phone."""
    engine = create_engine(db_url)
    try:
        upgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_sms_messages_phone_key"))
            conn.execute(text("ALTER TABLE sms_messages DROP COLUMN phone_key"))
            conn.execute(text(
                "INSERT INTO incidents (id, key, open_key, element, status, title, areas, plan, fingerprints,"
                " opened_at) VALUES (1, 'olt-a1', 'olt-a1', 'olt-a1', 'open', 'down', '[]', '{}', '{}', 1.0)"))
            conn.execute(text(
                "INSERT INTO sms_messages (message_id, incident_id, phone, account, kind, text, language,"
                " status, segments, attempts, queued_at, due_at, sent_at)"
                " VALUES ('m-old', 1, '+86 138-0000-0001', 'GZ1', 'outage', 'hi', 'en', 'sent', 1, 1,"
                " 1.0, 2.0, 3.0)"))
        upgrade(engine)
        assert "ix_sms_messages_phone_key" in {i["name"] for i in inspect(engine).get_indexes("sms_messages")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT phone_key FROM sms_messages")).scalars().all() == ["13800000001"]
        upgrade(engine)  # idempotent: a second start changes nothing
    finally:
        engine.dispose()
