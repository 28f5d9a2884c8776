"""ReachabilityRule: FIRING after N consecutive failed polls, RESOLVED at the first success."""

from __future__ import annotations

import pytest

from collectors.sample import Sample, SampleKind
from detectors.event import EventState, Severity
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
