"""Delivery reports: what Kannel's report types mean, what the sink asks Kannel for, and how a
report lands on the text (forward only, idempotent) and reaches the hotline agent's lookup."""

from __future__ import annotations

import urllib.parse

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from contingency import ContingencyManager, SmsDelivery, SmsMessage
from contingency.sms import KANNEL_DLR_MASK, KannelSmsSink, kannel_delivery, kannel_escape
from detectors.event import EventState
from tests.contingency.conftest import CUSTOMERS, HOLD_DOWN, FakeClock, make_event

OLT_A1 = [c for c in CUSTOMERS if c.element == "olt-a1"]


@pytest.mark.parametrize(("dlr_type", "status"), [
    (1, SmsDelivery.DELIVERED), (2, SmsDelivery.FAILED), (4, SmsDelivery.BUFFERED),
    (8, SmsDelivery.SMSC_ACCEPTED), (16, SmsDelivery.SMSC_REJECTED),
    (9, SmsDelivery.DELIVERED), (18, SmsDelivery.FAILED), (0x22, SmsDelivery.FAILED), (12, SmsDelivery.SMSC_ACCEPTED),
])
def test_kannel_report_types(dlr_type: int, status: SmsDelivery) -> None:
    assert kannel_delivery(dlr_type) is status


@pytest.mark.parametrize("dlr_type", [0, -1, 32, 64, 256, 1024])
def test_kannel_report_types_that_mean_nothing_are_refused(dlr_type: int) -> None:
    with pytest.raises(ValueError, match="not a Kannel delivery report type"):
        kannel_delivery(dlr_type)


def test_the_kannel_sink_asks_for_delivery_reports_only_with_a_callback() -> None:
    seen: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        return httpx.Response(202, text="0: Accepted for delivery")

    callback = "https://vigil.example.com/api/v1/sms/dlr?token=" + kannel_escape("t 0k/é")
    with_dlr = KannelSmsSink("http://kannel:13013", username="u", password="p", dlr_url=callback,
                             transport=httpx.MockTransport(answer))
    with_dlr.send("8613800000001", "hello", message_id="m-1")
    without = KannelSmsSink("http://kannel:13013", username="u", password="p", transport=httpx.MockTransport(answer))
    without.send("8613800000001", "hello", message_id="m-2")

    first, second = seen
    assert first["dlr-mask"] == str(KANNEL_DLR_MASK) == "27"  # 1 + 2 + 8 + 16
    # Kannel fills %d and %A; every other % is doubled so Kannel gives back the encoded token
    assert first["dlr-url"] == ("https://vigil.example.com/api/v1/sms/dlr?token=t%%200k%%2F%%C3%%A9"
                                "&id=m-1&type=%d&reply=%A")
    assert "dlr-mask" not in second and "dlr-url" not in second


def test_kannel_escape_survives_kannels_own_unescaping() -> None:
    escaped = kannel_escape("a+b c/é%")
    assert "%C" not in escaped.replace("%%", "")  # no single % left for Kannel to read as a code
    assert urllib.parse.unquote(escaped.replace("%%", "%")) == "a+b c/é%"


def _texted(manager: ContingencyManager, clock: FakeClock) -> dict[str, str]:
    """olt-a1 fails, its customers are texted: phone -> message id."""
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    clock.advance(HOLD_DOWN)
    assert manager.tick() == len(OLT_A1)
    with manager._sessions() as session:
        return dict(session.execute(select(SmsMessage.phone, SmsMessage.message_id)).all())


def _lookup(manager: ContingencyManager, phone: str) -> dict[str, object]:
    return manager.impact(phone)["incidents"][0]["sms"]


def test_reports_move_forward_only_and_repeats_change_nothing(
        manager: ContingencyManager, clock: FakeClock, registry: CollectorRegistry) -> None:
    ids = _texted(manager, clock)
    phone = OLT_A1[1].phone
    mid = ids[phone]
    assert _lookup(manager, phone)["status"] == "sent" and _lookup(manager, phone)["delivery"] is None

    clock.advance(2)
    ack = manager.delivery_report(mid, SmsDelivery.SMSC_ACCEPTED, "ACK/")
    assert ack["changed"] is True and ack["delivery"] == "smsc_accepted"
    assert _lookup(manager, phone)["status"] == "sent"  # the SMSC has it; the phone maybe not yet

    clock.advance(3)
    done = manager.delivery_report(mid, SmsDelivery.DELIVERED)
    assert done["changed"] is True and done["delivery"] == "delivered"
    delivered_at = done["delivered_at"]
    assert delivered_at is not None

    clock.advance(5)  # a late SMSC ack, a repeat of "delivered", a contradicting final: none win
    assert manager.delivery_report(mid, SmsDelivery.SMSC_ACCEPTED, "ACK/")["changed"] is False
    assert manager.delivery_report(mid, SmsDelivery.DELIVERED)["changed"] is False
    assert manager.delivery_report(mid, SmsDelivery.FAILED)["changed"] is False
    sms = _lookup(manager, phone)
    assert sms["status"] == "delivered" and sms["delivery"] == "delivered" and sms["delivered_at"] == delivered_at
    with manager._sessions() as session:
        row = session.scalar(select(SmsMessage).where(SmsMessage.message_id == mid))
        assert row.status == "sent" and row.delivered_at == row.reported_at == clock.t - 5
        assert row.delivery_detail is None  # the final report's (empty) SMSC answer
    assert registry.get_sample_value("vigil_sms_delivery_reports_total", {"status": "delivered"}) == 2.0
    assert registry.get_sample_value("vigil_sms_delivery_reports_total", {"status": "smsc_accepted"}) == 2.0
    # every other text is untouched
    other = _lookup(manager, OLT_A1[2].phone)
    assert other["status"] == "sent" and other["delivery"] is None


def test_a_failed_report_tells_the_agent_not_delivered(manager: ContingencyManager, clock: FakeClock) -> None:
    ids = _texted(manager, clock)
    phone = OLT_A1[3].phone
    assert manager.delivery_report(ids[phone], SmsDelivery.BUFFERED)["delivery"] == "buffered"
    assert _lookup(manager, phone)["status"] == "sent"
    out = manager.delivery_report(ids[phone], SmsDelivery.SMSC_REJECTED, "NACK/0x0000000b/Invalid Destination")
    assert out["changed"] is True and out["delivered_at"] is None
    sms = _lookup(manager, phone)
    assert sms["status"] == "not_delivered" and sms["delivery"] == "smsc_rejected"
    assert manager.delivery_report(ids[phone], SmsDelivery.DELIVERED)["changed"] is False  # first final stays
    listed = {m["recipient"]: m for m in manager.list_sms()}
    assert listed[phone]["delivery"] == "smsc_rejected" and listed[OLT_A1[4].phone]["delivery"] is None


def test_a_report_for_an_unknown_text_is_a_key_error(manager: ContingencyManager, clock: FakeClock,
                                                     registry: CollectorRegistry) -> None:
    _texted(manager, clock)
    with pytest.raises(KeyError):
        manager.delivery_report("no-such-id", SmsDelivery.DELIVERED)
    assert registry.get_sample_value("vigil_sms_delivery_reports_total", {"status": "delivered"}) is None
