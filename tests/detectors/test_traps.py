"""TrapRules: Trap values in, Event values out at once; restart events resolve themselves."""

from __future__ import annotations

import json

import pytest

from collectors.sample import Sample, SampleKind, labels_of
from collectors.trap import COLD_START, LINK_DOWN, LINK_UP, WARM_START, Trap
from detectors.event import Event, EventState, Severity, fingerprint_labels
from detectors.traps import (
    DETECTOR_LINK_POLL,
    DETECTOR_TRAP,
    DEVICE_RESTARTED,
    INTERFACE_DOWN,
    EnterpriseRule,
    TrapRules,
)

IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"


def trap(
    oid: str,
    *varbinds: tuple[str, object],
    at: float = 1000.0,
    element: str | None = "olt-01",
    address: str = "10.0.0.9",
) -> Trap:
    return Trap(address=address, port=50000, element=element, version="2c", trap_oid=oid,
                uptime=4242, varbinds=tuple(varbinds), received_at=at, security_name="community#0")


def link(oid: str, index: int, at: float = 1000.0, **extra: str) -> Trap:
    varbinds: list[tuple[str, object]] = [(f"{IF_INDEX}.{index}", index), (f"{IF_OPER}.{index}", 2)]
    if "name" in extra:
        varbinds.append((f"{IF_NAME}.{index}", extra["name"]))
    if "descr" in extra:
        varbinds.append((f"{IF_DESCR}.{index}", extra["descr"]))
    return trap(oid, *varbinds, at=at)


def test_link_down_fires_and_link_up_resolves_the_same_fingerprint() -> None:
    rules = TrapRules()
    [down] = rules.update(link(LINK_DOWN, 7, at=1000.0, name="gpon0/7"))
    assert down.state is EventState.FIRING and down.name == INTERFACE_DOWN
    assert down.labels == (
        ("alertname", INTERFACE_DOWN), ("element", "olt-01"),
        ("ifIndex", "7"), ("ifName", "gpon0/7"), ("severity", "critical"),
    )
    assert (down.detector, down.severity, down.element) == (DETECTOR_TRAP, Severity.CRITICAL, "olt-01")
    assert (down.active_at, down.fired_at, down.resolved_at) == (1000.0, 1000.0, None)
    assert "gpon0/7" in down.summary and "down" in down.summary
    assert rules.active() == [down]

    # linkUp without ifName varbind: still the same labels, so the same alert
    [up] = rules.update(link(LINK_UP, 7, at=1090.0))
    assert up.state is EventState.RESOLVED and up.fingerprint == down.fingerprint
    assert (up.active_at, up.fired_at, up.resolved_at) == (1000.0, 1000.0, 1090.0)
    assert rules.active() == []


def test_repeated_link_down_is_not_a_new_event_and_interfaces_are_separate() -> None:
    rules = TrapRules()
    assert len(rules.update(link(LINK_DOWN, 1))) == 1
    assert rules.update(link(LINK_DOWN, 1, at=1001.0)) == []
    [other] = rules.update(link(LINK_DOWN, 2))
    assert other.label("ifIndex") == "2"
    assert len(rules.active()) == 2


def test_interface_name_sources() -> None:
    names = {("olt-01", "3"): "pon-3"}
    rules = TrapRules(if_names=lambda element, index: names.get((element, index)))
    [from_cache] = rules.update(link(LINK_DOWN, 3, name="ignored-when-cached"))
    assert from_cache.label("ifName") == "pon-3"
    [from_descr] = rules.update(link(LINK_DOWN, 4, descr="GigabitEthernet0/4"))
    assert from_descr.label("ifName") == "GigabitEthernet0/4"
    [unnamed] = rules.update(link(LINK_DOWN, 5))
    assert unnamed.label("ifName") == "" and "ifName" not in dict(unnamed.labels)
    assert "ifIndex 5" in unnamed.summary


def test_if_index_from_the_oper_status_varbind_when_there_is_no_if_index() -> None:
    [event] = TrapRules().update(trap(LINK_DOWN, (f"{IF_OPER}.12", 2)))
    assert event.label("ifIndex") == "12"


def test_link_up_without_a_known_link_down_still_resolves_deterministically() -> None:
    # vigil restarted between linkDown and linkUp: the alert store still has the firing alert
    before = TrapRules().update(link(LINK_DOWN, 9, name="xe-0/0/9"))[0]
    [up] = TrapRules().update(link(LINK_UP, 9, at=2000.0, name="xe-0/0/9"))
    assert up.state is EventState.RESOLVED and up.fingerprint == before.fingerprint
    assert up.resolved_at == 2000.0


def test_link_up_without_if_index_resolves_only_what_a_link_down_without_one_opened() -> None:
    rules = TrapRules()
    assert rules.update(trap(LINK_UP, at=900.0)) == []  # nothing down: nothing to resolve (or log)
    [down] = rules.update(trap(LINK_DOWN, at=1000.0))
    [up] = rules.update(trap(LINK_UP, at=1100.0))
    assert up.state is EventState.RESOLVED and up.fingerprint == down.fingerprint
    assert rules.update(trap(LINK_UP, at=1200.0)) == []  # resolved already
    # vigil restarted while it was firing: restore() remembers it, the next linkUp resolves it
    [down] = rules.update(trap(LINK_DOWN, at=1300.0))
    restarted = TrapRules()
    assert restarted.restore([dict(down.labels)], 1400.0) == 0  # no port to watch
    [up] = restarted.update(trap(LINK_UP, at=1500.0))
    assert up.state is EventState.RESOLVED and up.fingerprint == down.fingerprint
    assert restarted.update(trap(LINK_UP, at=1600.0)) == []


