"""CompositeDetector: estimator contract, causality, what scores high and low, batching, memory."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from detectors.composite import DEFAULT_THRESHOLD, DEFAULTS, CompositeConfig, CompositeDetector

T0 = 1_700_000_000.0 - (1_700_000_000.0 % 86_400)
STEP = 300.0
DAY = int(86_400 / STEP)
N = 4 * DAY  # NAB-like length


def times(n: int) -> np.ndarray:
    return T0 + STEP * np.arange(n)


def diurnal(n: int = N, noise: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 + 50 * np.sin(2 * np.pi * np.arange(n) / DAY) + rng.normal(0, noise, n)


def square_wave(n: int = N) -> np.ndarray:
    """Like NAB's art_daily_perfect_square_wave: 20 for half a day, 80 the other half."""
    return np.where((np.arange(n) // (DAY // 2)) % 2 == 0, 20.0, 80.0)


def scores_after_warmup(x: np.ndarray) -> np.ndarray:
    s = CompositeDetector().score_stream(x[:, None], times(len(x)))[:, 0]
    return s[int(0.15 * len(x)) :]  # NAB's probation


# -- estimator contract --------------------------------------------------------------------


def test_clone_keeps_the_named_configuration_not_state() -> None:
    est = CompositeDetector().fit(diurnal(100)[:, None], times(100))
    twin = clone(est)
    assert twin.get_params() == {"config": DEFAULTS, "threshold": DEFAULT_THRESHOLD}
    assert not hasattr(twin, "stat_mean_")


def test_fit_partial_fit_return_self_and_trailing_underscore_state() -> None:
    est = CompositeDetector()
    assert [k for k in vars(est) if k.endswith("_")] == []
    assert est.fit(np.ones((5, 3)), times(5)) is est
    assert est.partial_fit(np.ones((5, 3)), times(5)) is est
    assert est.n_seen_.tolist() == [10, 10, 10]
    assert est.stat_mean_.shape == est.stat_var_.shape == (5, 3)


def test_scoring_before_fit_raises() -> None:
    with pytest.raises(NotFittedError):
        CompositeDetector().score_samples(np.ones(2), T0)


def test_invalid_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="likelihood_alpha"):
        CompositeDetector(config=replace(DEFAULTS, likelihood_alpha=2.0)).fit(np.ones(2), T0)
    with pytest.raises(ValueError, match="ctx_gate"):
        CompositeDetector(config=replace(DEFAULTS, ctx_gate=-1.0)).fit(np.ones(2), T0)
    with pytest.raises(TypeError, match="CompositeConfig"):
        CompositeDetector(config={"warmup": 3}).fit(np.ones(2), T0)  # type: ignore[arg-type]


def test_scoring_does_not_learn_and_matches_update() -> None:
    x = diurnal(N)
    est = CompositeDetector().fit(x[:-1, None], times(N)[:-1])
    before = est.lik_mean_.copy(), est.seasonal_.profile_.copy(), est.n_seen_.copy()
    probe = np.array([x[-1] + 500.0])
    s = est.composite_score(probe, times(N)[-1])
    np.testing.assert_array_equal(est.score_samples(probe, times(N)[-1]), -s)
    np.testing.assert_array_equal(est.decision_function(probe, times(N)[-1]), DEFAULT_THRESHOLD - s)
    assert est.predict(probe, times(N)[-1]).tolist() == [-1 if s[0] >= DEFAULT_THRESHOLD else 1]
    np.testing.assert_array_equal(est.lik_mean_, before[0])
    np.testing.assert_array_equal(est.seasonal_.profile_, before[1])
    np.testing.assert_array_equal(est.n_seen_, before[2])
    assert est.update(probe, times(N)[-1]).tolist() == s.tolist()


# -- causality -----------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [300, 700, 1100])
def test_score_of_row_i_ignores_rows_after_i(cut: int) -> None:
    x = diurnal(N)
    x[900] += 80.0
    changed = x.copy()
    changed[cut + 1 :] = np.random.default_rng(5).normal(0, 500, N - cut - 1)
    a = CompositeDetector().score_stream(x[:, None], times(N))[:, 0]
    b = CompositeDetector().score_stream(changed[:, None], times(N))[:, 0]
    np.testing.assert_array_equal(a[: cut + 1], b[: cut + 1])
    assert not np.array_equal(a[cut + 1 :], b[cut + 1 :])


# -- what scores high and what scores low --------------------------------------------------


@pytest.mark.parametrize(
    "name, series",
    [
        ("diurnal", diurnal()),
        ("noisy", np.random.default_rng(3).normal(50, 5, N)),
        ("flat", np.full(N, 42.0)),
        ("square_wave", square_wave()),
        ("quantised", np.round(np.random.default_rng(4).normal(3, 0.4, N))),
    ],
)
def test_normal_series_stay_quiet(name: str, series: np.ndarray) -> None:
    s = scores_after_warmup(series)
    assert np.all((s >= 0) & (s <= 1))
    # NAB costs 0.11 per false positive: a quiet series may cross the threshold only rarely.
    # White noise is the exception while its context table is young: every few hundred steps a
    # never-seen sequence of values appears (context novelty, round 2); see the next test.
    # Round 5 gates the novelty by the raw z-score: over seeds 3..8 the crossings fall from 28
    # to 20 in all, but this seed goes from 5 to 7 (a lower record lets two z crossings through).
    limit = 7 if name == "noisy" else 3
    assert int((s >= DEFAULT_THRESHOLD).sum()) <= limit, name


def test_white_noise_context_novelty_settles() -> None:
    x = np.random.default_rng(3).normal(50, 5, 16 * DAY)
    s = CompositeDetector().score_stream(x[:, None], times(len(x)))[:, 0]
    early, late = s[int(0.15 * N) : N], s[N:]
    assert int((late >= DEFAULT_THRESHOLD).sum()) <= 5  # 12 days: under one crossing per 2 days
    assert (late >= DEFAULT_THRESHOLD).mean() < (early >= DEFAULT_THRESHOLD).mean()


@pytest.mark.parametrize("kind", ["spike", "level_shift"])
def test_anomalies_score_high(kind: str) -> None:
    x = diurnal()
    at = 3 * DAY
    if kind == "spike":
        x[at] += 120.0
    else:
        x[at:] += 80.0
    s = CompositeDetector().score_stream(x[:, None], times(N))[:, 0]
    window = s[at : at + DAY // 4]
    assert window.max() >= DEFAULT_THRESHOLD, kind
    # well above normal days, which stay under the threshold (round 2: sub-threshold context
    # novelty of up to ctx_weight / 2 is normal on a noisy diurnal series, hence 1.5x, was 3x)
    assert s[DAY:at].max() < DEFAULT_THRESHOLD, kind
    assert window.max() > 1.5 * max(s[DAY:at].max(), 0.01), kind


def test_novelty_of_ordinary_values_is_gated() -> None:
    # white noise keeps producing never-seen sequences of ordinary values (round 5: ctx_gate)
    x = np.stack([np.random.default_rng(seed).normal(50, 5, N) for seed in range(3, 9)], axis=1)
    ungated = CompositeDetector(config=replace(DEFAULTS, ctx_gate=0.0)).score_stream(x, times(N))
    gated = CompositeDetector().score_stream(x, times(N))
    probation = int(0.15 * N)
    n_ungated = int((ungated[probation:] >= DEFAULT_THRESHOLD).sum())
    n_gated = int((gated[probation:] >= DEFAULT_THRESHOLD).sum())
    assert n_gated <= 0.8 * n_ungated  # 20 vs 28 crossings over the six series


def test_repeats_are_suppressed() -> None:
    x = diurnal()
    for k in range(10):
        x[2 * DAY + 40 * k] += 150.0  # the same spike ten times
    s = CompositeDetector().score_stream(x[:, None], times(N))[:, 0]
    hits = DAY + np.flatnonzero(s[DAY:] >= DEFAULT_THRESHOLD)  # after the young context table's day
    assert 1 <= len(hits) <= 3 and hits[0] == 2 * DAY


# -- vectorisation, missing data, memory ---------------------------------------------------


def test_batch_equals_series_by_series() -> None:
    cols = [diurnal(seed=1), square_wave(), np.random.default_rng(2).normal(5, 1, N)]
    cols[0][700] += 90
    X = np.stack(cols, axis=1)
    batch = CompositeDetector().score_stream(X, times(N))
    for j in range(3):
        one = CompositeDetector().score_stream(X[:, j : j + 1], times(N))[:, 0]
        np.testing.assert_array_equal(one, batch[:, j])


def test_missing_values_score_zero_and_are_not_learnt() -> None:
    X = np.stack([diurnal(300), diurnal(300, seed=9)], axis=1)
    X[100:150, 1] = np.nan
    est = CompositeDetector()
    s = est.score_stream(X, times(300))
    assert np.all(s[100:150, 1] == 0.0)
    assert est.n_seen_.tolist() == [300, 250]


def test_update_and_resize_for_many_series() -> None:
    est = CompositeDetector()
    out = est.update(np.ones(10), T0)
    assert out.shape == (10,) and np.all(out == 0.0)
    est.resize(12)
    assert est.update(np.ones(12), T0 + STEP).shape == (12,)
    assert est.n_seen_.tolist() == [2] * 10 + [1, 1]
    with pytest.raises(ValueError, match="resize"):
        est.update(np.ones(5), T0)


def test_memory_per_series_within_4kb() -> None:
    est = CompositeDetector().fit(np.ones((3, 1000)), times(3))
    assert est.nbytes_per_series() <= 4096
    assert est.nbytes_per_series() == 1376  # the figure documented in detectors/composite.py
    weekly = CompositeDetector(config=CompositeConfig(weekly=True, n_bins=24)).fit(np.ones((3, 100)), times(3))
    assert weekly.seasonal_.profile_.shape == (7 * 24, 100) and weekly.nbytes_per_series() <= 4096


# -- the engine's SeriesScorer hook and persistence ----------------------------------------


def mixed(n: int = N) -> np.ndarray:
    """Three unlike series with an anomaly each, shape (n, 3)."""
    cols = [diurnal(n, seed=1), square_wave(n), np.random.default_rng(2).normal(5, 1, n)]
    cols[0][700] += 90
    cols[2][900:] += 6
    return np.stack(cols, axis=1)


def test_score_update_of_every_column_equals_update() -> None:
    X = mixed()
    X[300:320, 1] = np.nan
    full, hook = CompositeDetector(), CompositeDetector()
    peak = np.zeros(3)
    for i, x in enumerate(X):
        a = full.update(x, times(N)[i])
        peak = np.maximum(peak, a)
        b = hook.score_update(np.arange(3), x, np.full(3, times(N)[i]))
        young = np.isnan(x) | (full.n_seen_ - ~np.isnan(x) < DEFAULTS.warmup)
        np.testing.assert_array_equal(np.isnan(b), young)  # NaN = no score yet (update says 0)
        np.testing.assert_array_equal(np.where(young, 0.0, b), a)
    assert full.n_seen_.tolist() == hook.n_seen_.tolist() and (full.n_seen_ > DEFAULTS.warmup).all()
    assert peak[0] >= DEFAULT_THRESHOLD and peak[2] >= DEFAULT_THRESHOLD  # the anomalies were scored


def test_score_update_of_a_subset_leaves_the_other_series_untouched() -> None:
    X = mixed()
    rng = np.random.default_rng(7)
    hook = CompositeDetector()
    fed: list[list[tuple[int, float]]] = [[], [], []]
    got: list[list[float]] = [[], [], []]
    for i, x in enumerate(X):
        cols = np.flatnonzero(rng.random(3) < 0.6)
        rng.shuffle(cols)
        if i == 10:
            untouched = {k: v[..., 1].copy() for k, v in hook.state_dict().items() if isinstance(v, np.ndarray)}
            cols = np.array([2, 0])  # not series 1
            hook.score_update(cols, x[cols], times(N)[i] + np.zeros(2))
            after = {k: v[..., 1] for k, v in hook.state_dict().items() if isinstance(v, np.ndarray)}
            for k, v in untouched.items():
                np.testing.assert_array_equal(after[k], v, err_msg=k)
        else:
            s = hook.score_update(cols, x[cols], times(N)[i] + np.zeros(len(cols)))
            for c, v in zip(cols, s, strict=True):
                got[c].append(v)
        for c in cols:
            fed[c].append((i, x[c]))
    for c in range(3):  # each series scores as if it ran alone on the steps it was given
        steps = [i for i, _ in fed[c]]
        alone = CompositeDetector().score_stream(np.array([v for _, v in fed[c]])[:, None], times(N)[steps])[:, 0]
        mine = np.array(got[c])
        offset = len(alone) - len(mine)  # step 10 was fed but not collected for series 0 and 2
        np.testing.assert_array_equal(np.nan_to_num(mine[-500:]), alone[offset:][-500:])


def test_score_update_grows_by_doubling_and_rejects_bad_input() -> None:
    est = CompositeDetector()
    assert np.isnan(est.score_update([10], [1.0], T0)).all() and est.n_features_in_ == 11
    est.score_update([12, 3], [1.0, 2.0], T0 + STEP)
    assert est.n_features_in_ == 22 and est.n_seen_[[3, 10, 12]].tolist() == [1, 1, 1]
    assert est.n_seen_.sum() == 3 and est.seasonal_.profile_.shape[1] == est.context_.table_.shape[1] == 22
    assert est.score_update([], [], T0).shape == (0,)
    with pytest.raises(ValueError, match="values"):
        est.score_update([1, 2], [1.0], T0)
    with pytest.raises(ValueError, match="negative"):
        est.score_update([-1], [1.0], T0)


def test_state_dict_round_trip_through_npz_gives_identical_scores(tmp_path) -> None:  # noqa: ANN001
    X = mixed()
    cut = 2 * DAY
    est = CompositeDetector()
    est.score_stream(X[:cut], times(cut))
    state = est.state_dict()
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    header = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    np.savez(tmp_path / "c.npz", **arrays)
    (tmp_path / "c.json").write_text(json.dumps(header))
    with np.load(tmp_path / "c.npz", allow_pickle=False) as data:
        loaded = {k: data[k] for k in data.files} | json.loads((tmp_path / "c.json").read_text())
    twin = CompositeDetector().load_state_dict(loaded)
    a = est.score_stream(X[cut:], times(N)[cut:])
    b = twin.score_stream(X[cut:], times(N)[cut:])
    np.testing.assert_array_equal(a, b)
    assert a.max() > 0
    with pytest.raises(ValueError, match="other settings"):
        CompositeDetector(config=replace(DEFAULTS, warmup=10)).load_state_dict(loaded)
    with pytest.raises(ValueError, match="version"):
        CompositeDetector().load_state_dict(loaded | {"version": 99})
    with pytest.raises(ValueError, match="stat_var_"):
        CompositeDetector().load_state_dict(loaded | {"stat_var_": np.zeros((5, 2))})
