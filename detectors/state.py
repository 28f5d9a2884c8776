"""Alerting-rule state machine: turns a per-step boolean condition into state transitions.

Modelled on Prometheus ``rules/alerting.go``::

    inactive --active--> PENDING --active for >= for_--> FIRING
       ^                    |                              |
       +----inactive--------+  (dropped, no event)         | inactive for >= keep_firing_for
       +-------------(next inactive step)------------ RESOLVED

With ``for_ == 0`` a condition fires on its first active step. While firing, an inactive step
only starts the ``keep_firing_for`` clock; becoming active again stops it, so a flapping
condition yields one FIRING and, at the end, one RESOLVED.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from detectors.event import EventState

__all__ = ["ConditionStatus", "ConditionTracker", "Transition"]

K = TypeVar("K", bound=Hashable)

Transition: TypeAlias = EventState
"""A state change returned by :meth:`ConditionTracker.update`: PENDING, FIRING or RESOLVED."""


@dataclass(frozen=True, slots=True)
class ConditionStatus:
    """Snapshot of one tracked condition and its Prometheus-style time stamps."""

    state: EventState
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None


@dataclass(slots=True)
class _Condition:
    state: EventState
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    inactive_since: float | None = None  # Prometheus' KeepFiringSince

    def snapshot(self) -> ConditionStatus:
        return ConditionStatus(self.state, self.active_at, self.fired_at, self.resolved_at)


class ConditionTracker(Generic[K]):
    """Per-key pending/firing/resolved bookkeeping for one alerting rule.

    Only keys that are active, or were recently, are stored: calling :meth:`update` with
    ``active=False`` for an unknown key is a no-op, so a caller may skip those calls entirely
    and iterate only over active keys plus the tracked ones (``iter(tracker)``).
    """

    def __init__(self, for_: float, keep_firing_for: float = 0.0) -> None:
        if for_ < 0 or keep_firing_for < 0:
            raise ValueError("for_ and keep_firing_for must be >= 0 seconds")
        self.for_ = for_
        self.keep_firing_for = keep_firing_for
        self._conditions: dict[K, _Condition] = {}
        self._dropped: list[K] = []

    def update(self, key: K, active: bool, now: float) -> Transition | None:
        """Feed the condition of ``key`` at time ``now``; return the state change, if any.

        A pending condition that goes inactive before ``for_`` is dropped silently (None); its
        key is reported by :meth:`pop_dropped`. A RESOLVED condition stays visible through
        :meth:`status` until the key's next update.
        """
        cond = self._conditions.get(key)
        if cond is None or cond.state is EventState.RESOLVED:
            if not active:
                self._conditions.pop(key, None)
                return None
            cond = _Condition(EventState.PENDING, active_at=now)
            self._conditions[key] = cond
            if self.for_ > 0:
                return EventState.PENDING
            cond.state, cond.fired_at = EventState.FIRING, now
            return EventState.FIRING

        if cond.state is EventState.PENDING:
            if not active:
                del self._conditions[key]
                self._dropped.append(key)
                return None
            if now - cond.active_at >= self.for_:
                cond.state, cond.fired_at = EventState.FIRING, now
                return EventState.FIRING
            return None

        # FIRING
        if active:
            cond.inactive_since = None
            return None
        if cond.inactive_since is None:
            cond.inactive_since = now
        if now - cond.inactive_since >= self.keep_firing_for:
            cond.state, cond.resolved_at = EventState.RESOLVED, now
            return EventState.RESOLVED
        return None

    def status(self, key: K) -> ConditionStatus | None:
        """Current state and stamps of ``key``, or None if it is not tracked."""
        cond = self._conditions.get(key)
        return None if cond is None else cond.snapshot()

    def pop_dropped(self) -> list[K]:
        """Keys whose pending condition was abandoned since the last call."""
        dropped, self._dropped = self._dropped, []
        return dropped

    def forget(self, key: K) -> None:
        """Stop tracking ``key`` (e.g. its series was deleted) without a transition."""
        self._conditions.pop(key, None)

    def __iter__(self) -> Iterator[K]:
        """Tracked keys (pending, firing, or resolved at their last update), as a snapshot."""
        return iter(list(self._conditions))

    def items(self) -> Iterator[tuple[K, ConditionStatus]]:
        """Tracked keys with their status."""
        for key, cond in list(self._conditions.items()):
            yield key, cond.snapshot()

    def __contains__(self, key: object) -> bool:
        return key in self._conditions

    def __len__(self) -> int:
        return len(self._conditions)
