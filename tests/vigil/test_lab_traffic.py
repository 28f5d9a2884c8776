"""The lab traffic model: monotonic exact counters, the daily curve, faults, wraps, cost."""

from __future__ import annotations

import time

import pytest

from vigil.lab import Fault, FaultKind, TrafficModel, default_scenario, demo_site, diurnal
from vigil.lab.traffic import UTC_OFFSET, diurnal_integral

# 2026-11-23 00:00 local time (UTC+8): the runs below start at local midnight.
MIDNIGHT = 1795363200.0
UPLINK = ("agg-yuexiu-01", 1)


@pytest.fixture(scope="module")
def site():  # noqa: ANN201
    return demo_site()[0]


def _rates(model: TrafficModel, element: str, if_index: int, t0: float, t1: float, step: float):
    """Per-second (in octets, out octets, in errors) rates over [t0, t1) in ``step`` windows."""
    out = []
    prev = model.port(element, if_index, t0)
    t = t0
    while t + step <= t1:
        t += step
        cur = model.port(element, if_index, t)
        out.append(
            (
                t,
                (cur.in_octets - prev.in_octets) / step,
                (cur.out_octets - prev.out_octets) / step,
                (cur.in_errors - prev.in_errors) / step,
            )
        )
        prev = cur
    return out


def test_diurnal_curve_shape() -> None:
    assert (MIDNIGHT + UTC_OFFSET) % 86400 == 0
    hours = {h: diurnal(MIDNIGHT + h * 3600) for h in range(24)}
    assert min(hours, key=hours.get) == 4
    assert max(hours, key=hours.get) == 21
    assert hours[21] == pytest.approx(1.0)
    # The closed-form integral matches a fine numeric integral.
    a, b = MIDNIGHT + 3 * 3600 + 17, MIDNIGHT + 29 * 3600 + 5
    n = 20000
    numeric = sum(diurnal(a + (i + 0.5) * (b - a) / n) for i in range(n)) * (b - a) / n
    assert diurnal_integral(b) - diurnal_integral(a) == pytest.approx(numeric, rel=1e-6)


def test_counters_monotonic_over_a_day(site) -> None:  # noqa: ANN001
    model = TrafficModel.for_site(site, default_scenario(MIDNIGHT), boot=MIDNIGHT)
    prev = {name: model.element(name, MIDNIGHT) for name in model.devices}
    assert all(c.in_octets == 0 and c.in_errors == 0 for cs in prev.values() for c in cs)
    for minute in range(1, 24 * 60 + 1):
        t = MIDNIGHT + minute * 60.0
        for name in model.devices:
            cur = model.element(name, t)
            assert model.element(name, t) is cur  # a repeat is served from the cache
            for a, b in zip(prev[name], cur, strict=True):
                assert b.in_octets >= a.in_octets and b.out_octets >= a.out_octets
                assert b.in_errors >= a.in_errors and b.out_errors >= a.out_errors
                assert b.in_discards >= a.in_discards
            prev[name] = cur


def test_counters_do_not_depend_on_request_pattern(site) -> None:  # noqa: ANN001
    """Counters are a function of t: a fresh model, a stepped one and a rewound one agree."""
    scenario = default_scenario(MIDNIGHT)
    stepped = TrafficModel.for_site(site, scenario, boot=MIDNIGHT)
    for k in range(0, 6 * 3600, 45):
        stepped.element("agg-yuexiu-01", MIDNIGHT + k)
    for t in (MIDNIGHT + 5.5 * 3600, MIDNIGHT + 3600 + 7, MIDNIGHT + 40 * 60 + 0.25):
        fresh = TrafficModel.for_site(site, scenario, boot=MIDNIGHT)
        assert stepped.element("agg-yuexiu-01", t) == fresh.element("agg-yuexiu-01", t)