@pytest.mark.parametrize("oid", [COLD_START, WARM_START])
def test_restart_fires_now_and_resolves_itself_after_the_hold(oid: str) -> None:
    rules = TrapRules(restart_hold=120.0)
    [fired] = rules.update(trap(oid, at=500.0))
    assert (fired.name, fired.state, fired.severity) == (DEVICE_RESTARTED, EventState.FIRING, Severity.WARNING)
    assert fired.labels == (("alertname", DEVICE_RESTARTED), ("element", "olt-01"), ("severity", "warning"))
    assert rules.tick(619.9) == []
    # another restart trap meanwhile extends the hold, without a new event
    assert rules.update(trap(oid, at=600.0)) == []
    assert rules.tick(700.0) == []
    [resolved] = rules.tick(720.5)
    assert resolved.state is EventState.RESOLVED and resolved.fingerprint == fired.fingerprint
    assert resolved.resolved_at == 720.0  # the end of the hold, not when tick ran
    assert rules.tick(10_000.0) == [] and rules.active() == []


def test_enterprise_rules_longest_prefix_wins_and_resolve_after() -> None:
    rules = TrapRules(
        restart_hold=60.0,
        enterprise={
            "1.3.6.1.4.1.2011": ("HuaweiAlarm", "warning"),
            ".1.3.6.1.4.1.2011.2.15.2.4.3.3": EnterpriseRule(
                "OntDyingGasp", Severity.CRITICAL, resolve_after=30.0),
        },
    )
    [gasp] = rules.update(trap("1.3.6.1.4.1.2011.2.15.2.4.3.3.0.12", at=10.0))
    assert (gasp.name, gasp.severity) == ("OntDyingGasp", Severity.CRITICAL)
    assert gasp.label("trapOID") == "1.3.6.1.4.1.2011.2.15.2.4.3.3.0.12"
    [generic] = rules.update(trap("1.3.6.1.4.1.2011.5.25.0.1", at=10.0))
    assert (generic.name, generic.severity) == ("HuaweiAlarm", Severity.WARNING)
    assert rules.update(trap("1.3.6.1.4.1.9.9.41.2.0.1")) == []  # no rule: no event
    assert rules.update(trap("1.3.6.1.4.1.20110.1")) == []  # a prefix match is by whole arcs
    assert [e.name for e in rules.tick(40.0)] == ["OntDyingGasp"]
    assert [e.name for e in rules.tick(70.0)] == ["HuaweiAlarm"]


def test_unknown_source_is_named_by_address_and_bad_rules_are_rejected() -> None:
    [event] = TrapRules().update(trap(COLD_START, element=None, address="192.0.2.77"))
    assert event.element == "192.0.2.77" and event.label("element") == "192.0.2.77"
    with pytest.raises(ValueError, match="numeric OID prefix"):
        TrapRules(enterprise={"HUAWEI-MIB::hwAlarm": ("X", "warning")})
    with pytest.raises(ValueError):
        TrapRules(enterprise={"1.3.6.1.4.1.9": ("X", "loud")})
    with pytest.raises(ValueError, match="restart_hold"):
        TrapRules(restart_hold=0)


def test_events_carry_the_fields_consumers_read() -> None:
    [event] = TrapRules().update(link(LINK_DOWN, 7, name="gpon0/7"))
    assert isinstance(event, Event)
    assert event.value == 1.0 and event.score == 1.0 and event.band == (0.0, 0.0)
    assert event.series == "linkDown" and event.label("severity") == str(event.severity)
    notes = dict(event.annotations)
    assert notes["trap_oid"] == LINK_DOWN and notes["source"] == "10.0.0.9:50000"
    assert notes["sys_uptime_cs"] == "4242"


# -- link state: traps and polled ifOperStatus share one damped condition per interface ------------


def status(element: str, index: int, oper: int, at: float, admin: int | None = 1) -> list[Sample]:
    labels = labels_of(ifIndex=str(index), ifName=f"ge-0/0/{index}", ifDescr=f"GigabitEthernet0/{index}")
    out = [Sample(element, "ifOperStatus", labels, float(oper), at, SampleKind.GAUGE)]
    if admin is not None:
        out.append(Sample(element, "ifAdminStatus", labels, float(admin), at, SampleKind.GAUGE))
    return out


def firing(events: list[Event]) -> list[Event]:
    return [e for e in events if e.state is EventState.FIRING]


def test_a_port_seen_up_that_polls_down_raises_interface_down_without_any_trap() -> None:
    rules = TrapRules()
    assert rules.observe(status("olt-01", 3, 1, 0.0)) == []
    [down] = rules.observe(status("olt-01", 3, 2, 60.0))
    assert (down.name, down.state, down.detector) == (INTERFACE_DOWN, EventState.FIRING, DETECTOR_LINK_POLL)
    assert down.labels == (("alertname", INTERFACE_DOWN), ("element", "olt-01"), ("ifIndex", "3"),
                           ("ifName", "ge-0/0/3"), ("severity", "critical"))  # fmt: skip
    assert "ge-0/0/3" in down.summary and "went down" in down.summary
    assert rules.observe(status("olt-01", 3, 7, 120.0)) == []  # lowerLayerDown: still the same condition
    [up] = rules.observe(status("olt-01", 3, 1, 180.0))
    assert up.state is EventState.RESOLVED and up.fingerprint == down.fingerprint and up.resolved_at == 180.0


