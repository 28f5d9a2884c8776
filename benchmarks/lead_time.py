"""Lead time of the shipped detectors on the lab network: do they see degradations coming?

Builds a scenario set on the demo site's topology and feeds the **production** detection engine
(``DetectionEngine.from_config(DetectorsConfig())``, as ``vigil run`` builds it) with the samples
the collectors would produce, generated straight from the lab's traffic model every ``--poll``
simulated seconds (no SNMP: counters go through ``collectors.RateCalculator`` like a poll's do;
gauges are quantised as the agents serve them: CPU to 1 %, dBm and dB to 0.1).

Timeline (simulated, from a Sunday 00:00 Guangzhou time): ``--warmup-days`` of normal traffic
(the engine learns; events are reported but not scored), ``--normal-days`` of normal traffic (every
FIRING event is a false event), then the fault phase: ``--instances`` of each degradation kind on
varied elements, ports and times of day, at most one at a time per element:

=================  ====================================  ==============  ====================
kind               series                                service level   ramp
=================  ====================================  ==============  ====================
crc_errors         if_in_errors_per_s of the port        50 errors/s     1.5-4 h to 80-200/s
utilization_creep  if_in/out_utilization of the port     0.90            2-5 h to 97 %
optical_decay      optical_rx_dbm of the optic           -27 dBm         3-8 h, -11..-13 dB
snr_erosion        dsl_snr_margin_db of the line         6 dB            2-6 h, -8..-10 dB
cpu_runaway        cpu_utilization of the element        0.90            20-60 min to 100 %
flapping           ifOperStatus of the port              (events count)  30-90 min episodes
=================  ====================================  ==============  ====================

The CRC service level is 50 errors/s (3,000 per poll minute: several % of frames on a busy
gigabit port; customers see retransmissions and video stalls well before a link drops). The
table is this benchmark's definition of "the moment the customer is hurt"; it matches
``detectors.engine.SERVICE_THRESHOLDS``.

Per kind: the **crossing** is the first poll inside the fault window at which the sampled series
is beyond its service level; the **lead** is crossing minus the first FIRING event about that
series (same element, same ifIndex, same metric; PENDING never reaches the NOC), positive =
before the crossing. A fault without such an event in its window is missed; medians count a miss
as -inf (``None`` when misses are the majority). Side by side, on the same samples and with the
same ``ConditionTracker`` settings (``for``, ``keep_firing_for``, flap damping):

* ``static``: value beyond the service level (condition onset at the crossing, so the FIRING
  lead is ``-for``, -2 min by default);
* ``warn80``: value beyond 80 % of the level (upper limits: 0.8 x level; lower limits in
  dB/dBm: level + 10 log10(1 / 0.8) = +0.97 dB, i.e. 80 % in linear power).

Flapping has no crossing: the figure is FIRING events per episode about the port (one is right,
more is a storm, none is a miss); vigil's include ``InterfaceDown`` from the polled ifOperStatus
(``TrapRules.observe``, as ``vigil run`` feeds it); the static comparator is a port-down rule on
ifOperStatus without damping.

False events: FIRING events of every detector during the normal days, per 1,000 element-days,
with a 95 % Poisson upper bound. The lab's 10 elements are calm (no series comes near its level),
so the normal period adds ``--hot-elements`` (144) benchmark-only elements that run hot but
healthy (:class:`HotPopulation`: links peaking at 78-88 % every evening, DSL margins of 6.1-7.6
dB with busy-hour dips, optics at -24..-26 dBm drifting, CPU spikes to 70-85 %, CRC bursts,
weekday/weekend days), fed to the engine on its array path (``columns_of`` / ``update_columns``)
in the same step as the lab's samples, with the topology's parents as ``vigil run`` passes them.
7 normal days: 1,078 element-days; 0 events would bound the rate below 3.4 per 1,000.

    .venv/bin/python benchmarks/lead_time.py                    # ~6 min on a loaded 2-core box
    .venv/bin/python benchmarks/lead_time.py --quick            # 48 hot elements, 2 days, ~1.5 min
    .venv/bin/python benchmarks/lead_time.py --normal-days 28   # a bound near 1 per 1,000
    .venv/bin/python benchmarks/lead_time.py --events           # print every false event

Last line: JSON with ``median_lead_minutes_gradual`` (pooled over the gradual kinds) and
``false_events_per_1000_element_days``, plus per-kind figures.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.counters import RateCalculator  # noqa: E402
from collectors.sample import Sample, SampleKind, labels_of  # noqa: E402
from config.models import DetectorsConfig  # noqa: E402
from detectors import ConditionTracker, DetectionEngine, Event, EventState  # noqa: E402
from detectors.state import FlapDamping  # noqa: E402
from detectors.traps import INTERFACE_DOWN, TrapRules  # noqa: E402
from vigil.lab import Fault, FaultKind, TrafficModel, demo_site, lab_devices  # noqa: E402
from vigil.lab.device import Device, PortKind, dsl_lines, optic_ports  # noqa: E402
from vigil.lab.scenario import ELEMENT_KINDS  # noqa: E402
from vigil.lab.traffic import UTC_OFFSET, diurnal_array  # noqa: E402

# Sunday 2026-11-22 00:00 in Guangzhou (UTC+8).
T0 = 1795363200.0 - 86400.0
_DAY, _HOUR, _MIN = 86400.0, 3600.0, 60.0
_WARN_DB = 10 * math.log10(1 / 0.8)  # 80 % of a power level, in dB

SERVICE: dict[str, tuple[float, int]] = {
    "if_in_utilization": (0.90, +1),
    "if_out_utilization": (0.90, +1),
    "if_in_errors_per_s": (50.0, +1),
    "if_out_errors_per_s": (50.0, +1),
    "if_in_discards_per_s": (100.0, +1),
    "optical_rx_dbm": (-27.0, -1),
    "dsl_snr_margin_db": (6.0, -1),
    "cpu_utilization": (0.90, +1),
}
"""Service level per engine-facing metric: (level, +1 upper / -1 lower limit)."""

KIND_METRICS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.CRC_ERRORS: ("if_in_errors_per_s",),
    FaultKind.UTILIZATION_CREEP: ("if_in_utilization", "if_out_utilization"),
    FaultKind.OPTICAL_DECAY: ("optical_rx_dbm",),
    FaultKind.SNR_EROSION: ("dsl_snr_margin_db",),
    FaultKind.CPU_RUNAWAY: ("cpu_utilization",),
    FaultKind.FLAPPING: ("ifOperStatus",),
}
GRADUAL = (
    FaultKind.CRC_ERRORS,
    FaultKind.UTILIZATION_CREEP,
    FaultKind.OPTICAL_DECAY,
    FaultKind.SNR_EROSION,
    FaultKind.CPU_RUNAWAY,
)
KINDS = (*GRADUAL, FaultKind.FLAPPING)
_SPEED_MARGIN = 1.5  # as collectors.ifmib: a rate above 1.5x the speed is a glitch
_FLAP_TAIL = 3600.0  # events up to an hour after a flapping episode still belong to it


def warn_level(metric: str) -> float:
    """The 80 %-of-threshold warning level of ``metric``."""
    level, sign = SERVICE[metric]
    return 0.8 * level if sign > 0 else level + _WARN_DB


@dataclass(frozen=True)
class Config:
    """One benchmark run."""

    warmup_days: float = 1.0
    normal_days: float = 7.0
    instances: int = 4
    poll: float = 60.0
    seed: int = 7
    spacing: float = 100 * _MIN  # between fault starts
    scale: float = 1.0  # multiplies fault ramps and durations (smoke tests use < 1)
    hot_elements: int = 144  # the hot-but-healthy population (warm-up and normal days only)


# -- the scenario set ----------------------------------------------------------------------------


def build_faults(devices: dict[str, Device], start: float, cfg: Config) -> list[Fault]:
    """``cfg.instances`` faults of each kind from ``start``: varied targets, shapes, hours."""
    rng = random.Random(cfg.seed)
    sc = cfg.scale

    def ports(*kinds: PortKind) -> list[tuple[str, int]]:
        return [(n, p.if_index) for n, d in devices.items() for p in d.ports if p.kind in kinds]

    pools: dict[FaultKind, list[tuple[str, int]]] = {
        FaultKind.CRC_ERRORS: ports(PortKind.UPLINK, PortKind.DOWNLINK, PortKind.BACKBONE)
        + [(n, p.if_index) for n, d in devices.items() for p in dsl_lines(d)],
        FaultKind.UTILIZATION_CREEP: ports(
            PortKind.UPLINK, PortKind.DOWNLINK, PortKind.BACKBONE, PortKind.ACCESS
        ),
        FaultKind.OPTICAL_DECAY: [(n, p.if_index) for n, d in devices.items() for p in optic_ports(d)],
        FaultKind.SNR_EROSION: [(n, p.if_index) for n, d in devices.items() for p in dsl_lines(d)],
        FaultKind.CPU_RUNAWAY: [(n, 0) for n in devices],
        FaultKind.FLAPPING: ports(PortKind.ENTERPRISE, PortKind.ACCESS, PortKind.DOWNLINK),
    }
    for pool in pools.values():
        rng.shuffle(pool)

    def shape(kind: FaultKind) -> tuple[float, float, float, float, float]:
        """(peak, ramp, curve, hold, period) of one instance."""
        u = rng.random()
        curve = rng.choice((1.0, 1.0, 1.5, 2.0))
        if kind is FaultKind.CRC_ERRORS:
            return 80 + 120 * u, (1.5 + 2.5 * rng.random()) * _HOUR, curve, _HOUR, 240.0
        if kind is FaultKind.UTILIZATION_CREEP:
            return 0.97, (2 + 3 * u) * _HOUR, 1.0, _HOUR, 240.0
        if kind is FaultKind.OPTICAL_DECAY:
            return 11 + 2 * u, (3 + 5 * rng.random()) * _HOUR, curve, _HOUR, 240.0
        if kind is FaultKind.SNR_EROSION:
            return 8 + 2 * u, (2 + 4 * rng.random()) * _HOUR, curve, _HOUR, 240.0
        if kind is FaultKind.CPU_RUNAWAY:
            return 1.0, (20 + 40 * u) * _MIN, curve, 30 * _MIN, 240.0
        period = 150 + 270 * rng.random()  # not a multiple of the poll interval
        return 50 + 450 * u, 0.0, 1.0, (30 + 60 * rng.random()) * _MIN, period

    faults: list[Fault] = []
    free_at: dict[str, float] = {}
    cursor = start
    for i in range(cfg.instances):
        for kind in KINDS:
            pool = pools[kind]
            element, if_index = pool[i % len(pool)]
            peak, ramp, curve, hold, period = shape(kind)
            ramp, hold = ramp * sc, hold * sc
            begin = max(cursor + rng.uniform(0, cfg.spacing / 2), free_at.get(element, start))
            end = begin + ramp + hold
            faults.append(
                Fault(element, if_index, kind, begin, end, peak, ramp=ramp, curve=curve,
                      period=period, note=f"{kind} #{i + 1}")
            )  # fmt: skip
            free_at[element] = end + 2 * _HOUR * sc  # the element recovers before the next one
            cursor += cfg.spacing * sc
    return faults


# -- samples as the collectors produce them ------------------------------------------------------


class SampleSource:
    """Every poll of every element, straight from the traffic model (rates via RateCalculator)."""

    def __init__(self, model: TrafficModel, devices: dict[str, Device]) -> None:
        self.model = model
        self.devices = devices
        self._rates = {name: RateCalculator() for name in devices}
        self._labels = {
            (name, p.if_index): labels_of(ifIndex=str(p.if_index), ifName=p.name)
            for name, d in devices.items()
            for p in d.ports
        }

    def poll(self, t: float) -> list[Sample]:
        """The samples of one poll of every element at ``t``."""
        out: list[Sample] = []
        model, rate_kind, gauge = self.model, SampleKind.RATE, SampleKind.GAUGE
        for name, device in self.devices.items():
            rates = self._rates[name]
            uptime = model.uptime(t)
            for port, c in zip(device.ports, model.element(name, t), strict=True):
                labels = self._labels[(name, port.if_index)]
                out.append(Sample(name, "ifOperStatus", labels, c.oper_status, t, gauge))
                speed = c.high_speed * 1e6
                i = port.if_index
                for key, value, metric in (
                    ("in", c.in_octets, "if_in_utilization"),
                    ("out", c.out_octets, "if_out_utilization"),
                ):
                    r = rates.update((i, key), value, t, 64, uptime, speed / 8 * _SPEED_MARGIN)
                    if r is not None and speed > 0:
                        out.append(Sample(name, metric, labels, r * 8 / speed, t, rate_kind))
                for key, value, metric in (
                    ("ie", c.in_errors, "if_in_errors_per_s"),
                    ("oe", c.out_errors, "if_out_errors_per_s"),
                    ("id", c.in_discards, "if_in_discards_per_s"),
                ):
                    r = rates.update((i, key), value, t, 32, uptime)
                    if r is not None:
                        out.append(Sample(name, metric, labels, r, t, rate_kind))
            out.append(Sample(name, "cpu_utilization", (), round(model.cpu(name, t) * 100) / 100, t, gauge))
            for o in model.optics(name, t):
                labels = self._labels[(name, o.if_index)]
                out.append(Sample(name, "optical_rx_dbm", labels, round(o.rx_dbm * 10) / 10, t, gauge))
            for d in model.dsl(name, t):
                labels = self._labels[(name, d.if_index)]
                out.append(Sample(name, "dsl_snr_margin_db", labels, round(d.snr_margin_db * 10) / 10, t, gauge))
        return out


# -- the hot-but-healthy population --------------------------------------------------------------

# Weekend days lift the daytime (people at home); the 21:00 peak is the same curve.
_WEEKEND_LIFT = np.interp(np.arange(25.0), [0, 8, 11, 17, 20, 24], [0, 0, 0.15, 0.15, 0, 0])
_U_UTIL, _U_ERR, _U_DISC, _U_CPU, _U_OPT, _U_SNR = range(6)
_HOT_METRIC = {_U_ERR: "if_in_errors_per_s", _U_DISC: "if_in_discards_per_s", _U_CPU: "cpu_utilization",
               _U_OPT: "optical_rx_dbm", _U_SNR: "dsl_snr_margin_db"}  # fmt: skip
HOT_ARCHETYPES = ("olt", "dslam", "agg")
HOT_PER_PARENT = 6


class HotPopulation:
    """Benchmark-only elements that run hot but healthy: near every service level, never beyond.

    Built on the lab's daily curve (:func:`vigil.lab.traffic.diurnal_array`) with weekday and
    weekend shapes and a per-element, per-day factor (weekdays 0.92-0.99 of the weekend peak).
    Three archetypes, one in three elements each, ``HOT_PER_PARENT`` per parent area:

    * ``olt``: a 10G uplink and 4 PON ports whose busy direction peaks at 78-86 % every evening
      (+-1.5 % slow and +-3 % fast noise: never above 0.90), optics at -24.0..-25.6 dBm with
      +-0.35 dB slow drift, a daily temperature swing and jitter (never below -26.3 dBm);
    * ``dslam``: a hot uplink (and its optic) and 6 VDSL2 lines (30-75 % of their sync rate)
      whose SNR margin sits at 7.0-7.6 dB at night and dips 0.3-0.6 dB at the busy hour
      (never below 6.1 dB), copper lines with frequent CRC bursts;
    * ``agg``: a hot uplink and 4 hot downlinks with optics, like the OLT.

    Every element: CPU 15-30 % plus a 10-20 % diurnal swing and noise, with about 4 spikes a
    day to 70-85 % (rise 1-10 min, hold 1-8 min, fall 1-5 min). Every port: bursts of 2-200
    CRC errors over 1-3 polls (2 a day; 8 a day on copper), busy-hour discards up to ~0.3/s.
    Values are the per-poll averages the collectors would report (rates) or instantaneous
    gauges quantised as the agents serve them; generated a day at a time with numpy.
    """

    def __init__(self, n_elements: int, start: float, days: float, poll: float, seed: int) -> None:
        rng = np.random.default_rng([seed, 0x407])
        self.start, self.poll, self.seed = start, poll, seed
        self.steps = int(math.ceil(days * _DAY / poll))
        self.chunk = max(1, int(round(_DAY / poll)))
        self.elements: list[str] = []
        self.parents: dict[str, str] = {}
        meta: list[tuple[str, str, tuple[tuple[str, str], ...], SampleKind]] = []
        unit, elem, a, b = [], [], [], []

        def add(e: int, u: int, metric: str, labels: tuple[tuple[str, str], ...], pa: float, pb: float) -> None:
            kind = SampleKind.RATE if u in (_U_UTIL, _U_ERR, _U_DISC) else SampleKind.GAUGE
            meta.append((self.elements[e], metric, labels, kind))
            unit.append(u)
            elem.append(e)
            a.append(pa)
            b.append(pb)

        for e in range(n_elements):
            arch = HOT_ARCHETYPES[e % len(HOT_ARCHETYPES)]
            name = f"hot-{arch}-{e:03d}"
            self.elements.append(name)
            self.parents[name] = f"hot-area-{e // HOT_PER_PARENT:02d}"
            ports: list[tuple[int, str, bool, bool, bool]] = [(1, "xgei-0/1/0/1", True, True, False)]
            if arch == "dslam":
                ports += [(1 + n, f"vdsl-0/2/{n}", False, False, True) for n in range(1, 7)]
            else:
                prefix = "gpon-olt_0/2" if arch == "olt" else "xgei-0/2/0"
                ports += [(1 + n, f"{prefix}/{n}", False, True, False) for n in range(1, 5)]
            for if_index, if_name, uplink, optic, copper in ports:
                labels = labels_of(ifIndex=str(if_index), ifName=if_name)
                busy = rng.uniform(0.30, 0.75) if copper else rng.uniform(0.78, 0.86)
                other = busy * rng.uniform(0.08, 0.35)
                add(e, _U_UTIL, "if_in_utilization", labels, busy if uplink else other, 0.0)
                add(e, _U_UTIL, "if_out_utilization", labels, other if uplink else busy, 0.0)
                add(e, _U_ERR, "if_in_errors_per_s", labels, 8.0 if copper else 2.0, 0.0)
                if not copper:
                    add(e, _U_DISC, "if_in_discards_per_s", labels, 20.0, 0.0)
                if optic:
                    add(e, _U_OPT, "optical_rx_dbm", labels, rng.uniform(-25.6, -24.0), rng.uniform(0.05, 0.15))
                if copper:
                    add(e, _U_SNR, "dsl_snr_margin_db", labels, rng.uniform(7.0, 7.6), rng.uniform(0.3, 0.6))
            add(e, _U_CPU, "cpu_utilization", (), rng.uniform(0.15, 0.30), rng.uniform(0.10, 0.20))
        self.meta = meta
        self.unit = np.array(unit, dtype=np.int8)
        self.elem = np.array(elem, dtype=np.intp)
        self.a, self.b = np.array(a), np.array(b)
        n_days = int(math.ceil(days)) + 2
        weekday = rng.uniform(0.92, 0.99, size=(n_elements, n_days))
        weekend = rng.uniform(0.97, 1.0, size=(n_elements, n_days))
        day0 = math.floor((start + UTC_OFFSET) / _DAY)
        is_weekend = np.array([(day0 + d + 3) % 7 >= 5 for d in range(n_days)])  # 1970-01-01: Thu
        self.day0 = day0
        self.weekend = is_weekend
        self.day_factor = np.where(is_weekend[None, :], weekend, weekday)
        # Smooth noise knots (linear between them) for the whole run: (knots, series).
        self.knots = {
            B: rng.uniform(-1, 1, size=(int(days * _DAY / B) + 3, len(meta))) for B in (900.0, 1800.0, 7200.0)
        }
        # CPU spikes: (element, start, rise, hold, fall, level); CRC bursts: (poll, series, errors/s).
        total = days * _DAY
        spikes = []
        for e in range(n_elements):
            for t0 in rng.uniform(start, start + total, size=rng.poisson(4.0 * days)):
                rise = 60.0 * math.exp(rng.uniform(0.0, math.log(10.0)))
                spikes.append((e, t0, rise, rng.uniform(60, 480), rng.uniform(60, 300), rng.uniform(0.70, 0.85)))
        self.spikes = spikes
        bursts: list[tuple[int, int, float]] = []
        for s in np.flatnonzero(self.unit == _U_ERR).tolist():
            for k0 in rng.integers(0, self.steps, size=rng.poisson(self.a[s] * days)).tolist():
                polls = int(rng.integers(1, 4))
                errors = int(round(math.exp(rng.uniform(math.log(2.0), math.log(200.0)))))
                for j in range(polls):
                    share = errors // polls + (1 if j < errors % polls else 0)
                    bursts.append((k0 + j, s, share / poll))
        self.bursts = np.array(bursts, dtype=np.float64).reshape(-1, 3)
        self._chunk_at = -1
        self._values = np.zeros((0, len(meta)))

    @property
    def n_elements(self) -> int:
        """Number of hot elements."""
        return len(self.elements)

    def time(self, k: int) -> float:
        """Time of poll ``k``."""
        return self.start + k * self.poll

    def values(self, k: int) -> NDArray[np.float64]:
        """Every series' value at poll ``k`` (NaN: no rate yet)."""
        c = k // self.chunk
        if c != self._chunk_at:
            self._values = self._generate(c * self.chunk, min((c + 1) * self.chunk, self.steps))
            self._chunk_at = c
        return self._values[k - c * self.chunk]

    def samples(self, k: int) -> list[Sample]:
        """The samples of poll ``k``, as the collectors would produce them."""
        t = self.time(k)
        return [
            Sample(e, m, labels, v, t, kind)
            for (e, m, labels, kind), v in zip(self.meta, self.values(k).tolist(), strict=True)
            if v == v  # no NaN: a rate needs two polls
        ]

    def _smooth(self, bucket: float, T: NDArray[np.float64], cols: NDArray[np.intp]) -> NDArray[np.float64]:
        x = (T - self.start) / bucket
        j = np.floor(x).astype(np.intp)
        f = (x - j)[:, None]
        K = self.knots[bucket][:, cols]
        return K[j] + (K[j + 1] - K[j]) * f

    def _generate(self, k0: int, k1: int) -> NDArray[np.float64]:
        """Values of polls ``[k0, k1)``, shape (k1 - k0, n_series)."""
        T = self.start + np.arange(k0, k1) * self.poll
        m, n = len(T), len(self.meta)
        rng = np.random.default_rng([self.seed, 0x408, k0])
        out = np.full((m, n), np.nan)
        day = (np.floor((T + UTC_OFFSET) / _DAY) - self.day0).astype(np.intp)

        def curve(t: NDArray[np.float64]) -> NDArray[np.float64]:
            hours = ((t + UTC_OFFSET) % _DAY) / _HOUR
            return diurnal_array(t) + np.where(self.weekend[day], np.interp(hours, np.arange(25.0), _WEEKEND_LIFT), 0.0)

        mid, now = curve(T - self.poll / 2)[:, None], curve(T)[:, None]
        for u in range(6):
            cols = np.flatnonzero(self.unit == u)
            a, b = self.a[cols], self.b[cols]
            factor = self.day_factor[self.elem[cols][None, :], day[:, None]]
            fast = rng.uniform(-1, 1, size=(m, len(cols)))
            if u == _U_UTIL:  # mean of two 30-s noise buckets over the poll
                fast = (fast + rng.uniform(-1, 1, size=(m, len(cols)))) / 2
                v = a * factor * mid * (1 + 0.015 * self._smooth(900.0, T, cols) + 0.03 * fast)
            elif u == _U_ERR:
                v = np.zeros((m, len(cols)))
            elif u == _U_DISC:
                v = rng.poisson(a * mid**8) / self.poll
            elif u == _U_CPU:
                normal = a + b * now + 0.03 * self._smooth(900.0, T, cols) + 0.015 * fast
                g, level = np.zeros_like(normal), np.zeros_like(normal)
                where = {int(e): i for i, e in enumerate(self.elem[cols].tolist())}
                for e, t0, rise, hold, fall, lv in self.spikes:
                    if t0 >= T[-1] or t0 + rise + hold + fall <= T[0]:
                        continue
                    d = T - t0
                    shape = np.clip(np.minimum(d / rise, (rise + hold + fall - d) / fall), 0.0, 1.0)
                    i = where[e]
                    better = shape > g[:, i]
                    g[:, i] = np.where(better, shape, g[:, i])
                    level[:, i] = np.where(better, lv, level[:, i])
                v = np.round(np.clip(normal * (1 - g) + level * g, 0.0, 1.0) * 100) / 100
            elif u == _U_OPT:
                hours = ((T + UTC_OFFSET) % _DAY) / _HOUR
                temp = np.cos(2 * math.pi * (hours - 15.0) / 24.0)[:, None] * b
                v = np.round((a + 0.35 * self._smooth(7200.0, T, cols) + temp + 0.06 * fast) * 10) / 10
            else:  # DSL SNR margin: crosstalk dips it with the neighbourhood's traffic
                v = a - b * factor * now + 0.15 * self._smooth(1800.0, T, cols) + 0.08 * fast
                v = np.round(v * 10) / 10
            out[:, cols] = v
        if len(self.bursts):
            kk = self.bursts[:, 0].astype(np.intp)
            sel = (kk >= k0) & (kk < k1)
            np.add.at(out, (kk[sel] - k0, self.bursts[sel, 1].astype(np.intp)), self.bursts[sel, 2])
        if k0 == 0:
            out[0, self.unit <= _U_DISC] = np.nan  # rates need a previous poll
        return out


