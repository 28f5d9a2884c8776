"""Deterministic interface counters for the lab agents, as exact integrals of a rate model.

The octet rate of a port is ``peak x diurnal(t) + noise``: ``diurnal`` is a piecewise-linear
daily curve in Guangzhou local time (low at 04:00, peak at 21:00) whose integral is closed form;
the noise is a seeded piecewise-constant rate per ``NOISE_BUCKET`` seconds, bounded so the rate
never goes negative, whose running sum is kept per series with sparse checkpoints (requests come
with increasing ``t``; repeats and the odd step back are cheap). Faults replace or add to the
rates on their interval. Counters count from ``boot`` (the agent's start), so they are monotonic
and wrap like real ones: Counter64 at 2**64, Counter32 at 2**32.

A utilisation creep blends the rate from normal into ``peak x speed`` with a linear weight
``w``; its octets stay closed form by parts (``int n (1 - w) = [N (1 - w)] + int N w'``), which
needs the double integral of the curve (:func:`diurnal_integral2`) and of the noise (kept by the
same cursor). A flapping port carries nothing while down and takes a burst of CRC errors at
every re-link.

Gauges (the element's CPU, an OLT optic's RX/TX power, a DSL line's SNR margin and attenuation)
are instantaneous values: a per-series level, a diurnal term, and smooth seeded value noise (a
linear interpolation between seeded knots, O(1) at any ``t``); faults shift them by
``Fault.progress``. Normal ranges: CPU about 5-50 % (peak at 21:00), optic RX -18..-22 dBm with
+-0.4 dB of slow drift, DSL SNR margin 8-14 dB less up to 0.8 dB at the busy hour.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from config.models import SiteConfig
from vigil.lab.device import Device, Port, PortKind, dsl_lines, lab_devices, optic_ports
from vigil.lab.scenario import ELEMENT_KINDS, OCTET_KINDS, Fault, FaultKind

__all__ = [
    "CPU_DEVICE_INDEX",
    "NOISE_BUCKET",
    "UTC_OFFSET",
    "DslReading",
    "OpticReading",
    "PortCounters",
    "TrafficModel",
    "diurnal",
    "diurnal_array",
    "diurnal_integral",
    "diurnal_integral2",
]

UTC_OFFSET = 8 * 3600  # Guangzhou local time (UTC+8), no DST
NOISE_BUCKET = 30.0  # seconds of constant noise rate
NOISE = 0.12  # noise amplitude, as a fraction of the smooth rate
_CHECKPOINT = 256  # buckets between saved running sums of the noise
_DAY, _HOUR = 86400.0, 3600.0
_M64, _M32 = (1 << 64) - 1, (1 << 32) - 1
_RIPPLE, _RIPPLE_PERIOD = 0.008, 97.0  # wobble of a saturated link, fraction of speed

# Fraction of the daily peak at each local hour 0..24 (residential broadband).
# fmt: off
_CURVE = (0.55, 0.40, 0.28, 0.20, 0.16, 0.17, 0.22, 0.32, 0.42, 0.48, 0.52, 0.55, 0.62, 0.60,
          0.56, 0.56, 0.58, 0.62, 0.70, 0.82, 0.93, 1.00, 0.95, 0.78, 0.55)
# fmt: on
_PREFIX = [0.0]
_PREFIX2 = [0.0]  # integral of the within-day integral, hour by hour
for _h in range(24):
    _v0, _dv = _CURVE[_h], _CURVE[_h + 1] - _CURVE[_h]
    _PREFIX2.append(_PREFIX2[-1] + _PREFIX[-1] * _HOUR + _v0 * _HOUR**2 / 2 + _dv * _HOUR**2 / 6)
    _PREFIX.append(_PREFIX[-1] + (_CURVE[_h] + _CURVE[_h + 1]) / 2 * _HOUR)
_DAY_INTEGRAL = _PREFIX[24]
_DAY_INTEGRAL2 = _PREFIX2[24]
CPU_DEVICE_INDEX = 768  # hrDeviceIndex of the one processor (Net-SNMP numbers CPUs from 768)

# (peak utilisation range of the dominant direction, other direction / dominant, in dominant?)
_PROFILES: dict[PortKind, tuple[float, float, float, bool]] = {
    PortKind.BACKBONE: (0.35, 0.50, 0.35, True),
    PortKind.UPLINK: (0.40, 0.60, 0.25, True),
    PortKind.DOWNLINK: (0.40, 0.60, 0.25, False),
    PortKind.ACCESS: (0.30, 0.55, 0.12, False),
    PortKind.ENTERPRISE: (0.15, 0.35, 0.80, True),
    PortKind.STANDBY: (0.0004, 0.0006, 1.0, True),
    PortKind.SPARE: (0.0, 0.0, 0.0, True),
}


def diurnal(t: float) -> float:
    """Fraction of the daily peak rate at epoch ``t`` (0.16 at 04:00, 1.0 at 21:00 local)."""
    r = (t + UTC_OFFSET) % _DAY
    h = int(r // _HOUR)
    f = r - h * _HOUR
    return _CURVE[h] + (_CURVE[h + 1] - _CURVE[h]) * f / _HOUR


def diurnal_array(t: NDArray[np.float64]) -> NDArray[np.float64]:
    """``diurnal`` of many times at once (numpy)."""
    hours = ((np.asarray(t, dtype=np.float64) + UTC_OFFSET) % _DAY) / _HOUR
    return np.interp(hours, np.arange(25.0), _CURVE)


def diurnal_integral(t: float) -> float:
    """Integral of ``diurnal`` from the (local) epoch to ``t``, in seconds."""
    x = t + UTC_OFFSET
    day = math.floor(x / _DAY)
    r = x - day * _DAY
    h = min(int(r // _HOUR), 23)
    f = r - h * _HOUR
    v0 = _CURVE[h]
    return day * _DAY_INTEGRAL + _PREFIX[h] + v0 * f + (_CURVE[h + 1] - v0) * f * f / (2 * _HOUR)


def _within_day2(r: float) -> float:
    """Integral over [0, r] (local seconds into a day) of the within-day integral."""
    h = min(int(r // _HOUR), 23)
    f = r - h * _HOUR
    v0, dv = _CURVE[h], _CURVE[h + 1] - _CURVE[h]
    return _PREFIX2[h] + _PREFIX[h] * f + v0 * f * f / 2 + dv * f**3 / (6 * _HOUR)


def diurnal_integral2(a: float, b: float) -> float:
    """Integral of ``diurnal_integral`` over ``[a, b]`` (closed form, exact to rounding)."""
    xa, xb = a + UTC_OFFSET, b + UTC_OFFSET
    day0 = math.floor(xa / _DAY)

    def rel(y: float) -> float:  # integral from day0's midnight; small numbers keep precision
        n = math.floor(y / _DAY)
        r = y - n * _DAY
        return (
            _DAY_INTEGRAL * _DAY * n * (n - 1) / 2
            + n * _DAY_INTEGRAL2
            + n * _DAY_INTEGRAL * r
            + _within_day2(r)
        )

    base = xa - day0 * _DAY
    return day0 * _DAY_INTEGRAL * (b - a) + rel(xb - day0 * _DAY) - rel(base)


def _mix(key: int, j: int) -> float:
    """A deterministic uniform value in [-1, 1) for (series ``key``, bucket ``j``)."""
    x = (key ^ (j * 0x9E3779B97F4A7C15)) & _M64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _M64
    x ^= x >> 31
    return x / 9223372036854775808.0 - 1.0


def _key(*parts: object) -> int:
    """A stable 64-bit key (``hash()`` of str is salted per process)."""
    x = 0xCBF29CE484222325
    for byte in "\x1f".join(map(str, parts)).encode():
        x = ((x ^ byte) * 0x100000001B3) & _M64
    return x


@lru_cache(maxsize=1 << 12)
def _bucket_floor(j: int) -> float:
    """The curve's minimum over noise bucket ``j`` (shared by every series: cached)."""
    return min(diurnal(j * NOISE_BUCKET), diurnal((j + 1) * NOISE_BUCKET))


