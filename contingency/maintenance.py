"""Planned maintenance: what the contingency plan does when a fault falls inside a window.

A maintenance window is planned work on the network (a change ticket): the NOC announces it
(in vigil, as a silence whose ``startsAt`` is in the future), the customers were told through
the change process, and a fault it causes is expected. The contingency plan still opens the
ticket and shows the hotline agents a *planned maintenance* banner (with the window's end as
the expected restoration) so callers get the right answer, but it does not text customers
about it: the outage SMS wait for the window's end and are cancelled if the fault clears first,
exactly like quiet hours. If the work overruns, the fault is now an outage and the customers
are texted when the window ends (extended or ended early windows are followed at each tick).

This module knows nothing of alerts: the app shell passes a :data:`MaintenanceLookup` (vigil
builds it from the alert pipeline's silences).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MaintenanceLookup", "MaintenanceWindow"]


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A maintenance window in force: who announced it, why, and until when (epoch seconds)."""

    id: str
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str = ""

    def __post_init__(self) -> None:
        if not self.ends_at > self.starts_at:
            raise ValueError(f"maintenance window {self.id!r}: ends_at must be after starts_at")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "starts_at": self.starts_at, "ends_at": self.ends_at,
                "comment": self.comment, "created_by": self.created_by}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MaintenanceWindow:
        return cls(id=str(data["id"]), starts_at=float(data["starts_at"]), ends_at=float(data["ends_at"]),
                   comment=str(data.get("comment", "")), created_by=str(data.get("created_by", "")))


#: The window covering an event with these labels now, or None. Raising is allowed: the
#: manager then treats the fault as unplanned (customers are texted rather than left in the dark).
MaintenanceLookup = Callable[[Mapping[str, str]], MaintenanceWindow | None]
