"""Silences and maintenance windows: label matchers that mute firing alerts for a time.

A :class:`Silence` is Alertmanager's: a list of :class:`Matcher` (``=``, ``!=``, ``=~``,
``!~``; regular expressions are anchored), ``starts_at`` / ``ends_at``, ``created_by`` and a
``comment``. A maintenance window is a silence that starts in the future (state ``pending``
until then). A silence mutes an alert while it is ``active`` and *every* matcher matches the
alert's labels (a missing label reads as ``""``, as in Alertmanager).

What a silence mutes: *firing* notifications. A resolved notification about an alert the
receiver heard firing is still sent (the NOC gets closure), unlike Alertmanager, which drops it.

:class:`SilenceStore` keeps them in the database (table ``silences``), with the API of
Alertmanager's ``/api/v2/silences``: create or update (:meth:`SilenceStore.upsert`), expire,
get, list. Expired silences are kept (an audit trail of who muted what) and listed as
``expired``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.alert import format_time, to_datetime
from alerts.store import SilenceRecord

__all__ = ["MatchType", "Matcher", "Muter", "Silence", "SilenceState", "SilenceStore", "parse_time"]

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


MAX_CREATED_BY = 200
"""The longest ``createdBy`` (the ``silences.created_by`` column's width)."""
MAX_COMMENT = 10_000
"""The longest ``comment``: a change ticket and a few lines of why, not a document."""

SCHEDULE_LEAD = timedelta(minutes=1)
"""How far ahead of its start a silence must be made to count as a maintenance window (a client
whose clock runs a few seconds ahead must not turn an ad-hoc mute into one)."""


class MatchType(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


class SilenceState(StrEnum):
    PENDING = "pending"  # a maintenance window that has not started
    ACTIVE = "active"
    EXPIRED = "expired"


class Muter(Protocol):
    """Something that can hold back a firing alert (a silence, an inhibition rule)."""

    def mutes(self, labels: Mapping[str, str]) -> bool: ...


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label condition; regular expressions must match the whole value."""

    name: str
    value: str
    type: MatchType = MatchType.EQUAL
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _LABEL_NAME.match(self.name):
            raise ValueError(f"matcher: invalid label name {self.name!r}")
        if self.type in (MatchType.REGEX, MatchType.NOT_REGEX):
            try:
                object.__setattr__(self, "_regex", re.compile(f"^(?:{self.value})$"))
            except re.error as err:
                raise ValueError(f"matcher {self.name}{self.type}{self.value!r}: bad regex: {err}") from err

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.type is MatchType.EQUAL:
            return value == self.value
        if self.type is MatchType.NOT_EQUAL:
            return value != self.value
        assert self._regex is not None
        hit = self._regex.match(value) is not None
        return hit if self.type is MatchType.REGEX else not hit

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``element="agg-1"``, ``alertname=~"Interface.*"``, ``severity!="info"``."""
        m = _MATCHER.match(text)
        if m is None:
            raise ValueError(f'matcher {text!r}: expected name="value" with =, !=, =~ or !~')
        value = re.sub(r"\\(.)", r"\1", m.group(3))
        return cls(m.group(1), value, MatchType(m.group(2)))

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Matcher:
        """Alertmanager's JSON form: ``{"name", "value", "isRegex", "isEqual"}``."""
        try:
            name, value = data["name"], data["value"]
        except (KeyError, TypeError) as err:
            raise ValueError(f"matcher {data!r}: needs name and value") from err
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError(f"matcher {data!r}: name and value must be strings")
        regex, equal = bool(data.get("isRegex", False)), bool(data.get("isEqual", True))
        kind = {
            (False, True): MatchType.EQUAL,
            (False, False): MatchType.NOT_EQUAL,
            (True, True): MatchType.REGEX,
            (True, False): MatchType.NOT_REGEX,
        }[(regex, equal)]
        return cls(name, value, kind)

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.type in (MatchType.REGEX, MatchType.NOT_REGEX),
            "isEqual": self.type in (MatchType.EQUAL, MatchType.REGEX),
        }

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.type}"{escaped}"'


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


