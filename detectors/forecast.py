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
daily swing must already be within ``slope * horizon`` of the threshold to be reported. A link
that runs hot (peaking at 80-88 % every evening) is that close: for it the engine fits the same
line to the deviation from a :class:`SeasonalProfile` (time-of-day bins) and passes the
profile's own path as ``offsets``, so the forecast is "the usual evening plus the unusual
trend". Trigg's tracking signal (``max_bias``) drops a trend the series keeps falling short of.
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

__all__ = ["SeasonalProfile", "TrendForecaster"]

# Row order of ``stats_``: weighted sums with tau = t_i - t_last (<= 0).
_S0, _S1, _S2, _SX, _STX, _SXX, _W2 = range(7)
_N_STATS = 7
_MAD_TO_SIGMA = math.sqrt(math.pi / 2.0)
_FORGET_AFTER = 20.0  # half-lives of silence after which a series' fit starts afresh (weights < 1e-6)


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
    bias_memory : float, default=0.25
        Memory of the tracking signal, as a fraction of ``half_life``.
    max_bias : float, default=0.5
        A trend is not trusted while its tracking signal (Trigg's: the smoothed one-step-ahead
        error over the smoothed absolute error, in [-1, 1]) is below ``-max_bias`` in the
        direction of the threshold: the series keeps falling short of its own line, as after a
        step or a spike levels off.
    shift_after : int or None, default=None
        After this many consecutive residuals beyond the Huber limit on the same side, the
        points are learnt unclipped (a level shift or a ramp, not outliers); None = always
        clip (the default: a spike that levels off must not tilt the line).

    Attributes
    ----------
    stats_ : ndarray of shape (7, n_series)
        Exponentially weighted sums S0, S(tau), S(tau^2), S(x), S(tau x), S(x^2), S(w^2).
    t_last_ : ndarray of shape (n_series,)
        Time of the latest learnt observation per series (NaN before the first).
    n_seen_ : ndarray of shape (n_series,), dtype int64
        Observations learnt per series.
    errors_ : ndarray of shape (2, n_series)
        Exponentially weighted one-step-ahead error and absolute error (the tracking signal).
    run_ : ndarray of shape (n_series,), dtype int16
        Consecutive residuals beyond the Huber limit, signed by their side.
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
        bias_memory: float = 0.25,
        max_bias: float = 0.5,
        shift_after: int | None = None,
    ) -> None:
        self.half_life = half_life
        self.horizon = horizon
        self.min_t = min_t
        self.min_points = min_points
        self.min_span = min_span
        self.huber = huber
        self.min_scale = min_scale
        self.bias_memory = bias_memory
        self.max_bias = max_bias
        self.shift_after = shift_after

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

    def partial_fit(
        self,
        X: ArrayLike,
        t: ArrayLike,
        *,
        columns: ArrayLike | None = None,
        half_life: ArrayLike | None = None,
    ) -> Self:
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
        half_life : array-like of shape (n_columns,), optional
            Per-series memory overriding ``half_life`` (a fast-moving kind of series).

        Returns
        -------
        self : TrendForecaster
        """
        rows, times = self._rows(X, t)
        if not hasattr(self, "n_features_in_"):
            if columns is not None:
                raise ValueError("the first partial_fit needs every series; call resize() first")
            self._init_state(rows.shape[1])
        return self._learn_rows(rows, times, self._columns(columns, rows.shape[1]), half_life)

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
            self.errors_ = np.concatenate([self.errors_, np.zeros((2, extra))], axis=1)
            self.run_ = np.concatenate([self.run_, np.zeros(extra, dtype=np.int16)])
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
        min_span: ArrayLike | None = None,
        horizon: ArrayLike | None = None,
        offsets: ArrayLike | None = None,
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
        min_span, horizon : array-like broadcastable to X, optional
            Per-series ``min_span`` and ``horizon`` overrides.
        offsets : array-like of shape (n_steps, len(X)), optional
            A known path added to the line (a seasonal profile's change from ``t``) at the
            horizons ``horizon * k / n_steps``, k = 1..n_steps; the ETA is then the first such
            horizon where line + offset is beyond ``threshold`` (interpolated within its step).

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
        reach = np.broadcast_to(
            np.asarray(self.horizon if horizon is None else horizon, dtype=np.float64), x.shape
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = (thr - level) / slope if offsets is None else _first_crossing(
                level, slope, thr, sign, np.asarray(offsets, dtype=np.float64), reach
            )
            confident = np.abs(slope) >= self.min_t * np.maximum(stderr, self.min_scale)
        spans = self.min_span if min_span is None else np.asarray(min_span, dtype=np.float64)
        ok = (
            (self.n_seen_[cols] >= self.min_points)
            & (span >= spans)
            & confident
            & (sign * slope > 0)
            & (sign * (thr - x) > 0)  # not beyond it yet: that is a breach, not a forecast
            & (sign * (thr - level) > 0)
            # the latest value must sit on the line: after a step or a collapse it does not
            & (np.abs(x - level) <= self.huber * np.maximum(sigma, self.min_scale))
            & (sign * self.tracking_signal(cols) >= -self.max_bias)
            & (eta > 0)
            & (eta <= reach)
        )
        return np.where(ok, eta, np.nan)

    def tracking_signal(self, columns: ArrayLike | slice | None = None) -> NDArray[np.float64]:
        """Trigg's tracking signal per series in [-1, 1] (0 before any error): > 0 = above the line."""
        check_is_fitted(self)
        cols = slice(None) if columns is None else columns
        e, a = self.errors_[:, cols]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, e / a, 0.0)

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
        self.errors_ = np.zeros((2, n_series))
        self.run_ = np.zeros(n_series, dtype=np.int16)
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
        half_life: ArrayLike | None = None,
    ) -> Self:
        stats = self.stats_[:, cols]
        t_last = self.t_last_[cols]
        n_seen = self.n_seen_[cols]
        errors = self.errors_[:, cols]
        run = self.run_[cols]
        rate = math.log(2.0) / np.asarray(self.half_life if half_life is None else half_life, dtype=np.float64)
        error_rate = rate / self.bias_memory
        for x, t in zip(rows, times, strict=True):
            # After a silence of _FORGET_AFTER half-lives (a device down for hours) the old points
            # weigh nothing: the fit starts afresh, warm-up included, rather than from residue.
            # A fit already broken by such a silence (a state saved before this rule) restarts too.
            stale = (n_seen > 0) & ~np.isnan(x) & (
                (t - t_last > _FORGET_AFTER / rate * math.log(2.0)) | ~np.isfinite(stats).all(axis=0)
            )
            if stale.any():
                stats = np.where(stale, 0.0, stats)
                errors = np.where(stale, 0.0, errors)
                n_seen = np.where(stale, 0, n_seen)
                run = np.where(stale, 0, run).astype(np.int16)
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
            # no residual scale yet (fewer than about two points' worth of weight): no clipping
            warm = (n_seen >= self.min_points) & np.isfinite(level) & np.isfinite(limit)
            xv = np.where(present, x, 0.0)
            # Tracking signal: the one-step-ahead error of the line (its level at t), smoothed.
            err = np.where(warm & present, xv - level, 0.0)
            keep = np.exp(-error_rate * dt)
            errors = np.where(warm & present, np.stack([errors[0] * keep + (1 - keep) * err,
                                                        errors[1] * keep + (1 - keep) * np.abs(err)]),
                              errors)  # fmt: skip
            side = np.where(warm & present & (np.abs(xv - level) > limit), np.sign(xv - level), 0)
            run = np.where(side == 0, 0, np.where(np.sign(run) == side, run + side, side)).astype(np.int16)
            shifted = np.abs(run) >= (self.shift_after or np.iinfo(np.int16).max)
            xe = np.where(warm & ~shifted, level + np.clip(xv - level, -limit, limit), xv)
            p = present.astype(np.float64)
            new = np.stack([s0 + p, s1, s2, sx + p * xe, stx, sxx + p * xe * xe, w2 + p])
            stats = np.where(present, new, stats)
            t_last = np.where(present, t, t_last)
            n_seen = n_seen + present
        self.stats_[:, cols] = stats
        self.t_last_[cols] = t_last
        self.n_seen_[cols] = n_seen
        self.errors_[:, cols] = errors
        self.run_[cols] = run
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


