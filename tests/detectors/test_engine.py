"""DetectionEngine: samples of two interfaces in, state-change events out."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from collectors.sample import Sample, SampleKind, labels_of
from config.models import DetectorsConfig
from detectors import (
    DETECTOR_EWMA,
    DETECTOR_STATIC,
    ERRORS_RISING,
    UTILIZATION_HIGH,
    DetectionEngine,
    Event,
    EventState,
    Severity,
)

STEP = 60.0
QUIET_STEPS = 400  # > warmup, and more than one "day" below
DAY = 360 * STEP  # a compressed diurnal cycle: 6 h
A = ("agg-yuexiu-01", "1", "xe-0/0/0")
B = ("agg-tianhe-02", "7", "xe-0/0/1")


class Net:
    """Two interfaces: diurnal utilisation, near-zero errors; overrides per (iface, metric)."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(42)
        self.t = 0.0
        self.override: dict[tuple[tuple[str, str, str], str], float] = {}

    def samples(self) -> list[Sample]:
        out = []
        for iface in (A, B):
            element, index, name = iface
            labels = labels_of(ifIndex=index, ifName=name)
            util = 0.45 + 0.15 * math.sin(2 * math.pi * self.t / DAY)
            normal = {
                "if_in_utilization": util + self.rng.normal(0, 0.01),
                "if_out_utilization": 0.8 * util + self.rng.normal(0, 0.01),
                "if_in_errors_per_s": abs(self.rng.normal(0, 0.05)),
                "if_out_errors_per_s": 0.0,
                "if_in_discards_per_s": abs(self.rng.normal(0, 0.2)),
            }
            for metric, value in normal.items():
                value = self.override.get((iface, metric), value)
                out.append(Sample(element, metric, labels, value, self.t, SampleKind.RATE))
        return out

    def run(self, engine: DetectionEngine, steps: int) -> Iterator[list[Event]]:
        for _ in range(steps):
            self.t += STEP
            yield engine.update(self.samples())


def flat(batches: Iterator[list[Event]]) -> list[Event]:
    return [e for batch in batches for e in batch]


@pytest.fixture
def warmed() -> tuple[DetectionEngine, Net]:
    engine, net = DetectionEngine(), Net()
    assert flat(net.run(engine, QUIET_STEPS)) == []
    assert engine.active() == []
    assert engine.series_count == 10
    return engine, net


def test_quiet_network_emits_nothing(warmed: tuple[DetectionEngine, Net]) -> None:
    engine, net = warmed
    assert flat(net.run(engine, QUIET_STEPS)) == []  # a second "day" of normal traffic


def test_error_ramp_fires_once_on_the_faulty_interface_then_resolves(
    warmed: tuple[DetectionEngine, Net],
) -> None:
    engine, net = warmed
    events: list[Event] = []
    for rate in (2.0, 20.0, 120.0, 412.0, 412.0, 412.0, 412.0):
        net.override[(A, "if_in_errors_per_s")] = rate
        events += flat(net.run(engine, 1))
    assert [e.state for e in events] == [EventState.PENDING, EventState.FIRING]
    pending, firing = events
    assert pending.fingerprint == firing.fingerprint
    assert firing.name == ERRORS_RISING and firing.severity is Severity.WARNING
    assert firing.element == A[0]
    assert dict(firing.labels) == {
        "alertname": ERRORS_RISING,
        "element": A[0],
        "ifIndex": A[1],
        "ifName": A[2],
        "metric": "if_in_errors_per_s",
        "severity": "warning",
    }
    assert firing.labels[:2] == (("alertname", ERRORS_RISING), ("element", A[0]))
    assert firing.detector == DETECTOR_EWMA and firing.series == "if_in_errors_per_s"
    assert firing.fired_at is not None and firing.fired_at - firing.active_at >= 120.0
    assert firing.expected < 0.2 and firing.band[0] < firing.expected < firing.band[1] < 1.0
    assert 0.5 < firing.score <= 1.0
    assert firing.summary.startswith("CRC/input errors on agg-yuexiu-01 xe-0/0/0 rising: ")
    assert [e.fingerprint for e in engine.active()] == [firing.fingerprint]

    # a lasting fault is not absorbed by the baseline: still firing, no new events
    assert flat(net.run(engine, 60)) == []
    assert [e.state for e in engine.active()] == [EventState.FIRING]
    assert engine.active()[0].expected == pytest.approx(firing.expected)

    del net.override[(A, "if_in_errors_per_s")]
    back = net.t + STEP
    after = flat(net.run(engine, 10))
    assert [(e.name, e.element, e.state) for e in after] == [
        (ERRORS_RISING, A[0], EventState.RESOLVED)
    ]
    (resolved,) = after
    assert resolved.resolved_at == back + 300.0  # keep_firing_for
    assert resolved.fired_at == firing.fired_at and resolved.active_at == firing.active_at
    assert "back to normal" in resolved.summary
    assert engine.active() == []


