"""ElementOutlierDetector: multivariate outliers per element, scikit-learn-exact fast scoring."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import IsolationForest

from detectors.outlier import ElementOutlierDetector, _flatten, _score

N_EL, STEPS = 20, 120


def normal_step(rng: np.random.Generator, k: int) -> np.ndarray:
    """Utilisation in/out following a slow cycle, small error and discard rates (log1p)."""
    util = 0.4 + 0.1 * np.sin(k / 50) + rng.normal(0, 0.01, (N_EL, 2))
    rates = np.log1p(np.abs(rng.normal(0, 0.1, (N_EL, 2))))
    return np.c_[util, rates]


@pytest.fixture
def fitted() -> tuple[ElementOutlierDetector, np.random.Generator]:
    rng = np.random.default_rng(0)
    X = np.stack([normal_step(rng, k) for k in range(STEPS)])
    return ElementOutlierDetector().fit(X), rng


def test_flags_combination_and_magnitude_outliers_only(
    fitted: tuple[ElementOutlierDetector, np.random.Generator],
) -> None:
    det, rng = fitted
    x = normal_step(rng, STEPS)
    x[3, 0], x[3, 1] = 0.95, 0.05  # inbound saturated while outbound collapses
    x[7, 2] = np.log1p(400.0)  # CRC error burst
    assert set(np.flatnonzero(det.predict(x) == -1).tolist()) == {3, 7}
    scores = det.score_samples(x)
    assert scores[3] < -det.threshold and scores[7] < -det.threshold
    assert np.all(det.decision_function(x)[[0, 1, 2]] > 0)


def test_normal_traffic_stays_quiet(
    fitted: tuple[ElementOutlierDetector, np.random.Generator],
) -> None:
    det, rng = fitted
    flagged = 0
    for k in range(STEPS, STEPS + 300):
        x = normal_step(rng, k)
        flagged += int((det.predict(x) == -1).sum())
        det.partial_fit(x)  # refits every 30 steps on the rolling window
    assert flagged == 0


def test_fast_scoring_equals_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    forest = IsolationForest(random_state=3).fit(rng.normal(size=(500, 7)))
    X = rng.normal(size=(300, 7)) * 3
    np.testing.assert_allclose(_score(_flatten(forest), X), forest.score_samples(X), atol=1e-12)


def test_warm_up_and_absent_elements_are_not_scored() -> None:
    rng = np.random.default_rng(2)
    det = ElementOutlierDetector(min_history=30).fit(np.stack([normal_step(rng, k) for k in range(40)]))
    det.resize(N_EL + 1, 4)  # a new element
    x = np.r_[normal_step(rng, 40), np.full((1, 4), 5.0)]
    x[0] = np.nan  # element 0 absent
    s = det.score_samples(x)
    assert np.isnan(s[0]) and np.isnan(s[N_EL]) and np.isfinite(s[1:N_EL]).all()
    assert det.predict(x)[[0, N_EL]].tolist() == [1, 1]


def test_partial_fit_by_element_index_and_refit_cadence() -> None:
    det = ElementOutlierDetector(window=10, min_history=5, refit_every=3).resize(4, 2)
    for _ in range(3):
        det.partial_fit(np.ones((2, 2)), elements=[1, 3])
    assert det.count_.tolist() == [0, 3, 0, 3] and det.pos_.tolist() == [0, 3, 0, 3]
    assert not det.trees_  # refitted at step 3, but no element has 5 vectors yet
    for _ in range(3):
        det.partial_fit(np.ones((2, 2)), elements=[1, 3])
    assert det.trees_ and det.trees_["feature"].shape[0] == det.n_estimators


def test_estimator_contract() -> None:
    det = ElementOutlierDetector(window=8, min_history=4)
    assert clone(det).get_params() == det.get_params()
    assert not [k for k in vars(det) if k.endswith("_")]
    with pytest.raises(ValueError, match="min_history"):
        ElementOutlierDetector(window=4, min_history=8).resize(2, 2)
    det.resize(2, 3)
    with pytest.raises(ValueError, match="shape"):
        det.partial_fit(np.ones((2, 4)))
    with pytest.raises(ValueError, match="grow"):
        det.resize(1, 3)