def _first_crossing(
    level: NDArray[np.float64],
    slope: NDArray[np.float64],
    thr: NDArray[np.float64],
    sign: NDArray[np.float64],
    offsets: NDArray[np.float64],
    horizon: NDArray[np.float64],
) -> NDArray[np.float64]:
    """First time in (0, horizon] at which ``level + slope h + offset(h)`` is beyond ``thr``."""
    steps = offsets.shape[0]
    h = horizon[None, :] * np.arange(0, steps + 1, dtype=np.float64)[:, None] / steps
    path = np.vstack([np.zeros((1, offsets.shape[1])), offsets])
    gap = sign * (thr - (level + slope * h + path))  # > 0: not there yet
    crossed = gap <= 0
    crossed[0] = False
    k = np.argmax(crossed, axis=0)
    found = crossed[k, np.arange(gap.shape[1])]
    cols = np.arange(gap.shape[1])
    g0, g1 = gap[np.maximum(k - 1, 0), cols], gap[k, cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(g0 > g1, g0 / (g0 - g1), 1.0)
    eta = h[np.maximum(k - 1, 0), cols] + np.clip(frac, 0.0, 1.0) * horizon / steps
    return np.where(found, eta, np.inf)


class SeasonalProfile(BaseEstimator):
    """Time-of-day profile of many series: what each one usually is at this hour.

    ``bins`` bins over ``period`` seconds (half-hour bins over a day by default); a bin is the
    running mean of its first ``period / bins`` seconds of observations, then an exponentially
    weighted mean with a memory of ``memory`` periods. ``value(t)`` interpolates linearly
    between bin centres; it is NaN until a series has been observed for a whole period (every
    bin seen), so a forecaster can use the profile only once it knows the whole day.

    Parameters
    ----------
    period : float, default=86400.0
        Seconds of one season (a day).
    bins : int, default=48
        Bins per period.
    memory : float, default=3.0
        Periods after which an old day's weight has fallen to 1/e.
    offset : float, default=0.0
        Seconds added to ``t`` before binning (a site's UTC offset, so bins are local hours).

    Attributes
    ----------
    profile_ : ndarray of shape (bins, n_series), float32
        The profile (NaN = bin not seen yet).
    first_ : ndarray of shape (n_series,)
        Time of each series' first observation (NaN before it).
    n_features_in_ : int
        Number of series.
    """

    def __init__(
        self, *, period: float = 86400.0, bins: int = 48, memory: float = 3.0, offset: float = 0.0
    ) -> None:
        self.period = period
        self.bins = bins
        self.memory = memory
        self.offset = offset

    def resize(self, n_series: int) -> Self:
        """Grow to ``n_series`` series; the new ones start empty."""
        if not hasattr(self, "n_features_in_"):
            if self.period <= 0 or self.bins < 2 or self.memory <= 0:
                raise ValueError(f"need period > 0, bins >= 2, memory > 0; got {self.get_params()}")
            self.profile_ = np.full((self.bins, 0), np.nan, dtype=np.float32)
            self.first_ = np.zeros(0)
            self.n_features_in_ = 0
        extra = n_series - self.n_features_in_
        if extra < 0:
            raise ValueError(f"resize can only grow: {n_series} < {self.n_features_in_} series")
        if extra:
            self.profile_ = np.concatenate(
                [self.profile_, np.full((self.bins, extra), np.nan, dtype=np.float32)], axis=1
            )
            self.first_ = np.concatenate([self.first_, np.full(extra, np.nan)])
            self.n_features_in_ = n_series
        return self

    def fit(self, X: ArrayLike, t: ArrayLike, *, dt: ArrayLike) -> Self:
        """Forget everything, then learn the rows of ``X`` (n_samples, n_series) at times ``t``."""
        rows = np.atleast_2d(np.asarray(X, dtype=np.float64))
        times = np.broadcast_to(np.atleast_1d(np.asarray(t, dtype=np.float64)), rows.shape[:1])
        for name in ("profile_", "first_", "n_features_in_"):
            self.__dict__.pop(name, None)
        self.resize(rows.shape[1])
        cols = np.arange(rows.shape[1])
        for row, when in zip(rows, times, strict=True):
            self.partial_fit(row, when, columns=cols, dt=dt)
        return self

    def partial_fit(self, X: ArrayLike, t: ArrayLike, *, columns: ArrayLike, dt: ArrayLike) -> Self:
        """Learn one observation per series ``columns``: values ``X`` (NaN = skip) at times ``t``.

        ``dt`` is the time each observation stands for (the poll interval, seconds).
        """
        check_is_fitted(self)
        cols = np.asarray(columns, dtype=np.intp)
        x = np.asarray(X, dtype=np.float64)
        tt = np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape)
        ok = ~np.isnan(x)
        cols, x, tt = cols[ok], x[ok], tt[ok]
        d = np.broadcast_to(np.asarray(dt, dtype=np.float64), ok.shape)[ok]
        self.first_[cols] = np.where(np.isnan(self.first_[cols]), tt, self.first_[cols])
        width = self.period / self.bins
        b = (np.floor(((tt + self.offset) % self.period) / width)).astype(np.intp) % self.bins
        old = self.profile_[b, cols].astype(np.float64)
        age = tt - self.first_[cols]
        # First period: a running mean of the bin (weight dt / time seen so far in the bin);
        # later: exponential forgetting over ``memory`` periods of this bin's visits.
        first_visit = age < self.period
        within = np.minimum(np.minimum((tt + self.offset) % width, age) + d, width + d)
        alpha = np.where(
            first_visit, np.minimum(d / np.maximum(within, d), 1.0), -np.expm1(-d / (width * self.memory))
        )
        new = np.where(np.isnan(old), x, old + alpha * (x - old))
        self.profile_[b, cols] = new.astype(np.float32)
        return self

    def value(self, t: ArrayLike, *, columns: ArrayLike) -> NDArray[np.float64]:
        """The profile at times ``t`` of the series ``columns``; NaN until a whole period is known."""
        check_is_fitted(self)
        cols = np.asarray(columns, dtype=np.intp)
        tt = np.broadcast_to(np.asarray(t, dtype=np.float64), cols.shape)
        v = self._interp(tt, cols)
        ready = tt - self.first_[cols] >= self.period
        return np.where(ready, v, np.nan)

    def path(self, t: ArrayLike, horizons: ArrayLike, *, columns: ArrayLike) -> NDArray[np.float64]:
        """Profile change from ``t`` to ``t + h``, shape (n_horizons, n_columns).

        ``horizons`` has shape (n_horizons,) or (n_horizons, n_columns).
        """
        cols = np.asarray(columns, dtype=np.intp)
        tt = np.broadcast_to(np.asarray(t, dtype=np.float64), cols.shape)
        now = self._interp(tt, cols)
        h = np.asarray(horizons, dtype=np.float64)
        h = h[:, None] if h.ndim == 1 else h
        later = self._interp(tt[None, :] + h, np.broadcast_to(cols, (h.shape[0], len(cols))))
        return later - now[None, :]

    def _interp(self, t: NDArray[np.float64], cols: NDArray[np.intp]) -> NDArray[np.float64]:
        width = self.period / self.bins
        pos = ((t + self.offset) % self.period) / width - 0.5
        b0 = np.floor(pos).astype(np.intp)
        f = pos - b0
        p = self.profile_
        a = p[b0 % self.bins, cols].astype(np.float64)
        b = p[(b0 + 1) % self.bins, cols].astype(np.float64)
        return a + (b - a) * f
