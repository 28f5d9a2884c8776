"""Customers on an access port: a fault on that port texts them, not the whole element."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import sessionmaker

from config.load import load_customers
from config.models import ContingencyConfig, Customer
from contingency import ContingencyManager, FileSmsSink, Topology
from contingency.plan import build_plan, fault_ports
from detectors.event import EventState
from tests.contingency.conftest import AREAS, CUSTOMERS, ELEMENTS, HOLD_DOWN, FakeClock, make_event

FIRING, RESOLVED = EventState.FIRING, EventState.RESOLVED


def _ported() -> list[Customer]:
    """olt-a1's 10 customers: 4 on pon0/1, 4 on pon0/2, 2 whose port is not known."""
    out = []
    for c in CUSTOMERS:
        if c.element == "olt-a1":
            k = int(c.account[2:])
            c = c.model_copy(update={"port": "pon0/1" if k < 4 else "pon0/2" if k < 8 else ""})
        out.append(c)
    return out


PORTED = _ported()
A1 = [c for c in PORTED if c.element == "olt-a1"]
ON_1 = {c.phone for c in A1 if c.port in ("pon0/1", "")}
ON_2 = {c.phone for c in A1 if c.port in ("pon0/2", "")}
ALL_A1 = {c.phone for c in A1}


@pytest.fixture
def ported(sessions: sessionmaker, config: ContingencyConfig, clock: FakeClock,
           tmp_path: Path) -> tuple[ContingencyManager, FileSmsSink]:
    sink = FileSmsSink(tmp_path / "sms.jsonl", clock=clock)
    topology = Topology(ELEMENTS, AREAS, PORTED)
    return ContingencyManager(sessions, topology, config, sink, clock=clock, registry=CollectorRegistry()), sink


def texted(manager: ContingencyManager, kind: str = "outage") -> Counter[str]:
    """Phones sent a ``kind`` text, with how often."""
    return Counter(str(m["recipient"]) for m in manager.list_sms() if m["kind"] == kind and m["status"] == "sent")


def test_topology_narrows_only_for_a_port_customers_hang_off(topology: Topology) -> None:
    ported = Topology(ELEMENTS, AREAS, PORTED)
    assert ported.access_ports("olt-a1") == {"pon0/1", "pon0/2"}
    assert {c.phone for c in ported.affected_customers("olt-a1", "pon0/1")} == ON_1
    assert {c.phone for c in ported.affected_customers("olt-a1", "xe-0/0/0")} == ALL_A1  # an uplink
    assert {c.phone for c in ported.affected_customers("olt-a1")} == ALL_A1
    # above the OLT a port of agg-a is no access port: everyone below it
    assert len(ported.affected_customers("agg-a", "pon0/1")) == 20
    assert topology.access_ports("olt-a1") == set()  # the usual file without ports: as before
    assert fault_ports(ported, "olt-a1", {"ifName": "pon0/2"}) == ("pon0/2",)
    assert fault_ports(ported, "olt-a1", {}) == () and fault_ports(ported, "nowhere", {"ifName": "x"}) == ()


def test_a_pon_port_down_texts_that_port_only(ported, clock: FakeClock) -> None:  # noqa: ANN001
    manager, sink = ported
    manager.handle([make_event("olt-a1", FIRING, if_name="pon0/1")])
    [incident] = manager.list_incidents()
    assert "6 customer(s)" in incident["title"]
    clock.advance(HOLD_DOWN)
    manager.tick()
    assert texted(manager) == Counter(ON_1)  # 4 on the port + 2 whose port is not known, once each
    other = next(c for c in A1 if c.port == "pon0/2")
    assert manager.impact(other.phone)["affected"] is False
    assert manager.impact(next(iter(ON_1)))["affected"] is True


def test_a_second_port_widens_the_incident_and_texts_only_the_new_customers(ported, clock: FakeClock) -> None:  # noqa: ANN001
    manager, sink = ported
    manager.handle([make_event("olt-a1", FIRING, if_name="pon0/1")])
    clock.advance(HOLD_DOWN)
    manager.tick()
    manager.handle([make_event("olt-a1", FIRING, if_name="pon0/2")])  # after the first texts went
    manager.tick()
    assert len(manager.list_incidents()) == 1 and len(manager.list_tickets()) == 1
    assert texted(manager) == Counter(ON_1 | ON_2)  # the 4 new ones at once (hold-down long past), nobody twice
    [ticket] = manager.list_tickets()
    assert any("scope widened to pon0/1, pon0/2" in e["text"] and "4 more" in e["text"] for e in ticket["timeline"])
    newcomer = next(c for c in A1 if c.port == "pon0/2")
    assert manager.impact(newcomer.phone)["affected"] is True  # the agents' lookup follows
    manager.handle([make_event("olt-a1", RESOLVED, if_name="pon0/1"),
                    make_event("olt-a1", RESOLVED, if_name="pon0/2")])
    manager.tick()
    assert texted(manager, "restored") == Counter(ON_1 | ON_2)  # "restored" to everyone texted


def test_an_uplink_or_element_fault_joining_a_port_incident_covers_the_whole_element(ported, clock: FakeClock) -> None:  # noqa: ANN001
    manager, sink = ported
    manager.handle([make_event("olt-a1", FIRING, if_name="pon0/1")])
    manager.handle([make_event("olt-a1", FIRING, name="ElementUnreachable", if_name="")])  # in the hold-down
    clock.advance(HOLD_DOWN)
    manager.tick()
    assert texted(manager) == Counter(ALL_A1)
    [incident] = manager.list_incidents()
    # an uplink down from the start: the whole element, as ever
    manager.handle([make_event("olt-a2", FIRING, if_name="xe-0/0/0")])
    clock.advance(HOLD_DOWN)
    manager.tick()
    assert sum(1 for c in PORTED if c.element == "olt-a2" and c.phone in texted(manager)) == 10


def test_a_port_fault_below_a_port_incident_changes_nothing(ported, clock: FakeClock) -> None:  # noqa: ANN001
    manager, sink = ported
    manager.handle([make_event("olt-a1", FIRING, if_name="pon0/1")])
    manager.handle([make_event("olt-a1", FIRING, if_name="pon0/1", name="OpticalRxPowerLow")])  # same port
    clock.advance(HOLD_DOWN)
    manager.tick()
    assert texted(manager) == Counter(ON_1)


def test_the_customers_file_takes_a_port_column(tmp_path: Path) -> None:
    from config.load import load_site

    site_file = Path(__file__).resolve().parents[2] / "examples" / "site.yaml"
    site = load_site(site_file).config
    element = site.elements[0].name
    area = site.areas[0].id
    path = tmp_path / "customers.csv"
    path.write_text(f"account,phone,area,element,port\nA1,8613800000001,{area},{element},pon0/3\n"
                    f"A2,8613800000002,{area},{element},\n")  # fmt: skip
    customers, issues = load_customers(path, site)
    assert issues == [] and [c.port for c in customers] == ["pon0/3", ""]
    plan = build_plan(Topology(site.elements, site.areas, customers), ContingencyConfig(), element, "x",
                      labels={"ifName": "pon0/3"})  # fmt: skip
    assert plan.ports == ("pon0/3",) and {c.account for c in plan.customers} == {"A1", "A2"}