def _smooth(key: int, t: float, bucket: float) -> float:
    """Seeded value noise in [-1, 1): linear between knots ``bucket`` seconds apart."""
    x = t / bucket
    j = math.floor(x)
    a = _mix(key, j)
    return a + (_mix(key, j + 1) - a) * (x - j)


class _Noise:
    """Running integral (and its integral) of one seeded piecewise-constant noise rate."""

    __slots__ = ("key", "k0", "k", "total", "total2", "checkpoints")

    def __init__(self, key: int, boot: float) -> None:
        self.key = key
        self.k0 = math.floor(boot / NOISE_BUCKET)
        self.k = self.k0  # cursor: ``total`` is the integral over buckets [k0, k)
        self.total = 0.0
        self.total2 = 0.0  # integral of the running integral over the same buckets
        self.checkpoints: dict[int, tuple[float, float]] = {}

    def rate(self, j: int) -> float:
        """Noise rate in bucket ``j``: bounded by NOISE x the curve's minimum over the bucket."""
        return NOISE * _bucket_floor(j) * _mix(self.key, j)

    def _seek(self, t: float) -> tuple[int, float]:
        """Move the cursor to ``t``'s bucket; that bucket and the offset of ``t`` in it."""
        k = max(math.floor(t / NOISE_BUCKET), self.k0)
        if k < self.k:  # a step back: restart from the nearest checkpoint
            c = max((c for c in self.checkpoints if c <= k), default=self.k0)
            self.k = c
            self.total, self.total2 = self.checkpoints.get(c, (0.0, 0.0))
        while self.k < k:
            r = self.rate(self.k)
            self.total2 += self.total * NOISE_BUCKET + r * NOISE_BUCKET * NOISE_BUCKET / 2
            self.total += r * NOISE_BUCKET
            self.k += 1
            if (self.k - self.k0) % _CHECKPOINT == 0:
                self.checkpoints[self.k] = (self.total, self.total2)
        return k, max(t, self.k0 * NOISE_BUCKET) - k * NOISE_BUCKET

    def integral(self, t: float) -> float:
        """Integral of the noise rate from the start of bucket ``k0`` to ``t``."""
        k, f = self._seek(t)
        return self.total + self.rate(k) * f

    def integrals(self, t: float) -> tuple[float, float]:
        """``integral(t)`` and the integral of ``integral`` from the start of bucket ``k0``."""
        k, f = self._seek(t)
        r = self.rate(k)
        return self.total + r * f, self.total2 + self.total * f + r * f * f / 2


