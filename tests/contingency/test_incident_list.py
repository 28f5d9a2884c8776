"""The incident list (polled by every agent page and, counted, by /healthz) never reads a plan.

Each incident row carries ``plan_summary`` (areas, customer count, cause, maintenance window),
kept in step with ``plan`` on every assignment; ``open_incidents()`` is one COUNT.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import event, null, text, update
from sqlalchemy.orm import sessionmaker

from contingency import ContingencyManager, Plan
from contingency.store import IncidentRecord
from detectors.event import EventState
from tests.contingency.conftest import CUSTOMERS, FakeClock, make_event

# incidents.plan (SQLite quotes it: "plan" is one of its keywords), not incidents.plan_summary
_READS_PLAN = re.compile(r'\bincidents\."?plan"?(?!\w)', re.IGNORECASE)


@pytest.fixture
def statements(sessions: sessionmaker) -> Iterator[list[str]]:
    """The SQL statements run on the manager's database while the test body runs."""
    seen: list[str] = []
    engine = sessions.kw["bind"]

    def record(_conn, _cursor, statement: str, *_args) -> None:  # noqa: ANN001
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def _expected(manager: ContingencyManager, sessions: sessionmaker) -> dict[int, tuple]:
    """(areas, customers, cause) of every incident, from its full plan."""
    with sessions() as session:
        out = {}
        for inc in session.query(IncidentRecord):
            plan = Plan.from_json(inc.plan)
            out[inc.id] = ([a.id for a in plan.areas], len(plan.customers), plan.cause)
        return out


def test_listing_incidents_reads_no_plan_and_shows_what_the_plans_say(
    manager: ContingencyManager, sessions: sessionmaker, clock: FakeClock, statements: list[str],
) -> None:
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    manager.handle([make_event("agg-b", EventState.FIRING)])
    clock.advance(60)
    manager.handle([make_event("olt-a1", EventState.RESOLVED)])
    statements.clear()
    listed = manager.list_incidents()
    assert statements and not [s for s in statements if _READS_PLAN.search(s)], statements
    expected = _expected(manager, sessions)
    assert {i["id"]: ([a["id"] for a in i["areas"]], i["customers"], i["cause"]) for i in listed} == expected
    agg_b = next(i for i in listed if i["element"] == "agg-b")
    assert agg_b["customers"] == sum(1 for c in CUSTOMERS if c.element in {"olt-b1", "olt-b2"})
    assert agg_b["areas"] == [{"id": "haizhu", "name": "Haizhu", "name_zh": "海珠区"}]


def test_the_open_count_is_one_count_query(
    manager: ContingencyManager, clock: FakeClock, statements: list[str],
) -> None:
    manager.handle([make_event("olt-a1", EventState.FIRING), make_event("olt-b1", EventState.FIRING)])
    clock.advance(60)
    manager.handle([make_event("olt-a1", EventState.RESOLVED)])
    statements.clear()
    assert manager.open_incidents() == 1
    assert len(statements) == 1 and "count(" in statements[0].lower(), statements


def test_a_split_incident_gets_its_own_summary(
    manager: ContingencyManager, sessions: sessionmaker, clock: FakeClock,
) -> None:
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    manager.handle([make_event("agg-a", EventState.FIRING)])  # absorbs olt-a1's incident
    clock.advance(60)
    manager.handle([make_event("agg-a", EventState.RESOLVED)])  # olt-a1 goes on alone
    listed = manager.list_incidents()
    expected = _expected(manager, sessions)
    assert {i["id"]: ([a["id"] for a in i["areas"]], i["customers"], i["cause"]) for i in listed} == expected
    goes_on = next(i for i in listed if i["status"] == "open")
    assert goes_on["element"] == "olt-a1" and goes_on["customers"] == sum(1 for c in CUSTOMERS if c.element == "olt-a1")


def test_an_incident_stored_without_a_summary_is_listed_from_its_plan_read_once_when_closed(
    manager: ContingencyManager, sessions: sessionmaker, clock: FakeClock, statements: list[str],
) -> None:
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    clock.advance(60)
    manager.handle([make_event("olt-a1", EventState.RESOLVED)])
    before = manager.list_incidents()
    with sessions.begin() as session:  # as a vigil before plan_summary wrote it
        session.execute(update(IncidentRecord).values(plan_summary=null()))
        assert session.execute(text("SELECT count(*) FROM incidents WHERE plan_summary IS NULL")).scalar() == 1
    statements.clear()
    assert manager.list_incidents() == before
    assert [s for s in statements if _READS_PLAN.search(s)], statements  # read its plan, this once
    statements.clear()
    assert manager.list_incidents() == before
    assert not [s for s in statements if _READS_PLAN.search(s)], statements  # closed: kept
    assert before[0]["customers"] == sum(1 for c in CUSTOMERS if c.element == "olt-a1")


def test_the_summary_follows_a_plan_rewritten_when_its_maintenance_window_is_over() -> None:
    record = IncidentRecord(key="k", element="k", title="t", plan={"areas": [], "customers": [{}, {}]})
    assert record.plan_summary is not None and record.plan_summary["customers"] == 2
    record.plan = {**record.plan, "maintenance": {"id": "mw-1"}, "maintenance_over": True}
    assert record.plan_summary["maintenance_over"] is True and record.plan_summary["maintenance"] == {"id": "mw-1"}

