"""Faults that cascade through the topology: one incident, one ticket, one text per customer."""

from __future__ import annotations

from collections import Counter

from contingency import ContingencyManager, FileSmsSink, Topology
from detectors.event import EventState
from tests.contingency.conftest import CUSTOMERS, HOLD_DOWN, FakeClock, make_event, text_then_absorb

FIRING, RESOLVED = EventState.FIRING, EventState.RESOLVED
AGG_A = {c.phone for c in CUSTOMERS if c.element in ("olt-a1", "olt-a2")}
OLT_A1 = {c.phone for c in CUSTOMERS if c.element == "olt-a1"}


def texts(sink: FileSmsSink) -> Counter[str]:
    return Counter(str(line["to"]) for line in sink.read())


def test_ancestors(topology: Topology) -> None:
    assert topology.ancestors("olt-a1") == ["agg-a", "core"]
    assert topology.ancestors("core") == [] and topology.ancestors("nowhere") == []


def test_faults_below_an_open_incident_join_it(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock
) -> None:
    manager.handle([make_event("agg-a", FIRING)])
    clock.advance(30)
    manager.handle([make_event("olt-a1", FIRING, name="ElementUnreachable"),
                    make_event("olt-a2", FIRING, name="ElementUnreachable")])
    [incident] = manager.list_incidents()
    assert incident["element"] == "agg-a" and len(incident["events"]) == 3
    [ticket] = manager.list_tickets()
    assert sum("(below agg-a)" in e["text"] for e in ticket["timeline"]) == 2
    assert len(manager.list_banners()) == 2
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 20 and set(texts(sink)) == AGG_A

    manager.handle([make_event("agg-a", RESOLVED)])  # the OLTs are still unreachable
    assert manager.list_incidents()[0]["status"] == "open"
    manager.handle([make_event("olt-a1", RESOLVED, name="ElementUnreachable"),
                    make_event("olt-a2", RESOLVED, name="ElementUnreachable")])
    assert manager.list_incidents()[0]["status"] == "resolved"
    assert manager.tick() == 20  # "restored", once each
    assert set(texts(sink).values()) == {2}


def test_a_fault_above_open_incidents_absorbs_them(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock
) -> None:
    manager.handle([make_event("olt-a1", FIRING)])
    manager.handle([make_event("olt-b1", FIRING)])  # another branch: stays its own incident
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 20  # olt-a1's 10 and olt-b1's 10
    clock.advance(60)
    manager.handle([make_event("agg-a", FIRING)])

    by_element = {i["element"]: i for i in manager.list_incidents()}
    assert by_element["olt-a1"]["status"] == "merged" and by_element["olt-b1"]["status"] == "open"
    agg = by_element["agg-a"]
    assert agg["status"] == "open" and len(agg["events"]) == 2
    tickets = {t["incident_id"]: t for t in manager.list_tickets()}
    child = tickets[by_element["olt-a1"]["id"]]
    assert child["status"] == "closed"
    assert any("merged into the incident on agg-a" in e["text"] for e in child["timeline"])
    assert any("absorbed the open incident on olt-a1" in e["text"]
               for e in tickets[agg["id"]]["timeline"])
    banners = manager.list_banners()
    assert sorted((b["incident_key"], b["area_id"]) for b in banners) == [
        ("agg-a", "tianhe"), ("agg-a", "yuexiu"), ("olt-b1", "haizhu")]

    clock.advance(HOLD_DOWN)
    assert manager.tick() == 10  # only olt-a2's customers were still to be told
    sent = texts(sink)
    assert all(sent[p] == 1 for p in AGG_A)

    manager.handle([make_event("agg-a", RESOLVED)])  # olt-a1's own fault is not over: it goes on alone
    assert {i["element"]: i["status"] for i in manager.list_incidents()}["agg-a"] == "resolved"
    assert manager.tick() == 10  # "restored" to olt-a2's customers
    manager.handle([make_event("olt-a1", RESOLVED)])
    assert [i["element"] for i in manager.list_incidents() if i["status"] == "open"] == ["olt-b1"]
    assert manager.tick() == 10  # and to olt-a1's, each once
    sent = texts(sink)
    assert all(sent[p] == 2 for p in AGG_A)


