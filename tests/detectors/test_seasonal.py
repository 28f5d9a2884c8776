"""SeasonalBaseline: estimator contract, diurnal profile, level shifts, scale guard, batching."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from detectors.seasonal import SeasonalBaseline

T0 = 1_700_000_000.0 - (1_700_000_000.0 % 86_400)  # a midnight UTC
STEP = 300.0  # 5-minute samples
DAY = int(86_400 / STEP)


def diurnal(n: int, n_series: int = 1, noise: float = 1.0, seed: int = 0) -> np.ndarray:
    """Daily sine around 100 with amplitude 50, plus noise; shape (n, n_series)."""
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * np.arange(n) / DAY
    base = 100 + 50 * np.sin(phase)[:, None]
    return base + rng.normal(0, noise, size=(n, n_series))


def times(n: int) -> np.ndarray:
    return T0 + STEP * np.arange(n)


def test_clone_copies_params_not_state() -> None:
    est = SeasonalBaseline(n_bins=24, alpha=0.1).fit(diurnal(100), times(100))
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "profile_")


def test_fit_returns_self_and_learns_trailing_underscore_state() -> None:
    est = SeasonalBaseline()
    assert [k for k in vars(est) if k.endswith("_")] == []
    assert est.fit(diurnal(10, 3), times(10)) is est
    assert est.partial_fit(diurnal(10, 3), times(10)) is est
    assert est.profile_.shape == est.scale_.shape == est.count_.shape == (48, 3)
    assert est.level_.shape == est.n_seen_.shape == (3,)
    assert est.n_seen_.tolist() == [20, 20, 20]


def test_scoring_before_fit_raises() -> None:
    with pytest.raises(NotFittedError):
        SeasonalBaseline().score_samples(np.ones(2), T0)


def test_invalid_params_raise_with_the_name() -> None:
    with pytest.raises(ValueError, match="level_alpha"):
        SeasonalBaseline(level_alpha=0.0).fit(np.ones(2), T0)


def test_diurnal_normal_day_scores_low_and_spike_high() -> None:
    n = 4 * DAY
    est = SeasonalBaseline().fit(diurnal(n, noise=2.0), times(n))
    nxt = diurnal(n + DAY, noise=2.0, seed=1)[n:]
    z = [abs(est.deviation(nxt[i], T0 + STEP * (n + i))[0]) for i in range(0, DAY, 7)]
    assert np.percentile(z, 95) < 4.0  # the swing of +-50 is expected, not anomalous
    peak = nxt[DAY // 4].copy()  # at the daily peak (150)
    assert abs(est.deviation(peak, T0 + STEP * (n + DAY // 4))[0]) < 4.0
    spike = peak + 40.0
    assert abs(est.deviation(spike, T0 + STEP * (n + DAY // 4))[0]) > 8.0
    assert est.decision_function(spike, T0 + STEP * (n + DAY // 4))[0] < 0


def test_level_shift_is_followed_by_the_level() -> None:
    n = 3 * DAY
    x = diurnal(n + 2 * DAY, noise=1.0)
    x[n:] += 30.0
    est = SeasonalBaseline(level_alpha=0.02)
    resid = np.array([est.step(x[i], T0 + STEP * i) for i in range(n + 2 * DAY)])[:, 0]
    assert resid[n] > 20.0  # the shift is seen
    # and absorbed by the level within a day (bounded steps: clip * scale * level_alpha)
    assert abs(np.mean(resid[n + DAY : n + 2 * DAY])) < 3.0
    assert est.level_[0] > 20.0


def test_flat_series_scale_guard() -> None:
    n = 2 * DAY
    est = SeasonalBaseline().fit(np.full((n, 1), 7.0), times(n))
    assert est.deviation(np.array([7.0]), T0 + STEP * n)[0] == 0.0
    z = est.deviation(np.array([7.07]), T0 + STEP * n)[0]
    assert np.isfinite(z) and 5.0 < z < 20.0  # 1% move = 10 guarded scales, not 1e9


def test_missing_is_not_learnt() -> None:
    n = 2 * DAY
    x = diurnal(n, 2)
    x[:, 1] = np.nan
    est = SeasonalBaseline().fit(x, times(n))
    assert est.n_seen_.tolist() == [n, 0]
    assert np.all(est.count_[:, 1] == 0)


def test_batch_equals_series_by_series() -> None:
    n = 2 * DAY
    x = np.hstack([diurnal(n, 1, seed=s) * (s + 1) for s in range(3)])
    batch = SeasonalBaseline().fit(x, times(n))
    for j in range(3):
        one = SeasonalBaseline().fit(x[:, j : j + 1], times(n))
        np.testing.assert_array_equal(one.profile_[:, 0], batch.profile_[:, j])
        np.testing.assert_allclose(one.level_[0], batch.level_[j])


def test_weekly_bins_separate_weekdays() -> None:
    est = SeasonalBaseline(n_bins=24, weekly=True).resize(1)
    monday_noon = 1_700_438_400.0 + 12 * 3600  # 2023-11-20 was a Monday
    assert est._bin(np.array([monday_noon]))[0] == 12
    assert est._bin(np.array([monday_noon + 86_400]))[0] == 24 + 12
    assert est.profile_.shape == (7 * 24, 1)


def test_resize_grows_empty_series() -> None:
    est = SeasonalBaseline().fit(diurnal(50, 2), times(50))
    est.resize(4)
    assert est.profile_.shape == (48, 4) and est.n_seen_.tolist() == [50, 50, 0, 0]
    with pytest.raises(ValueError, match="only grow"):
        est.resize(1)
