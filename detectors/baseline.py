"""Per-series robust EWMA baseline, vectorised across series, with scikit-learn's estimator API.

Each column of ``X`` is one independent univariate series (one interface counter rate); each
row is one time step. The estimator learns, per series, an exponentially weighted mean and a
robust scale (exponentially weighted mean absolute deviation, rescaled to a standard deviation
under normality), and scores new observations by how many scales they sit from the mean.
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from detectors._growth import series_growth

__all__ = ["EwmaBaseline"]

# E|X - mu| = sigma * sqrt(2/pi) for a normal X: the mean absolute deviation times this factor
# estimates sigma, so ``threshold`` reads as "standard deviations".
_MAD_TO_SIGMA = math.sqrt(math.pi / 2.0)


class EwmaBaseline(BaseEstimator):
    """Robust exponentially weighted baseline of many series at once.

    Parameters
    ----------
    alpha : float, default=0.05
        Smoothing factor of the mean and the scale, in (0, 1]. The effective memory is about
        ``1 / alpha`` steps.
    warmup : int, default=20
        A series is scored only after it has learnt this many observations. During warm-up the
        weights are ``max(alpha, 1 / n)`` (a plain running mean and mean absolute deviation), so
        the baseline is unbiased by its zero start, and residuals are not clipped.
    min_scale : float, default=1e-3
        Floor of the scale used for clipping and scoring, so a perfectly flat series does not
        divide by zero.
    clip : float, default=4.0
        Once warmed up, a residual is clipped to ``[-clip * scale, clip * scale]`` before it
        updates the mean and the scale: one outlier moves the baseline by at most
        ``alpha * clip * scale``, while a lasting level shift is still followed (the scale grows
        by a factor of about ``1 + alpha * (1.25 * clip - 1)`` per step).
    threshold : float, default=6.0
        Offset of :meth:`decision_function`: an observation further than ``threshold`` scales
        from the mean is an outlier.

    Attributes
    ----------
    mean_ : ndarray of shape (n_series,)
        Exponentially weighted mean of each series.
    scale_ : ndarray of shape (n_series,)
        Robust scale (sigma-equivalent) of each series; 0 until a series has two observations.
    n_seen_ : ndarray of shape (n_series,), dtype int64
        Number of (non-NaN) observations learnt per series.
    n_features_in_ : int
        Number of series.

    Notes
    -----
    NaN marks a missing observation: that series is neither updated nor scored in that row.
    Call :meth:`resize` when new series appear; they start un-warmed.
    """

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        warmup: int = 20,
        min_scale: float = 1e-3,
        clip: float = 4.0,
        threshold: float = 6.0,
    ) -> None:
        self.alpha = alpha
        self.warmup = warmup
        self.min_scale = min_scale
        self.clip = clip
        self.threshold = threshold

    # -- learning -------------------------------------------------------------------------

    def fit(self, X: ArrayLike, y: None = None) -> Self:
        """Forget everything, then learn ``X`` row by row.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_samples, n_series)
            Observations; one row is one time step of every series, NaN = missing.
        y : None
            Ignored.

        Returns
        -------
        self : EwmaBaseline
        """
        rows = self._rows(X, reset=True)
        self._init_state(rows.shape[1])
        return self._learn(rows)

    def partial_fit(self, X: ArrayLike, y: None = None) -> Self:
        """Learn ``X`` row by row on top of the current baseline.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_samples, n_series)
            Observations; one row is one time step of every series, NaN = missing (that series
            is not updated in that row).
        y : None
            Ignored.

        Returns
        -------
        self : EwmaBaseline
        """
        first = not hasattr(self, "n_features_in_")
        rows = self._rows(X, reset=first)
        if first:
            self._init_state(rows.shape[1])
        return self._learn(rows)

    def partial_fit_columns(self, columns: ArrayLike, X: ArrayLike) -> Self:
        """Learn ``X`` for the series ``columns`` only (a batch of a few series of many).

        Parameters
        ----------
        columns : array-like of int, shape (n_columns,)
            Unique series indices.
        X : array-like of shape (n_columns,) or (n_samples, n_columns)
            Observations of those series, NaN = missing.

        Returns
        -------
        self : EwmaBaseline
        """
        check_is_fitted(self)
        cols = np.asarray(columns, dtype=np.intp)
        rows = np.asarray(X, dtype=np.float64).reshape(-1, len(cols))
        mean, scale, n_seen = self._learn_arrays(
            rows, self.mean_[cols], self.scale_[cols], self.n_seen_[cols]
        )
        self.mean_[cols], self.scale_[cols], self.n_seen_[cols] = mean, scale, n_seen
        return self

    def deviation_columns(self, columns: ArrayLike, X: ArrayLike) -> NDArray[np.float64]:
        """:meth:`deviation` of the series ``columns`` only; ``X`` has shape (n_columns,)."""
        check_is_fitted(self)
        cols = np.asarray(columns, dtype=np.intp)
        x = np.asarray(X, dtype=np.float64)
        z = (x - self.mean_[cols]) / np.maximum(self.scale_[cols], self.min_scale)
        return np.where(self.n_seen_[cols] >= self.warmup, z, np.nan)

    def resize(self, n_series: int) -> Self:
        """Grow to ``n_series`` series; the new ones start empty (un-warmed).

        Parameters
        ----------
        n_series : int
            New number of series, at least the current one.

        Returns
        -------
        self : EwmaBaseline
        """
        extra = series_growth(self, n_series)
        if extra is None:
            return self
        if extra:
            self.mean_ = np.concatenate([self.mean_, np.zeros(extra)])
            self.scale_ = np.concatenate([self.scale_, np.zeros(extra)])
            self.n_seen_ = np.concatenate([self.n_seen_, np.zeros(extra, dtype=np.int64)])
            self.n_features_in_ = n_series
        return self

    # -- scoring --------------------------------------------------------------------------

    def deviation(self, X: ArrayLike) -> NDArray[np.float64]:
        """Signed deviation ``(x - mean_) / max(scale_, min_scale)`` against the current baseline.

        The baseline is not updated: score first, then :meth:`partial_fit`.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_samples, n_series)
            Observations; every row is scored against the same, current baseline.

        Returns
        -------
        z : ndarray of the shape of X
            NaN where the observation is missing or its series is not warmed up.
        """
        check_is_fitted(self)
        x = self._check_shape(np.asarray(X, dtype=np.float64))
        z = (x - self.mean_) / self.effective_scale()
        return np.where(self.n_seen_ >= self.warmup, z, np.nan)

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Opposite of the absolute deviation: lower is more abnormal.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_samples, n_series)
            Observations, scored against the current baseline (typically the latest row).

        Returns
        -------
        scores : ndarray of the shape of X
            ``-|x - mean_| / max(scale_, min_scale)``; NaN where missing or not warmed up.
        """
        return -np.abs(self.deviation(X))

    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]:
        """``score_samples(X) + threshold``: negative means outlier.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_samples, n_series)

        Returns
        -------
        decision : ndarray of the shape of X
            NaN where missing or not warmed up.
        """
        return self.score_samples(X) + self.threshold

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        """+1 for inliers, -1 for outliers; missing or un-warmed observations count as inliers.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_samples, n_series)

        Returns
        -------
        labels : ndarray of the shape of X, dtype int64
        """
        return np.where(self.decision_function(X) < 0, -1, 1).astype(np.int64)

    def effective_scale(self) -> NDArray[np.float64]:
        """``max(scale_, min_scale)``: the scale used to clip and score, shape (n_series,)."""
        check_is_fitted(self)
        return np.maximum(self.scale_, self.min_scale)

    def warmed_up(self) -> NDArray[np.bool_]:
        """Which series have at least ``warmup`` observations, shape (n_series,)."""
        check_is_fitted(self)
        return self.n_seen_ >= self.warmup

    def __sklearn_tags__(self) -> Any:  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- internals ------------------------------------------------------------------------

    def _validate_params_(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha!r}")
        if self.warmup < 1:
            raise ValueError(f"warmup must be >= 1, got {self.warmup!r}")
        if not self.min_scale > 0.0:
            raise ValueError(f"min_scale must be > 0, got {self.min_scale!r}")
        if not self.clip > 0.0:
            raise ValueError(f"clip must be > 0, got {self.clip!r}")

    def _init_state(self, n_series: int) -> None:
        self._validate_params_()
        self.mean_ = np.zeros(n_series)
        self.scale_ = np.zeros(n_series)
        self.n_seen_ = np.zeros(n_series, dtype=np.int64)
        self.n_features_in_ = n_series

    def _rows(self, X: ArrayLike, *, reset: bool) -> NDArray[np.float64]:
        x = np.asarray(X, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2:
            raise ValueError(
                f"X must have shape (n_series,) or (n_samples, n_series), got {x.shape}"
            )
        if not reset:
            self._check_shape(x)
        return x

    def _check_shape(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        if x.ndim not in (1, 2) or x.shape[-1] != self.n_features_in_:
            raise ValueError(
                f"X has shape {x.shape}, expected (..., {self.n_features_in_}) series; "
                "call resize() when new series appear"
            )
        return x

    def _learn(self, rows: NDArray[np.float64]) -> Self:
        self.mean_, self.scale_, self.n_seen_ = self._learn_arrays(
            rows, self.mean_, self.scale_, self.n_seen_
        )
        return self

    def _learn_arrays(
        self,
        rows: NDArray[np.float64],
        mean: NDArray[np.float64],
        scale: NDArray[np.float64],
        n_seen: NDArray[np.int64],
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
        alpha, clip, min_scale, warmup = self.alpha, self.clip, self.min_scale, self.warmup
        for x in rows:
            present = ~np.isnan(x)
            first = present & (n_seen == 0)
            later = present & (n_seen > 0)
            resid = x - mean  # NaN where missing
            limit = clip * np.maximum(scale, min_scale)
            resid = np.where(n_seen >= warmup, np.clip(resid, -limit, limit), resid)
            # Running mean / MAD while young (n small), exponential once 1/n < alpha.
            w_mean = np.maximum(alpha, 1.0 / (n_seen + 1))
            w_scale = np.maximum(alpha, 1.0 / np.maximum(n_seen, 1))
            new_mean = mean + w_mean * resid
            new_scale = scale + w_scale * (_MAD_TO_SIGMA * np.abs(resid) - scale)
            mean = np.where(later, new_mean, np.where(first, x, mean))
            scale = np.where(later, new_scale, np.where(first, 0.0, scale))
            n_seen = n_seen + present
        return mean, scale, n_seen
