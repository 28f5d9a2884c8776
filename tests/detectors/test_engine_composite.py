"""The shipped composite score in the production engine: wiring, events, collective, persistence."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from collectors.sample import Sample, SampleKind, labels_of
from config.models import DetectorsConfig
from detectors import COLLECTIVE_DEGRADATION, ERRORS_RISING, DetectionEngine, EventState
from detectors.composite import DEFAULT_THRESHOLD, DEFAULTS, CompositeDetector
from detectors.composite import STATE_VERSION as COMPOSITE_STATE_VERSION
from detectors.engine import STATE_VERSION
from tests.detectors.test_engine import A, B, Net, flat

PARENTS = {A[0]: "core", B[0]: "core"}


def production(steps: int, **cfg: object) -> tuple[DetectionEngine, Net]:
    """The engine ``vigil run`` builds, fed ``steps`` polls of the two-interface network."""
    engine, net = DetectionEngine.from_config(DetectorsConfig(**cfg), parents=PARENTS), Net()
    flat(net.run(engine, steps))
    return engine, net


def test_from_config_plugs_in_the_shipped_composite() -> None:
    engine = DetectionEngine.from_config(DetectorsConfig())
    assert isinstance(engine.composite, CompositeDetector)
    assert engine.composite.config == DEFAULTS
    assert engine.composite_threshold == DEFAULT_THRESHOLD
    off = DetectionEngine.from_config(DetectorsConfig(composite=False))
    assert off.composite is None
    assert engine.get_params()["composite"] is True and off.get_params()["composite"] is False


def test_composite_scores_every_series_and_shows_in_the_events() -> None:
    engine, net = production(120)  # > the composite's 50-observation warm-up
    scores = engine.composite_scores()
    assert scores.shape == (10,) and np.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()
    net.override[(A, "if_in_errors_per_s")] = 412.0
    (event,) = flat(net.run(engine, 1))
    assert event.name == ERRORS_RISING and event.state is EventState.PENDING
    notes = dict(event.annotations)
    composite = float(notes["composite_score"])
    assert composite == pytest.approx(float(engine.composite_scores()[engine.columns_of([
        (A[0], "if_in_errors_per_s", labels_of(ifIndex=A[1], ifName=A[2]))])[0]]), abs=5e-4)
    assert event.score >= composite  # Event.score is raised to the composite score


def test_without_the_composite_events_have_no_composite_score() -> None:
    engine, net = production(120, composite=False)
    assert np.isnan(engine.composite_scores()).all()
    net.override[(A, "if_in_errors_per_s")] = 412.0
    (event,) = flat(net.run(engine, 1))
    assert "composite_score" not in dict(event.annotations)


class Constant:
    """A SeriesScorer that scores every series ``high`` on the steps where ``on(step)``."""

    def __init__(self, on: object = lambda step: True) -> None:
        self.on, self.step = on, 0

    def score_update(self, columns, values, times):  # noqa: ANN001, ANN201 - the hook's signature
        self.step += 1
        return np.full(len(columns), 1.0 if self.on(self.step) else 0.0)


def quiet_elements(engine: DetectionEngine, steps: int, n: int = 4) -> list:
    """``n`` quiet elements (one port each) under the parent ``core``."""
    rng, events = np.random.default_rng(3), []
    for k in range(steps):
        batch = [
            Sample(f"olt-{i}", "if_in_utilization", labels_of(ifName="pon0"), 0.3 + rng.normal(0, 0.01),
                   60.0 * k, SampleKind.RATE)
            for i in range(n)
        ]  # fmt: skip
        events += engine.update(batch)
    return events


def test_the_composite_raises_no_alert_of_its_own() -> None:
    engine = DetectionEngine(composite=Constant())  # every series maximally anomalous, always
    assert quiet_elements(engine, 60) == []  # no parent: nothing to aggregate, nothing fires


def test_sustained_high_composite_scores_feed_the_collective_detector() -> None:
    parents = {f"olt-{i}": "core" for i in range(4)}
    engine = DetectionEngine(composite=Constant(), parents=parents)
    events = quiet_elements(engine, 10)
    assert {e.name for e in events} == {COLLECTIVE_DEGRADATION}
    firing = [e for e in events if e.state is EventState.FIRING]
    assert firing and firing[0].element == "core"
    assert dict(firing[0].annotations)["children"] == "olt-0,olt-1,olt-2,olt-3"


def test_isolated_high_composite_scores_do_not() -> None:
    parents = {f"olt-{i}": "core" for i in range(4)}
    every_other = DetectionEngine(composite=Constant(lambda step: step % 2 == 0), parents=parents)
    assert quiet_elements(every_other, 30) == []
    assert DetectionEngine(composite=Constant(), parents=parents, composite_sustain=1).composite_sustain == 1
    one_is_enough = DetectionEngine(composite=Constant(lambda step: step % 2 == 0), parents=parents,
                                    composite_sustain=1)  # fmt: skip
    assert {e.name for e in quiet_elements(one_is_enough, 30)} == {COLLECTIVE_DEGRADATION}


def test_memory_per_series_includes_the_composite() -> None:
    with_composite, _ = production(60)
    without, _ = production(60, composite=False)
    extra = with_composite.nbytes_per_series() - without.nbytes_per_series()
    composite = with_composite.composite
    assert extra == pytest.approx(composite.nbytes_per_series() * composite.n_features_in_ / 10)
    assert extra >= composite.nbytes_per_series()


# -- persistence ----------------------------------------------------------------------------


def test_save_load_gives_the_same_composite_scores_afterwards(tmp_path: Path) -> None:
    engine, net = production(120)
    path = tmp_path / "detectors.npz"
    engine.save(path)
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        assert any(k.startswith("composite.") for k in data.files)
        assert all(data[k].dtype != object for k in data.files)
    assert header["version"] == STATE_VERSION == 3
    assert header["composite"]["version"] == COMPOSITE_STATE_VERSION
    assert header["composite"]["config"] == asdict(DEFAULTS)
    twin = DetectionEngine.load(path, parents=PARENTS)
    assert isinstance(twin.composite, CompositeDetector) and twin.composite is not engine.composite
    assert twin.get_params() == engine.get_params()
    np.testing.assert_array_equal(twin.composite_scores(), engine.composite_scores())
    for step in range(80):
        if step == 10:
            net.override[(A, "if_in_errors_per_s")] = 412.0
        if step == 40:
            net.override.clear()
        net.t += 60.0
        samples = net.samples()
        assert twin.update(samples) == engine.update(samples)
        np.testing.assert_array_equal(twin.composite_scores(), engine.composite_scores())
    assert np.isfinite(engine.composite_scores()).all()


def rewrite(path: Path, edit: object) -> None:
    """Apply ``edit(header, arrays)`` to a saved state file."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays["header"]))
    edit(header, arrays)
    arrays["header"] = np.array(json.dumps(header))
    np.savez(path, **arrays)