def test_short_error_burst_is_dropped_while_pending(warmed: tuple[DetectionEngine, Net]) -> None:
    engine, net = warmed
    net.override[(A, "if_in_errors_per_s")] = 412.0
    assert [e.state for e in flat(net.run(engine, 1))] == [EventState.PENDING]
    del net.override[(A, "if_in_errors_per_s")]
    # the never-fired condition ends with one RESOLVED (fired_at None) so stores drop the pending
    (closed,) = flat(net.run(engine, 10))
    assert closed.state is EventState.RESOLVED and closed.fired_at is None and closed.resolved_at is not None
    assert engine.active() == []


@pytest.mark.parametrize(
    ("util", "detector", "phrase"),
    [
        (0.95, DETECTOR_STATIC, "high: 95% (threshold 90%"),  # above the service threshold
        (0.80, DETECTOR_EWMA, "rising fast: 80%"),  # early warning from the baseline
    ],
)
def test_utilization_high(
    warmed: tuple[DetectionEngine, Net], util: float, detector: str, phrase: str
) -> None:
    engine, net = warmed
    net.override[(B, "if_out_utilization")] = util
    events = flat(net.run(engine, 4))
    assert [(e.name, e.state) for e in events] == [
        (UTILIZATION_HIGH, EventState.PENDING),
        (UTILIZATION_HIGH, EventState.FIRING),
    ]
    firing = events[-1]
    assert firing.severity is Severity.CRITICAL and firing.detector == detector
    assert (firing.element, firing.label("ifName"), firing.label("metric")) == (
        B[0],
        B[2],
        "if_out_utilization",
    )
    assert firing.value == util and phrase in firing.summary
    assert firing.summary.startswith("Outbound utilisation on agg-tianhe-02 xe-0/0/1 ")


def test_slightly_elevated_utilization_below_early_warning_floor_is_quiet(
    warmed: tuple[DetectionEngine, Net],
) -> None:
    engine, net = warmed
    net.override[(A, "if_in_utilization")] = 0.70  # far above baseline, < 0.8 * 0.9
    assert flat(net.run(engine, 10)) == []


def test_in_and_out_alerts_of_one_interface_are_distinct(
    warmed: tuple[DetectionEngine, Net],
) -> None:
    engine, net = warmed
    net.override[(A, "if_in_errors_per_s")] = 50.0
    net.override[(A, "if_out_errors_per_s")] = 50.0
    firing = [e for e in flat(net.run(engine, 4)) if e.state is EventState.FIRING]
    assert sorted(e.series for e in firing) == ["if_in_errors_per_s", "if_out_errors_per_s"]
    assert len({e.fingerprint for e in firing}) == 2
    assert {e.summary.split(" on ")[0] for e in firing} == {"CRC/input errors", "Output errors"}


def test_missing_data_is_not_a_recovery(warmed: tuple[DetectionEngine, Net]) -> None:
    engine, net = warmed
    net.override[(A, "if_in_errors_per_s")] = 412.0
    flat(net.run(engine, 4))
    assert [e.state for e in engine.active()] == [EventState.FIRING]
    for _ in range(20):  # element A unreachable: only B reports
        net.t += STEP
        assert engine.update([s for s in net.samples() if s.element == B[0]]) == []
    assert [e.state for e in engine.active()] == [EventState.FIRING]


