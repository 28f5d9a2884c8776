"""An alert's generatorURL (``<externalURL>/alerts?fingerprint=<fp>``) opens that alert."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from alerts.alert import generator_url
from alerts.pipeline import AlertPipeline
from config.models import AlertsConfig
from detectors.event import Event, EventState, Severity
from vigil.db import create_database
from vigil.web import create_app


class _Empty:
    def __getattr__(self, name: str):  # noqa: ANN204
        return lambda *args, **kwargs: []


def _event(element: str, state: EventState = EventState.FIRING) -> Event:
    labels = (("alertname", "InterfaceDown"), ("element", element), ("ifIndex", "1"), ("severity", "critical"))
    return Event(name="InterfaceDown", element=element, state=state, labels=labels, detector="link_state",
                 series="ifOperStatus", value=1.0, expected=0.0, band=(0.0, 0.0), score=1.0, active_at=1.0,
                 severity=Severity.CRITICAL, fired_at=1.0, resolved_at=5.0 if state is EventState.RESOLVED else None,
                 summary=f"xe1 <b>down</b> on {element}")  # fmt: skip


def test_alerts_page_and_api_filter_by_fingerprint(tmp_path: Path) -> None:
    engine, sessions = create_database(f"sqlite:///{tmp_path / 'vigil.db'}")
    try:
        pipeline = AlertPipeline(sessions, AlertsConfig(), clock=lambda: 10.0, external_url="http://vigil")
        a, b, c = _event("agg-1"), _event("agg-2"), _event("agg-3")
        asyncio.run(pipeline.ingest([a, b, c]))
        asyncio.run(pipeline.ingest([_event("agg-3", EventState.RESOLVED)]))
        app = create_app(registry=CollectorRegistry(), render_device_metrics=lambda: "", alerts=pipeline,
                         contingency=_Empty(), status=lambda: {})  # fmt: skip

        async def get(url: str) -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as client:
                return await client.get(url)

        def fetch(url: str) -> httpx.Response:
            return asyncio.run(get(url))

        page = fetch(generator_url("http://vigil", c.fingerprint).removeprefix("http://vigil"))
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert c.fingerprint in page.text and "resolved" in page.text
        assert a.fingerprint not in page.text and b.fingerprint not in page.text
        assert "&lt;b&gt;down&lt;/b&gt;" in page.text  # escaped, not markup

        missing = fetch("/alerts?fingerprint=0000000000000000")
        assert missing.status_code == 404 and "No alert with fingerprint 0000000000000000" in missing.text
        firing = fetch("/alerts")  # no fingerprint: the alerts firing now
        assert firing.status_code == 200
        assert a.fingerprint in firing.text and b.fingerprint in firing.text and c.fingerprint not in firing.text

        one: list[dict[str, Any]] = fetch(f"/api/v1/alerts?fingerprint={b.fingerprint}").json()
        assert [x["fingerprint"] for x in one] == [b.fingerprint]
        assert fetch(f"/api/v1/alerts?fingerprint={b.fingerprint}&status=resolved").json() == []
        assert len(fetch("/api/v1/alerts").json()) == 3
    finally:
        engine.dispose()
