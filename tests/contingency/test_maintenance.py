"""Faults inside a planned maintenance window: banners say "planned", customers are texted only on overrun."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import sessionmaker

from config.models import ContingencyConfig
from contingency import ContingencyManager, FileSmsSink, Plan, Topology
from contingency.maintenance import MaintenanceWindow
from detectors.event import EventState
from tests.contingency.conftest import CUSTOMERS, HOLD_DOWN, T0, FakeClock, make_event

FIRING, RESOLVED = EventState.FIRING, EventState.RESOLVED
AGG_A_PHONES = {c.phone for c in CUSTOMERS if c.element in ("olt-a1", "olt-a2")}

class WindowBoard:
    """Maintenance windows by element, the way the app shell answers from the NOC's silences."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.windows: dict[str, MaintenanceWindow] = {}
        self.calls = 0

    def __call__(self, labels: Mapping[str, str]) -> MaintenanceWindow | None:
        self.calls += 1
        w = self.windows.get(labels.get("element", ""))
        return w if w is not None and w.starts_at <= self.clock() < w.ends_at else None

@pytest.fixture
def board(clock: FakeClock) -> WindowBoard:
    return WindowBoard(clock)

@pytest.fixture
def planned_manager(
    sessions: sessionmaker, topology: Topology, config: ContingencyConfig, clock: FakeClock,
    sink: FileSmsSink, board: WindowBoard, registry: CollectorRegistry,
) -> ContingencyManager:
    return ContingencyManager(sessions, topology, config, sink, clock=clock, maintenance=board,
                              registry=registry)

def window(ends_in: float, *, id: str = "mw-1") -> MaintenanceWindow:  # noqa: A002
    return MaintenanceWindow(id=id, starts_at=T0 - 600, ends_at=T0 + ends_in,
                             comment="CHG-1234 fibre splice", created_by="noc-li")

def timeline(manager: ContingencyManager) -> list[str]:
    [ticket] = manager.list_tickets()
    return [e["text"] for e in ticket["timeline"]]

def test_fault_cleared_inside_the_window_texts_nobody(
    planned_manager: ContingencyManager, board: WindowBoard, clock: FakeClock, sink: FileSmsSink
) -> None:
    board.windows["agg-a"] = window(3600)
    planned_manager.handle([make_event("agg-a", FIRING)])

    [incident] = planned_manager.list_incidents()
    assert incident["title"].startswith("[planned maintenance] ")
    assert incident["maintenance"]["id"] == "mw-1" and incident["maintenance"]["over"] is False
    [ticket] = planned_manager.list_tickets()
    assert "Planned maintenance: window mw-1" in ticket["body"] and "CHG-1234" in ticket["body"]
    banners = planned_manager.list_banners()
    assert len(banners) == 2
    assert all(b["planned"] and b["planned_until"] == incident["maintenance"]["ends_at"] for b in banners)
    for b in banners:
        assert b["text_en"].startswith("[Planned maintenance] Broadband interrupted")
        assert b["text_zh"].startswith("【计划维护】")
        assert "planned network works" in b["script_en"] and "Customers are not texted" in b["script_en"]
        assert "计划内网络维护" in b["script_zh"]
    hit = planned_manager.impact(next(iter(AGG_A_PHONES)))
    assert hit["incidents"][0]["planned_until"] is not None
    assert hit["banner"].startswith(("[Planned maintenance]", "【计划维护】"))

    clock.advance(HOLD_DOWN + 60)  # the hold-down is long past, the window is not
    assert planned_manager.tick() == 0
    assert sink.read() == []
    clock.advance(1200)
    planned_manager.handle([make_event("agg-a", RESOLVED)])
    clock.advance(7200)  # well after the window: nothing was left queued
    assert planned_manager.tick() == 0
    assert sink.read() == []
    assert {m["status"] for m in planned_manager.list_sms()} == {"cancelled"}
    lines = timeline(planned_manager)
    assert any("outage SMS held for maintenance window mw-1" in t for t in lines)
    assert planned_manager.list_banners() == []

