"""TrapRules: Trap values in, Event values out at once; restart events resolve themselves."""

from __future__ import annotations

import pytest

from collectors.trap import COLD_START, LINK_DOWN, LINK_UP, WARM_START, Trap
from detectors.event import Event, EventState, Severity
from detectors.traps import (
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