def test_spare_ports_and_shut_ports_raise_nothing() -> None:
    rules = TrapRules()
    # a spare: never seen up, polled down for hours
    assert [e for t in range(0, 36000, 60) for e in rules.observe(status("olt-01", 9, 2, float(t)))] == []
    # an administrative shutdown of a port that was up
    assert rules.observe(status("olt-01", 4, 1, 0.0)) == []
    assert rules.observe(status("olt-01", 4, 2, 60.0, admin=2)) == []
    # a port that goes down, then is shut: the alert resolves as "administratively down"
    rules.observe(status("olt-01", 5, 1, 0.0))
    [down] = rules.observe(status("olt-01", 5, 2, 60.0))
    [shut] = rules.observe(status("olt-01", 5, 2, 120.0, admin=2))
    assert shut.state is EventState.RESOLVED and "administratively down" in shut.summary
    assert shut.fingerprint == down.fingerprint


def test_a_trap_and_the_next_poll_are_one_alert() -> None:
    rules = TrapRules(keep_firing_for=300.0)
    rules.observe(status("olt-01", 7, 1, 0.0))
    [down] = rules.update(link(LINK_DOWN, 7, at=30.0, descr="GigabitEthernet0/7"))  # Cisco: ifDescr only
    assert down.detector == DETECTOR_TRAP and down.label("ifName") == "ge-0/0/7"  # the polled name stays
    assert rules.observe(status("olt-01", 7, 2, 60.0)) == []  # the poll agrees: nothing new
    assert rules.update(link(LINK_UP, 7, at=90.0)) == []  # back up, held keep_firing_for
    assert rules.observe(status("olt-01", 7, 1, 120.0)) == []
    assert rules.tick(300.0) == []
    [up] = rules.tick(400.0)  # 310 s after the linkUp
    assert up.state is EventState.RESOLVED and up.fingerprint == down.fingerprint
    assert rules.active() == [] and rules.tick(1000.0) == []


@pytest.mark.parametrize("source", ["traps", "polls"])
def test_a_flapping_port_is_one_event_not_a_storm(source: str) -> None:
    """Down 96 s of every 240 s for an hour (the lab's flapping fault), then up for good."""

    def run(rules: TrapRules) -> list[Event]:
        events = rules.observe(status("olt-01", 6, 1, 0.0))
        for t in range(60, 3600, 30 if source == "traps" else 60):
            down = (t % 240) < 96
            if source == "traps" and (t % 240) in (0, 90):  # the edges only
                oid = LINK_DOWN if (t % 240) == 0 else LINK_UP
                events += rules.update(link(oid, 6, at=float(t)))
            elif source == "polls":
                events += rules.observe(status("olt-01", 6, 2 if down else 1, float(t)))
        for t in range(3600, 3600 * 4, 60):
            events += rules.observe(status("olt-01", 6, 1, float(t))) + rules.tick(float(t))
        return events

    damped = run(TrapRules(keep_firing_for=300.0))
    assert [e.state for e in damped] == [EventState.FIRING, EventState.RESOLVED]
    assert damped[1].resolved_at is not None and damped[1].resolved_at > 3600.0
    storm = firing(run(TrapRules(damping=None)))
    assert len(storm) >= 14  # what it would be without damping


def test_a_link_up_after_a_restart_resolves_even_once_polls_know_the_port() -> None:
    """vigil restarted while the port was down (its InterfaceDown still open downstream); the
    first poll after the restart sees it down (no opinion: never seen up), then the linkUp trap
    comes: it must still emit RESOLVED, as the module promises, or the alert never clears."""
    rules = TrapRules(keep_firing_for=300.0)
    assert rules.observe(status("olt-01", 7, 2, 0.0)) == []
    [up] = rules.update(link(LINK_UP, 7, at=30.0))
    assert up.state is EventState.RESOLVED and up.name == INTERFACE_DOWN
    assert up.labels == (("alertname", INTERFACE_DOWN), ("element", "olt-01"), ("ifIndex", "7"),
                         ("ifName", "ge-0/0/7"), ("severity", "critical"))  # fmt: skip


def test_a_link_down_trap_of_an_administrative_shutdown_raises_nothing() -> None:
    """linkDown carries ifAdminStatus (RFC 2863): a port shut on purpose is not a fault, even
    before the next poll sees ifAdminStatus 2."""
    rules = TrapRules(keep_firing_for=300.0)
    rules.observe(status("olt-01", 4, 1, 0.0))
    shut = trap(LINK_DOWN, (f"{IF_INDEX}.4", 4), ("1.3.6.1.2.1.2.2.1.7.4", 2), (f"{IF_OPER}.4", 2), at=10.0)
    assert rules.update(shut) == []
    assert rules.observe(status("olt-01", 4, 2, 60.0, admin=2)) == []
    # a trap-only device: no poll at all
    assert rules.update(trap(LINK_DOWN, (f"{IF_INDEX}.5", 5), ("1.3.6.1.2.1.2.2.1.7.5", 2),
                             (f"{IF_OPER}.5", 2), at=20.0)) == []
    # and a real linkDown (admin up) still fires
    [down] = rules.update(trap(LINK_DOWN, (f"{IF_INDEX}.6", 6), ("1.3.6.1.2.1.2.2.1.7.6", 1),
                               (f"{IF_OPER}.6", 2), at=30.0))
    assert down.state is EventState.FIRING