def test_rates_follow_the_daily_curve(site) -> None:  # noqa: ANN001
    model = TrafficModel.for_site(site, (), boot=MIDNIGHT)
    for element, if_index in [UPLINK, ("olt-tianhe-01", 1), ("cr-gz-01", 1)]:
        speed = model.devices[element].port(if_index).speed_bps / 8
        rates = _rates(model, element, if_index, MIDNIGHT, MIDNIGHT + 86400, 300)
        night = [max(r[1], r[2]) for r in rates if 3 * 3600 <= (r[0] - MIDNIGHT) <= 5 * 3600]
        peak = [max(r[1], r[2]) for r in rates if 20 * 3600 <= (r[0] - MIDNIGHT) <= 22 * 3600]
        mean_night, mean_peak = sum(night) / len(night), sum(peak) / len(peak)
        assert mean_night < 0.3 * mean_peak
        assert 0.25 * speed < mean_peak < 0.65 * speed  # peak utilisation 30-60 %
        # Noise: 5-minute rates stay within 12 % of the smooth curve.
        peak_in, peak_out = model.peak_rates(element, if_index)
        for t, rate_in, rate_out, _ in rates:
            smooth = (diurnal_integral(t) - diurnal_integral(t - 300)) / 300
            assert rate_in == pytest.approx(peak_in * smooth, rel=0.121)
            assert rate_out == pytest.approx(peak_out * smooth, rel=0.121)


def test_normal_error_rate_is_about_zero(site) -> None:  # noqa: ANN001
    model = TrafficModel.for_site(site, (), boot=MIDNIGHT)
    day = MIDNIGHT + 86400
    for name in ("cr-gz-01", "agg-yuexiu-01", "olt-haizhu-02"):
        for c in model.element(name, day):
            assert c.in_errors <= 6 and c.out_errors <= 1 and c.in_discards <= 50
    assert sum(c.in_errors for c in model.element("agg-yuexiu-01", day)) >= 1  # occasional


def test_fault_window(site) -> None:  # noqa: ANN001
    start = MIDNIGHT + 19 * 3600  # busy evening
    scenario = default_scenario(start, fault_at=600, saturate_after=300, duration=1200)
    model = TrafficModel.for_site(site, scenario, boot=start)
    speed = model.devices["agg-yuexiu-01"].port(1).speed_bps / 8
    rates = _rates(model, *UPLINK, start, start + 3600, 60)
    fault_start, saturated, cleared = start + 600, start + 900, start + 1800
    for t, rate_in, rate_out, errors in rates:
        window = t - 60
        if t <= fault_start or window >= cleared:
            assert errors < 1 and rate_in < 0.7 * speed and rate_out < 0.7 * speed
        elif window >= saturated and t <= cleared:
            assert errors > 100
            assert 0.96 * speed < rate_in < speed and 0.96 * speed < rate_out < speed
        elif window >= fault_start + 120:
            assert errors > 20 and rate_in < 0.7 * speed
    # Another port of the same switch, and the peer port on the core, are untouched.
    for element, if_index in [("agg-yuexiu-01", 2), ("cr-gz-01", 4)]:
        for _, rate_in, rate_out, errors in _rates(
            model, element, if_index, start, start + 3600, 60
        ):
            assert errors < 1 and max(rate_in, rate_out) < 0.7 * speed


def test_scenario_defaults_and_describe() -> None:
    scenario = default_scenario(1000.0)
    crc = next(f for f in scenario if f.kind is FaultKind.CRC_ERRORS)
    sat = next(f for f in scenario if f.kind is FaultKind.SATURATION)
    assert (crc.element, crc.if_index) == UPLINK == (sat.element, sat.if_index)
    assert (crc.start, sat.start, crc.end, sat.end) == (2200.0, 3100.0, 5500.0, 5500.0)
    lines = scenario.describe()
    assert lines[0].startswith("T+20 min .. T+75 min") and "CRC" in lines[0]
    assert lines[1].startswith("T+35 min") and "98%" in lines[1]
    assert lines[-1].startswith("T+75 min") and "cleared" in lines[-1]
    with pytest.raises(ValueError):
        default_scenario(0.0, saturate_after=100, duration=50)


def test_counter32_wraps(site) -> None:  # noqa: ANN001
    burst = Fault("agg-yuexiu-01", 1, FaultKind.CRC_ERRORS, MIDNIGHT, MIDNIGHT + 7200, 1e6)
    model = TrafficModel.for_site(site, [burst], boot=MIDNIGHT)
    values = [model.port(*UPLINK, MIDNIGHT + m * 60).in_errors for m in range(0, 121)]
    assert all(0 <= v < 2**32 for v in values)
    assert any(b < a for a, b in zip(values, values[1:], strict=False))  # it wrapped
    deltas = {(b - a) % 2**32 for a, b in zip(values, values[1:], strict=False)}
    assert all(abs(d - 60e6) <= 2 for d in deltas)  # modular differences stay exact


