"""The plan of an incident, snapshotted when it opens so a config reload never changes it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from config.models import ContingencyConfig
from contingency.errors import UnknownElementError
from contingency.maintenance import MaintenanceWindow
from contingency.quiet import QuietHours
from contingency.scripts import LANGUAGES, AreaView
from contingency.topology import Topology, normalize_phone

__all__ = ["Plan", "PlannedCustomer", "build_plan"]


@dataclass(frozen=True, slots=True)
class PlannedCustomer:
    """A customer to text, as they were when the incident opened."""

    account: str
    phone: str
    area: str
    element: str
    language: str
    grade: str = "standard"
    name: str = ""
    sms: bool = True  # False: opted out of outage texts


@dataclass(frozen=True, slots=True)
class Plan:
    """Who and what an incident affects, and how to tell them."""

    element: str
    known_element: bool
    areas: tuple[AreaView, ...]
    customers: tuple[PlannedCustomer, ...]
    hold_down: float
    default_language: str
    languages: tuple[str, ...]
    sender: str
    cause: str = ""
    quiet_hours: tuple[str, str, str] | None = None  # (start "HH:MM", end, IANA zone)
    labels: tuple[tuple[str, str], ...] = ()  # of the event that opened the incident
    maintenance: MaintenanceWindow | None = None  # the window the fault fell in (followed while it lasts)
    maintenance_over: bool = False  # the window ended with the fault still there: an outage now

    def planned(self, now: float) -> bool:
        """True while the incident is planned work: inside a maintenance window that is not over."""
        return self.maintenance is not None and not self.maintenance_over and self.maintenance.ends_at > now

    def quiet(self) -> QuietHours | None:
        """The quiet hours snapshotted with the plan, if any."""
        return None if self.quiet_hours is None else QuietHours.parse(*self.quiet_hours)

    def area(self, area_id: str) -> AreaView | None:
        """The planned area with this id, or None."""
        return next((a for a in self.areas if a.id == area_id), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (stored on the incident row)."""
        data = asdict(self)
        data["labels"] = dict(self.labels)
        data["maintenance"] = None if self.maintenance is None else self.maintenance.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        """Inverse of ``to_json``."""
        return cls(
            element=data["element"],
            known_element=data["known_element"],
            areas=tuple(AreaView(**a) for a in data["areas"]),
            customers=tuple(PlannedCustomer(**c) for c in data["customers"]),
            hold_down=float(data["hold_down"]),
            default_language=data["default_language"],
            languages=tuple(data["languages"]),
            sender=data["sender"],
            cause=data.get("cause", ""),
            quiet_hours=tuple(data["quiet_hours"]) if data.get("quiet_hours") else None,  # type: ignore[arg-type]
            labels=tuple(sorted((data.get("labels") or {}).items())),
            maintenance=MaintenanceWindow.from_json(data["maintenance"]) if data.get("maintenance") else None,
            maintenance_over=bool(data.get("maintenance_over", False)),
        )


def build_plan(
    topology: Topology,
    config: ContingencyConfig,
    element: str,
    cause: str,
    *,
    labels: Mapping[str, str] | None = None,
    maintenance: MaintenanceWindow | None = None,
) -> Plan:
    """Snapshot the areas and customers below ``element`` (empty if the element is unknown),
    with the opening event's ``labels`` and the ``maintenance`` window it fell in, if any."""
    try:
        areas = topology.affected_areas(element)
        customers = topology.affected_customers(element)
        known = True
    except UnknownElementError:
        areas, customers, known = [], [], False
    quiet = config.sms.quiet_hours
    planned: list[PlannedCustomer] = []
    seen: set[str] = set()
    for c in customers:
        phone = normalize_phone(c.phone)
        if phone in seen:  # one person, one text, even with two accounts
            continue
        seen.add(phone)
        language = c.language if c.language in LANGUAGES else config.default_language
        planned.append(
            PlannedCustomer(c.account, c.phone, c.area, c.element, language, c.grade, c.name, c.sms)
        )
    return Plan(
        element=element,
        known_element=known,
        areas=tuple(AreaView(a.id, a.name, a.name_zh) for a in areas),
        customers=tuple(planned),
        hold_down=config.hold_down,
        default_language=config.default_language,
        languages=tuple(sorted({p.language for p in planned})),
        sender=config.sms.sender,
        cause=cause,
        quiet_hours=None if quiet is None else (quiet.start, quiet.end, quiet.timezone),
        labels=tuple(sorted((labels or {}).items())),
        maintenance=maintenance,
    )
