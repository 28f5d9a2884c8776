"""Scheduled faults of the lab network: what breaks, where, and when (simulated time)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ELEMENT_KINDS", "FLAP_DOWN", "OCTET_KINDS", "Fault", "FaultKind", "PlannedWork", "Scenario", "default_scenario",
]


class FaultKind(StrEnum):
    """How a fault shows in the counters and gauges (``g = min(1, elapsed / ramp) ** curve``)."""

    CRC_ERRORS = "crc_errors"  # ifInErrors rate ramps 0 -> peak errors/s: peak x g
    SATURATION = "saturation"  # in and out octet rates pinned at ``peak`` x speed
    UTILIZATION_CREEP = "utilization_creep"  # in/out rates blend linearly into peak x speed
    OPTICAL_DECAY = "optical_decay"  # optic RX power falls by peak x g dB (mW decays exp.)
    SNR_EROSION = "snr_erosion"  # DSL SNR margin falls by peak x g dB (attenuation rises)
    FLAPPING = "flapping"  # ifOperStatus down 40 % of every ``period``; peak CRC errors per re-link
    CPU_RUNAWAY = "cpu_runaway"  # element CPU goes from normal to ``peak`` (0..1): blended by g


OCTET_KINDS = frozenset({FaultKind.SATURATION, FaultKind.UTILIZATION_CREEP, FaultKind.FLAPPING})
"""Kinds that change the octet counters: at most one at a time per interface."""
ELEMENT_KINDS = frozenset({FaultKind.CPU_RUNAWAY})
"""Kinds of the whole element: ``if_index`` is not used (0 by convention)."""


FLAP_DOWN = 0.4
"""Share of each FLAPPING cycle the interface is down (it starts down)."""
_FRACTION_KINDS = frozenset(
    {FaultKind.SATURATION, FaultKind.UTILIZATION_CREEP, FaultKind.CPU_RUNAWAY}
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault on one interface, active on ``[start, end)`` (epoch seconds, simulated)."""

    element: str
    if_index: int
    kind: FaultKind
    start: float
    end: float
    # errors/s (CRC_ERRORS), fraction of ifSpeed (SATURATION, UTILIZATION_CREEP), dB lost
    # (OPTICAL_DECAY, SNR_EROSION), CRC errors per re-link (FLAPPING), CPU level (CPU_RUNAWAY)
    peak: float
    ramp: float = 0.0  # seconds until ``peak`` is reached (0: at once)
    note: str = ""
    curve: float = 1.0  # shape of the ramp: 1 linear, 2 accelerating (not UTILIZATION_CREEP)
    period: float = 240.0  # seconds of one down/up cycle (FLAPPING)

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"fault on {self.element} ends before it starts")
        if self.ramp < 0 or self.peak < 0:
            raise ValueError("fault ramp and peak must be >= 0")
        if self.curve <= 0 or self.period <= 0:
            raise ValueError("fault curve and period must be > 0")
        if self.kind in _FRACTION_KINDS and self.peak > 1.0:
            raise ValueError(f"{self.kind} peak is a fraction, <= 1.0")

    def progress(self, t: float) -> float:
        """How far the ramp is at ``t``: 0 before the start, ``g`` inside, 1 after the ramp."""
        if t <= self.start:
            return 0.0
        if self.ramp <= 0 or t >= self.start + self.ramp:
            return 1.0
        return ((t - self.start) / self.ramp) ** self.curve

    def active(self, t: float) -> bool:
        """Whether the fault is in effect at ``t``."""
        return self.start <= t < self.end

    def outages(self) -> list[tuple[float, float]]:
        """The ``[down, up)`` intervals of a FLAPPING fault (none for other kinds)."""
        if self.kind is not FaultKind.FLAPPING:
            return []
        out, k = [], 0
        while (a := self.start + k * self.period) < self.end:
            out.append((a, min(a + FLAP_DOWN * self.period, self.end)))
            k += 1
        return out


