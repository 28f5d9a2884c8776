"""ReachabilityRule: FIRING after N consecutive failed polls, RESOLVED at the first success."""

from __future__ import annotations

import pytest

from collectors.sample import Sample, SampleKind
from detectors.event import EventState, Severity, fingerprint_labels
from detectors.reachability import ELEMENT_UNREACHABLE, ReachabilityRule


def up(element: str, value: int, t: float) -> Sample:
    return Sample(element, "up", (), value, t, SampleKind.GAUGE)


# (case, up values one poll per 60 s, failures, expected (poll number, state) transitions)
CASES = [
    ("always up", [1, 1, 1, 1], 3, []),
    ("two failures are not an outage", [1, 0, 0, 1, 0, 0, 1], 3, []),
    ("fires at the third failure", [1, 0, 0, 0, 0], 3, [(3, "firing")]),
    ("resolves at the first success", [0, 0, 0, 0, 1, 1], 3, [(2, "firing"), (4, "resolved")]),
    ("fires once per outage", [0, 0, 0, 1, 0, 0, 0], 3, [(2, "firing"), (3, "resolved"), (6, "firing")]),
    ("failures=1 fires at once", [0, 1], 1, [(0, "firing"), (1, "resolved")]),
]


@pytest.mark.parametrize(
    ("values", "failures", "expected"),
    [pytest.param(v, f, e, id=case) for case, v, f, e in CASES],
)
def test_transitions(values: list[int], failures: int, expected: list[tuple[int, str]]) -> None:
    rule = ReachabilityRule(failures=failures)
    seen: list[tuple[int, str]] = []
    for i, value in enumerate(values):
        for event in rule.update([up("olt-1", value, 60.0 * i)]):
            seen.append((i, str(event.state)))
    assert seen == expected


def test_event_fields() -> None:
    rule = ReachabilityRule(failures=2)
    assert rule.update([up("dslam-7", 0, 100.0)]) == []
    (fired,) = rule.update([up("dslam-7", 0, 160.0)])
    assert fired.name == ELEMENT_UNREACHABLE and fired.state is EventState.FIRING
    assert fired.labels == (
        ("alertname", ELEMENT_UNREACHABLE),
        ("element", "dslam-7"),
        ("severity", "critical"),
    )
    assert fired.severity is Severity.CRITICAL and fired.detector == "reachability"
    assert fired.active_at == 100.0 and fired.fired_at == 160.0 and fired.resolved_at is None
    assert fired.value == 0.0 and fired.expected == 1.0 and 0.5 <= fired.score < 1
    assert "2 consecutive" in fired.summary
    assert rule.firing() == ["dslam-7"]
    (resolved,) = rule.update([up("dslam-7", 1, 220.0)])
    assert resolved.state is EventState.RESOLVED and resolved.resolved_at == 220.0
    assert resolved.fingerprint == fired.fingerprint
    assert resolved.active_at == 100.0 and resolved.fired_at == 160.0
    assert rule.firing() == []


def test_elements_are_independent_and_reported_count_wins() -> None:
    rule = ReachabilityRule(failures=3)
    batch = [
        up("a", 0, 10.0),
        Sample("a", "vigil_consecutive_failures", (), 5, 10.0, SampleKind.GAUGE),
        up("b", 0, 10.0),
        Sample("x", "ifHCInOctets", (("ifIndex", "1"),), 0, 10.0, SampleKind.COUNTER),
    ]
    events = rule.update(batch)
    assert [(e.element, e.state) for e in events] == [("a", EventState.FIRING)]
    assert rule.firing() == ["a"]


def test_rejects_zero_failures() -> None:
    with pytest.raises(ValueError):
        ReachabilityRule(failures=0)


# -- restore: ElementUnreachable still firing before a restart ---------------------------------
STORED = {"alertname": ELEMENT_UNREACHABLE, "element": "olt-1", "severity": "critical"}


def test_restored_alert_resolves_at_the_first_good_poll_under_its_own_fingerprint() -> None:
    before = ReachabilityRule(failures=3)
    fired = [e for i in range(3) for e in before.update([up("olt-1", 0, 60.0 * i)])]
    assert [e.state for e in fired] == [EventState.FIRING]

    after = ReachabilityRule(failures=3)  # vigil restarted: nothing in memory
    assert after.restore([dict(fired[0].labels), {"alertname": "Other", "element": "olt-1"}], 5000.0,
                         fired_at=[120.0, 50.0]) == 1  # fmt: skip
    assert after.firing() == ["olt-1"]
    [resolved] = after.update([up("olt-1", 1, 5060.0)])
    assert resolved.state is EventState.RESOLVED
    assert resolved.fingerprint == fired[0].fingerprint
    assert (resolved.fired_at, resolved.resolved_at) == (120.0, 5060.0)  # keeps its start time
    assert after.firing() == [] and after.update([up("olt-1", 1, 5120.0)]) == []


def test_restored_alert_of_an_element_still_down_stays_firing_without_a_second_firing() -> None:
    rule = ReachabilityRule(failures=3)
    assert rule.restore([STORED], 5000.0) == 1  # no start time given: now
    polls = [up("olt-1", 0, 5000.0 + 60.0 * i) for i in range(1, 6)]
    assert [e for p in polls for e in rule.update([p])] == []
    [resolved] = rule.update([up("olt-1", 1, 5400.0)])
    assert resolved.state is EventState.RESOLVED and resolved.fired_at == 5000.0
    # a new outage afterwards fires again as usual
    assert [e.state for i in range(3) for e in rule.update([up("olt-1", 0, 5460.0 + 60 * i)])] == [
        EventState.FIRING
    ]


def test_restore_keeps_the_stored_labels_and_skips_elements_already_firing() -> None:
    rule = ReachabilityRule(failures=1)
    [live] = rule.update([up("olt-2", 0, 10.0)])
    odd = {**STORED, "element": "olt-3", "area": "tianhe"}  # labels of another vigil version
    assert rule.restore([{**STORED, "element": "olt-2"}, odd, {"alertname": ELEMENT_UNREACHABLE}], 20.0) == 1
    events = rule.update([up("olt-2", 1, 30.0), up("olt-3", 1, 30.0)])
    assert [(e.element, e.fingerprint) for e in events] == [
        ("olt-2", live.fingerprint),
        ("olt-3", fingerprint_labels(odd)),
    ]
