"""Customers answer by SMS: a real Kannel forwards their texts to vigil's web app and sends the reply.

fakesmsc plays the customers' phones: "TD" from one customer stops its outage texts (the reply
comes back in Chinese, UCS-2), "hello" from another is ignored; then an outage texts everyone
below the fault but the one who opted out, through the same Kannel.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from config.models import ContingencyConfig
from contingency import ContingencyBase, ContingencyManager, Topology
from contingency.sms import KannelSmsSink, SmsSink
from detectors.event import EventState
from tests.conftest import serve_app
from tests.contingency.conftest import AREAS, CUSTOMERS, ELEMENTS, HOLD_DOWN, FakeClock, make_event
from tests.kannel import start_kannel
from tests.vigil.stubs import NoAlerts
from vigil.web import create_app

TOKEN = "gw-s3cret"
QUIET = next(c for c in CUSTOMERS if c.element == "olt-a1" and c.language == "zh-CN")
CHATTY = next(c for c in CUSTOMERS if c.element == "olt-a2")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any], ContingencyManager, FakeClock, CollectorRegistry]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    ContingencyBase.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    clock = FakeClock()
    holder: dict[str, Any] = {}

    class LateSink(SmsSink):  # Kannel's URL is known once it runs, and it needs the app's URL first
        def send(self, phone: str, text: str, *, message_id: str) -> None:
            holder["sink"].send(phone, text, message_id=message_id)

    registry = CollectorRegistry()
    manager = ContingencyManager(sessions, Topology(ELEMENTS, AREAS, CUSTOMERS), ContingencyConfig(hold_down=HOLD_DOWN),
                                 LateSink(), clock=clock, registry=registry)
    app = create_app(registry=registry, render_device_metrics=lambda: "", alerts=NoAlerts(),
                     contingency=manager, status=lambda: {}, write_token=TOKEN)
    with serve_app(app) as url:
        try:
            yield url, holder, manager, clock, registry
        finally:
            engine.dispose()


def test_customers_stop_outage_texts_by_replying_td(served, tmp_path: Path) -> None:  # noqa: ANN001
    url, holder, manager, clock, registry = served
    service = (f'get-url = "{url}/api/v1/sms/inbound?from=%p&text=%a&coding=%c&charset=%C&token={TOKEN}"\n'
               "max-messages = 1\nomit-empty = true\naccept-x-kannel-headers = true")
    (tmp_path / "kannel").mkdir()
    with start_kannel(tmp_path / "kannel", service=service,
                      mo=(f"{QUIET.phone} 10000 text TD",)) as kannel:
        holder["sink"] = KannelSmsSink(kannel.url, username="vigil", password="vigilpw", sender="10000")

        # the reply to "TD" reaches the customer's phone, in Chinese
        [(sender, to, text)] = kannel.received(1)
        assert (sender, to) == ("10000", QUIET.phone) and "退订" in text and "KT" in text
        assert registry.get_sample_value("vigil_sms_inbound_total", {"action": "stop"}) == 1.0

        # any other text gets no reply and changes nothing; the callback is a write: no token, no entry
        inbound = f"{url}/api/v1/sms/inbound"
        hello = httpx.get(inbound, params={"from": CHATTY.phone, "text": "hello", "token": TOKEN})
        assert hello.status_code == 200 and hello.text == ""
        assert httpx.get(inbound, params={"from": QUIET.phone, "text": "KT"}).status_code == 401
        assert httpx.get(inbound, params={"from": "x", "text": "KT", "token": TOKEN}).status_code == 422
        # without a write token configured, the callback is never open
        closed = create_app(registry=CollectorRegistry(), render_device_metrics=lambda: "", alerts=NoAlerts(),
                            contingency=manager, status=lambda: {}, write_token=None)

        async def ask() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=closed), base_url="http://vigil") as c:
                return await c.get("/api/v1/sms/inbound", params={"from": QUIET.phone, "text": "KT"})

        assert asyncio.run(ask()).status_code == 403

        manager.handle([make_event("agg-a", EventState.FIRING)])
        clock.advance(HOLD_DOWN)
        assert manager.tick() == 19
        outage = [m for m in kannel.received(20) if m[1] != QUIET.phone or "退订" not in m[2]]
        assert len(outage) == 19 and QUIET.phone not in {to for _, to, _ in outage}
        impact = httpx.get(f"{url}/api/v1/callers/{QUIET.phone}/impact").json()
        assert impact["affected"] is True and impact["incidents"][0]["sms"]["status"] == "opted_out"


def test_a_chinese_td_sent_as_ucs2_stops_the_texts_too(served, tmp_path: Path) -> None:  # noqa: ANN001
    """A phone sends "退订" in UCS-2 (as any Chinese text is sent); Kannel passes the UTF-16 bytes
    on, with ``coding=2`` (its ``%c``), and vigil reads them as such."""
    url, holder, manager, clock, registry = served
    service = (f'get-url = "{url}/api/v1/sms/inbound?from=%p&text=%a&coding=%c&charset=%C&token={TOKEN}"\n'
               "max-messages = 1\nomit-empty = true\naccept-x-kannel-headers = true")
    body = urllib.parse.quote_from_bytes("退订".encode("utf-16-be"))
    (tmp_path / "kannel").mkdir()
    with start_kannel(tmp_path / "kannel", service=service, mo=(f"{QUIET.phone} 10000 ucs2 {body}",)) as kannel:
        holder["sink"] = KannelSmsSink(kannel.url, username="vigil", password="vigilpw", sender="10000")
        [(sender, to, text)] = kannel.received(1)
        assert (sender, to) == ("10000", QUIET.phone) and "退订" in text and "KT" in text
        assert registry.get_sample_value("vigil_sms_inbound_total", {"action": "stop"}) == 1.0
        manager.handle([make_event("agg-a", EventState.FIRING)])
        clock.advance(HOLD_DOWN)
        assert manager.tick() == 19  # everybody below agg-a but the one who said 退订
        impact = httpx.get(f"{url}/api/v1/callers/{QUIET.phone}/impact").json()
        assert impact["incidents"][0]["sms"]["status"] == "opted_out"


def test_the_inbound_text_is_read_in_the_gateways_coding(served) -> None:  # noqa: ANN001
    url, _holder, _manager, _clock, registry = served
    inbound = f"{url}/api/v1/sms/inbound?from={QUIET.phone}&token={TOKEN}"
    # UCS-2 bytes read as UTF-16BE: "退订" opts out; as UTF-8 they were mojibake and ignored
    assert "KT" in httpx.get(f"{inbound}&text=%90%00%8B%A2&coding=2&charset=UTF-16BE").text
    assert registry.get_sample_value("vigil_sms_inbound_total", {"action": "stop"}) == 1.0
    assert "退订" in httpx.get(f"{inbound}&text=%E5%BC%80%E9%80%9A&coding=0&charset=UTF-8").text  # 开通
    assert registry.get_sample_value("vigil_sms_inbound_total", {"action": "start"}) == 1.0
    odd = httpx.get(f"{inbound}&text=%90%00%8B&coding=2")
    assert odd.status_code == 422 and "not valid UTF-16BE" in odd.json()["detail"]
    unknown = httpx.get(f"{inbound}&text=TD&charset=KLINGON")
    assert unknown.status_code == 422 and "KLINGON" in unknown.json()["detail"]
    assert httpx.get(f"{inbound}&text=TD&coding=3").status_code == 422


def test_a_charset_that_is_no_text_encoding_is_422_not_a_server_error(served) -> None:  # noqa: ANN001
    url, _holder, _manager, _clock, _registry = served
    inbound = f"{url}/api/v1/sms/inbound?from={QUIET.phone}&token={TOKEN}"
    for charset, text in (("base64", "VEQ%3D"), ("rot13", "GQ"), ("idna", "xn--a")):
        answer = httpx.get(f"{inbound}&text={text}&charset={charset}")
        assert answer.status_code == 422, (charset, answer.status_code, answer.text)
        assert charset in answer.json()["detail"]