def test_warmup_silences_a_new_series() -> None:
    engine = DetectionEngine(warmup=20, for_=0.0)
    labels = labels_of(ifIndex="3", ifName="ge-0/0/3")
    states = []
    for i in range(25):
        sample = Sample("olt-1", "if_in_utilization", labels, 0.97, i * STEP, SampleKind.RATE)
        states.append([e.state for e in engine.update([sample])])
    assert states[:20] == [[]] * 20
    assert states[20] == [EventState.FIRING]


def test_ignores_other_kinds_and_metrics() -> None:
    engine = DetectionEngine()
    labels = labels_of(ifIndex="1")
    ignored = [
        Sample("r1", "if_in_utilization", labels, 0.99, 0.0, SampleKind.GAUGE),
        Sample("r1", "ifHCInOctets", labels, 1e12, 0.0, SampleKind.COUNTER),
        Sample("r1", "if_in_octets_per_s", labels, 1e9, 0.0, SampleKind.RATE),
    ]
    assert engine.update(ignored) == [] and engine.series_count == 0
    assert engine.update([]) == []


def test_latest_sample_of_a_series_wins_within_a_call() -> None:
    engine = DetectionEngine(warmup=1)
    labels = labels_of(ifIndex="1")
    engine.update(
        [
            Sample("r1", "if_in_errors_per_s", labels, 9.0, 60.0, SampleKind.RATE),
            Sample("r1", "if_in_errors_per_s", labels, 1.0, 30.0, SampleKind.RATE),
        ]
    )
    assert engine.series_count == 1 and engine.baseline.mean_.tolist() == [9.0]


@pytest.mark.parametrize(
    ("cfg", "first_states"),
    [
        (DetectorsConfig(), [EventState.PENDING]),
        (DetectorsConfig(**{"for": "0s"}), [EventState.FIRING]),
        (DetectorsConfig(error_rate_min=1000.0), []),
        (DetectorsConfig(threshold=1e6), []),
    ],
)
def test_from_config(cfg: DetectorsConfig, first_states: list[EventState]) -> None:
    engine, net = DetectionEngine.from_config(cfg), Net()
    assert flat(net.run(engine, 50)) == []
    net.override[(A, "if_in_errors_per_s")] = 412.0
    assert [e.state for e in flat(net.run(engine, 1))] == first_states


# -- forecasts, new metrics, hysteresis, damping, collective, memory ------------------------

from detectors import engine as engine_module  # noqa: E402
from detectors.engine import (  # noqa: E402
    COLLECTIVE_DEGRADATION,
    DETECTOR_COLLECTIVE,
    DETECTOR_FORECAST,
    PREDICTED_BREACH,
)


def gauge(element: str, metric: str, value: float, t: float, port: str = "pon0") -> Sample:
    return Sample(element, metric, labels_of(ifName=port), value, t, SampleKind.GAUGE)


def test_utilization_breach_is_predicted_before_the_crossing(
    warmed: tuple[DetectionEngine, Net],
) -> None:
    engine, net = warmed
    events: list[Event] = []
    level, crossed_at = 0.5, None
    for _ in range(120):
        level += 0.004  # +0.24 per hour, creeping to saturation
        net.override[(B, "if_out_utilization")] = level
        if crossed_at is None and level >= 0.9:
            crossed_at = net.t + STEP
        events += flat(net.run(engine, 1))
    name = PREDICTED_BREACH[UTILIZATION_HIGH]
    predicted = [e for e in events if e.name == name and e.state is EventState.FIRING]
    assert len(predicted) == 1 and crossed_at is not None
    (p,) = predicted
    assert p.detector == DETECTOR_FORECAST and p.label("metric") == "if_out_utilization"
    assert p.label("alertname") == name and p.label("severity") == "critical"
    assert p.fired_at is not None and crossed_at - p.fired_at >= 10 * 60  # >= 10 min of lead
    assert p.eta is not None and p.eta > p.fired_at
    lead = crossed_at - p.fired_at
    assert crossed_at - 0.5 * lead <= p.eta <= crossed_at + lead  # the EW fit lags a new ramp
    assert "heading for 90%" in p.summary


