"""Database session: one SQLAlchemy engine per run, every room's tables created on it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import sessionmaker

__all__ = ["create_database", "default_url"]


def default_url(data_dir: Path) -> str:
    """SQLite file inside the data directory."""
    return f"sqlite:///{(data_dir / 'vigil.db').resolve()}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI connection
    cur = dbapi_conn.cursor()
    # WAL lets the web app read while the pipeline writes; busy_timeout waits instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_database(url: str) -> tuple[Engine, sessionmaker]:
    """Engine + session factory for ``url``, its schema migrated to the current head (Alembic)."""
    from vigil.migrate import upgrade

    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    upgrade(engine)
    return engine, sessionmaker(engine, expire_on_commit=False)
