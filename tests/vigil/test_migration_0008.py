"""Migration 0008: incidents.plan_summary, backfilled from each stored incident's plan."""

from __future__ import annotations

import json

from alembic import command
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.orm import sessionmaker

from config.models import ContingencyConfig
from contingency import ContingencyManager, FileSmsSink, Topology
from tests.contingency.conftest import AREAS, CUSTOMERS, ELEMENTS, FakeClock
from vigil.migrate import alembic_config, upgrade


def test_migration_0008_gives_stored_incidents_the_summary_of_their_plan(db_url: str, tmp_path) -> None:  # noqa: ANN001
    plan = {
        "element": "olt-a1", "known_element": True, "hold_down": 300.0, "default_language": "zh-CN",
        "languages": ["zh-CN"], "sender": "10000", "cause": "ge-0/0/1 is down",
        "areas": [{"id": "yuexiu", "name": "Yuexiu", "name_zh": "越秀区"}],
        "customers": [{"account": f"GZ{i}", "phone": f"1380000000{i}", "area": "yuexiu", "element": "olt-a1",
                       "language": "zh-CN"} for i in range(3)],
        "maintenance": {"id": "mw-1", "starts_at": 0.0, "ends_at": 10.0, "comment": "works", "created_by": "noc"},
        "maintenance_over": True,
    }
    engine = create_engine(db_url)
    try:
        upgrade(engine, "0007")
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO incidents (id, key, open_key, element, status, title, areas, plan, fingerprints,"
                " opened_at, resolved_at) VALUES (1, 'olt-a1', NULL, 'olt-a1', 'resolved', 'down', '[\"yuexiu\"]',"
                " :plan, '{}', 1.0, 2.0)"), {"plan": json.dumps(plan)})
        upgrade(engine)
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT plan_summary FROM incidents")).scalar()
        summary = json.loads(stored) if isinstance(stored, str) else stored
        assert summary == {"areas": plan["areas"], "customers": 3, "cause": "ge-0/0/1 is down",
                           "maintenance": plan["maintenance"], "maintenance_over": True}
        clock = FakeClock()
        manager = ContingencyManager(
            sessionmaker(engine, expire_on_commit=False), Topology(ELEMENTS, AREAS, CUSTOMERS),
            ContingencyConfig(), FileSmsSink(tmp_path / "sms.jsonl", clock=clock), clock=clock,
            registry=CollectorRegistry(),
        )
        [listed] = manager.list_incidents()
        assert listed["customers"] == 3 and listed["areas"] == plan["areas"]
        assert listed["maintenance"]["id"] == "mw-1" and listed["maintenance"]["over"] is True
        with engine.begin() as conn:  # and back: the column goes, the incident stays
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0007")
        assert "plan_summary" not in {c["name"] for c in inspect(engine).get_columns("incidents")}
        upgrade(engine)
        assert manager.list_incidents()[0]["customers"] == 3
    finally:
        engine.dispose()