def test_optical_rx_decay_lower_threshold_predicted_then_breached() -> None:
    engine = DetectionEngine()
    rng = np.random.default_rng(1)
    events: list[Event] = []
    t, level = 0.0, -20.0
    for step in range(300):
        t += STEP
        if step >= 100:
            level -= 0.05  # 3 dB per hour
        events += engine.update([gauge("olt-1", "optical_rx_dbm", level + rng.normal(0, 0.1), t)])
    firing = [(e.name, e.fired_at) for e in events if e.state is EventState.FIRING]
    names = [n for n, _ in firing]
    assert names == ["OpticalRxPowerBreachPredicted", "OpticalRxPowerLow"]
    predicted_at, breached_at = firing[0][1], firing[1][1]
    assert predicted_at is not None and breached_at is not None
    assert breached_at - predicted_at >= 30 * 60
    low = next(e for e in events if e.name == "OpticalRxPowerLow")
    assert low.severity is Severity.CRITICAL and low.detector == DETECTOR_STATIC
    assert "low: -27." in low.summary or "low: -28." in low.summary


def test_warm_up_of_a_new_gauge_series_produces_nothing() -> None:
    engine = DetectionEngine(warmup=20, for_=0.0)
    states = [engine.update([gauge("olt-1", "optical_rx_dbm", -31.0, i * STEP)]) for i in range(21)]
    assert states[:20] == [[]] * 20 and [e.name for e in states[20]] == ["OpticalRxPowerLow"]


def test_hysteresis_holds_between_clear_and_threshold(warmed: tuple[DetectionEngine, Net]) -> None:
    engine, net = warmed
    net.override[(B, "if_in_utilization")] = 0.95
    assert [e.state for e in flat(net.run(engine, 3))] == [EventState.PENDING, EventState.FIRING]
    net.override[(B, "if_in_utilization")] = 0.87  # below 0.9, above the 0.85 clear level
    assert [e for e in flat(net.run(engine, 20)) if e.name == UTILIZATION_HIGH] == []
    assert [e.state for e in engine.active() if e.name == UTILIZATION_HIGH] == [EventState.FIRING]
    net.override[(B, "if_in_utilization")] = 0.5
    after = [e for e in flat(net.run(engine, 10)) if e.name == UTILIZATION_HIGH]
    assert [e.state for e in after] == [EventState.RESOLVED]


@pytest.mark.parametrize("damped", [True, False])
def test_flapping_port_is_one_event_with_damping(damped: bool) -> None:
    engine, net = (DetectionEngine() if damped else DetectionEngine(damping=None)), Net()
    flat(net.run(engine, QUIET_STEPS))
    per_cycle: list[list[Event]] = []
    for _cycle in range(12):  # errors for 3 min, clean for 7 min: beyond keep_firing_for
        net.override[(A, "if_in_errors_per_s")] = 412.0
        events = flat(net.run(engine, 3))
        del net.override[(A, "if_in_errors_per_s")]
        events += flat(net.run(engine, 7))
        per_cycle.append([e for e in events if e.name == ERRORS_RISING])
    firing = [e for c in per_cycle for e in c if e.state is EventState.FIRING]
    if not damped:
        assert len(firing) == 12  # the storm damping prevents
        return
    # Cisco defaults: the first two flaps pass, the third suppresses: then one held FIRING
    assert len(firing) == 3 and per_cycle[3:] == [[]] * 9
    (held,) = [e for e in engine.active() if e.name == ERRORS_RISING]
    assert held.state is EventState.FIRING and ("flapping", "true") in held.annotations