@dataclass(frozen=True, slots=True)
class Silence:
    """A validated silence (times are aware UTC datetimes)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    updated_at: datetime
    created_at: datetime | None = None  # None: made before vigil recorded it
    # announced at least SCHEDULE_LEAD before its start when it was made: a planned maintenance
    # window, not an ad-hoc mute (decided once; editing or extending it later does not change it)
    scheduled: bool = False

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError("silence: at least one matcher is required")
        if all(m.matches({}) for m in self.matchers):
            # Alertmanager's rule: a silence whose matchers all match an empty label set would
            # silence everything.
            raise ValueError("silence: at least one matcher must not match the empty string")
        if self.ends_at <= self.starts_at:
            raise ValueError("silence: endsAt must be after startsAt")
        if not self.created_by.strip():
            raise ValueError("silence: createdBy is required")
        if not self.comment.strip():
            raise ValueError("silence: comment is required (say why, e.g. the change ticket)")

    def state(self, now: datetime) -> SilenceState:
        if now < self.starts_at:
            return SilenceState.PENDING
        return SilenceState.ACTIVE if now < self.ends_at else SilenceState.EXPIRED

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        return self.state(now) is SilenceState.ACTIVE and matches_all(self.matchers, labels)

    def to_api(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [m.to_api() for m in self.matchers],
            "startsAt": format_time(self.starts_at),
            "endsAt": format_time(self.ends_at),
            "updatedAt": format_time(self.updated_at),
            "createdBy": self.created_by,
            "comment": self.comment,
            "status": {"state": str(self.state(now))},
        }


def parse_time(value: Any, what: str) -> datetime:
    """An RFC 3339 time (``2026-11-23T18:00:00Z``, offsets allowed) as an aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError(f"silence: {what} must be an RFC 3339 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as err:
        raise ValueError(f"silence: {what} {value!r} is not an RFC 3339 time") from err
    if parsed.tzinfo is None:
        raise ValueError(f"silence: {what} {value!r} needs a time zone (Z or +08:00)")
    try:
        return to_datetime(parsed.timestamp())
    except (OverflowError, ValueError, OSError) as err:  # 9999-12-31T23:59-08:00 is year 10000 in UTC
        raise ValueError(f"silence: {what} {value!r} is out of range (years 1-9999 in UTC)") from err


def _text(data: Mapping[str, Any], key: str, limit: int) -> str:
    """The string field ``key`` of a silence's JSON (missing or null: ``""``, which the
    :class:`Silence` refuses as not given); ValueError naming ``key`` for another type or
    more than ``limit`` characters."""
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"silence: {key} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise ValueError(f"silence: {key} is {len(value)} characters long, at most {limit} allowed")
    return value


class SilenceStore:
    """Silences in the database, on the pipeline's clock."""

    def __init__(self, sessions: sessionmaker[Session], *, clock: Callable[[], float]) -> None:
        self._sessions = sessions
        self._clock = clock

    def now(self) -> datetime:
        return to_datetime(self._clock())

    def upsert(self, data: Mapping[str, Any]) -> str:
        """Create a silence from Alertmanager's JSON (or update the one named by ``id``).

        ``startsAt`` defaults to now; ``endsAt`` is required. Updating an expired silence
        creates a new one (as Alertmanager does). Raises ``ValueError`` naming the bad field,
        ``KeyError`` for an unknown ``id``.
        """
        if not isinstance(data, Mapping):
            raise ValueError("silence: expected a JSON object")
        now = self.now()
        raw = data.get("matchers")
        if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
            raise ValueError("silence: matchers must be a list")
        matchers = tuple(
            Matcher.parse(m) if isinstance(m, str) else Matcher.from_api(m) for m in raw
        )
        starts = parse_time(data["startsAt"], "startsAt") if data.get("startsAt") else now
        if "endsAt" not in data:
            raise ValueError("silence: endsAt is required")
        ends = parse_time(data["endsAt"], "endsAt")
        created_by = _text(data, "createdBy", MAX_CREATED_BY)
        comment = _text(data, "comment", MAX_COMMENT)
        starts = max(starts, now) if ends > now else starts
        silence_id = data.get("id") or None
        with self._sessions.begin() as session:
            record = None
            if silence_id is not None:
                record = session.get(SilenceRecord, str(silence_id))
                if record is None:
                    raise KeyError(str(silence_id))
                if _from_record(record).state(now) is SilenceState.EXPIRED:
                    record = None  # an expired silence is history: a new one replaces it
            new_id = record.id if record is not None else str(uuid.uuid4())
            silence = Silence(
                id=new_id,
                matchers=matchers,
                starts_at=starts,
                ends_at=ends,
                created_by=created_by,
                comment=comment,
                updated_at=now,
            )
            if record is None:
                record = SilenceRecord(id=new_id, created_at=now, scheduled=starts - now >= SCHEDULE_LEAD)
                session.add(record)
            record.matchers = [m.to_api() for m in silence.matchers]
            record.starts_at = silence.starts_at
            record.ends_at = silence.ends_at
            record.created_by = silence.created_by
            record.comment = silence.comment
            record.updated_at = now
        return new_id

    def expire(self, silence_id: str) -> None:
        """End a silence now (a pending one is ended before it starts). ``KeyError`` if unknown."""
        now = self.now()
        with self._sessions.begin() as session:
            record = session.get(SilenceRecord, silence_id)
            if record is None:
                raise KeyError(silence_id)
            if record.ends_at > now:
                record.ends_at = max(now, record.starts_at + timedelta(microseconds=1))
                if record.starts_at >= now:  # pending, or started this very instant
                    record.starts_at = now - timedelta(microseconds=1)
                    record.ends_at = now
                record.updated_at = now

    def get(self, silence_id: str) -> Silence:
        with self._sessions() as session:
            record = session.get(SilenceRecord, silence_id)
            if record is None:
                raise KeyError(silence_id)
            return _from_record(record)

    def list(self) -> list[Silence]:
        """Every silence, active first, then pending, then expired (newest first within each)."""
        with self._sessions() as session:
            silences = [_from_record(r) for r in session.scalars(select(SilenceRecord))]
        now = self.now()
        order = {SilenceState.ACTIVE: 0, SilenceState.PENDING: 1, SilenceState.EXPIRED: 2}
        return sorted(silences, key=lambda s: (order[s.state(now)], -s.updated_at.timestamp()))

    def active(self, session: Session, now: datetime) -> list[Silence]:
        """The silences in force at ``now`` (read in the caller's transaction)."""
        rows = session.scalars(
            select(SilenceRecord).where(SilenceRecord.starts_at <= now, SilenceRecord.ends_at > now)
        )
        return [_from_record(r) for r in rows]


    def matching(self, labels: Mapping[str, str], *, scheduled: bool = False) -> Silence | None:
        """The active silence muting these labels now (the one ending last), or None;
        with ``scheduled``, only silences announced ahead of their start (maintenance windows)."""
        now = self.now()
        with self._sessions() as session:
            hits = [s for s in self.active(session, now)
                    if matches_all(s.matchers, labels) and (s.scheduled or not scheduled)]
        return max(hits, key=lambda s: s.ends_at, default=None)


def _from_record(record: SilenceRecord) -> Silence:
    return Silence(
        id=record.id,
        matchers=tuple(Matcher.from_api(m) for m in record.matchers),
        starts_at=record.starts_at,
        ends_at=record.ends_at,
        created_by=record.created_by,
        comment=record.comment,
        updated_at=record.updated_at,
        created_at=record.created_at,
        scheduled=bool(record.scheduled),
    )
