"""The alert pipeline: events -> alerts -> groups -> outbox -> channels.

``ingest`` (one transaction): upsert each alert by fingerprint, put changed alerts into their
aggregation groups (route -> receiver integrations -> group key), then flush the groups that
are due into outbox rows. ``dispatch``: flush due groups, claim due outbox rows, start a send
for each and record its outcome when it ends; ``flush`` does the same and waits for the sends.

Group timers follow Alertmanager: a new group waits ``group_wait``; then it is re-evaluated
every ``group_interval`` and notified when its firing/resolved sets changed, or when
``repeat_interval`` passed while still firing. All times are seconds on the injected clock.

Muting (at each group flush, as Alertmanager's inhibit and silence stages): a firing alert
matched by an active silence (:mod:`alerts.silence`, maintenance windows included) or inhibited
by another firing alert (:mod:`alerts.inhibit`, topology-aware) is left out of the
notification but stays in its group, so it is sent once the silence ends or the source
resolves. A resolved notification still reaches a receiver that heard the alert firing.

Delivery semantics
------------------
Per (integration, group) only the newest notification matters, as in Alertmanager: a group
flush that enqueues a new row marks the older rows of that integration and group that are still
``pending`` (a retry waiting out a receiver's outage) ``superseded`` (counted in
``vigil_notifications_superseded_total``), and the new row carries the resolved alerts they
held, so a stale "firing" is never delivered after the "resolved" that replaced it and an
outage does not pile up one copy per repeat interval. Rows of one integration and group go out
in order: a row is not claimed while an older one of its group is pending or being sent.

A row is claimed by one atomic ``UPDATE ... WHERE status='pending'`` (pending -> sending,
attempts + 1) committed *before* the send, so concurrent flushes, in one process or several,
never send the same row twice. Each claimed row is sent by a task of its own: a slow or hanging
integration holds up only its own groups (at most ``max_sends`` sends in flight per
integration), never another integration. :meth:`AlertPipeline.dispatch` starts the sends and
returns; :meth:`AlertPipeline.flush` also waits for them.

A send cancelled by a graceful stop (:meth:`AlertPipeline.drain`) puts its row back to
``pending``: it is sent again after the restart, so the receiver may see it twice. If the
process dies (SIGKILL, power loss) after the claim but before the outcome is committed, the row
stays ``sending``; once its lease has expired a later flush marks it ``failed`` ("outcome
unknown") and does **not** re-send it: crash recovery is at-most-once (until then the newer
rows of its group wait behind it). Reported transient
failures (5xx, 429, timeouts, connection errors) are retried with exponential backoff, so a
receiver that processed a request and then timed out may see it again: delivery is
at-least-once across *reported* failures. Receivers can deduplicate by ``groupKey`` + alert
``fingerprint``/``startsAt``.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from alerts.alert import Alert, format_time, to_datetime
from alerts.channels import Channel, Log, receiver_channels
from alerts.errors import PermanentError, RetryableError, RoutingError
from alerts.inhibit import DEFAULT_INHIBIT_RULES, Inhibitor, InhibitRule
from alerts.message import webhook_message
from alerts.route import group_key, group_labels, match_routes
from alerts.silence import SilenceStore, matches_all
from alerts.store import AlertGroupRecord, AlertRecord, NotificationRecord
from config.models import AlertsConfig, Route
from detectors.event import Event, EventState

__all__ = ["AlertPipeline"]

_log = logging.getLogger("vigil.alerts")

_OPEN = ("pending", "sending")  # outbox rows not yet sent, failed or superseded
_SUPERSEDED = "_vigil_superseded"  # session.info key: rows superseded in this transaction


def _behind_older_row() -> ColumnElement[bool]:
    """True for an outbox row with an older open row of the same integration and group."""
    older = aliased(NotificationRecord)
    return exists().where(
        older.integration == NotificationRecord.integration,
        older.group_key == NotificationRecord.group_key,
        older.id < NotificationRecord.id,
        older.status.in_(_OPEN),
    )


@dataclass(frozen=True, slots=True)
class _Integration:
    """One way a receiver is notified: ``noc`` (first config), ``noc/1`` (second)..."""

    name: str
    receiver: str
    channel: Channel
    send_resolved: bool


def _dedup_key(
    integration: str, key: str, seq: int, firing: Sequence[str], resolved: Sequence[str]
) -> str:
    blob = json.dumps([integration, key, seq, sorted(firing), sorted(resolved)])
    return hashlib.sha256(blob.encode()).hexdigest()


def _needs_update(
    group: AlertGroupRecord,
    firing: set[str],
    resolved: set[str],
    send_resolved: bool,
    now: datetime,
) -> bool:
    """Alertmanager's DedupStage.needsUpdate against the group's last notification."""
    if group.last_notified_at is None:
        return bool(firing)  # never notified: resolved-only groups stay silent
    if not firing <= set(group.last_firing):
        return True
    if not firing:
        # all resolved: tell the receiver only if it heard of some of them firing
        return bool(group.last_firing)
    if send_resolved and not resolved <= set(group.last_resolved):
        return True
    return now - group.last_notified_at >= timedelta(seconds=group.repeat_interval)


def _title(payload: Mapping[str, Any]) -> str:
    """Alertmanager's default title plus the first summary: ``[FIRING:2] LinkDown olt-1``."""
    alerts = payload.get("alerts", [])
    status = str(payload.get("status", "")).upper()
    firing = sum(1 for a in alerts if a.get("status") == "firing")
    head = f"[{status}:{firing}]" if status == "FIRING" else f"[{status}]"
    labels = " ".join(str(v) for v in payload.get("groupLabels", {}).values())
    summary = alerts[0].get("annotations", {}).get("summary", "") if alerts else ""
    return " ".join(part for part in (head, labels, "-", summary) if part).rstrip(" -")


