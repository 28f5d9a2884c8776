"""Shared test helpers: real local services, free ports.

A test that needs a service asks ``require_binary("snmpd")``. On a developer laptop without the
service it skips; under ``CI=true`` a missing service is a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_binary(name: str, *candidates: str) -> str:
    """Path of executable ``name`` (or the first existing candidate path); skip or fail if absent."""
    for path in (shutil.which(name), *candidates):
        if path and os.path.exists(path):
            return path
    message = f"{name} is not installed (run scripts/install-services.sh)"
    if IN_CI:
        pytest.fail(message + " -- CI=true requires every service")
    pytest.skip(message)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_range(count: int) -> int:
    """A base port with ``count`` consecutive free UDP ports on 127.0.0.1 (random, so parallel runs differ)."""
    for _ in range(50):
        base = random.randrange(20000, 60000 - count)
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range")


def vigil_command() -> list[str]:
    """The installed ``vigil`` console script of this interpreter (or ``python -m vigil.cli``)."""
    script = Path(sys.executable).parent / "vigil"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vigil.cli"]


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn on a free 127.0.0.1 port for the block; yields its URL."""
    import uvicorn

    port = free_tcp_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def require_module(name: str) -> None:
    """Import ``name`` or skip (fail under CI=true): a Python driver a service test needs."""
    try:
        __import__(name)
    except ImportError:
        message = f"Python module {name} is not installed (make test installs the dev extras)"
        if IN_CI:
            pytest.fail(message + " -- CI=true requires it")
        pytest.skip(message)


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its binaries as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL 15 cluster on 127.0.0.1; yields its admin URL (no database part)."""
    require_module("psycopg")
    pg_bin = Path(require_binary("postgres", "/usr/lib/postgresql/15/bin/postgres")).parent
    data = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = free_tcp_port()
    subprocess.run(
        _as_postgres([str(pg_bin / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "vigil"]),
        check=True, capture_output=True,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data / "db"), "-o", options,
                      "-l", str(data / "log"), "-w", "start"]),
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://vigil@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"]),
            check=False, capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a new database on the throwaway PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vigil.db'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    from sqlalchemy import create_engine, text

    name = f"vigil_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
