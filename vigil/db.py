"""Database session: one SQLAlchemy engine per run, every room's tables created on it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import sessionmaker

__all__ = ["DatabaseDriverMissing", "create_database", "default_url"]

# the Python module a --db URL's driver needs -> what to install for it
_DRIVER_PACKAGES = {
    "psycopg": "pip install 'vigil[postgres]' (psycopg[binary])",
    "psycopg2": "pip install psycopg2-binary, or use postgresql+psycopg:// with pip install 'vigil[postgres]'",
}


class DatabaseDriverMissing(RuntimeError):
    """The --db URL names a database driver that is not installed (one line: what to install)."""


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

    try:
        engine = create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as err:  # the dialect imports its DBAPI module here
        module = (err.name or "").split(".")[0]
        install = _DRIVER_PACKAGES.get(module, f"pip install {module}")
        shown = make_url(url).render_as_string(hide_password=True)
        raise DatabaseDriverMissing(
            f"--db {shown}: the database driver {module!r} is not installed; install it: {install}"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    upgrade(engine)
    return engine, sessionmaker(engine, expire_on_commit=False)