def test_uptime_is_timeticks(site) -> None:  # noqa: ANN001
    model = TrafficModel.for_site(site, (), boot=MIDNIGHT)
    assert model.uptime(MIDNIGHT - 5) == 0
    assert model.uptime(MIDNIGHT + 12.345) == 1234
    assert model.uptime(MIDNIGHT + 500 * 86400) == (500 * 86400 * 100) % 2**32


def test_unknown_fault_target_is_rejected(site) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="unknown element"):
        TrafficModel.for_site(site, [Fault("nope", 1, FaultKind.CRC_ERRORS, 0, 1, 1)], boot=0)
    with pytest.raises(KeyError):
        TrafficModel.for_site(site, [Fault("cr-gz-01", 99, FaultKind.CRC_ERRORS, 0, 1, 1)], boot=0)


def test_model_is_cheap(site) -> None:  # noqa: ANN001
    model = TrafficModel.for_site(site, default_scenario(MIDNIGHT), boot=MIDNIGHT)
    values, began = 0, time.perf_counter()
    for step in range(300):
        t = MIDNIGHT + 3600 + step * 6.0
        for name in model.devices:
            values += 5 * len(model.element(name, t))
    rate = values / (time.perf_counter() - began)
    assert rate > 20_000, f"{rate:.0f} counter values/s"


# -- gauges and the degradation kinds ------------------------------------------------------------

OLT, DSLAM = "olt-tianhe-01", "dslam-yuexiu-01"


def test_gauges_in_range_over_a_day(site) -> None:  # noqa: ANN001
    model = TrafficModel.for_site(site, (), boot=MIDNIGHT)
    cpu, rx, tx, snr, atn = [], [], [], [], []
    snr_by_hour: dict[int, list[float]] = {}
    for minute in range(0, 24 * 60, 5):
        t = MIDNIGHT + minute * 60.0
        cpu += [model.cpu(name, t) for name in model.devices]
        for name in ("olt-tianhe-01", "olt-haizhu-02"):
            rx += [o.rx_dbm for o in model.optics(name, t)]
            tx += [o.tx_dbm for o in model.optics(name, t)]
        for line in model.dsl(DSLAM, t):
            snr.append(line.snr_margin_db)
            atn.append(line.attenuation_db)
            snr_by_hour.setdefault(minute // 60, []).append(line.snr_margin_db)
    assert min(cpu) > 0.03 and max(cpu) < 0.6
    assert min(rx) > -22.5 and max(rx) < -17.5 and max(rx) - min(rx) > 2  # levels differ
    assert min(tx) > -3.5 and max(tx) < 5.0
    assert min(snr) > 6.5 and max(snr) < 14.5
    assert min(atn) > 11.5 and max(atn) < 40.5
    mean = {h: sum(v) / len(v) for h, v in snr_by_hour.items()}
    assert mean[21] < mean[4] - 0.5  # crosstalk at the busy hour eats margin
    assert len(model.optics(OLT, MIDNIGHT)) == 16  # 14 PON + uplink + standby
    assert len(model.dsl(DSLAM, MIDNIGHT)) == 22  # lines in service
    assert model.optics("cr-gz-01", MIDNIGHT) == () and model.dsl(OLT, MIDNIGHT) == ()
    # gauges are functions of t: a fresh model agrees
    t = MIDNIGHT + 7777.7
    fresh = TrafficModel.for_site(site, (), boot=MIDNIGHT)
    assert fresh.optics(OLT, t) == model.optics(OLT, t) and fresh.cpu(OLT, t) == model.cpu(OLT, t)


START = MIDNIGHT + 10 * 3600  # the fault windows below: 10:00-14:00 local
END = START + 4 * 3600


def _util(model: TrafficModel, element: str, if_index: int, t: float) -> float:
    """Highest of in/out utilisation over the minute ending at ``t``."""
    a, b = model.port(element, if_index, t - 60), model.port(element, if_index, t)
    speed = model.devices[element].port(if_index).speed_bps / 8
    return max(b.in_octets - a.in_octets, b.out_octets - a.out_octets) / 60 / speed


def _errors(model: TrafficModel, element: str, if_index: int, t: float) -> float:
    return (model.port(element, if_index, t).in_errors - model.port(element, if_index, t - 60).in_errors) / 60


# kind, element, ifIndex, peak, ramp, metric at (model, t), beyond the service level, safe outside
KIND_CASES = [
    (FaultKind.CRC_ERRORS, "agg-tianhe-01", 1, 150.0, lambda m, t: _errors(m, "agg-tianhe-01", 1, t),
     lambda v: v > 50, lambda v: v < 1),
    (FaultKind.UTILIZATION_CREEP, "agg-haizhu-01", 1, 0.97, lambda m, t: _util(m, "agg-haizhu-01", 1, t),
     lambda v: v > 0.9, lambda v: v < 0.7),
    (FaultKind.OPTICAL_DECAY, OLT, 3, 12.0, lambda m, t: m.optics(OLT, t)[2].rx_dbm,
     lambda v: v < -27, lambda v: v > -23),
    (FaultKind.SNR_EROSION, DSLAM, 5, 9.0, lambda m, t: m.dsl(DSLAM, t)[4].snr_margin_db,
     lambda v: v < 6, lambda v: v > 6.4),
    (FaultKind.CPU_RUNAWAY, "olt-haizhu-01", 0, 1.0, lambda m, t: m.cpu("olt-haizhu-01", t),
     lambda v: v > 0.9, lambda v: v < 0.6),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "element", "if_index", "peak", "metric", "beyond", "safe"), KIND_CASES)
