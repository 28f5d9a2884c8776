"""Per-element multivariate outliers: an IsolationForest over each element's recent feature vectors.

Each element (router, OLT, DSLAM) contributes one feature vector per step (e.g. peak in/out
utilisation, log error and discard rates, CPU). The detector keeps a rolling window of the
last ``window`` vectors per element and standardises every vector against *its own element's*
window (median / MAD), so "unusual" means unusual for this element. One scikit-learn
``IsolationForest`` is refitted every ``refit_every`` steps on the pooled standardised windows
of all elements: the trees are shared (memory stays ~1 MB for any number of elements) while the
reference of each element is its own history. Scoring is one batched ``score_samples`` call.

Scoring does not go through ``IsolationForest.score_samples`` (about 25 ms per call whatever
the batch size: joblib dispatch over the trees): the fitted trees are flattened into padded
numpy arrays (:attr:`trees_` ...) and all rows walk all trees at once, level by level, giving
the same scores as scikit-learn. State is therefore arrays only (windows, centres/scales and
the flattened trees), which the engine persists without pickle.
"""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length
from sklearn.utils.validation import check_is_fitted

__all__ = ["ElementOutlierDetector"]

_MAD_TO_SIGMA = 1.4826
_Z_CLIP = 12.0  # standardised features are clipped: the trees only need "very far"


