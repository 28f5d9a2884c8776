"""A small network: core -> 2 aggregations -> 2 access elements each, 3 areas, 40 customers."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import sessionmaker

from config.models import Area, ContingencyConfig, Customer, Element, SmsConfig
from contingency import ContingencyBase, ContingencyManager, FileSmsSink, SmsSink, Topology
from detectors.event import Event, EventState
from tests.conftest import free_tcp_port, require_binary

T0 = 1_795_400_000.0  # 2026-11-23 10:13:20 UTC+8
HOLD_DOWN = 300.0


class FakeClock:
    """A clock the test advances by hand."""

    def __init__(self, start: float = T0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def _element(name: str, parent: str | None, area: str | None = None) -> Element:
    return Element(name=name, address="udp://127.0.0.1:1161", credential="lab", parent=parent,
                   area=area)


ELEMENTS = [
    _element("core", None),
    _element("agg-a", "core"),
    _element("agg-b", "core"),
    _element("olt-a1", "agg-a", "yuexiu"),
    _element("olt-a2", "agg-a", "tianhe"),
    _element("olt-b1", "agg-b", "haizhu"),
    _element("olt-b2", "agg-b", "haizhu"),
]
AREAS = [
    Area(id="yuexiu", name="Yuexiu", name_zh="越秀区"),
    Area(id="tianhe", name="Tianhe", name_zh="天河区"),
    Area(id="haizhu", name="Haizhu", name_zh="海珠区"),
]
_AREA_OF = {"olt-a1": "yuexiu", "olt-a2": "tianhe", "olt-b1": "haizhu", "olt-b2": "haizhu"}


def _customers() -> list[Customer]:
    out = []
    for n, element in enumerate(["olt-a1", "olt-a2", "olt-b1", "olt-b2"]):
        for i in range(10):
            k = n * 10 + i
            out.append(Customer(
                account=f"GZ{k:05d}", phone=f"1380000{k:04d}", area=_AREA_OF[element],
                element=element, language="en" if k % 4 == 0 else "zh-CN",
                grade="vip" if k % 10 == 0 else "standard",
            ))
    return out


CUSTOMERS = _customers()


def make_event(
    element: str, state: EventState, *, name: str = "InterfaceDown", if_name: str = "ge-0/0/1",
    at: float = T0,
) -> Event:
    """A detector event on ``element`` (its fingerprint depends on element, name and ifName)."""
    return Event(
        name=name, element=element, state=state,
        labels=(("alertname", name), ("element", element), ("ifName", if_name)),
        detector="threshold", series=f"{element}/{if_name}", value=0.0, expected=1.0,
        band=(0.5, 1.5), score=-3.0, active_at=at, summary=f"{if_name} is down",
    )


@pytest.fixture
def topology() -> Topology:
    return Topology(ELEMENTS, AREAS, CUSTOMERS)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its binaries as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields its admin URL (no database)."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install psycopg[binary])")
    pg_bin = Path(require_binary("postgres", "/usr/lib/postgresql/15/bin/postgres")).parent
    data = Path(tempfile.mkdtemp(prefix="vigil-contingency-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = free_tcp_port()
    subprocess.run(
        _as_postgres([str(pg_bin / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U",
                      "vigil"]),
        check=True, capture_output=True,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data / "db"), "-o", options, "-l",
                      str(data / "log"), "-w", "start"]),
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://vigil@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate",
                          "stop"]),
            check=False, capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


_POSTGRES = pytest.param("postgresql", marks=pytest.mark.service("postgres"))


@pytest.fixture(params=["sqlite", _POSTGRES])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a new database on a throwaway PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vigil.db'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    name = f"contingency_{uuid.uuid4().hex[:12]}"
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
def sessions(db_url: str) -> Iterator[sessionmaker]:
    engine = create_engine(db_url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _fk(dbapi_conn, _record) -> None:  # noqa: ANN001
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

    ContingencyBase.metadata.create_all(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def config() -> ContingencyConfig:
    return ContingencyConfig(hold_down=HOLD_DOWN, sms=SmsConfig(sink="file", path="sms.jsonl"))


@pytest.fixture
def sink(tmp_path: Path, clock: FakeClock) -> FileSmsSink:
    return FileSmsSink(tmp_path / "sms.jsonl", clock=clock)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def make_manager(
    sessions: sessionmaker, topology: Topology, config: ContingencyConfig, clock: FakeClock,
    registry: CollectorRegistry,
) -> Callable[[SmsSink], ContingencyManager]:
    def make(sink: SmsSink) -> ContingencyManager:
        return ContingencyManager(sessions, topology, config, sink, clock=clock,
                                  registry=registry)
    return make


@pytest.fixture
def manager(make_manager: Callable[[SmsSink], ContingencyManager],
            sink: FileSmsSink) -> ContingencyManager:
    return make_manager(sink)
