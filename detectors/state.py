"""Alerting-rule state machine: turns a per-step boolean condition into state transitions.

Modelled on Prometheus ``rules/alerting.go``::

    inactive --active--> PENDING --active for >= for_--> FIRING
       ^                    |                              |
       +----inactive--------+  (dropped, no event)         | inactive for >= keep_firing_for
       +-------------(next inactive step)------------ RESOLVED

With ``for_ == 0`` a condition fires on its first active step. While firing, an inactive step
only starts the ``keep_firing_for`` clock; becoming active again stops it, so a flapping
condition yields one FIRING and, at the end, one RESOLVED.

Flap damping (optional, :class:`FlapDamping`, Cisco BGP/interface dampening): every
inactive -> active edge of a key adds ``penalty``; the penalty halves every ``half_life``
seconds. Once it reaches ``suppress`` the key is *flapping*: its condition is held active
(so it goes PENDING -> FIRING once and stays FIRING) until the penalty has decayed below
``reuse``; then the usual ``keep_firing_for`` applies. A port flapping every few minutes,
beyond what ``keep_firing_for`` absorbs, therefore yields one FIRING and one RESOLVED instead
of a storm. The penalty is capped so that suppression lasts at most ``max_suppress`` seconds
after the last flap.

Hysteresis (enter above one threshold, leave below a lower one) is the caller's business:
the tracker sees only the resulting boolean (``DetectionEngine`` computes it per series).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from detectors.event import EventState

__all__ = ["ConditionStatus", "ConditionTracker", "FlapDamping", "Transition"]

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
    flapping: bool = False


@dataclass(frozen=True, slots=True)
class FlapDamping:
    """Cisco-style dampening parameters (defaults are Cisco's: 1000/2000/750, 15 min)."""

    penalty: float = 1000.0
    suppress: float = 2000.0
    reuse: float = 750.0
    half_life: float = 900.0
    max_suppress: float = 3600.0

    def __post_init__(self) -> None:
        if not 0 < self.reuse < self.suppress or self.penalty <= 0:
            raise ValueError(f"need penalty > 0 and 0 < reuse < suppress, got {self}")
        if self.half_life <= 0 or self.max_suppress <= 0:
            raise ValueError("half_life and max_suppress must be > 0 seconds")

    @property
    def ceiling(self) -> float:
        """Largest penalty: decays to ``reuse`` in ``max_suppress`` seconds."""
        return self.reuse * 2.0 ** (self.max_suppress / self.half_life)


@dataclass(slots=True)
class _Flap:
    penalty: float
    at: float
    last_active: bool = False
    suppressed: bool = False


@dataclass(slots=True)
class _Condition:
    state: EventState
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    inactive_since: float | None = None  # Prometheus' KeepFiringSince

    def snapshot(self, flapping: bool = False) -> ConditionStatus:
        return ConditionStatus(self.state, self.active_at, self.fired_at, self.resolved_at, flapping)


class ConditionTracker(Generic[K]):
    """Per-key pending/firing/resolved bookkeeping for one alerting rule.

    Only keys that are active, or were recently, are stored: calling :meth:`update` with
    ``active=False`` for an unknown key is a no-op, so a caller may skip those calls entirely
    and iterate only over active keys plus the tracked ones (``iter(tracker)``).
    """

    def __init__(
        self, for_: float, keep_firing_for: float = 0.0, *, damping: FlapDamping | None = None
    ) -> None:
        if for_ < 0 or keep_firing_for < 0:
            raise ValueError("for_ and keep_firing_for must be >= 0 seconds")
        self.for_ = for_
        self.keep_firing_for = keep_firing_for
        self.damping = damping
        self._conditions: dict[K, _Condition] = {}
        self._flaps: dict[K, _Flap] = {}
        self._dropped: list[K] = []

    def update(self, key: K, active: bool, now: float, *, for_: float | None = None) -> Transition | None:
        """Feed the condition of ``key`` at time ``now``; return the state change, if any.

        A pending condition that goes inactive before ``for_`` is dropped silently (None); its
        key is reported by :meth:`pop_dropped`. A RESOLVED condition stays visible through
        :meth:`status` until the key's next update. With damping, a flapping key is held active.
        ``for_`` overrides the tracker's own for this call (a kind of key that needs longer).
        """
        hold = self.for_ if for_ is None else for_
        if self.damping is not None:
            active = self._damp(key, active, now)
        cond = self._conditions.get(key)
        if cond is None or cond.state is EventState.RESOLVED:
            if not active:
                self._conditions.pop(key, None)
                return None
            cond = _Condition(EventState.PENDING, active_at=now)
            self._conditions[key] = cond
            if hold > 0:
                return EventState.PENDING
            cond.state, cond.fired_at = EventState.FIRING, now
            return EventState.FIRING

        if cond.state is EventState.PENDING:
            if not active:
                del self._conditions[key]
                self._dropped.append(key)
                return None
            if now - cond.active_at >= hold:
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
        return None if cond is None else cond.snapshot(self.flapping(key))

    def flapping(self, key: K) -> bool:
        """Whether ``key`` is suppressed as flapping (held active by damping)."""
        flap = self._flaps.get(key)
        return flap is not None and flap.suppressed

    def penalty(self, key: K, now: float) -> float:
        """Flap penalty of ``key`` decayed to ``now`` (0 without damping or history)."""
        flap = self._flaps.get(key)
        if flap is None or self.damping is None:
            return 0.0
        return flap.penalty * 0.5 ** (max(now - flap.at, 0.0) / self.damping.half_life)

    def state_dict(self, encode: Callable[[K], Any] = lambda k: k) -> dict[str, Any]:
        """JSON-able state (keys through ``encode``) for :meth:`load_state_dict`."""
        return {
            "conditions": [
                [encode(k), c.state.value, c.active_at, c.fired_at, c.resolved_at, c.inactive_since]
                for k, c in self._conditions.items()
            ],
            "flaps": [
                [encode(k), f.penalty, f.at, f.last_active, f.suppressed] for k, f in self._flaps.items()
            ],
        }

    def load_state_dict(self, state: dict[str, Any], decode: Callable[[Any], K] = lambda k: k) -> None:
        """Replace the tracked conditions with those of :meth:`state_dict`."""
        try:
            self._conditions = {
                decode(k): _Condition(EventState(s), a, f, r, i) for k, s, a, f, r, i in state["conditions"]
            }
            self._flaps = {decode(k): _Flap(p, at, la, sup) for k, p, at, la, sup in state["flaps"]}
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"malformed tracker state: {err}") from err
        self._dropped = []

    def _damp(self, key: K, active: bool, now: float) -> bool:
        """Update the flap penalty of ``key``; return the (possibly held) condition."""
        damping = self.damping
        assert damping is not None
        flap = self._flaps.get(key)
        if flap is None:
            if not active:
                return False
            flap = self._flaps[key] = _Flap(0.0, now)
        flap.penalty = self.penalty(key, now)
        flap.at = now
        if active and not flap.last_active:
            flap.penalty = min(flap.penalty + damping.penalty, damping.ceiling)
        flap.last_active = active
        if flap.penalty >= damping.suppress:
            flap.suppressed = True
        elif flap.suppressed and flap.penalty < damping.reuse:
            flap.suppressed = False
        held = active or flap.suppressed
        if not held and flap.penalty < damping.reuse / 8:  # forgotten: ~3 half-lives quiet
            del self._flaps[key]
        return held

    def pop_dropped(self) -> list[K]:
        """Keys whose pending condition was abandoned since the last call."""
        dropped, self._dropped = self._dropped, []
        return dropped

    def forget(self, key: K) -> None:
        """Stop tracking ``key`` (e.g. its series was deleted) without a transition."""
        self._conditions.pop(key, None)
        self._flaps.pop(key, None)

    def __iter__(self) -> Iterator[K]:
        """Keys to feed even when inactive: tracked conditions, then keys with a flap penalty."""
        keys = list(self._conditions)
        keys.extend(k for k in self._flaps if k not in self._conditions)
        return iter(keys)

    def items(self) -> Iterator[tuple[K, ConditionStatus]]:
        """Tracked keys with their status."""
        for key, cond in list(self._conditions.items()):
            yield key, cond.snapshot(self.flapping(key))

    def __contains__(self, key: object) -> bool:
        return key in self._conditions

    def __len__(self) -> int:
        return len(self._conditions)
