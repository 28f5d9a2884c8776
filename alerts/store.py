"""Persistence: alerts, aggregation groups and the notification outbox (SQLAlchemy 2).

Portable types only (SQLite and PostgreSQL). Times are stored as naive UTC and read back as
aware UTC datetimes. The app shell creates the tables with ``AlertsBase.metadata.create_all``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from alerts.alert import Alert, generator_url

__all__ = ["AlertGroupRecord", "AlertRecord", "AlertsBase", "NotificationRecord", "SilenceRecord", "UTCDateTime"]


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime stored as naive UTC (SQLite keeps no offsets)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class AlertsBase(DeclarativeBase):
    """Declarative base of the alerts package's tables only."""


class AlertRecord(AlertsBase):
    """Current state of one condition, keyed by its fingerprint."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    annotations: Mapped[dict[str, str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | firing | resolved
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_event_state: Mapped[str] = mapped_column(String(16))

    def to_alert(self, external_url: str) -> Alert:
        """The stored alert as a value (only for firing or resolved records)."""
        if self.status not in ("firing", "resolved"):
            raise ValueError(f"alert {self.fingerprint} is {self.status}, not firing/resolved")
        return Alert(
            fingerprint=self.fingerprint,
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            status="firing" if self.status == "firing" else "resolved",
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            generator_url=generator_url(external_url, self.fingerprint),
        )


class AlertGroupRecord(AlertsBase):
    """One aggregation group per (integration, group key) and its notification log entry.

    ``members`` are the fingerprints currently in the group; ``last_firing``/``last_resolved``
    are what the last notification said (Alertmanager's nflog entry); ``seq`` counts them.
    ``next_flush_at`` is NULL while the group is empty.
    """

    __tablename__ = "alert_groups"
    __table_args__ = (UniqueConstraint("integration", "group_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    integration: Mapped[str] = mapped_column(String(200))
    receiver: Mapped[str] = mapped_column(String(200))
    group_key: Mapped[str] = mapped_column(String(1000))
    group_labels: Mapped[dict[str, str]] = mapped_column(JSON)
    members: Mapped[list[str]] = mapped_column(JSON)
    group_wait: Mapped[float] = mapped_column(Float)
    group_interval: Mapped[float] = mapped_column(Float)
    repeat_interval: Mapped[float] = mapped_column(Float)
    next_flush_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_firing: Mapped[list[str]] = mapped_column(JSON)
    last_resolved: Mapped[list[str]] = mapped_column(JSON)
    seq: Mapped[int] = mapped_column(Integer, default=0)


class NotificationRecord(AlertsBase):
    """The outbox: one message for one integration, delivered by ``AlertPipeline.flush``.

    ``status``: pending -> sending (claimed) -> sent | failed; a retryable failure (or a send
    cut off by a graceful stop) goes back to pending with a later ``next_attempt_at``; a pending
    row replaced by a newer one of its integration and group becomes ``superseded``.
    ``dedup_key`` is unique, so the same group flush is never enqueued twice.
    """

    __tablename__ = "alert_notifications"
    __table_args__ = (Index("ix_alert_notifications_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    receiver: Mapped[str] = mapped_column(String(200))
    integration: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(Text)
    group_key: Mapped[str] = mapped_column(String(1000))
    fingerprints: Mapped[list[str]] = mapped_column(JSON)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SilenceRecord(AlertsBase):
    """One silence or maintenance window (see :mod:`alerts.silence`); expired ones are kept."""

    __tablename__ = "silences"
    __table_args__ = (Index("ix_silences_window", "starts_at", "ends_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    matchers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # announced at least SCHEDULE_LEAD ahead of its start when made (kept on later edits)
    scheduled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
