"""Composite streaming anomaly score in [0, 1]: vigil's shipped default univariate detector.

One :class:`CompositeDetector` scores many series at once (one column per series), strictly
causally: the score of step i uses steps <= i only. Per step and series:

1. **Streams.** Five signals, each standardised against its own exponentially weighted mean
   and variance (memory ``1 / long_alpha`` steps), so every stream calibrates itself:
   the value, a slow EWMA of the value (multi-scale), the first difference, and the residual of
   a :class:`~detectors.seasonal.SeasonalBaseline` (time-of-day profile + level) and its slow
   EWMA. A scale guard (``rel_scale_floor`` of the series' magnitude) keeps flat or quantised
   series from producing z-scores of 1e4.
2. **Raw score.** ``max |z|`` of the value streams; once the seasonal profile knows the current
   bin, the minimum of that and ``max |z|`` of the residual streams: a point is raw-anomalous
   only if it is unusual for the series *and* for this time of day, so diurnal swings are not
   anomalies and neither is the noise of a young profile.
3. **Anomaly likelihood.** ``log(1 + raw)`` is standardised against its own long history
   (memory ``1 / likelihood_alpha`` steps), like HTM's anomaly likelihood, so a score means the
   same thing on every series: ``score = clip(L / z_full, 0, 1)``.
4. **Context novelty.** A :class:`~detectors.context.ContextNovelty` (in the style of CAD OSE)
   quantises the value into ``ctx_levels`` bins of its running range and remembers which
   sequences of the last 1..``ctx_order`` bins it has seen; the fraction never seen before
   raises the score to at least ``ctx_weight * novelty``. It catches what z-scores alone rank
   low: a new *shape* (a missing daily peak, a changed rhythm). The novelty counts only where
   the raw z-score of step 2 is at least ``ctx_gate``: a new sequence of values that are each
   within ``ctx_gate`` standard deviations of the series' level and of its time of day is
   the everyday churn of a noisy series, not an anomaly (on the NAB development files most
   of the ungated novelty's alarms were false).
5. **Repeat suppression.** A score is kept only when it beats the series' recent record by
   ``record_margin`` (relative); the record decays by ``record_memory / age`` per step (age
   clipped to ``[record_min_rows, record_max_rows]``), so the memory of past anomalies grows
   with the series' history. The first detection of an episode is reported, the echoes are not.
6. **Recurring alarms.** A :class:`~detectors.recurrence.RecurringAlarms` memory remembers each
   series' recent alarms (scores ``>= recur_min_score``). An alarm that comes back a day or two
   later at the same time of day (``recur_tolerance``) with about the same value
   (``recur_ratio`` of its deviation from the level) is reported ``recur_repeats`` times, then
   scores 0 for as long as it keeps its schedule: a nightly backup's CPU or traffic spike is
   routine from the third night on, while a spike at another time, or twice the usual height
   at the usual time, is still news. The record of step 5 forgets within a day, so without
   this a daily job scores as an anomaly every day (on NAB, two AWS CPU files with a daily
   5-minute spike: 12 and 14 false rows, 3 and 4 with it).

The shipped configuration is :data:`DEFAULTS` with :data:`DEFAULT_THRESHOLD`; the same objects
are used by production and by ``benchmarks/nab.py``. Four settings (``ctx_weight``,
``ctx_gate``, ``record_margin``, ``record_memory``) and the threshold were chosen by
leave-one-category-out validation on the NAB development files (``benchmarks/nab_loco.py``;
``ctx_gate`` in round 5); ``profile_alpha`` was chosen the same way in round 1; the others
are fixed (``ctx_forget_every`` is a production choice so the context table cannot saturate
over months; it changes NAB by < 0.1 point). The ``recur_*`` settings were set from what a
daily job looks like (twice is a coincidence, three times a schedule; 30 minutes of jitter;
30 % of the height), then checked on NAB, where neighbouring values give the same score
(benchmarks/README.md, round 7); ``recur_min_score`` is the shipped threshold.

Memory per series with the defaults: 1,376 bytes (136 B of streaming state + 592 B of seasonal
profile: 48 bins x location, scale, count in float32 + 536 B of context table, history, range
and count + 112 B of recurring-alarm memory), measured by
:meth:`CompositeDetector.nbytes_per_series`.

In production the :class:`~detectors.engine.DetectionEngine` calls
:meth:`CompositeDetector.score_update` (its ``SeriesScorer`` hook) with the few hundred series
of one element at a time: only those columns are read and written, the state grows by capacity
doubling as new series appear, and a series scores NaN ("no score yet") for its first
``warmup`` observations. Every piece of state is per series, so this gives the same numbers as
:meth:`CompositeDetector.update` over all series. :meth:`CompositeDetector.state_dict` /
:meth:`CompositeDetector.load_state_dict` persist it as plain arrays (no pickle).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from detectors._growth import series_growth
from detectors.context import ContextNovelty
from detectors.recurrence import RecurringAlarms
from detectors.seasonal import SeasonalBaseline, as_rows

__all__ = ["DEFAULTS", "DEFAULT_THRESHOLD", "STATE_VERSION", "CompositeConfig", "CompositeDetector"]

# stream rows of stat_mean_ / stat_var_
_VALUE, _VALUE_SLOW, _DIFF, _RESID, _RESID_SLOW = range(5)
_N_STREAMS = 5
_LIK_SCALE_FLOOR = 0.05  # floor of the log-score's standard deviation
_Index = slice | NDArray[np.intp]  # every series (views) or some columns (gathers)
# state parts added after version 1, with the setting that came with them: a state saved before
# lacks both, and loads with the setting's default and the part empty
_ADDED_PARTS = {"recur.": "recur_repeats"}
_ADDED_SETTINGS = ("recur_repeats", "recur_tolerance", "recur_ratio", "recur_min_score")


@dataclass(frozen=True, slots=True)
class CompositeConfig:
    """Settings of :class:`CompositeDetector`; :data:`DEFAULTS` is the shipped one."""

    long_alpha: float = 0.002  # memory of each stream's standardisation (~500 steps)
    smooth_alpha: float = 0.1  # slow scale of the value and residual streams (~10 steps)
    n_bins: int = 48  # seasonal profile: half-hour bins
    weekly: bool = False  # seasonal profile per day of the week (7 x n_bins bins; 24 bins fit 4 KB)
    profile_alpha: float = 0.05  # per-bin smoothing (~20 days of one bin) [LOCO]
    level_alpha: float = 0.02  # seasonal level correction (~50 steps)
    min_count: int = 3  # observations before a seasonal bin is used
    likelihood_alpha: float = 0.0003  # memory of the log-score standardisation (~3,300 steps)
    z_full: float = 8.0  # likelihood z-score mapped to a score of 1
    record_margin: float = 0.2  # keep a score only if > record * (1 + margin) [LOCO]
    record_memory: float = 4.0  # record decay per step = record_memory / age [LOCO]
    record_min_rows: int = 1000  # age floor of the record decay
    record_max_rows: int = 20_000  # age cap of the record decay (production: bounded memory)
    warmup: int = 50  # steps per series with score 0
    rel_scale_floor: float = 1e-3  # scale guard, relative to the series' magnitude
    ctx_weight: float = 0.3  # score floor = ctx_weight * context novelty (0 = off) [LOCO]
    ctx_gate: float = 1.75  # novelty counts only where the raw z-score is at least this (0 = always) [LOCO]
    ctx_levels: int = 12  # context novelty: quantisation bins of the running range
    ctx_order: int = 4  # context novelty: longest context, in steps
    ctx_contract: float = 1e-4  # context novelty: range contraction per step
    ctx_forget_every: int = 4096  # context novelty: clear one of 64 table words every N steps
    recur_repeats: int = 2  # an alarm repeating at the same time of day is reported this often, then muted (0 = off)
    recur_tolerance: float = 1800.0  # recurring alarms: seconds either side of the same time of day
    recur_ratio: float = 0.3  # recurring alarms: value within this fraction of the earlier alarm's deviation
    recur_min_score: float = 0.175  # recurring alarms: scores from here on are alarm candidates

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid setting."""
        for name in ("long_alpha", "smooth_alpha", "profile_alpha", "level_alpha", "likelihood_alpha"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"CompositeConfig.{name} must be in (0, 1], got {value!r}")
        if self.n_bins < 1 or self.min_count < 1 or self.warmup < 0:
            raise ValueError(f"CompositeConfig: bad n_bins/min_count/warmup in {self!r}")
        if not (self.z_full > 0 and self.record_margin >= 0 and self.record_memory >= 0):
            raise ValueError(f"CompositeConfig: bad z_full/record_* in {self!r}")
        if not 0.0 <= self.ctx_weight <= 1.0:
            raise ValueError(f"CompositeConfig.ctx_weight must be in [0, 1], got {self.ctx_weight!r}")
        if not self.ctx_gate >= 0.0:
            raise ValueError(f"CompositeConfig.ctx_gate must be >= 0, got {self.ctx_gate!r}")
        if not 1 <= self.record_min_rows <= self.record_max_rows:
            raise ValueError("CompositeConfig: need 1 <= record_min_rows <= record_max_rows")
        if self.recur_repeats < 0:
            raise ValueError(f"CompositeConfig.recur_repeats must be >= 0, got {self.recur_repeats!r}")
        if not 0.0 <= self.recur_tolerance <= 43_200.0:
            raise ValueError(f"CompositeConfig.recur_tolerance must be in [0, 43200] s, got {self.recur_tolerance!r}")
        if not (self.recur_ratio >= 0.0 and 0.0 < self.recur_min_score <= 1.0):
            raise ValueError(f"CompositeConfig: bad recur_ratio/recur_min_score in {self!r}")


