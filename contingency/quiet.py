"""Quiet hours: no customer SMS at night; what falls due then waits for the morning.

``QuietHours(start, end, zone)`` is a daily window in the customers' local time (it may cross
midnight: 22:00-08:00). :meth:`QuietHours.defer` moves a due time inside the window to the
window's end, so an outage text due at 02:10 goes at 08:00 -- and is cancelled with the other
unsent outage texts if the fault clears before then (no "outage" then "restored" at breakfast for
a fault nobody noticed). A window with ``start == end`` is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["QuietHours"]


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily quiet window ``[start, end)`` in ``zone``."""

    start: time
    end: time
    zone: str = "Asia/Shanghai"

    @classmethod
    def parse(cls, start: str, end: str, zone: str = "Asia/Shanghai") -> QuietHours:
        """From ``"22:00"``, ``"08:00"`` and an IANA zone name (``ValueError`` if malformed)."""
        ZoneInfo(zone)  # raises for an unknown zone
        return cls(time.fromisoformat(start), time.fromisoformat(end), zone)

    def contains(self, ts: float) -> bool:
        """Whether POSIX time ``ts`` falls inside the window."""
        local = datetime.fromtimestamp(ts, ZoneInfo(self.zone)).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def defer(self, ts: float) -> float:
        """``ts`` itself outside the window, else the end of the window it falls in."""
        if not self.contains(ts):
            return ts
        zone = ZoneInfo(self.zone)
        local = datetime.fromtimestamp(ts, zone)
        end = datetime.combine(local.date(), self.end, tzinfo=zone)
        if end <= local:  # in the part before midnight: the window ends tomorrow
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=zone)
        return end.timestamp()

    def describe(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.zone}"
