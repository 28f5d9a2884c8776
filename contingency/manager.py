"""Runs contingency plans: events in; tickets, banners, scripts and customer SMS out.

A FIRING event on element E opens incident ``E`` (or joins the open one); its plan is
snapshotted and run as a table of steps, each leaving an audit record. Outage SMS wait for the
hold-down; the incident resolves when every event attached to it has resolved.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
import uuid
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, sessionmaker

from config.models import ContingencyConfig
from contingency.errors import (
    IncidentNotOpenError,
    UnknownElementError,
)
from contingency.maintenance import MaintenanceLookup, MaintenanceWindow
from contingency.outbox import SmsOutbox, error_code
from contingency.plan import Plan, PlannedCustomer, build_plan
from contingency.scripts import (
    AreaView,
    IncidentView,
    banner_text,
    preference_reply,
    render_script,
    render_sms,
    sms_segments,
)
from contingency.sms import SmsSink
from contingency.store import (
    OPTED_OUT_ERROR,
    BannerRecord,
    IncidentRecord,
    IncidentStatus,
    IncidentStep,
    SmsDelivery,
    SmsMessage,
    SmsPreference,
    SmsStatus,
    StepKind,
    StepStatus,
    TicketEvent,
    TicketRecord,
    TicketStatus,
    plan_summary,
)
from contingency.topology import Topology, normalize_phone
from detectors.event import Event, EventState

__all__ = ["ContingencyManager", "StepHandler", "StepOutcome"]

log = logging.getLogger(__name__)

_CST = timezone(timedelta(hours=8), "CST")  # ticket numbers follow the operator's local day


class _CallerIndex(NamedTuple):
    """Who an open incident covers, by normalised phone (built once, see ``_callers_of``)."""

    by_phone: dict[str, PlannedCustomer]
    areas: dict[str, AreaView]
    maintenance: bool  # the plan has a maintenance window: read its current state per lookup


class StepOutcome(NamedTuple):
    """What a step did: TRIGGERED or SKIPPED, and a one-line detail for the audit."""

    status: StepStatus
    detail: str


StepHandler = Callable[[Session, IncidentRecord, Plan, float], StepOutcome]


def _elements_of(incident: IncidentRecord) -> dict[str, str]:
    """fingerprint -> element of the incident's events (its own element where not recorded)."""
    recorded = incident.event_elements or {}
    return {fp: recorded.get(fp, incident.element) for fp in incident.fingerprints}


def _iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC (``...Z``), None stays None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


