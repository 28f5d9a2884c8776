"""Recurring alarms: a daily job's spike is reported twice, then recognised as routine."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from detectors.composite import DEFAULT_THRESHOLD, DEFAULTS, CompositeDetector
from detectors.recurrence import RecurringAlarms

T0 = 1_700_000_000.0 - (1_700_000_000.0 % 86_400)
STEP = 300.0
DAY = int(86_400 / STEP)
JOB = 3 * 12  # 03:00, a nightly backup


def times(n: int) -> np.ndarray:
    return T0 + STEP * np.arange(n)


def nightly_job(days: int = 10, seed: int = 0) -> np.ndarray:
    """A diurnal series with a spike of about the same height at 03:00 every day but the first."""
    rng = np.random.default_rng(seed)
    n = days * DAY
    x = 100 + 50 * np.sin(2 * np.pi * np.arange(n) / DAY) + rng.normal(0, 2, n)
    for d in range(1, days):
        x[d * DAY + JOB] += 120 + rng.normal(0, 5)
    return x


def alarms(x: np.ndarray, **settings: object) -> list[tuple[int, int]]:
    """(day, step of the day) of every score >= the shipped threshold after the first day."""
    cfg = replace(DEFAULTS, **settings)
    s = CompositeDetector(config=cfg).score_stream(x[:, None], times(len(x)))[:, 0]
    return [(int(h) // DAY, int(h) % DAY) for h in np.flatnonzero(s >= DEFAULT_THRESHOLD) if h >= DAY]


def test_a_daily_job_is_reported_twice_then_muted() -> None:
    x = nightly_job()
    without = [a for a in alarms(x, recur_repeats=0) if a[1] == JOB]
    assert len(without) >= 6  # the record forgets within a day: the job alarms day after day
    with_ = [a for a in alarms(x) if a[1] == JOB]
    assert len(with_) == 2 and with_ == without[:2]


def test_an_alarm_at_another_time_or_of_another_size_is_still_reported() -> None:
    x = nightly_job()
    x[8 * DAY + 150] += 120  # the same spike at 12:30
    x[9 * DAY + JOB] += 180  # the job's spike, but 2.5 times its usual height
    got = alarms(x)
    assert (8, 150) in got and (9, JOB) in got
    assert not any(d in (5, 6, 7) and s == JOB for d, s in got)  # the routine ones stay muted


def test_a_job_that_moves_by_more_than_the_tolerance_is_news() -> None:
    x = nightly_job()
    x[7 * DAY + JOB] -= 120  # day 7: the job runs an hour late
    x[7 * DAY + JOB + 12] += 120
    assert (7, JOB + 12) in alarms(x)
    assert (7, JOB + 12) not in alarms(x, recur_tolerance=3600.0)


def test_score_update_on_subsets_gives_each_series_its_own_numbers() -> None:
    X = np.stack([nightly_job(seed=1), nightly_job(seed=2), nightly_job(seed=3)], axis=1)
    rng = np.random.default_rng(5)
    hook = CompositeDetector()
    fed: list[list[int]] = [[], [], []]
    got: list[list[float]] = [[], [], []]
    for i, x in enumerate(X):
        cols = np.flatnonzero(rng.random(3) < 0.9)
        rng.shuffle(cols)
        for c, v in zip(cols, hook.score_update(cols, x[cols], times(len(X))[i] + np.zeros(len(cols))), strict=True):
            fed[c].append(i)
            got[c].append(v)
    muted = 0
    for c in range(3):
        alone = CompositeDetector().score_stream(X[fed[c], c][:, None], times(len(X))[fed[c]])[:, 0]
        np.testing.assert_array_equal(np.nan_to_num(np.array(got[c])), alone)
        muted += int((hook.recur_.count_[:, c] >= 1).any())
    assert muted >= 2  # the memory was exercised through the column gathers


def test_state_round_trip_and_a_state_saved_before_the_memory_existed() -> None:
    X = nightly_job()[:, None]
    cut = 5 * DAY
    est = CompositeDetector()
    est.score_stream(X[:cut], times(cut))
    assert (est.recur_.count_ >= 1).any()
    state = est.state_dict()
    twin = CompositeDetector().load_state_dict(state)
    np.testing.assert_array_equal(
        est.score_stream(X[cut:], times(len(X))[cut:]), twin.score_stream(X[cut:], times(len(X))[cut:])
    )
    # a state written by the code before recurring alarms: no recur.* arrays, no recur_* settings
    old = {k: v for k, v in state.items() if not k.startswith("recur.")}
    old["config"] = {k: v for k, v in state["config"].items() if not k.startswith("recur_")}
    restored = CompositeDetector().load_state_dict(old)
    assert np.isnan(restored.recur_.time_).all()
    np.testing.assert_array_equal(restored.stat_mean_, state["stat_mean_"])
    with pytest.raises(ValueError, match="other settings"):  # but a changed setting still refuses
        CompositeDetector().load_state_dict(old | {"config": old["config"] | {"warmup": 7}})
    with pytest.raises(ValueError, match="other settings"):  # and so does one missing that is not new
        CompositeDetector().load_state_dict(old | {"config": {k: v for k, v in old["config"].items() if k != "warmup"}})
    with pytest.raises(ValueError, match="recur.time_"):  # and a new state must be whole
        CompositeDetector().load_state_dict({k: v for k, v in state.items() if k != "recur.time_"})


def test_off_means_no_memory_and_old_numbers() -> None:
    est = CompositeDetector(config=replace(DEFAULTS, recur_repeats=0)).fit(np.ones((3, 4)), times(3))
    assert est.recur_ is None and not any(k.startswith("recur.") for k in est.state_dict())
    with pytest.raises(ValueError, match="recur_tolerance"):
        CompositeDetector(config=replace(DEFAULTS, recur_tolerance=50_000.0)).fit(np.ones((3, 4)), times(3))
    with pytest.raises(ValueError, match="recur_repeats"):
        CompositeDetector(config=replace(DEFAULTS, recur_repeats=-1)).fit(np.ones((3, 4)), times(3))


# -- the memory on its own -----------------------------------------------------------------------


def remember(mem: RecurringAlarms, col: int, value: float, t: float, level: float = 0.0) -> tuple[int, bool]:
    cols = np.array([col])
    slot, suppress = mem.check(cols, np.array([value]), np.array([t]), np.array([level]))
    mem.commit(cols, np.array([value]), np.array([t]), slot, np.array([True]))
    return int(slot[0]), bool(suppress[0])


def test_memory_matches_whole_days_within_tolerance_and_ratio() -> None:
    mem = RecurringAlarms(tolerance=1800.0, ratio=0.3, repeats=2).resize(3)
    assert remember(mem, 1, 10.0, T0) == (-1, False)  # first: remembered
    assert remember(mem, 1, 10.0, T0 + 3 * 3600) == (-1, False)  # 3 h later: another alarm
    day2 = T0 + 86_400 + 1500
    slot, suppress = remember(mem, 1, 12.0, day2)  # next day, 25 min later, 20 % off: a repeat
    assert slot == 0 and not suppress  # the second occurrence is still reported
    assert remember(mem, 1, 11.0, day2 + 86_400) == (0, True)  # the third is routine
    assert remember(mem, 1, 20.0, day2 + 2 * 86_400) == (-1, False)  # 2x the deviation: news
    assert remember(mem, 1, 11.0, day2 + 3 * 86_400 + 2400) == (-1, False)  # 40 min off: news
    assert mem.count_[:, [0, 2]].sum() == 0 and np.isnan(mem.time_[:, [0, 2]]).all()  # other series untouched


def test_memory_forgives_one_missed_day_but_not_three() -> None:
    mem = RecurringAlarms().resize(1)
    for d in (0, 1):
        remember(mem, 0, 5.0, T0 + d * 86_400)
    assert remember(mem, 0, 5.0, T0 + 3 * 86_400)[1]  # day 2 skipped, 48 h later: still routine
    assert remember(mem, 0, 5.0, T0 + 6 * 86_400) == (-1, False)  # 72 h later: forgotten


def test_memory_replaces_its_oldest_slot_and_validates() -> None:
    mem = RecurringAlarms(slots=2).resize(1)
    for k in range(3):
        remember(mem, 0, 10.0 + k, T0 + k * 7200)
    assert sorted(mem.value_[:, 0].tolist()) == [11.0, 12.0]
    mem.resize(4)
    assert mem.time_.shape == (2, 4) and np.isnan(mem.time_[:, 1:]).all()
    with pytest.raises(ValueError, match="grow"):
        mem.resize(2)
    for bad in ({"slots": 0}, {"tolerance": -1.0}, {"ratio": -0.1}, {"repeats": 0}, {"min_age": 5.0, "max_age": 1.0}):
        with pytest.raises(ValueError):
            RecurringAlarms(**bad)  # type: ignore[arg-type]


def test_the_repeat_count_saturates_instead_of_wrapping() -> None:
    mem = RecurringAlarms().resize(1)
    mem.value_[0, 0], mem.time_[0, 0], mem.count_[0, 0] = 10.0, T0, np.iinfo(np.int16).max
    assert remember(mem, 0, 10.0, T0 + 86_400) == (0, True)
    assert mem.count_[0, 0] == np.iinfo(np.int16).max  # int16 + 1 would have wrapped to -32768
    assert remember(mem, 0, 10.0, T0 + 2 * 86_400) == (0, True)  # still routine the next day


def test_a_new_alarm_replaces_the_one_heard_of_longest_ago_not_a_refreshed_daily_job() -> None:
    mem = RecurringAlarms(slots=2).resize(1)
    remember(mem, 0, 10.0, T0)  # day 0 03:00: the job
    remember(mem, 0, 50.0, T0 + 2 * 3600)  # day 0 05:00: a one-off
    assert remember(mem, 0, 10.0, T0 + 86_400)[0] == 0  # day 1: the job repeats, its slot refreshed
    remember(mem, 0, 90.0, T0 + 86_400 + 5 * 3600)  # another alarm: the one-off's slot goes
    assert sorted(mem.value_[:, 0].tolist()) == [10.0, 90.0]
    assert remember(mem, 0, 10.0, T0 + 2 * 86_400) == (0, True)  # day 2: the job is routine


def test_recurrence_new_alarm_takes_an_empty_slot_before_the_oldest_one() -> None:
    mem = RecurringAlarms(slots=3).resize(2)
    mem.time_[:, 0] = [100.0, np.nan, 50.0]
    mem.time_[:, 1] = [np.nan, np.nan, np.nan]
    cols = np.array([0, 1])
    mem.commit(cols, np.array([1.0, 2.0]), np.array([1e6, 1e6]), np.array([-1, -1]), np.array([True, True]))
    assert mem.time_[1, 0] == 1e6 and mem.time_[0, 0] == 100.0 and mem.time_[2, 0] == 50.0
    assert mem.time_[0, 1] == 1e6