def test_fault_kind_crosses_its_level_in_its_window_only(  # noqa: PLR0913
    site, kind, element, if_index, peak, metric, beyond, safe  # noqa: ANN001
) -> None:
    ramp = 3 * 3600 if kind is not FaultKind.CPU_RUNAWAY else 40 * 60
    fault = Fault(element, if_index, kind, START, END, peak, ramp=ramp)
    model = TrafficModel.for_site(site, [fault], boot=MIDNIGHT)
    values = {m: metric(model, MIDNIGHT + m * 60.0) for m in range(2, 24 * 60, 2)}
    inside = {m: v for m, v in values.items() if START + 60 <= MIDNIGHT + m * 60 < END}
    outside = {m: v for m, v in values.items() if not START <= MIDNIGHT + m * 60 - 60 < END}
    assert all(safe(v) for v in outside.values()), [(m, v) for m, v in outside.items() if not safe(v)][:3]
    crossed = [m for m, v in inside.items() if beyond(v)]
    assert crossed, f"{kind} never crossed its level"
    first = MIDNIGHT + min(crossed) * 60
    assert START + 0.3 * ramp < first <= START + ramp + 120  # gradual: not at once, by the ramp end
    late = [v for m, v in inside.items() if MIDNIGHT + m * 60 >= START + ramp + 60]
    assert late and all(beyond(v) for v in late)  # held beyond until the repair
    # Another series of the same element is untouched.
    other = TrafficModel.for_site(site, (), boot=MIDNIGHT)
    t = START + ramp + 600
    if kind is FaultKind.OPTICAL_DECAY:
        assert model.optics(OLT, t)[3] == other.optics(OLT, t)[3]
    elif kind is FaultKind.SNR_EROSION:
        assert model.dsl(DSLAM, t)[0] == other.dsl(DSLAM, t)[0]
    elif kind is not FaultKind.CPU_RUNAWAY:
        assert model.cpu(element, t) == other.cpu(element, t)


