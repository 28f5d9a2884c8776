"""DetectionEngine.save / load: a restart keeps every score, state and active event."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detectors import DetectionEngine, EventState
from detectors.engine import STATE_VERSION, StateVersionError
from tests.detectors.test_engine import A, B, Net, flat


def busy_engine() -> tuple[DetectionEngine, Net]:
    """Warmed, with a forest, a firing error rule and a pending utilisation rule."""
    engine, net = DetectionEngine(parents={A[0]: "core", B[0]: "core"}), Net()
    flat(net.run(engine, 400))
    net.override[(A, "if_in_errors_per_s")] = 412.0
    flat(net.run(engine, 4))
    net.override[(B, "if_in_utilization")] = 0.97
    flat(net.run(engine, 1))
    assert {e.state for e in engine.active()} == {EventState.FIRING, EventState.PENDING}
    assert engine.outlier.trees_
    return engine, net


def test_reload_gives_the_same_scores_and_events(tmp_path: Path) -> None:
    engine, net = busy_engine()
    path = tmp_path / "detectors.npz"
    engine.save(path)
    twin = DetectionEngine.load(path)
    assert twin.series_count == engine.series_count
    assert sorted(e.fingerprint for e in twin.active()) == sorted(e.fingerprint for e in engine.active())
    assert twin.active() == engine.active()

    for step in range(60):  # the fault goes on, then clears; both engines see the same samples
        if step == 30:
            net.override.clear()
        net.t += 60.0
        samples = net.samples()
        x = np.array([s.value for s in samples])
        cols = np.arange(len(samples))
        np.testing.assert_array_equal(
            twin.baseline.deviation_columns(cols, x), engine.baseline.deviation_columns(cols, x)
        )
        feats = np.c_[x[:7], x[:7]].T  # any vectors: same forest, same centres -> same scores
        np.testing.assert_array_equal(twin.outlier.score_samples(feats[:, :7][:2], elements=[0, 1]),
                                      engine.outlier.score_samples(feats[:, :7][:2], elements=[0, 1]))
        assert twin.update(samples) == engine.update(samples)
    np.testing.assert_array_equal(twin.forecaster.stats_, engine.forecaster.stats_)
    assert twin.active() == engine.active()


def test_state_file_is_npz_with_a_json_header_and_no_pickle(tmp_path: Path) -> None:
    engine, _ = busy_engine()
    path = tmp_path / "s.npz"
    engine.save(path)
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        assert all(data[k].dtype != object for k in data.files)
    assert header["version"] == STATE_VERSION and len(header["series"]) == 10
    assert not (tmp_path / "s.npz.tmp").exists()


def test_other_version_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    engine, _ = busy_engine()
    path = tmp_path / "s.npz"
    engine.save(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays["header"]))
    header["version"] = STATE_VERSION + 1
    arrays["header"] = np.array(json.dumps(header))
    np.savez(path, **arrays)
    with pytest.raises(StateVersionError, match=f"version {STATE_VERSION + 1}.*reads version {STATE_VERSION}"):
        DetectionEngine.load(path)


@pytest.mark.parametrize("content", [b"", b"not an npz at all"])
def test_garbage_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable detector state"):
        DetectionEngine.load(path)


def test_warm_up_survives_a_restart(tmp_path: Path) -> None:
    engine = DetectionEngine(warmup=20, for_=0.0)
    net = Net()
    flat(net.run(engine, 10))
    engine.save(tmp_path / "s.npz")
    twin = DetectionEngine.load(tmp_path / "s.npz")
    assert twin.baseline.n_seen_.tolist() == [10] * 10
    assert flat(net.run(twin, 9)) == []
    net.override[(A, "if_in_errors_per_s")] = 412.0
    assert flat(net.run(twin, 1)) == []  # 19 observations: still warming up
    assert [e.state for e in flat(net.run(twin, 1))] == [EventState.FIRING]


def test_params_survive_a_save_and_differ_when_settings_change(tmp_path) -> None:
    from detectors.engine import DetectionEngine

    engine = DetectionEngine(threshold=5.0)
    engine.save(tmp_path / "s.npz")
    assert DetectionEngine.load(tmp_path / "s.npz").get_params() == engine.get_params()
    assert DetectionEngine(threshold=7.0).get_params() != engine.get_params()


def _cpu(engine: DetectionEngine, values: np.ndarray, start: int) -> list:
    from collectors.sample import Sample, SampleKind

    return [
        (start + k, e.name, e.state) for k, v in enumerate(values.tolist())
        for e in engine.update([Sample("olt-1", "cpu_utilization", (), v, 1795276800.0 + 60 * (start + k),
                                       SampleKind.GAUGE)])
    ]  # fmt: skip


def test_a_cpu_climb_under_way_survives_a_restart(tmp_path: Path) -> None:
    """Saved 10 minutes into a runaway: the reloaded engine predicts the breach when the running
    one does; a state saved before sustained climbs loads and starts the climb afresh."""
    values = np.r_[np.full(180, 0.25) + 0.01 * np.sin(np.arange(180)), np.linspace(0.25, 1.0, 40)]
    engine = DetectionEngine()
    _cpu(engine, values[:190], 0)
    path = tmp_path / "detectors.npz"
    engine.save(path)
    twin = DetectionEngine.load(path)
    rest = _cpu(engine, values[190:], 190)
    assert any(name == "CpuUtilizationBreachPredicted" and state is EventState.FIRING for _k, name, state in rest)
    assert _cpu(twin, values[190:], 190) == rest

    with np.load(path, allow_pickle=False) as data:  # as written before climbs were kept
        arrays = {k: data[k] for k in data.files if not k.startswith("climb_")}
    np.savez(path, **arrays)
    fresh = DetectionEngine.load(path)
    late = _cpu(fresh, values[190:], 190)
    first = [k for k, name, state in rest if name == "CpuUtilizationBreachPredicted" and state is EventState.FIRING]
    later = [k for k, name, state in late if name == "CpuUtilizationBreachPredicted" and state is EventState.FIRING]
    assert not later or later[0] > first[0]
