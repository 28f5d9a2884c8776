"""Trend-to-threshold forecaster: when will each series cross its service threshold?

Per series, a streaming exponentially weighted least-squares line through ``(t, x)`` (time in
seconds, irregular steps allowed), with Huber-clipped residuals so one spike does not tilt it.
The sufficient statistics are kept relative to the series' latest time, so the fitted
intercept is the *current level* and the slope is per second. From them:

``eta = (threshold - level) / slope``, reported only when the series is heading towards the
threshold (``direction * slope > 0``), is not yet beyond it, the trend is significant
(``|slope| / stderr >= min_t``), the latest value lies on the line (within ``huber`` residual
scales), and the crossing is within ``horizon`` seconds. ``direction``
is +1 for upper thresholds (utilisation, error rate, CPU) and -1 for lower ones (optical RX
power in dBm, DSL SNR margin in dB).

Why this does not fire on diurnal traffic: the memory (``half_life``, 30 min by default) is
short against a day, and ``horizon`` (2 h) caps how far a local slope is extrapolated, so a
daily swing must already be within ``slope * horizon`` of the threshold to be reported.
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

__all__ = ["TrendForecaster"]

# Row order of ``stats_``: weighted sums with tau = t_i - t_last (<= 0).
_S0, _S1, _S2, _SX, _STX, _SXX, _W2 = range(7)
_N_STATS = 7
_MAD_TO_SIGMA = math.sqrt(math.pi / 2.0)


class TrendForecaster(BaseEstimator):
    """Robust streaming linear trend of many series, and the ETA to a threshold.

    Parameters
    ----------
    half_life : float, default=1800.0
        Seconds after which a point's weight in the fit has halved.
    horizon : float, default=7200.0
        Longest ETA reported, seconds.
    min_t : float, default=4.0
        Smallest ``|slope| / stderr(slope)`` for which a trend is trusted.
    min_points : int, default=10
        Observations a series needs before it is forecast (its warm-up).
    min_span : float, default=1800.0
        Seconds of history the weighted fit must cover (as the length of an equivalent uniform
        window, ``sqrt(12)`` weighted standard deviations of the times) before it is trusted:
        a slope from a few minutes of data is noise.
    huber : float, default=3.0
        Once warmed up, a residual is clipped to ``huber`` residual scales before it is learnt.
    min_scale : float, default=1e-9
        Floor of the residual scale (a perfectly straight line has zero residuals).

    Attributes
    ----------
    stats_ : ndarray of shape (7, n_series)
        Exponentially weighted sums S0, S(tau), S(tau^2), S(x), S(tau x), S(x^2), S(w^2).
    t_last_ : ndarray of shape (n_series,)
        Time of the latest learnt observation per series (NaN before the first).
    n_seen_ : ndarray of shape (n_series,), dtype int64
        Observations learnt per series.
    n_features_in_ : int
        Number of series.
    """

    def __init__(
        self,
        *,
        half_life: float = 1800.0,
        horizon: float = 7200.0,
        min_t: float = 4.0,
        min_points: int = 10,
        min_span: float = 1800.0,
        huber: float = 3.0,
        min_scale: float = 1e-9,
    ) -> None:
        self.half_life = half_life
        self.horizon = horizon
        self.min_t = min_t
        self.min_points = min_points
        self.min_span = min_span
        self.huber = huber
        self.min_scale = min_scale

    # -- learning -------------------------------------------------------------------------

    def fit(self, X: ArrayLike, t: ArrayLike) -> Self:
        """Forget everything, then learn the rows of ``X`` at times ``t``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_series) or (n_series,)
            Observations, NaN = missing.
        t : array-like of shape (n_samples,) or scalar
            Time of each row, seconds, non-decreasing.

        Returns
        -------
        self : TrendForecaster
        """
        rows, times = self._rows(X, t)
        self._init_state(rows.shape[1])
        return self._learn_rows(rows, times)

    def partial_fit(self, X: ArrayLike, t: ArrayLike, *, columns: ArrayLike | None = None) -> Self:
        """Learn the rows of ``X`` at times ``t`` on top of the current fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_series) or (n_series,)
            Observations, NaN = missing. With ``columns``, shape (n_samples, len(columns)).
        t : array-like of shape (n_samples,), scalar, or the shape of X
            Time of each row (or of each observation), seconds. An observation older than its
            series' latest time is ignored.
        columns : array-like of int, optional
            The series the columns of ``X`` belong to (unique); default all series.

        Returns
        -------
        self : TrendForecaster
        """
        rows, times = self._rows(X, t)
        if not hasattr(self, "n_features_in_"):
            if columns is not None:
                raise ValueError("the first partial_fit needs every series; call resize() first")
            self._init_state(rows.shape[1])
        return self._learn_rows(rows, times, self._columns(columns, rows.shape[1]))

    def resize(self, n_series: int) -> Self:
        """Grow to ``n_series`` series; the new ones start empty."""
        if not hasattr(self, "n_features_in_"):
            self._init_state(n_series)
            return self
        extra = n_series - self.n_features_in_
        if extra < 0:
            raise ValueError(f"resize can only grow: {n_series} < {self.n_features_in_} series")
        if extra:
            self.stats_ = np.concatenate([self.stats_, np.zeros((_N_STATS, extra))], axis=1)
            self.t_last_ = np.concatenate([self.t_last_, np.full(extra, np.nan)])
            self.n_seen_ = np.concatenate([self.n_seen_, np.zeros(extra, dtype=np.int64)])
            self.n_features_in_ = n_series
        return self

    # -- prediction -----------------------------------------------------------------------

    def trend(
        self, columns: ArrayLike | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Fitted ``(level, slope, slope_stderr)`` at each series' latest time.

        Parameters
        ----------
        columns : array-like of int, optional
            Series to report; default all.

        Returns
        -------
        level, slope, stderr : ndarrays of shape (n_columns,)
            Level in the series' unit, slope and its standard error per second; NaN where
            fewer than three points were learnt.
        """
        check_is_fitted(self)
        width = self.n_features_in_ if columns is None else len(np.asarray(columns))
        cols = self._columns(columns, width)
        return _fit_line(self.stats_[:, cols])

    def predict_eta(
        self,
        X: ArrayLike,
        t: float | ArrayLike,
        threshold: ArrayLike,
        direction: ArrayLike,
        *,
        columns: ArrayLike | None = None,
    ) -> NDArray[np.float64]:
        """Seconds from ``t`` until each series crosses ``threshold``; NaN = no confident ETA.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (len(columns),)
            The latest observations: a series already beyond its threshold, or missing (NaN),
            gets no ETA.
        t : float or array-like broadcastable to X
            Now, seconds; the line is extrapolated from each series' latest time to ``t``.
        threshold : array-like, broadcastable to X
            Service threshold per series (NaN = none).
        direction : array-like, broadcastable to X
            +1 if the threshold is an upper limit, -1 if a lower one.
        columns : array-like of int, optional
            Series the entries of ``X`` belong to; default all.

        Returns
        -------
        eta : ndarray of the shape of X
            ``0 < eta <= horizon`` where a crossing is predicted, else NaN.
        """
        check_is_fitted(self)
        x = np.asarray(X, dtype=np.float64)
        cols = self._columns(columns, x.shape[-1])
        thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), x.shape)
        sign = np.broadcast_to(np.asarray(direction, dtype=np.float64), x.shape)
        stats = self.stats_[:, cols]
        level, slope, stderr, sigma = _fit_line(stats, True)
        with np.errstate(divide="ignore", invalid="ignore"):
            var_t = stats[_S2] / stats[_S0] - (stats[_S1] / stats[_S0]) ** 2
        span = np.sqrt(12.0 * np.maximum(var_t, 0.0))
        age = np.asarray(t, dtype=np.float64) - self.t_last_[cols]
        level = level + slope * np.where(age > 0, age, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = (thr - level) / slope
            confident = np.abs(slope) >= self.min_t * np.maximum(stderr, self.min_scale)
        ok = (
            (self.n_seen_[cols] >= self.min_points)
            & (span >= self.min_span)
            & confident
            & (sign * slope > 0)
            & (sign * (thr - x) > 0)  # not beyond it yet: that is a breach, not a forecast
            & (sign * (thr - level) > 0)
            # the latest value must sit on the line: after a step or a collapse it does not
            & (np.abs(x - level) <= self.huber * np.maximum(sigma, self.min_scale))
            & (eta > 0)
            & (eta <= self.horizon)
        )
        return np.where(ok, eta, np.nan)

    def score_samples(self, X: ArrayLike, t: float, threshold: ArrayLike, direction: ArrayLike) -> NDArray[np.float64]:
        """``-1 + eta / horizon`` where a crossing is predicted (lower = sooner), else 0."""
        eta = self.predict_eta(X, t, threshold, direction)
        return np.where(np.isnan(eta), 0.0, eta / self.horizon - 1.0)

    def decision_function(
        self, X: ArrayLike, t: float, threshold: ArrayLike, direction: ArrayLike
    ) -> NDArray[np.float64]:
        """Negative where a crossing is predicted within ``horizon`` (``score_samples``)."""
        return self.score_samples(X, t, threshold, direction)

    def __sklearn_tags__(self) -> Any:  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- internals ------------------------------------------------------------------------

    def _validate_params_(self) -> None:
        if self.min_span < 0:
            raise ValueError(f"min_span must be >= 0, got {self.min_span!r}")
        for name in ("half_life", "horizon", "min_t", "huber", "min_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.min_points < 3:
            raise ValueError(f"min_points must be >= 3, got {self.min_points!r}")

    def _init_state(self, n_series: int) -> None:
        self._validate_params_()
        self.stats_ = np.zeros((_N_STATS, n_series))
        self.t_last_ = np.full(n_series, np.nan)
        self.n_seen_ = np.zeros(n_series, dtype=np.int64)
        self.n_features_in_ = n_series

    def _columns(self, columns: ArrayLike | None, width: int) -> NDArray[np.intp] | slice:
        if columns is None:
            if hasattr(self, "n_features_in_") and width != self.n_features_in_:
                raise ValueError(
                    f"X has {width} series, expected {self.n_features_in_}; call resize() first"
                )
            return slice(None)
        cols = np.asarray(columns, dtype=np.intp)
        if cols.shape != (width,):
            raise ValueError(f"columns has shape {cols.shape}, expected ({width},)")
        return cols

    @staticmethod
    def _rows(X: ArrayLike, t: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        rows = np.asarray(X, dtype=np.float64)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        if rows.ndim != 2:
            raise ValueError(f"X must have shape (n_series,) or (n_samples, n_series), got {rows.shape}")
        times = np.asarray(t, dtype=np.float64)
        if times.ndim < 2:
            times = np.atleast_1d(times)
            if times.shape != (rows.shape[0],):
                raise ValueError(f"t has shape {times.shape}, expected ({rows.shape[0]},)")
            times = times[:, None]
        elif times.shape != rows.shape:
            raise ValueError(f"t has shape {times.shape}, expected {rows.shape} or ({rows.shape[0]},)")
        return rows, times

    def _learn_rows(
        self,
        rows: NDArray[np.float64],
        times: NDArray[np.float64],
        cols: NDArray[np.intp] | slice = slice(None),
    ) -> Self:
        stats = self.stats_[:, cols]
        t_last = self.t_last_[cols]
        n_seen = self.n_seen_[cols]
        rate = math.log(2.0) / self.half_life
        for x, t in zip(rows, times, strict=True):
            first = n_seen == 0
            dt = np.where(first, 0.0, t - t_last)
            present = ~np.isnan(x) & (dt >= 0)
            dt = np.where(present, dt, 0.0)
            s0, s1, s2, sx, stx, sxx, w2 = stats
            # Move the origin to t (tau -> tau - dt), then decay the weights.
            lam = np.exp(-rate * dt)
            s2 = (s2 - 2.0 * dt * s1 + dt * dt * s0) * lam
            stx = (stx - dt * sx) * lam
            s1 = (s1 - dt * s0) * lam
            s0, sx, sxx, w2 = s0 * lam, sx * lam, sxx * lam, w2 * lam * lam
            # Huber: clip the new point's residual against the line fitted so far.
            level, _slope, _se, sigma = _fit_line(np.stack([s0, s1, s2, sx, stx, sxx, w2]), True)
            limit = self.huber * np.maximum(sigma, self.min_scale)
            warm = (n_seen >= self.min_points) & np.isfinite(level)
            xv = np.where(present, x, 0.0)
            xe = np.where(warm, level + np.clip(xv - level, -limit, limit), xv)
            p = present.astype(np.float64)
            new = np.stack([s0 + p, s1, s2, sx + p * xe, stx, sxx + p * xe * xe, w2 + p])
            stats = np.where(present, new, stats)
            t_last = np.where(present, t, t_last)
            n_seen = n_seen + present
        self.stats_[:, cols] = stats
        self.t_last_[cols] = t_last
        self.n_seen_[cols] = n_seen
        return self


def _fit_line(stats: NDArray[np.float64], with_sigma: bool = False) -> Any:
    """Weighted least-squares line from the sums: level at tau=0, slope, stderr (and sigma)."""
    s0, s1, s2, sx, stx, sxx, w2 = stats
    with np.errstate(divide="ignore", invalid="ignore"):
        det = s0 * s2 - s1 * s1
        enough = (s0 > 0) & (det > 1e-12 * np.maximum(s0 * s2, 1e-300))
        slope = np.where(enough, (s0 * stx - s1 * sx) / det, np.nan)
        level = np.where(enough, (sx - slope * s1) / s0, np.nan)
        rss = np.maximum(sxx - level * sx - slope * stx, 0.0)
        n_eff = s0 * s0 / w2
        var = np.where(n_eff > 2.0, rss / s0 * n_eff / (n_eff - 2.0), np.nan)
        # Weights are not frequencies: inflate by S0/n_eff (>= 1) to stay conservative.
        stderr = np.sqrt(var * s0 / det * (s0 / n_eff))
    if with_sigma:
        return level, slope, stderr, np.sqrt(var)
    return level, slope, stderr