class _Metrics:
    """Self-metrics; no-ops when no registry is given."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.enabled = registry is not None
        if registry is None:
            return
        self.open = Gauge(
            "vigil_incidents_open", "Contingency incidents currently open", registry=registry
        )
        self.sms = Counter(
            "vigil_sms", "Customer SMS by kind and result", ["kind", "result"], registry=registry
        )
        self.inbound = Counter(
            "vigil_sms_inbound", "Texts from customers by what they asked (stop, start, ignored)",
            ["action"], registry=registry,
        )
        self.delivery = Counter(
            "vigil_sms_delivery_reports",
            "Delivery reports from the SMS gateway, by what they say (repeats counted too)",
            ["status"], registry=registry,
        )
        self.affected = Gauge(
            "vigil_customers_affected",
            "Customers under an open incident, by area (planned: inside a maintenance window)",
            ["area", "planned"],
            registry=registry,
        )
        self.steps = Counter(
            "vigil_contingency_steps",
            "Contingency plan steps by kind and status",
            ["step", "status"],
            registry=registry,
        )

    def sms_result(self, kind: str, result: str, n: int = 1) -> None:
        if self.enabled and n:
            self.sms.labels(kind=kind, result=result).inc(n)

    def inbound_action(self, action: str) -> None:
        if self.enabled:
            self.inbound.labels(action=action).inc()

    def delivery_report(self, status: str) -> None:
        if self.enabled:
            self.delivery.labels(status=status).inc()

    def step(self, kind: StepKind, status: StepStatus) -> None:
        if self.enabled:
            self.steps.labels(step=kind.value, status=status.value).inc()

    def set_open(self, n: int) -> None:
        if self.enabled:
            self.open.set(n)

    def set_affected(self, areas: list[str], counts: Tally[tuple[str, bool]]) -> None:
        if self.enabled:
            for area in sorted(set(areas) | {a for a, _ in counts}):
                for planned in (False, True):
                    self.affected.labels(area=area, planned=str(planned).lower()).set(counts[area, planned])


_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
_STOP_WORDS = frozenset({"TD", "0000", "STOP", "UNSUBSCRIBE", "退订"})
_START_WORDS = frozenset({"KT", "START", "开通", "订阅"})


def _keyword(text: str) -> str:
    """A customer's reply as a keyword: full-width letters as typed on a Chinese keyboard
    ("ＴＤ") folded to ASCII (NFKC), upper case, without spaces or punctuation ("退订。", "TD!")."""
    folded = unicodedata.normalize("NFKC", text).upper()
    return "".join(ch for ch in folded if not (ch.isspace() or unicodedata.category(ch).startswith("P")))


_PLANNED_TAG = "[planned maintenance] "  # title prefix of an incident inside a maintenance window
_OVERRUN_TAG = "[maintenance overrun] "  # ... once the window is over and the fault persists


class ContingencyManager:
    """Opens, runs and resolves incidents from detector events; sends due customer SMS."""

    def __init__(
        self,
        sessions: sessionmaker,
        topology: Topology,
        config: ContingencyConfig,
        sink: SmsSink,
        *,
        clock: Callable[[], float],
        registry: CollectorRegistry | None = None,
        maintenance: MaintenanceLookup | None = None,
    ) -> None:
        self._sessions = sessions
        self._maintenance = maintenance
        self._topology = topology
        self._config = config
        self._unknown_logged: set[str] = set()
        self._sink = sink
        self._clock = clock
        self._metrics = _Metrics(registry)
        self._outbox = SmsOutbox(sessions, sink, on_result=self._metrics.sms_result, audit=self._audit)
        # handle() and tick() may run on different scheduler threads; one at a time through the
        # state transitions (never held while texts are sent: see tick())
        self._lock = threading.RLock()
        # caller lookups (web threads) read a per-incident phone index; its own small lock
        self._caller_index: dict[int, _CallerIndex] = {}
        self._summaries: dict[int, dict[str, Any]] = {}  # closed incidents stored without plan_summary
        self._pending_splits: list[int] = []  # incidents split off by a resolve, their steps still to run
        self._index_lock = threading.Lock()
        self.open_steps: dict[StepKind, StepHandler] = {
            StepKind.OPEN_TICKET: self._open_ticket,
            StepKind.ACTIVATE_BANNER: self._activate_banners,
            StepKind.QUEUE_SMS: self._queue_outage_sms,
        }
        # order matters: cancel unsent outage SMS before choosing who gets "restored",
        # close the ticket last so its timeline holds the final SMS counts
        self.resolve_steps: dict[StepKind, StepHandler] = {
            StepKind.CANCEL_SMS: self._cancel_outage_sms,
            StepKind.QUEUE_RESTORED_SMS: self._queue_restored_sms,
            StepKind.CLEAR_BANNER: self._clear_banners,
            StepKind.CLOSE_TICKET: self._close_ticket,
        }
        self._refresh_gauge()

    # ------------------------------------------------------------------ events

    def handle(self, events: Sequence[Event]) -> None:
        """Open, join or resolve incidents for FIRING / RESOLVED events; ignore PENDING ones.

        Only customer-affecting events count: severity at least ``config.min_severity``, and
        no predictions (events with an ETA) unless ``config.act_on_predictions``.
        """
        with self._lock:
            for event in events:
                if not self._acts_on(event):
                    continue
                if event.state is EventState.FIRING:
                    self._on_firing(event)
                elif event.state is EventState.RESOLVED:
                    self._on_resolved(event)
            self._refresh_gauge()

    def _acts_on(self, event: Event) -> bool:
        try:
            self._topology.element(event.element)
        except UnknownElementError:
            # e.g. a trap from an address no element has: the NOC gets the alert, but there are no
            # customers to map it to, so there is no proactive ticket, banner or SMS
            if event.element not in self._unknown_logged:
                self._unknown_logged.add(event.element)
                log.warning("events on %s ignored: element unknown to the topology", event.element)
            return False
        if _SEVERITY_RANK.get(str(event.severity), 0) < _SEVERITY_RANK[self._config.min_severity]:
            return False
        return event.eta is None or self._config.act_on_predictions

    def _on_firing(self, event: Event) -> None:
        now = self._clock()
        if self._attach(event, now):
            return
        cause = event.summary or event.name
        labels = dict(event.labels)
        window = self._window(labels)
        if window is not None and window.ends_at <= now:
            window = None
        plan = build_plan(self._topology, self._config, event.element, cause, labels=labels, maintenance=window)
        title = (
            (_PLANNED_TAG if window is not None else "")
            + f"{event.name} on {event.element}: {len(plan.areas)} area(s), "
            f"{len(plan.customers)} customer(s) affected"
        )
        try:
            with self._sessions.begin() as session:
                incident = IncidentRecord(
                    key=event.element,
                    open_key=event.element,
                    element=event.element,
                    status=IncidentStatus.OPEN.value,
                    title=title,
                    areas=[a.id for a in plan.areas],
                    plan=plan.to_json(),
                    fingerprints={event.fingerprint: EventState.FIRING.value},
                    event_elements={event.fingerprint: event.element},
                    opened_at=now,
                )
                session.add(incident)
                session.flush()
                incident_id = incident.id
        except IntegrityError:
            # another process opened it between our check and insert: join that one
            self._attach(event, now)
            return
        log.info(
            "incident opened",
            extra={"incident": event.element, "incident_id": incident_id,
                   "areas": len(plan.areas), "customers": len(plan.customers)},
        )
        if not plan.known_element:
            log.warning("incident on element unknown to the topology: %s", event.element)
        absorbed = self._absorb_below(incident_id, event.element, now)
        self._run_steps(incident_id, event.element, self.open_steps)
        if absorbed:
            with self._sessions.begin() as session:
                for element, number in absorbed:
                    self._timeline(session, incident_id, now,
                                   f"absorbed the open incident on {element} below"
                                   f" (ticket {number or 'none'}): its texts count here")

    def _absorb_below(self, incident_id: int, element: str, now: float) -> list[tuple[str, str | None]]:
        """Merge the open incidents of elements below ``element`` into its new incident, before
        its steps run: their fingerprints (it resolves when they all do), their customers' outage
        texts (nobody is texted twice, and "restored" reaches them from here); their banners are
        cleared and their tickets closed as merged. Returns (element, ticket number) of each."""
        try:
            below = self._topology.descendants(element) - {element}
        except UnknownElementError:
            return []
        if not below:
            return []
        merged: list[tuple[str, str | None]] = []
        with self._sessions.begin() as session:
            parent = session.get_one(IncidentRecord, incident_id)
            children = list(session.scalars(select(IncidentRecord).where(IncidentRecord.open_key.in_(below))))
            parent_due = self._outage_due(session, parent, Plan.from_json(parent.plan), now) if children else now
            for child in children:
                parent.event_elements = {**_elements_of(child), **_elements_of(parent)}
                parent.fingerprints = {**child.fingerprints, **parent.fingerprints}
                # every outage text, whatever became of it (a failed one may have been delivered):
                # the parent's queue step then texts only those nobody tried to tell; the ones
                # still waiting go when the parent's would (an unplanned fault above a planned one
                # does not wait for the planned window's end)
                session.execute(
                    update(SmsMessage)
                    .where(SmsMessage.incident_id == child.id, SmsMessage.kind == "outage")
                    .values(incident_id=parent.id)
                )
                session.execute(
                    update(SmsMessage)
                    .where(SmsMessage.incident_id == parent.id, SmsMessage.kind == "outage",
                           SmsMessage.status == SmsStatus.QUEUED.value, SmsMessage.due_at > parent_due)
                    .values(due_at=parent_due)
                )
                session.execute(
                    update(BannerRecord)
                    .where(BannerRecord.incident_id == child.id, BannerRecord.active.is_(True))
                    .values(active=False, cleared_at=now)
                )
                child.status = IncidentStatus.MERGED.value
                child.open_key = None
                child.resolved_at = now
                ticket = self._ticket(session, child.id)
                if ticket is not None:
                    self._timeline(session, child.id, now,
                                   f"merged into the incident on {element} (a fault above this element)")
                    ticket.status = TicketStatus.CLOSED.value
                    ticket.closed_at = now
                merged.append((child.element, ticket.number if ticket is not None else None))
                log.info("incident merged", extra={"incident": child.key, "incident_id": child.id,
                                                   "into": element})
        return merged

    def _window(self, labels: dict[str, str]) -> MaintenanceWindow | None:
        """The maintenance window covering these labels now; None if none (or the lookup failed:
        customers are then texted as for any fault, rather than left in the dark)."""
        if self._maintenance is None:
            return None
        try:
            return self._maintenance(labels)
        except Exception:
            log.exception("maintenance window lookup failed for %s: treating the fault as unplanned", labels)
            return None

    def _open_for(self, session: Session, element: str) -> IncidentRecord | None:
        """The open incident of ``element`` or, failing that, of the nearest element above it:
        a fault below a failed element is part of that fault (one ticket, one text per customer)."""
        for name in (element, *self._topology.ancestors(element)):
            incident = self._open_incident(session, name)
            if incident is not None:
                return incident
        return None

    def _attach(self, event: Event, now: float) -> bool:
        """Join ``event`` to the open incident of its element or of an element above it; False if
        there is none."""
        with self._sessions.begin() as session:
            incident = self._open_for(session, event.element)
            if incident is None:
                return False
            fingerprints = dict(incident.fingerprints)
            previous = fingerprints.get(event.fingerprint)
            if previous == EventState.FIRING.value:
                return True  # a repeat of a state we already know: nothing to record
            fingerprints[event.fingerprint] = EventState.FIRING.value
            incident.fingerprints = fingerprints
            incident.event_elements = {**_elements_of(incident), event.fingerprint: event.element}
            verb = "attached" if previous is None else "firing again"
            below = f" (below {incident.element})" if incident.element != event.element else ""
            self._timeline(
                session, incident.id, now,
                f"event {verb}: {event.name} on {event.element}{below} [{event.fingerprint}]"
                + (f" - {event.summary}" if event.summary else ""),
            )
            return True

    def _on_resolved(self, event: Event) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
            incident = next(
                (inc for name in (event.element, *self._topology.ancestors(event.element))
                 if (inc := self._open_incident(session, name)) is not None
                 and event.fingerprint in inc.fingerprints),
                None,
            )
            if incident is None:
                return
            fingerprints = dict(incident.fingerprints)
            if fingerprints[event.fingerprint] == EventState.RESOLVED.value:
                return
            fingerprints[event.fingerprint] = EventState.RESOLVED.value
            incident.fingerprints = fingerprints
            self._timeline(
                session, incident.id, now,
                f"event resolved: {event.name} on {event.element} [{event.fingerprint}]",
            )
            firing = [fp for fp, state in fingerprints.items() if state != EventState.RESOLVED.value]
            elements = _elements_of(incident)
            if firing and any(elements.get(fp, incident.element) == incident.element for fp in firing):
                return  # the incident's own element is still faulty
            if firing:  # only faults below remain: they go on as incidents of their own
                self._split_below(session, incident, {fp: elements[fp] for fp in firing}, now)
            incident.status = IncidentStatus.RESOLVED.value
            incident.open_key = None
            incident.resolved_at = now
            incident_id, key = incident.id, incident.key
        log.info("incident resolved", extra={"incident": key, "incident_id": incident_id})
        splits, self._pending_splits = self._pending_splits, []
        for child_id in splits:  # the incidents that go on below: ticket and banners of their own
            with self._sessions() as session:
                child_key = session.get_one(IncidentRecord, child_id).key
            self._run_steps(child_id, child_key, self.open_steps)
        self._run_steps(incident_id, key, self.resolve_steps)

    def _split_below(
        self, session: Session, incident: IncidentRecord, firing: dict[str, str], now: float
    ) -> None:
        """The incident's own element recovered but faults below it go on: each goes on as an
        incident of its own element (the highest one of each branch), taking its events and its
        customers' outage texts, so those customers get "restored" when *their* fault is over and
        the others get it now. Its steps (ticket, banners; the texts exist already) run after."""
        by_element: dict[str, list[str]] = {}
        for fp, element in firing.items():
            top = next((a for a in reversed(self._topology.ancestors(element)) if a in set(firing.values())), element)
            by_element.setdefault(top, []).append(fp)
        fingerprints = dict(incident.fingerprints)
        for element, fps in sorted(by_element.items()):
            labels = {"element": element}
            # planned works there (a window on the element) stay planned: texts held, amber banner
            window = self._window(labels)
            if window is not None and window.ends_at <= now:
                window = None
            plan = build_plan(self._topology, self._config, element,
                              f"still faulty after {incident.element} recovered", labels=labels, maintenance=window)
            child = IncidentRecord(
                key=element, open_key=element, element=element, status=IncidentStatus.OPEN.value,
                title=(_PLANNED_TAG if window is not None else "")
                + f"{element}: still faulty after {incident.element} recovered, "
                f"{len(plan.customers)} customer(s) affected",
                areas=[a.id for a in plan.areas], plan=plan.to_json(),
                fingerprints={fp: EventState.FIRING.value for fp in fps},
                event_elements={fp: firing[fp] for fp in fps}, opened_at=now,
            )
            session.add(child)
            session.flush()
            keys = [normalize_phone(c.phone) for c in plan.customers]
            for chunk in range(0, len(keys), 500):
                session.execute(
                    update(SmsMessage)
                    .where(SmsMessage.incident_id == incident.id, SmsMessage.kind == "outage",
                           SmsMessage.phone_key.in_(keys[chunk:chunk + 500]))
                    .values(incident_id=child.id)
                    .execution_options(synchronize_session=False)
                )
            queued = (SmsMessage.incident_id == child.id, SmsMessage.kind == "outage",
                      SmsMessage.status == SmsStatus.QUEUED.value)
            if window is not None:  # held for this element's own works, cancelled if it clears first
                session.execute(update(SmsMessage).where(*queued, SmsMessage.due_at < window.ends_at)
                                .values(due_at=self._outage_due(session, child, plan, now))
                                .execution_options(synchronize_session=False))
            else:  # texts still held (planned works above, now over) go when this fault's own would
                session.execute(update(SmsMessage).where(*queued, SmsMessage.due_at > now + plan.hold_down)
                                .values(due_at=now + plan.hold_down)
                                .execution_options(synchronize_session=False))
            for fp in fps:
                fingerprints.pop(fp, None)
            self._timeline(session, incident.id, now,
                           f"{element} is still faulty: its {len(plan.customers)} customer(s) go on "
                           f"under a new incident and are told when it is over")
            self._pending_splits.append(child.id)
            log.info("incident split", extra={"incident": incident.key, "continues_on": element})
        incident.fingerprints = fingerprints

    @staticmethod
    def _open_incident(session: Session, key: str) -> IncidentRecord | None:
        return session.scalar(select(IncidentRecord).where(IncidentRecord.open_key == key))

    # ------------------------------------------------------------------ steps

    def _run_steps(self, incident_id: int, key: str, steps: dict[StepKind, StepHandler]) -> None:
        """Run every step in its own transaction; a failure is audited and never stops the rest."""
        for kind, handler in steps.items():
            now = self._clock()
            try:
                with self._sessions.begin() as session:
                    incident = session.get_one(IncidentRecord, incident_id)
                    outcome = handler(session, incident, Plan.from_json(incident.plan), now)
            except Exception as err:  # operational failures are data: audit, go on
                log.exception("step %s of incident %s failed", kind.value, key)
                self._audit(incident_id, kind, StepStatus.FAILED, now,
                            error_code=error_code(err), error_message=str(err))
            else:
                self._audit(incident_id, kind, outcome.status, now, detail=outcome.detail)

    def _audit(
        self,
        incident_id: int,
        kind: StepKind,
        status: StepStatus,
        at: float,
        *,
        detail: str = "",
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        with self._sessions.begin() as session:
            session.add(IncidentStep(
                incident_id=incident_id, kind=kind.value, status=status.value, detail=detail,
                error_code=error_code, error_message=error_message, at=at,
            ))
        self._metrics.step(kind, status)

    def _ticket(self, session: Session, incident_id: int) -> TicketRecord | None:
        return session.scalar(select(TicketRecord).where(TicketRecord.incident_id == incident_id))

    def _timeline(self, session: Session, incident_id: int, at: float, text: str) -> None:
        """Append a line to the incident's ticket timeline (if its ticket exists)."""
        ticket = self._ticket(session, incident_id)
        if ticket is not None:
            session.add(TicketEvent(ticket_id=ticket.id, at=at, text=text))

    def _view(
        self, incident: IncidentRecord, plan: Plan, areas: tuple[AreaView, ...], ticket: str,
        customers: int, *, planned: bool = False,
    ) -> IncidentView:
        """What templates see. The ETA is the NOC's (``incident.eta``), else, for planned works
        (banners in a maintenance window), the window's end."""
        eta = incident.eta
        if eta is None and planned and plan.maintenance is not None:
            eta = plan.maintenance.ends_at
        return IncidentView(
            key=incident.key, element=incident.element, title=incident.title, areas=areas,
            since=incident.opened_at, ticket=ticket, eta=eta, customers=customers,
            cause=plan.cause, hotline=plan.sender, planned=planned,
        )

    def _open_ticket(
        self, session: Session, incident: IncidentRecord, plan: Plan, now: float
    ) -> StepOutcome:
        existing = self._ticket(session, incident.id)
        if existing is not None:
            return StepOutcome(StepStatus.TRIGGERED, f"ticket {existing.number} already open")
        prefix = "PT-" + datetime.fromtimestamp(now, UTC).astimezone(_CST).strftime("%Y%m%d") + "-"
        last = session.scalar(
            select(func.max(TicketRecord.number)).where(TicketRecord.number.like(prefix + "%"))
        )
        number = f"{prefix}{(int(last[len(prefix):]) if last else 0) + 1:04d}"
        area_names = ", ".join(f"{a.name} ({a.name_zh})" if a.name_zh else a.name
                               for a in plan.areas) or "none"
        body = (
            f"Proactive ticket for a fault on {incident.element} ({plan.cause}).\n"
            f"Affected areas: {area_names}\n"
            f"Affected customers: {len(plan.customers)}\n"
            f"Outage SMS after a hold-down of {plan.hold_down:g}s, sender {plan.sender}.\n"
        )
        if plan.maintenance is not None:
            m = plan.maintenance
            body += (
                f"Planned maintenance: window {m.id} until {_iso(m.ends_at)}"
                f" ({m.comment or 'no comment'}, by {m.created_by or 'unknown'}). Customers are texted only"
                " if the fault outlasts the window.\n"
            )
        ticket = TicketRecord(
            number=number, incident_id=incident.id,
            incident_key=f"{incident.key}#{incident.id}", status=TicketStatus.OPEN.value,
            title=incident.title, body=body, opened_at=now,
        )
        session.add(ticket)
        session.flush()
        session.add(TicketEvent(ticket_id=ticket.id, at=incident.opened_at,
                                text=f"opened: {incident.title}"))
        return StepOutcome(StepStatus.TRIGGERED, f"ticket {number}")

    def _activate_banners(
        self, session: Session, incident: IncidentRecord, plan: Plan, now: float
    ) -> StepOutcome:
        if not plan.areas:
            return StepOutcome(StepStatus.SKIPPED, "no affected areas")
        ticket = self._ticket(session, incident.id)
        number = ticket.number if ticket is not None else ""
        existing = set(session.scalars(
            select(BannerRecord.area_id).where(BannerRecord.incident_id == incident.id)
        ))
        per_area = Tally(c.area for c in plan.customers)
        made = 0
        for area in plan.areas:
            if area.id in existing:
                continue
            view = self._view(incident, plan, (area,), number, per_area[area.id], planned=plan.planned(now))
            session.add(BannerRecord(
                incident_id=incident.id, area_id=area.id,
                text_zh=banner_text("zh-CN", view), text_en=banner_text("en", view),
                script_zh=render_script("zh-CN", view), script_en=render_script("en", view),
                active=True, created_at=now,
            ))
            made += 1
        self._timeline(session, incident.id, now,
                       f"banners activated for {', '.join(a.id for a in plan.areas)}")
        return StepOutcome(StepStatus.TRIGGERED, f"{made} banner(s)")

    def _queue(
        self, session: Session, incident: IncidentRecord, plan: Plan, kind: str,
        phones: set[str] | None, now: float, due_at: float,
    ) -> int:
        """Queue one ``kind`` SMS per planned customer (restricted to ``phones``, normalised);
        idempotent: nobody gets a second ``kind`` text for the incident, whatever the spelling."""
        already = set(session.scalars(select(SmsMessage.phone_key).where(
            SmsMessage.incident_id == incident.id, SmsMessage.kind == kind)))
        stopped = set(session.scalars(select(SmsPreference.phone).where(SmsPreference.opted_out.is_(True))))
        texts: dict[tuple[str, str], str] = {}
        segments: dict[str, int] = {}
        rows: list[dict[str, Any]] = []
        opted_out = 0
        for customer in plan.customers:
            key = normalize_phone(customer.phone)
            if key in already or (phones is not None and key not in phones):
                continue
            if not customer.sms or key in stopped:
                opted_out += 1
                continue
            cache_key = (customer.area, customer.language)
            if cache_key not in texts:
                area = plan.area(customer.area) or AreaView(customer.area, customer.area)
                view = self._view(incident, plan, (area,), "", 0)
                texts[cache_key] = render_sms(kind, customer.language, view)  # type: ignore[arg-type]
            text = texts[cache_key]
            rows.append({
                "message_id": uuid.uuid4().hex, "incident_id": incident.id, "phone": customer.phone,
                "phone_key": key,
                "account": customer.account, "kind": kind, "text": text, "language": customer.language,
                "status": SmsStatus.QUEUED.value, "segments": segments.setdefault(text, sms_segments(text)),
                "attempts": 0, "queued_at": now, "due_at": due_at, "error": None, "sent_at": None,
            })
        if rows:  # one multi-row INSERT (Core): a hundred thousand texts in seconds, not minutes
            session.execute(insert(SmsMessage), rows)
        queued = len(rows)
        self._metrics.sms_result(kind, "queued", queued)
        self._metrics.sms_result(kind, "opted_out", opted_out)
        return queued

    def _queue_outage_sms(
        self, session: Session, incident: IncidentRecord, plan: Plan, now: float
    ) -> StepOutcome:
        if not plan.customers:
            return StepOutcome(StepStatus.SKIPPED, "no affected customers")
        due = self._outage_due(session, incident, plan, now)
        n = self._queue(session, incident, plan, "outage", None, now, due)
        return StepOutcome(StepStatus.TRIGGERED, f"{n} outage SMS queued, due at {_iso(due)}")

    def _outage_due(self, session: Session, incident: IncidentRecord, plan: Plan, now: float) -> float:
        """When the outage SMS go: after the hold-down, after a maintenance window, out of quiet hours."""
        due = incident.opened_at + plan.hold_down
        if plan.planned(now):
            m = plan.maintenance
            assert m is not None
            if m.ends_at > due:
                due = m.ends_at
                self._timeline(
                    session, incident.id, now,
                    f"outage SMS held for maintenance window {m.id} until {_iso(due)}"
                    " (cancelled if the fault clears first)",
                )
        quiet = plan.quiet()
        if quiet is not None and quiet.contains(due):
            due = quiet.defer(due)
            self._timeline(session, incident.id, now,
                           f"outage SMS held for quiet hours ({quiet.describe()}) until {_iso(due)}")
        return due

    def _follow_maintenance(self, now: float) -> None:
        """Follow the windows of open planned incidents: a moved end reschedules the held outage
        SMS; a window that is over with the fault still there makes the incident an outage (the
        banners say so, the SMS go after the hold-down)."""
        if self._maintenance is None:
            return
        with self._sessions() as session:
            rows = session.execute(select(IncidentRecord.id, IncidentRecord.plan).where(
                IncidentRecord.status == IncidentStatus.OPEN.value)).all()
        for incident_id, data in rows:
            if not data.get("maintenance") or data.get("maintenance_over"):
                continue
            try:
                self._follow_one(incident_id, Plan.from_json(data), now)
            except Exception:  # one incident must not stop the others nor the SMS ticks
                log.exception("following the maintenance window of incident %s failed", incident_id)

    def _follow_one(self, incident_id: int, plan: Plan, now: float) -> None:
        old = plan.maintenance
        assert old is not None
        window = self._window(dict(plan.labels))
        over = window is None or window.ends_at <= now
        if not over and window == old:
            return
        with self._sessions.begin() as session:
            incident = session.get_one(IncidentRecord, incident_id)
            if incident.status != IncidentStatus.OPEN.value:
                return
            data = dict(incident.plan)
            if over:
                data["maintenance_over"] = True
                text = (f"maintenance window {old.id} is over and the fault persists: this is an outage now")
                # the title agents and the NOC read (lookup, incident list, ticket) says so too
                incident.title = incident.title.replace(_PLANNED_TAG, _OVERRUN_TAG, 1)
                ticket = self._ticket(session, incident.id)
                if ticket is not None:
                    ticket.title = ticket.title.replace(_PLANNED_TAG, _OVERRUN_TAG, 1)
            else:
                assert window is not None
                data["maintenance"] = window.to_json()
                text = f"maintenance window {window.id} now ends at {_iso(window.ends_at)}"
            incident.plan = data
            new_plan = Plan.from_json(data)
            due = self._outage_due(session, incident, new_plan, now)
            queued = session.execute(
                update(SmsMessage)
                .where(SmsMessage.incident_id == incident.id, SmsMessage.kind == "outage",
                       SmsMessage.status == SmsStatus.QUEUED.value)
                .values(due_at=max(due, now))
            ).rowcount or 0  # type: ignore[attr-defined]
            if queued:
                text += f"; {queued} outage SMS due at {_iso(max(due, now))}"
            self._timeline(session, incident.id, now, text)
            # the planned wording becomes an outage's, or the expected end moves
            self._rerender_banners(session, incident, new_plan, now)
            key = incident.key
        log.info("maintenance window followed", extra={"incident": key, "incident_id": incident_id,
                                                       "over": over})
        self._refresh_gauge()

    def _rerender_banners(self, session: Session, incident: IncidentRecord, plan: Plan, now: float) -> None:
        """Active banners and scripts rendered again (the planned-works wording becomes an outage)."""
        ticket = self._ticket(session, incident.id)
        per_area = Tally(c.area for c in plan.customers)
        for row in session.scalars(select(BannerRecord).where(
                BannerRecord.incident_id == incident.id, BannerRecord.active.is_(True))):
            area = plan.area(row.area_id) or AreaView(row.area_id, row.area_id)
            view = self._view(incident, plan, (area,), ticket.number if ticket else "", per_area[area.id],
                              planned=plan.planned(now))
            row.text_zh, row.text_en = banner_text("zh-CN", view), banner_text("en", view)
            row.script_zh, row.script_en = render_script("zh-CN", view), render_script("en", view)

    def _cancel_outage_sms(
        self, session: Session, incident: IncidentRecord, plan: Plan, now: float
    ) -> StepOutcome:
        result = session.execute(
            update(SmsMessage)
            .where(SmsMessage.incident_id == incident.id, SmsMessage.kind == "outage",
                   SmsMessage.status == SmsStatus.QUEUED.value)
            .values(status=SmsStatus.CANCELLED.value, error="incident resolved before sending")
        )
        n = result.rowcount or 0  # type: ignore[attr-defined]
        self._metrics.sms_result("outage", "cancelled", n)
        if n == 0:
            return StepOutcome(StepStatus.SKIPPED, "no unsent outage SMS")
        return StepOutcome(StepStatus.TRIGGERED, f"{n} unsent outage SMS cancelled")

    def _queue_restored_sms(
        self, session: Session, incident: IncidentRecord, plan: Plan, now: float
    ) -> StepOutcome:
        texted = set(session.scalars(select(SmsMessage.phone_key).where(
            SmsMessage.incident_id == incident.id, SmsMessage.kind == "outage",
            SmsMessage.status == SmsStatus.SENT.value)))
        if not texted:
            return StepOutcome(StepStatus.SKIPPED, "nobody was texted about the outage")
        quiet = plan.quiet()
        due = now if quiet is None else quiet.defer(now)
        if quiet is not None and due != now:
            self._timeline(session, incident.id, now,
                           f"restored SMS held for quiet hours ({quiet.describe()}) until {_iso(due)}")
        n = self._queue(session, incident, plan, "restored", texted, now, due)
        return StepOutcome(StepStatus.TRIGGERED, f"{n} restored SMS queued, due at {_iso(due)}")

    def _clear_banners(
        self, session: Session, incident: IncidentRecord, plan: Plan, now: float
    ) -> StepOutcome:
        result = session.execute(
            update(BannerRecord)
            .where(BannerRecord.incident_id == incident.id, BannerRecord.active.is_(True))
            .values(active=False, cleared_at=now)
        )
        n = result.rowcount or 0  # type: ignore[attr-defined]
        if n == 0:
            return StepOutcome(StepStatus.SKIPPED, "no active banner")
        self._timeline(session, incident.id, now, f"{n} banner(s) cleared")
        return StepOutcome(StepStatus.TRIGGERED, f"{n} banner(s) cleared")

    def _close_ticket(
        self, session: Session, incident: IncidentRecord, plan: Plan, now: float
    ) -> StepOutcome:
        ticket = self._ticket(session, incident.id)
        if ticket is None:
            return StepOutcome(StepStatus.SKIPPED, "no ticket to close")
        if ticket.status == TicketStatus.CLOSED.value:
            return StepOutcome(StepStatus.TRIGGERED, f"ticket {ticket.number} already closed")
        counts = Tally(
            (kind, status) for kind, status in session.execute(
                select(SmsMessage.kind, SmsMessage.status)
                .where(SmsMessage.incident_id == incident.id)
            )
        )
        self._timeline(
            session, incident.id, now,
            f"sms: outage {counts['outage', 'sent']} sent, {counts['outage', 'failed']} failed, "
            f"{counts['outage', 'cancelled']} cancelled; restored "
            f"{counts['restored', 'queued']} queued",
        )
        resolved_at = incident.resolved_at if incident.resolved_at is not None else now
        self._timeline(
            session, incident.id, now,
            f"resolved after {_duration(resolved_at - incident.opened_at)}",
        )
        ticket.status = TicketStatus.CLOSED.value
        ticket.closed_at = now
        return StepOutcome(StepStatus.TRIGGERED, f"ticket {ticket.number} closed")

    # ------------------------------------------------------------------ sending

    def tick(self, *, budget: float = 1.0, batch: int = 200) -> int:
        """Send due SMS once each; retryable failures stay queued. Returns how many were sent.

        Sending is :class:`~contingency.outbox.SmsOutbox`'s: ``batch`` texts per claim, and no new
        claim after ``budget`` seconds, so a big outage's hundred thousand texts never hold the
        manager for minutes.

        The manager's lock covers only following the maintenance windows (state transitions),
        never the sends: the outbox claims its rows in a transaction of their own (queued ->
        sending, never taken twice) and sends outside any lock, so a gateway that hangs for its
        whole timeout per text never delays :meth:`handle` (new incidents, banners, resolves).
        """
        with self._lock:
            now = self._clock()
            self._follow_maintenance(now)
        sent_by_incident = self._outbox.send_due(now, budget=budget, batch=batch)
        for incident_id, n in sent_by_incident.items():
            self._audit(incident_id, StepKind.SEND_SMS, StepStatus.TRIGGERED, now,
                        detail=f"{n} SMS sent")
        if sent_by_incident:
            with self._lock:
                self._restore_late(now)
        return sum(sent_by_incident.values())

    def _restore_late(self, now: float) -> None:
        """Outage texts that were at the gateway while their incident resolved (sends run outside
        the lock) and went: their customers get "restored" too (queued once, as for the others)."""
        with self._sessions() as session:
            ids = list(session.scalars(
                select(SmsMessage.incident_id).distinct()
                .join(IncidentRecord, IncidentRecord.id == SmsMessage.incident_id)
                .where(SmsMessage.kind == "outage", SmsMessage.status == SmsStatus.SENT.value,
                       SmsMessage.sent_at == now, IncidentRecord.status == IncidentStatus.RESOLVED.value)))
        for incident_id in ids:
            try:
                with self._sessions.begin() as session:
                    incident = session.get_one(IncidentRecord, incident_id)
                    outcome = self._queue_restored_sms(session, incident, Plan.from_json(incident.plan), now)
            except Exception as err:  # audited; the other incidents go on
                log.exception("late restored SMS of incident %s failed", incident_id)
                self._audit(incident_id, StepKind.QUEUE_RESTORED_SMS, StepStatus.FAILED, now,
                            error_code=error_code(err), error_message=str(err))
            else:
                if outcome.detail.startswith("0 "):
                    continue
                self._audit(incident_id, StepKind.QUEUE_RESTORED_SMS, outcome.status, now,
                            detail=f"{outcome.detail} (outage texts sent as it resolved)")

    def _refresh_gauge(self) -> None:
        if not self._metrics.enabled:
            return
        now = self._clock()
        phones: dict[tuple[str, bool], set[str]] = {}
        with self._sessions() as session:
            ids = list(session.scalars(select(IncidentRecord.id).where(
                IncidentRecord.status == IncidentStatus.OPEN.value)))
            self._forget_closed(set(ids))
            for incident_id in ids:
                index = self._callers_of(session, incident_id)
                planned = index.maintenance and Plan.from_json(session.scalar(
                    select(IncidentRecord.plan).where(IncidentRecord.id == incident_id))).planned(now)
                for phone, c in index.by_phone.items():
                    phones.setdefault((c.area, planned), set()).add(phone)
        counts = Tally({key: len(v) for key, v in phones.items()})
        self._metrics.set_open(len(ids))
        self._metrics.set_affected([a.id for a in self._topology.areas], counts)

    # ------------------------------------------------------------------ the NOC's updates

    def set_eta(self, incident_id: int, eta: float | None, *, by: str, note: str = "") -> dict[str, Any]:
        """Set (or clear, with None) the expected restoration of an open incident.

        Hotline agents then tell callers the time: the banners and scripts say it, and so do the
        outage texts not sent yet (re-rendered); the ticket's timeline records who set it.
        Raises ``KeyError`` (no such incident), ``IncidentNotOpenError`` or ``ValueError`` (an ETA
        in the past, no author).
        """
        if not by.strip():
            raise ValueError("eta: say who sets it (by)")
        with self._lock:
            now = self._clock()
            if eta is not None and eta <= now:
                raise ValueError(f"eta {_iso(eta)} is not in the future (now {_iso(now)})")
            with self._sessions.begin() as session:
                incident = session.get(IncidentRecord, incident_id)
                if incident is None:
                    raise KeyError(incident_id)
                if incident.status != IncidentStatus.OPEN.value:
                    raise IncidentNotOpenError(f"incident {incident_id} is {incident.status}")
                incident.eta = eta
                plan = Plan.from_json(incident.plan)
                what = f"expected restoration {_iso(eta)}" if eta is not None else "expected restoration cleared"
                self._timeline(session, incident.id, now, f"{what} by {by}" + (f": {note}" if note else ""))
                self._rerender_banners(session, incident, plan, now)
                texts = self._rerender_queued(session, incident, plan)
            log.info("incident eta set", extra={"incident_id": incident_id, "eta": eta, "texts": texts})
        return next(i for i in self.list_incidents() if i["id"] == incident_id)

    def _rerender_queued(self, session: Session, incident: IncidentRecord, plan: Plan) -> int:
        """Unsent outage texts of the incident rendered again (the ETA changed)."""
        cache: dict[tuple[str, str], str] = {}
        n = 0
        area_of = {c.phone: c.area for c in plan.customers}
        for msg in session.scalars(select(SmsMessage).where(
                SmsMessage.incident_id == incident.id, SmsMessage.kind == "outage",
                SmsMessage.status == SmsStatus.QUEUED.value)):
            key = (area_of.get(msg.phone, ""), msg.language)
            if key not in cache:
                area = plan.area(key[0]) or AreaView(key[0], key[0])
                cache[key] = render_sms("outage", msg.language, self._view(incident, plan, (area,), "", 0))  # type: ignore[arg-type]
            msg.text, msg.segments = cache[key], sms_segments(cache[key])
            n += 1
        return n

    # ------------------------------------------------------------------ customers' replies

    def inbound_sms(self, sender: str, text: str) -> str | None:
        """A text from a customer (the gateway's mobile-originated message): "TD" (also 0000,
        STOP, 退订) stops outage texts to that number, "KT" (START, 开通) starts them again.
        Returns the confirmation to send back, or None for anything else (no reply, nothing
        stored). Unsent outage texts to a number that stops are cancelled."""
        keyword = _keyword(text)
        action = "stop" if keyword in _STOP_WORDS else "start" if keyword in _START_WORDS else None
        if action is None:
            self._metrics.inbound_action("ignored")
            return None
        phone = normalize_phone(sender)
        if not phone:
            raise ValueError(f"not a phone number: {sender!r}")
        now = self._clock()
        known = self._topology.customer_by_phone(phone)
        with self._sessions.begin() as session:
            row = session.get(SmsPreference, phone)
            if row is None:
                row = SmsPreference(phone=phone)
                session.add(row)
            row.opted_out, row.at, row.text = action == "stop", now, text[:160]
            cancelled = requeued = 0
            if action == "stop":
                queued = list(session.scalars(select(SmsMessage).where(
                    SmsMessage.kind == "outage", SmsMessage.status == SmsStatus.QUEUED.value,
                    SmsMessage.phone_key == phone)))
                for m in queued:
                    m.status, m.error = SmsStatus.CANCELLED.value, OPTED_OUT_ERROR
                cancelled = len(queued)
            else:
                requeued = self._resume_outage_sms(session, phone, now)
        self._metrics.inbound_action(action)
        if cancelled:
            self._metrics.sms_result("outage", "cancelled", cancelled)
        if requeued:
            self._metrics.sms_result("outage", "queued", requeued)
        log.info("customer sms preference", extra={"phone": phone, "action": action, "cancelled": cancelled,
                                                   "requeued": requeued})
        language = known.language if known is not None else self._config.default_language
        return preference_reply(action, language)

    def _resume_outage_sms(self, session: Session, phone: str, now: float) -> int:
        """A customer who opts back in ("KT") while an outage that affects them is open gets its
        text after all: the one their "TD" cancelled goes back in the queue (when it was due, or
        now; out of quiet hours), and one is queued if the outage began while they were opted
        out. Nobody gets a second outage text for one incident. Returns the texts queued."""
        open_ids = session.scalars(select(IncidentRecord.id).where(
            IncidentRecord.status == IncidentStatus.OPEN.value)).all()
        queued = 0
        for incident_id in open_ids:
            if phone not in self._callers_of(session, incident_id).by_phone:
                continue
            incident = session.get(IncidentRecord, incident_id)
            assert incident is not None
            plan = Plan.from_json(incident.plan)
            msg = session.scalar(select(SmsMessage).where(
                SmsMessage.incident_id == incident_id, SmsMessage.phone_key == phone, SmsMessage.kind == "outage"))
            if msg is not None and not (msg.status == SmsStatus.CANCELLED.value and msg.error == OPTED_OUT_ERROR):
                continue  # sent, due, or cancelled for another reason (the fault cleared)
            due = max(now, msg.due_at if msg is not None else incident.opened_at + plan.hold_down)
            if plan.planned(now) and plan.maintenance is not None:
                due = max(due, plan.maintenance.ends_at)
            quiet = plan.quiet()
            if quiet is not None and quiet.contains(due):
                due = quiet.defer(due)
            if msg is None:
                queued += self._queue(session, incident, plan, "outage", {phone}, now, due)
                continue
            msg.status, msg.error, msg.due_at = SmsStatus.QUEUED.value, None, due
            queued += 1
        return queued

    # ------------------------------------------------------------------ delivery reports

    def delivery_report(self, message_id: str, status: SmsDelivery, detail: str = "") -> dict[str, Any]:
        """The gateway's delivery report (e.g. Kannel's DLR) for the text ``message_id``.

        Reports only move forward (:attr:`SmsDelivery.rank`): an SMSC acknowledgement arriving
        after the phone's "delivered" changes nothing, and neither does a repeat, so the call is
        idempotent. One conditional UPDATE, so two reports racing cannot undo each other. Returns
        the text's delivery state afterwards; KeyError if no text has that id."""
        now = self._clock()
        lower = [d.value for d in SmsDelivery if d.rank < status.rank]
        values: dict[str, Any] = {"delivery": status.value, "delivery_detail": detail[:200] or None,
                                  "reported_at": now}
        if status is SmsDelivery.DELIVERED:
            values["delivered_at"] = now
        with self._sessions.begin() as session:
            changed = session.execute(
                update(SmsMessage)
                .where(SmsMessage.message_id == message_id,
                       SmsMessage.delivery.is_(None) | SmsMessage.delivery.in_(lower))
                .values(**values).execution_options(synchronize_session=False)
            ).rowcount or 0  # type: ignore[attr-defined]
            row = session.execute(select(SmsMessage.delivery, SmsMessage.reported_at, SmsMessage.delivered_at)
                                  .where(SmsMessage.message_id == message_id)).first()
        if row is None:
            raise KeyError(message_id)
        self._metrics.delivery_report(status.value)
        log.info("sms delivery report", extra={"message_id": message_id, "report": status.value,
                                               "changed": bool(changed)})
        return {"message_id": message_id, "report": status.value, "changed": bool(changed),
                "delivery": row.delivery, "reported_at": _iso(row.reported_at),
                "delivered_at": _iso(row.delivered_at)}

    # ------------------------------------------------------------------ queries

    def list_incidents(self) -> list[dict[str, Any]]:
        """Every incident, newest first, with its ticket number, SMS counts and audit steps.

        Polled by every agent page: reads each incident's ``plan_summary``, never its plan (the
        snapshot of every customer); a row without one (written by an older vigil) has its
        plan read once, and kept once the incident is closed (a closed plan never changes).
        """
        with self._sessions() as session:
            incidents = list(session.scalars(
                select(IncidentRecord).options(defer(IncidentRecord.plan))
                .order_by(IncidentRecord.opened_at.desc(), IncidentRecord.id.desc())))
            out: list[dict[str, Any]] = []
            for inc in incidents:
                summary = inc.plan_summary or self._summary_of(session, inc)
                window = summary.get("maintenance")
                maintenance = None if not window else MaintenanceWindow.from_json(window)
                ticket = self._ticket(session, inc.id)
                steps = session.scalars(select(IncidentStep).where(
                    IncidentStep.incident_id == inc.id).order_by(IncidentStep.id))
                sms = {f"{k}_{s}": n for k, s, n in session.execute(
                    select(SmsMessage.kind, SmsMessage.status, func.count())
                    .where(SmsMessage.incident_id == inc.id)
                    .group_by(SmsMessage.kind, SmsMessage.status))}
                out.append({
                    "id": inc.id, "key": inc.key, "element": inc.element, "title": inc.title,
                    "status": inc.status, "opened_at": _iso(inc.opened_at),
                    "resolved_at": _iso(inc.resolved_at),
                    "areas": [{"id": a["id"], "name": a["name"], "name_zh": a.get("name_zh", "")}
                              for a in summary["areas"]],
                    "customers": summary["customers"], "cause": summary["cause"],
                    "eta": _iso(inc.eta),
                    "maintenance": None if maintenance is None else {
                        **maintenance.to_json(), "starts_at": _iso(maintenance.starts_at),
                        "ends_at": _iso(maintenance.ends_at), "over": summary["maintenance_over"]},
                    "ticket": ticket.number if ticket else None,
                    "events": dict(inc.fingerprints), "sms": sms,
                    "steps": [{"kind": s.kind, "status": s.status, "detail": s.detail,
                               "error_code": s.error_code, "error_message": s.error_message,
                               "at": _iso(s.at)} for s in steps],
                })
            return out

    def _summary_of(self, session: Session, incident: IncidentRecord) -> dict[str, Any]:
        """``plan_summary`` of an incident stored without one: from its plan, kept per closed incident."""
        with self._index_lock:
            cached = self._summaries.get(incident.id)
        if cached is not None:
            return cached
        summary = plan_summary(session.scalar(select(IncidentRecord.plan).where(IncidentRecord.id == incident.id)))
        if incident.status != IncidentStatus.OPEN.value:
            with self._index_lock:
                self._summaries[incident.id] = summary
        return summary

    def open_incidents(self) -> int:
        """How many incidents are open (one COUNT: /healthz and the status API poll it)."""
        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(IncidentRecord)
                                  .where(IncidentRecord.status == IncidentStatus.OPEN.value)) or 0

    def _callers_of(self, session: Session, incident_id: int) -> _CallerIndex:
        """The customers of an open incident by normalised phone. Plans never change whom they
        cover, so this is built once per incident (a lookup must not re-read 100,000 customers)."""
        index = self._caller_index.get(incident_id)
        if index is None:
            plan = Plan.from_json(session.scalar(select(IncidentRecord.plan).where(IncidentRecord.id == incident_id)))
            index = _CallerIndex(
                by_phone={normalize_phone(c.phone): c for c in plan.customers},
                areas={a.id: a for a in plan.areas},
                maintenance=plan.maintenance is not None,
            )
            with self._index_lock:
                self._caller_index[incident_id] = index
        return index

    def _forget_closed(self, open_ids: set[int]) -> None:
        with self._index_lock:
            for incident_id in [i for i in self._caller_index if i not in open_ids]:
                del self._caller_index[incident_id]

    @staticmethod
    def _caller_sms(session: Session, incident_id: int, customer: PlannedCustomer) -> dict[str, Any]:
        """What this caller was told about the incident: the agent must not say "we texted you"
        when we did not (opted out, still in the hold-down, cancelled)."""
        if not customer.sms:
            return {"status": "opted_out"}
        preference = session.get(SmsPreference, normalize_phone(customer.phone))
        since = _iso(preference.at) if preference is not None and preference.opted_out else None
        msg = session.scalar(select(SmsMessage).where(
            SmsMessage.incident_id == incident_id, SmsMessage.phone_key == normalize_phone(customer.phone),
            SmsMessage.kind == "outage"))
        # A text that went out before the customer opted out was still sent: the agent says so.
        unsent = (SmsStatus.QUEUED.value, SmsStatus.CANCELLED.value, SmsStatus.FAILED.value)
        if since is not None and (msg is None or msg.status in unsent):
            return {"status": "opted_out", "since": since}
        if msg is None:
            return {"status": "none"}
        status = msg.status
        reached = SmsDelivery(msg.delivery).reached_phone if msg.delivery else None
        if reached is not None and msg.status in (SmsStatus.SENDING.value, SmsStatus.SENT.value):
            status = "delivered" if reached else "not_delivered"  # the gateway's report says so
        out = {"status": status, "due_at": _iso(msg.due_at), "sent_at": _iso(msg.sent_at),
               "delivery": msg.delivery, "delivered_at": _iso(msg.delivered_at)}
        if since is not None:
            out["opted_out_since"] = since  # no more texts (not even "restored")
        return out

    def list_tickets(self) -> list[dict[str, Any]]:
        """Every ticket, newest first, with its timeline."""
        with self._sessions() as session:
            tickets = list(session.scalars(
                select(TicketRecord).order_by(TicketRecord.opened_at.desc(),
                                              TicketRecord.id.desc())))
            return [{
                "id": t.id, "number": t.number, "incident_id": t.incident_id,
                "incident_key": t.incident_key.rsplit("#", 1)[0], "status": t.status,
                "title": t.title, "body": t.body, "opened_at": _iso(t.opened_at),
                "closed_at": _iso(t.closed_at),
                "timeline": [{"at": _iso(e.at), "text": e.text} for e in session.scalars(
                    select(TicketEvent).where(TicketEvent.ticket_id == t.id)
                    .order_by(TicketEvent.at, TicketEvent.id))],
            } for t in tickets]

    def list_banners(self, active_only: bool = True) -> list[dict[str, Any]]:
        """Banners (active ones by default), newest first."""
        with self._sessions() as session:
            query = select(BannerRecord, IncidentRecord.key, IncidentRecord.plan).join(
                IncidentRecord, IncidentRecord.id == BannerRecord.incident_id)
            if active_only:
                query = query.where(BannerRecord.active.is_(True))
            rows = session.execute(query.order_by(BannerRecord.created_at.desc(),
                                                  BannerRecord.id.desc()))
            out = []
            now = self._clock()
            for banner, key, data in rows:
                area = self._topology.area(banner.area_id)
                plan = Plan.from_json(data) if data.get("maintenance") else None
                planned = plan is not None and banner.active and plan.planned(now)
                out.append({
                    "id": banner.id, "incident_id": banner.incident_id, "incident_key": key,
                    "area_id": banner.area_id, "area_name": area.name if area else banner.area_id,
                    "area_name_zh": area.name_zh if area else "",
                    "text_zh": banner.text_zh, "text_en": banner.text_en,
                    "script_zh": banner.script_zh, "script_en": banner.script_en,
                    "active": banner.active, "created_at": _iso(banner.created_at),
                    "planned": planned,
                    "planned_until": _iso(plan.maintenance.ends_at)
                    if planned and plan is not None and plan.maintenance is not None else None,
                    "cleared_at": _iso(banner.cleared_at),
                })
            return out

    def list_sms(self, limit: int | None = None) -> list[dict[str, Any]]:
        """SMS messages, newest first (all, or the latest ``limit``)."""
        with self._sessions() as session:
            query = (select(SmsMessage, IncidentRecord.key)
                     .join(IncidentRecord, IncidentRecord.id == SmsMessage.incident_id)
                     .order_by(SmsMessage.queued_at.desc(), SmsMessage.id.desc()))
            if limit is not None:
                query = query.limit(limit)
            return [{
                "id": m.id, "channel": "sms", "recipient": m.phone, "account": m.account,
                "kind": m.kind, "language": m.language, "text": m.text, "status": m.status,
                "segments": m.segments, "attempts": m.attempts, "error": m.error,
                "incident": key, "incident_id": m.incident_id, "incident_key": key,
                "queued_at": _iso(m.queued_at), "sent_at": _iso(m.sent_at),
                "delivery": m.delivery, "delivered_at": _iso(m.delivered_at),
            } for m, key in session.execute(query)]

    def impact(self, phone: str) -> dict[str, Any]:
        """Is this caller affected by an open incident? With the script and banner to use."""
        wanted = normalize_phone(phone)
        known = self._topology.customer_by_phone(phone)
        customer: dict[str, Any] | None = None
        if known is not None:
            area = self._topology.area(known.area)
            customer = {
                "account": known.account, "phone": known.phone, "name": known.name,
                "area": known.area, "area_name": area.name if area else known.area,
                "area_name_zh": area.name_zh if area else "", "element": known.element,
                "grade": known.grade, "language": known.language,
            }
        incidents: list[dict[str, Any]] = []
        script: str | None = None
        banner: str | None = None
        with self._sessions() as session:
            open_incidents = session.execute(
                select(IncidentRecord.id, IncidentRecord.key, IncidentRecord.title,
                       IncidentRecord.opened_at, IncidentRecord.areas)
                .where(IncidentRecord.status == IncidentStatus.OPEN.value)
                .order_by(IncidentRecord.opened_at.desc(), IncidentRecord.id.desc())).all()
            self._forget_closed({inc.id for inc in open_incidents})
            for inc in open_incidents:
                index = self._callers_of(session, inc.id)
                planned = index.by_phone.get(wanted)
                if planned is None:
                    continue
                if customer is None:  # gone from the customer file since: use the snapshot
                    area_view = index.areas.get(planned.area)
                    customer = {
                        "account": planned.account, "phone": planned.phone,
                        "name": planned.name, "area": planned.area,
                        "area_name": area_view.name if area_view else planned.area,
                        "area_name_zh": area_view.name_zh if area_view else "",
                        "element": planned.element, "grade": planned.grade,
                        "language": planned.language,
                    }
                planned_until = None
                if index.maintenance:  # the window may have moved or ended since: read it now
                    plan = Plan.from_json(session.scalar(
                        select(IncidentRecord.plan).where(IncidentRecord.id == inc.id)))
                    if plan.planned(self._clock()) and plan.maintenance is not None:
                        planned_until = _iso(plan.maintenance.ends_at)
                incidents.append({"id": inc.id, "key": inc.key, "title": inc.title,
                                  "opened_at": _iso(inc.opened_at), "areas": list(inc.areas),
                                  "planned_until": planned_until,
                                  "sms": self._caller_sms(session, inc.id, planned)})
                if script is None:
                    row = session.scalar(select(BannerRecord).where(
                        BannerRecord.incident_id == inc.id, BannerRecord.area_id == planned.area,
                        BannerRecord.active.is_(True)))
                    if row is not None:
                        zh = planned.language == "zh-CN"
                        script = row.script_zh if zh else row.script_en
                        banner = row.text_zh if zh else row.text_en
        return {"phone": phone, "affected": bool(incidents), "customer": customer,
                "incidents": incidents, "script": script, "banner": banner}
