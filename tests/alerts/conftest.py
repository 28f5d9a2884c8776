"""Fixtures for the alerts tests: a real HTTP receiver, a fake clock, a SQLite file DB."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from alerts import AlertsBase
from detectors.event import Event, EventState
from tests.conftest import free_tcp_port, require_binary

T0 = 1_700_000_000.0


class FakeClock:
    """A clock callable the test advances by hand."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Receiver:
    """A real webhook receiver on 127.0.0.1: records POST bodies, replies scripted statuses."""

    base_url: str
    bodies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    script: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def posts(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.bodies.get(path, []))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            with state.lock:
                state.bodies.setdefault(self.path, []).append(body)
                codes = state.script.get(self.path, [])
                code = codes.pop(0) if codes else 200
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _as_postgres(argv: list[str]) -> list[str]:
    """Run a PostgreSQL binary as the postgres user when we are root (it refuses root)."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields its admin URL."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install psycopg[binary])")
    pg_bin = Path(require_binary("postgres", "/usr/lib/postgresql/15/bin/postgres")).parent
    data = Path(tempfile.mkdtemp(prefix="vigil-alerts-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = free_tcp_port()
    subprocess.run(
        _as_postgres(
            [str(pg_bin / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "vigil"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            [
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data / "db"),
                "-o",
                options,
                "-l",
                str(data / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://vigil@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres(
                [str(pg_bin / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"]
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a new database on the local PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alerts.db'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    name = f"alerts_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(db_url)
    AlertsBase.metadata.create_all(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def make_event(
    state: EventState = EventState.FIRING,
    *,
    name: str = "LinkDown",
    element: str = "olt-1",
    at: float = T0,
    extra: tuple[tuple[str, str], ...] = (),
) -> Event:
    """An event as the detectors would emit it."""
    return Event(
        name=name,
        element=element,
        state=state,
        labels=(("alertname", name), ("element", element), ("ifName", "ge-0/0/1"), *extra),
        detector="ewma",
        series="if_in_utilization{ifName=ge-0/0/1}",
        value=0.97,
        expected=0.41,
        band=(0.2, 0.6),
        score=8.5,
        active_at=at - 120,
        fired_at=at if state is not EventState.PENDING else None,
        resolved_at=at if state is EventState.RESOLVED else None,
        summary=f"{name} on {element}",
    )
