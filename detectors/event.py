"""The value detectors produce: a state change of one detected condition."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Event", "EventState", "Severity", "fingerprint_labels"]


class EventState(StrEnum):
    """Lifecycle of a detected condition (Prometheus alerting-rule states)."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Event:
    """A condition on one element changing state.

    ``labels`` always hold ``alertname`` and ``element``; series labels (``ifName``,
    ``ifIndex``...) follow. Times are seconds on the run's clock. ``band`` is the
    (low, high) range the detector expected; ``eta`` is the predicted crossing time for
    forecasts, else None.
    """

    name: str
    element: str
    state: EventState
    labels: tuple[tuple[str, str], ...]
    detector: str
    series: str
    value: float
    expected: float
    band: tuple[float, float]
    score: float
    active_at: float
    severity: Severity = Severity.WARNING
    fired_at: float | None = None
    resolved_at: float | None = None
    eta: float | None = None
    summary: str = ""
    annotations: tuple[tuple[str, str], ...] = field(default=())

    @property
    def fingerprint(self) -> str:
        """Stable identity of the condition (not of the state change): hash of the labels."""
        return fingerprint_labels(dict(self.labels))

    def label(self, name: str, default: str = "") -> str:
        return dict(self.labels).get(name, default)


def fingerprint_labels(labels: dict[str, str]) -> str:
    """Hex fingerprint of a label set, independent of label order."""
    h = hashlib.sha256()
    for key in sorted(labels):
        h.update(key.encode())
        h.update(b"\xff")
        h.update(labels[key].encode())
        h.update(b"\xff")
    return h.hexdigest()[:16]
