"""Context novelty of many quantised series at once, in the style of CAD OSE, vectorised.

Per series the value is quantised into ``levels`` bins of its running range (min/max seen so
far, slowly contracting towards the mean, so one glitch does not squash the scale forever).
The last ``order`` quantised values form ``order`` nested *contexts* (the current bin; the
previous and current bins; ...). Each context is hashed into a per-series bit table of
``n_slots`` bits. The novelty of a step is the fraction of its contexts never seen before
(bit clear); the bits are then set. A series that repeats its patterns scores 0, a new level
or a new shape scores up to 1. This is the core idea of the Contextual Anomaly Detector (open
source edition): anomalies are unseen *sequences* of values, not only unseen values.

Optionally the table forgets slowly: one 64-bit word of a series' table (in rotation) is
cleared every ``forget_every`` observations of that series, so a table cannot saturate on a
series that runs for months. Everything is per series, so :meth:`ContextNovelty.step` can update
any subset of the series (``columns=``) and give the same numbers as a full-width step.

Memory per series: ``n_slots / 8`` bytes of bits + ``order`` bytes of history + 2 floats + an
int32 count (``512 + 4 + 16 + 4 = 536`` bytes with the defaults).
"""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import NDArray

__all__ = ["ContextNovelty"]

_MIX = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio multiplier (Fibonacci hashing)
_Index = slice | NDArray[np.intp]  # every series (a view) or some columns (a gather)


