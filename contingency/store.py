"""Persistent state of contingency: incidents, their audit steps, tickets, banners and SMS.

Times are epoch seconds on the run's clock (``Double``), so SQLite and PostgreSQL agree and a
simulated clock round-trips exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates

__all__ = [
    "BannerRecord",
    "ContingencyBase",
    "IncidentRecord",
    "IncidentStatus",
    "IncidentStep",
    "SmsDelivery",
    "SmsMessage",
    "SmsPreference",
    "SmsStatus",
    "StepKind",
    "StepStatus",
    "TicketEvent",
    "TicketRecord",
    "TicketStatus",
    "plan_summary",
]


class ContingencyBase(DeclarativeBase):
    """Declarative base of every contingency table (the app shell calls create_all on it)."""


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    MERGED = "merged"  # absorbed by an incident on an element above it


class StepKind(StrEnum):
    """Steps of a contingency plan, on opening and on resolution."""

    OPEN_TICKET = "open_ticket"
    ACTIVATE_BANNER = "activate_banner"
    QUEUE_SMS = "queue_sms"
    SEND_SMS = "send_sms"
    CLOSE_TICKET = "close_ticket"
    CLEAR_BANNER = "clear_banner"
    CANCEL_SMS = "cancel_sms"
    QUEUE_RESTORED_SMS = "queue_restored_sms"


class StepStatus(StrEnum):
    TRIGGERED = "TRIGGERED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class TicketStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


OPTED_OUT_ERROR = "the customer opted out (TD)"  # why a queued outage text was cancelled


class SmsStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # claimed by one tick; never picked up again (at most once)
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SmsDelivery(StrEnum):
    """What the gateway's delivery reports (Kannel DLR) say about a sent text."""

    SMSC_ACCEPTED = "smsc_accepted"  # Kannel type 8: the SMSC took it (not yet on the phone)
    BUFFERED = "buffered"  # type 4: queued on the SMSC, e.g. the phone is off
    DELIVERED = "delivered"  # type 1: on the customer's phone (final)
    FAILED = "failed"  # type 2: the SMSC gave up (final)
    SMSC_REJECTED = "smsc_rejected"  # type 16: the SMSC refused it (final)

    @property
    def rank(self) -> int:
        """Reports only move forward: a later report wins only if it ranks higher (a late SMSC
        ack never overwrites a final delivered/failed; the first final report stays)."""
        return {"smsc_accepted": 1, "buffered": 2}.get(self.value, 3)

    @property
    def final(self) -> bool:
        return self.rank == 3

    @property
    def reached_phone(self) -> bool | None:
        """True: delivered; False: it will not reach the phone; None: not known yet."""
        return True if self is SmsDelivery.DELIVERED else False if self.final else None


class IncidentRecord(ContingencyBase):
    """One fault on one element, from first FIRING to last RESOLVED."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    # equals ``key`` while open, NULL once resolved: "key unique while open", portably
    open_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    element: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=IncidentStatus.OPEN.value)
    title: Mapped[str] = mapped_column(String(500))
    areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    fingerprints: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # fp -> state
    opened_at: Mapped[float] = mapped_column(Double)
    resolved_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    # expected restoration, set by the NOC (epoch seconds); banners, scripts and unsent texts say it
    eta: Mapped[float | None] = mapped_column(Double, nullable=True)
    # fingerprint -> element of each event (events below the incident's element join it); None on
    # incidents opened before vigil recorded it: every event is then on ``element``
    event_elements: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    # what the incident list shows of ``plan`` (areas, customer count, cause, maintenance),
    # kept in step with it on every assignment: listing incidents never reads the snapshots of
    # 100,000 customers. NULL on a row written without it (read ``plan`` then).
    plan_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    @validates("plan")
    def _summarise(self, _key: str, plan: dict[str, Any]) -> dict[str, Any]:
        self.plan_summary = plan_summary(plan)
        return plan


def plan_summary(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The incident list's part of a stored plan (``Plan.to_json()``): its areas, the number of
    its customers, its cause and its maintenance window (and whether that is over)."""
    return {
        "areas": [dict(a) for a in plan.get("areas") or ()],
        "customers": len(plan.get("customers") or ()),
        "cause": plan.get("cause", ""),
        "maintenance": plan.get("maintenance"),
        "maintenance_over": bool(plan.get("maintenance_over", False)),
    }


class IncidentStep(ContingencyBase):
    """Audit record of one step of one incident: TRIGGERED, FAILED (with error) or SKIPPED."""

    __tablename__ = "incident_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[float] = mapped_column(Double)


class TicketRecord(ContingencyBase):
    """The proactive ticket of one incident; unique per incident, so opening is idempotent."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), unique=True)
    # the sink's idempotency key: "<incident key>#<incident id>" (an element can fail again later)
    incident_key: Mapped[str] = mapped_column(String(240), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.OPEN.value)
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[float] = mapped_column(Double)
    closed_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class TicketEvent(ContingencyBase):
    """One line of a ticket's timeline."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[float] = mapped_column(Double)
    text: Mapped[str] = mapped_column(Text)


class BannerRecord(ContingencyBase):
    """The outage banner and hotline scripts of one incident for one area."""

    __tablename__ = "banners"
    __table_args__ = (UniqueConstraint("incident_id", "area_id", name="uq_banner_incident_area"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    area_id: Mapped[str] = mapped_column(String(100), index=True)
    text_zh: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    script_zh: Mapped[str] = mapped_column(Text)
    script_en: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Double)
    cleared_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class SmsMessage(ContingencyBase):
    """One SMS to one customer: at most one per incident, phone and kind."""

    __tablename__ = "sms_messages"
    __table_args__ = (
        UniqueConstraint("incident_id", "phone", "kind", name="uq_sms_incident_phone_kind"),
        Index("ix_sms_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # random, fixed at queue time: the sink's idempotency key, unique even across DB resets
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    # normalize_phone(phone): one person whatever the spelling (+86 138..., 138...); every
    # "was this person texted" question is asked on it
    phone_key: Mapped[str] = mapped_column(String(32), index=True, default="", server_default="")
    account: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # outage | restored
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=SmsStatus.QUEUED.value)
    segments: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    queued_at: Mapped[float] = mapped_column(Double)
    due_at: Mapped[float] = mapped_column(Double)  # outage: queued_at + hold_down
    sent_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    # the gateway's delivery reports (SmsDelivery; NULL: none yet, or a sink without them)
    delivery: Mapped[str | None] = mapped_column(String(16), nullable=True)
    delivery_detail: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the SMSC's answer
    reported_at: Mapped[float | None] = mapped_column(Double, nullable=True)  # last report taken
    delivered_at: Mapped[float | None] = mapped_column(Double, nullable=True)  # report "delivered"


class SmsPreference(ContingencyBase):
    """A customer's own answer by SMS: "TD" (stop outage texts) or "KT" (start again)."""

    __tablename__ = "sms_preferences"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)  # normalised (normalize_phone)
    opted_out: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[float] = mapped_column(Double)
    text: Mapped[str] = mapped_column(String(160))  # what the customer sent
