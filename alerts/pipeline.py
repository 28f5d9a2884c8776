"""The alert pipeline: events -> alerts -> groups -> outbox -> channels.

``ingest`` (one transaction): upsert each alert by fingerprint, put changed alerts into their
aggregation groups (route -> receiver integrations -> group key), then flush the groups that
are due into outbox rows. ``flush``: flush due groups, claim due outbox rows, send them
concurrently, record each outcome.

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
A row is claimed by one atomic ``UPDATE ... WHERE status='pending'`` (pending -> sending,
attempts + 1) committed *before* the send, so concurrent flushes, in one process or several,
never send the same row twice. If the process dies after the send but before the outcome is
committed, the row stays ``sending``; once its lease has expired a later flush marks it
``failed`` ("outcome unknown") and does **not** re-send it: crash recovery is at-most-once.
Reported transient failures (5xx, 429, timeouts, connection errors) are retried with
exponential backoff, so a receiver that processed a request and then timed out may see it
again: delivery is at-least-once across *reported* failures. Receivers can deduplicate by
``groupKey`` + alert ``fingerprint``/``startsAt``.
"""

from __future__ import annotations

import asyncio
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
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

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
        self._token = uuid.uuid4().hex  # identifies this pipeline's claims
        self._integrations = self._build_integrations(config, channels or {}, secrets_dir)
        self._by_receiver: dict[str, list[_Integration]] = {}
        for integration in self._integrations.values():
            self._by_receiver.setdefault(integration.receiver, []).append(integration)
        # A private registry by default: several pipelines (tests, restarts) must not collide.
        registry = registry if registry is not None else CollectorRegistry()
        self._notifications = Counter(
            "vigil_notifications_total",
            "Notification delivery attempts by outcome (sent, retry, failed).",
            ["receiver", "channel", "result"],
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
    async def flush(self) -> int:
        """Flush due groups, deliver due outbox rows; return how many were sent."""
        now = to_datetime(self._clock())
        with self._sessions.begin() as session:
            self._expire_interrupted(session, now)
            self._flush_groups(session, now)
            firing = self._count_firing(session)
        self._firing.set(firing)
        claimed = self._claim(now)
        if not claimed:
            return 0
        results = await asyncio.gather(*(self._deliver(row) for row in claimed))
        return sum(results)

    def _expire_interrupted(self, session: Session, now: datetime) -> None:
        """Rows left 'sending' past their lease: outcome unknown, marked failed (at-most-once)."""
        stale = now - timedelta(seconds=self._sending_lease)
        result = session.execute(
            update(NotificationRecord)
            .where(
                NotificationRecord.status == "sending",
                NotificationRecord.claimed_at <= stale,
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
        """Atomically move due rows pending -> sending; return the rows this call owns."""
        claimed: list[NotificationRecord] = []
        with self._sessions.begin() as session:
            ids = session.scalars(
                select(NotificationRecord.id)
                .where(
                    NotificationRecord.status == "pending",
                    NotificationRecord.next_attempt_at <= now,
                )
                .order_by(NotificationRecord.id)
                .limit(self._batch_size)
            ).all()
            for row_id in ids:
                result = session.execute(
                    update(NotificationRecord)
                    .where(NotificationRecord.id == row_id, NotificationRecord.status == "pending")
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

    def list_alerts(self, status: str | None = None) -> list[dict[str, Any]]:
        """Stored alerts, most recently changed first, optionally of one status."""
        query = select(AlertRecord).order_by(AlertRecord.updated_at.desc(), AlertRecord.id.desc())
        if status is not None:
            query = query.where(AlertRecord.status == status)
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