class ContextNovelty:
    """Fraction of never-seen value contexts at each step of many series (a CAD-style novelty).

    Parameters
    ----------
    levels : int, default=12
        Quantisation bins of the running range (at most 255).
    order : int, default=4
        Longest context, in steps (contexts of length 1..order are scored).
    n_slots : int, default=4096
        Bits of the hashed context table per series (a multiple of 64).
    contract : float, default=1e-4
        Per step, the running min and max move this fraction of the range towards the mean.
    forget_every : int, default=4096
        One 64-bit word of a series' table is cleared every ``forget_every`` observations of that
        series (0 = never).

    Attributes
    ----------
    table_ : ndarray of shape (n_slots // 64, n_series), dtype uint64
        Seen-context bits.
    hist_ : ndarray of shape (order, n_series), dtype uint8
        Last quantised values, newest first.
    lo_, hi_ : ndarray of shape (n_series,)
        Running range (NaN before the first observation).
    count_ : ndarray of shape (n_series,), dtype int32
        Observations learnt per series (drives the forgetting rotation).
    """

    def __init__(
        self,
        *,
        levels: int = 12,
        order: int = 4,
        n_slots: int = 4096,
        contract: float = 1e-4,
        forget_every: int = 4096,
    ) -> None:
        if not 2 <= levels <= 255:
            raise ValueError(f"ContextNovelty.levels must be in [2, 255], got {levels!r}")
        if order < 1:
            raise ValueError(f"ContextNovelty.order must be >= 1, got {order!r}")
        if n_slots < 64 or n_slots % 64:
            raise ValueError(f"ContextNovelty.n_slots must be a positive multiple of 64, got {n_slots!r}")
        if not 0.0 <= contract < 0.5 or forget_every < 0:
            raise ValueError(f"ContextNovelty: bad contract/forget_every {contract!r}/{forget_every!r}")
        self.levels = levels
        self.order = order
        self.n_slots = n_slots
        self.contract = contract
        self.forget_every = forget_every

    def resize(self, n_series: int) -> Self:
        """Grow to ``n_series`` series; the new ones start empty."""
        old = getattr(self, "table_", None)
        n_old = 0 if old is None else old.shape[1]
        if n_series < n_old:
            raise ValueError(f"resize can only grow: {n_series} < {n_old} series")
        extra = n_series - n_old
        words = self.n_slots // 64
        if old is None:
            self.table_ = np.zeros((words, n_series), dtype=np.uint64)
            self.hist_ = np.zeros((self.order, n_series), dtype=np.uint8)
            self.lo_ = np.full(n_series, np.nan)
            self.hi_ = np.full(n_series, np.nan)
            self.count_ = np.zeros(n_series, dtype=np.int32)
        elif extra:
            self.table_ = np.concatenate([self.table_, np.zeros((words, extra), dtype=np.uint64)], 1)
            self.hist_ = np.concatenate([self.hist_, np.zeros((self.order, extra), dtype=np.uint8)], 1)
            self.lo_ = np.concatenate([self.lo_, np.full(extra, np.nan)])
            self.hi_ = np.concatenate([self.hi_, np.full(extra, np.nan)])
            self.count_ = np.concatenate([self.count_, np.zeros(extra, dtype=np.int32)])
        return self

    def _quantise(self, x: NDArray[np.float64], idx: _Index) -> tuple[NDArray[np.uint8], NDArray, NDArray]:
        lo = np.fmin(self.lo_[idx], x)
        hi = np.fmax(self.hi_[idx], x)
        span = hi - lo
        scale = np.where(span > 0, self.levels / np.where(span > 0, span, 1.0), 0.0)
        q = np.clip(np.nan_to_num((x - lo) * scale), 0, self.levels - 1).astype(np.uint8)
        return q, lo, hi

    def _slots(self, hist: NDArray[np.uint8]) -> NDArray[np.uint64]:
        """Hashed slot of each nested context: shape (order, n_series)."""
        h = np.zeros(hist.shape[1], dtype=np.uint64)
        out = np.empty(hist.shape, dtype=np.uint64)
        shift = np.uint64(64 - int(np.log2(self.n_slots)))
        for k in range(self.order):
            h = (h ^ (hist[k].astype(np.uint64) + np.uint64(k + 1))) * _MIX
            out[k] = h >> shift
        return out

    def novelty(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Novelty in [0, 1] of one step of every series, without learning it (NaN where missing)."""
        idx = slice(None)
        q, _, _ = self._quantise(x, idx)
        hist = np.concatenate([q[None], self.hist_[:-1]])
        seen = self._lookup(self._slots(hist), np.arange(x.shape[0]))
        return np.where(np.isnan(x), np.nan, 1.0 - seen.mean(axis=0))

    def step(self, x: NDArray[np.float64], columns: NDArray[np.intp] | None = None) -> NDArray[np.float64]:
        """Novelty in [0, 1] of one step (NaN where missing), then learn it.

        Parameters
        ----------
        x : ndarray of shape (n_series,) or (len(columns),)
            One observation per series (of ``columns``), NaN = missing.
        columns : ndarray of int, optional
            Distinct series the values belong to; None = every series, in order.

        Returns
        -------
        novelty : ndarray, shape of ``x``
        """
        idx: _Index = slice(None) if columns is None else columns
        cols = np.arange(x.shape[0]) if columns is None else columns
        present = ~np.isnan(x)
        q, lo, hi = self._quantise(x, idx)
        old_hist = self.hist_[:, idx]
        hist = np.where(present, np.concatenate([q[None], old_hist[:-1]]), old_hist)
        slots = self._slots(hist)
        seen = self._lookup(slots, cols)
        nov = 1.0 - seen.mean(axis=0)
        # learn: set the bits of the present series
        word = (slots >> np.uint64(6)).astype(np.intp)
        bit = np.left_shift(np.uint64(1), slots & np.uint64(63))
        if not self.table_.flags.c_contiguous:  # the flat writes below need it
            self.table_ = np.ascontiguousarray(self.table_)
        table = self.table_.reshape(-1)
        at = word * self.table_.shape[1] + cols  # flat indices: 4x faster than [word, cols]
        for k in range(self.order):
            cur = table.take(at[k])
            table[at[k]] = np.where(present, cur | bit[k], cur)
        count = self.count_[idx]
        if self.forget_every:
            due = present & (count % self.forget_every == 0)
            if due.any():
                forget = (count[due] // self.forget_every) % self.table_.shape[0]
                self.table_[forget, cols[due]] = 0
        self.count_[idx] = count + present
        self.hist_[:, idx] = hist
        if self.contract:
            mid = 0.5 * (lo + hi)
            lo = lo + self.contract * (mid - lo)
            hi = hi - self.contract * (hi - mid)
        self.lo_[idx] = np.where(present, lo, self.lo_[idx])
        self.hi_[idx] = np.where(present, hi, self.hi_[idx])
        return np.where(present, nov, np.nan)

    def _lookup(self, slots: NDArray[np.uint64], cols: NDArray[np.intp]) -> NDArray[np.bool_]:
        word = (slots >> np.uint64(6)).astype(np.intp)
        bits = self.table_.reshape(-1).take(word * self.table_.shape[1] + cols)
        return ((bits >> (slots & np.uint64(63))) & np.uint64(1)).astype(bool)