def assert_rest_restored(twin: DetectionEngine, engine: DetectionEngine) -> None:
    np.testing.assert_array_equal(twin.baseline.mean_, engine.baseline.mean_)
    np.testing.assert_array_equal(twin.forecaster.stats_, engine.forecaster.stats_)
    assert twin.active() == engine.active()


def test_a_refused_composite_state_means_a_fresh_composite_not_a_failed_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine, net = production(120)
    path = tmp_path / "detectors.npz"
    engine.save(path)
    rewrite(path, lambda header, arrays: header["composite"].update(version=99))
    with caplog.at_level(logging.WARNING, logger="detectors.engine"):
        twin = DetectionEngine.load(path, parents=PARENTS)
    assert "composite detector state not restored" in caplog.text and "version 99" in caplog.text
    assert_rest_restored(twin, engine)
    assert isinstance(twin.composite, CompositeDetector) and not hasattr(twin.composite, "n_features_in_")
    assert np.isnan(twin.composite_scores()).all()
    flat(net.run(twin, 1))
    assert np.isnan(twin.composite_scores()).all()  # warming up again
    assert twin.get_params() == engine.get_params()  # `vigil run` keeps the restored engine

    # other composite settings than the saved ones: the same
    caplog.clear()
    engine.save(path)
    other = CompositeDetector(config=replace(DEFAULTS, z_full=9.0))
    with caplog.at_level(logging.WARNING, logger="detectors.engine"):
        twin = DetectionEngine.load(path, parents=PARENTS, composite=other)
    assert "other settings" in caplog.text
    assert_rest_restored(twin, engine)
    assert twin.composite.config.z_full == 9.0 and not hasattr(twin.composite, "n_features_in_")


def test_a_version_2_state_is_read_with_a_fresh_composite(tmp_path: Path) -> None:
    engine, _ = production(120, composite=False)
    path = tmp_path / "detectors.npz"
    engine.save(path)

    def as_version_2(header: dict, arrays: dict) -> None:  # as the engine of c83c488 wrote it
        header["version"] = 2
        del header["params"]["composite"], header["params"]["composite_sustain"]
        header["params"]["composite_threshold"] = 0.9  # its default, unused: no composite then
        del arrays["composite_run"]

    rewrite(path, as_version_2)
    twin = DetectionEngine.load(path, parents=PARENTS)
    assert_rest_restored(twin, engine)
    assert isinstance(twin.composite, CompositeDetector)
    # what `vigil run` compares before keeping a restored state
    assert twin.get_params() == DetectionEngine.from_config(DetectorsConfig(), parents=PARENTS).get_params()