DEFAULTS = CompositeConfig()
STATE_VERSION = 1  # of state_dict(); bump when the arrays change meaning
DEFAULT_THRESHOLD = 0.175  # median of the LOCO fold thresholds of the chosen setting (benchmarks/nab_loco.py)


class CompositeDetector(BaseEstimator):
    """Composite streaming anomaly score of many series at once (vigil's default detector).

    Parameters
    ----------
    config : CompositeConfig, default=DEFAULTS
        All settings; the shipped defaults are :data:`DEFAULTS`.
    threshold : float, default=DEFAULT_THRESHOLD
        A composite score ``>= threshold`` is an anomaly (:meth:`decision_function` < 0).

    Attributes
    ----------
    seasonal_ : SeasonalBaseline
        Time-of-day profile of every series (its residual feeds two streams).
    context_ : ContextNovelty or None
        Seen value contexts of every series (None when ``ctx_weight`` is 0).
    stat_mean_ : ndarray of shape (5, n_series)
        Running mean of each stream (value, slow value, difference, residual, slow residual).
    stat_var_ : ndarray of shape (5, n_series)
        Running variance of each stream.
    smooth_ : ndarray of shape (2, n_series)
        Slow EWMA of the value and of the seasonal residual.
    prev_ : ndarray of shape (n_series,)
        Last observed value (NaN before the first).
    lik_mean_ : ndarray of shape (n_series,)
        Running mean of ``log(1 + raw)``.
    lik_var_ : ndarray of shape (n_series,)
        Running variance of ``log(1 + raw)``.
    record_ : ndarray of shape (n_series,)
        Decaying record of the score (repeat suppression).
    recur_ : RecurringAlarms or None
        Recent alarms of every series (None when ``recur_repeats`` is 0).
    n_seen_ : ndarray of shape (n_series,), dtype int32
        Observations learnt per series.
    resid_seen_ : ndarray of shape (n_series,), dtype int32
        Observations with a usable seasonal residual.
    n_features_in_ : int
        Number of series.

    Notes
    -----
    Timestamps are POSIX seconds. NaN marks a missing observation: its series is not updated
    and scores 0. Score first, then learn: :meth:`update` does both for one step.
    """

    def __init__(self, *, config: CompositeConfig = DEFAULTS, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.config = config
        self.threshold = threshold

    # -- learning -------------------------------------------------------------------------

    def fit(self, X: ArrayLike, t: ArrayLike) -> Self:
        """Forget everything, then learn ``X`` step by step.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_steps, n_series)
            Observations, NaN = missing.
        t : array-like of shape (), (n_steps,) or the shape of X
            POSIX timestamps (seconds).

        Returns
        -------
        self : CompositeDetector
        """
        rows, times = as_rows(X, t)
        self._init_state(rows.shape[1])
        for x, ts in zip(rows, times, strict=False):
            self.update(x, ts)
        return self

    def partial_fit(self, X: ArrayLike, t: ArrayLike) -> Self:
        """Learn ``X`` step by step on top of the current state.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_steps, n_series)
            Observations, NaN = missing.
        t : array-like of shape (), (n_steps,) or the shape of X
            POSIX timestamps (seconds).

        Returns
        -------
        self : CompositeDetector
        """
        self.score_stream(X, t)
        return self

    def score_stream(self, X: ArrayLike, t: ArrayLike) -> NDArray[np.float64]:
        """Score then learn each step in turn; the causal streaming run.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_steps, n_series)
            Observations, NaN = missing.
        t : array-like of shape (), (n_steps,) or the shape of X
            POSIX timestamps (seconds).

        Returns
        -------
        scores : ndarray of shape (n_steps, n_series)
            Composite score in [0, 1] of each step, computed before learning it.
        """
        rows, times = as_rows(X, t)
        if not hasattr(self, "n_features_in_"):
            self._init_state(rows.shape[1])
        self._check_width(rows.shape[1])
        out = np.empty_like(rows)
        for i, (x, ts) in enumerate(zip(rows, times, strict=False)):
            out[i] = self.update(x, ts)
        return out

    def update(self, x: ArrayLike, t: ArrayLike) -> NDArray[np.float64]:
        """Score one step of every series, then learn it.

        Parameters
        ----------
        x : array-like of shape (n_series,)
            One observation per series, NaN = missing.
        t : float or array-like of shape (n_series,)
            POSIX timestamp(s) of the step.

        Returns
        -------
        score : ndarray of shape (n_series,)
            Composite anomaly score in [0, 1]; 0 where missing or warming up.
        """
        xv = np.asarray(x, dtype=np.float64)
        if not hasattr(self, "n_features_in_"):
            self._init_state(xv.shape[-1])
        self._check_width(xv.shape[-1] if xv.ndim == 1 else -1)
        return self._step(None, xv, t)

    def score_update(self, columns: ArrayLike, values: ArrayLike, times: ArrayLike) -> NDArray[np.float64]:
        """Score then learn one step of some series only (the engine's ``SeriesScorer`` hook).

        Only the given series are read and written: the same numbers as :meth:`update` fed
        with every series, at the cost of the given ones. A column beyond the current width
        grows the state (capacity doubling, new series start empty).

        Parameters
        ----------
        columns : array-like of int, shape (m,)
            Distinct series indices (>= 0).
        values : array-like of shape (m,)
            One observation per column, NaN = missing.
        times : float or array-like of shape (m,)
            POSIX timestamp(s) of the observations.

        Returns
        -------
        score : ndarray of shape (m,)
            Composite score in [0, 1] (0 for a suppressed repeat); NaN where the value is
            missing or the series is still warming up (fewer than ``config.warmup``
            observations before this one), where :meth:`update` returns 0.
        """
        cols = np.asarray(columns, dtype=np.intp).reshape(-1)
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        if x.shape != cols.shape:
            raise ValueError(f"score_update: {x.shape[0]} values for {cols.shape[0]} columns")
        if not hasattr(self, "n_features_in_"):
            self._init_state(0)
        if cols.size == 0:
            return np.zeros(0)
        if int(cols.min()) < 0:
            raise ValueError(f"score_update: negative column {int(cols.min())}")
        need = int(cols.max()) + 1
        if need > self.n_features_in_:
            self.resize(max(need, 2 * self.n_features_in_))
        warm = ~np.isnan(x) & (self.n_seen_[cols] >= self.config.warmup)
        out = self._step(cols, x, times)
        return np.where(warm, out, np.nan)

    def resize(self, n_series: int) -> Self:
        """Grow to ``n_series`` series; the new ones start empty.

        Parameters
        ----------
        n_series : int
            New number of series, at least the current one.

        Returns
        -------
        self : CompositeDetector
        """
        extra = series_growth(self, n_series)
        if extra is None:
            return self
        if extra:
            self.seasonal_.resize(n_series)
            if self.context_ is not None:
                self.context_.resize(n_series)
            if self.recur_ is not None:
                self.recur_.resize(n_series)
            self.stat_mean_ = np.concatenate([self.stat_mean_, np.zeros((_N_STREAMS, extra))], 1)
            self.stat_var_ = np.concatenate([self.stat_var_, np.zeros((_N_STREAMS, extra))], 1)
            self.smooth_ = np.concatenate([self.smooth_, np.zeros((2, extra))], 1)
            self.prev_ = np.concatenate([self.prev_, np.full(extra, np.nan)])
            for name in ("lik_mean_", "lik_var_", "record_"):
                setattr(self, name, np.concatenate([getattr(self, name), np.zeros(extra)]))
            for name in ("n_seen_", "resid_seen_"):
                grown = np.concatenate([getattr(self, name), np.zeros(extra, dtype=np.int32)])
                setattr(self, name, grown)
            self.n_features_in_ = n_series
        return self

    # -- scoring --------------------------------------------------------------------------

    def composite_score(self, X: ArrayLike, t: ArrayLike) -> NDArray[np.float64]:
        """Composite score in [0, 1] of each row against the current state, without learning.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_steps, n_series)
        t : array-like of shape (), (n_steps,) or the shape of X

        Returns
        -------
        score : ndarray of shape (n_steps, n_series), or (n_series,) for one step
        """
        check_is_fitted(self)
        rows, times = as_rows(X, t)
        self._check_width(rows.shape[1])
        out = np.empty_like(rows)
        for i, (x, ts) in enumerate(zip(rows, times, strict=False)):
            nov = self.context_.novelty(x) if self.context_ is not None else None
            out[i] = self._evaluate(slice(None), x, self.seasonal_.residual(x, ts), nov, ts)[0]
        return out[0] if np.ndim(X) == 1 else out

    def score_samples(self, X: ArrayLike, t: ArrayLike) -> NDArray[np.float64]:
        """Opposite of :meth:`composite_score`: lower is more abnormal.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_steps, n_series)
        t : array-like of shape (), (n_steps,) or the shape of X

        Returns
        -------
        scores : ndarray, shape as :meth:`composite_score`
        """
        return -self.composite_score(X, t)

    def decision_function(self, X: ArrayLike, t: ArrayLike) -> NDArray[np.float64]:
        """``threshold - composite_score``: negative means outlier.

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_steps, n_series)
        t : array-like of shape (), (n_steps,) or the shape of X

        Returns
        -------
        decision : ndarray, shape as :meth:`composite_score`
        """
        return self.score_samples(X, t) + self.threshold

    def predict(self, X: ArrayLike, t: ArrayLike) -> NDArray[np.int64]:
        """+1 for inliers, -1 for outliers (score ``>= threshold``).

        Parameters
        ----------
        X : array-like of shape (n_series,) or (n_steps, n_series)
        t : array-like of shape (), (n_steps,) or the shape of X

        Returns
        -------
        labels : ndarray of int64, shape as :meth:`composite_score`
        """
        return np.where(self.composite_score(X, t) >= self.threshold, -1, 1).astype(np.int64)

    def nbytes_per_series(self) -> float:
        """State bytes per series (every fitted array, seasonal profile included)."""
        check_is_fitted(self)
        nbytes = sum(
            v.nbytes
            for _, obj in self._parts()
            for k, v in vars(obj).items()
            if k.endswith("_") and isinstance(v, np.ndarray)
        )
        return nbytes / max(self.n_features_in_, 1)

    def __sklearn_tags__(self) -> Any:  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- internals ------------------------------------------------------------------------

    def _init_state(self, n_series: int) -> None:
        cfg = self.config
        if not isinstance(cfg, CompositeConfig):
            raise TypeError(f"config must be a CompositeConfig, got {type(cfg).__name__}")
        cfg.validate()
        self.seasonal_ = SeasonalBaseline(
            n_bins=cfg.n_bins,
            weekly=cfg.weekly,
            alpha=cfg.profile_alpha,
            level_alpha=cfg.level_alpha,
            min_count=cfg.min_count,
            rel_scale_floor=cfg.rel_scale_floor,
        ).resize(n_series)
        self.context_: ContextNovelty | None = None
        if cfg.ctx_weight > 0:
            self.context_ = ContextNovelty(
                levels=cfg.ctx_levels,
                order=cfg.ctx_order,
                contract=cfg.ctx_contract,
                forget_every=cfg.ctx_forget_every,
            ).resize(n_series)
        self.recur_: RecurringAlarms | None = None
        if cfg.recur_repeats > 0:
            self.recur_ = RecurringAlarms(
                tolerance=cfg.recur_tolerance, ratio=cfg.recur_ratio, repeats=cfg.recur_repeats
            ).resize(n_series)
        self.stat_mean_ = np.zeros((_N_STREAMS, n_series))
        self.stat_var_ = np.zeros((_N_STREAMS, n_series))
        self.smooth_ = np.zeros((2, n_series))
        self.prev_ = np.full(n_series, np.nan)
        self.lik_mean_ = np.zeros(n_series)
        self.lik_var_ = np.zeros(n_series)
        self.record_ = np.zeros(n_series)
        self.n_seen_ = np.zeros(n_series, dtype=np.int32)
        self.resid_seen_ = np.zeros(n_series, dtype=np.int32)
        self.n_features_in_ = n_series

    def _check_width(self, width: int) -> None:
        if width != self.n_features_in_:
            raise ValueError(
                f"got {width} series, expected {self.n_features_in_}; call resize() when new series appear"
            )

    def _step(self, columns: NDArray[np.intp] | None, x: NDArray[np.float64], t: ArrayLike) -> NDArray[np.float64]:
        """Score then learn one step of ``columns`` (None = every series); 0 while warming up."""
        idx: _Index = slice(None) if columns is None else columns
        r = self.seasonal_.step(x, t, columns)
        nov = self.context_.step(x, columns) if self.context_ is not None else None
        out, state = self._evaluate(idx, x, r, nov, t)
        self._commit(idx, x, state)
        return out

    def _evaluate(
        self,
        idx: _Index,
        x: NDArray[np.float64],
        r: NDArray[np.float64],
        nov: NDArray[np.float64] | None = None,
        t: ArrayLike | None = None,
    ) -> tuple[NDArray[np.float64], dict[str, Any]]:
        """Score of one step of series ``idx`` (``r`` = seasonal residual, NaN if unusable) and the state to commit."""
        cfg = self.config
        present = ~np.isnan(x)
        seasonal_ok = ~np.isnan(r)
        mean, var = _gather(self.stat_mean_, idx), _gather(self.stat_var_, idx)
        n_seen, smooth, prev = _gather(self.n_seen_, idx), _gather(self.smooth_, idx), _gather(self.prev_, idx)
        first = n_seen == 0
        xx = np.where(present, x, mean[_VALUE])
        a = cfg.smooth_alpha
        slow_x = np.where(first, xx, smooth[0] + a * (xx - smooth[0]))
        diff = np.where(np.isnan(prev), 0.0, xx - prev)
        rr = np.where(seasonal_ok, r, 0.0)
        slow_r = np.where(first, 0.0, smooth[1] + a * (rr - smooth[1]))
        streams = np.array([xx, slow_x, diff, rr, slow_r])
        floor = cfg.rel_scale_floor * (np.abs(mean[_VALUE]) + np.sqrt(var[_VALUE])) + 1e-12
        z = np.abs(streams - mean) / np.maximum(np.sqrt(var), floor)
        z_value = z[:_RESID].max(axis=0)
        z_resid = z[_RESID:].max(axis=0)
        use_resid = seasonal_ok & (_gather(self.resid_seen_, idx) >= cfg.warmup)
        raw = np.where(use_resid, np.minimum(z_value, z_resid), z_value)
        g = np.log1p(raw)
        lik = (g - _gather(self.lik_mean_, idx)) / np.maximum(np.sqrt(_gather(self.lik_var_, idx)), _LIK_SCALE_FLOOR)
        score = np.clip(lik / cfg.z_full, 0.0, 1.0)
        if nov is not None:  # an unseen context of unusual values raises the score to ctx_weight * novelty
            novel = np.where(raw >= cfg.ctx_gate, np.nan_to_num(nov), 0.0)
            score = np.maximum(score, cfg.ctx_weight * novel)
        score = np.where(present & (n_seen >= cfg.warmup), score, 0.0)
        kept = score > _gather(self.record_, idx) * (1.0 + cfg.record_margin)
        recur = None
        if self.recur_ is not None and t is not None:  # an alarm repeating a daily one is routine
            pos = np.flatnonzero(score >= cfg.recur_min_score)
            if pos.size:
                cols = pos if isinstance(idx, slice) else idx[pos]
                tt = np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape)[pos]
                slot, suppress = self.recur_.check(cols, x[pos], tt, mean[_VALUE][pos])
                recur = (cols, x[pos], tt, slot, kept[pos])
                kept[pos[suppress]] = False
        out = np.where(kept, score, 0.0)
        return out, {
            "recur": recur,
            "streams": streams,
            "g": g,
            "score": score,
            "slow_x": slow_x,
            "slow_r": slow_r,
            "present": present,
            "seasonal_ok": seasonal_ok,
        }

    def _commit(self, idx: _Index, x: NDArray[np.float64], s: dict[str, Any]) -> None:
        cfg = self.config
        if s["recur"] is not None:
            self.recur_.commit(*s["recur"])
        present, seasonal_ok = s["present"], s["seasonal_ok"]
        n = _gather(self.n_seen_, idx)
        resid_seen = _gather(self.resid_seen_, idx)
        mean, var = _gather(self.stat_mean_, idx), _gather(self.stat_var_, idx)
        first = n == 0
        # stream statistics: running mean/variance while young, exponential after 1/n < alpha
        w = np.maximum(cfg.long_alpha, 1.0 / (n + 1.0))
        wr = np.maximum(cfg.long_alpha, 1.0 / (resid_seen + 1.0))
        weights = np.array([w, w, w, wr, wr])
        upd = np.array([present] * 3 + [present & seasonal_ok] * 2)
        err = s["streams"] - mean
        start = np.array([first] * 3 + [resid_seen == 0] * 2)
        new_mean = np.where(start, s["streams"], mean + weights * err)
        new_var = np.where(start, 0.0, (1.0 - weights) * (var + weights * err * err))
        _scatter(self.stat_mean_, idx, np.where(upd, new_mean, mean))
        _scatter(self.stat_var_, idx, np.where(upd, new_var, var))
        smooth = _gather(self.smooth_, idx)
        _scatter(self.smooth_, idx, np.where(present, np.array([s["slow_x"], s["slow_r"]]), smooth))
        self.prev_[idx] = np.where(present, x, _gather(self.prev_, idx))
        # log-score statistics (anomaly likelihood)
        wl = np.maximum(cfg.likelihood_alpha, 1.0 / (n + 1.0))
        lik_mean, lik_var = _gather(self.lik_mean_, idx), _gather(self.lik_var_, idx)
        e = s["g"] - lik_mean
        self.lik_mean_[idx] = np.where(present, lik_mean + wl * e, lik_mean)
        self.lik_var_[idx] = np.where(present & ~first, (1.0 - wl) * (lik_var + wl * e * e), lik_var)
        # record of the score, decaying by record_memory / age per step
        age = np.clip(n, cfg.record_min_rows, cfg.record_max_rows)
        record = _gather(self.record_, idx)
        self.record_[idx] = np.where(present, np.maximum(s["score"], record * (1.0 - cfg.record_memory / age)), record)
        self.resid_seen_[idx] = resid_seen + (present & seasonal_ok)
        self.n_seen_[idx] = n + present

    def state_dict(self) -> dict[str, Any]:
        """The fitted state as plain arrays plus JSON-able values (no pickle), for persistence.

        Arrays are under ``"<attr>"``, ``"seasonal.<attr>"``, ``"context.<attr>"`` and
        ``"recur.<attr>"``; the JSON-able entries are ``"version"``, ``"config"`` and
        ``"n_series"``. Store the arrays in an npz and the rest in a JSON header;
        :meth:`load_state_dict` takes the union back.
        """
        check_is_fitted(self)
        out: dict[str, Any] = {"version": STATE_VERSION, "config": asdict(self.config), "n_series": self.n_features_in_}
        for prefix, obj in self._parts():
            for name, value in vars(obj).items():
                if name.endswith("_") and isinstance(value, np.ndarray):
                    out[prefix + name] = value.copy()
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> Self:
        """Restore a :meth:`state_dict` (arrays may be numpy 0-d/JSON round-tripped values).

        A state saved before a setting existed (``recur_*``: before recurring alarms) loads with
        that setting's default, and the part it brought starts empty, so an upgrade keeps every
        series' warm statistics.

        Raises
        ------
        ValueError
            Another state version, other settings than ``self.config`` (start a fresh warm-up
            instead), or missing or misshapen arrays.
        """
        version = _json_value(state.get("version"))
        if version != STATE_VERSION:
            raise ValueError(f"composite state version {version!r}, this code reads {STATE_VERSION}")
        saved = _json_value(state.get("config"))
        current = asdict(self.config)
        # a setting added after the state was saved takes its default (its part starts empty);
        # any other missing setting is a state of unknown settings, refused below
        newer = [k for k in _ADDED_SETTINGS if isinstance(saved, dict) and k not in saved]
        if isinstance(saved, dict):
            saved = {**{k: current[k] for k in newer}, **saved}
        if saved != current:
            raise ValueError(f"composite state was saved with other settings: {saved!r}")
        may_lack = {prefix for prefix, setting in _ADDED_PARTS.items() if setting in newer}
        n = int(_json_value(state["n_series"]))
        self._init_state(n)
        for prefix, obj in self._parts():
            for name, fresh in list(vars(obj).items()):
                if not (name.endswith("_") and isinstance(fresh, np.ndarray)):
                    continue
                try:
                    value = np.asarray(state[prefix + name])
                except KeyError as err:
                    if prefix in may_lack:
                        continue
                    raise ValueError(f"composite state lacks {prefix + name!r}") from err
                if value.shape != fresh.shape or value.dtype != fresh.dtype:
                    raise ValueError(
                        f"composite state {prefix + name!r}: {value.dtype}{value.shape}, "
                        f"expected {fresh.dtype}{fresh.shape}"
                    )
                setattr(obj, name, value.copy())
        return self

    def _parts(self) -> list[tuple[str, object]]:
        """Where the fitted arrays live, with their ``state_dict`` prefix."""
        parts: list[tuple[str, object]] = [("", self), ("seasonal.", self.seasonal_)]
        if self.context_ is not None:
            parts.append(("context.", self.context_))
        if self.recur_ is not None:
            parts.append(("recur.", self.recur_))
        return parts

    def config_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for reports and persisted state)."""
        return asdict(self.config)


def _gather(a: NDArray[Any], idx: _Index) -> NDArray[Any]:
    """``a[..., idx]``: a view for every series, a fast ``take`` for some columns."""
    return a[..., idx] if isinstance(idx, slice) else a.take(idx, axis=-1)


def _scatter(a: NDArray[Any], idx: _Index, value: NDArray[Any]) -> None:
    """``a[..., idx] = value``; 2-D column writes go through flat indices (3x faster)."""
    if isinstance(idx, slice) or a.ndim == 1 or not a.flags.c_contiguous:
        a[..., idx] = value
        return
    n = a.shape[-1]
    flat = (np.arange(a.shape[0])[:, None] * n + idx).reshape(-1)
    a.reshape(-1)[flat] = np.asarray(value).reshape(-1)


def _json_value(value: Any) -> Any:
    """A JSON-able entry of a state dict, also when it went through an npz as a 0-d array."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, str) and value[:1] == "{":
        return json.loads(value)
    return value