@dataclass(frozen=True, slots=True)
class PortCounters:
    """The dynamic IF-MIB values of one port at one time."""

    if_index: int
    in_octets: int  # ifHCInOctets, Counter64
    out_octets: int  # ifHCOutOctets, Counter64
    in_errors: int  # ifInErrors, Counter32
    out_errors: int  # ifOutErrors, Counter32
    in_discards: int  # ifInDiscards, Counter32
    oper_status: int  # ifOperStatus: 1 up, 2 down
    high_speed: int  # ifHighSpeed, Mbit/s


@dataclass(frozen=True, slots=True)
class OpticReading:
    """Digital diagnostics of one optic at one time."""

    if_index: int
    rx_dbm: float  # received optical power
    tx_dbm: float  # launched optical power


@dataclass(frozen=True, slots=True)
class DslReading:
    """The ATU-R side of one DSL line at one time (ADSL-LINE-MIB adslAturPhysTable)."""

    if_index: int
    snr_margin_db: float  # adslAturCurrSnrMgn
    attenuation_db: float  # adslAturCurrAtn


class _Direction:
    """Octet counter of one direction of one port, faults applied."""

    __slots__ = ("peak", "noise", "boot_value", "faults", "outages", "speed_bytes", "_fixed")

    def __init__(
        self, peak: float, noise: _Noise, boot: float, speed_bytes: float, faults: list[Fault]
    ) -> None:
        self.peak = peak  # bytes/s at diurnal() == 1
        self.noise = noise
        self.speed_bytes = speed_bytes
        self.faults = faults  # octet faults of this port, in time order, not overlapping
        self.outages = {id(f): f.outages() for f in faults}
        self._fixed: dict[float, tuple[float, float]] = {}
        self.boot_value = diurnal_integral(boot) + noise.integral(boot)

    def _normal(self, t: float) -> float:
        """Octets since boot without faults."""
        if self.peak == 0.0:
            return 0.0
        return self.peak * (diurnal_integral(t) + self.noise.integral(t) - self.boot_value)

    def _fixed_normal(self, t: float) -> float:
        """``_normal`` at a fault edge, computed once."""
        return self._fixed_both(t)[0]

    def _fixed_both(self, t: float) -> tuple[float, float]:
        """``_normal`` and the noise double integral at a fault edge, computed once."""
        value = self._fixed.get(t)
        if value is None:
            value = self._fixed[t] = self._both(t)
        return value

    def _both(self, t: float) -> tuple[float, float]:
        """``_normal(t)`` and the noise's double integral at ``t`` (for the creep)."""
        first, second = self.noise.integrals(t)
        if self.peak == 0.0:
            return 0.0, second
        return self.peak * (diurnal_integral(t) + first - self.boot_value), second

    def octets(self, t: float) -> float:
        """Octets since boot at ``t``."""
        if not self.faults:
            return self._normal(t)
        # Each fault started before t replaces the normal octets of [start, min(t, end)):
        # add its own, subtract the normal ones. Edges first, in time order, so the noise
        # cursor keeps moving forward.
        total = 0.0
        inside: Fault | None = None
        for f in self.faults:
            if t <= f.start:
                break
            if t < f.end:
                inside = f
                break
            total += self._closed(f)
        if inside is None:
            return total + self._normal(t)
        if inside.kind is FaultKind.SATURATION:
            return total + self._fixed_normal(inside.start) + self._sat(inside, inside.start, t)
        if inside.kind is FaultKind.FLAPPING:
            lost = 0.0
            for a, b in self.outages[id(inside)]:
                if a >= t:
                    break
                if b > t:  # down now: the counter has stood still since ``a``
                    return total + self._fixed_normal(a) - lost
                lost += self._fixed_normal(b) - self._fixed_normal(a)
            return total + self._normal(t) - lost
        return total + self._creep(inside, t)

    def _closed(self, f: Fault) -> float:
        """Octets a finished fault added (negative: removed) against the normal traffic."""
        if f.kind is FaultKind.FLAPPING:
            return -sum(self._fixed_normal(b) - self._fixed_normal(a) for a, b in self.outages[id(f)])
        if f.kind is FaultKind.SATURATION:
            n0 = self._fixed_normal(f.start)
            return n0 + self._sat(f, f.start, f.end) - self._fixed_normal(f.end)
        return self._creep(f, f.end) - self._fixed_normal(f.end)

    def _creep(self, f: Fault, t: float) -> float:
        """Octets since boot at ``t`` (in ``(start, end]``) of a UTILIZATION_CREEP fault."""
        n_s, nn_s = self._fixed_both(f.start)  # edges first: the noise cursor moves forward
        cap = f.peak * self.speed_bytes
        u = min(t, f.start + f.ramp)
        octets = n_s
        if u > f.start:  # the blend: int n (1 - w) = N(u)(1 - w(u)) - N(s) + (int_s^u N) / ramp
            n_u, nn_u = self._fixed_both(u) if u < t or t == f.end else self._both(u)
            w = (u - f.start) / f.ramp
            integral_n = self.peak * (
                diurnal_integral2(f.start, u) + (nn_u - nn_s) - self.boot_value * (u - f.start)
            )
            octets += n_u * (1 - w) - n_s + integral_n / f.ramp + cap * (u - f.start) * w / 2
        return octets + cap * (t - u)

    def _sat(self, f: Fault, a: float, b: float) -> float:
        """Octets of a saturated link between ``a`` and ``b``."""
        ripple = min(_RIPPLE, 1.0 - f.peak)
        w = 2 * math.pi / _RIPPLE_PERIOD
        wobble = ripple / w * (math.cos(w * a) - math.cos(w * b))
        return self.speed_bytes * (f.peak * (b - a) + wobble)