def test_an_interface_down_from_before_a_restart_resolves_on_the_next_poll_up() -> None:
    """vigil restarts while a port is down (polls only, no traps); the port is back up by then."""
    before = TrapRules()
    before.observe(status("olt-01", 3, 1, 0.0))
    [down] = before.observe(status("olt-01", 3, 2, 60.0))
    after = TrapRules()  # a fresh process: nothing known of the port
    assert after.observe(status("olt-01", 3, 1, 120.0)) == []  # without restore: the alert stays firing
    restarted = TrapRules()
    stored = [dict(down.labels), {"alertname": "CpuUtilizationHigh", "element": "olt-01"},
              {"alertname": "InterfaceDown", "element": "olt-01"}]  # fmt: skip
    assert restarted.restore(stored, 100.0) == 1  # the one with a port
    assert [e.fingerprint for e in restarted.active()] == [down.fingerprint]
    assert restarted.observe(status("olt-01", 3, 2, 110.0)) == []  # still down: nothing new
    [up] = restarted.observe(status("olt-01", 3, 1, 120.0))
    assert up.state is EventState.RESOLVED and up.fingerprint == down.fingerprint


def test_ports_seen_up_before_a_restart_count_at_once_after_it() -> None:
    """The link table survives a restart (state_dict through JSON): a port seen up, then polled
    down after the restart, raises InterfaceDown at once; a spare and a shut port stay quiet."""
    import json

    before = TrapRules()
    before.observe(status("olt-01", 3, 1, 0.0))  # seen up
    before.observe(status("olt-01", 9, 2, 0.0))  # a spare, never up
    before.observe(status("olt-01", 4, 1, 0.0))
    before.observe(status("olt-01", 4, 2, 60.0, admin=2))  # shut on purpose
    state = json.loads(json.dumps(before.state_dict()))
    fresh = TrapRules()  # without the state: the first "down" after a restart is not trusted
    assert fresh.observe(status("olt-01", 3, 2, 120.0, admin=None)) == []
    after = TrapRules()
    assert after.load_state_dict(state) == 3
    [down] = after.observe(status("olt-01", 3, 2, 120.0, admin=None))
    assert down.state is EventState.FIRING and dict(down.labels)["ifName"] == "ge-0/0/3"
    assert after.observe(status("olt-01", 9, 2, 120.0, admin=None)) == []  # still a spare
    assert after.observe(status("olt-01", 4, 2, 120.0, admin=None)) == []  # still shut
    [up] = after.observe(status("olt-01", 3, 1, 180.0, admin=None))
    assert up.state is EventState.RESOLVED and up.fingerprint == down.fingerprint


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"version": 99, "links": []}, "version 99"),
        ({"version": 1, "links": {}}, "must be a list"),
        ({"version": 1, "links": [["olt-01", "3", "ge-0/0/3", False, True, False, {}],
                                  ["olt-01", "", "x", 1, 1, 0, {}]]}, r"links\[1\]"),
        ({"version": 1, "links": [["olt-01", "3", "ge-0/0/3", False, True]]}, r"links\[0\]"),
        ({"version": 1, "links": [["olt-01", "3", "ge-0/0/3", False, True, False, ["ge-0/0/3"]]]}, r"links\[0\]"),
        ({"version": 1, "links": [["olt-01", "3", "ge-0/0/3", False, True, False, {"ifAlias": "x"}]]}, r"links\[0\]"),
    ],
)
def test_a_bad_link_state_is_refused_whole(state: dict, match: str) -> None:
    rules = TrapRules()
    with pytest.raises(ValueError, match=match):
        rules.load_state_dict(state)
    assert rules.state_dict()["links"] == []  # nothing half-loaded


def test_restore_after_a_loaded_link_state_resolves_the_stored_alert_by_its_own_labels() -> None:
    """The link table names the port ge-0/0/3, the stored alert (fired by a trap before any poll
    named it) has no ifName: the alert's own fingerprint is the one the next "up" resolves."""
    before = TrapRules()
    before.observe(status("olt-01", 3, 1, 0.0))
    stored = {"alertname": INTERFACE_DOWN, "element": "olt-01", "ifIndex": "3", "severity": "critical"}
    after = TrapRules()
    after.load_state_dict(before.state_dict())
    assert after.restore([stored], 100.0) == 1
    [up] = after.observe(status("olt-01", 3, 1, 120.0))
    assert up.state is EventState.RESOLVED and dict(up.labels) == stored


def named(element: str, index: int, name: str, oper: int, at: float) -> list[Sample]:
    labels = labels_of(ifIndex=str(index), ifName=name, ifDescr=f"descr {name}")
    return [Sample(element, "ifOperStatus", labels, float(oper), at, SampleKind.GAUGE),
            Sample(element, "ifAdminStatus", labels, 1.0, at, SampleKind.GAUGE)]  # fmt: skip


def test_an_ifindex_renumbered_at_a_reboot_is_another_port() -> None:
    rules = TrapRules()
    rules.observe(named("olt-01", 3, "ge-0/0/3", 1, 0.0))
    [down] = rules.observe(named("olt-01", 3, "ge-0/0/3", 2, 60.0))
    rules.observe(named("olt-01", 5, "ge-0/0/5", 1, 60.0))
    # the device reboots and renumbers: ifIndex 3 is now ge-0/0/7 (up), ifIndex 5 a spare (down)
    [gone] = rules.observe(named("olt-01", 3, "ge-0/0/7", 1, 300.0))
    assert gone.state is EventState.RESOLVED and gone.fingerprint == down.fingerprint
    assert "ge-0/0/7" in gone.summary and "renumbered" in gone.summary
    assert rules.observe(named("olt-01", 5, "ge-0/0/9", 2, 300.0)) == []  # not ge-0/0/5's "seen up"
    [new] = rules.observe(named("olt-01", 3, "ge-0/0/7", 2, 360.0))  # the new port, seen up, goes down
    assert new.state is EventState.FIRING and dict(new.labels)["ifName"] == "ge-0/0/7"
    assert rules.active() == [new]