class ElementOutlierDetector(BaseEstimator):
    """Multivariate outlier score per element, IsolationForest on rolling windows.

    Parameters
    ----------
    window : int, default=60
        Feature vectors kept per element (the reference of "normal").
    refit_every : int, default=30
        Steps (:meth:`partial_fit` calls) between refits of the forest.
    min_history : int, default=30
        Vectors an element needs in its window before it is scored (its warm-up).
    n_estimators : int, default=100
        Trees of the forest.
    max_train : int, default=4096
        Pooled window rows the forest is trained on at most (random subsample).
    min_scale : float or array-like of shape (n_features,), default=0.05
        Floor of each feature's robust scale, in the feature's unit.
    threshold : float, default=0.6
        Anomaly score (``-score_samples``, 0.5 = ordinary, 1 = isolated at once) from which an
        element is an outlier: ``decision_function = threshold + score_samples``.
    background : float, default=0.1
        Fraction of uniform background rows over the clip box added to the training rows.
    random_state : int, default=0
        Seed of the forest and of the training subsample.

    Attributes
    ----------
    buffer_ : ndarray of shape (n_elements, window, n_features), float32
        Rolling windows (NaN = empty slot or missing feature).
    pos_ : ndarray of shape (n_elements,), int64
        Next slot of each window.
    count_ : ndarray of shape (n_elements,), int64
        Vectors learnt per element.
    center_, scale_ : ndarray of shape (n_elements, n_features)
        Per-element median and robust scale at the last refit.
    trees_ : dict of str to ndarray
        The flattened forest: ``feature``, ``left``, ``right`` (int32, shape (n_trees, n_nodes);
        a leaf points to itself), ``threshold`` and ``path`` (float64: the leaf's path length
        as scikit-learn counts it), ``denominator`` (0-d: n_trees * c(max_samples)) and
        ``depth`` (0-d int: levels to walk). Empty before the first refit.
    seed_ : int
        Seed of the current forest.
    steps_ : int
        partial_fit calls so far.
    """

    def __init__(
        self,
        *,
        window: int = 60,
        refit_every: int = 30,
        min_history: int = 30,
        n_estimators: int = 100,
        max_train: int = 4096,
        min_scale: float | ArrayLike = 0.05,
        threshold: float = 0.6,
        background: float = 0.1,
        random_state: int = 0,
    ) -> None:
        self.window = window
        self.refit_every = refit_every
        self.min_history = min_history
        self.n_estimators = n_estimators
        self.max_train = max_train
        self.min_scale = min_scale
        self.threshold = threshold
        self.background = background
        self.random_state = random_state

    # -- learning -------------------------------------------------------------------------

    def fit(self, X: ArrayLike, y: None = None) -> Self:
        """Forget everything, learn the steps of ``X`` and refit the forest.

        Parameters
        ----------
        X : array-like of shape (n_steps, n_elements, n_features)
            Feature vectors per step and element; an all-NaN vector = element absent.
        y : None
            Ignored.

        Returns
        -------
        self : ElementOutlierDetector
        """
        steps = np.asarray(X, dtype=np.float64)
        if steps.ndim != 3:
            raise ValueError(f"X must have shape (n_steps, n_elements, n_features), got {steps.shape}")
        self._init_state(steps.shape[1], steps.shape[2])
        for step in steps:
            self._push(np.arange(step.shape[0]), step)
        self.refit()
        return self

    def partial_fit(self, X: ArrayLike, y: None = None, *, elements: ArrayLike | None = None) -> Self:
        """Append one step of feature vectors; refit every ``refit_every`` calls.

        Parameters
        ----------
        X : array-like of shape (n_elements, n_features) or (len(elements), n_features)
            This step's vectors; an all-NaN row = element absent (not appended).
        y : None
            Ignored.
        elements : array-like of int, optional
            Element indices of the rows of ``X``; default all elements.

        Returns
        -------
        self : ElementOutlierDetector
        """
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"X must have shape (n_elements, n_features), got {x.shape}")
        if not hasattr(self, "buffer_"):
            if elements is not None:
                raise ValueError("the first partial_fit needs every element; call resize() first")
            self._init_state(x.shape[0], x.shape[1])
        rows = np.arange(x.shape[0]) if elements is None else np.asarray(elements, dtype=np.intp)
        self._check(x, rows)
        self._push(rows, x)
        self.steps_ += 1
        if self.steps_ % self.refit_every == 0:
            self.refit()
        return self

    def resize(self, n_elements: int, n_features: int) -> Self:
        """Grow to ``n_elements`` elements; new ones start with an empty window."""
        if not hasattr(self, "buffer_"):
            self._init_state(n_elements, n_features)
            return self
        if n_features != self.n_features_in_:
            raise ValueError(f"n_features is fixed at {self.n_features_in_}, got {n_features}")
        extra = n_elements - self.buffer_.shape[0]
        if extra < 0:
            raise ValueError(f"resize can only grow: {n_elements} < {self.buffer_.shape[0]}")
        if extra:
            f = n_features
            empty = np.full((extra, self.window, f), np.nan, dtype=np.float32)
            self.buffer_ = np.concatenate([self.buffer_, empty])
            self.pos_ = np.concatenate([self.pos_, np.zeros(extra, dtype=np.int64)])
            self.count_ = np.concatenate([self.count_, np.zeros(extra, dtype=np.int64)])
            self.center_ = np.concatenate([self.center_, np.full((extra, f), np.nan)])
            self.scale_ = np.concatenate([self.scale_, np.full((extra, f), np.nan)])
        return self

    def refit(self, *, trees: bool = True) -> Self:
        """Recompute each element's centre/scale and (``trees``) refit the forest on the windows.

        Centres and scales are cheap (a median per element); the forest costs ~0.3 s (100 trees),
        so a caller may refresh the former often and the latter rarely.
        """
        check_is_fitted(self, "buffer_")
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: empty windows
            center = np.nanmedian(self.buffer_, axis=1)
            mad = np.nanmedian(np.abs(self.buffer_ - center[:, None, :]), axis=1)
        self.center_ = center.astype(np.float64)
        self.scale_ = np.maximum(_MAD_TO_SIGMA * mad, self._floor()).astype(np.float64)
        ready = self.count_ >= self.min_history
        if not ready.any() or not trees:
            return self
        z = self._standardise(self.buffer_[ready], self.center_[ready, None, :], self.scale_[ready, None, :])
        rows = z.reshape(-1, self.n_features_in_)
        rows = rows[~np.isnan(self.buffer_[ready]).all(axis=2).reshape(-1)]
        self.seed_ = int(self.random_state) + int(self.steps_)
        rng = np.random.default_rng(self.seed_)
        if len(rows) > self.max_train:
            rows = rows[np.sort(rng.choice(len(rows), self.max_train, replace=False))]
        # A thin uniform background over the clip box: splits then span the whole box, so a
        # vector far outside its element's window is isolated in a few splits (plain
        # IsolationForest saturates at the path length of the most extreme training row).
        n_bg = max(8, int(self.background * len(rows)))
        background = rng.uniform(-_Z_CLIP, _Z_CLIP, size=(n_bg, self.n_features_in_))
        train = np.concatenate([rows, background]).astype(np.float32)
        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(256, len(train)),
            random_state=self.seed_,
            n_jobs=1,
        ).fit(train.astype(np.float64))
        self.trees_ = _flatten(forest)
        return self

    # -- scoring --------------------------------------------------------------------------

    def score_samples(self, X: ArrayLike, *, elements: ArrayLike | None = None) -> NDArray[np.float64]:
        """IsolationForest score of each element's vector, lower = more abnormal.

        Parameters
        ----------
        X : array-like of shape (n_elements, n_features) or (len(elements), n_features)
        elements : array-like of int, optional
            Element indices of the rows of ``X``; default all.

        Returns
        -------
        scores : ndarray of shape (n_rows,)
            In [-1, 0] (about -0.5 for ordinary vectors); NaN for absent rows, elements still
            warming up, or before the first refit.
        """
        check_is_fitted(self, "buffer_")
        x = np.asarray(X, dtype=np.float64)
        rows = np.arange(x.shape[0]) if elements is None else np.asarray(elements, dtype=np.intp)
        self._check(x, rows)
        out = np.full(len(rows), np.nan)
        if not self.trees_:
            return out
        ok = (
            (self.count_[rows] >= self.min_history)
            & ~np.isnan(x).all(axis=1)
            & ~np.isnan(self.center_[rows]).all(axis=1)
        )
        if ok.any():
            z = self._standardise(x[ok], self.center_[rows[ok]], self.scale_[rows[ok]])
            out[ok] = _score(self.trees_, z)
        return out

    def decision_function(self, X: ArrayLike, *, elements: ArrayLike | None = None) -> NDArray[np.float64]:
        """``threshold + score_samples``: negative = outlier; NaN where not scored."""
        return self.score_samples(X, elements=elements) + self.threshold

    def predict(self, X: ArrayLike, *, elements: ArrayLike | None = None) -> NDArray[np.int64]:
        """-1 for outliers, +1 otherwise (unscored rows count as inliers)."""
        return np.where(self.decision_function(X, elements=elements) < 0, -1, 1).astype(np.int64)

    def __sklearn_tags__(self) -> Any:  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- internals ------------------------------------------------------------------------

    def _init_state(self, n_elements: int, n_features: int) -> None:
        if self.window < 2 or not 1 <= self.min_history <= self.window:
            raise ValueError(f"need window >= 2 and 1 <= min_history <= window, got {self.window}, {self.min_history}")
        if self.refit_every < 1 or self.n_estimators < 1 or self.max_train < 2:
            raise ValueError("refit_every, n_estimators must be >= 1 and max_train >= 2")
        if not 0.5 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0.5, 1), got {self.threshold!r}")
        self.n_features_in_ = n_features
        self.buffer_ = np.full((n_elements, self.window, n_features), np.nan, dtype=np.float32)
        self.pos_ = np.zeros(n_elements, dtype=np.int64)
        self.count_ = np.zeros(n_elements, dtype=np.int64)
        self.center_ = np.full((n_elements, n_features), np.nan)
        self.scale_ = np.full((n_elements, n_features), np.nan)
        self.trees_: dict[str, NDArray[Any]] = {}
        self.seed_ = int(self.random_state)
        self.steps_ = 0
        self._floor()

    def _floor(self) -> NDArray[np.float64]:
        floor = np.broadcast_to(np.asarray(self.min_scale, dtype=np.float64), (self.n_features_in_,))
        if not np.all(floor > 0):
            raise ValueError(f"min_scale must be > 0, got {self.min_scale!r}")
        return floor

    def _check(self, x: NDArray[np.float64], rows: NDArray[np.intp]) -> None:
        if x.shape != (len(rows), self.n_features_in_):
            raise ValueError(f"X has shape {x.shape}, expected ({len(rows)}, {self.n_features_in_})")
        if len(rows) and (rows.min() < 0 or rows.max() >= self.buffer_.shape[0]):
            raise ValueError("element index out of range; call resize() first")

    def _push(self, rows: NDArray[np.intp], x: NDArray[np.float64]) -> None:
        present = ~np.isnan(x).all(axis=1)
        rows, x = rows[present], x[present]
        self.buffer_[rows, self.pos_[rows]] = x
        self.pos_[rows] = (self.pos_[rows] + 1) % self.window
        self.count_[rows] += 1

    @staticmethod
    def _standardise(x: NDArray[Any], center: NDArray[Any], scale: NDArray[Any]) -> NDArray[np.float64]:
        z = (x - center) / scale
        return np.clip(np.nan_to_num(z, nan=0.0), -_Z_CLIP, _Z_CLIP)  # missing feature = typical


