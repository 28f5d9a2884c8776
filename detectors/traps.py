"""Trap rules and link state: SNMP notifications (and polled port status) in, alert events out.

``InterfaceDown`` (critical)
    linkDown (``1.3.6.1.6.3.1.1.5.3``) fires for the interface named by the trap's ``ifIndex``
    varbind (``1.3.6.1.2.1.2.2.1.1.N``, or the index of its ifOperStatus/ifAdminStatus
    varbinds); linkUp (``.5.4``) resolves the same fingerprint. A linkUp for an interface not
    known to be down, but not seen up since vigil started either (or last seen down), still emits
    RESOLVED (vigil may have restarted since the linkDown); the
    alert pipeline and the contingency manager ignore a resolve they do not know.
    Polled ``ifOperStatus`` / ``ifAdminStatus`` samples (:meth:`TrapRules.observe`) feed the same
    per-interface state, so a lost trap (UDP) or a device that sends none still raises it: a
    port *seen up* that polls down (2 down, 6 notPresent, 7 lowerLayerDown) while not
    administratively down. A port never seen up (a spare), an admin shutdown (polled, or the
    ifAdminStatus varbind of the linkDown trap) and a subscriber line, polled or by trap (DSL
    ifTypes, from ``if_types``: a customer switching a modem off) raise nothing; an alert a line
    raised before its ifType was known resolves at its next poll or trap.
    Both sources share one condition per interface with Cisco-style flap damping and
    ``keep_firing_for`` (the site's ``detectors.keep_firing_for`` in production): a flapping
    port is one event, not a storm, and it resolves that long after the port is back up.
    Across a restart: :meth:`TrapRules.state_dict` / :meth:`TrapRules.load_state_dict` keep what
    is known of each interface (name, seen up, down, shut; ``link-state.json`` in the data dir),
    so a port seen up before the restart counts at its first "down" after it; the conditions
    themselves are not kept, the alerts still firing come back from the alert store through
    :meth:`TrapRules.restore`, each under its own labels. A poll or a link trap that gives the
    interface at an ifIndex another ifName than last heard for it (another ifDescr, where one
    side has no ifName: a device that renumbers its ifIndexes at a reboot, or a renamed port)
    makes it another port: the old one's open alerts resolve saying so, and the new one counts
    once seen up (or at once, for a linkDown). A poll reading taken
    before the latest word about the interface (a trap that came in while the poll was in
    flight) is stale and ignored.
``DeviceRestarted`` (warning)
    coldStart / warmStart (``.5.1`` / ``.5.2``) fire, and :meth:`TrapRules.tick` resolves the
    event ``restart_hold`` seconds later (another restart trap meanwhile extends it). One still
    firing before a restart comes back through :meth:`TrapRules.restore` and resolves
    ``restart_hold`` after it fired (at once if that has passed); enterprise alarms likewise.
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

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collectors.sample import Sample
from collectors.trap import COLD_START, LINK_DOWN, LINK_UP, WARM_START, Trap
from detectors.event import Event, EventState, Severity
from detectors.state import ConditionTracker, FlapDamping

__all__ = [
    "DETECTOR_LINK_POLL",
    "DETECTOR_TRAP",
    "DEVICE_RESTARTED",
    "INTERFACE_DOWN",
    "LINK_STATE_VERSION",
    "SUBSCRIBER_LINE_TYPES",
    "EnterpriseRule",
    "TrapRules",
]

DETECTOR_TRAP = "snmp_trap"
DETECTOR_LINK_POLL = "link_state"  # InterfaceDown from polled ifOperStatus
# IANAifType of subscriber lines (adsl, radsl, sdsl, vdsl, shdsl, adsl2, adsl2plus, vdsl2): one
# customer's modem going off is no port down for the NOC, and no outage for the element's customers
SUBSCRIBER_LINE_TYPES = frozenset({94, 95, 96, 97, 169, 230, 238, 251})
_OPER_DOWN = frozenset({2, 6, 7})  # down, notPresent, lowerLayerDown (3 testing, 5 dormant: no opinion)
INTERFACE_DOWN = "InterfaceDown"
DEVICE_RESTARTED = "DeviceRestarted"
LINK_STATE_VERSION = 1  # of TrapRules.state_dict()

_IF_ENTRY = "1.3.6.1.2.1.2.2.1"
_IF_INDEX = _IF_ENTRY + ".1"
_IF_DESCR = _IF_ENTRY + ".2"
_IF_ADMIN_STATUS = _IF_ENTRY + ".7"
_IF_OPER_STATUS = _IF_ENTRY + ".8"
_IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
_NAME_KINDS = ("ifName", "ifDescr")
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
class _Link:
    """What is known of one interface, from traps and polls."""

    labels: Labels
    down: bool = False  # the latest word (trap or poll) says it is down
    armed: bool = False  # seen up, or a linkDown said it went down: a poll of "down" counts
    admin_down: bool = False  # ifAdminStatus 2: shut on purpose, nothing to alert
    heard_at: float = float("-inf")  # time of the latest word: an older poll reading is stale
    open: list[Labels] = field(default_factory=list)  # labels of its open InterfaceDown alert(s)
    names: dict[str, str] = field(default_factory=dict)  # "ifName" / "ifDescr" -> value last heard


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
    if_types : callable (element, ifIndex) -> IANAifType or None, optional
        The poller's cached ifType: polls and traps of subscriber lines
        (:data:`SUBSCRIBER_LINE_TYPES`) raise nothing.
    keep_firing_for : float
        Seconds an ``InterfaceDown`` stays firing after the port is back up (0: resolve at once).
    damping : FlapDamping or None
        Flap damping of ``InterfaceDown`` (default Cisco's); None = every flap is an event.
    """

    def __init__(
        self,
        *,
        restart_hold: float = 300.0,
        enterprise: Mapping[str, tuple[str, Severity | str] | EnterpriseRule] | None = None,
        if_names: Callable[[str, str], str | None] | None = None,
        if_types: Callable[[str, str], int | None] | None = None,
        keep_firing_for: float = 0.0,
        damping: FlapDamping | None = FlapDamping(),  # noqa: B008 (frozen dataclass)
    ) -> None:
        if restart_hold <= 0:
            raise ValueError("restart_hold must be > 0 seconds")
        self.restart_hold = restart_hold
        self.if_names = if_names
        self.if_types = if_types
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
        # InterfaceDown alerts without ifIndex still firing from before a restart (see restore)
        self._unindexed_down: set[Labels] = set()
        self._links: dict[tuple[str, str], _Link] = {}  # (element, ifIndex) -> what is known
        self._link_tracker: ConditionTracker[tuple[str, str]] = ConditionTracker(
            for_=0.0, keep_firing_for=keep_firing_for, damping=damping
        )

    def active(self) -> list[Event]:
        """The FIRING events not yet resolved."""
        return [a.event for a in self._active.values()]

    def update(self, trap: Trap) -> list[Event]:
        """The events one trap causes (FIRING, or RESOLVED for linkUp); [] if it means nothing."""
        if trap.trap_oid == LINK_DOWN:
            return self._link_trap(trap, down=True)
        if trap.trap_oid == LINK_UP:
            return self._link_trap(trap, down=False)
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

    def restore(
        self,
        firing: Sequence[Mapping[str, str]],
        now: float,
        fired_at: Sequence[float | None] | None = None,
    ) -> int:
        """Take back the alerts these rules raised that were still firing before a restart (their
        labels, e.g. from the alert store; ``fired_at[i]`` the time ``firing[i]`` fired, default
        ``now``), each under its own labels. Returns how many were taken back.

        ``InterfaceDown``: the port's next "up" -- polled or a linkUp -- resolves it (an alert
        from a linkDown without ifIndex is only remembered: a linkUp without one resolves it,
        and it is not counted). ``DeviceRestarted`` and enterprise alarms (a ``trapOID`` label):
        :meth:`tick` resolves them their hold after they fired (``restart_hold``, or the rule's
        ``resolve_after``; ``restart_hold`` for a trap OID no rule names any more), at once if
        that has passed; a repeat trap extends it as usual. Other alerts are skipped."""
        taken = 0
        for i, labels in enumerate(firing):
            at = fired_at[i] if fired_at is not None and i < len(fired_at) else None
            if labels.get("alertname") != INTERFACE_DOWN:
                taken += self._restore_held(labels, now, now if at is None else at)
                continue
            element, index = labels.get("element"), labels.get("ifIndex")
            if labels.get("alertname") == INTERFACE_DOWN and element and not index:
                self._unindexed_down.add(_labels(INTERFACE_DOWN, element, Severity.CRITICAL))
            if labels.get("alertname") != INTERFACE_DOWN or not element or not index:
                continue
            key = (element, index)
            link = self._link(key, lambda labels=labels: labels.get("ifName"))
            # under the alert's own labels (the port may be known by another name now), so the
            # port's next "up" resolves that fingerprint; the port keeps the name it is known by
            name = labels.get("ifName") or ""
            stored = _labels(INTERFACE_DOWN, element, Severity.CRITICAL, ifIndex=index, ifName=name)
            if stored in self._active:
                continue
            link.down, link.armed = True, True
            self._link_tracker.update(key, True, now)
            status = self._link_tracker.status(key)
            if status is not None and status.state is EventState.FIRING:
                summary = f"Interface {_interface(stored)} on {element} was down before a restart"
                since = now if at is None else at  # the alert keeps its start time
                self._link_fired(link, element, since, DETECTOR_LINK_POLL, "restored", summary, (), labels=stored)
                taken += 1
        return taken

    def _restore_held(self, labels: Mapping[str, str], now: float, fired_at: float) -> int:
        """Take back a self-resolving alert (DeviceRestarted, an enterprise alarm) under its labels,
        to resolve its hold after ``fired_at`` (at ``now`` if that has passed); 1 if taken."""
        alertname, element, trap_oid = labels.get("alertname"), labels.get("element"), labels.get("trapOID")
        if not alertname or not element:
            return 0
        if trap_oid:
            rule, _ = self._enterprise_rule(trap_oid)
            hold = self.restart_hold
            if rule is not None and rule.alertname == alertname and rule.resolve_after is not None:
                hold = rule.resolve_after
            summary = f"{alertname} on {element} (trap {trap_oid}), firing before a restart"
        elif alertname == DEVICE_RESTARTED:
            hold, summary = self.restart_hold, f"{element} restarted (before a restart of vigil)"
        else:
            return 0
        rest = sorted((k, v) for k, v in labels.items() if k not in ("alertname", "element"))
        key: Labels = (("alertname", alertname), ("element", element), *rest)
        if key in self._active:
            return 0
        try:
            severity = Severity(labels.get("severity", ""))
        except ValueError:
            severity = Severity.WARNING
        event = Event(
            name=alertname, element=element, state=EventState.FIRING, labels=key, detector=DETECTOR_TRAP,
            series=trap_oid or "restored", value=1.0, expected=0.0, band=(0.0, 0.0), score=1.0,
            active_at=fired_at, severity=severity, fired_at=fired_at, summary=summary,
        )  # fmt: skip
        self._active[key] = _Active(event, max(fired_at + hold, now))
        return 1

    def state_dict(self) -> dict[str, Any]:
        """What is known of each interface, JSON-able, for a restart (see :meth:`load_state_dict`).

        Kept: the interface's name, whether it was seen up ("armed"), down or shut. Not kept: the
        conditions and flap penalties; the alerts still firing come back through :meth:`restore`.
        """
        links = list(self._links.items())  # one C-level copy: safe against a concurrent observe()
        return {
            "version": LINK_STATE_VERSION,
            "links": [
                [element, index, _interface_name(link.labels), link.down, link.armed, link.admin_down,
                 dict(link.names)]  # fmt: skip
                for (element, index), link in links
            ],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> int:
        """Take back :meth:`state_dict`'s interfaces (before :meth:`restore`); returns how many.

        Raises
        ------
        ValueError
            Another version, or an entry that is not ``[element, ifIndex, ifName, down, armed,
            admin_down, {"ifName"|"ifDescr": name}]`` (the names may be missing); nothing is loaded
            then. An interface already known keeps its open alerts.
        """
        if not isinstance(state, Mapping) or state.get("version") != LINK_STATE_VERSION:
            version = state.get("version") if isinstance(state, Mapping) else None
            raise ValueError(f"link state version {version!r}, this code reads {LINK_STATE_VERSION}")
        entries = state.get("links")
        if not isinstance(entries, list):
            raise ValueError("link state: 'links' must be a list")
        loaded: dict[tuple[str, str], _Link] = {}
        for i, entry in enumerate(entries):
            ok = isinstance(entry, list) and len(entry) in (6, 7)
            ok = ok and all(isinstance(v, str) for v in entry[:3]) and all(isinstance(v, bool) for v in entry[3:6])
            names = entry[6] if ok and len(entry) == 7 else {}
            ok = ok and isinstance(names, dict)
            ok = ok and all(k in _NAME_KINDS and isinstance(v, str) and v for k, v in names.items())
            if not ok or not entry[0] or not entry[1]:
                raise ValueError(
                    f"link state: links[{i}] is not [element, ifIndex, ifName, down, armed, admin_down, {{names}}]"
                )
            element, index, name, down, armed, admin_down = entry[:6]
            labels = _labels(INTERFACE_DOWN, element, Severity.CRITICAL, ifIndex=index, ifName=name)
            link = _Link(labels, down=down, armed=armed, admin_down=admin_down, names=dict(names))
            live = self._links.get((element, index))
            if live is not None:
                link.open = live.open
            loaded[(element, index)] = link
        self._links.update(loaded)
        return len(loaded)

    def observe(self, samples: Sequence[Sample]) -> list[Event]:
        """Polled ``ifOperStatus`` / ``ifAdminStatus`` samples into the interfaces' link state."""
        seen: dict[tuple[str, str], dict[str, float]] = {}
        names: dict[tuple[str, str], str] = {}
        heard: dict[tuple[str, str], dict[str, str]] = {}  # the poll's ifName / ifDescr of the interface
        latest: dict[tuple[str, str], float] = {}
        for s in samples:
            if s.metric not in ("ifOperStatus", "ifAdminStatus") or not math.isfinite(s.value):
                continue
            labels = dict(s.labels)
            index = labels.get("ifIndex")
            if not index:
                continue
            key = (s.element, index)
            seen.setdefault(key, {})[s.metric] = s.value
            names[key] = labels.get("ifName") or labels.get("ifDescr") or ""
            heard.setdefault(key, {}).update({k: v for k in _NAME_KINDS if (v := labels.get(k))})
            latest[key] = max(latest.get(key, s.timestamp), s.timestamp)
        events: list[Event] = []
        for key, values in seen.items():
            known = self._links.get(key)
            if known is not None and latest[key] < known.heard_at:  # read before a newer trap: stale
                continue
            if known is not None and self._renumbered(known, heard[key]):
                events += self._forget_link(key, known, names[key], latest[key])
            if self._subscriber_line(key):
                events += self._drop_subscriber_line(key, latest[key])
                continue
            link = self._link(key, lambda k=key: self._if_name_of(k, names[k]))
            link.names.update(heard[key])
            link.heard_at = latest[key]
            if "ifAdminStatus" in values:
                link.admin_down = int(values["ifAdminStatus"]) == 2
            oper = values.get("ifOperStatus")
            if oper is not None and int(oper) == 1:
                link.down, link.armed = False, True
            elif oper is not None and int(oper) in _OPER_DOWN:
                link.down = True
            how = "ifAdminStatus" if oper is None else f"ifOperStatus {oper:g}"
            events += self._step(key, link, latest[key], DETECTOR_LINK_POLL, "ifOperStatus", how, ())
        return events

    def tick(self, now: float) -> list[Event]:
        """RESOLVED events for self-resolving conditions and links back up, whose time has come."""
        events = []
        for labels, active in list(self._active.items()):
            if active.resolve_at is not None and active.resolve_at <= now:
                del self._active[labels]
                events.append(self._resolved(active.event, active.resolve_at, active.event.summary))
        for key in list(self._link_tracker):
            link = self._links.get(key)
            if link is not None and not self._link_active(link):
                events += self._step(key, link, now, "", "", "", ())
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

    def _link_trap(self, trap: Trap, *, down: bool) -> list[Event]:
        if_index = _if_index(trap)
        what = "linkDown" if down else "linkUp"
        if if_index is None:  # no interface to keep state for: fire / resolve as the trap says
            labels = _labels(INTERFACE_DOWN, trap.source, Severity.CRITICAL)
            if down:
                summary = f"Interface (no ifIndex in the trap) on {trap.source} went down ({what} trap)"
                return self._fire(trap, labels, Severity.CRITICAL, what, summary, None)
            return self._up_without_if_index(trap, labels)
        key = (trap.source, if_index)
        if self._subscriber_line(key):  # a customer's modem going off: no port down for the NOC
            return self._drop_subscriber_line(key, trap.received_at)
        events: list[Event] = []
        previous = self._links.get(key)
        named = {
            kind: v for kind, column in zip(_NAME_KINDS, (_IF_NAME, _IF_DESCR), strict=True)
            if isinstance(v := trap.value(f"{column}.{if_index}"), str) and v
        }  # fmt: skip
        fresh_name: str | None = None
        if previous is not None and self._renumbered(previous, named):  # the trap names another port
            # named by the trap itself: the poller's cached name is the old port's until its refresh
            fresh_name = named.get("ifName") or named.get("ifDescr")
            events += self._forget_link(key, previous, fresh_name or "", trap.received_at)
        known = key in self._links
        link = self._link(key, lambda: fresh_name or self._if_name(trap, if_index))
        link.names.update(named)
        tracked = self._link_tracker.status(key) is not None
        last_down = link.down or not known  # what vigil last heard (nothing: it may have been down)
        link.down, link.armed = down, True
        link.heard_at = max(link.heard_at, trap.received_at)
        admin = trap.value(f"{_IF_ADMIN_STATUS}.{if_index}")
        if isinstance(admin, int) and not isinstance(admin, bool):  # linkDown/linkUp carry it (RFC 2863)
            link.admin_down = admin == 2
        annotations = self._annotations(trap)
        events += self._step(key, link, trap.received_at, DETECTOR_TRAP, what, f"{what} trap", annotations)
        if not down and not tracked and last_down:
            # down, yet nothing firing here: vigil may have restarted since the linkDown (polls
            # since then saw the port down but never up), so say RESOLVED for whatever is open
            return events + self._unknown_up(trap, link.labels, _interface(link.labels))
        return events

    @staticmethod
    def _renumbered(link: _Link, heard: Mapping[str, str]) -> bool:
        """A poll or trap gives the interface at this ifIndex another name than the one last heard
        for it: another port (a device that renumbers its ifIndexes at a reboot) or a renamed one.
        The ifName decides (unique per device, RFC 2863); the ifDescr (often generic, and
        reworded by firmware) only when one side has no ifName. Names of one kind are compared
        with names of the same kind only: a trap with just ifDescr after a poll with ifName is no
        contradiction."""
        for kind in _NAME_KINDS:
            if kind in heard and kind in link.names:
                return heard[kind] != link.names[kind]
        if not link.names and len(heard) == len(_NAME_KINDS):
            # known only by its label (an alert taken back after a restart, an entry saved without
            # names), which may be an ifName or an ifDescr: another port if it is neither
            label = _interface_name(link.labels)
            return bool(label) and label not in heard.values()
        return False

    def _forget_link(self, key: tuple[str, str], link: _Link, polled: str, at: float) -> list[Event]:
        """Drop what was known of the interface that was at ``key``; its open alert resolves."""
        del self._links[key]
        self._link_tracker.forget(key)
        summary = (f"Interface {_interface(link.labels)} on {key[0]}: ifIndex {key[1]} is now {polled!r} "
                   "(renumbered or renamed); the port is watched under its new name")  # fmt: skip
        return self._resolve_open(link, at, summary)

    def _subscriber_line(self, key: tuple[str, str]) -> bool:
        return self.if_types is not None and self.if_types(*key) in SUBSCRIBER_LINE_TYPES

    def _drop_subscriber_line(self, key: tuple[str, str], at: float) -> list[Event]:
        """A subscriber line is not watched: forget it, resolving an alert it raised before its
        ifType was known."""
        link = self._links.pop(key, None)
        if link is None:
            return []
        self._link_tracker.forget(key)
        return self._resolve_open(link, at, f"Interface {_interface(link.labels)} on {key[0]} is a subscriber "
                                            "line: not watched (a customer's modem, not a port down)")  # fmt: skip

    def _resolve_open(self, link: _Link, at: float, summary: str) -> list[Event]:
        """RESOLVED events of the link's open alerts (one, or several taken back after a restart)."""
        events = []
        for labels in link.open:
            active = self._active.pop(labels, None)
            if active is not None:
                events.append(self._resolved(active.event, at, summary))
        link.open.clear()
        return events

    def _link(self, key: tuple[str, str], name: Callable[[], str | None]) -> _Link:
        link = self._links.get(key)
        if link is None:
            labels = _labels(INTERFACE_DOWN, key[0], Severity.CRITICAL, ifIndex=key[1], ifName=name() or "")
            link = self._links[key] = _Link(labels)
        return link

    def _if_name_of(self, key: tuple[str, str], polled: str) -> str | None:
        cached = self.if_names(*key) if self.if_names is not None else None
        return cached or polled or None

    @staticmethod
    def _link_active(link: _Link) -> bool:
        return link.down and link.armed and not link.admin_down

    def _step(
        self,
        key: tuple[str, str],
        link: _Link,
        at: float,
        detector: str,
        series: str,
        how: str,
        annotations: tuple[tuple[str, str], ...],
    ) -> list[Event]:
        """Feed the interface's condition to its tracker; the FIRING / RESOLVED event, if any."""
        transition = self._link_tracker.update(key, self._link_active(link), at)
        interface = _interface(link.labels)
        if transition is EventState.FIRING:
            summary = f"Interface {interface} on {key[0]} went down ({how})"
            return [self._link_fired(link, key[0], at, detector, series, summary, annotations)]
        if transition is EventState.RESOLVED:
            why = "administratively down" if link.admin_down else "up again"
            return self._resolve_open(link, at, f"Interface {interface} on {key[0]} is {why}")
        status = self._link_tracker.status(key)
        if status is not None and status.state is EventState.RESOLVED:
            self._link_tracker.update(key, False, at)  # let the tracker drop it
        return []

    def _link_fired(
        self,
        link: _Link,
        element: str,
        at: float,
        detector: str,
        series: str,
        summary: str,
        annotations: tuple[tuple[str, str], ...],
        labels: Labels | None = None,
    ) -> Event:
        """The FIRING ``InterfaceDown`` of ``link`` (under ``labels``, default its own), remembered as open."""
        labels = link.labels if labels is None else labels
        event = Event(
            name=INTERFACE_DOWN, element=element, state=EventState.FIRING, labels=labels,
            detector=detector, series=series, value=1.0, expected=0.0, band=(0.0, 0.0), score=1.0,
            active_at=at, severity=Severity.CRITICAL, fired_at=at, summary=summary, annotations=annotations,
        )  # fmt: skip
        self._active[labels] = _Active(event, None)
        if labels not in link.open:
            link.open.append(labels)
        return event

    def _up_without_if_index(self, trap: Trap, labels: Labels) -> list[Event]:
        """A linkUp naming no interface resolves the element's linkDown that named none, if one is
        open (fired here, or firing before a restart); otherwise there is nothing to resolve."""
        if labels in self._active or labels in self._unindexed_down:
            self._unindexed_down.discard(labels)
            return self._unknown_up(trap, labels, "(no ifIndex in the trap)")
        return []

    def _unknown_up(self, trap: Trap, labels: Labels, interface: str) -> list[Event]:
        summary = f"Interface {interface} on {trap.source} is up again (linkUp trap)"
        active = self._active.pop(labels, None)
        if active is not None:
            return [self._resolved(active.event, trap.received_at, summary)]
        unknown = self._event(trap, labels, Severity.CRITICAL, "linkUp", summary, EventState.FIRING)
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
    def _annotations(trap: Trap) -> tuple[tuple[str, str], ...]:
        annotations = [("trap_oid", trap.trap_oid), ("source", f"{trap.address}:{trap.port}")]
        if trap.uptime is not None:
            annotations.append(("sys_uptime_cs", str(trap.uptime)))
        return tuple(annotations)

    @classmethod
    def _event(
        cls,
        trap: Trap,
        labels: Labels,
        severity: Severity,
        series: str,
        summary: str,
        state: EventState,
    ) -> Event:
        annotations = cls._annotations(trap)
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
            annotations=annotations,
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


def _interface(labels: Labels) -> str:
    d = dict(labels)
    name, index = d.get("ifName"), d.get("ifIndex")
    if index is None:
        return "(no ifIndex in the trap)"
    return f"{name} (ifIndex {index})" if name else f"ifIndex {index}"


def _interface_name(labels: Labels) -> str:
    return dict(labels).get("ifName", "")


def _if_index(trap: Trap) -> str | None:
    """The interface a link trap is about: its ifIndex varbind, else the index of ifOperStatus."""
    for column in (_IF_INDEX, _IF_OPER_STATUS, _IF_ADMIN_STATUS):
        for suffix, value in trap.values_under(column):
            if column == _IF_INDEX and isinstance(value, int):
                return str(value)
            if suffix.isdigit():
                return suffix
    return None
