"""The value every collector produces: one observation of one series at one time."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

__all__ = ["Sample", "SampleKind", "labels_of"]


class SampleKind(StrEnum):
    """What a sample's value means."""

    COUNTER = "counter"  # raw, monotonically increasing device counter (exported as-is)
    GAUGE = "gauge"  # instantaneous device value (ifOperStatus, ifHighSpeed, sysUpTime)
    RATE = "rate"  # derived per-second rate or ratio computed by collectors.counters


class Sample(NamedTuple):
    """One observation: ``metric{labels} = value`` of ``element`` at ``timestamp``.

    ``metric`` uses snmp_exporter's if_mib names for raw values (``ifHCInOctets``) and
    vigil's names for derived ones (``if_in_utilization``). ``labels`` is a sorted tuple of
    pairs so samples hash and compare; ``element`` and ``area`` are *not* in it.
    ``timestamp`` is seconds on the run's clock (simulated in the lab network).
    A NamedTuple rather than a frozen dataclass: collectors build millions of them, and a tuple
    is built in half the time; it is just as immutable and hashable.
    """

    element: str
    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp: float
    kind: SampleKind = SampleKind.GAUGE

    @property
    def series_key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """Identity of the series this sample belongs to."""
        return (self.element, self.metric, self.labels)

    def label(self, name: str, default: str = "") -> str:
        """The value of label ``name``."""
        for key, value in self.labels:
            if key == name:
                return value
        return default


def labels_of(**labels: str) -> tuple[tuple[str, str], ...]:
    """Build the canonical (sorted) label tuple of a sample."""
    return tuple(sorted((k, str(v)) for k, v in labels.items()))
