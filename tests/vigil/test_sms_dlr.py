"""Delivery reports: a real Kannel reports what happened to each customer text at vigil's
``/api/v1/sms/dlr``, and the hotline agent's caller lookup says "delivered".

On this machine Kannel's fake SMSC makes bearerbox report twice per text, in either order: type 8
(the SMSC accepted it, reply "ACK/") and type 1 (delivered to the phone, as fakesmsc "is" the phone).
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

from config.models import ContingencyConfig
from contingency import ContingencyBase, ContingencyManager, FileSmsSink, SmsMessage, Topology
from contingency.sms import KannelSmsSink, SmsSink, kannel_escape
from detectors.event import EventState
from tests.conftest import serve_app
from tests.contingency.conftest import AREAS, CUSTOMERS, ELEMENTS, HOLD_DOWN, FakeClock, make_event
from tests.kannel import start_kannel
from tests.vigil.stubs import NoAlerts
from vigil.web import create_app

TOKEN = "gw s3cret/é+%C3"  # needs escaping twice over: for a URL, and for Kannel's %X escape codes
OLT_A1 = [c for c in CUSTOMERS if c.element == "olt-a1"]


class Stack:
    """A manager on SQLite and the web app over it."""

    def __init__(self, tmp_path: Path, sink: SmsSink, *, write_token: str | None = TOKEN) -> None:
        self.engine = create_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
        ContingencyBase.metadata.create_all(self.engine)
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.manager = ContingencyManager(
            sessionmaker(self.engine, expire_on_commit=False), Topology(ELEMENTS, AREAS, CUSTOMERS),
            ContingencyConfig(hold_down=HOLD_DOWN), sink, clock=self.clock, registry=self.registry)
        self.app: FastAPI = create_app(registry=self.registry, render_device_metrics=lambda: "", alerts=NoAlerts(),
                                       contingency=self.manager, status=lambda: {}, write_token=write_token)

    def text_olt_a1(self) -> dict[str, str]:
        """olt-a1 fails and its 10 customers are texted: phone -> message id."""
        self.manager.handle([make_event("olt-a1", EventState.FIRING)])
        self.clock.advance(HOLD_DOWN)
        assert self.manager.tick() == len(OLT_A1)
        return {m["recipient"]: self.message_id(m["id"]) for m in self.manager.list_sms()}

    def message_id(self, row_id: int) -> str:
        with self.manager._sessions() as session:
            return session.scalar(select(SmsMessage.message_id).where(SmsMessage.id == row_id))

    def get(self, path: str, **params: Any) -> httpx.Response:
        async def ask() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://vigil") as c:
                return await c.get(path, params=params)

        return asyncio.run(ask())


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path, FileSmsSink(tmp_path / "sms.jsonl"))
    yield s
    s.engine.dispose()


def test_the_dlr_callback_needs_the_write_token_and_is_never_open(stack: Stack, tmp_path: Path) -> None:
    mid = next(iter(stack.text_olt_a1().values()))
    assert stack.get("/api/v1/sms/dlr", id=mid, type=1).status_code == 401
    assert stack.get("/api/v1/sms/dlr", id=mid, type=1, token="wrong").status_code == 401
    (tmp_path / "open").mkdir()
    closed = Stack(tmp_path / "open", FileSmsSink(tmp_path / "open" / "sms.jsonl"), write_token=None)
    try:
        answer = closed.get("/api/v1/sms/dlr", id=mid, type=1, token=TOKEN)
        assert answer.status_code == 403 and "http.write_token" in answer.json()["detail"]
    finally:
        closed.engine.dispose()
    assert stack.manager.list_sms()[0]["delivery"] is None  # nothing recorded by refused calls


def test_unknown_ids_are_404_and_bad_types_422(stack: Stack) -> None:
    mid = next(iter(stack.text_olt_a1().values()))
    missing = stack.get("/api/v1/sms/dlr", id="no-such-text", type=1, token=TOKEN)
    assert missing.status_code == 404 and missing.json() == {"detail": "no SMS with message id 'no-such-text'"}
    for bad in (0, 32, 256, "delivered"):
        answer = stack.get("/api/v1/sms/dlr", id=mid, type=bad, token=TOKEN)
        assert answer.status_code == 422, (bad, answer.text)
    no_type = stack.get("/api/v1/sms/dlr", id=mid, token=TOKEN)
    assert no_type.status_code == 422
    assert "not a Kannel delivery report type" in stack.get("/api/v1/sms/dlr", id=mid, type=32,
                                                            token=TOKEN).json()["detail"]
    assert all(m["delivery"] is None for m in stack.manager.list_sms())


def test_reports_move_forward_are_idempotent_and_reach_the_agents_lookup(stack: Stack) -> None:
    ids = stack.text_olt_a1()
    phone, other = OLT_A1[0].phone, OLT_A1[1].phone

    def dlr(dlr_type: int, reply: str = "", who: str = phone) -> dict[str, Any]:
        answer = stack.get("/api/v1/sms/dlr", id=ids[who], type=dlr_type, reply=reply, token=TOKEN)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def lookup(who: str) -> dict[str, Any]:
        return stack.get(f"/api/v1/callers/{who}/impact").json()["incidents"][0]["sms"]

    assert lookup(phone)["status"] == "sent"
    stack.clock.advance(1)
    done = dlr(1)
    assert done["message_id"] == ids[phone] and done["report"] == done["delivery"] == "delivered"
    assert done["changed"] is True and done["delivered_at"] == done["reported_at"] is not None
    first = lookup(phone)
    assert first["status"] == "delivered" and first["delivered_at"] is not None
    stack.clock.advance(1)
    late_ack = dlr(8, "ACK/")  # the SMSC's acknowledgement arriving after the phone's report
    assert late_ack["changed"] is False and late_ack["delivery"] == "delivered"
    assert dlr(1)["changed"] is False  # a repeat
    assert lookup(phone) == first

    assert dlr(8, "ACK/", other)["delivery"] == "smsc_accepted"
    assert lookup(other)["status"] == "sent"
    failed = dlr(2, "NACK/0x0000000b/Invalid Destination Address", other)
    assert failed["changed"] is True and failed["delivered_at"] is None
    assert lookup(other)["status"] == "not_delivered"

    metrics = stack.get("/metrics").text
    assert 'vigil_sms_delivery_reports_total{status="delivered"} 2.0' in metrics
    assert 'vigil_sms_delivery_reports_total{status="smsc_accepted"} 2.0' in metrics
    assert 'vigil_sms_delivery_reports_total{status="failed"} 1.0' in metrics
    notifications = {n["recipient"]: n for n in stack.get("/api/v1/notifications", channel="sms").json()}
    assert notifications[phone]["delivery"] == "delivered" and notifications[other]["delivery"] == "failed"


def test_a_real_kannel_reports_each_text_delivered(tmp_path: Path) -> None:
    holder: dict[str, SmsSink] = {}

    class LateSink:  # Kannel's URL is known once it runs, and it needs the app's URL first
        def send(self, phone: str, text: str, *, message_id: str) -> None:
            holder["sink"].send(phone, text, message_id=message_id)

    stack = Stack(tmp_path, LateSink())
    arrived: list[tuple[dict[str, str], int]] = []  # what Kannel asked for, and vigil's answer

    @stack.app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        if request.url.path == "/api/v1/sms/dlr":
            query = urllib.parse.parse_qsl(request.url.query, keep_blank_values=True)
            arrived.append((dict(query), response.status_code))
        return response

    (tmp_path / "kannel").mkdir()
    try:
        with serve_app(stack.app) as url:
            with start_kannel(tmp_path / "kannel") as kannel:
                holder["sink"] = KannelSmsSink(kannel.url, username="vigil", password="vigilpw", sender="10000",
                                               dlr_url=f"{url}/api/v1/sms/dlr?token={kannel_escape(TOKEN)}")
                ids = stack.text_olt_a1()
                got = kannel.received(len(OLT_A1))
                assert {to for _, to, _ in got} == {c.phone for c in OLT_A1}

                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and len(arrived) < 2 * len(OLT_A1):
                    time.sleep(0.2)
            # each text: one SMSC acknowledgement (8, "ACK/") and one delivery (1), token intact
            assert all(status == 200 for _, status in arrived), arrived
            assert all(q["token"] == TOKEN for q, _ in arrived)
            reports = sorted((q["id"], q["type"], q["reply"]) for q, _ in arrived)
            assert reports == sorted([(mid, "1", "") for mid in ids.values()]
                                     + [(mid, "8", "ACK/") for mid in ids.values()])

            rows = {m["recipient"]: m for m in stack.manager.list_sms()}
            assert all(m["delivery"] == "delivered" and m["delivered_at"] for m in rows.values()), rows
            reported = stack.registry.get_sample_value
            assert reported("vigil_sms_delivery_reports_total", {"status": "delivered"}) == 10
            assert reported("vigil_sms_delivery_reports_total", {"status": "smsc_accepted"}) == 10
            impact = httpx.get(f"{url}/api/v1/callers/{OLT_A1[0].phone}/impact").json()
            assert impact["incidents"][0]["sms"]["status"] == "delivered"
    finally:
        stack.engine.dispose()


def test_the_runtime_gives_kannel_vigils_public_callback_with_the_token() -> None:
    from config.models import SiteConfig
    from vigil.runtime import Runtime, RuntimeOptions

    def site(http: dict[str, Any], **kannel: Any) -> SiteConfig:
        return SiteConfig.model_validate({"http": http, "contingency": {"sms": {"sink": "kannel", "kannel": {
            "url": "http://127.0.0.1:13013", "username": "u", "password": "p", **kannel}}}})

    local = RuntimeOptions(http_host="127.0.0.1", http_port=8081)
    assert Runtime._dlr_url(site({}), local, "t/1") == "http://127.0.0.1:8081/api/v1/sms/dlr?token=t%%2F1"
    public = site({"public_url": "https://vigil.example.com/noc/"})
    assert Runtime._dlr_url(public, RuntimeOptions(http_host="0.0.0.0"), "t") == \
        "https://vigil.example.com/noc/api/v1/sms/dlr?token=t"
    assert Runtime._dlr_url(site({}), RuntimeOptions(http_host="0.0.0.0"), "t") is None  # nowhere to call back
    assert Runtime._dlr_url(site({}), local, None) is None  # the callback would answer 403
    assert Runtime._dlr_url(site({}, delivery_reports=False), local, "t") is None
    assert Runtime._dlr_url(SiteConfig(), local, "t") is None  # the file sink has no reports