class _PortModel:
    """Everything needed to compute one port's counters."""

    __slots__ = ("port", "inbound", "outbound", "errors", "crc", "flaps", "relinks", "boot")

    def __init__(
        self, element: str, port: Port, faults: list[Fault], boot: float, seed: int
    ) -> None:
        self.port = port
        self.boot = boot
        lo, hi, other, in_dominant = _PROFILES[port.kind]
        key = _key(seed, element, port.if_index)
        u = (_mix(key, 1) + 1) / 2
        speed_bytes = port.speed_bps / 8
        dominant = speed_bytes * (lo + (hi - lo) * u)
        peak_in, peak_out = (
            (dominant, dominant * other) if in_dominant else (dominant * other, dominant)
        )
        octet_faults = sorted((f for f in faults if f.kind in OCTET_KINDS), key=lambda f: f.start)
        for a, b in zip(octet_faults, octet_faults[1:], strict=False):
            if b.start < a.end:
                raise ValueError(
                    f"{element} ifIndex {port.if_index}: {a.kind} and {b.kind} overlap in time"
                )
        self.inbound = _Direction(
            peak_in,
            _Noise(_key(seed, element, port.if_index, "in"), boot),
            boot,
            speed_bytes,
            octet_faults,
        )
        self.outbound = _Direction(
            peak_out,
            _Noise(_key(seed, element, port.if_index, "out"), boot),
            boot,
            speed_bytes,
            octet_faults,
        )
        self.crc = [f for f in faults if f.kind is FaultKind.CRC_ERRORS]
        # FLAPPING: the [down, up) intervals, and (up time, CRC errors of the re-link) pairs
        self.flaps = sorted(o for f in faults for o in f.outages())
        self.relinks = sorted(
            (b, f.peak) for f in faults for _, b in f.outages() if f.kind is FaultKind.FLAPPING
        )
        # Background errors: (period, phase) of single events; copper lines are noisier.
        if port.kind is PortKind.SPARE:
            self.errors: tuple[tuple[float, float], ...] = ((math.inf, 0.0),) * 3
        else:
            copper = port.if_type == 97
            in_period = (
                (600 + 3000 * (_mix(key, 2) + 1) / 2)
                if copper
                else (4 * _HOUR + 20 * _HOUR * (_mix(key, 2) + 1) / 2)
            )
            self.errors = tuple(
                (period, period * (_mix(key, 10 + i) + 1) / 2)
                for i, period in enumerate(
                    (
                        in_period,
                        2 * _DAY + 5 * _DAY * (_mix(key, 3) + 1) / 2,
                        1800 + 9000 * (_mix(key, 4) + 1) / 2,
                    )
                )
            )

    def _events(self, i: int, t: float) -> int:
        period, phase = self.errors[i]
        if period == math.inf:
            return 0
        return math.floor((t - self.boot + phase) / period) - math.floor(phase / period)

    def up(self, t: float) -> bool:
        """ifOperStatus is up at ``t`` (spare ports never are; a flapping one is not while down)."""
        if not self.port.up:
            return False
        i = bisect_right(self.flaps, (t, math.inf)) - 1
        return i < 0 or not (self.flaps[i][0] <= t < self.flaps[i][1])

    def counters(self, t: float) -> PortCounters:
        """The port's counters at ``t`` (>= boot)."""
        in_errors = self._events(0, t)
        for f in self.crc:
            if t > f.start:
                in_errors += math.floor(_ramp_integral(f, min(t, f.end) - f.start))
        if self.relinks:
            in_errors += math.floor(sum(n for at, n in self.relinks if self.boot < at <= t))
        port = self.port
        return PortCounters(
            port.if_index,
            int(self.inbound.octets(t)) & _M64,
            int(self.outbound.octets(t)) & _M64,
            in_errors & _M32,
            self._events(1, t) & _M32,
            self._events(2, t) & _M32,
            1 if self.up(t) else 2,
            port.speed_mbps,
        )


