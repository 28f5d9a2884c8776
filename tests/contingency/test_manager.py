from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.models import ContingencyConfig
from contingency import (
    ContingencyManager,
    FileSmsSink,
    IncidentRecord,
    IncidentStep,
    Plan,
    SmsPermanentError,
    SmsRetryableError,
    SmsSink,
    StepKind,
    StepOutcome,
    Topology,
)
from detectors.event import EventState, Severity
from tests.contingency.conftest import AREAS, CUSTOMERS, ELEMENTS, HOLD_DOWN, FakeClock, make_event

FIRING, RESOLVED = EventState.FIRING, EventState.RESOLVED
AGG_A_PHONES = {c.phone for c in CUSTOMERS if c.element in ("olt-a1", "olt-a2")}
LANG = {c.phone: c.language for c in CUSTOMERS}


def sent_lines(sink: FileSmsSink) -> list[dict[str, object]]:
    return sink.read()


def steps(sessions: sessionmaker) -> list[IncidentStep]:
    with sessions() as session:
        return list(session.scalars(select(IncidentStep).order_by(IncidentStep.id)))


def test_firing_opens_one_incident_ticket_and_banners_but_no_sms_yet(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock, sessions: sessionmaker
) -> None:
    manager.handle([make_event("agg-a", FIRING)])

    [incident] = manager.list_incidents()
    assert incident["key"] == "agg-a" and incident["status"] == "open"
    assert [a["id"] for a in incident["areas"]] == ["yuexiu", "tianhe"]
    assert incident["customers"] == 20
    [ticket] = manager.list_tickets()
    assert ticket["number"] == "PT-20261123-0001" and ticket["status"] == "open"
    assert incident["ticket"] == ticket["number"]
    banners = manager.list_banners()
    assert sorted(b["area_id"] for b in banners) == ["tianhe", "yuexiu"]
    assert all(ticket["number"] in b["script_zh"] and "勿派单上门" in b["script_zh"]
               for b in banners)
    assert all("do NOT dispatch" in b["script_en"] for b in banners)
    assert {(s.kind, s.status) for s in steps(sessions)} == {
        ("open_ticket", "TRIGGERED"), ("activate_banner", "TRIGGERED"), ("queue_sms", "TRIGGERED")}

    assert manager.tick() == 0
    clock.advance(HOLD_DOWN - 1)
    assert manager.tick() == 0
    assert sent_lines(sink) == []
    assert {m["status"] for m in manager.list_sms()} == {"queued"}


def test_after_hold_down_each_affected_customer_gets_one_sms_in_their_language(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock
) -> None:
    manager.handle([make_event("agg-a", FIRING)])
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 20
    assert manager.tick() == 0  # idempotent: nobody twice
    clock.advance(3600)
    assert manager.tick() == 0

    lines = sent_lines(sink)
    assert len(lines) == 20
    assert {line["to"] for line in lines} == AGG_A_PHONES
    for line in lines:
        assert line["from"] == "10000"
        text = str(line["text"])
        if LANG[str(line["to"])] == "zh-CN":
            assert text.startswith("【中国电信】尊敬的客户")
            assert "越秀区" in text or "天河区" in text
        else:
            assert text.startswith("[China Telecom] Dear customer")
        assert line["segments"] == 1
    sms = manager.list_sms()
    assert {m["status"] for m in sms} == {"sent"}
    assert set(sms[0]) >= {"id", "channel", "recipient", "text", "status", "incident_key",
                           "incident_id", "queued_at", "sent_at"}
    assert sms[0]["channel"] == "sms" and sms[0]["incident_key"] == "agg-a"


