"""ContextNovelty: repeated patterns become familiar, new values and new shapes are novel."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.context import ContextNovelty


def run(x: np.ndarray, **kw: object) -> tuple[ContextNovelty, np.ndarray]:
    """Novelty of every step of the columns of ``x``."""
    x2 = x.reshape(len(x), -1)
    kw = {"contract": 0.0, **kw}  # a fixed range: these tests are about the context table
    cn = ContextNovelty(**kw).resize(x2.shape[1])  # type: ignore[arg-type]
    return cn, np.stack([cn.step(row) for row in x2])


def sawtooth(n: int, period: int = 10) -> np.ndarray:
    return (np.arange(n) % period).astype(float)


def test_a_repeated_pattern_becomes_familiar() -> None:
    _, nov = run(sawtooth(400))
    assert nov[0, 0] == 1.0  # everything is new at first
    assert np.all(nov[50:, 0] == 0.0)  # every context of a 10-step cycle has been seen


def test_a_new_shape_of_known_values_is_novel() -> None:
    x = sawtooth(400)
    x[300:310] = x[300:310][::-1]  # the same values, backwards
    _, nov = run(x)
    assert nov[301:310, 0].max() >= 0.5  # the longer contexts were never seen
    assert nov[300:310, 0].min() < 1.0  # the single values are known
    assert np.all(nov[320:, 0] == 0.0)  # back to the familiar cycle, familiar again


def test_a_new_level_is_novel() -> None:
    x = sawtooth(400)
    x[300] = 50.0  # lands in the top bin of the widened range, after contexts never seen
    _, nov = run(x)
    assert nov[300, 0] >= 0.5
    assert nov[250:300, 0].max() == 0.0


def test_novelty_does_not_learn_and_matches_step() -> None:
    x = sawtooth(200)
    cn, _ = run(x[:-1])
    table, hist = cn.table_.copy(), cn.hist_.copy()
    probe = np.array([x[-1]])
    expected = cn.novelty(probe)
    np.testing.assert_array_equal(cn.table_, table)
    np.testing.assert_array_equal(cn.hist_, hist)
    np.testing.assert_array_equal(cn.step(probe), expected)


def test_batch_equals_series_by_series_and_missing_is_not_learnt() -> None:
    rng = np.random.default_rng(0)
    X = np.stack([sawtooth(300), rng.normal(0, 1, 300), np.round(rng.normal(3, 1, 300))], axis=1)
    X[100:120, 2] = np.nan
    cn, batch = run(X)
    for j in range(3):
        _, one = run(X[:, j])
        np.testing.assert_array_equal(one[:, 0], batch[:, j])
    assert np.all(np.isnan(batch[100:120, 2])) and not np.isnan(batch[120:, 2]).any()


def test_forgetting_clears_one_word_per_period() -> None:
    cn, _ = run(np.random.default_rng(1).normal(0, 1, 64 * 8), n_slots=512, forget_every=8)
    # 8 words, one cleared every 8 steps: the most recently cleared one holds at most 8 contexts x order bits
    assert cn.count_.tolist() == [512]
    bits = np.array([bin(int(w)).count("1") for w in cn.table_[:, 0]])
    assert bits.sum() > 0 and bits.min() < bits.max()
    _, never = run(sawtooth(600), forget_every=0)
    _, forgets = run(sawtooth(600), n_slots=64, forget_every=1)
    assert never[100:, 0].max() == 0.0 and forgets[100:, 0].max() > 0.0  # forgotten contexts are new again


def test_resize_and_bad_parameters() -> None:
    cn = ContextNovelty().resize(3)
    cn.step(np.array([1.0, 2.0, 3.0]))
    cn.resize(5)
    assert cn.table_.shape == (64, 5) and cn.step(np.ones(5)).shape == (5,)
    with pytest.raises(ValueError, match="grow"):
        cn.resize(2)
    for kw in ({"levels": 1}, {"order": 0}, {"n_slots": 100}, {"contract": 0.7}):
        with pytest.raises(ValueError, match="ContextNovelty"):
            ContextNovelty(**kw)  # type: ignore[arg-type]


def test_memory_per_series() -> None:
    cn = ContextNovelty().resize(100)
    nbytes = sum(v.nbytes for k, v in vars(cn).items() if k.endswith("_") and isinstance(v, np.ndarray))
    assert nbytes / 100 == 4096 / 8 + 4 + 16 + 4
