"""A small network: core -> 2 aggregations -> 2 access elements each, 3 areas, 40 customers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, event
from sqlalchemy.orm import sessionmaker

from config.models import Area, ContingencyConfig, Customer, Element, SmsConfig
from contingency import ContingencyBase, ContingencyManager, FileSmsSink, SmsSink, Topology
from detectors.event import Event, EventState

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


def text_then_absorb(manager: ContingencyManager, clock: FakeClock) -> None:
    """olt-a1 fails and its customers are texted; then agg-a fails above it and absorbs its incident
    (whose customers are texted after agg-a's own hold-down)."""
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    clock.advance(HOLD_DOWN)
    manager.tick()
    manager.handle([make_event("agg-a", EventState.FIRING)])  # absorbs olt-a1's incident
    clock.advance(HOLD_DOWN)
    manager.tick()