# -- comparators: static rules on the same samples ------------------------------------------------


@dataclass
class RuleFamily:
    """Threshold rules over every series, through the production state machine."""

    name: str
    level: Callable[[str], float]
    for_: float
    keep_firing_for: float
    tracker: ConditionTracker[int] = field(init=False)
    fired: list[tuple[float, int]] = field(default_factory=list)  # (time, column)

    def __post_init__(self) -> None:
        self.tracker = ConditionTracker(self.for_, self.keep_firing_for, damping=FlapDamping())

    def step(self, cols: np.ndarray, active: np.ndarray, now: float) -> None:
        """Feed one poll: ``active`` per column of ``cols``."""
        tracker = self.tracker
        hot = set(cols[active].tolist())
        for col in sorted(hot | set(tracker)):
            if tracker.update(col, col in hot, now) is EventState.FIRING:
                self.fired.append((now, col))
        tracker.pop_dropped()


class Series:
    """Column index of every series the comparators and the crossing finder look at."""

    def __init__(self) -> None:
        self.index: dict[tuple[str, str, tuple[tuple[str, str], ...]], int] = {}
        self.keys: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
        self.level: list[float] = []
        self.warn: list[float] = []
        self.sign: list[float] = []

    def register(self, keys: Sequence[tuple[str, str, tuple[tuple[str, str], ...]]]) -> np.ndarray:
        """Columns of series with a service level, added up front (the hot population's)."""
        cols = []
        for key in keys:
            col = self.index.get(key)
            if col is None:
                col = self.index[key] = len(self.keys)
                self.keys.append(key)
                self.level.append(SERVICE[key[1]][0])
                self.warn.append(warn_level(key[1]))
                self.sign.append(float(SERVICE[key[1]][1]))
            cols.append(col)
        return np.array(cols, dtype=np.intp)

    def columns(self, samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
        """Columns and values of the samples with a service level (ifOperStatus: down = 2)."""
        cols, values = [], []
        for s in samples:
            metric = s.metric
            if metric not in SERVICE and metric != "ifOperStatus":
                continue
            key = (s.element, metric, s.labels)
            col = self.index.get(key)
            if col is None:
                col = self.index[key] = len(self.keys)
                self.keys.append(key)
                if metric == "ifOperStatus":
                    self.level.append(2.0)
                    self.warn.append(math.inf)  # no 80 % rule for a status
                    self.sign.append(1.0)
                else:
                    self.level.append(SERVICE[metric][0])
                    self.warn.append(warn_level(metric))
                    self.sign.append(float(SERVICE[metric][1]))
            cols.append(col)
            values.append(s.value)
        return np.array(cols, dtype=np.intp), np.array(values)


# -- the run --------------------------------------------------------------------------------------


def _about(fault: Fault, element: str, metric: str, labels: dict[str, str]) -> bool:
    """Whether a series (or an event's labels) is the faulty series of ``fault``."""
    if element != fault.element or metric not in KIND_METRICS[fault.kind]:
        return False
    return fault.kind in ELEMENT_KINDS or labels.get("ifIndex") == str(fault.if_index)


def _median(leads: list[float]) -> float | None:
    """Median lead in minutes; a miss (-inf) counts; None when the median is a miss or empty."""
    if not leads:
        return None
    m = statistics.median_low(leads) if len(leads) % 2 else statistics.median(leads)
    return None if math.isinf(m) or math.isnan(m) else round(m, 1)


def _poisson_upper(k: int, exposure: float) -> float:
    """95 % upper bound of a Poisson rate with ``k`` events in ``exposure`` units."""
    try:
        from scipy.stats import chi2

        return float(chi2.ppf(0.975, 2 * (k + 1)) / 2 / exposure)
    except ImportError:  # rough: k + 2 sqrt(k) + 3
        return (k + 2 * math.sqrt(k) + 3) / exposure


def run(cfg: Config, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run the whole scenario set; the figures as a JSON-able dict."""
    began = time.perf_counter()
    site, _ = demo_site()
    devices = lab_devices(site)
    normal_from = T0 + cfg.warmup_days * _DAY
    faults_from = normal_from + cfg.normal_days * _DAY
    faults = build_faults(devices, faults_from, cfg)
    end = max(f.end for f in faults) + _FLAP_TAIL
    model = TrafficModel(devices, faults, boot=T0 - cfg.poll, seed=cfg.seed)
    source = SampleSource(model, devices)
    hot = HotPopulation(cfg.hot_elements, T0, (faults_from - T0) / _DAY, cfg.poll, cfg.seed)
    # As vigil run: the topology's parents (element -> parent element or area).
    parents = {el.name: el.parent or el.area for el in site.elements if el.parent or el.area}
    parents.update(hot.parents)
    dcfg = DetectorsConfig()
    engine = DetectionEngine.from_config(dcfg, parents=parents)
    # InterfaceDown from polled ifOperStatus, as vigil run (ifType as the poller's lookups have it)
    if_types = {(name, str(p.if_index)): p.if_type for name, d in devices.items() for p in d.ports}
    links = TrapRules(keep_firing_for=dcfg.keep_firing_for, if_types=lambda e, i: if_types.get((e, i)))
    series = Series()
    hot_keys = [(e, m, labels) for e, m, labels, _kind in hot.meta]
    hot_engine_cols = engine.columns_of(hot_keys)
    hot_cols = series.register(hot_keys)
    families = [
        RuleFamily("static", lambda m: SERVICE[m][0], dcfg.for_, dcfg.keep_firing_for),
        RuleFamily("warn80", warn_level, dcfg.for_, dcfg.keep_firing_for),
    ]
    fired: list[Event] = []
    link_ends: list[Event] = []  # InterfaceDown resolved: when a port's alert stops muting the rest
    history: dict[int, list[tuple[float, float]]] = {}  # faulty column -> (t, value), fault phase
    watched: list[bool] = []  # per column: some fault is about it
    steps = int(math.ceil((end - T0) / cfg.poll))
    engine_s = 0.0
    for k in range(steps + 1):
        t = T0 + k * cfg.poll
        samples = source.poll(t)
        cols, x = series.columns(samples)
        hot_x = hot.values(k) if k < hot.steps else None
        t_engine = time.perf_counter()
        if hot_x is None:
            events = engine.update(samples)
        else:  # one step of lab and hot series together, the hot ones on the array path
            lab = [s for s in samples if s.metric in SERVICE]
            events = engine.update_columns(
                np.concatenate([engine.columns_of([s.series_key for s in lab]), hot_engine_cols]),
                np.concatenate([np.fromiter((s.value for s in lab), float, len(lab)), hot_x]),
                np.full(len(lab) + len(hot_x), t),
            )
        events += links.observe(samples)
        engine_s += time.perf_counter() - t_engine
        fired += [e for e in events if e.state is EventState.FIRING]
        link_ends += [e for e in events if e.state is EventState.RESOLVED and e.name == INTERFACE_DOWN]
        if hot_x is not None:
            ok = ~np.isnan(hot_x)
            cols, x = np.concatenate([cols, hot_cols[ok]]), np.concatenate([x, hot_x[ok]])
        level = np.array(series.level)[cols]
        sign = np.array(series.sign)[cols]
        beyond = sign * (x - level) >= 0
        families[0].step(cols, beyond, t)
        families[1].step(cols, sign * (x - np.array(series.warn)[cols]) >= 0, t)
        while len(watched) < len(series.keys):  # new series: is one of the faults about it?
            key = series.keys[len(watched)]
            watched.append(any(_about(f, key[0], key[1], dict(key[2])) for f in faults))
        if t >= faults_from:
            mask = np.array(watched)[cols]
            for c, v in zip(cols[mask].tolist(), x[mask].tolist(), strict=True):
                history.setdefault(c, []).append((t, v))
        if k % 1440 == 0:
            day = (t - T0) / _DAY
            progress(f"day {day:5.2f}: {engine.series_count} series, {len(fired)} events so far")
    wall = time.perf_counter() - began
    hot_names = set(hot.elements) | set(hot.parents.values())
    result = _score(cfg, faults, fired, families, series, history, normal_from, faults_from,
                    len(devices) + hot.n_elements, wall, engine_s, steps, hot_names, link_ends)  # fmt: skip
    result["lab_elements"], result["hot_elements"] = len(devices), hot.n_elements
    result["normal_series"] = len(series.keys)
    return result


def _score(
    cfg: Config,
    faults: list[Fault],
    fired: list[Event],
    families: list[RuleFamily],
    series: Series,
    history: dict[int, list[tuple[float, float]]],
    normal_from: float,
    faults_from: float,
    n_elements: int,
    wall: float,
    engine_s: float,
    steps: int,
    hot_names: set[str] = frozenset(),  # type: ignore[assignment]
    link_ends: Sequence[Event] = (),
) -> dict[str, Any]:
    """Leads, detection rates, events per episode and false events of vigil and the comparators."""

    def at(e: Event) -> float:
        return e.fired_at if e.fired_at is not None else e.active_at

    element_days = n_elements * cfg.normal_days
    normal = [e for e in fired if normal_from <= at(e) < faults_from]
    warmup = [e for e in fired if at(e) < normal_from]

    def per_1000(n: int) -> float | None:
        return round(1000 * n / element_days, 2) if element_days > 0 else None

    result: dict[str, Any] = {
        "element_days": element_days,
        "false_events": len(normal),
        "false_events_by_alert": dict(Counter(e.name for e in normal)),
        "false_events_by_severity": dict(Counter(str(e.severity) for e in normal)),
        "false_events_hot_population": sum(1 for e in normal if e.element in hot_names),
        "false_events_per_1000_element_days": per_1000(len(normal)),
        "false_events_per_1000_element_days_upper95": (
            round(1000 * _poisson_upper(len(normal), element_days), 1) if element_days > 0 else None
        ),
        "warmup_events": len(warmup),
        "false_event_list": [
            {"at_day": round((at(e) - normal_from) / _DAY, 3), "name": e.name, "element": e.element,
             "labels": dict(e.labels), "value": e.value, "eta": e.eta, "summary": e.summary}
            for e in normal
        ],  # fmt: skip
    }
    for fam in families:
        mine = [c for t, c in fam.fired if normal_from <= t < faults_from and series.keys[c][1] != "ifOperStatus"]
        result[f"{fam.name}_false_events_per_1000_element_days"] = per_1000(len(mine))
        result[f"{fam.name}_false_events_by_metric"] = dict(Counter(series.keys[c][1] for c in mine))

    kinds: dict[str, Any] = {}
    pooled: list[float] = []
    for kind in KINDS:
        mine = [f for f in faults if f.kind is kind]
        rows: list[dict[str, Any]] = []
        for f in mine:
            cols = [c for c in history if _about(f, *series.keys[c][:2], dict(series.keys[c][2]))]
            points = sorted(p for c in cols for p in history[c] if f.start <= p[0] < f.end)
            row: dict[str, Any] = {"element": f.element, "ifIndex": f.if_index, "start": f.start}
            if kind is FaultKind.FLAPPING:
                window = (f.start, f.end + _FLAP_TAIL)
                about_port = [
                    e for e in fired
                    if e.element == f.element and window[0] <= at(e) < window[1]
                    and e.label("ifIndex") == str(f.if_index)
                ]  # fmt: skip
                on_element = [e for e in fired if e.element == f.element and window[0] <= at(e) < window[1]]
                row["vigil_events"] = len(about_port)
                # what the NOC is paged for: the shipped inhibit rule mutes the port's other
                # alerts while its InterfaceDown fires
                spans = [(at(d), next((r.resolved_at for r in link_ends if r.fingerprint == d.fingerprint
                                       and r.resolved_at is not None and r.resolved_at >= at(d)), math.inf))
                         for d in about_port if d.name == INTERFACE_DOWN]  # fmt: skip
                row["vigil_notified"] = sum(
                    1 for e in about_port
                    if e.name == INTERFACE_DOWN or not any(a <= at(e) < b for a, b in spans)
                )
                row["vigil_events_element"] = len(on_element)
                row["vigil_alerts"] = sorted({e.name for e in about_port})
                for fam in families[:1]:
                    row[f"{fam.name}_events"] = sum(
                        1 for t, c in fam.fired if window[0] <= t < window[1]
                        and _about(f, *series.keys[c][:2], dict(series.keys[c][2]))
                    )  # fmt: skip
                rows.append(row)
                continue
            level, sign = SERVICE[KIND_METRICS[kind][0]]
            crossing = next((t for t, v in points if sign * (v - level) >= 0), None)
            row["crossing"] = crossing
            if crossing is None:
                rows.append(row)
                continue
            mine_events = [
                e for e in fired
                if f.start <= at(e) < f.end and _about(f, e.element, e.series, dict(e.labels))
            ]  # fmt: skip
            first = min(mine_events, key=at, default=None)
            row["vigil_lead_min"] = None if first is None else round((crossing - at(first)) / 60, 1)
            row["vigil_alert"] = None if first is None else first.name
            row["vigil_detector"] = None if first is None else first.detector
            for fam in families:
                times = [
                    t for t, c in fam.fired
                    if f.start <= t < f.end and _about(f, *series.keys[c][:2], dict(series.keys[c][2]))
                ]  # fmt: skip
                row[f"{fam.name}_lead_min"] = round((crossing - min(times)) / 60, 1) if times else None
            rows.append(row)
        kinds[str(kind)] = _summary(kind, rows)
        if kind in GRADUAL:
            pooled += [r["vigil_lead_min"] if r.get("vigil_lead_min") is not None else -math.inf
                       for r in rows if r.get("crossing") is not None]  # fmt: skip
    result["median_lead_minutes_gradual"] = _median(pooled)
    for fam in families:
        leads = [
            kinds[str(k)][f"{fam.name}_leads"] for k in GRADUAL
        ]
        flat = [x if x is not None else -math.inf for ls in leads for x in ls]
        result[f"{fam.name}_median_lead_minutes_gradual"] = _median(flat)
    result["kinds"] = kinds
    lead = result["median_lead_minutes_gradual"]
    false_rate = result["false_events_per_1000_element_days"]
    result["targets_met"] = bool(lead is not None and lead >= 10 and false_rate is not None and false_rate <= 1)
    result["simulated_days"] = round(steps * cfg.poll / _DAY, 2)
    result["wall_s"] = round(wall, 1)
    result["engine_s"] = round(engine_s, 1)
    return result


def _summary(kind: FaultKind, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-kind figures from the per-instance rows."""
    out: dict[str, Any] = {"instances": len(rows)}
    if kind is FaultKind.FLAPPING:
        events = [r["vigil_events"] for r in rows]
        out["vigil_events_per_episode"] = events
        out["vigil_events_per_episode_median"] = statistics.median(events) if events else None
        out["vigil_element_events_per_episode"] = [r["vigil_events_element"] for r in rows]
        out["vigil_notified_per_episode"] = [r["vigil_notified"] for r in rows]
        out["static_events_per_episode"] = [r["static_events"] for r in rows]
        out["detection_rate"] = round(sum(1 for e in events if e) / len(rows), 2) if rows else None
        out["rows"] = rows
        return out
    crossed = [r for r in rows if r.get("crossing") is not None]
    out["crossed"] = len(crossed)
    for who in ("vigil", "static", "warn80"):
        leads = [r.get(f"{who}_lead_min") for r in crossed]
        out[f"{who}_leads"] = leads
        hits = [x for x in leads if x is not None]
        out[f"{who}_detection_rate"] = round(len(hits) / len(crossed), 2) if crossed else None
        out[f"{who}_median_lead_minutes"] = _median([x if x is not None else -math.inf for x in leads])
    out["vigil_first_alerts"] = dict(Counter(r.get("vigil_alert") for r in crossed if r.get("vigil_alert")))
    out["rows"] = rows
    return out


def _report(r: dict[str, Any]) -> None:
    """The human-readable table."""
    print(f"\nnormal traffic: {r['element_days']:g} element-days ({r['lab_elements']} lab + "
          f"{r['hot_elements']} hot-but-healthy elements); FIRING events per 1,000 element-days:")
    print(f"  vigil {r['false_events_per_1000_element_days']} ({r['false_events']} events, "
          f"{r['false_events_hot_population']} on the hot population, 95% upper bound "
          f"{r['false_events_per_1000_element_days_upper95']}; {r['false_events_by_alert']}, "
          f"{r['false_events_by_severity']})")
    print(f"  static {r['static_false_events_per_1000_element_days']} {r['static_false_events_by_metric']}")
    print(f"  warn80 {r['warn80_false_events_per_1000_element_days']} {r['warn80_false_events_by_metric']}")
    print(f"  warm-up: {r['warmup_events']} events")  # fmt: skip
    print(f"\n{'kind':<18} {'n':>2}  {'vigil lead':>10} {'det':>5}  {'static':>7} {'det':>5}  {'warn80':>7} {'det':>5}")
    for kind, k in r["kinds"].items():
        if kind == FaultKind.FLAPPING:
            print(f"{kind:<18} {k['instances']:>2}  events per episode: vigil {k['vigil_events_per_episode']} "
                  f"(element-wide {k['vigil_element_events_per_episode']}; notified after the shipped "
                  f"inhibition {k['vigil_notified_per_episode']}), "
                  f"static port-down rule {k['static_events_per_episode']}")  # fmt: skip
            continue

        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:g}"

        print(f"{kind:<18} {k['instances']:>2}  {fmt(k['vigil_median_lead_minutes']):>10} "
              f"{fmt(k['vigil_detection_rate']):>5}  {fmt(k['static_median_lead_minutes']):>7} "
              f"{fmt(k['static_detection_rate']):>5}  {fmt(k['warn80_median_lead_minutes']):>7} "
              f"{fmt(k['warn80_detection_rate']):>5}   first alerts {k['vigil_first_alerts']}")  # fmt: skip
    print(f"\nmedian lead on the gradual kinds: vigil {r['median_lead_minutes_gradual']} min, "
          f"static {r['static_median_lead_minutes_gradual']}, warn80 {r['warn80_median_lead_minutes_gradual']}; "
          f"targets (>= 10 min, <= 1 false event / 1,000 element-days) met: {r['targets_met']}")  # fmt: skip
    print(f"{r['simulated_days']} simulated days in {r['wall_s']} s ({r['engine_s']} s in the engine)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table and, last, one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warmup-days", type=float, default=1.0)
    parser.add_argument("--normal-days", type=float, default=7.0)
    parser.add_argument("--instances", type=int, default=4, help="faults of each kind")
    parser.add_argument("--poll", type=float, default=60.0, help="poll interval, simulated seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hot-elements", type=int, default=144, help="hot-but-healthy elements")
    parser.add_argument("--quick", action="store_true",
                        help="48 hot elements, 2 normal days, 2 faults per kind (a rough check)")
    parser.add_argument("--rows", action="store_true", help="print every fault instance")
    parser.add_argument("--events", action="store_true", help="print every false event")
    args = parser.parse_args(argv)
    if args.quick:
        args.normal_days, args.instances, args.hot_elements = 2.0, 2, 48
    cfg = Config(args.warmup_days, args.normal_days, args.instances, args.poll, args.seed,
                 hot_elements=args.hot_elements)  # fmt: skip
    result = run(cfg, progress=lambda line: print(line, file=sys.stderr, flush=True))
    _report(result)
    if args.events:
        for e in result["false_event_list"]:
            print("false", json.dumps(e))
    if args.rows:
        for kind, k in result["kinds"].items():
            for row in k["rows"]:
                print(kind, json.dumps(row))
    compact = {k: v for k, v in result.items() if k not in ("kinds", "false_event_list")}
    compact["kinds"] = {kind: {k: v for k, v in fig.items() if k != "rows"} for kind, fig in result["kinds"].items()}
    print(json.dumps(compact))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
