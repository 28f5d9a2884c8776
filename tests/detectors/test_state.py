"""ConditionTracker: Prometheus alerting-rule semantics, table-driven."""

from __future__ import annotations

import json

import pytest

from detectors.event import EventState
from detectors.state import ConditionStatus, ConditionTracker, FlapDamping

P, F, R = EventState.PENDING, EventState.FIRING, EventState.RESOLVED
T, _ = True, False

CASES = {
    # name: (for_, keep_firing_for, [(now, active)], [expected transition per step])
    "pending then firing after for_": (
        120.0,
        0.0,
        [(0, T), (60, T), (120, T), (180, T)],
        [P, None, F, None],
    ),
    "pending dropped before for_": (
        120.0,
        0.0,
        [(0, T), (60, T), (90, _), (150, _)],
        [P, None, None, None],
    ),
    "pending dropped then active again restarts the hold": (
        120.0,
        0.0,
        [(0, T), (60, _), (120, T), (180, T), (240, T)],
        [P, None, P, None, F],
    ),
    "for_ zero fires at once": (0.0, 0.0, [(0, T), (60, T), (120, _)], [F, None, R]),
    "resolves on first inactive step without keep_firing_for": (
        60.0,
        0.0,
        [(0, T), (60, T), (120, _), (180, _)],
        [P, F, R, None],
    ),
    "keep_firing_for absorbs flaps: one FIRING, one RESOLVED": (
        120.0,
        300.0,
        [
            (0, T), (60, T), (120, T),  # fires
            (180, _), (240, T), (300, _), (360, _), (420, T),  # flapping
            (480, _), (540, _), (600, _), (660, _), (720, _), (780, _),  # quiet from 480
        ],
        [P, None, F, None, None, None, None, None, None, None, None, None, None, R],
    ),
    "resolved condition that comes back is a new pending": (
        60.0,
        0.0,
        [(0, T), (60, T), (120, _), (180, T), (240, T)],
        [P, F, R, P, F],
    ),
    "inactive unknown key is a no-op": (60.0, 0.0, [(0, _), (60, _)], [None, None]),
}  # fmt: skip


@pytest.mark.parametrize(("for_", "keep", "steps", "expected"), CASES.values(), ids=CASES.keys())
def test_transitions(
    for_: float,
    keep: float,
    steps: list[tuple[float, bool]],
    expected: list[EventState | None],
) -> None:
    tracker: ConditionTracker[str] = ConditionTracker(for_=for_, keep_firing_for=keep)
    got = [tracker.update("k", active, now) for now, active in steps]
    assert got == expected


def test_stamps_follow_the_lifecycle() -> None:
    tracker: ConditionTracker[str] = ConditionTracker(for_=120.0, keep_firing_for=300.0)
    tracker.update("k", True, 1000.0)
    assert tracker.status("k") == ConditionStatus(P, active_at=1000.0)
    tracker.update("k", True, 1060.0)
    tracker.update("k", True, 1120.0)
    assert tracker.status("k") == ConditionStatus(F, active_at=1000.0, fired_at=1120.0)
    tracker.update("k", False, 1180.0)
    assert tracker.status("k") == ConditionStatus(F, active_at=1000.0, fired_at=1120.0)
    assert tracker.update("k", False, 1480.0) is R
    assert tracker.status("k") == ConditionStatus(R, 1000.0, fired_at=1120.0, resolved_at=1480.0)
    # a resolved condition stays visible until the key's next update, then is purged
    assert "k" in tracker
    assert tracker.update("k", False, 1540.0) is None
    assert "k" not in tracker and tracker.status("k") is None and len(tracker) == 0


def test_dropped_pending_is_exposed_once() -> None:
    tracker: ConditionTracker[str] = ConditionTracker(for_=120.0)
    tracker.update("a", True, 0.0)
    tracker.update("b", True, 0.0)
    tracker.update("a", False, 60.0)
    assert tracker.status("a") is None
    assert tracker.pop_dropped() == ["a"]
    assert tracker.pop_dropped() == []
    assert list(tracker) == ["b"]


def test_keys_are_independent() -> None:
    tracker: ConditionTracker[tuple[str, int]] = ConditionTracker(for_=60.0)
    assert tracker.update(("x", 1), True, 0.0) is P
    assert tracker.update(("x", 2), True, 30.0) is P
    assert tracker.update(("x", 1), True, 60.0) is F
    assert tracker.update(("x", 2), True, 60.0) is None
    assert dict(tracker.items())[("x", 2)].state is P