def test_second_firing_event_joins_the_open_incident(
    manager: ContingencyManager, clock: FakeClock
) -> None:
    manager.handle([make_event("agg-a", FIRING)])
    clock.advance(10)
    manager.handle([make_event("agg-a", FIRING, if_name="ge-0/0/2"),
                    make_event("agg-a", FIRING)])  # a repeat of the first one
    assert len(manager.list_incidents()) == 1
    [ticket] = manager.list_tickets()
    assert sum("event attached" in e["text"] for e in ticket["timeline"]) == 1
    assert len(manager.list_incidents()[0]["events"]) == 2
    assert len(manager.list_sms()) == 20
    assert len(manager.list_banners()) == 2


def test_pending_events_are_ignored(manager: ContingencyManager) -> None:
    manager.handle([make_event("agg-a", EventState.PENDING)])
    assert manager.list_incidents() == []


def test_impact(manager: ContingencyManager) -> None:
    manager.handle([make_event("agg-a", FIRING)])
    en = next(c for c in CUSTOMERS if c.element == "olt-a2" and c.language == "en")
    zh = next(c for c in CUSTOMERS if c.element == "olt-a1" and c.language == "zh-CN")
    other = next(c for c in CUSTOMERS if c.element == "olt-b1")

    hit = manager.impact("+86 " + en.phone)
    assert hit["affected"] is True
    assert hit["customer"]["account"] == en.account
    assert [i["key"] for i in hit["incidents"]] == ["agg-a"]
    assert set(hit["incidents"][0]) == {"id", "key", "title", "opened_at", "areas", "planned_until", "sms"}
    assert hit["incidents"][0]["sms"]["status"] == "queued"  # in the hold-down: not texted yet
    assert hit["incidents"][0]["planned_until"] is None  # no maintenance window
    assert hit["script"].startswith("[Proactive care script]") and "Tianhe" in hit["script"]
    assert hit["banner"].startswith("[Area outage] Broadband down in Tianhe")

    assert "越秀区" in manager.impact(zh.phone)["script"]

    miss = manager.impact(other.phone)
    assert miss["affected"] is False and miss["customer"]["account"] == other.account
    assert miss["incidents"] == [] and miss["script"] is None and miss["banner"] is None
    stranger = manager.impact("13912345678")
    assert stranger == {"phone": "13912345678", "affected": False, "customer": None,
                        "incidents": [], "script": None, "banner": None}


def test_resolution_closes_ticket_clears_banners_and_texts_restored(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock
) -> None:
    manager.handle([make_event("agg-a", FIRING), make_event("agg-a", FIRING, if_name="ge-2")])
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 20
    clock.advance(600)
    manager.handle([make_event("agg-a", RESOLVED)])
    assert manager.list_incidents()[0]["status"] == "open"  # ge-2 still firing
    clock.advance(60)
    manager.handle([make_event("agg-a", RESOLVED, if_name="ge-2")])

    [incident] = manager.list_incidents()
    assert incident["status"] == "resolved" and incident["resolved_at"] is not None
    [ticket] = manager.list_tickets()
    assert ticket["status"] == "closed" and ticket["closed_at"] is not None
    texts = [e["text"] for e in ticket["timeline"]]
    assert texts[0].startswith("opened: InterfaceDown on agg-a")
    assert any(t.startswith("event resolved") for t in texts)
    assert "sms: outage 20 sent, 0 failed, 0 cancelled; restored 20 queued" in texts
    assert texts[-1] == "resolved after 16m 00s"
    assert manager.list_banners() == []
    assert {b["active"] for b in manager.list_banners(active_only=False)} == {False}
    assert manager.impact(next(iter(AGG_A_PHONES)))["affected"] is False

    assert manager.tick() == 20  # restored SMS go at once
    lines = sent_lines(sink)
    restored = [line for line in lines if "恢复正常" in str(line["text"])
                or " is back" in str(line["text"])]
    assert {line["to"] for line in restored} == AGG_A_PHONES
    assert len(lines) == 40  # one outage + one restored each, nothing else
    assert manager.tick() == 0

    # the element fails again later: a new incident and a new ticket
    clock.advance(60)
    manager.handle([make_event("agg-a", FIRING)])
    assert [t["number"] for t in manager.list_tickets()] == [
        "PT-20261123-0002", "PT-20261123-0001"]
    assert [i["status"] for i in manager.list_incidents()] == ["open", "resolved"]


