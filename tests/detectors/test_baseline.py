"""EwmaBaseline: scikit-learn estimator contract and the statistics it learns."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from detectors.baseline import EwmaBaseline

PARAMS = {"alpha": 0.1, "warmup": 5, "min_scale": 1e-2, "clip": 3.0, "threshold": 4.0}


def noisy(level: float, sigma: float, n: int, n_series: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(level, sigma, size=(n, n_series))


# -- estimator contract --------------------------------------------------------------------


def test_clone_copies_params_not_state() -> None:
    est = EwmaBaseline(**PARAMS).fit(noisy(1.0, 0.1, 30))
    twin = clone(est)
    assert twin.get_params() == PARAMS
    assert not hasattr(twin, "mean_")


def test_fit_leaves_params_untouched_and_learns_trailing_underscore_attrs() -> None:
    est = EwmaBaseline(**PARAMS)
    assert [k for k in vars(est) if k.endswith("_")] == []
    est.fit(noisy(1.0, 0.1, 30, n_series=3))
    assert est.get_params() == PARAMS
    assert {k for k in vars(est) if k.endswith("_")} == {
        "mean_",
        "scale_",
        "n_seen_",
        "n_features_in_",
    }
    assert est.mean_.shape == est.scale_.shape == est.n_seen_.shape == (3,)
    assert est.n_features_in_ == 3


def test_fit_and_partial_fit_return_self() -> None:
    est = EwmaBaseline()
    assert est.fit(np.ones(4)) is est
    assert est.partial_fit(np.ones(4)) is est


def test_scoring_before_fit_raises() -> None:
    with pytest.raises(NotFittedError):
        EwmaBaseline().score_samples(np.ones(3))


def test_fit_resets_partial_fit_accumulates() -> None:
    est = EwmaBaseline(warmup=1).fit(np.full((10, 2), 5.0))
    est.partial_fit(np.full((10, 2), 5.0))
    assert est.n_seen_.tolist() == [20, 20]
    est.fit(np.full((3, 2), 1.0))
    assert est.n_seen_.tolist() == [3, 3]
    assert est.mean_.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"warmup": 0}, "warmup"),
        ({"min_scale": 0.0}, "min_scale"),
        ({"clip": -1.0}, "clip"),
    ],
)
def test_invalid_params_rejected_at_fit(params: dict[str, float], match: str) -> None:
    est = EwmaBaseline(**params)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        est.fit(np.ones(3))


@pytest.mark.parametrize("bad", [np.ones(4), np.ones((2, 4)), np.ones((2, 2, 3))])
def test_wrong_number_of_series_rejected(bad: np.ndarray) -> None:
    est = EwmaBaseline().fit(np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        est.partial_fit(bad)


# -- statistics ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "sigma"),
    [(0.5, 0.02), (10.0, 1.0), (1e6, 5e4), (-3.0, 0.3)],
)
def test_tracks_level_and_scale(level: float, sigma: float) -> None:
    est = EwmaBaseline().fit(noisy(level, sigma, 2000))
    assert est.mean_[0] == pytest.approx(level, abs=sigma)
    # EW MAD with alpha=0.05 is noisy (~40 effective points): sigma within 35%.
    assert est.scale_[0] == pytest.approx(sigma, rel=0.35)


def test_follows_a_lasting_level_shift() -> None:
    est = EwmaBaseline().fit(noisy(5.0, 0.5, 300))
    est.partial_fit(noisy(8.0, 0.5, 300, seed=1))
    assert est.mean_[0] == pytest.approx(8.0, abs=0.5)


def test_single_spike_barely_moves_the_baseline() -> None:
    est = EwmaBaseline().fit(noisy(10.0, 1.0, 500))
    mean, scale = est.mean_[0], est.scale_[0]
    spike = np.array([1e6])
    assert est.predict(spike).tolist() == [-1]
    est.partial_fit(spike)
    # clipped at clip*scale: the mean moves by at most alpha*clip*scale, the scale by ~25%
    assert abs(est.mean_[0] - mean) <= est.alpha * est.clip * scale + 1e-12
    assert est.scale_[0] <= scale * (1 + est.alpha * (1.2534 * est.clip - 1)) + 1e-12
    assert est.predict(np.array([mean])).tolist() == [1]


def test_flat_series_uses_min_scale() -> None:
    est = EwmaBaseline(min_scale=1e-3).fit(np.zeros((50, 1)))
    assert est.scale_[0] == 0.0
    assert est.deviation(np.array([0.5]))[0] == pytest.approx(500.0)


def test_nan_skips_the_update_of_that_series_only() -> None:
    est = EwmaBaseline(warmup=3).fit(np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]))
    before = (est.mean_.copy(), est.scale_.copy(), est.n_seen_.copy())
    est.partial_fit(np.array([np.nan, 4.0]))
    assert (est.mean_[0], est.scale_[0], est.n_seen_[0]) == (
        before[0][0],
        before[1][0],
        before[2][0],
    )
    assert est.n_seen_[1] == 4
    assert est.mean_[1] > 2.0


def test_missing_or_unwarmed_scores_nan_and_predicts_inlier() -> None:
    est = EwmaBaseline(warmup=5).fit(np.array([[1.0, 1.0]] * 5 + [[1.0, np.nan]]))
    assert est.n_seen_.tolist() == [6, 5]
    est.resize(3)  # a new series: un-warmed
    x = np.array([np.nan, 100.0, 100.0])
    score = est.score_samples(x)
    assert np.isnan(score[0]) and np.isnan(score[2])
    assert score[1] < -est.threshold
    assert est.predict(x).tolist() == [1, -1, 1]


def test_score_decision_predict_are_consistent() -> None:
    est = EwmaBaseline().fit(noisy(0.0, 1.0, 200, n_series=4))
    x = np.array([0.0, 3.0, -9.0, 20.0])
    z = est.deviation(x)
    np.testing.assert_array_equal(est.score_samples(x), -np.abs(z))
    np.testing.assert_array_equal(est.decision_function(x), -np.abs(z) + 6.0)
    assert est.predict(x).tolist() == [1, 1, -1, -1]
    assert np.sign(z).tolist() == np.sign(x - est.mean_).tolist()


def test_scores_every_row_against_the_same_baseline() -> None:
    est = EwmaBaseline().fit(noisy(0.0, 1.0, 200, n_series=2))
    rows = np.array([[0.0, 1.0], [10.0, -10.0]])
    z = est.deviation(rows)
    assert z.shape == (2, 2)
    np.testing.assert_array_equal(z[1], est.deviation(rows[1]))


def test_batch_equals_row_by_row() -> None:
    X = noisy(3.0, 0.5, 100, n_series=5)
    X[::7, 2] = np.nan
    X[40, 1] = 1e4  # an outlier is clipped the same way in both paths
    batch = EwmaBaseline().fit(X)
    rows = EwmaBaseline()
    for row in X:
        rows.partial_fit(row)
    np.testing.assert_array_equal(batch.mean_, rows.mean_)
    np.testing.assert_array_equal(batch.scale_, rows.scale_)
    np.testing.assert_array_equal(batch.n_seen_, rows.n_seen_)


def test_resize_grows_and_keeps_existing_series() -> None:
    est = EwmaBaseline(warmup=2).fit(np.full((3, 2), 7.0))
    est.resize(4)
    assert est.n_features_in_ == 4
    assert est.mean_.tolist() == [7.0, 7.0, 0.0, 0.0]
    assert est.warmed_up().tolist() == [True, True, False, False]
    est.partial_fit(np.array([7.0, 7.0, 2.0, np.nan]))
    assert est.mean_[2] == 2.0 and est.n_seen_.tolist() == [4, 4, 1, 0]
    with pytest.raises(ValueError, match="grow"):
        est.resize(3)


def test_resize_before_fit_initialises() -> None:
    est = EwmaBaseline().resize(3)
    assert est.n_features_in_ == 3 and est.n_seen_.tolist() == [0, 0, 0]


def test_vectorised_over_ten_thousand_series() -> None:
    n = 10_000
    rng = np.random.default_rng(7)
    levels = rng.uniform(0.0, 100.0, n)
    sigmas = rng.uniform(0.5, 2.0, n)
    X = levels + sigmas * rng.standard_normal((200, n))
    est = EwmaBaseline().partial_fit(X)  # one call, every series
    assert est.n_seen_.min() == est.n_seen_.max() == 200
    assert np.all(np.abs(est.mean_ - levels) < sigmas)  # ~6 standard errors of an EWMA
    x = levels.copy()
    hit = rng.choice(n, size=25, replace=False)
    x[hit] += 50 * sigmas[hit]
    assert set(np.flatnonzero(est.predict(x) == -1).tolist()) == set(hit.tolist())
