"""CollectiveDetector: many children of one parent anomalous together -> the parent."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.collective import CollectiveDetector

# children 0..5 under PON 0, 6..7 under PON 1, 8 without parent
PARENT = [0, 0, 0, 0, 0, 0, 1, 1, -1]

CASES = {
    # name: ({child: time anomalous}, now, firing parents)
    "four of six ONTs of one PON at once": ({0: 100, 1: 100, 2: 100, 3: 100}, 100, [True, False]),
    "a few polls apart still coincide": ({0: 0, 1: 120, 2: 240}, 240, [True, False]),
    "too old to coincide": ({0: 0, 1: 120, 2: 400}, 400, [False, False]),
    "two of six: below both count and share": ({0: 100, 1: 100}, 100, [False, False]),
    "both children of a small PON: share, not count": ({6: 100, 7: 100}, 100, [False, False]),
    "orphans never make a parent": ({8: 100}, 100, [False, False]),
}  # fmt: skip


@pytest.mark.parametrize(("hits", "now", "firing"), CASES.values(), ids=CASES.keys())
def test_predict(hits: dict[int, float], now: float, firing: list[bool]) -> None:
    det = CollectiveDetector(min_fraction=0.5, min_count=3, window=300.0).fit(PARENT)
    for child, t in sorted(hits.items(), key=lambda kv: kv[1]):
        det.partial_fit([True], t, children=[child])
    assert det.predict(now).tolist() == firing
    assert (det.decision_function(now) < 0).tolist() == firing


def test_members_counts_and_scores() -> None:
    det = CollectiveDetector().fit(PARENT)
    det.partial_fit(np.array([1, 1, 0, 1, 0, 0, 1, 0, 1], dtype=bool), 50.0)
    assert det.members(0, 60.0).tolist() == [0, 1, 3]
    bad, total = det.counts(60.0)
    assert bad.tolist() == [3, 1] and total.tolist() == [6, 2]
    np.testing.assert_allclose(det.score_samples(60.0), [-0.5, -0.5])
    assert det.predict(60.0).tolist() == [True, False]
    assert det.members(0, 1000.0).tolist() == []


def test_regroup_keeps_times_of_known_children() -> None:
    det = CollectiveDetector().fit([0, 0, 0])
    det.partial_fit([True, True, True], 10.0)
    det.regroup([0, 0, 0, 0, 1], 2)
    assert det.predict(10.0).tolist() == [True, False]
    assert det.last_anomalous_[3] == -np.inf


def test_invalid_params() -> None:
    with pytest.raises(ValueError, match="min_fraction"):
        CollectiveDetector(min_fraction=0.0).fit([0])