def test_blip_resolved_before_hold_down_texts_nobody(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock
) -> None:
    manager.handle([make_event("agg-a", FIRING)])
    clock.advance(HOLD_DOWN / 2)
    manager.tick()
    manager.handle([make_event("agg-a", RESOLVED)])
    clock.advance(HOLD_DOWN * 2)
    assert manager.tick() == 0
    assert sent_lines(sink) == []
    assert {m["status"] for m in manager.list_sms()} == {"cancelled"}
    assert {m["kind"] for m in manager.list_sms()} == {"outage"}
    [ticket] = manager.list_tickets()
    assert ticket["status"] == "closed"
    assert "sms: outage 0 sent, 0 failed, 20 cancelled; restored 0 queued" in [
        e["text"] for e in ticket["timeline"]]


class FlakySink:
    """Writes through to a file sink but refuses some phones."""

    def __init__(self, inner: FileSmsSink, *, permanent: set[str] = frozenset(),
                 retryable: dict[str, int] | None = None) -> None:
        self.inner = inner
        self.permanent = permanent
        self.retryable = dict(retryable or {})

    def send(self, phone: str, text: str, *, message_id: str) -> None:
        if phone in self.permanent:
            raise SmsPermanentError(phone, "number does not exist", message_id=message_id)
        if self.retryable.get(phone, 0) > 0:
            self.retryable[phone] -= 1
            raise SmsRetryableError(phone, "gateway busy", message_id=message_id)
        self.inner.send(phone, text, message_id=message_id)


def test_permanent_failure_for_one_phone_does_not_stop_the_others(
    make_manager: Callable[[SmsSink], ContingencyManager], sink: FileSmsSink, clock: FakeClock,
    sessions: sessionmaker,
) -> None:
    bad = sorted(AGG_A_PHONES)[3]
    manager = make_manager(FlakySink(sink, permanent={bad}))
    manager.handle([make_event("agg-a", FIRING)])
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 19
    assert manager.tick() == 0
    assert {line["to"] for line in sent_lines(sink)} == AGG_A_PHONES - {bad}
    [failed] = [m for m in manager.list_sms() if m["status"] == "failed"]
    assert failed["recipient"] == bad and "does not exist" in failed["error"]
    [audit] = [s for s in steps(sessions) if s.status == "FAILED"]
    assert audit.kind == "send_sms" and audit.error_code == "sms_permanent"
    assert bad in (audit.error_message or "")
    assert any(s.kind == "send_sms" and s.status == "TRIGGERED" and s.detail == "19 SMS sent"
               for s in steps(sessions))

    manager.handle([make_event("agg-a", RESOLVED)])
    restored = [m for m in manager.list_sms() if m["kind"] == "restored"]
    assert {m["recipient"] for m in restored} == AGG_A_PHONES - {bad}


def test_retryable_failure_stays_queued_and_is_retried_later(
    make_manager: Callable[[SmsSink], ContingencyManager], sink: FileSmsSink, clock: FakeClock,
) -> None:
    flaky = sorted(AGG_A_PHONES)[0]
    manager = make_manager(FlakySink(sink, retryable={flaky: 1}))
    manager.handle([make_event("agg-a", FIRING)])
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 19
    [waiting] = [m for m in manager.list_sms() if m["status"] == "queued"]
    assert waiting["recipient"] == flaky and waiting["attempts"] == 1
    assert manager.tick() == 0  # backing off
    clock.advance(30)
    assert manager.tick() == 1
    assert sorted(line["to"] for line in sent_lines(sink)) == sorted(AGG_A_PHONES)


