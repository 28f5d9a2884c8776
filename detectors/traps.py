"""Trap rules: SNMP notifications in, alert events out at once (no polling, no ``for`` hold).

``InterfaceDown`` (critical)
    linkDown (``1.3.6.1.6.3.1.1.5.3``) fires for the interface named by the trap's ``ifIndex``
    varbind (``1.3.6.1.2.1.2.2.1.1.N``, or the index of its ifOperStatus/ifAdminStatus
    varbinds); linkUp (``.5.4``) resolves the same fingerprint. A linkUp for an interface not
    known to be down still emits RESOLVED (vigil may have restarted since the linkDown); the
    alert pipeline and the contingency manager ignore a resolve they do not know.
``DeviceRestarted`` (warning)
    coldStart / warmStart (``.5.1`` / ``.5.2``) fire, and :meth:`TrapRules.tick` resolves the
    event ``restart_hold`` seconds later (another restart trap meanwhile extends it).
Enterprise rules
    ``enterprise`` maps a trap-OID prefix to ``(alertname, severity)`` (or an
    :class:`EnterpriseRule`); the longest matching prefix wins; the event resolves itself after
    the rule's ``resolve_after`` (default ``restart_hold``), a repeat extends it.

Labels follow :class:`~detectors.engine.DetectionEngine`: ``alertname`` and ``element`` first,
then the sorted rest, ``severity`` among them. ``value`` is 1.0 while the condition holds and
0.0 once resolved (expected 0.0); ``score`` is 1.0 firing, 0.0 resolved: a trap is a fact, not
an estimate. Times are the trap's ``received_at`` on the listener's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from collectors.trap import COLD_START, LINK_DOWN, LINK_UP, WARM_START, Trap
from detectors.event import Event, EventState, Severity

__all__ = [
    "DETECTOR_TRAP",
    "DEVICE_RESTARTED",
    "INTERFACE_DOWN",
    "EnterpriseRule",
    "TrapRules",
]

DETECTOR_TRAP = "snmp_trap"
INTERFACE_DOWN = "InterfaceDown"
DEVICE_RESTARTED = "DeviceRestarted"

_IF_ENTRY = "1.3.6.1.2.1.2.2.1"
_IF_INDEX = _IF_ENTRY + ".1"
_IF_DESCR = _IF_ENTRY + ".2"
_IF_ADMIN_STATUS = _IF_ENTRY + ".7"
_IF_OPER_STATUS = _IF_ENTRY + ".8"
_IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
_TRAP_NAMES = {
    COLD_START: "coldStart",
    WARM_START: "warmStart",
    LINK_DOWN: "linkDown",
    LINK_UP: "linkUp",
}

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class EnterpriseRule:
    """What a vendor trap (matched by OID prefix) means."""

    alertname: str
    severity: Severity = Severity.WARNING
    resolve_after: float | None = None  # None: the rules' restart_hold


@dataclass(slots=True)
class _Active:
    """A firing condition: its FIRING event and, for self-resolving ones, when it ends."""

    event: Event
    resolve_at: float | None


def _labels(alertname: str, element: str, severity: Severity, **extra: str) -> Labels:
    rest = {k: v for k, v in extra.items() if v}
    rest["severity"] = str(severity)
    return (("alertname", alertname), ("element", element), *sorted(rest.items()))


class TrapRules:
    """Turn :class:`~collectors.trap.Trap` values into :class:`~detectors.event.Event` values.

    Parameters
    ----------
    restart_hold : float
        Seconds a ``DeviceRestarted`` (and by default an enterprise event) stays firing.
    enterprise : mapping of str to (str, Severity) or EnterpriseRule
        Trap-OID prefix -> what the trap means.
    if_names : callable (element, ifIndex) -> ifName or None, optional
        The poller's cached interface names; used before the trap's own ifName/ifDescr.
    """

    def __init__(
        self,
        *,
        restart_hold: float = 300.0,
        enterprise: Mapping[str, tuple[str, Severity | str] | EnterpriseRule] | None = None,
        if_names: Callable[[str, str], str | None] | None = None,
    ) -> None:
        if restart_hold <= 0:
            raise ValueError("restart_hold must be > 0 seconds")
        self.restart_hold = restart_hold
        self.if_names = if_names
        self.enterprise: dict[str, EnterpriseRule] = {}
        for prefix, rule in (enterprise or {}).items():
            oid = prefix.strip().lstrip(".").rstrip(".")
            if not oid or not all(part.isdigit() for part in oid.split(".")):
                raise ValueError(f"enterprise rule: {prefix!r} is not a numeric OID prefix")
            if not isinstance(rule, EnterpriseRule):
                alertname, severity = rule
                rule = EnterpriseRule(alertname, Severity(severity))
            self.enterprise[oid] = rule
        self._active: dict[Labels, _Active] = {}
        self._interfaces: dict[tuple[str, str], Labels] = {}  # (element, ifIndex) -> labels

    def active(self) -> list[Event]:
        """The FIRING events not yet resolved."""
        return [a.event for a in self._active.values()]

    def update(self, trap: Trap) -> list[Event]:
        """The events one trap causes (FIRING, or RESOLVED for linkUp); [] if it means nothing."""
        if trap.trap_oid == LINK_DOWN:
            return self._link(trap, down=True)
        if trap.trap_oid == LINK_UP:
            return self._link(trap, down=False)
        if trap.trap_oid in (COLD_START, WARM_START):
            what = _TRAP_NAMES[trap.trap_oid]
            labels = _labels(DEVICE_RESTARTED, trap.source, Severity.WARNING)
            summary = f"{trap.source} restarted ({what} trap)"
            return self._fire(trap, labels, Severity.WARNING, what, summary, self.restart_hold)
        rule, prefix = self._enterprise_rule(trap.trap_oid)
        if rule is None:
            return []
        labels = _labels(rule.alertname, trap.source, rule.severity, trapOID=trap.trap_oid)
        summary = f"{rule.alertname} on {trap.source} (trap {trap.trap_oid})"
        hold = rule.resolve_after if rule.resolve_after is not None else self.restart_hold
        return self._fire(trap, labels, rule.severity, trap.trap_oid, summary, hold)

    def tick(self, now: float) -> list[Event]:
        """RESOLVED events for self-resolving conditions whose time has come."""
        events = []
        for labels, active in list(self._active.items()):
            if active.resolve_at is not None and active.resolve_at <= now:
                del self._active[labels]
                events.append(self._resolved(active.event, active.resolve_at, active.event.summary))
        return events

    # -- internals ------------------------------------------------------------------------

    def _enterprise_rule(self, trap_oid: str) -> tuple[EnterpriseRule | None, str]:
        best: tuple[EnterpriseRule | None, str] = (None, "")
        for prefix, rule in self.enterprise.items():
            if (trap_oid == prefix or trap_oid.startswith(prefix + ".")) and len(prefix) > len(
                best[1]
            ):
                best = (rule, prefix)
        return best

    def _link(self, trap: Trap, *, down: bool) -> list[Event]:
        if_index = _if_index(trap)
        what = "linkDown" if down else "linkUp"
        if if_index is None:
            labels = _labels(INTERFACE_DOWN, trap.source, Severity.CRITICAL)
            interface = "(no ifIndex in the trap)"
        else:
            known = self._interfaces.get((trap.source, if_index))
            labels = known or _labels(
                INTERFACE_DOWN,
                trap.source,
                Severity.CRITICAL,
                ifIndex=if_index,
                ifName=self._if_name(trap, if_index) or "",
            )
            if known is None:
                self._interfaces[(trap.source, if_index)] = labels
            name = dict(labels).get("ifName")
            interface = f"{name} (ifIndex {if_index})" if name else f"ifIndex {if_index}"
        if down:
            summary = f"Interface {interface} on {trap.source} went down ({what} trap)"
            return self._fire(trap, labels, Severity.CRITICAL, what, summary, None)
        summary = f"Interface {interface} on {trap.source} is up again ({what} trap)"
        active = self._active.pop(labels, None)
        if active is not None:
            return [self._resolved(active.event, trap.received_at, summary)]
        unknown = self._event(trap, labels, Severity.CRITICAL, what, summary, EventState.FIRING)
        return [self._resolved(unknown, trap.received_at, summary)]

    def _if_name(self, trap: Trap, if_index: str) -> str | None:
        if self.if_names is not None:
            name = self.if_names(trap.source, if_index)
            if name:
                return name
        for column in (_IF_NAME, _IF_DESCR):
            value = trap.value(f"{column}.{if_index}")
            if isinstance(value, str) and value:
                return value
        return None

    def _fire(
        self,
        trap: Trap,
        labels: Labels,
        severity: Severity,
        series: str,
        summary: str,
        hold: float | None,
    ) -> list[Event]:
        resolve_at = None if hold is None else trap.received_at + hold
        active = self._active.get(labels)
        if active is not None:  # already firing: a repeat only extends a self-resolving one
            if resolve_at is not None and active.resolve_at is not None:
                active.resolve_at = max(active.resolve_at, resolve_at)
            return []
        event = self._event(trap, labels, severity, series, summary, EventState.FIRING)
        self._active[labels] = _Active(event, resolve_at)
        return [event]

    @staticmethod
    def _event(
        trap: Trap,
        labels: Labels,
        severity: Severity,
        series: str,
        summary: str,
        state: EventState,
    ) -> Event:
        annotations = [("trap_oid", trap.trap_oid), ("source", f"{trap.address}:{trap.port}")]
        if trap.uptime is not None:
            annotations.append(("sys_uptime_cs", str(trap.uptime)))
        return Event(
            name=dict(labels)["alertname"],
            element=trap.source,
            state=state,
            labels=labels,
            detector=DETECTOR_TRAP,
            series=series,
            value=1.0,
            expected=0.0,
            band=(0.0, 0.0),
            score=1.0,
            active_at=trap.received_at,
            severity=severity,
            fired_at=trap.received_at,
            summary=summary,
            annotations=tuple(annotations),
        )

    @staticmethod
    def _resolved(event: Event, at: float, summary: str) -> Event:
        return Event(
            name=event.name,
            element=event.element,
            state=EventState.RESOLVED,
            labels=event.labels,
            detector=event.detector,
            series=event.series,
            value=0.0,
            expected=event.expected,
            band=event.band,
            score=0.0,
            active_at=event.active_at,
            severity=event.severity,
            fired_at=event.fired_at,
            resolved_at=at,
            summary=summary if summary != event.summary else f"{event.summary}: resolved",
            annotations=event.annotations,
        )


def _if_index(trap: Trap) -> str | None:
    """The interface a link trap is about: its ifIndex varbind, else the index of ifOperStatus."""
    for column in (_IF_INDEX, _IF_OPER_STATUS, _IF_ADMIN_STATUS):
        for suffix, value in trap.values_under(column):
            if column == _IF_INDEX and isinstance(value, int):
                return str(value)
            if suffix.isdigit():
                return suffix
    return None