def test_a_key_can_be_given_a_longer_for() -> None:
    tracker: ConditionTracker[str] = ConditionTracker(for_=60.0)
    assert tracker.update("spiky", True, 0.0, for_=600.0) is P
    assert tracker.update("spiky", True, 300.0, for_=600.0) is None  # past the tracker's 60 s
    assert tracker.update("spiky", True, 600.0, for_=600.0) is F
    assert tracker.update("plain", True, 0.0) is P
    assert tracker.update("plain", True, 60.0) is F
    assert tracker.update("instant", True, 0.0, for_=0.0) is F


def test_forget_drops_without_transition() -> None:
    tracker: ConditionTracker[str] = ConditionTracker(for_=0.0)
    tracker.update("k", True, 0.0)
    tracker.forget("k")
    assert tracker.status("k") is None and tracker.pop_dropped() == []


@pytest.mark.parametrize(("for_", "keep"), [(-1.0, 0.0), (0.0, -1.0)])
def test_negative_durations_rejected(for_: float, keep: float) -> None:
    with pytest.raises(ValueError):
        ConditionTracker(for_=for_, keep_firing_for=keep)


# -- flap damping ----------------------------------------------------------------------------


def flapping(tracker: ConditionTracker[str], period: float, cycles: int, start: float = 0.0) -> list[EventState]:
    """Up for one step, down for the rest of ``period``, steps of 60 s; the transitions."""
    out = []
    t = start
    for _ in range(cycles):
        for k in range(int(period // 60)):
            tr = tracker.update("port", k == 0, t)
            if tr is not None:
                out.append(tr)
            t += 60.0
    return out


def test_without_damping_a_slow_flap_is_a_storm() -> None:
    tracker: ConditionTracker[str] = ConditionTracker(for_=0.0, keep_firing_for=120.0)
    got = flapping(tracker, period=600.0, cycles=10)
    assert got.count(F) == 10 and got.count(R) == 10


def test_damping_turns_the_storm_into_one_event() -> None:
    tracker: ConditionTracker[str] = ConditionTracker(
        for_=0.0, keep_firing_for=120.0, damping=FlapDamping()
    )
    got = flapping(tracker, period=600.0, cycles=10)
    # the first flaps pass (penalty below suppress), then the port is held firing
    assert got.count(F) <= 3
    assert tracker.flapping("port") and tracker.status("port") is not None
    assert tracker.status("port").state is F and tracker.status("port").flapping  # type: ignore[union-attr]
    # quiet: the penalty decays below reuse, then keep_firing_for, then one RESOLVED
    quiet = [tracker.update("port", False, 6000.0 + 60.0 * k) for k in range(120)]
    assert [q for q in quiet if q is not None] == [R]
    assert not tracker.flapping("port")


def test_damping_holds_a_fast_flap_in_one_firing() -> None:
    tracker: ConditionTracker[str] = ConditionTracker(
        for_=120.0, keep_firing_for=0.0, damping=FlapDamping()
    )
    got = flapping(tracker, period=120.0, cycles=20)  # up 1 min, down 1 min: never 2 min up
    assert got.count(F) == 1 and R not in got[got.index(F):]


def test_penalty_decays_with_half_life_and_is_capped() -> None:
    d = FlapDamping(half_life=100.0, max_suppress=200.0)
    tracker: ConditionTracker[str] = ConditionTracker(for_=0.0, damping=d)
    tracker.update("k", True, 0.0)
    assert tracker.penalty("k", 100.0) == pytest.approx(500.0)
    for i in range(1, 20):
        tracker.update("k", False, i - 0.5)
        tracker.update("k", True, float(i))
    assert tracker.penalty("k", 19.0) <= d.ceiling == pytest.approx(750.0 * 4)


def test_state_dict_round_trip() -> None:
    a: ConditionTracker[int] = ConditionTracker(for_=60.0, keep_firing_for=60.0, damping=FlapDamping())
    for i, active in enumerate([True, True, False, True, True, False]):
        a.update(7, active, 60.0 * i)
    b: ConditionTracker[int] = ConditionTracker(for_=60.0, keep_firing_for=60.0, damping=FlapDamping())
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert dict(b.items()) == dict(a.items()) and b.penalty(7, 400.0) == a.penalty(7, 400.0)
    steps = [(True, 400.0), (False, 460.0), (False, 520.0), (False, 580.0)]
    assert [a.update(7, x, t) for x, t in steps] == [b.update(7, x, t) for x, t in steps]
    with pytest.raises(ValueError, match="malformed"):
        b.load_state_dict({"conditions": [[1, "nope", 0, None, None, None]], "flaps": []})


def test_invalid_damping() -> None:
    with pytest.raises(ValueError):
        FlapDamping(reuse=3000.0)