class AlertPipeline:
    """Turns detector events into durable, deduplicated, routed notifications."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: AlertsConfig,
        *,
        clock: Callable[[], float],
        external_url: str = "http://127.0.0.1:8080",
        channels: Mapping[str, Channel] | None = None,
        registry: CollectorRegistry | None = None,
        retry_base: float = 10.0,
        retry_max: float = 600.0,
        max_attempts: int = 10,
        sending_lease: float = 300.0,
        batch_size: int = 100,
        max_sends: int = 10,
        parents: Mapping[str, str] | None = None,
        inhibit_rules: Sequence[InhibitRule] | None = None,
        secrets_dir: Path | None = None,
    ) -> None:
        self._sessions = sessions
        self.silences = SilenceStore(sessions, clock=clock)
        if inhibit_rules is None:
            inhibit_rules = DEFAULT_INHIBIT_RULES if config.inhibit_rules is None else [
                InhibitRule.parse(r.source_matchers, r.target_matchers, r.equal, topology=r.topology)
                for r in config.inhibit_rules
            ]
        self._inhibitor = Inhibitor(inhibit_rules, parents)
        self._config = config
        self._clock = clock
        self._external_url = external_url
        self._retry_base = retry_base
        self._retry_max = retry_max
        self._max_attempts = max_attempts
        self._sending_lease = sending_lease
        self._batch_size = batch_size
        self._max_sends = max_sends  # sends in flight per integration
        self._sending: dict[int, tuple[str, asyncio.Task[int]]] = {}  # row id -> (integration, send)
        self._token = uuid.uuid4().hex  # identifies this pipeline's claims
        self._integrations = self._build_integrations(config, channels or {}, secrets_dir)
        self._by_receiver: dict[str, list[_Integration]] = {}
        for integration in self._integrations.values():
            self._by_receiver.setdefault(integration.receiver, []).append(integration)
        # A private registry by default: several pipelines (tests, restarts) must not collide.
        registry = registry if registry is not None else CollectorRegistry()
        self._notifications = Counter(
            "vigil_notifications_total",
            "Notification delivery attempts by outcome (sent, retry, failed, interrupted).",
            ["receiver", "channel", "result"],
            registry=registry,
        )
        self._superseded = Counter(
            "vigil_notifications_superseded",
            "Unsent notifications replaced by a newer one of the same integration and group.",
            ["receiver", "channel"],
            registry=registry,
        )
        self._firing = Gauge("vigil_alerts_firing", "Alerts currently firing.", registry=registry)
        self._send_seconds = Histogram(
            "vigil_notification_duration_seconds",
            "Time spent in one channel send.",
            ["channel"],
            registry=registry,
        )
        self._muted_gauge = Gauge(
            "vigil_alerts_muted",
            "Firing alerts held back at the last group flush, by reason (silence, inhibition).",
            ["reason"],
            registry=registry,
        )
        self._events = Counter(
            "vigil_alert_events_total",
            "Events ingested by state and effect (changed, unchanged).",
            ["state", "effect"],
            registry=registry,
        )

    # ----------------------------------------------------------------- set-up
    @staticmethod
    def _build_integrations(
        config: AlertsConfig, channels: Mapping[str, Channel], base: Path | None
    ) -> dict[str, _Integration]:
        """One integration per channel config (webhook, email, alertmanager), or log for an empty receiver."""
        integrations: dict[str, _Integration] = {}
        for receiver in config.receivers:
            built = receiver_channels(receiver, base)
            if not built:
                name = receiver.name
                channel = channels.get(name) or Log()
                integrations[name] = _Integration(name, receiver.name, channel, True)
            for index, (configured, send_resolved) in enumerate(built):
                name = receiver.name if index == 0 else f"{receiver.name}/{index}"
                integrations[name] = _Integration(name, receiver.name, channels.get(name) or configured, send_resolved)
        unknown = set(channels) - set(integrations)
        if unknown:
            raise RoutingError(f"channels given for undefined receivers: {sorted(unknown)}")
        if config.route.receiver is None:
            raise RoutingError("the root route must name a receiver")
        return integrations

    # ----------------------------------------------------------------- ingest
    async def ingest(self, events: Sequence[Event]) -> None:
        """Record events, group the alerts they change and enqueue due notifications."""
        if not events:
            return
        now = to_datetime(self._clock())
        for attempt in (1, 2):
            try:
                with self._sessions.begin() as session:
                    changed = [rec for e in events if (rec := self._upsert(session, e, now))]
                    for record in changed:
                        self._assign(session, record, now)
                    self._flush_groups(session, now)
                    firing = self._count_firing(session)
                self._count_superseded(session)
                break
            except IntegrityError:
                # A concurrent writer inserted the same alert/group/notification first; the
                # retry sees its rows, and ingest is idempotent.
                if attempt == 2:
                    raise
                _log.info("ingest conflict, retrying once")
        self._firing.set(firing)

    def _upsert(self, session: Session, event: Event, now: datetime) -> AlertRecord | None:
        """Apply one event; return the record if a notification may be needed."""
        fingerprint = event.fingerprint
        record = session.scalar(select(AlertRecord).where(AlertRecord.fingerprint == fingerprint))
        state = event.state
        effect = "unchanged"
        result: AlertRecord | None = None
        if state is EventState.PENDING:
            if record is None:
                record = AlertRecord(fingerprint=fingerprint, status="pending")
                session.add(record)
                self._fill(record, event, now, starts=event.active_at, ends=None)
                effect = "changed"
            elif record.status == "resolved":
                self._fill(record, event, now, starts=event.active_at, ends=None)
                record.status = "pending"
                effect = "changed"
        elif state is EventState.FIRING:
            if record is None or record.status != "firing":
                if record is None:
                    record = AlertRecord(fingerprint=fingerprint)
                    session.add(record)
                alert = Alert.from_event(event, self._external_url)
                self._fill(record, event, now, starts=None, ends=None, alert=alert)
                record.status = "firing"
                effect, result = "changed", record
        elif state is EventState.RESOLVED and record is not None and record.status != "resolved":
            was_firing = record.status == "firing"
            alert = Alert.from_event(event, self._external_url)
            self._fill(record, event, now, starts=None, ends=None, alert=alert)
            if not was_firing:
                record.starts_at = alert.starts_at
            record.status = "resolved"
            effect = "changed"
            result = record if was_firing else None  # a never-fired alert resolves silently
        self._events.labels(str(state), effect).inc()
        return result

    @staticmethod
    def _fill(
        record: AlertRecord,
        event: Event,
        now: datetime,
        *,
        starts: float | None,
        ends: float | None,
        alert: Alert | None = None,
    ) -> None:
        if alert is not None:
            record.labels = dict(alert.labels)
            record.annotations = dict(alert.annotations)
            record.starts_at = alert.starts_at
            record.ends_at = alert.ends_at
        else:
            record.labels = dict(event.labels)
            record.annotations = {"summary": event.summary or f"{event.name} on {event.element}"}
            record.starts_at = to_datetime(starts if starts is not None else event.active_at)
            record.ends_at = None if ends is None else to_datetime(ends)
        record.updated_at = now
        record.last_event_state = str(event.state)

    def _assign(self, session: Session, record: AlertRecord, now: datetime) -> None:
        """Put a changed alert into every group its labels route to."""
        for match in match_routes(self._config.route, record.labels):
            integrations = self._by_receiver.get(match.receiver)
            if not integrations:
                _log.error("route names undefined receiver %r; alert dropped", match.receiver)
                continue
            key = group_key(match.route_id, match.route, record.labels)
            for integration in integrations:
                group = self._group(session, integration, key, match.route, record.labels)
                if record.fingerprint not in group.members:
                    group.members = sorted({*group.members, record.fingerprint})
                if group.next_flush_at is None:  # a new (or emptied) group waits group_wait
                    group.next_flush_at = now + timedelta(seconds=group.group_wait)

    @staticmethod
    def _group(
        session: Session,
        integration: _Integration,
        key: str,
        route: Route,
        labels: Mapping[str, str],
    ) -> AlertGroupRecord:
        group = session.scalar(
            select(AlertGroupRecord).where(
                AlertGroupRecord.integration == integration.name,
                AlertGroupRecord.group_key == key,
            )
        )
        if group is None:
            group = AlertGroupRecord(
                integration=integration.name,
                group_key=key,
                members=[],
                last_firing=[],
                last_resolved=[],
                seq=0,
            )
            session.add(group)
        group.receiver = integration.receiver
        group.group_labels = group_labels(route, labels)
        group.group_wait = route.group_wait
        group.group_interval = route.group_interval
        group.repeat_interval = route.repeat_interval
        return group

    # ----------------------------------------------------------------- groups
    def _flush_groups(self, session: Session, now: datetime) -> int:
        """Turn every due group into at most one outbox row; return rows enqueued."""
        groups = session.scalars(
            select(AlertGroupRecord)
            .where(AlertGroupRecord.next_flush_at <= now)
            .order_by(AlertGroupRecord.id)
            .with_for_update(skip_locked=True)
        ).all()
        enqueued = 0
        if not groups:
            return 0
        muted = self._muted(session, now)
        for reason in ("silence", "inhibition"):
            self._muted_gauge.labels(reason).set(sum(1 for m in muted.values() if m[0] == reason))
        for group in groups:
            enqueued += self._flush_group(session, group, now, muted)
        return enqueued

    def _muted(self, session: Session, now: datetime) -> dict[str, tuple[str, str]]:
        """Firing alerts muted now: ``{fingerprint: ("silence", id) | ("inhibition", source)}``."""
        firing = {
            r.fingerprint: dict(r.labels)
            for r in session.scalars(select(AlertRecord).where(AlertRecord.status == "firing"))
        }
        if not firing:
            return {}
        muted: dict[str, tuple[str, str]] = {}
        silences = self.silences.active(session, now)
        for fingerprint, labels in firing.items():
            hit = next((s for s in silences if matches_all(s.matchers, labels)), None)
            if hit is not None:
                muted[fingerprint] = ("silence", hit.id)
        for target, source in self._inhibitor.inhibited(firing).items():
            muted.setdefault(target, ("inhibition", source))
        return muted

    def muted_now(self) -> dict[str, tuple[str, str]]:
        """What :meth:`_muted` says at this moment (for the API)."""
        with self._sessions() as session:
            return self._muted(session, to_datetime(self._clock()))

    def _flush_group(
        self, session: Session, group: AlertGroupRecord, now: datetime, muted: Mapping[str, tuple[str, str]]
    ) -> int:
        integration = self._integrations.get(group.integration)
        records = session.scalars(
            select(AlertRecord).where(AlertRecord.fingerprint.in_(group.members))
        ).all()
        firing_all = {r.fingerprint for r in records if r.status == "firing"}
        firing = {f for f in firing_all if f not in muted}
        # a muted alert the receiver already heard firing stays "heard": no repeat, but closure
        heard_muted = (firing_all - firing) & set(group.last_firing)
        resolved = {r.fingerprint for r in records if r.status == "resolved"}
        enqueued = 0
        if integration is None:
            _log.error("group %s: integration %r no longer configured", group.id, group.integration)
        elif _needs_update(group, firing, resolved, integration.send_resolved, now):
            # what the unsent rows of this group said is replaced by this flush; their resolved
            # alerts (no longer members) are carried over, so the receiver still hears them
            carried = self._supersede(session, group, integration)
            if integration.send_resolved and carried - firing_all - resolved:
                extra = session.scalars(
                    select(AlertRecord).where(
                        AlertRecord.fingerprint.in_(sorted(carried - firing_all - resolved)),
                        AlertRecord.status == "resolved",
                    )
                ).all()
                records = [*records, *extra]
                resolved |= {r.fingerprint for r in extra}
            sendable = [
                r.to_alert(self._external_url)
                for r in sorted(records, key=lambda r: r.fingerprint)
                if r.fingerprint in firing
                or (integration.send_resolved and r.fingerprint in resolved)
            ]
            if sendable:
                self._enqueue(session, group, integration, sendable, firing, resolved, now)
                enqueued = 1
            group.last_firing = sorted(firing | heard_muted)
            group.last_resolved = sorted(resolved)
            group.last_notified_at = now
            group.seq += 1
        # Resolved (and re-pending) alerts leave the group once it has been flushed; muted
        # firing ones stay, so the group is looked at again when the silence ends.
        group.members = sorted(firing_all)
        group.next_flush_at = now + timedelta(seconds=group.group_interval) if firing_all else None
        return enqueued

    def _supersede(self, session: Session, group: AlertGroupRecord, integration: _Integration) -> set[str]:
        """Mark the group's unsent (pending) rows superseded; return the resolved alerts they held.

        One atomic ``UPDATE ... WHERE status='pending'``: a row a concurrent flush has claimed
        (``sending``) is not superseded, and the new row waits behind it (see :meth:`_claim`)."""
        rows = session.execute(
            update(NotificationRecord)
            .where(
                NotificationRecord.integration == integration.name,
                NotificationRecord.group_key == group.group_key,
                NotificationRecord.status == "pending",
            )
            .values(status="superseded", last_error="superseded by a newer notification of its group")
            .returning(NotificationRecord.id, NotificationRecord.payload)
            .execution_options(synchronize_session=False)
        ).all()
        carried: set[str] = set()
        for row_id, payload in rows:
            carried |= {
                str(a.get("fingerprint"))
                for a in payload.get("alerts", [])
                if a.get("status") == "resolved" and a.get("fingerprint")
            }
            _log.info(
                "notification superseded id=%d receiver=%s integration=%s group=%s",
                row_id, integration.receiver, integration.name, group.group_key,
            )  # fmt: skip
            session.info.setdefault(_SUPERSEDED, []).append((integration.receiver, integration.channel.kind))
        return carried

    def _count_superseded(self, session: Session) -> None:
        """Count the rows a committed transaction superseded."""
        for receiver, channel in session.info.pop(_SUPERSEDED, []):
            self._superseded.labels(receiver, channel).inc()

    def _enqueue(
        self,
        session: Session,
        group: AlertGroupRecord,
        integration: _Integration,
        alerts: Sequence[Alert],
        firing: set[str],
        resolved: set[str],
        now: datetime,
    ) -> None:
        payload = webhook_message(
            receiver=integration.receiver,
            group_key=group.group_key,
            group_labels=group.group_labels,
            alerts=alerts,
            external_url=self._external_url,
        )
        session.add(
            NotificationRecord(
                dedup_key=_dedup_key(
                    integration.name, group.group_key, group.seq, firing, resolved
                ),
                receiver=integration.receiver,
                integration=integration.name,
                channel=integration.channel.kind,
                recipient=integration.channel.recipient,
                group_key=group.group_key,
                fingerprints=[a.fingerprint for a in alerts],
                payload=payload,
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )

    # ----------------------------------------------------------------- delivery
    async def dispatch(self) -> int:
        """Flush due groups and start sending due outbox rows, without waiting for the sends.

        Each row is sent by a task of its own and its outcome recorded when it ends; a slow
        integration delays only its own rows. Return how many sends were started."""
        return len(self._start())

    async def flush(self) -> int:
        """Flush due groups, deliver due outbox rows and wait for them; return how many were sent."""
        tasks = self._start()
        if not tasks:
            return 0
        results = await asyncio.gather(*tasks)
        return sum(results)

    async def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the sends in flight, then cancel the rest (a graceful stop).

        A cancelled send's row goes back to ``pending`` and is sent again after a restart.
        Return how many sends were cancelled."""
        tasks = {task for _, task in self._sending.values()}
        if not tasks:
            return 0
        _, unfinished = await asyncio.wait(tasks, timeout=timeout) if timeout > 0 else (set(), tasks)
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(unfinished, timeout=5)  # each records its row as pending again
        return len(unfinished)

    @property
    def sends_in_flight(self) -> int:
        """Sends started by this pipeline and not finished yet."""
        return len(self._sending)

    def _start(self) -> list[asyncio.Task[int]]:
        """Flush due groups, claim due rows and start one send task per claimed row."""
        now = to_datetime(self._clock())
        with self._sessions.begin() as session:
            self._expire_interrupted(session, now)
            self._flush_groups(session, now)
            firing = self._count_firing(session)
        self._count_superseded(session)
        self._firing.set(firing)
        tasks: list[asyncio.Task[int]] = []
        for row in self._claim(now):
            task = asyncio.create_task(self._deliver(row), name=f"vigil-notify-{row.id}")
            self._sending[row.id] = (row.integration, task)
            task.add_done_callback(self._sent)
            tasks.append(task)
        return tasks

    def _sent(self, task: asyncio.Task[int]) -> None:
        """A send task ended: free its slot; an error recording its outcome is logged, not lost."""
        row_id = next((i for i, (_, t) in self._sending.items() if t is task), None)
        if row_id is not None:
            del self._sending[row_id]
        if not task.cancelled() and task.exception() is not None:
            _log.error("notification id=%s: recording its outcome failed", row_id, exc_info=task.exception())

    def _expire_interrupted(self, session: Session, now: datetime) -> None:
        """Rows left 'sending' past their lease: outcome unknown, marked failed (at-most-once)."""
        stale = now - timedelta(seconds=self._sending_lease)
        result = session.execute(
            update(NotificationRecord)
            .where(
                NotificationRecord.status == "sending",
                NotificationRecord.claimed_at <= stale,
                NotificationRecord.id.not_in(list(self._sending)),  # not this process's own sends
            )
            .values(
                status="failed",
                last_error="outcome unknown: delivery was interrupted (not re-sent)",
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:
            _log.warning("marked %d interrupted notification(s) failed", result.rowcount)

    def _claim(self, now: datetime) -> list[NotificationRecord]:
        """Atomically move due rows pending -> sending; return the rows this call owns.

        A row is due when its time has come and no older row of its integration and group is
        still open (per-group order); an integration with ``max_sends`` sends in flight here
        gets no more until one ends."""
        in_flight = collections.Counter(integration for integration, _ in self._sending.values())
        full = sorted(name for name, count in in_flight.items() if count >= self._max_sends)
        claimed: list[NotificationRecord] = []
        with self._sessions.begin() as session:
            due = session.execute(
                select(NotificationRecord.id, NotificationRecord.integration)
                .where(
                    NotificationRecord.status == "pending",
                    NotificationRecord.next_attempt_at <= now,
                    NotificationRecord.integration.not_in(full),
                    ~_behind_older_row(),
                )
                .order_by(NotificationRecord.id)
                .limit(self._batch_size)
            ).all()
            for row_id, integration in due:
                if in_flight[integration] >= self._max_sends:
                    continue
                result = session.execute(
                    update(NotificationRecord)
                    .where(
                        NotificationRecord.id == row_id,
                        NotificationRecord.status == "pending",
                        ~_behind_older_row(),  # again: a concurrent flush may have claimed first
                    )
                    .values(
                        status="sending",
                        claimed_at=now,
                        claim_token=self._token,
                        attempts=NotificationRecord.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:
                    row = session.get(NotificationRecord, row_id, populate_existing=True)
                    if row is not None:
                        claimed.append(row)
                        in_flight[integration] += 1
            session.expunge_all()
        return claimed

    async def _deliver(self, row: NotificationRecord) -> int:
        """Send one claimed row and record the outcome; never raises."""
        integration = self._integrations.get(row.integration)
        outcome: str
        error: str | None = None
        if integration is None:
            outcome, error = "failed", f"integration {row.integration!r} is not configured"
        else:
            started = time.perf_counter()
            try:
                await integration.channel.send(row.payload)
                outcome = "sent"
            except PermanentError as err:
                outcome, error = "failed", str(err)
            except RetryableError as err:
                outcome, error = "retry", str(err)
            except asyncio.CancelledError:  # a graceful stop: send it again after the restart
                self._record(row, "interrupted", "interrupted by a shutdown; sent again after the restart")
                self._notifications.labels(row.receiver, row.channel, "interrupted").inc()
                _log.warning(
                    "notification interrupted id=%d receiver=%s channel=%s group=%s: pending again "
                    "(the receiver may see it twice)", row.id, row.receiver, row.channel, row.group_key,
                )  # fmt: skip
                raise
            except Exception as err:  # a channel bug must not stop other deliveries
                _log.exception("channel %s crashed", row.integration)
                outcome, error = "retry", f"{type(err).__name__}: {err}"
            finally:
                self._send_seconds.labels(row.channel).observe(time.perf_counter() - started)
        if outcome == "retry" and row.attempts >= self._max_attempts:
            outcome, error = "failed", f"gave up after {row.attempts} attempts: {error}"
        self._record(row, outcome, error)
        self._notifications.labels(row.receiver, row.channel, outcome).inc()
        log = _log.info if outcome == "sent" else _log.warning
        log(
            "notification %s id=%d receiver=%s channel=%s attempt=%d group=%s error=%s",
            outcome,
            row.id,
            row.receiver,
            row.channel,
            row.attempts,
            row.group_key,
            error,
        )
        return 1 if outcome == "sent" else 0

    def _record(self, row: NotificationRecord, outcome: str, error: str | None) -> None:
        now = to_datetime(self._clock())
        values: dict[str, Any]
        if outcome == "sent":
            values = {"status": "sent", "sent_at": now, "last_error": None}
        elif outcome == "interrupted":  # not an attempt that failed: due again at once
            values = {"status": "pending", "last_error": error, "next_attempt_at": now}
        elif outcome == "retry":
            delay = min(self._retry_base * 2 ** (row.attempts - 1), self._retry_max)
            values = {
                "status": "pending",
                "last_error": error,
                "next_attempt_at": now + timedelta(seconds=delay),
            }
        else:
            values = {"status": "failed", "last_error": error}
        with self._sessions.begin() as session:
            session.execute(
                update(NotificationRecord)
                .where(
                    NotificationRecord.id == row.id,
                    NotificationRecord.status == "sending",
                    NotificationRecord.claim_token == self._token,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    # ----------------------------------------------------------------- queries
    @staticmethod
    def _count_firing(session: Session) -> int:
        return (
            session.scalar(
                select(func.count()).select_from(AlertRecord).where(AlertRecord.status == "firing")
            )
            or 0
        )

    def list_alerts(self, status: str | None = None, fingerprint: str | None = None) -> list[dict[str, Any]]:
        """Stored alerts, most recently changed first, optionally of one status and/or the one
        with ``fingerprint`` (what an alert's generatorURL names)."""
        query = select(AlertRecord).order_by(AlertRecord.updated_at.desc(), AlertRecord.id.desc())
        if status is not None:
            query = query.where(AlertRecord.status == status)
        if fingerprint is not None:
            query = query.where(AlertRecord.fingerprint == fingerprint)
        with self._sessions() as session:
            muted = self._muted(session, to_datetime(self._clock()))
            return [
                {
                    "fingerprint": r.fingerprint,
                    "status": r.status,
                    "labels": dict(r.labels),
                    "annotations": dict(r.annotations),
                    "summary": r.annotations.get("summary", ""),
                    "starts_at": format_time(r.starts_at),
                    "ends_at": None if r.ends_at is None else format_time(r.ends_at),
                    "updated_at": format_time(r.updated_at),
                    "last_event_state": r.last_event_state,
                    "silenced_by": [muted[r.fingerprint][1]]
                    if muted.get(r.fingerprint, ("",))[0] == "silence"
                    else [],
                    "inhibited_by": [muted[r.fingerprint][1]]
                    if muted.get(r.fingerprint, ("",))[0] == "inhibition"
                    else [],
                }
                for r in session.scalars(query)
            ]

    def list_notifications(self, limit: int = 500) -> list[dict[str, Any]]:
        """Outbox rows, newest first."""
        query = select(NotificationRecord).order_by(NotificationRecord.id.desc()).limit(limit)
        with self._sessions() as session:
            return [
                {
                    "id": r.id,
                    "channel": r.channel,
                    "receiver": r.receiver,
                    "recipient": r.recipient,
                    "text": _title(r.payload),
                    "status": r.status,
                    "incident": r.group_key,
                    "fingerprints": list(r.fingerprints),
                    "created_at": format_time(r.created_at),
                    "sent_at": None if r.sent_at is None else format_time(r.sent_at),
                    "next_attempt_at": format_time(r.next_attempt_at),
                    "attempts": r.attempts,
                    "last_error": r.last_error,
                }
                for r in session.scalars(query)
            ]
