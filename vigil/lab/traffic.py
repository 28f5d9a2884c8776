"""Deterministic interface counters for the lab agents, as exact integrals of a rate model.

The octet rate of a port is ``peak x diurnal(t) + noise``: ``diurnal`` is a piecewise-linear
daily curve in Guangzhou local time (low at 04:00, peak at 21:00) whose integral is closed form;
the noise is a seeded piecewise-constant rate per ``NOISE_BUCKET`` seconds, bounded so the rate
never goes negative, whose running sum is kept per series with sparse checkpoints (requests come
with increasing ``t``; repeats and the odd step back are cheap). Faults replace or add to the
rates on their interval. Counters count from ``boot`` (the agent's start), so they are monotonic
and wrap like real ones: Counter64 at 2**64, Counter32 at 2**32.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from config.models import SiteConfig
from vigil.lab.device import Device, Port, PortKind, lab_devices
from vigil.lab.scenario import Fault, FaultKind

__all__ = [
    "NOISE_BUCKET",
    "UTC_OFFSET",
    "PortCounters",
    "TrafficModel",
    "diurnal",
    "diurnal_integral",
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
for _h in range(24):
    _PREFIX.append(_PREFIX[-1] + (_CURVE[_h] + _CURVE[_h + 1]) / 2 * _HOUR)
_DAY_INTEGRAL = _PREFIX[24]

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


def diurnal_integral(t: float) -> float:
    """Integral of ``diurnal`` from the (local) epoch to ``t``, in seconds."""
    x = t + UTC_OFFSET
    day = math.floor(x / _DAY)
    r = x - day * _DAY
    h = min(int(r // _HOUR), 23)
    f = r - h * _HOUR
    v0 = _CURVE[h]
    return day * _DAY_INTEGRAL + _PREFIX[h] + v0 * f + (_CURVE[h + 1] - v0) * f * f / (2 * _HOUR)


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


class _Noise:
    """Running integral of one seeded piecewise-constant noise rate (in diurnal units)."""

    __slots__ = ("key", "k0", "k", "total", "checkpoints")

    def __init__(self, key: int, boot: float) -> None:
        self.key = key
        self.k0 = math.floor(boot / NOISE_BUCKET)
        self.k = self.k0  # cursor: ``total`` is the integral over buckets [k0, k)
        self.total = 0.0
        self.checkpoints: dict[int, float] = {}

    def rate(self, j: int) -> float:
        """Noise rate in bucket ``j``: bounded by NOISE x the curve's minimum over the bucket."""
        lo = min(diurnal(j * NOISE_BUCKET), diurnal((j + 1) * NOISE_BUCKET))
        return NOISE * lo * _mix(self.key, j)

    def integral(self, t: float) -> float:
        """Integral of the noise rate from the start of bucket ``k0`` to ``t``."""
        k = max(math.floor(t / NOISE_BUCKET), self.k0)
        if k < self.k:  # a step back: restart from the nearest checkpoint
            c = max((c for c in self.checkpoints if c <= k), default=self.k0)
            self.k, self.total = c, self.checkpoints.get(c, 0.0)
        while self.k < k:
            self.total += self.rate(self.k) * NOISE_BUCKET
            self.k += 1
            if (self.k - self.k0) % _CHECKPOINT == 0:
                self.checkpoints[self.k] = self.total
        return self.total + self.rate(k) * (max(t, self.k0 * NOISE_BUCKET) - k * NOISE_BUCKET)


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


class _Direction:
    """Octet counter of one direction of one port, faults applied."""

    __slots__ = ("peak", "noise", "boot_value", "saturations", "speed_bytes", "_fixed")

    def __init__(
        self, peak: float, noise: _Noise, boot: float, speed_bytes: float, saturations: list[Fault]
    ) -> None:
        self.peak = peak  # bytes/s at diurnal() == 1
        self.noise = noise
        self.speed_bytes = speed_bytes
        self.saturations = saturations
        self._fixed: dict[float, float] = {}
        self.boot_value = diurnal_integral(boot) + noise.integral(boot)

    def _normal(self, t: float) -> float:
        """Octets since boot without faults."""
        if self.peak == 0.0:
            return 0.0
        return self.peak * (diurnal_integral(t) + self.noise.integral(t) - self.boot_value)

    def _fixed_normal(self, t: float) -> float:
        """``_normal`` at a fault edge, computed once."""
        value = self._fixed.get(t)
        if value is None:
            value = self._fixed[t] = self._normal(t)
        return value

    def octets(self, t: float) -> float:
        """Octets since boot at ``t``."""
        if not self.saturations:
            return self._normal(t)
        total, inside = 0.0, False
        for f in self.saturations:  # edges first, in time order, to keep the noise cursor forward
            if t > f.start:
                total += self._fixed_normal(f.start) + self._sat(f, f.start, min(t, f.end))
                if t >= f.end:
                    total -= self._fixed_normal(f.end)
                else:
                    inside = True  # the normal traffic up to t is replaced, not added
        return total if inside else total + self._normal(t)

    def _sat(self, f: Fault, a: float, b: float) -> float:
        """Octets of a saturated link between ``a`` and ``b``."""
        ripple = min(_RIPPLE, 1.0 - f.peak)
        w = 2 * math.pi / _RIPPLE_PERIOD
        wobble = ripple / w * (math.cos(w * a) - math.cos(w * b))
        return self.speed_bytes * (f.peak * (b - a) + wobble)


class _PortModel:
    """Everything needed to compute one port's counters."""

    __slots__ = ("port", "inbound", "outbound", "errors", "crc", "boot")

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
        sats = sorted((f for f in faults if f.kind is FaultKind.SATURATION), key=lambda f: f.start)
        self.inbound = _Direction(
            peak_in, _Noise(_key(seed, element, port.if_index, "in"), boot), boot, speed_bytes, sats
        )
        self.outbound = _Direction(
            peak_out,
            _Noise(_key(seed, element, port.if_index, "out"), boot),
            boot,
            speed_bytes,
            sats,
        )
        self.crc = [f for f in faults if f.kind is FaultKind.CRC_ERRORS]
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

    def counters(self, t: float) -> PortCounters:
        """The port's counters at ``t`` (>= boot)."""
        in_errors = self._events(0, t)
        for f in self.crc:
            if t > f.start:
                in_errors += math.floor(_ramp_integral(f, min(t, f.end) - f.start))
        port = self.port
        return PortCounters(
            port.if_index,
            int(self.inbound.octets(t)) & _M64,
            int(self.outbound.octets(t)) & _M64,
            in_errors & _M32,
            self._events(1, t) & _M32,
            self._events(2, t) & _M32,
            1 if port.up else 2,
            port.speed_mbps,
        )


def _ramp_integral(f: Fault, d: float) -> float:
    """Errors of a CRC fault ``d`` seconds after its start (linear ramp, then flat)."""
    if f.ramp <= 0:
        return f.peak * d
    if d <= f.ramp:
        return f.peak * d * d / (2 * f.ramp)
    return f.peak * (f.ramp / 2 + d - f.ramp)


class TrafficModel:
    """Counters of every port of every lab device at any simulated time."""

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
            self.devices[f.element].port(f.if_index)  # raises KeyError if absent
        self._ports: dict[str, tuple[_PortModel, ...]] = {
            name: tuple(
                _PortModel(
                    name,
                    p,
                    [f for f in faults if f.element == name and f.if_index == p.if_index],
                    boot,
                    seed,
                )
                for p in dev.ports
            )
            for name, dev in self.devices.items()
        }
        self._cache: dict[str, tuple[float, tuple[PortCounters, ...]]] = {}

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
