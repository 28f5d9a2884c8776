"""A customer who sends "KT" (opt back in) during an outage that affects them: texted after all,
once, when the text is due; and the agent's lookup tells a text sent before "TD" from one never sent."""

from __future__ import annotations

from contingency import ContingencyManager
from detectors.event import EventState
from tests.contingency.conftest import CUSTOMERS, HOLD_DOWN, FakeClock, make_event
from tests.contingency.test_quiet import _manager, at

CUSTOMER = next(c for c in CUSTOMERS if c.element == "olt-a1")


def _outage_texts(manager: ContingencyManager, phone: str) -> list[dict]:
    return [m for m in manager.list_sms() if m["recipient"] == phone and m["kind"] == "outage"]


def test_kt_during_the_hold_down_restores_the_text_at_its_due_time(manager, clock: FakeClock) -> None:  # noqa: ANN001
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    clock.advance(30)
    manager.inbound_sms(CUSTOMER.phone, "TD")
    assert manager.impact(CUSTOMER.phone)["incidents"][0]["sms"]["status"] == "opted_out"
    clock.advance(30)
    manager.inbound_sms(CUSTOMER.phone, "KT")
    [text] = _outage_texts(manager, CUSTOMER.phone)
    assert text["status"] == "queued"
    assert manager.tick() == 0  # still the hold-down: not sent early because of the KT
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 10
    [text] = _outage_texts(manager, CUSTOMER.phone)
    assert text["status"] == "sent"


def test_kt_after_the_hold_down_texts_at_once_and_only_once(manager, clock: FakeClock) -> None:  # noqa: ANN001
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    manager.inbound_sms(CUSTOMER.phone, "TD")
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 9  # everybody else
    clock.advance(600)
    for word in ("KT", "TD", "KT", "KT"):  # a customer changing their mind
        manager.inbound_sms(CUSTOMER.phone, word)
    assert manager.tick() == 1
    clock.advance(60)
    manager.inbound_sms(CUSTOMER.phone, "KT")
    assert manager.tick() == 0
    assert [t["status"] for t in _outage_texts(manager, CUSTOMER.phone)] == ["sent"]


def test_kt_from_a_customer_opted_out_before_the_outage_texts_them_too(manager, clock: FakeClock) -> None:  # noqa: ANN001
    manager.inbound_sms(CUSTOMER.phone, "TD")
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    assert _outage_texts(manager, CUSTOMER.phone) == []
    clock.advance(60)
    manager.inbound_sms(CUSTOMER.phone, "KT")
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 10
    assert [t["status"] for t in _outage_texts(manager, CUSTOMER.phone)] == ["sent"]


def test_kt_after_the_outage_is_over_texts_nothing(manager, clock: FakeClock) -> None:  # noqa: ANN001
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    manager.inbound_sms(CUSTOMER.phone, "TD")
    clock.advance(60)
    manager.handle([make_event("olt-a1", EventState.RESOLVED, at=clock())])
    manager.inbound_sms(CUSTOMER.phone, "KT")
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 0
    assert [t["status"] for t in _outage_texts(manager, CUSTOMER.phone)] == ["cancelled"]


def test_kt_in_quiet_hours_waits_for_their_end(sessions, topology, clock, tmp_path) -> None:  # noqa: ANN001
    manager, sink = _manager(sessions, topology, clock, tmp_path, "10:30", "11:00")  # T0 is 10:13 in Shanghai
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    manager.inbound_sms(CUSTOMER.phone, "TD")
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 9
    clock.t = at("2026-11-23 10:40:00")
    manager.inbound_sms(CUSTOMER.phone, "KT")
    assert manager.tick() == 0
    clock.t = at("2026-11-23 11:00:00")
    assert manager.tick() == 1


def test_lookup_of_a_customer_texted_then_opted_out(manager, clock: FakeClock) -> None:  # noqa: ANN001
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    clock.advance(HOLD_DOWN)
    manager.tick()
    clock.advance(60)
    manager.inbound_sms(CUSTOMER.phone, "TD")
    sms = manager.impact(CUSTOMER.phone)["incidents"][0]["sms"]
    assert sms["status"] == "sent" and sms["sent_at"] and sms["opted_out_since"]
    other = next(c for c in CUSTOMERS if c.element == "olt-a1" and c.phone != CUSTOMER.phone)
    assert "opted_out_since" not in manager.impact(other.phone)["incidents"][0]["sms"]