def test_collective_degradation_of_one_pon_is_one_parent_event() -> None:
    onts = [f"ont-{i}" for i in range(6)]
    engine = DetectionEngine(for_=0.0, parents={o: "olt-1/pon-3" for o in onts})
    rng = np.random.default_rng(4)
    events: list[Event] = []
    for step in range(60):
        t = step * STEP
        bad = step >= 40
        samples = [
            gauge(o, "optical_rx_dbm", (-31.0 if bad and i < 4 else -20.0) + rng.normal(0, 0.1), t)
            for i, o in enumerate(onts)
        ]
        events += engine.update(samples)
    parent = [e for e in events if e.name == COLLECTIVE_DEGRADATION]
    assert [(e.element, e.state) for e in parent] == [("olt-1/pon-3", EventState.FIRING)]
    (p,) = parent
    assert p.detector == DETECTOR_COLLECTIVE and p.label("scope") == "children"
    assert dict(p.annotations)["children"] == "ont-0,ont-1,ont-2,ont-3"
    assert p.value == pytest.approx(4 / 6) and "4 of 6 elements" in p.summary
    assert engine.collective_members("olt-1/pon-3", 59 * STEP) == onts[:4]
    children = [e for e in engine.active() if e.name == "OpticalRxPowerLow"]
    assert len(children) == 4 and all(("collective", "olt-1/pon-3") in e.annotations for e in children)


def test_isolated_ont_is_not_collective() -> None:
    onts = [f"ont-{i}" for i in range(6)]
    engine = DetectionEngine(for_=0.0, parents={o: "pon" for o in onts})
    events: list[Event] = []
    for step in range(60):
        vals = [-31.0 if (step >= 40 and i == 0) else -20.0 for i in range(6)]
        events += engine.update([gauge(o, "optical_rx_dbm", v, step * STEP) for o, v in zip(onts, vals, strict=True)])
    assert COLLECTIVE_DEGRADATION not in {e.name for e in events}
    assert "OpticalRxPowerLow" in {e.name for e in events}


def test_array_memory_per_series_is_within_budget() -> None:
    engine = DetectionEngine()
    samples = [
        Sample(f"r{e}", m, labels_of(ifIndex=str(p)), 0.1, 0.0, SampleKind.RATE)
        for e in range(20)
        for p in range(10)
        for m in ("if_in_utilization", "if_out_utilization", "if_in_errors_per_s",
                  "if_out_errors_per_s", "if_in_discards_per_s")
    ]  # fmt: skip
    engine.update(samples)
    assert engine.series_count == 1000
    assert 0 < engine.nbytes_per_series() <= 4096


def test_many_ports_of_one_element_erroring_is_one_element_event() -> None:
    engine = DetectionEngine(for_=0.0)
    rng = np.random.default_rng(6)
    events: list[Event] = []
    for step in range(40):
        bad = step >= 30
        events += engine.update([
            Sample("olt-2", "if_in_errors_per_s", labels_of(ifIndex=str(p), ifName=f"gpon-{p}"),
                   (300.0 if bad and p < 5 else abs(rng.normal(0, 0.05))), step * STEP, SampleKind.RATE)
            for p in range(8)
        ])  # fmt: skip
    collective = [e for e in events if e.name == COLLECTIVE_DEGRADATION]
    assert [(e.element, e.label("scope"), e.state) for e in collective] == [
        ("olt-2", "ports", EventState.FIRING)
    ]
    assert dict(collective[0].annotations)["children"] == "gpon-0,gpon-1,gpon-2,gpon-3,gpon-4"
    assert "5 of 8 ports under olt-2" in collective[0].summary


