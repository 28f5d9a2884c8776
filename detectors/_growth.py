"""The one rule every series-vectorised estimator's ``resize`` follows: grow only."""

from __future__ import annotations

from typing import Any

__all__ = ["series_growth"]


def series_growth(estimator: Any, n_series: int) -> int | None:
    """How many series ``resize(n_series)`` adds; None when the estimator was empty and is now initialised.

    An estimator without state (no ``n_features_in_``) gets ``_init_state(n_series)``; a shrink raises.
    """
    if not hasattr(estimator, "n_features_in_"):
        estimator._init_state(n_series)
        return None
    extra = n_series - estimator.n_features_in_
    if extra < 0:
        raise ValueError(f"resize can only grow: {n_series} < {estimator.n_features_in_} series")
    return extra