def test_a_port_named_by_a_trap_is_the_same_port_when_polls_name_it_by_its_ifname() -> None:
    rules = TrapRules()  # the linkDown names the port by ifDescr only; the poll has ifName too
    [down] = rules.update(link(LINK_DOWN, 4, at=30.0, descr="descr ge-0/0/4"))
    assert dict(down.labels)["ifName"] == "descr ge-0/0/4"
    assert rules.observe(named("olt-01", 4, "ge-0/0/4", 2, 60.0)) == []  # still down: same alert
    [up] = rules.observe(named("olt-01", 4, "ge-0/0/4", 1, 120.0))
    assert up.state is EventState.RESOLVED and up.fingerprint == down.fingerprint


def test_a_poll_read_before_a_link_down_but_processed_after_it_changes_nothing() -> None:
    """The poll read the port up at 95 s, the linkDown came in at 100 s, the poll's samples are
    processed at 101 s: the reading is older than the trap, so it is no flap (no RESOLVED, no
    second FIRING, no flap penalty)."""
    rules = TrapRules(keep_firing_for=0.0)
    rules.observe(status("olt-01", 3, 1, 0.0))
    [down] = rules.update(link(LINK_DOWN, 3, at=100.0))
    assert down.state is EventState.FIRING
    assert rules.observe(status("olt-01", 3, 1, 95.0)) == []  # stale: ignored
    assert rules.active() == [down]
    assert rules.observe(status("olt-01", 3, 2, 160.0)) == []  # a fresh reading: still down
    [up] = rules.observe(status("olt-01", 3, 1, 220.0))
    assert up.state is EventState.RESOLVED and up.fingerprint == down.fingerprint


def test_a_link_down_that_names_the_port_otherwise_is_the_renumbered_port_and_stays_alerted() -> None:
    """ifIndex 3 was ge-0/0/3; after a renumbering reboot its linkDown names ge-0/0/7 before any
    poll: the alert is ge-0/0/7's, and the next poll (ge-0/0/7, still down) keeps it open."""
    rules = TrapRules()
    rules.observe(named("olt-01", 3, "ge-0/0/3", 1, 0.0))
    [down] = rules.update(link(LINK_DOWN, 3, at=100.0, name="ge-0/0/7"))
    assert down.state is EventState.FIRING and down.label("ifName") == "ge-0/0/7"
    assert rules.observe(named("olt-01", 3, "ge-0/0/7", 2, 160.0)) == []
    assert rules.active() == [down]


def test_restore_keeps_the_name_the_port_is_known_by() -> None:
    before = TrapRules()
    before.observe(status("olt-01", 3, 1, 0.0))
    stored = {"alertname": INTERFACE_DOWN, "element": "olt-01", "ifIndex": "3", "severity": "critical"}
    after = TrapRules()
    after.load_state_dict(before.state_dict())
    after.restore([stored], 100.0)
    after.observe(status("olt-01", 3, 1, 120.0))  # resolves the stored alert
    [again] = after.observe(status("olt-01", 3, 2, 180.0))  # a new outage later
    assert again.label("ifName") == "ge-0/0/3"
    assert after.state_dict()["links"][0][2] == "ge-0/0/3"


def test_two_stored_alerts_for_one_port_both_resolve_when_it_is_up() -> None:
    rules = TrapRules()
    first = {"alertname": INTERFACE_DOWN, "element": "olt-01", "ifIndex": "3", "severity": "critical"}
    second = first | {"ifName": "ge-0/0/3"}
    assert rules.restore([first, second, second], 100.0) == 2  # the same alert twice: taken once
    taken = {e.fingerprint for e in rules.active()}
    events = rules.observe(status("olt-01", 3, 1, 120.0))
    assert {e.fingerprint for e in events if e.state is EventState.RESOLVED} == taken
    assert rules.active() == []


def test_a_port_renumbered_onto_a_subscriber_line_index_resolves_its_open_alert() -> None:
    types = {("olt-01", "3"): 6}
    rules = TrapRules(if_types=lambda element, index: types.get((element, index)))
    rules.observe(named("olt-01", 3, "ge-0/0/3", 1, 0.0))
    [down] = rules.observe(named("olt-01", 3, "ge-0/0/3", 2, 60.0))
    types[("olt-01", "3")] = 251  # a vdsl2 line now
    [gone] = rules.observe(named("olt-01", 3, "vdsl0/1/3", 1, 300.0))
    assert gone.state is EventState.RESOLVED and gone.fingerprint == down.fingerprint
    assert rules.active() == []


# -- identity of a port: renumbering, names by kind, stale readings (review of session 6) ------------


def poll(index: int, name: str, descr: str, oper: int, at: float, element: str = "olt-01") -> list[Sample]:
    labels = labels_of(ifIndex=str(index), ifName=name, ifDescr=descr)
    return [Sample(element, "ifOperStatus", labels, float(oper), at, SampleKind.GAUGE),
            Sample(element, "ifAdminStatus", labels, 1.0, at, SampleKind.GAUGE)]  # fmt: skip


# -- 1. a stale poll reading is checked for renumbering before it is found stale ---------------------


