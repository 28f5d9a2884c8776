"""Seasonal robust baseline: a time-of-day (optionally day-of-week) profile per series, vectorised.

Each column of ``X`` is one univariate series, each row one time step with its timestamp. Per
series the estimator keeps a profile of ``n_bins`` time-of-day bins (``7 * n_bins`` with
``weekly=True``): a Huber-style robust location (an exponentially weighted mean of residuals
clipped at ``clip`` scales, so one outlier moves a bin by a bounded amount) and a robust scale
(exponentially weighted mean absolute deviation, rescaled to a standard deviation). A fast
exponentially weighted *level* correction shared by all bins follows level shifts, so a series
that doubles its traffic is re-learnt in about ``1 / level_alpha`` steps instead of one day per
bin. The expected value of a step is ``profile_[bin] + level_``.

Scale guard: the scale used to clip and score is never below ``rel_scale_floor`` times the
series' typical magnitude, nor ``min_scale``, so flat or quantised series (where the MAD
collapses to 0) do not produce z-scores of 1e4.
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from detectors._growth import series_growth

__all__ = ["SeasonalBaseline"]

_MAD_TO_SIGMA = math.sqrt(math.pi / 2.0)
_DAY = 86_400.0
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday: day 0 -> weekday 3 (Monday = 0)


class SeasonalBaseline(BaseEstimator):
    """Robust time-of-day / day-of-week profile of many series at once, with level tracking.

    Parameters
    ----------
    n_bins : int, default=48
        Time-of-day bins per day (48 = half-hour bins).
    weekly : bool, default=False
        One profile per day of the week (``7 * n_bins`` bins) instead of one per day.
    alpha : float, default=0.05
        Smoothing factor of a bin's location and scale, per observation falling in the bin.
        A young bin uses ``max(alpha, 1 / count)`` (a plain running mean).
    level_alpha : float, default=0.02
        Smoothing factor of the level correction, per observation of the series.
    clip : float, default=4.0
        Residuals are clipped to ``[-clip * scale, clip * scale]`` before they update a warmed bin
        and the level (Huber-style robustness).
    min_count : int, default=3
        A bin is scored only after this many observations; before, the residual is NaN.
    rel_scale_floor : float, default=1e-3
        Scale guard relative to the series' magnitude (``|profile| + level`` scale).
    min_scale : float, default=1e-9
        Absolute scale floor.
    threshold : float, default=6.0
        Offset of :meth:`decision_function`, in robust standard deviations.

    Attributes
    ----------
    profile_ : ndarray of shape (n_profile_bins, n_series), dtype float32
        Robust location of each bin, net of the level correction.
    scale_ : ndarray of shape (n_profile_bins, n_series), dtype float32
        Robust scale (sigma-equivalent) of each bin.
    count_ : ndarray of shape (n_profile_bins, n_series), dtype float32
        Observations learnt per bin (saturates at 65,000).
    level_ : ndarray of shape (n_series,)
        Level correction added to every bin.
    n_seen_ : ndarray of shape (n_series,), dtype int64
        Observations learnt per series.
    n_features_in_ : int
        Number of series.

    Notes
    -----
    Timestamps are POSIX seconds (UTC; shift them by the site's UTC offset for local-time
    bins). NaN marks a missing observation: that series is neither updated nor scored. Memory
    per series: ``3 * n_profile_bins * 4 + 16`` bytes (592 B with the defaults).
    """

    def __init__(
        self,
        *,
        n_bins: int = 48,
        weekly: bool = False,
        alpha: float = 0.05,
        level_alpha: float = 0.02,
        clip: float = 4.0,
        min_count: int = 3,
        rel_scale_floor: float = 1e-3,
        min_scale: float = 1e-9,
        threshold: float = 6.0,
    ) -> None:
        self.n_bins = n_bins
        self.weekly = weekly
        self.alpha = alpha
        self.level_alpha = level_alpha
        self.clip = clip
        self.min_count = min_count
        self.rel_scale_floor = rel_scale_floor
        self.min_scale = min_scale
        self.threshold = threshold

    # -- learning -------------------------------------------------------------------------

    def fit(self, X: ArrayLike, t: ArrayLike) -> Self:
        """Forget everything, then learn ``X`` row by row.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_steps, n_series)
            Observations, NaN = missing.
        t : array-like of shape (), (n_steps,) or the shape of X
            POSIX timestamps (seconds): one per step, or one per observation.

        Returns
        -------
        self : SeasonalBaseline
        """
        rows, times = self._rows(X, t)
        self._init_state(rows.shape[1])
        return self._learn(rows, times)

    def partial_fit(self, X: ArrayLike, t: ArrayLike) -> Self:
        """Learn ``X`` row by row on top of the current profile.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_steps, n_series)
            Observations, NaN = missing (that series is not updated in that row).
        t : array-like of shape (), (n_steps,) or the shape of X
            POSIX timestamps (seconds).

        Returns
        -------
        self : SeasonalBaseline
        """
        rows, times = self._rows(X, t)
        if not hasattr(self, "n_features_in_"):
            self._init_state(rows.shape[1])
        self._check_width(rows.shape[1])
        return self._learn(rows, times)

    def resize(self, n_series: int) -> Self:
        """Grow to ``n_series`` series; the new ones start empty.

        Parameters
        ----------
        n_series : int
            New number of series, at least the current one.

        Returns
        -------
        self : SeasonalBaseline
        """
        extra = series_growth(self, n_series)
        if extra is None:
            return self
        if extra:
            nb = self.profile_.shape[0]
            pad32 = np.zeros((nb, extra), dtype=np.float32)
            self.profile_ = np.concatenate([self.profile_, pad32], axis=1)
            self.scale_ = np.concatenate([self.scale_, pad32], axis=1)
            self.count_ = np.concatenate([self.count_, pad32], axis=1)
            self.level_ = np.concatenate([self.level_, np.zeros(extra)])
            self.n_seen_ = np.concatenate([self.n_seen_, np.zeros(extra, dtype=np.int64)])
            self.n_features_in_ = n_series
        return self

    # -- scoring --------------------------------------------------------------------------

    def expected(self, t: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Expected value and guarded robust scale of every series at time ``t``.

        Parameters
        ----------
        t : float or array-like of shape (n_series,)
            POSIX timestamp(s) of the step.

        Returns
        -------
        expected : ndarray of shape (n_series,)
            ``profile_[bin] + level_``; NaN where the bin has fewer than ``min_count``
            observations.
        scale : ndarray of shape (n_series,)
            Guarded scale of the bin.
        """
        check_is_fitted(self)
        n = self.n_features_in_
        b = self._bin(np.broadcast_to(np.asarray(t, dtype=np.float64), (n,)))
        cols = np.arange(n)
        loc = self.profile_[b, cols].astype(np.float64)
        scale = self._guard(self.scale_[b, cols].astype(np.float64), loc)
        warm = self.count_[b, cols] >= self.min_count
        return np.where(warm, loc + self.level_, np.nan), scale

    def residual(self, X: ArrayLike, t: ArrayLike) -> NDArray[np.float64]:
        """Residual ``x - expected`` of one step, without learning it.

        Parameters
        ----------
        X : array-like of shape (n_series,)
            One step of every series.
        t : float or array-like of shape (n_series,)
            POSIX timestamp(s) of the step.

        Returns
        -------
        resid : ndarray of shape (n_series,)
            NaN where missing or where the bin is not warmed up.
        """
        x = self._one_row(X)
        exp, _ = self.expected(t)
        return x - exp

    def deviation(self, X: ArrayLike, t: ArrayLike) -> NDArray[np.float64]:
        """Signed robust z-score ``(x - expected) / scale`` of one step, without learning it.

        Parameters
        ----------
        X : array-like of shape (n_series,)
        t : float or array-like of shape (n_series,)

        Returns
        -------
        z : ndarray of shape (n_series,)
            NaN where missing or where the bin is not warmed up.
        """
        x = self._one_row(X)
        exp, scale = self.expected(t)
        return (x - exp) / scale

    def score_samples(self, X: ArrayLike, t: ArrayLike) -> NDArray[np.float64]:
        """Opposite of the absolute robust z-score: lower is more abnormal.

        Parameters
        ----------
        X : array-like of shape (n_series,)
        t : float or array-like of shape (n_series,)

        Returns
        -------
        scores : ndarray of shape (n_series,)
        """
        return -np.abs(self.deviation(X, t))

    def decision_function(self, X: ArrayLike, t: ArrayLike) -> NDArray[np.float64]:
        """``score_samples + threshold``: negative means outlier.

        Parameters
        ----------
        X : array-like of shape (n_series,)
        t : float or array-like of shape (n_series,)

        Returns
        -------
        decision : ndarray of shape (n_series,)
        """
        return self.score_samples(X, t) + self.threshold

    def step(
        self, x: NDArray[np.float64], t: ArrayLike, columns: NDArray[np.intp] | None = None
    ) -> NDArray[np.float64]:
        """Residual of one step against the profile, then learn it (the streaming hot path).

        Parameters
        ----------
        x : ndarray of shape (n_series,) or (len(columns),)
            One step, NaN = missing.
        t : float or array-like of the shape of x
            POSIX timestamp(s).
        columns : ndarray of int, optional
            Distinct series the values belong to; None = every series, in order (the same
            numbers either way: only the given series are read and written).

        Returns
        -------
        resid : ndarray, shape of x
            ``x - expected`` before learning; NaN where missing or the bin is not warmed up.
        """
        if not hasattr(self, "n_features_in_"):
            self._init_state(x.shape[-1])
        idx: slice | NDArray[np.intp] = slice(None) if columns is None else columns
        cols = np.arange(self.n_features_in_) if columns is None else columns
        b = self._bin(np.broadcast_to(np.asarray(t, dtype=np.float64), cols.shape))
        present = ~np.isnan(x)
        for name in ("profile_", "scale_", "count_"):  # flat writes below need C-contiguous arrays
            if not getattr(self, name).flags.c_contiguous:
                setattr(self, name, np.ascontiguousarray(getattr(self, name)))
        at = b * self.n_features_in_ + cols  # flat indices: 4x faster than [b, cols] on a few columns
        loc = self.profile_.reshape(-1).take(at).astype(np.float64)
        scl = self.scale_.reshape(-1).take(at).astype(np.float64)
        cnt = self.count_.reshape(-1).take(at)
        level = self.level_[idx]
        guard = np.maximum(scl, np.maximum(self.rel_scale_floor * np.abs(loc + level), self.min_scale))
        target = np.where(present, x, loc + level) - level
        r = target - loc
        warm = cnt >= self.min_count
        limit = self.clip * guard
        rc = np.where(warm, np.clip(r, -limit, limit), r)
        w = np.maximum(self.alpha, 1.0 / (cnt + 1.0))
        first = cnt == 0
        new_loc = np.where(first, target, loc + w * rc)
        new_scl = np.where(first, 0.0, scl + w * (_MAD_TO_SIGMA * np.abs(rc) - scl))
        upd = present
        self.profile_.reshape(-1)[at] = np.where(upd, new_loc, loc)
        self.scale_.reshape(-1)[at] = np.where(upd, new_scl, scl)
        self.count_.reshape(-1)[at] = np.where(upd, np.minimum(cnt + 1.0, 65_000.0), cnt)
        move = upd & warm
        self.level_[idx] = np.where(move, level + self.level_alpha * rc, level)
        self.n_seen_[idx] = self.n_seen_[idx] + upd
        return np.where(move, r, np.nan)

    def __sklearn_tags__(self) -> Any:  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- internals ------------------------------------------------------------------------

    @property
    def n_profile_bins(self) -> int:
        """Bins per series: ``n_bins``, times 7 when weekly."""
        return self.n_bins * (7 if self.weekly else 1)

    def _bin(self, t: NDArray[np.float64]) -> NDArray[np.intp]:
        day_pos = np.floor((t % _DAY) * (self.n_bins / _DAY)).astype(np.intp)
        day_pos = np.minimum(day_pos, self.n_bins - 1)
        if not self.weekly:
            return day_pos
        weekday = ((np.floor(t / _DAY).astype(np.int64) + _EPOCH_WEEKDAY) % 7).astype(np.intp)
        return weekday * self.n_bins + day_pos

    def _guard(self, scale: NDArray[np.float64], loc: NDArray[np.float64]) -> NDArray[np.float64]:
        magnitude = np.abs(loc + self.level_)
        return np.maximum(scale, np.maximum(self.rel_scale_floor * magnitude, self.min_scale))

    def _validate_params_(self) -> None:
        if self.n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {self.n_bins!r}")
        for name in ("alpha", "level_alpha"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        if not self.clip > 0.0:
            raise ValueError(f"clip must be > 0, got {self.clip!r}")
        if self.min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {self.min_count!r}")
        if self.rel_scale_floor < 0.0 or not self.min_scale > 0.0:
            raise ValueError(
                f"need rel_scale_floor >= 0 and min_scale > 0, got {self.rel_scale_floor!r}, {self.min_scale!r}"
            )

    def _init_state(self, n_series: int) -> None:
        self._validate_params_()
        nb = self.n_profile_bins
        self.profile_ = np.zeros((nb, n_series), dtype=np.float32)
        self.scale_ = np.zeros((nb, n_series), dtype=np.float32)
        self.count_ = np.zeros((nb, n_series), dtype=np.float32)
        self.level_ = np.zeros(n_series)
        self.n_seen_ = np.zeros(n_series, dtype=np.int64)
        self.n_features_in_ = n_series

    def _learn(self, rows: NDArray[np.float64], times: NDArray[np.float64]) -> Self:
        for x, t in zip(rows, times, strict=False):
            self.step(x, t)
        return self

    def _check_width(self, width: int) -> None:
        if width != self.n_features_in_:
            raise ValueError(
                f"X has {width} series, expected {self.n_features_in_}; call resize() when new series appear"
            )

    def _one_row(self, X: ArrayLike) -> NDArray[np.float64]:
        check_is_fitted(self)
        x = np.asarray(X, dtype=np.float64)
        if x.shape != (self.n_features_in_,):
            raise ValueError(f"X has shape {x.shape}, expected ({self.n_features_in_},)")
        return x

    @staticmethod
    def _rows(X: ArrayLike, t: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return as_rows(X, t)


def as_rows(X: ArrayLike, t: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(X, t)`` as ``(n_steps, n_series)`` values and ``(n_steps, n_series)`` timestamps."""
    x = np.asarray(X, dtype=np.float64)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2:
        raise ValueError(f"X must have shape (n_series,) or (n_steps, n_series), got {x.shape}")
    ts = np.asarray(t, dtype=np.float64)
    if ts.ndim == 1 and ts.shape[0] == x.shape[0] and x.shape[0] != 1:
        ts = ts[:, None]
    elif ts.ndim == 1 and x.shape[0] == 1 and ts.shape[0] == x.shape[1]:
        ts = ts[None, :]
    try:
        ts = np.broadcast_to(ts, x.shape)
    except ValueError as err:
        raise ValueError(f"t has shape {np.shape(t)}, expected (), (n_steps,) or {x.shape}") from err
    return x, ts