def _busy_link(days: float, peak: float, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A link climbing to ``peak`` every evening (24 h days, 60 s polls), 1 % noise."""
    t = np.arange(int(days * 1440)) * STEP
    hour = (t / 3600.0) % 24
    shape = np.interp(hour, [0, 4, 12, 18, 21, 24], [0.5, 0.2, 0.6, 0.7, 1.0, 0.5])
    return t, peak * shape + np.random.default_rng(seed).normal(0, 0.01, len(t))


@pytest.mark.parametrize("seasonal", [True, False])
def test_the_daily_evening_climb_is_not_a_predicted_breach_once_the_day_is_known(seasonal: bool) -> None:
    """Deliberate: the forecast runs on the deviation from the series' own time-of-day profile."""
    engine = DetectionEngine(forecast_seasonal=seasonal)
    t, x = _busy_link(3.0, 0.86)
    labels = labels_of(ifIndex="1", ifName="xe-0/0/0")
    predicted = []
    for ti, xi in zip(t, x, strict=True):
        for e in engine.update([Sample("olt-1", "if_in_utilization", labels, float(xi), float(ti), SampleKind.RATE)]):
            if e.state is EventState.FIRING and ti >= 86400.0:
                predicted.append(e.name)
    if seasonal:
        assert predicted == []
    else:  # the linear trend extrapolates every evening's climb past 0.9
        assert "InterfaceUtilizationBreachPredicted" in predicted


def test_a_creep_beyond_the_usual_evening_is_still_predicted() -> None:
    engine = DetectionEngine()
    t, x = _busy_link(3.0, 0.6)
    start = 2 * 86400.0 + 10 * 3600.0  # day 3, 10:00: blend into 97 % over 3 h
    w = np.clip((t - start) / (3 * 3600.0), 0.0, 1.0)
    x = x * (1 - w) + 0.97 * w
    labels = labels_of(ifIndex="1", ifName="xe-0/0/0")
    fired: dict[str, float] = {}
    for ti, xi in zip(t, x, strict=True):
        for e in engine.update([Sample("olt-1", "if_in_utilization", labels, float(xi), float(ti), SampleKind.RATE)]):
            if e.state is EventState.FIRING:
                fired.setdefault(e.name, float(ti))
    crossing = float(t[np.argmax((x >= 0.9) & (t >= start))])
    assert crossing - fired["InterfaceUtilizationBreachPredicted"] >= 30 * 60


def test_an_ordinary_cpu_spike_is_not_a_predicted_breach(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deliberate: a spike an hour after the time-of-day profile took over was a predicted breach.

    Two changes each stop it: a CPU prediction must hold ``forecast_fast_for`` (10 min, longer
    than the climb of an ordinary spike), and the seasonal forecast waits ``_SEASONAL_SETTLE``
    (6) half-lives of deviation history instead of 2. The trace is the one that fired.
    """
    path = Path(__file__).parent / "data" / "cpu_spike_day1.txt"
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    values = [int(v) / 100 for ln in lines for v in ln.split()]
    assert len(values) == 1555 and max(values) < 0.9

    def fired(settle: float, **kw: float) -> list[str]:
        monkeypatch.setattr(engine_module, "_SEASONAL_SETTLE", settle)
        engine = DetectionEngine(**kw)
        return [
            e.name for k, v in enumerate(values)
            for e in engine.update([Sample("dslam-1", "cpu_utilization", (), v, 1795276800.0 + 60 * k,
                                           SampleKind.GAUGE)])
            if e.state is EventState.FIRING
        ]  # fmt: skip

    assert engine_module._SEASONAL_SETTLE == 6.0
    assert fired(6.0) == []  # the shipped defaults
    assert fired(2.0, forecast_fast_for=120.0) == [PREDICTED_BREACH["CpuUtilizationHigh"]]  # before
    assert fired(2.0) == []
    assert fired(6.0, forecast_fast_for=120.0) == []


def _cpu_events(values: np.ndarray, **kw: float) -> list[tuple[float, Event]]:
    """(minute, FIRING event) of an engine fed one CPU value per minute."""
    engine = DetectionEngine(**kw)
    return [
        (float(k), e) for k, v in enumerate(values.tolist())
        for e in engine.update([Sample("olt-1", "cpu_utilization", (), v, 1795276800.0 + 60 * k, SampleKind.GAUGE)])
        if e.state is EventState.FIRING
    ]  # fmt: skip


def _cpu_day(seed: int) -> np.ndarray:
    """Three hours of an idle CPU: 25 % +- slow wander and poll noise."""
    rng = np.random.default_rng(seed)
    k = np.arange(180)
    return 0.25 + 0.03 * np.sin(k / 17.0 + seed) + rng.normal(0.0, 0.01, size=k.size)


@pytest.mark.parametrize(("minutes", "curve"), [(40, 1.0), (60, 1.0), (45, 2.0)])
def test_a_cpu_runaway_is_predicted_before_the_crossing(minutes: int, curve: float) -> None:
    """Deliberate: a CPU climbing steadily for tens of minutes is a predicted breach, with its
    ETA, minutes before it crosses 90 % (the 30-min trend alone only spoke at the crossing)."""
    base = _cpu_day(minutes)
    g = (np.arange(minutes + 20) / minutes).clip(0, 1) ** curve
    ramp = base[-1] * (1 - g) + 1.0 * g
    values = np.concatenate([base, ramp]).clip(0, 1)
    crossing = float(np.argmax(values >= 0.9))
    events = _cpu_events(values)
    predicted = [(k, e) for k, e in events if e.name == PREDICTED_BREACH["CpuUtilizationHigh"]]
    assert predicted, [e.name for _k, e in events]
    k, event = predicted[0]
    assert crossing - k >= 5, (crossing, k)
    now = 1795276800.0 + 60 * k
    assert event.eta is not None and now < event.eta <= now + 7200  # when it will cross
    assert "breach in ~" in event.summary
    without = [k for k, e in _cpu_events(values, forecast_climb_for=None)
               if e.name == PREDICTED_BREACH["CpuUtilizationHigh"]]
    assert not without or without[0] - k >= 5, (k, without)  # the 30-min trend alone: later, or never


def test_a_climb_is_seen_not_inferred_across_missed_polls() -> None:
    """Deliberate: 12 min of climb, 40 min without polls, then the climb goes on. The minutes
    before the gap do not count: the climb must be seen for its whole 16 minutes again."""
    engine = DetectionEngine()
    t0 = 1795276800.0
    fired = []
    minutes = [*range(180 + 12), *range(180 + 12 + 40, 180 + 12 + 40 + 50)]
    for k in minutes:
        v = 0.25 if k < 180 else 0.25 + 0.006 * (k - 180)  # 36 points an hour
        for e in engine.update([Sample("olt-1", "cpu_utilization", (), v, t0 + 60 * k, SampleKind.GAUGE)]):
            if e.state is EventState.FIRING:
                fired.append((k, e.name))
    predicted = [k for k, name in fired if name == PREDICTED_BREACH["CpuUtilizationHigh"]]
    assert predicted and predicted[0] >= 180 + 12 + 40 + 16, fired


@pytest.mark.parametrize("rise", [1, 5, 10])
def test_an_ordinary_cpu_spike_that_climbs_for_minutes_is_no_runaway(rise: int) -> None:
    """Deliberate: a spike up to 85 % in 1-10 min, held 8 min, then back, predicts nothing."""
    base = _cpu_day(rise)
    top = 0.85
    up = base[-1] + (top - base[-1]) * np.arange(1, rise + 1) / rise
    values = np.concatenate([base, up, np.full(8, top), np.linspace(top, 0.25, 4), _cpu_day(rise + 1)[:60]])
    assert _cpu_events(values) == []


def test_an_error_burst_of_a_few_polls_is_not_sustained(warmed: tuple[DetectionEngine, Net]) -> None:
    """Deliberate: the error rule reads the rate over ``error_window`` (5 min), not one poll."""
    engine, net = warmed
    key = (A, "if_in_errors_per_s")
    net.override[key] = 1.5  # three polls of 1.5 errors/s: 270 errors
    burst = flat(net.run(engine, 3))
    del net.override[key]
    burst += flat(net.run(engine, 10))
    assert [e for e in burst if e.state is EventState.FIRING] == []
    net.override[key] = 3.0  # sustained: fires
    sustained = flat(net.run(engine, 10))
    assert any(e.name == ERRORS_RISING and e.state is EventState.FIRING for e in sustained)


def test_update_columns_equals_update() -> None:
    a, b = DetectionEngine(), DetectionEngine()
    net_a, net_b = Net(), Net()
    keys = [s.series_key for s in Net().samples()]
    cols = b.columns_of(keys + [("x", "ifOperStatus", ())])
    assert cols[-1] == -1 and (cols[:-1] >= 0).all()
    for _ in range(QUIET_STEPS):
        net_a.t += STEP
        net_b.t += STEP
        ev_a = a.update(net_a.samples())
        samples = net_b.samples()
        x = np.array([s.value for s in samples])
        ev_b = b.update_columns(cols[:-1], x, np.full(len(x), net_b.t))
        assert ev_a == ev_b
    np.testing.assert_array_equal(a.baseline.mean_, b.baseline.mean_)
    with pytest.raises(ValueError, match="not a series"):
        b.update_columns(np.array([10_000]), np.array([1.0]), np.array([net_b.t]))