def _ramp_integral(f: Fault, d: float) -> float:
    """Errors of a CRC fault ``d`` seconds after its start (ramp ``(d / ramp) ** curve``, flat)."""
    if f.ramp <= 0:
        return f.peak * d
    c = f.curve
    if d <= f.ramp:
        return f.peak * f.ramp / (c + 1) * (d / f.ramp) ** (c + 1)
    return f.peak * (f.ramp / (c + 1) + d - f.ramp)


def _shift(faults: list[Fault], t: float) -> float:
    """Sum of ``peak x progress`` of the faults in effect at ``t``."""
    return sum(f.peak * f.progress(t) for f in faults if f.start <= t < f.end)


class _OpticModel:
    """RX/TX power of one optic: a level, slow drift, fast jitter, decays."""

    __slots__ = ("if_index", "rx", "tx", "key", "decays")

    def __init__(self, element: str, port: Port, faults: list[Fault], seed: int) -> None:
        self.if_index = port.if_index
        self.key = _key(seed, element, port.if_index, "optic")
        u, v = (_mix(self.key, 1) + 1) / 2, (_mix(self.key, 2) + 1) / 2
        self.rx = -18.4 - 3.2 * u  # level; drift and jitter keep it within -18..-22 dBm
        # OLT PON (class B+/C+) lasers launch +2.5..+4.5 dBm; 10G uplink optics -1..-3 dBm.
        self.tx = 2.5 + 2.0 * v if port.kind is PortKind.ACCESS else -1.0 - 2.0 * v
        self.decays = [f for f in faults if f.kind is FaultKind.OPTICAL_DECAY]

    def reading(self, t: float) -> OpticReading:
        """The optic's diagnostics at ``t``."""
        k = self.key
        rx = self.rx + 0.3 * _smooth(k ^ 1, t, 7200.0) + 0.06 * _smooth(k ^ 2, t, 60.0)
        tx = self.tx + 0.05 * _smooth(k ^ 3, t, 3600.0)
        if self.decays:
            rx -= _shift(self.decays, t)
        return OpticReading(self.if_index, rx, tx)