def test_stale_poll_does_not_forget_the_port_a_newer_trap_named() -> None:
    """ifIndex 3 was ge-0/0/3. After a renumbering reboot its linkDown (t=100) names ge-0/0/7:
    ge-0/0/7 fires. A poll *read* at 95 (before the trap: stale, README says "ignored") is
    processed afterwards; it still names the old port. A stale reading must change nothing,
    but the renumber check runs before the staleness check: the live ge-0/0/7 link is forgotten
    and its real alert resolved as "renumbered"."""
    rules = TrapRules()
    rules.observe(poll(3, "ge-0/0/3", "GigabitEthernet0/3", 1, 0.0))
    [down] = rules.update(link(LINK_DOWN, 3, at=100.0, name="ge-0/0/7"))
    assert down.state is EventState.FIRING and down.label("ifName") == "ge-0/0/7"
    assert rules.observe(poll(3, "ge-0/0/3", "GigabitEthernet0/3", 1, 95.0)) == []  # stale: ignored
    assert rules.active() == [down]


# -- 2. a non-unique ifDescr makes every port share an alias (regression vs b39a53b) ------------------


def test_renumbering_is_still_seen_when_ports_share_a_generic_ifdescr() -> None:
    """Many agents give every port the same ifDescr (a chipset / type string). The old check
    (known ifName not among the polled names) saw the renumbering; the alias-set check finds the
    shared ifDescr in both sets, calls it the same port and learns the new ifName as an alias of
    the old port: ge-0/0/3's alert stays open for good, and the new port is alerted as ge-0/0/3."""
    rules = TrapRules()
    rules.observe(poll(3, "ge-0/0/3", "Ethernet Interface", 1, 0.0))
    [down] = rules.observe(poll(3, "ge-0/0/3", "Ethernet Interface", 2, 60.0))
    # reboot, renumbered: ifIndex 3 is now ge-0/0/7 (a spare, down)
    events = rules.observe(poll(3, "ge-0/0/7", "Ethernet Interface", 2, 300.0))
    assert [(e.state, e.fingerprint) for e in events] == [(EventState.RESOLVED, down.fingerprint)]
    assert "renumbered" in events[0].summary


# -- 3. a stale if_names cache entry is learnt as an alias: renumbering never detected -----------------


def test_a_stale_cached_name_does_not_make_the_new_ifname_an_alias_of_the_old_port() -> None:
    """The poller's cache still says ifIndex 3 is ge-0/0/3 when the first poll after a
    renumbering names ge-0/0/7 (down). Before the fix this was "not renumbered yet" and the next
    poll after the cache refresh saw it; now the union heard = {ge-0/0/7, ge-0/0/3} intersects
    and ge-0/0/7 (another port) is learnt as an alias of ge-0/0/3 for good: never detected, and
    ge-0/0/3's alert stays open."""
    cache = {("olt-01", "3"): "ge-0/0/3"}
    rules = TrapRules(if_names=lambda element, index: cache.get((element, index)))
    rules.observe(poll(3, "ge-0/0/3", "GigabitEthernet0/3", 1, 0.0))
    [down] = rules.observe(poll(3, "ge-0/0/3", "GigabitEthernet0/3", 2, 60.0))
    events = rules.observe(poll(3, "ge-0/0/7", "GigabitEthernet0/7", 2, 300.0))  # cache not refreshed yet
    cache[("olt-01", "3")] = "ge-0/0/7"  # refreshed
    events += rules.observe(poll(3, "ge-0/0/7", "GigabitEthernet0/7", 2, 360.0))
    assert [(e.state, e.fingerprint) for e in events] == [(EventState.RESOLVED, down.fingerprint)]
    assert rules.active() == []


# -- 4. link-state.json written by the previous release is refused (same version number) -----------


def test_a_link_state_file_of_the_previous_release_still_loads() -> None:
    """b39a53b wrote version-1 entries [element, ifIndex, ifName, down, armed, admin_down]; HEAD
    still calls its format version 1 but refuses those entries, so after an upgrade every port
    loses its "seen up" state (the first polled "down" after the upgrade raises nothing)."""
    old_file = json.loads(json.dumps({"version": 1, "links": [["olt-01", "3", "ge-0/0/3", False, True, False]]}))
    rules = TrapRules()
    assert rules.load_state_dict(old_file) == 1


# -- 5. a trap by ifDescr only, then one by ifName only, of the same port -------------------------------


def test_a_port_first_named_by_ifdescr_then_by_ifname_is_not_renumbered() -> None:
    """A linkDown names the port by ifDescr only (Cisco style) before any poll; the linkUp (or a
    trap relayed by another path) names it by ifName only: disjoint sets, so the port is
    "renumbered", its alert resolves saying so, and an extra RESOLVED of an alert that never
    fired (the 'new' port's) follows."""
    rules = TrapRules()
    [down] = rules.update(link(LINK_DOWN, 4, at=30.0, descr="GigabitEthernet0/4"))
    events = rules.update(link(LINK_UP, 4, at=90.0, name="Gi0/4"))
    assert "renumbered" not in events[0].summary, events[0].summary
    assert [(e.state, e.fingerprint) for e in events] == [(EventState.RESOLVED, down.fingerprint)]


# -- 7. load_state_dict over known links orphans their open alerts (they no longer resolve) ------------


def test_loading_link_state_over_a_link_with_an_open_alert_keeps_it_resolvable() -> None:
    """Before the fix an "up" resolved _active[link.labels]; now only link.open, which a link
    replaced by load_state_dict() has lost: the alert can never resolve."""
    rules = TrapRules()
    rules.observe(poll(3, "ge-0/0/3", "GigabitEthernet0/3", 1, 0.0))
    [down] = rules.observe(poll(3, "ge-0/0/3", "GigabitEthernet0/3", 2, 60.0))
    rules.load_state_dict(json.loads(json.dumps(rules.state_dict())))
    events = rules.observe(poll(3, "ge-0/0/3", "GigabitEthernet0/3", 1, 120.0))
    assert [e.fingerprint for e in events if e.state is EventState.RESOLVED] == [down.fingerprint]
    assert rules.active() == []


