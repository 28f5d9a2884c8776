"""Collective anomalies: many children of one parent going wrong together become one parent event.

Children are series or elements (the ports of one OLT, the ONTs of one PON, the DSLAMs of one
area); each has at most one parent. A child counts as anomalous for ``window`` seconds after
its last anomalous observation, so children that degrade a few polls apart still coincide.
A parent is collectively anomalous when at least ``min_count`` of its children *and* at least
``min_fraction`` of them are anomalous at once. The detector reports which children, so their
individual events can be attributed to the parent.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

__all__ = ["CollectiveDetector"]

NO_PARENT = -1


class CollectiveDetector(BaseEstimator):
    """Fraction of each parent's children anomalous within a time window.

    Parameters
    ----------
    min_fraction : float, default=0.5
        Share of a parent's children that must be anomalous, in (0, 1].
    min_count : int, default=3
        Number of children that must be anomalous (a parent of two flaky ports is not a
        collective fault).
    window : float, default=300.0
        Seconds a child stays anomalous after its last anomalous observation.

    Attributes
    ----------
    parent_ : ndarray of shape (n_children,), dtype intp
        Parent index of each child, ``-1`` for none.
    last_anomalous_ : ndarray of shape (n_children,)
        Time of each child's latest anomalous observation (-inf = never).
    n_parents_ : int
        Number of parents.
    """

    def __init__(self, *, min_fraction: float = 0.5, min_count: int = 3, window: float = 300.0) -> None:
        self.min_fraction = min_fraction
        self.min_count = min_count
        self.window = window

    def fit(self, parent: ArrayLike, n_parents: int | None = None) -> Self:
        """Set the child -> parent map and forget all anomalies.

        Parameters
        ----------
        parent : array-like of int, shape (n_children,)
            Parent index per child, -1 for a child without parent.
        n_parents : int, optional
            Number of parents; default ``max(parent) + 1``.

        Returns
        -------
        self : CollectiveDetector
        """
        if not 0.0 < self.min_fraction <= 1.0 or self.min_count < 1 or not self.window >= 0:
            raise ValueError(
                f"need 0 < min_fraction <= 1, min_count >= 1, window >= 0; got "
                f"{self.min_fraction!r}, {self.min_count!r}, {self.window!r}"
            )
        p = np.asarray(parent, dtype=np.intp).reshape(-1)
        self.parent_ = p
        self.n_parents_ = int(max(n_parents or 0, int(p.max(initial=-1)) + 1))
        self.last_anomalous_ = np.full(len(p), -np.inf)
        return self

    def regroup(self, parent: ArrayLike, n_parents: int | None = None) -> Self:
        """Change or grow the child -> parent map, keeping known children's anomaly times."""
        if not hasattr(self, "parent_"):
            return self.fit(parent, n_parents)
        last = self.last_anomalous_
        self.fit(parent, n_parents)
        keep = min(len(last), len(self.last_anomalous_))
        self.last_anomalous_[:keep] = last[:keep]
        return self

    def partial_fit(self, anomalous: ArrayLike, t: float, *, children: ArrayLike | None = None) -> Self:
        """Record which children are anomalous at time ``t``.

        Parameters
        ----------
        anomalous : array-like of bool, shape (n_children,) or (len(children),)
        t : float
            Time of the observation, seconds.
        children : array-like of int, optional
            Child indices of ``anomalous``; default all.

        Returns
        -------
        self : CollectiveDetector
        """
        check_is_fitted(self)
        flags = np.asarray(anomalous, dtype=bool)
        idx = np.arange(len(self.parent_)) if children is None else np.asarray(children, dtype=np.intp)
        if flags.shape != idx.shape:
            raise ValueError(f"anomalous has shape {flags.shape}, expected {idx.shape}")
        self.last_anomalous_[idx[flags]] = t
        return self

    def counts(self, t: float) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(anomalous children, all children) per parent at time ``t``, shape (n_parents,) each."""
        check_is_fitted(self)
        has = self.parent_ >= 0
        hot = has & (t - self.last_anomalous_ <= self.window)
        total = np.bincount(self.parent_[has], minlength=self.n_parents_)
        bad = np.bincount(self.parent_[hot], minlength=self.n_parents_)
        return bad.astype(np.int64), total.astype(np.int64)

    def score_samples(self, t: float) -> NDArray[np.float64]:
        """Minus the anomalous share of each parent's children (lower = more collective)."""
        bad, total = self.counts(t)
        return -np.divide(bad, total, out=np.zeros(len(bad)), where=total > 0)

    def decision_function(self, t: float) -> NDArray[np.float64]:
        """Negative where a parent is collectively anomalous (share and count both reached)."""
        bad, total = self.counts(t)
        share = np.divide(bad, total, out=np.zeros(len(bad)), where=total > 0)
        fire = self.predict(t)
        # share - min_fraction in magnitude, strictly signed by the decision (0 is ambiguous)
        return np.where(
            fire, np.minimum(self.min_fraction - share, 0.0) - 1e-12, np.maximum(self.min_fraction - share, 1e-12)
        )

    def predict(self, t: float) -> NDArray[np.bool_]:
        """Which parents are collectively anomalous at ``t``, shape (n_parents,)."""
        bad, total = self.counts(t)
        return (bad >= self.min_count) & (bad >= self.min_fraction * total) & (total > 0)

    def members(self, parent: int, t: float) -> NDArray[np.intp]:
        """Indices of the children of ``parent`` anomalous at ``t``."""
        check_is_fitted(self)
        hot = (self.parent_ == parent) & (t - self.last_anomalous_ <= self.window)
        return np.flatnonzero(hot)