def test_a_failing_step_is_audited_and_the_others_still_run(
    manager: ContingencyManager, sessions: sessionmaker, clock: FakeClock, sink: FileSmsSink,
) -> None:
    def broken(session: Session, incident: IncidentRecord, plan: Plan, now: float) -> StepOutcome:
        raise RuntimeError("ticket system down")

    manager.open_steps[StepKind.OPEN_TICKET] = broken
    manager.handle([make_event("agg-a", FIRING)])
    audit = {s.kind: s for s in steps(sessions)}
    assert audit["open_ticket"].status == "FAILED"
    assert audit["open_ticket"].error_code == "internal:RuntimeError"
    assert audit["open_ticket"].error_message == "ticket system down"
    assert audit["activate_banner"].status == "TRIGGERED"
    assert audit["queue_sms"].status == "TRIGGERED"
    assert manager.list_tickets() == []
    assert len(manager.list_banners()) == 2
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 20
    manager.handle([make_event("agg-a", RESOLVED)])
    audit = {s.kind: s for s in steps(sessions)}
    assert audit["close_ticket"].status == "SKIPPED"
    assert audit["clear_banner"].status == "TRIGGERED"


def test_unknown_element_has_no_customers_so_no_incident(
    manager: ContingencyManager, sessions: sessionmaker
) -> None:
    # e.g. a trap from an address no element has: the NOC gets the alert (alerts/), but there is
    # no customer to care for, so no proactive ticket, banner or SMS
    manager.handle([make_event("bras-9", FIRING)])
    assert manager.list_incidents() == [] and manager.list_tickets() == []
    assert steps(sessions) == []
    manager.handle([make_event("agg-a", FIRING)])
    assert len(manager.list_incidents()) == 1


def test_plan_is_a_snapshot(
    sessions: sessionmaker, config: ContingencyConfig, clock: FakeClock, sink: FileSmsSink,
    manager: ContingencyManager,
) -> None:
    manager.handle([make_event("agg-a", FIRING)])
    # a config reload drops half the customers and changes the hold-down: in-flight unchanged
    reloaded = ContingencyManager(
        sessions, Topology(ELEMENTS, AREAS, CUSTOMERS[::2]),
        ContingencyConfig(hold_down=10_000), sink, clock=clock)
    clock.advance(HOLD_DOWN)
    assert reloaded.tick() == 20
    assert reloaded.impact(CUSTOMERS[1].phone)["affected"] is True


def test_metrics(manager: ContingencyManager, registry: CollectorRegistry,
                 clock: FakeClock) -> None:
    def affected(area: str, planned: str = "false") -> float | None:
        return registry.get_sample_value("vigil_customers_affected", {"area": area, "planned": planned})

    assert affected("yuexiu") == 0 and affected("haizhu", "true") == 0  # every area, from the start
    manager.handle([make_event("agg-a", FIRING), make_event("olt-b1", FIRING)])
    assert registry.get_sample_value("vigil_incidents_open") == 2
    assert (affected("yuexiu"), affected("tianhe"), affected("haizhu")) == (10, 10, 10)
    manager.handle([make_event("olt-b2", FIRING)])  # same area, other customers: counted once each
    assert affected("haizhu") == 20
    manager.handle([make_event("olt-b2", RESOLVED)])
    clock.advance(HOLD_DOWN)
    manager.tick()
    assert registry.get_sample_value(
        "vigil_sms_total", {"kind": "outage", "result": "sent"}) == 30
    manager.handle([make_event("olt-b1", RESOLVED)])
    assert registry.get_sample_value("vigil_incidents_open") == 1
    assert (affected("yuexiu"), affected("haizhu")) == (10, 0)
    assert registry.get_sample_value(
        "vigil_contingency_steps_total", {"step": "open_ticket", "status": "TRIGGERED"}) == 3