def test_a_reworded_ifdescr_with_the_same_ifname_is_the_same_port() -> None:
    """A firmware upgrade rewords ifDescr; the ifName, unique per device, says it is the same port."""
    rules = TrapRules()
    rules.observe(poll(3, "ge-0/0/3", "GigabitEthernet0/3", 1, 0.0))
    [down] = rules.observe(poll(3, "ge-0/0/3", "GigabitEthernet0/3", 2, 60.0))
    assert rules.observe(poll(3, "ge-0/0/3", "GigabitEthernet 0/3 (10G)", 2, 120.0)) == []
    [up] = rules.observe(poll(3, "ge-0/0/3", "GigabitEthernet 0/3 (10G)", 1, 180.0))
    assert up.state is EventState.RESOLVED and up.fingerprint == down.fingerprint


# -- review 3 of session 6: ports known only by a label, subscriber-line traps, a stale name cache ------

STORED = {"alertname": INTERFACE_DOWN, "element": "olt-01", "ifIndex": "3", "ifName": "ge-0/0/3",
          "severity": "critical"}  # fmt: skip


def r3_link_down(index: int, name: str, at: float) -> Trap:
    varbinds = ((f"{IF_INDEX}.{index}", index), (f"{IF_OPER}.{index}", 2), (f"{IF_NAME}.{index}", name))
    return Trap(address="10.0.0.9", port=50000, element="olt-01", version="2c", trap_oid=LINK_DOWN,
                uptime=4242, varbinds=varbinds, received_at=at, security_name="community#0")  # fmt: skip


def r3_poll(index: int, oper: int, at: float, **names: str) -> list[Sample]:
    labels = labels_of(ifIndex=str(index), **names)
    return [Sample("olt-01", "ifOperStatus", labels, float(oper), at, SampleKind.GAUGE),
            Sample("olt-01", "ifAdminStatus", labels, 1.0, at, SampleKind.GAUGE)]  # fmt: skip


def test_restored_alert_of_a_renumbered_port_resolves_without_link_state() -> None:
    """No link-state.json (missing/corrupt): restore() makes a link with no names, so the first
    poll naming another port at ifIndex 3 (a spare, down) is not seen as a renumbering and the
    old port's alert stays firing for a port that is no longer there."""
    rules = TrapRules()
    assert rules.restore([STORED], 0.0) == 1
    events = rules.observe(r3_poll(3, 2, 60.0, ifName="ge-0/0/7", ifDescr="ge-0/0/7"))
    assert [e.state for e in events] == [EventState.RESOLVED]
    assert rules.active() == []


def test_restored_alert_of_a_renumbered_port_resolves_with_6_field_link_state() -> None:
    """Same with a 6-field (pre-names) link-state entry, which load_state_dict accepts: its ifName
    is not used as the port's last heard name."""
    rules = TrapRules()
    rules.load_state_dict({"version": 1, "links": [["olt-01", "3", "ge-0/0/3", True, True, False]]})
    assert rules.restore([STORED], 0.0) == 1
    events = rules.observe(r3_poll(3, 2, 60.0, ifName="ge-0/0/7", ifDescr="ge-0/0/7"))
    assert [e.state for e in events] == [EventState.RESOLVED]
    assert rules.active() == []


def test_subscriber_lines_raise_nothing_from_traps_either_and_an_old_alert_resolves() -> None:
    """A DSL line's linkDown is a customer's modem going off, as its polled "down" is: no alert.
    An alert it raised before its ifType was known resolves at the next poll or trap."""
    types: dict[tuple[str, str], int] = {}
    rules = TrapRules(if_types=lambda element, index: types.get((element, index)))
    [down] = rules.update(r3_link_down(3, "vdsl0/1/3", 0.0))  # ifType not cached yet: it fires
    types[("olt-01", "3")] = 251  # vdsl2, once the poller knows
    [gone] = rules.observe(r3_poll(3, 2, 60.0, ifName="vdsl0/1/3"))
    assert gone.state is EventState.RESOLVED and gone.fingerprint == down.fingerprint
    assert "subscriber line" in gone.summary and rules.active() == []
    types[("olt-01", "4")] = 251
    assert rules.update(r3_link_down(4, "vdsl0/1/4", 90.0)) == []  # another known line's trap: nothing
    assert rules.observe(r3_poll(4, 2, 120.0, ifName="vdsl0/1/4")) == [] and rules.active() == []


def test_a_nan_status_is_skipped_not_a_crash() -> None:
    rules = TrapRules()
    rules.observe(r3_poll(3, 1, 0.0, ifName="ge-0/0/3"))
    bad = [Sample("olt-01", "ifOperStatus", labels_of(ifIndex="3", ifName="ge-0/0/3"), float("nan"), 60.0,
                  SampleKind.GAUGE)]  # fmt: skip
    assert rules.observe(bad) == []
    [down] = rules.observe(r3_poll(3, 2, 120.0, ifName="ge-0/0/3"))
    assert down.state is EventState.FIRING