@dataclass(frozen=True, slots=True)
class PlannedWork:
    """A maintenance window the NOC announced for the lab (a silence made at startup, ahead of it)."""

    element: str
    start: float
    end: float
    comment: str

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"planned work on {self.element} ends before it starts")


class Scenario(list[Fault]):
    """The faults of a run, in start order, with the run start for describing them, and the
    maintenance windows announced for it (``works``)."""

    def __init__(self, faults: Iterable[Fault] = (), start: float = 0.0, works: Iterable[PlannedWork] = ()) -> None:
        super().__init__(sorted(faults, key=lambda f: (f.start, f.element, f.if_index)))
        self.start = start
        self.works = sorted(works, key=lambda w: w.start)

    def describe(self) -> list[str]:
        """Lines for the startup banner: what happens when, in simulated minutes."""
        items = [(f.start, f.end, f.note or f"{f.kind} on {f.element} ifIndex {f.if_index}") for f in self]
        items += [(w.start, w.end, f"maintenance window on {w.element}: {w.comment}") for w in self.works]
        lines = []
        for a, b, what in sorted(items, key=lambda i: i[0]):
            begin, end = (a - self.start) / 60, (b - self.start) / 60
            lines.append(f"T+{begin:g} min .. T+{end:g} min: {what}")
        if self:
            cleared = (max(f.end for f in self) - self.start) / 60
            lines.append(f"T+{cleared:g} min: all faults cleared, traffic back to normal")
        return lines


def default_scenario(
    start: float,
    *,
    fault_at: float = 20 * 60,
    saturate_after: float = 15 * 60,
    duration: float = 55 * 60,
    element: str = "agg-yuexiu-01",
    if_index: int = 1,
    error_peak: float = 400.0,
    saturation: float = 0.98,
    works_element: str | None = None,
    works_at: float = 40 * 60,
) -> Scenario:
    """The demo story: yuexiu's aggregation uplink takes CRC errors, then saturates, then heals.

    ``fault_at`` (after ``start``), ``saturate_after`` (after the fault begins) and
    ``duration`` (of the whole fault) are simulated seconds. Defaults: errors from T+20 min,
    saturation from T+35 min, cleared at T+75 min.

    With ``works_element`` (an OLT of another area), planned works too: a maintenance window
    from ``works_at`` for 30 minutes (T+40..T+70), inside which the element's uplink takes CRC
    errors for 15 minutes (a fibre re-splice, T+45..T+60): agents see a planned-works banner,
    and nobody is texted because the works end inside their window.
    """
    if not 0 < saturate_after < duration:
        raise ValueError("saturate_after must be within the fault's duration")
    begin, end = start + fault_at, start + fault_at + duration
    where = f"{element} ifIndex {if_index} (uplink)"
    works: list[PlannedWork] = []
    planned: list[Fault] = []
    if works_element is not None:
        w0 = start + works_at
        works.append(PlannedWork(works_element, w0, w0 + 30 * 60, "CHG-DEMO-01 fibre re-splice (planned works)"))
        planned.append(Fault(
            works_element, 1, FaultKind.CRC_ERRORS, w0 + 5 * 60, w0 + 20 * 60, 200.0, ramp=5 * 60,
            note=f"planned works: CRC errors on {works_element} ifIndex 1 (uplink) during the re-splice",
        ))
    return Scenario(
        [
            *planned,
            Fault(
                element,
                if_index,
                FaultKind.CRC_ERRORS,
                begin,
                end,
                error_peak,
                ramp=saturate_after,
                note=f"CRC errors on {where}, ramping to {error_peak:g}/s",
            ),
            Fault(
                element,
                if_index,
                FaultKind.SATURATION,
                begin + saturate_after,
                end,
                saturation,
                note=f"{where} saturates at {saturation:.0%} of speed, in and out",
            ),
        ],
        start=start,
        works=works,
    )