def test_overrun_makes_it_an_outage_and_texts_everyone_once(
    planned_manager: ContingencyManager, board: WindowBoard, clock: FakeClock, sink: FileSmsSink,
    registry: CollectorRegistry,
) -> None:
    board.windows["agg-a"] = window(1800)
    planned_manager.handle([make_event("agg-a", FIRING)])
    clock.advance(1799)
    assert planned_manager.tick() == 0
    assert registry.get_sample_value("vigil_customers_affected", {"area": "yuexiu", "planned": "true"}) == 10
    clock.advance(1)  # the window ends, the fault is still there
    assert planned_manager.tick() == 20
    assert registry.get_sample_value("vigil_customers_affected", {"area": "yuexiu", "planned": "true"}) == 0
    assert registry.get_sample_value("vigil_customers_affected", {"area": "yuexiu", "planned": "false"}) == 10
    assert {line["to"] for line in sink.read()} == AGG_A_PHONES
    assert planned_manager.tick() == 0  # once each
    banners = planned_manager.list_banners()
    assert all(b["text_en"].startswith("[Area outage]") and not b["planned"] for b in banners)
    assert all("texted proactively" in b["script_en"] for b in banners)
    [incident] = planned_manager.list_incidents()
    assert incident["maintenance"]["over"] is True
    assert incident["title"].startswith("[maintenance overrun] "), incident["title"]
    assert planned_manager.list_tickets()[0]["title"] == incident["title"]
    lookup = planned_manager.impact(next(iter(AGG_A_PHONES)))["incidents"][0]
    assert lookup["title"] == incident["title"]
    assert any("is over and the fault persists" in t for t in timeline(planned_manager))
    assert planned_manager.impact(next(iter(AGG_A_PHONES)))["incidents"][0]["planned_until"] is None

    planned_manager.handle([make_event("agg-a", RESOLVED)])
    assert planned_manager.tick() == 20  # "restored" to those who got the outage text
    assert [line["to"] for line in sink.read()].count(next(iter(AGG_A_PHONES))) == 2

def test_an_extended_window_moves_the_texts_and_an_early_end_sends_them(
    planned_manager: ContingencyManager, board: WindowBoard, clock: FakeClock, sink: FileSmsSink
) -> None:
    board.windows["agg-a"] = window(1800)
    planned_manager.handle([make_event("agg-a", FIRING)])
    clock.advance(600)
    board.windows["agg-a"] = window(5400)  # the works need an hour more
    assert planned_manager.tick() == 0
    assert any("now ends at" in t and "20 outage SMS due at" in t for t in timeline(planned_manager))
    clock.advance(1200 + 60)  # past the first end
    assert planned_manager.tick() == 0 and sink.read() == []
    del board.windows["agg-a"]  # the NOC ends the window early; the fault is still there
    assert planned_manager.tick() == 20

def test_a_failing_lookup_means_unplanned(
    sessions: sessionmaker, topology: Topology, config: ContingencyConfig, clock: FakeClock,
    sink: FileSmsSink, caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(labels: Mapping[str, str]) -> MaintenanceWindow | None:
        raise RuntimeError("silence store down")

    manager = ContingencyManager(sessions, topology, config, sink, clock=clock, maintenance=broken)
    with caplog.at_level(logging.ERROR):
        manager.handle([make_event("agg-a", FIRING)])
    assert "treating the fault as unplanned" in caplog.text
    assert not manager.list_incidents()[0]["title"].startswith("[planned")
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 20

def test_windows_elsewhere_change_nothing(
    planned_manager: ContingencyManager, board: WindowBoard, clock: FakeClock
) -> None:
    board.windows["agg-b"] = window(3600)
    planned_manager.handle([make_event("agg-a", FIRING)])
    assert planned_manager.list_incidents()[0]["maintenance"] is None
    clock.advance(HOLD_DOWN)
    calls = board.calls
    assert planned_manager.tick() == 20
    assert board.calls == calls  # unplanned incidents are not followed

def test_plan_round_trips_its_window(
    planned_manager: ContingencyManager, board: WindowBoard, sessions: sessionmaker
) -> None:
    board.windows["agg-a"] = window(3600)
    planned_manager.handle([make_event("agg-a", FIRING)])
    from contingency import IncidentRecord

    with sessions() as session:
        data = session.query(IncidentRecord).one().plan
    plan = Plan.from_json(data)
    assert plan.maintenance == window(3600)
    assert dict(plan.labels)["element"] == "agg-a"
    assert plan.planned(T0) and not plan.planned(T0 + 3600)
    assert Plan.from_json(plan.to_json()) == plan
    assert Plan.from_json({k: v for k, v in data.items() if k not in ("labels", "maintenance")}).maintenance is None

def test_window_needs_an_end_after_its_start() -> None:
    with pytest.raises(ValueError, match="ends_at must be after starts_at"):
        MaintenanceWindow(id="x", starts_at=10.0, ends_at=10.0)