def test_renumbered_port_from_a_trap_is_not_named_after_the_old_port() -> None:
    """if_names (the poller's cache, still holding the old name after a renumbering reboot) wins
    over the trap's own ifName for the new link: the new port's alert carries the old port's
    ifName, i.e. the fingerprint of the alert just resolved as "renumbered"."""
    rules = TrapRules(if_names=lambda element, index: "ge-0/0/3")
    rules.observe(r3_poll(3, 1, 0.0, ifName="ge-0/0/3"))
    [old] = rules.observe(r3_poll(3, 2, 60.0, ifName="ge-0/0/3"))
    gone, new = rules.update(r3_link_down(3, "ge-0/0/7", 100.0))
    assert gone.state is EventState.RESOLVED and gone.fingerprint == old.fingerprint
    assert new.state is EventState.FIRING
    assert new.label("ifName") == "ge-0/0/7"
    assert new.fingerprint != old.fingerprint


# -- restore: self-resolving alerts still firing before a restart -----------------------------
def _enterprise_rules() -> TrapRules:
    return TrapRules(
        restart_hold=300.0,
        enterprise={
            "1.3.6.1.4.1.2011": ("HuaweiAlarm", "warning"),
            "1.3.6.1.4.1.2011.2.15.2.4.3.3": EnterpriseRule("OntDyingGasp", Severity.CRITICAL, resolve_after=30.0),
        },
    )


def test_restored_device_restarted_resolves_its_hold_after_it_fired() -> None:
    before = TrapRules(restart_hold=300.0)
    [fired] = before.update(trap(COLD_START, at=1000.0))
    after = TrapRules(restart_hold=300.0)  # vigil restarted at 1100: 200 s of the hold left
    assert after.restore([dict(fired.labels)], 1100.0, fired_at=[1000.0]) == 1
    assert [e.fingerprint for e in after.active()] == [fired.fingerprint]
    assert after.tick(1299.0) == []
    [resolved] = after.tick(1301.0)
    assert resolved.state is EventState.RESOLVED and resolved.fingerprint == fired.fingerprint
    assert (resolved.fired_at, resolved.resolved_at, resolved.severity) == (1000.0, 1300.0, Severity.WARNING)
    assert after.active() == [] and after.tick(5000.0) == []


def test_restored_device_restarted_whose_hold_passed_while_vigil_was_down_resolves_at_once() -> None:
    rules = TrapRules(restart_hold=300.0)
    stored = {"alertname": DEVICE_RESTARTED, "element": "olt-01", "severity": "warning"}
    assert rules.restore([stored, stored], 9000.0, fired_at=[1000.0, 1000.0]) == 1  # taken once
    [resolved] = rules.tick(9000.0)
    assert resolved.resolved_at == 9000.0  # at the restart, not a time vigil was not running
    assert resolved.fired_at == 1000.0


def test_restored_device_restarted_is_extended_by_a_new_restart_trap() -> None:
    rules = TrapRules(restart_hold=300.0)
    [fired] = TrapRules(restart_hold=300.0).update(trap(WARM_START, at=1000.0))
    rules.restore([dict(fired.labels)], 1100.0)  # no start time known: the hold starts now
    assert rules.update(trap(COLD_START, at=1200.0)) == []  # the same alert, still firing
    assert rules.tick(1450.0) == []
    assert [e.resolved_at for e in rules.tick(1600.0)] == [1500.0]


def test_restored_enterprise_alarms_resolve_after_their_rules_hold() -> None:
    before = _enterprise_rules()
    [gasp] = before.update(trap("1.3.6.1.4.1.2011.2.15.2.4.3.3.0.12", at=1000.0))
    [alarm] = before.update(trap("1.3.6.1.4.1.2011.5.25.0.1", at=1000.0))
    gone = {"alertname": "OldAlarm", "element": "olt-01", "severity": "critical", "trapOID": "1.3.6.1.4.1.9.1"}
    after = _enterprise_rules()
    stored = [dict(gasp.labels), dict(alarm.labels), gone]
    assert after.restore(stored, 1010.0, fired_at=[1000.0, 1000.0, 1000.0]) == 3
    assert [(e.fingerprint, e.resolved_at) for e in after.tick(1031.0)] == [(gasp.fingerprint, 1030.0)]
    resolved = after.tick(1301.0)  # the others: restart_hold (no rule names OldAlarm's OID any more)
    assert sorted((e.name, e.resolved_at, e.severity) for e in resolved) == [
        ("HuaweiAlarm", 1300.0, Severity.WARNING),
        ("OldAlarm", 1300.0, Severity.CRITICAL),
    ]
    assert {e.fingerprint for e in resolved} == {alarm.fingerprint, fingerprint_labels(gone)}


def test_restore_skips_alerts_other_rules_raise() -> None:
    rules = TrapRules()
    others = [
        {"alertname": "ElementUnreachable", "element": "olt-01", "severity": "critical"},
        {"alertname": "InterfaceErrorsRising", "element": "olt-01", "ifIndex": "3", "severity": "warning"},
        {"alertname": DEVICE_RESTARTED},  # no element
    ]
    assert rules.restore(others, 100.0) == 0
    assert rules.active() == [] and rules.tick(10_000.0) == []


def test_restored_interface_down_keeps_its_start_time() -> None:
    stored = {"alertname": INTERFACE_DOWN, "element": "olt-01", "ifIndex": "7", "ifName": "gpon0/7",
              "severity": "critical"}  # fmt: skip
    rules = TrapRules(damping=None)
    assert rules.restore([stored], 5000.0, fired_at=[1000.0]) == 1
    [up] = rules.update(link(LINK_UP, 7, at=5100.0, name="gpon0/7"))
    assert up.state is EventState.RESOLVED and (up.fired_at, up.resolved_at) == (1000.0, 5100.0)