def _flatten(forest: IsolationForest) -> dict[str, NDArray[Any]]:
    """Padded arrays of a fitted forest, for the level-by-level walk of :func:`_score`."""
    trees = [est.tree_ for est in forest.estimators_]
    n_trees, n_nodes = len(trees), max(t.node_count for t in trees)
    feature = np.zeros((n_trees, n_nodes), dtype=np.int32)
    left = np.tile(np.arange(n_nodes, dtype=np.int32), (n_trees, 1))  # padding: self-loops
    right = left.copy()
    threshold = np.zeros((n_trees, n_nodes))
    path = np.zeros((n_trees, n_nodes))
    depth = 0
    for i, tree in enumerate(trees):
        n = tree.node_count
        inner = tree.children_left[:n] >= 0
        feature[i, :n] = np.where(inner, tree.feature[:n], 0)
        threshold[i, :n] = np.where(inner, tree.threshold[:n], np.inf)
        left[i, :n] = np.where(inner, tree.children_left[:n], np.arange(n))
        right[i, :n] = np.where(inner, tree.children_right[:n], np.arange(n))
        # scikit-learn's depth of a leaf: nodes on its path + c(samples in it) - 1
        path[i, :n] = (
            forest._decision_path_lengths[i] + forest._average_path_length_per_tree[i] - 1.0
        )
        depth = max(depth, tree.max_depth)
    denominator = n_trees * float(_average_path_length([forest._max_samples])[0])
    return {
        "feature": feature,
        "left": left,
        "right": right,
        "threshold": threshold,
        "path": path,
        "denominator": np.array(denominator),
        "depth": np.array(depth),
    }


def _score(trees: dict[str, NDArray[Any]], X: NDArray[np.float64]) -> NDArray[np.float64]:
    """``IsolationForest.score_samples`` of the flattened forest: every row, every tree at once."""
    x = X.astype(np.float32).astype(np.float64)  # scikit-learn's trees split float32 inputs
    n_trees = trees["feature"].shape[0]
    node = np.zeros((len(x), n_trees), dtype=np.intp)
    t = np.arange(n_trees)
    rows = np.arange(len(x))[:, None]
    for _ in range(int(trees["depth"])):
        f = trees["feature"][t, node]
        go_left = x[rows, f] <= trees["threshold"][t, node]
        node = np.where(go_left, trees["left"][t, node], trees["right"][t, node])
    depths = trees["path"][t, node].sum(axis=1)
    denominator = float(trees["denominator"])
    if denominator == 0:
        return -np.ones(len(x))
    return -(2.0 ** (-depths / denominator))