class _DslModel:
    """SNR margin and attenuation of one DSL line: crosstalk dips the margin at the busy hour."""

    __slots__ = ("if_index", "snr", "atn", "key", "erosions")

    def __init__(self, element: str, port: Port, faults: list[Fault], seed: int) -> None:
        self.if_index = port.if_index
        self.key = _key(seed, element, port.if_index, "dsl")
        u, v = (_mix(self.key, 1) + 1) / 2, (_mix(self.key, 2) + 1) / 2
        self.snr = 8.5 + 5.5 * u  # at 04:00; 0.8 dB lower at 21:00
        self.atn = 12.0 + 28.0 * v  # loop length: 12-40 dB at 17.6 MHz-ish
        self.erosions = [f for f in faults if f.kind is FaultKind.SNR_EROSION]

    def reading(self, t: float) -> DslReading:
        """The line's margin and attenuation at ``t``."""
        k = self.key
        snr = (
            self.snr
            - 0.8 * diurnal(t)
            + 0.3 * _smooth(k ^ 1, t, 1800.0)
            + 0.15 * _smooth(k ^ 2, t, 60.0)
        )
        atn = self.atn + 0.05 * _smooth(k ^ 3, t, 60.0)
        if self.erosions:
            lost = _shift(self.erosions, t)
            snr, atn = snr - lost, atn + 0.2 * lost
        return DslReading(self.if_index, snr, atn)


class _CpuModel:
    """One element's processor load (0..1): a floor, the diurnal load, noise, runaways."""

    __slots__ = ("floor", "swing", "key", "runaways")

    def __init__(self, element: str, faults: list[Fault], seed: int) -> None:
        self.key = _key(seed, element, "cpu")
        u, v = (_mix(self.key, 1) + 1) / 2, (_mix(self.key, 2) + 1) / 2
        self.floor = 0.05 + 0.13 * u
        self.swing = 0.10 + 0.15 * v
        self.runaways = [f for f in faults if f.kind is FaultKind.CPU_RUNAWAY]

    def load(self, t: float) -> float:
        """Processor load at ``t``, 0..1."""
        k = self.key
        cpu = (
            self.floor
            + self.swing * diurnal(t)
            + 0.04 * _smooth(k ^ 1, t, 900.0)
            + 0.02 * _smooth(k ^ 2, t, 60.0)
        )
        for f in self.runaways:
            if f.start <= t < f.end:
                g = f.progress(t)
                cpu = cpu * (1 - g) + f.peak * g
        return min(max(cpu, 0.0), 1.0)


