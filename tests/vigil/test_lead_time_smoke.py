"""benchmarks/lead_time.py: the scenario builder and a tiny run (the real figures are its job)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from vigil.lab import FaultKind, TrafficModel, demo_site, lab_devices

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "lead_time.py"


@pytest.fixture(scope="module")
def lead_time() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lead_time_bench", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_scenario_builder_covers_every_kind_without_overlap(lead_time: ModuleType) -> None:
    devices = lab_devices(demo_site()[0])
    cfg = lead_time.Config(instances=3)
    start = lead_time.T0 + 8 * 86400
    faults = lead_time.build_faults(devices, start, cfg)
    assert sorted({f.kind for f in faults}) == sorted(lead_time.KINDS)
    assert all(sum(1 for f in faults if f.kind is k) == 3 for k in lead_time.KINDS)
    by_element: dict[str, list] = {}
    for f in faults:
        assert f.start >= start
        by_element.setdefault(f.element, []).append(f)
    for element, mine in by_element.items():  # one degradation at a time per element
        mine.sort(key=lambda f: f.start)
        assert all(b.start >= a.end for a, b in zip(mine, mine[1:], strict=False)), element
    TrafficModel(devices, faults, boot=lead_time.T0)  # every target exists and fits its kind
    assert len({(f.element, f.if_index) for f in faults if f.kind is FaultKind.SNR_EROSION}) == 3
    assert lead_time.warn_level("if_in_utilization") == pytest.approx(0.72)
    assert lead_time.warn_level("optical_rx_dbm") == pytest.approx(-26.03, abs=0.01)
    assert lead_time.warn_level("dsl_snr_margin_db") == pytest.approx(6.97, abs=0.01)


def test_tiny_run_reports_every_kind(lead_time: ModuleType) -> None:
    cfg = lead_time.Config(warmup_days=0.1, normal_days=0.05, instances=1, scale=0.3, hot_elements=6)
    result = lead_time.run(cfg)
    assert {"median_lead_minutes_gradual", "false_events_per_1000_element_days", "kinds"} <= set(result)
    assert result["element_days"] == pytest.approx((10 + 6) * 0.05)
    assert result["hot_elements"] == 6
    assert set(result["kinds"]) == {str(k) for k in lead_time.KINDS}
    for kind in lead_time.GRADUAL:
        k = result["kinds"][str(kind)]
        assert k["instances"] == k["crossed"] == 1, kind  # every fault crosses its service level
        for who in ("vigil", "static", "warn80"):
            assert f"{who}_median_lead_minutes" in k and 0.0 <= k[f"{who}_detection_rate"] <= 1.0
        # The static rule cannot fire before the crossing: it fires `for` (2 min) after at best.
        assert k["static_leads"][0] is not None and k["static_leads"][0] <= -2.0
        if k["warn80_leads"][0] is not None:
            assert k["warn80_leads"][0] >= k["static_leads"][0]
    flap = result["kinds"][str(FaultKind.FLAPPING)]
    assert flap["instances"] == 1 and len(flap["vigil_events_per_episode"]) == 1
    lead = result["median_lead_minutes_gradual"]
    assert lead is None or math.isfinite(lead)


def test_hot_population_is_hot_but_healthy(lead_time: ModuleType) -> None:
    """Two days of the hot elements: near every service level, never beyond it."""
    hot = lead_time.HotPopulation(12, lead_time.T0, 2.0, 60.0, 7)
    assert len(hot.elements) == 12 and set(hot.parents) == set(hot.elements)
    values = np.vstack([hot.values(k) for k in range(hot.steps)])
    metrics = np.array([m for _e, m, _l, _k in hot.meta])
    for metric, (level, sign) in lead_time.SERVICE.items():
        x = values[:, metrics == metric]
        if x.size:
            assert np.nanmax(sign * (x - level)) < 0, metric  # healthy: never at the level
    util = values[:, np.char.endswith(metrics, "_utilization") & (metrics != "cpu_utilization")]
    assert 0.80 <= np.nanmax(util) < 0.9
    assert np.nanmin(values[:, metrics == "dsl_snr_margin_db"]) <= 6.6
    assert np.nanmin(values[:, metrics == "optical_rx_dbm"]) <= -25.5
    assert np.nanmax(values[:, metrics == "cpu_utilization"]) >= 0.7
    assert np.nanmax(values[:, metrics == "if_in_errors_per_s"]) > 0  # CRC bursts
    # Warm-up day is a Sunday (weekend), the next a Monday: the days differ.
    assert hot.weekend[0] and not hot.weekend[1]
    # Deterministic: the same seed gives the same values.
    again = lead_time.HotPopulation(12, lead_time.T0, 2.0, 60.0, 7)
    np.testing.assert_array_equal(again.values(900), hot.values(900))
