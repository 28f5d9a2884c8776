"""The alert value: one detected condition as Alertmanager sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from detectors.event import Event, EventState

__all__ = ["ZERO_TIME", "Alert", "AlertStatus", "format_time", "generator_url", "to_datetime"]

AlertStatus = Literal["firing", "resolved"]

# Alertmanager renders an unset time as Go's zero time.
ZERO_TIME = "0001-01-01T00:00:00Z"


def to_datetime(seconds: float) -> datetime:
    """Clock seconds (epoch) -> aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def format_time(value: datetime | None) -> str:
    """RFC 3339 in UTC with a ``Z``; ``None`` -> Alertmanager's zero time."""
    if value is None:
        return ZERO_TIME
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def generator_url(external_url: str, fingerprint: str) -> str:
    """Link back to the alert in vigil's HTTP API."""
    return f"{external_url.rstrip('/')}/alerts?fingerprint={quote(fingerprint)}"


def _annotations(event: Event) -> dict[str, str]:
    low, high = event.band
    summary = event.summary or f"{event.name} on {event.element}"
    description = (
        f"{event.series}: value {event.value:g}, expected {event.expected:g} "
        f"(band {low:g}..{high:g}), score {event.score:g} by {event.detector}"
    )
    notes = {
        "summary": summary,
        "description": description,
        "value": f"{event.value:g}",
        "expected": f"{event.expected:g}",
        "band": f"{low:g}..{high:g}",
        "score": f"{event.score:g}",
        "detector": event.detector,
        "series": event.series,
        "severity": str(event.severity),
    }
    if event.eta is not None:
        notes["eta"] = format_time(to_datetime(event.eta))
    notes.update(dict(event.annotations))  # the detector's own annotations win
    return notes


@dataclass(frozen=True)
class Alert:
    """One condition in Alertmanager's terms; ``fingerprint`` is the event's label hash."""

    fingerprint: str
    labels: dict[str, str] = field(hash=False)
    annotations: dict[str, str] = field(hash=False)
    status: AlertStatus
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str

    @classmethod
    def from_event(cls, event: Event, external_url: str) -> Alert:
        """Alert for a FIRING or RESOLVED event; PENDING events are not alerts yet."""
        if event.state is EventState.PENDING:
            raise ValueError(f"event {event.name} on {event.element} is pending, not an alert")
        started = event.fired_at if event.fired_at is not None else event.active_at
        ends_at: datetime | None = None
        if event.state is EventState.RESOLVED:
            ended = event.resolved_at if event.resolved_at is not None else started
            ends_at = to_datetime(ended)
        return cls(
            fingerprint=event.fingerprint,
            labels=dict(event.labels),
            annotations=_annotations(event),
            status="resolved" if event.state is EventState.RESOLVED else "firing",
            starts_at=to_datetime(started),
            ends_at=ends_at,
            generator_url=generator_url(external_url, event.fingerprint),
        )

    def to_webhook(self) -> dict[str, Any]:
        """The alert as one entry of Alertmanager's webhook ``alerts`` list."""
        return {
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": format_time(self.starts_at),
            "endsAt": format_time(self.ends_at),
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }


def common(maps: list[Mapping[str, str]]) -> dict[str, str]:
    """Pairs present with the same value in every mapping (``commonLabels``)."""
    if not maps:
        return {}
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}