class TrafficModel:
    """Counters and gauges of every port, optic, line and CPU of every lab device at any time."""

    def __init__(
        self,
        devices: Mapping[str, Device],
        scenario: Iterable[Fault] = (),
        *,
        boot: float,
        seed: int = 7,
    ) -> None:
        self.boot = boot
        self.devices = dict(devices)
        faults = list(scenario)
        for f in faults:
            if f.element not in self.devices:
                raise ValueError(f"fault on unknown element {f.element!r}")
            device = self.devices[f.element]
            if f.kind in ELEMENT_KINDS:
                continue
            port = device.port(f.if_index)  # raises KeyError if absent
            if f.kind is FaultKind.OPTICAL_DECAY and port not in optic_ports(device):
                raise ValueError(f"{f.element} ifIndex {f.if_index} has no optic to decay")
            if f.kind is FaultKind.SNR_EROSION and port not in dsl_lines(device):
                raise ValueError(f"{f.element} ifIndex {f.if_index} is not a DSL line")

        def on(name: str, p: Port) -> list[Fault]:
            return [
                f
                for f in faults
                if f.element == name and f.if_index == p.if_index and f.kind not in ELEMENT_KINDS
            ]

        self._ports: dict[str, tuple[_PortModel, ...]] = {
            name: tuple(_PortModel(name, p, on(name, p), boot, seed) for p in dev.ports)
            for name, dev in self.devices.items()
        }
        self._optics = {
            name: tuple(_OpticModel(name, p, on(name, p), seed) for p in optic_ports(dev))
            for name, dev in self.devices.items()
        }
        self._dsl = {
            name: tuple(_DslModel(name, p, on(name, p), seed) for p in dsl_lines(dev))
            for name, dev in self.devices.items()
        }
        self._cpu = {
            name: _CpuModel(name, [f for f in faults if f.element == name], seed)
            for name in self.devices
        }
        self._cache: dict[str, tuple[float, tuple[PortCounters, ...]]] = {}
        self._gauge_cache: dict[tuple[str, str], tuple[float, object]] = {}

    @classmethod
    def for_site(
        cls, site: SiteConfig, scenario: Iterable[Fault] = (), *, boot: float, seed: int = 7
    ) -> TrafficModel:
        """A model of ``lab_devices(site)``."""
        return cls(lab_devices(site), scenario, boot=boot, seed=seed)

    def uptime(self, t: float) -> int:
        """sysUpTime at ``t``: centiseconds since boot, TimeTicks (wraps at 2**32)."""
        return int(max(t - self.boot, 0.0) * 100) & _M32

    def element(self, name: str, t: float) -> tuple[PortCounters, ...]:
        """Counters of every port of element ``name`` at ``t`` (cached for a repeated ``t``)."""
        hit = self._cache.get(name)
        if hit is not None and hit[0] == t:
            return hit[1]
        tc = max(t, self.boot)
        values = tuple(p.counters(tc) for p in self._ports[name])
        self._cache[name] = (t, values)
        return values

    def peak_rates(self, name: str, if_index: int) -> tuple[float, float]:
        """(in, out) octets/s of a port at the daily peak, without noise or faults."""
        for p in self._ports[name]:
            if p.port.if_index == if_index:
                return p.inbound.peak, p.outbound.peak
        raise KeyError(f"{name} has no ifIndex {if_index}")

    def port(self, name: str, if_index: int, t: float) -> PortCounters:
        """Counters of one port at ``t``."""
        for c in self.element(name, t):
            if c.if_index == if_index:
                return c
        raise KeyError(f"{name} has no ifIndex {if_index}")

    def cpu(self, name: str, t: float) -> float:
        """Processor load of element ``name`` at ``t``, 0..1 (hrProcessorLoad / 100)."""
        return self._cpu[name].load(t)

    def optics(self, name: str, t: float) -> tuple[OpticReading, ...]:
        """Diagnostics of every optic of element ``name`` at ``t`` (empty for non-OLTs)."""
        hit = self._gauge_cache.get((name, "optics"))
        if hit is not None and hit[0] == t:
            return hit[1]  # type: ignore[return-value]
        values = tuple(o.reading(t) for o in self._optics[name])
        self._gauge_cache[(name, "optics")] = (t, values)
        return values

    def dsl(self, name: str, t: float) -> tuple[DslReading, ...]:
        """SNR margin and attenuation of every DSL line of element ``name`` at ``t``."""
        hit = self._gauge_cache.get((name, "dsl"))
        if hit is not None and hit[0] == t:
            return hit[1]  # type: ignore[return-value]
        values = tuple(line.reading(t) for line in self._dsl[name])
        self._gauge_cache[(name, "dsl")] = (t, values)
        return values