def test_absorbed_texts_not_yet_sent_go_once(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock
) -> None:
    manager.handle([make_event("olt-a1", FIRING)])
    clock.advance(60)  # inside olt-a1's hold-down
    manager.handle([make_event("agg-a", FIRING)])
    clock.advance(HOLD_DOWN - 60)
    assert manager.tick() == 10  # olt-a1's texts keep their time
    clock.advance(60)
    assert manager.tick() == 10  # olt-a2's after agg-a's hold-down
    assert texts(sink) == Counter({p: 1 for p in AGG_A})
    assert len([m for m in manager.list_sms() if m["status"] == "sent"]) == 20


def test_a_fault_above_that_clears_in_the_hold_down_cancels_everything_below(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock
) -> None:
    manager.handle([make_event("olt-a1", FIRING)])
    manager.handle([make_event("agg-a", FIRING)])
    manager.handle([make_event("agg-a", RESOLVED), make_event("olt-a1", RESOLVED)])
    clock.advance(HOLD_DOWN * 2)
    assert manager.tick() == 0 and sink.read() == []
    assert {i["element"]: i["status"] for i in manager.list_incidents()} == {"agg-a": "resolved",
                                                                             "olt-a1": "merged"}
    assert manager.list_banners() == []


def test_when_the_fault_above_recovers_the_faults_below_go_on_alone(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock
) -> None:
    manager.handle([make_event("agg-a", FIRING)])
    manager.handle([make_event("olt-a1", FIRING, name="ElementUnreachable")])  # joins agg-a's incident
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 20
    clock.advance(600)
    manager.handle([make_event("agg-a", RESOLVED)])  # the aggregation is back, olt-a1 is not

    by_element = {i["element"]: i for i in manager.list_incidents()}
    assert by_element["agg-a"]["status"] == "resolved"
    olt = by_element["olt-a1"]
    assert olt["status"] == "open" and olt["customers"] == 10 and len(olt["events"]) == 1
    assert olt["sms"] == {"outage_sent": 10}  # their texts moved with them: nobody is told twice
    tickets = {t["incident_id"]: t for t in manager.list_tickets()}
    assert tickets[olt["id"]]["status"] == "open"
    assert any("olt-a1 is still faulty" in e["text"] for e in tickets[by_element["agg-a"]["id"]]["timeline"])
    assert [(b["incident_key"], b["area_id"]) for b in manager.list_banners()] == [("olt-a1", "yuexiu")]

    assert manager.tick() == 10  # "restored" now only to olt-a2's customers
    restored_now = {str(line["to"]) for line in sink.read()[20:]}
    assert restored_now == AGG_A - OLT_A1
    assert manager.impact(sorted(OLT_A1)[0])["affected"] is True

    manager.handle([make_event("olt-a1", RESOLVED, name="ElementUnreachable")])
    assert manager.tick() == 10  # and to olt-a1's when their own fault is over
    assert set(texts(sink).values()) == {2}


def test_after_an_absorb_the_recovery_above_splits_too(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock
) -> None:
    text_then_absorb(manager, clock)
    manager.handle([make_event("agg-a", RESOLVED)])
    statuses = sorted((i["element"], i["status"]) for i in manager.list_incidents())
    assert statuses == [("agg-a", "resolved"), ("olt-a1", "merged"), ("olt-a1", "open")]
    assert manager.tick() == 10
    manager.handle([make_event("olt-a1", RESOLVED)])
    assert manager.tick() == 10
    assert set(texts(sink).values()) == {2} and set(texts(sink)) == AGG_A
