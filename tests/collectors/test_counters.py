"""RateCalculator: table-driven cases of first samples, wraps, resets and impossible rates."""

from __future__ import annotations

import pytest

from collectors.counters import RateCalculator

W32 = 1 << 32
W64 = 1 << 64

# (case, [(value, timestamp, uptime)], width, max_rate, expected rate of the last update)
CASES = [
    ("first sample", [(100, 0.0, None)], 64, None, None),
    ("steady increase", [(100, 0.0, None), (1100, 10.0, None)], 64, None, 100.0),
    ("no change", [(5, 0.0, 1), (5, 60.0, 6001)], 32, None, 0.0),
    ("wrap 32", [(W32 - 100, 0.0, None), (400, 10.0, None)], 32, None, 50.0),
    ("wrap 64", [(W64 - 1000, 0.0, None), (9000, 5.0, None)], 64, None, 2000.0),
    ("wrap 32 with uptime", [(W32 - 10, 0.0, 100), (10, 2.0, 300)], 32, None, 10.0),
    (
        "decrease near zero is a reset, not a wrap",
        [(1000, 0.0, None), (10, 10.0, None)],
        32,
        None,
        None,
    ),
    ("64-bit decrease is a reset", [(10**12, 0.0, None), (5, 10.0, None)], 64, None, None),
    ("uptime backwards = agent reset", [(100, 0.0, 5000), (200, 10.0, 100)], 64, None, None),
    ("reset re-baselines", [(100, 0.0, 5000), (200, 10.0, 100), (700, 20.0, 1100)], 64, None, 50.0),
    ("impossible rate", [(0, 0.0, None), (10**9, 1.0, None)], 64, 1e6, None),
    ("rate at the bound is kept", [(0, 0.0, None), (10**6, 1.0, None)], 64, 1e6, 1e6),
    ("wrap above max_rate", [(W32 - 1000, 0.0, None), (1000, 1.0, None)], 32, 1e3, None),
    ("wrap within max_rate", [(W32 - 1000, 0.0, None), (1000, 1.0, None)], 32, 3e3, 2000.0),
    # a 32-bit octet counter on a 1 Gbit/s link (max_rate 1.5 x 125e6 octets/s): in 30 s it can
    # advance 3.75e9, more than half its range; the speed says such a wrap is a wrap
    ("32-bit wrap past half the range, within the speed",
     [(W32 - 10**6, 0.0, 5), (3 * 10**9 - 10**6, 30.0, 3005)], 32, 1.875e8, 1e8),
    ("32-bit wrap past half the range, without a speed: a reset",
     [(W32 - 10**6, 0.0, 5), (3 * 10**9 - 10**6, 30.0, 3005)], 32, None, None),
    ("32-bit fall to near zero above the speed: a reset",
     [(3 * 10**9, 0.0, None), (10, 10.0, None)], 32, 1.875e7, None),
    ("64-bit wrap past half the range: never", [(W64 - 10, 0.0, None), (W64 // 2 + 10, 1.0, None)], 64, 1e30, None),
    (
        "after impossible, re-baselined",
        [(0, 0.0, None), (10**9, 1.0, None), (10**9 + 10, 2.0, None)],
        64,
        1e6,
        10.0,
    ),
    ("time did not advance", [(0, 5.0, None), (100, 5.0, None)], 64, None, None),
    (
        "value wider than 32 bits is not a 32-bit wrap",
        [(W32 + 5, 0.0, None), (1, 1.0, None)],
        32,
        None,
        None,
    ),
]


# (case, [(value, timestamp, discontinuity marker)], width, expected rate of the last update)
DISCONTINUITY_CASES = [
    ("same marker", [(100, 0.0, 0), (1100, 10.0, 0)], 64, 100.0),
    ("marker changed: no sample", [(100, 0.0, 0), (1100, 10.0, 4711)], 64, None),
    ("marker changed, counter went down", [(10**9, 0.0, 0), (5, 10.0, 4711)], 32, None),
    ("after the change, rates resume", [(100, 0.0, 0), (1100, 10.0, 4711), (2100, 20.0, 4711)], 64, 100.0),
    ("marker unknown before", [(100, 0.0, None), (1100, 10.0, 4711)], 64, 100.0),
    ("marker unknown now", [(100, 0.0, 0), (1100, 10.0, None)], 64, 100.0),
    ("wrap with a steady marker", [(W32 - 100, 0.0, 7), (400, 10.0, 7)], 32, 50.0),
]


@pytest.mark.parametrize(
    ("updates", "width", "expected"),
    [pytest.param(u, w, e, id=case) for case, u, w, e in DISCONTINUITY_CASES],
)
def test_discontinuity(
    updates: list[tuple[int, float, int | None]], width: int, expected: float | None
) -> None:
    calc = RateCalculator()
    rate = None
    for value, timestamp, marker in updates:
        rate = calc.update("k", value, timestamp, width=width, discontinuity=marker)
    if expected is None:
        assert rate is None
    else:
        assert rate == pytest.approx(expected)


# What the profile's counter type means for a decrease of 1000 from just below 2**32.
@pytest.mark.parametrize(
    ("column_type", "expected"),
    [("counter32", 100.0), ("counter64", None)],
)
def test_width_comes_from_the_profile_type(column_type: str, expected: float | None) -> None:
    from collectors.profiles import ColumnType

    width = ColumnType(column_type).width
    calc = RateCalculator()
    calc.update("k", W32 - 500, 0.0, width=width)
    rate = calc.update("k", 500, 10.0, width=width)
    assert rate == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("updates", "width", "max_rate", "expected"),
    [pytest.param(u, w, m, e, id=case) for case, u, w, m, e in CASES],
)
def test_rate(
    updates: list[tuple[int, float, int | None]],
    width: int,
    max_rate: float | None,
    expected: float | None,
) -> None:
    calc = RateCalculator()
    rate = None
    for value, timestamp, uptime in updates:
        rate = calc.update("k", value, timestamp, width=width, uptime=uptime, max_rate=max_rate)
    if expected is None:
        assert rate is None
    else:
        assert rate == pytest.approx(expected)


def test_keys_are_independent() -> None:
    calc = RateCalculator()
    assert calc.update(("if", 1), 0, 0.0) is None
    assert calc.update(("if", 2), 1000, 0.0) is None
    assert calc.update(("if", 1), 10, 1.0) == pytest.approx(10.0)
    assert calc.update(("if", 2), 1500, 1.0) == pytest.approx(500.0)


def test_forget_and_retain_drop_baselines() -> None:
    calc = RateCalculator()
    for key in ("a", "b", "c"):
        calc.update(key, 1, 0.0)
    calc.forget("a")
    calc.retain({"b"})
    assert len(calc) == 1
    assert calc.update("a", 2, 1.0) is None
    assert calc.update("c", 2, 1.0) is None
    assert calc.update("b", 3, 1.0) == pytest.approx(2.0)


@pytest.mark.parametrize(("value", "width"), [(-1, 64), (1, 16)])
def test_rejects_bad_input(value: int, width: int) -> None:
    with pytest.raises(ValueError):
        RateCalculator().update("k", value, 0.0, width=width)
