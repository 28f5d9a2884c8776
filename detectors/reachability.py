"""Reachability rule: "element unreachable" after N consecutive failed polls.

Reads the poller's reachability samples (``up`` 1/0 and ``vigil_consecutive_failures``, element
only, no other label) and emits ``ElementUnreachable`` (critical) FIRING when an element's
failed polls in a row reach ``failures``, and RESOLVED at its first successful poll after that.
A streak shorter than ``failures`` raises nothing: one lost poll is not an outage.
Across a restart the rule keeps nothing itself: the ``ElementUnreachable`` alerts still firing come
back from the alert store through :meth:`ReachabilityRule.restore`, so the element's first good
poll resolves them (and a poll still failing raises no second FIRING).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collectors.sample import Sample
from detectors.event import Event, EventState, Severity

__all__ = ["DETECTOR_REACHABILITY", "ELEMENT_UNREACHABLE", "ReachabilityRule"]

ELEMENT_UNREACHABLE = "ElementUnreachable"
DETECTOR_REACHABILITY = "reachability"
_UP = "up"
_FAILURES = "vigil_consecutive_failures"


@dataclass(slots=True)
class _Streak:
    """Failed polls in a row of one element, and whether the alert is firing."""

    count: int = 0
    first_failed_at: float | None = None
    fired_at: float | None = None
    labels: tuple[tuple[str, str], ...] | None = None  # of an alert taken back by restore()


class ReachabilityRule:
    """Turn ``up`` samples into ElementUnreachable FIRING / RESOLVED events."""

    def __init__(self, failures: int = 3) -> None:
        if failures < 1:
            raise ValueError("failures must be >= 1")
        self.failures = failures
        self._streaks: dict[str, _Streak] = {}

    def firing(self) -> list[str]:
        """Elements currently reported unreachable."""
        return sorted(e for e, s in self._streaks.items() if s.fired_at is not None)

    def restore(
        self,
        firing: Sequence[Mapping[str, str]],
        now: float,
        fired_at: Sequence[float | None] | None = None,
    ) -> int:
        """Take back the ``ElementUnreachable`` alerts still firing from before a restart (their
        labels, e.g. from the alert store; ``fired_at[i]`` the time ``firing[i]`` fired, default
        ``now``), so the element's next good poll resolves each under its own labels and a poll
        still failing raises no second FIRING. Returns how many were taken back; other alerts,
        and elements already firing here, are skipped."""
        taken = 0
        for i, labels in enumerate(firing):
            element = labels.get("element")
            if labels.get("alertname") != ELEMENT_UNREACHABLE or not element:
                continue
            streak = self._streaks.setdefault(element, _Streak())
            if streak.fired_at is not None:
                continue
            at = fired_at[i] if fired_at is not None and i < len(fired_at) else None
            at = now if at is None else at
            rest = sorted((k, v) for k, v in labels.items() if k not in ("alertname", "element"))
            streak.count = max(streak.count, self.failures)
            streak.first_failed_at = at if streak.first_failed_at is None else min(at, streak.first_failed_at)
            streak.fired_at = at
            streak.labels = (("alertname", ELEMENT_UNREACHABLE), ("element", element), *rest)
            taken += 1
        return taken

    def update(self, samples: Sequence[Sample]) -> list[Event]:
        """Consume poll results in time order; return the events whose state changed."""
        counts: dict[str, float] = {
            s.element: s.value for s in samples if s.metric == _FAILURES and not s.labels
        }
        events: list[Event] = []
        for sample in sorted(
            (s for s in samples if s.metric == _UP and not s.labels), key=lambda s: s.timestamp
        ):
            event = self._observe(sample, counts.get(sample.element))
            if event is not None:
                events.append(event)
        return events

    def _observe(self, sample: Sample, reported: float | None) -> Event | None:
        streak = self._streaks.setdefault(sample.element, _Streak())
        now = sample.timestamp
        if sample.value >= 1:
            fired_at, first, labels = streak.fired_at, streak.first_failed_at, streak.labels
            streak.count, streak.first_failed_at, streak.fired_at, streak.labels = 0, None, None, None
            if fired_at is None:
                return None
            return self._event(sample, EventState.RESOLVED, 0, first or fired_at, fired_at, now, labels)
        streak.count = int(reported) if reported is not None else streak.count + 1
        if streak.first_failed_at is None:
            streak.first_failed_at = now
        if streak.fired_at is not None or streak.count < self.failures:
            return None
        streak.fired_at = now
        return self._event(sample, EventState.FIRING, streak.count, streak.first_failed_at, now, None)

    def _event(
        self,
        sample: Sample,
        state: EventState,
        count: int,
        active_at: float,
        fired_at: float,
        resolved_at: float | None,
        labels: tuple[tuple[str, str], ...] | None = None,
    ) -> Event:
        element = sample.element
        q = count / self.failures
        if state is EventState.FIRING:
            summary = f"Element {element} unreachable: {count} consecutive failed polls"
        else:
            down = (resolved_at or fired_at) - active_at
            summary = f"Element {element} reachable again after {down:.0f}s unreachable"
        return Event(
            name=ELEMENT_UNREACHABLE,
            element=element,
            state=state,
            labels=labels
            or (
                ("alertname", ELEMENT_UNREACHABLE),
                ("element", element),
                ("severity", str(Severity.CRITICAL)),
            ),
            detector=DETECTOR_REACHABILITY,
            series=_UP,
            value=float(sample.value),
            expected=1.0,
            band=(1.0, 1.0),
            score=q / (1.0 + q),
            active_at=active_at,
            severity=Severity.CRITICAL,
            fired_at=fired_at,
            resolved_at=resolved_at,
            summary=summary,
        )
