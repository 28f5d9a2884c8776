"""The customer SMS outbox: every queued text is sent at most once, in batches.

Texts are rows of ``sms_messages`` (queued by the contingency manager). A send is three steps:
*claim* (one transaction moves up to ``batch`` due rows queued -> sending with ``UPDATE ...
RETURNING``, so no two ticks or processes can ever take the same row), *send* (the sink, one call
per text, idempotent per ``message_id``), *record* (one transaction writes the batch's outcomes).
A retryable failure goes back to queued with an exponential back-off; a permanent one (or a sink
bug: we cannot know the text was not delivered) is failed for good; a crash between claim and
record leaves rows in "sending", never sent twice. Measured in ``benchmarks/contingency.py``.

No lock is held while texts are sent: claim and record are transactions of their own, and the
send in between is network time (a Kannel that never answers costs its timeout per text). The
caller must not hold a lock others wait on across :meth:`SmsOutbox.send_due` (the contingency
manager claims nothing under its lock). A sink with ``max_concurrent_sends`` > 1 (Kannel) gets a
batch's texts that many at a time, so one slow request does not hold up the texts behind it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from contingency.errors import ContingencyError, SmsError, SmsPermanentError, SmsRetryableError
from contingency.sms import SmsSink
from contingency.store import (
    OPTED_OUT_ERROR,
    IncidentRecord,
    IncidentStatus,
    SmsMessage,
    SmsPreference,
    SmsStatus,
    StepKind,
    StepStatus,
)

__all__ = ["SmsOutbox", "error_code"]

log = logging.getLogger(__name__)

_RETRY_BASE = 30.0  # seconds before the first retry of a retryable SMS failure
_RETRY_MAX = 600.0


def error_code(err: BaseException) -> str:
    """A short, stable code for an operational failure (audit rows, metrics)."""
    if isinstance(err, ContingencyError):
        return err.code
    if isinstance(err, SQLAlchemyError):
        return "database"
    return f"internal:{type(err).__name__}"


class _Claimed(NamedTuple):
    """A text moved to "sending" by one tick (only that tick may send it)."""

    id: int
    phone: str
    text: str
    kind: str
    message_id: str
    incident_id: int
    attempts: int
    due_at: float


Outcome = tuple[SmsStatus, str | None, float | None]  # new status, error, next due time


class SmsOutbox:
    """Sends due texts through ``sink``; reports each result and audits failures.

    Parameters
    ----------
    sessions : sessionmaker
        The database holding ``sms_messages``.
    sink : SmsSink
        Where texts go (file, console, Kannel).
    on_result : callable
        ``on_result(kind, result[, n])`` for "sent", "retried", "failed" and "cancelled" (metrics).
    audit : callable
        ``audit(incident_id, StepKind.SEND_SMS, StepStatus.FAILED, at, detail=..., error_code=...,
        error_message=...)`` for each failed attempt (called from the sending threads).
    concurrency : int, optional
        How many texts of a batch are sent at a time; default: the sink's ``max_concurrent_sends``
        (1 if it has none: the file and console sinks keep their order).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        sink: SmsSink,
        *,
        on_result: Callable[..., None],
        audit: Callable[..., None],
        concurrency: int | None = None,
    ) -> None:
        self._sessions = sessions
        self._sink = sink
        self._on_result = on_result
        self._audit = audit
        if concurrency is None:
            concurrency = int(getattr(sink, "max_concurrent_sends", 1) or 1)
        self._concurrency = max(1, concurrency)

    def send_due(self, now: float, *, budget: float = 1.0, batch: int = 200) -> Tally[int]:
        """Send texts due at ``now``, batch after batch, claiming no new batch after ``budget``
        seconds. Returns how many were sent per incident."""
        deadline = time.monotonic() + budget
        sent: Tally[int] = Tally()
        while True:
            claimed = self._claim(now, batch)
            if not claimed:
                break
            outcomes = self._send_batch(claimed, now)
            self._record(claimed, outcomes, now)
            for row, (status, _, _) in zip(claimed, outcomes, strict=True):
                if status is SmsStatus.SENT:
                    sent[row.incident_id] += 1
            if len(claimed) < batch or time.monotonic() >= deadline:
                break
        return sent

    def _claim(self, now: float, limit: int) -> list[_Claimed]:
        """Move up to ``limit`` due texts queued -> sending in one transaction and return them.

        First, in the same transaction, due outage texts that must no longer go are cancelled:
        their incident is over (another process resolved it while this text was being tried,
        and a retry put it back) or the customer has since answered "TD".
        """
        with self._sessions.begin() as session:
            due_outage = (SmsMessage.status == SmsStatus.QUEUED.value, SmsMessage.due_at <= now,
                          SmsMessage.kind == "outage")
            closed = select(IncidentRecord.id).where(IncidentRecord.status != IncidentStatus.OPEN.value)
            over = session.execute(
                update(SmsMessage).where(*due_outage, SmsMessage.incident_id.in_(closed.scalar_subquery()))
                .values(status=SmsStatus.CANCELLED.value, error="incident over before this text went")
                .execution_options(synchronize_session=False)
            ).rowcount or 0  # type: ignore[attr-defined]
            stopped = select(SmsPreference.phone).where(SmsPreference.opted_out.is_(True))
            opted = session.execute(
                update(SmsMessage).where(*due_outage, SmsMessage.phone_key.in_(stopped.scalar_subquery()))
                .values(status=SmsStatus.CANCELLED.value, error=OPTED_OUT_ERROR)
                .execution_options(synchronize_session=False)
            ).rowcount or 0  # type: ignore[attr-defined]
            if over + opted:
                self._on_result("outage", "cancelled", over + opted)
            due = select(SmsMessage.id).where(
                SmsMessage.status == SmsStatus.QUEUED.value, SmsMessage.due_at <= now
            ).order_by(SmsMessage.due_at, SmsMessage.id).limit(limit)
            rows = session.execute(
                update(SmsMessage)
                .where(SmsMessage.id.in_(due.scalar_subquery()), SmsMessage.status == SmsStatus.QUEUED.value)
                .values(status=SmsStatus.SENDING.value, attempts=SmsMessage.attempts + 1)
                .returning(SmsMessage.id, SmsMessage.phone, SmsMessage.text, SmsMessage.kind,
                           SmsMessage.message_id, SmsMessage.incident_id, SmsMessage.attempts,
                           SmsMessage.due_at)
                .execution_options(synchronize_session=False)
            ).all()
        return sorted((_Claimed(*r) for r in rows), key=lambda c: c.id)

    def _send_batch(self, claimed: list[_Claimed], now: float) -> list[Outcome]:
        """Send claimed texts, up to ``concurrency`` at a time; outcomes in ``claimed``'s order."""
        workers = min(self._concurrency, len(claimed))
        if workers <= 1:
            return [self._send(row, now) for row in claimed]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vigil-sms") as pool:
            return list(pool.map(lambda row: self._send(row, now), claimed))

    def _send(self, row: _Claimed, now: float) -> Outcome:
        """Send one claimed text: (new status, error, next due time for a retry)."""
        try:
            self._sink.send(row.phone, row.text, message_id=row.message_id)
        except SmsRetryableError as err:
            delay = min(_RETRY_BASE * 2 ** (row.attempts - 1), _RETRY_MAX)
            self._on_result(row.kind, "retried")
            self._audit(row.incident_id, StepKind.SEND_SMS, StepStatus.FAILED, now,
                        detail=f"to {row.phone}, retry in {delay:g}s",
                        error_code=err.code, error_message=str(err))
            return SmsStatus.QUEUED, str(err), now + delay
        except Exception as err:  # permanent, or a sink bug: we cannot know it wasn't delivered
            if not isinstance(err, SmsError):
                log.exception("SMS sink raised an unexpected error for %s", row.phone)
            code = err.code if isinstance(err, SmsPermanentError) else error_code(err)
            self._on_result(row.kind, "failed")
            self._audit(row.incident_id, StepKind.SEND_SMS, StepStatus.FAILED, now,
                        detail=f"to {row.phone}", error_code=code, error_message=str(err))
            return SmsStatus.FAILED, str(err), None
        self._on_result(row.kind, "sent")
        return SmsStatus.SENT, None, None

    def _record(
        self, claimed: list[_Claimed], outcomes: list[Outcome], now: float
    ) -> None:
        """Write a batch's outcomes in one transaction (bulk UPDATE by primary key)."""
        params = [
            {"id": row.id, "status": status.value, "error": error,
             "sent_at": now if status is SmsStatus.SENT else None,
             "due_at": due if due is not None else row.due_at}
            for row, (status, error, due) in zip(claimed, outcomes, strict=True)
        ]
        with self._sessions.begin() as session:
            session.execute(update(SmsMessage), params)