def test_creep_counters_blend_the_normal_rate_into_saturation(site) -> None:  # noqa: ANN001
    """The closed-form creep integral equals ``normal x (1 - w) + peak x w`` minute by minute."""
    fault = Fault("agg-haizhu-01", 1, FaultKind.UTILIZATION_CREEP, START, END, 0.97, ramp=3 * 3600)
    model = TrafficModel.for_site(site, [fault], boot=MIDNIGHT)
    normal = TrafficModel.for_site(site, (), boot=MIDNIGHT)
    speed = 10e9 / 8
    for minute in range(-30, 5 * 60, 7):
        t = START + minute * 60
        a, b = model.port("agg-haizhu-01", 1, t), model.port("agg-haizhu-01", 1, t + 60)
        na, nb = normal.port("agg-haizhu-01", 1, t), normal.port("agg-haizhu-01", 1, t + 60)
        for got, base in ((b.in_octets - a.in_octets, nb.in_octets - na.in_octets),
                          (b.out_octets - a.out_octets, nb.out_octets - na.out_octets)):  # fmt: skip
            if t + 60 <= START or t >= END:
                assert abs(got - base) <= 2  # truncation of the octets to integers
            else:
                w = min(max((t + 30 - START) / (3 * 3600), 0.0), 1.0)  # midpoint weight
                assert got / 60 == pytest.approx(base / 60 * (1 - w) + 0.97 * speed * w, rel=2e-3, abs=1e4)
    # counters are a function of t (a fresh model, asked out of order, agrees)
    for t in (START + 7000.5, START + 100, END + 3):
        assert TrafficModel.for_site(site, [fault], boot=MIDNIGHT).port("agg-haizhu-01", 1, t) == model.port(
            "agg-haizhu-01", 1, t
        )


def test_flapping_toggles_oper_status_and_counts_relinks(site) -> None:  # noqa: ANN001
    fault = Fault("agg-tianhe-01", 7, FaultKind.FLAPPING, START, START + 1800, 300, period=270)
    assert fault.outages()[0] == (START, START + 108) and len(fault.outages()) == 7
    model = TrafficModel.for_site(site, [fault], boot=MIDNIGHT)
    statuses, prev = [], model.port("agg-tianhe-01", 7, START - 660)
    for k in range(0, 60):
        t = START - 600 + k * 60
        c = model.port("agg-tianhe-01", 7, t)
        inside = START <= t < START + 1800
        statuses.append(c.oper_status)
        assert c.in_octets >= prev.in_octets and c.in_errors >= prev.in_errors
        if c.oper_status == 2 and prev.oper_status == 2:
            assert c.in_octets == prev.in_octets  # nothing moves on a link that stayed down
        if not inside:
            assert c.oper_status == 1
        prev = c
    assert statuses.count(2) >= 7
    assert sum(1 for a, b in zip(statuses, statuses[1:], strict=False) if a == 2 and b == 1) >= 6  # toggles
    after = model.port("agg-tianhe-01", 7, START + 3600).in_errors
    before = model.port("agg-tianhe-01", 7, START - 1).in_errors
    assert 7 * 300 <= after - before <= 7 * 300 + 3  # one burst per re-link (plus background)


def test_fault_validation(site) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="no optic"):
        TrafficModel.for_site(site, [Fault("agg-tianhe-01", 1, FaultKind.OPTICAL_DECAY, 0, 1, 5)], boot=0)
    with pytest.raises(ValueError, match="not a DSL line"):
        TrafficModel.for_site(site, [Fault(OLT, 1, FaultKind.SNR_EROSION, 0, 1, 5)], boot=0)
    overlap = [
        Fault("agg-tianhe-01", 1, FaultKind.UTILIZATION_CREEP, 0, 100, 0.9, ramp=50),
        Fault("agg-tianhe-01", 1, FaultKind.SATURATION, 50, 150, 0.9),
    ]
    with pytest.raises(ValueError, match="overlap"):
        TrafficModel.for_site(site, overlap, boot=0)
    with pytest.raises(ValueError):
        Fault(OLT, 0, FaultKind.CPU_RUNAWAY, 0, 1, 1.5)
    with pytest.raises(ValueError):
        Fault(OLT, 1, FaultKind.FLAPPING, 0, 1, 5, period=0)
    TrafficModel.for_site(site, [Fault(OLT, 0, FaultKind.CPU_RUNAWAY, 0, 1, 1.0)], boot=0)  # element-wide
    f = Fault(OLT, 1, FaultKind.OPTICAL_DECAY, 100, 500, 8, ramp=200, curve=2)
    assert (f.progress(50), f.progress(200), f.progress(300), f.progress(400)) == (0.0, 0.25, 1.0, 1.0)
