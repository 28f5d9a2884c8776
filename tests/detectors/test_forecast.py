"""TrendForecaster: ETA to a service threshold, table-driven, and the estimator contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.base import clone

from detectors.forecast import SeasonalProfile, TrendForecaster

MIN = 60.0
HOUR = 3600.0


def ramp(start: float, per_hour: float, sigma: float, hours: float, seed: int = 0) -> np.ndarray:
    n = int(hours * 60)
    t = np.arange(n) * MIN
    return start + per_hour * t / HOUR + np.random.default_rng(seed).normal(0, sigma, n)


def diurnal(mean: float, amp: float, sigma: float, days: float, period: float = 24 * HOUR) -> np.ndarray:
    t = np.arange(int(days * 24 * 60)) * MIN
    noise = np.random.default_rng(3).normal(0, sigma, len(t))
    return mean + amp * np.sin(2 * math.pi * t / period) + noise


def etas(x: np.ndarray, threshold: float, direction: int, **params: float) -> np.ndarray:
    """The streaming ETA after each step (what the engine sees)."""
    est = TrendForecaster(**params).resize(1)
    out = np.full(len(x), np.nan)
    for i, v in enumerate(x):
        t = i * MIN
        est.partial_fit([v], t)
        out[i] = est.predict_eta([v], t, threshold, direction)[0]
    return out


# name: (series, threshold, direction, check time in h or None for "never", true ETA in s)
CASES = {
    "utilisation ramp 0.3 -> 0.9 in 3 h": (ramp(0.3, 0.2, 0.01, 2.5), 0.9, +1, 2.0, 3600.0),
    "error rate ramp 0 -> 50/s in 5 h": (ramp(0.0, 10.0, 0.5, 4.0), 50.0, +1, 3.5, 5400.0),
    "optical RX decaying 1.5 dB/h to -27 dBm": (ramp(-22.0, -1.5, 0.1, 2.5), -27.0, -1, 2.0, 4800.0),
    "DSL SNR margin eroding 2 dB/h to 6 dB": (ramp(10.0, -2.0, 0.2, 1.5), 6.0, -1, 1.25, 2700.0),
    "CPU runaway 0.4 -> 0.9 in 100 min": (ramp(0.4, 0.3, 0.02, 1.5), 0.9, +1, 1.0, 2400.0),
    "noisy flat close to the threshold": (ramp(0.8, 0.0, 0.03, 8.0), 0.9, +1, None, 0.0),
    "diurnal peaking below the threshold": (diurnal(0.5, 0.3, 0.01, 2.0), 0.9, +1, None, 0.0),
    "fast 6 h cycle peaking at 0.6": (diurnal(0.45, 0.15, 0.01, 3.0, period=6 * HOUR)[:1440], 0.9, +1, None, 0.0),
    "optical RX flat and healthy": (ramp(-20.0, 0.0, 0.3, 8.0), -27.0, -1, None, 0.0),
}  # fmt: skip


@pytest.mark.parametrize(
    ("x", "threshold", "direction", "at_h", "true_eta"), CASES.values(), ids=CASES.keys()
)
def test_eta(x: np.ndarray, threshold: float, direction: int, at_h: float | None, true_eta: float) -> None:
    got = etas(x, threshold, direction)
    if at_h is None:
        assert np.isnan(got).all(), f"false prediction at step {np.flatnonzero(~np.isnan(got))[:5]}"
        return
    i = int(at_h * 60)
    assert got[i] == pytest.approx(true_eta, rel=0.15)


def test_prediction_comes_before_the_crossing() -> None:
    x = ramp(0.3, 0.2, 0.01, 3.5)  # crosses 0.9 at 3 h
    got = etas(x, 0.9, +1)
    first = int(np.flatnonzero(~np.isnan(got))[0])
    crossing = int(np.flatnonzero(x >= 0.9)[0])
    assert crossing - first >= 60  # at least an hour of warning (horizon 2 h, 30 min warm-up)
    assert np.isnan(got[crossing + 10 :]).all()  # well beyond: a breach, not a forecast


def test_horizon_and_significance_guards() -> None:
    x = ramp(0.3, 0.05, 0.01, 3.0)  # 0.45 after 3 h, crossing 9 h later
    assert np.isnan(etas(x, 0.9, +1)).all()
    assert np.nanmax(etas(x, 0.9, +1, horizon=12 * HOUR)) > 8 * HOUR
    noisy = ramp(0.3, 0.05, 0.2, 3.0)  # the same trend buried in noise
    assert np.isnan(etas(noisy, 0.9, +1, horizon=12 * HOUR)).all()


def test_one_spike_does_not_tilt_the_line() -> None:
    x = ramp(0.5, 0.0, 0.01, 2.0)
    est = TrendForecaster().fit(x.reshape(-1, 1), np.arange(len(x)) * MIN)
    before = est.trend()[1][0]
    est.partial_fit([50.0], len(x) * MIN)
    assert abs(est.trend()[1][0] - before) < 1e-5  # per second; without clipping it jumps


def test_vectorised_columns_equal_full_width() -> None:
    rng = np.random.default_rng(5)
    X = np.cumsum(rng.normal(0, 0.01, (120, 6)), axis=0) + 0.5
    t = np.arange(120) * MIN
    full = TrendForecaster().fit(X, t)
    part = TrendForecaster().resize(6)
    for row, ti in zip(X, t, strict=True):
        part.partial_fit(row[[4, 1]][None, :], ti, columns=[4, 1])
        part.partial_fit(row[[0, 2, 3, 5]][None, :], ti, columns=[0, 2, 3, 5])
    np.testing.assert_allclose(part.stats_, full.stats_)
    np.testing.assert_array_equal(part.n_seen_, full.n_seen_)


def test_estimator_contract() -> None:
    est = TrendForecaster(horizon=60.0)
    assert clone(est).get_params() == est.get_params()
    assert not [k for k in vars(est) if k.endswith("_")]
    assert est.fit(np.ones((5, 2)), np.arange(5.0)) is est
    assert {"stats_", "t_last_", "n_seen_", "n_features_in_"} <= set(vars(est))
    with pytest.raises(ValueError, match="min_points"):
        TrendForecaster(min_points=1).fit(np.ones(2), 0.0)
    with pytest.raises(ValueError, match="resize"):
        est.partial_fit(np.ones(3), 10.0)


def test_seasonal_profile_learns_the_day_and_is_unknown_before_a_whole_day() -> None:
    day = 24 * HOUR
    x = diurnal(0.5, 0.3, 0.0, 3.0)
    t = np.arange(len(x)) * MIN
    prof = SeasonalProfile().resize(1)
    cols = np.array([0])
    for i in range(len(x)):
        if i == 600:  # 10 h in: not a whole day yet
            assert np.isnan(prof.value(t[i], columns=cols)[0])
        prof.partial_fit(x[i : i + 1], t[i], columns=cols, dt=MIN)
    now = t[-1]
    probe = now + np.array([0.0, 3 * HOUR, 6 * HOUR, 12 * HOUR])
    truth = 0.5 + 0.3 * np.sin(2 * math.pi * probe / day)
    got = np.array([prof.value(p, columns=cols)[0] for p in probe])
    np.testing.assert_allclose(got, truth, atol=0.02)  # half-hour bins, linear between centres
    path = prof.path(now, [3 * HOUR, 6 * HOUR], columns=cols)[:, 0]
    np.testing.assert_allclose(path, got[1:3] - got[0], atol=1e-6)
    assert prof.profile_.shape == (48, 1) and prof.profile_.dtype == np.float32
    fitted = clone(prof).fit(x[:, None], t, dt=MIN)
    np.testing.assert_allclose(fitted.profile_, prof.profile_)


def test_offsets_path_adds_to_the_line() -> None:
    # A flat deviation with a significant small rise; the profile path climbs 0.2 in 1 h.
    est = TrendForecaster(min_span=0.0).resize(1)
    x = ramp(0.0, 0.02, 0.001, 1.0)
    for i, v in enumerate(x):
        est.partial_fit([v], i * MIN)
    t = (len(x) - 1) * MIN
    level = est.trend()[0][0]
    steps = np.arange(1, 25) / 24 * est.horizon
    offsets = np.minimum(steps / HOUR * 0.2, 0.2)[:, None]
    plain = est.predict_eta([x[-1]], t, [0.15], [+1])[0]
    assert np.isnan(plain)  # the line alone reaches 0.15 only after ~6 h
    eta = est.predict_eta([x[-1]], t, [0.15], [+1], offsets=offsets)[0]
    # level + 0.02/h h + 0.2 h/h = 0.15  ->  h = (0.15 - level) / 0.22 h
    assert eta == pytest.approx((0.15 - level) / 0.22 * HOUR, rel=0.05)


def test_a_climb_that_levels_off_is_not_extrapolated() -> None:
    """Tracking signal: once the series keeps falling short of its line, no ETA."""
    x = np.concatenate([ramp(0.3, 0.3, 0.005, 1.0), np.full(30, 0.6) + np.random.default_rng(1).normal(0, 0.005, 30)])
    eta = etas(x, 0.9, +1)
    assert not np.isnan(eta[55:60]).all()  # climbing 0.3/h: the crossing is predicted
    assert np.isnan(eta[-15:]).all()  # levelled off: the line still slopes, the series does not
    est = TrendForecaster().resize(1)
    for i, v in enumerate(x):
        est.partial_fit([v], i * MIN)
    assert est.tracking_signal()[0] < -est.max_bias


@pytest.mark.parametrize("gap_hours", [1.0, 4.0, 8.0, 48.0])
def test_a_series_silent_for_hours_is_forecast_again_when_it_comes_back(gap_hours: float) -> None:
    """Regression: after about 4 h without points (a device down) the weighted sums underflowed to
    a fit with no residual scale, the Huber clip turned the next point into NaN, and the series was
    never forecast again (the NaN was saved with the state, too). Now: a silence of 20 half-lives
    restarts the fit, and a ramp after the gap is predicted as any other."""
    est = TrendForecaster().resize(1)
    before = ramp(0.3, 0.0, 0.01, 5.0)
    for i, v in enumerate(before):
        est.partial_fit([v], i * MIN)
    back = len(before) * MIN + gap_hours * HOUR
    after = ramp(0.3, 0.2, 0.01, 2.5, seed=1)
    out = []
    for i, v in enumerate(after):
        est.partial_fit([v], back + i * MIN)
        out.append(est.predict_eta([v], back + i * MIN, 0.9, +1)[0])
    assert np.isfinite(est.stats_).all()
    at_2h = out[120]
    assert np.isfinite(at_2h) and 0 < at_2h <= 7200.0, at_2h  # forecast again (true ETA: 1 h)
    if gap_hours >= 10.0:  # 20 half-lives: the flat hours before no longer weigh on the fit
        assert abs(at_2h - 3600.0) < 900.0, at_2h


def test_a_fit_broken_by_an_earlier_silence_repairs_itself() -> None:
    """A state saved with NaN sums (before the fix) starts afresh at the next point."""
    est = TrendForecaster().resize(1)
    for i in range(30):
        est.partial_fit([0.3], i * MIN)
    est.stats_[3:6, 0] = np.nan  # what the old code left behind
    after = ramp(0.3, 0.2, 0.01, 2.5, seed=2)
    for i, v in enumerate(after):
        est.partial_fit([v], (30 + i) * MIN)
    assert np.isfinite(est.stats_).all()
    assert np.isfinite(est.predict_eta([after[-1]], (30 + len(after) - 1) * MIN, 0.9, +1)[0])