def test_sms_file_is_valid_json_lines(manager: ContingencyManager, sink: FileSmsSink,
                                      clock: FakeClock, tmp_path: Path) -> None:
    manager.handle([make_event("olt-b2", FIRING)])
    clock.advance(HOLD_DOWN)
    manager.tick()
    raw = (tmp_path / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(raw) == 10
    for line in raw:
        record = json.loads(line)
        assert set(record) == {"message_id", "to", "from", "text", "segments", "sent_at"}
        assert "海珠区" in record["text"] or "Haizhu" in record["text"]


@pytest.mark.parametrize("element", ["core", "agg-b", "olt-a1"])
def test_sms_recipients_follow_the_tree(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock, topology: Topology,
    element: str,
) -> None:
    manager.handle([make_event(element, FIRING)])
    clock.advance(HOLD_DOWN)
    manager.tick()
    assert {line["to"] for line in sent_lines(sink)} == {
        c.phone for c in topology.affected_customers(element)}


@pytest.mark.parametrize(
    ("severity", "eta", "opens"),
    [
        (Severity.CRITICAL, None, True),
        (Severity.WARNING, None, True),
        (Severity.INFO, None, False),  # behaviour outliers reach the NOC only
        (Severity.CRITICAL, 1_000.0, False),  # a predicted breach is not yet a customer fault
    ],
)
def test_only_customer_affecting_events_open_incidents(
    manager: ContingencyManager, severity: Severity, eta: float | None, opens: bool
) -> None:
    event = replace(make_event(ELEMENTS[1].name, EventState.FIRING), severity=severity, eta=eta)
    manager.handle([event])
    assert len(manager.list_incidents()) == (1 if opens else 0)


def test_opted_out_customers_are_not_texted_and_agents_know_it(
    sessions: sessionmaker, config: ContingencyConfig, sink: FileSmsSink, clock: FakeClock,
    registry: CollectorRegistry,
) -> None:
    quiet_ones = {c.phone for c in CUSTOMERS if c.element == "olt-a1"}
    customers = [c.model_copy(update={"sms": False}) if c.phone in quiet_ones else c for c in CUSTOMERS]
    manager = ContingencyManager(sessions, Topology(ELEMENTS, AREAS, customers), config, sink,
                                 clock=clock, registry=registry)
    manager.handle([make_event("agg-a", FIRING)])
    assert manager.list_incidents()[0]["customers"] == 20  # still affected, still counted
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 10
    assert not quiet_ones & {str(line["to"]) for line in sink.read()}
    assert registry.get_sample_value("vigil_sms_total", {"kind": "outage", "result": "opted_out"}) == 10
    quiet = manager.impact(sorted(quiet_ones)[0])
    assert quiet["affected"] is True and quiet["incidents"][0]["sms"] == {"status": "opted_out"}
    texted = next(c.phone for c in CUSTOMERS if c.element == "olt-a2")
    sms = manager.impact(texted)["incidents"][0]["sms"]
    assert sms["status"] == "sent" and sms["sent_at"] is not None
    manager.handle([make_event("agg-a", RESOLVED)])
    assert manager.tick() == 10  # "restored" only to those told of the outage


def test_tick_sends_in_batches_within_its_budget(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock
) -> None:
    manager.handle([make_event("agg-a", FIRING)])
    clock.advance(HOLD_DOWN)
    assert manager.tick(budget=0.0, batch=6) == 6  # one batch, then the lock is let go
    assert manager.tick(budget=0.0, batch=6) == 6
    assert manager.tick(batch=6) == 8  # within the budget: batch after batch until none is due
    assert len(sink.read()) == 20 and len({line["to"] for line in sink.read()}) == 20


def test_two_senders_on_one_database_never_text_anyone_twice(
    sessions: sessionmaker, topology: Topology, config: ContingencyConfig, clock: FakeClock,
    tmp_path: Path,
) -> None:
    import threading

    sinks = [FileSmsSink(tmp_path / f"sender-{i}.jsonl", clock=clock) for i in range(2)]
    managers = [ContingencyManager(sessions, topology, config, s, clock=clock) for s in sinks]
    managers[0].handle([make_event("agg-a", FIRING), make_event("olt-b1", FIRING)])
    clock.advance(HOLD_DOWN)
    counts = [0, 0]

    def run(i: int) -> None:
        while (n := managers[i].tick(batch=3)) > 0:
            counts[i] += n

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    phones = [str(line["to"]) for s in sinks for line in s.read()]
    assert sum(counts) == len(phones) == 30
    assert len(set(phones)) == 30


def test_customers_stop_and_restart_outage_texts_by_sms(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock, registry: CollectorRegistry,
) -> None:
    zh = next(c for c in CUSTOMERS if c.element == "olt-a1" and c.language == "zh-CN")
    en = next(c for c in CUSTOMERS if c.element == "olt-a2" and c.language == "en")
    manager.handle([make_event("agg-a", FIRING)])
    assert "退订" in (manager.inbound_sms("+86 " + zh.phone, " td ") or "")  # inside the hold-down
    assert (manager.inbound_sms(en.phone, "STOP") or "").startswith("[China Telecom] You will no longer")
    assert manager.inbound_sms(en.phone, "what is going on?") is None
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 18  # their queued texts were cancelled
    assert not {zh.phone, en.phone} & {str(line["to"]) for line in sink.read()}
    assert manager.impact(zh.phone)["incidents"][0]["sms"]["status"] == "opted_out"
    assert registry.get_sample_value("vigil_sms_inbound_total", {"action": "stop"}) == 2
    assert registry.get_sample_value("vigil_sms_inbound_total", {"action": "ignored"}) == 1

    assert "重新订阅" in (manager.inbound_sms(zh.phone, "KT") or "")
    manager.handle([make_event("agg-a", RESOLVED)])
    manager.handle([make_event("olt-a1", FIRING)])  # the next fault texts them again
    clock.advance(HOLD_DOWN)
    manager.tick()
    assert zh.phone in {str(line["to"]) for line in sink.read()}
    with pytest.raises(ValueError, match="not a phone number"):
        manager.inbound_sms("---", "TD")


def test_the_noc_sets_the_expected_restoration(
    manager: ContingencyManager, sink: FileSmsSink, clock: FakeClock,
) -> None:
    from contingency import IncidentNotOpenError

    manager.handle([make_event("agg-a", FIRING)])
    [incident] = manager.list_incidents()
    eta = clock() + 2 * 3600  # 12:13 in UTC+8
    updated = manager.set_eta(incident["id"], eta, by="noc-wang", note="spare card on its way")
    assert updated["eta"] is not None and updated["eta"].startswith("2026-11-23T04:13")
    for b in manager.list_banners():
        assert "12:13" in b["text_en"] and "12:13" in b["text_zh"] and "12:13" in b["script_en"]
    [ticket] = manager.list_tickets()
    assert any("by noc-wang: spare card on its way" in e["text"] for e in ticket["timeline"])
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 20
    for line in sink.read():  # the texts not yet sent were rendered again
        assert "12:13" in str(line["text"])
    assert manager.set_eta(incident["id"], None, by="noc-wang")["eta"] is None
    assert all("unknown" in b["text_en"] for b in manager.list_banners())

    with pytest.raises(ValueError, match="not in the future"):
        manager.set_eta(incident["id"], clock() - 1, by="noc-wang")
    with pytest.raises(ValueError, match="who"):
        manager.set_eta(incident["id"], eta, by=" ")
    with pytest.raises(KeyError):
        manager.set_eta(999, eta, by="noc-wang")
    manager.handle([make_event("agg-a", RESOLVED)])
    with pytest.raises(IncidentNotOpenError):
        manager.set_eta(incident["id"], eta, by="noc-wang")
