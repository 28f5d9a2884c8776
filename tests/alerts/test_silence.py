"""Silences, maintenance windows and inhibition, through the pipeline to a real HTTP receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from alerts.inhibit import DEFAULT_INHIBIT_RULES, Inhibitor, InhibitRule
from alerts.silence import Matcher, MatchType, Silence, SilenceState
from detectors.event import EventState

from .conftest import FakeClock, Receiver, make_event
from .test_pipeline import GROUP_INTERVAL, config, pipeline


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def silence_body(clock: FakeClock, *matchers: str, start: float = 0, hours: float = 1, **extra: Any) -> dict[str, Any]:
    return {
        "matchers": list(matchers),
        "startsAt": rfc3339(clock() + start),
        "endsAt": rfc3339(clock() + start + hours * 3600),
        "createdBy": "noc-zhang",
        "comment": "CHG-2026-1123 fibre splice on the yuexiu ring",
        **extra,
    }


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('element="agg-1"', {"element": "agg-1"}, True),
        ('element="agg-1"', {"element": "agg-10"}, False),
        ('element!="agg-1"', {"element": "agg-2"}, True),
        ('alertname=~"Interface.*"', {"alertname": "InterfaceErrorsRising"}, True),
        ('alertname=~"Interface"', {"alertname": "InterfaceErrorsRising"}, False),  # anchored
        ('ifName!~"ge-.*"', {"ifName": "xe-0/0/1"}, True),
        ('area="越秀"', {"area": "越秀"}, True),
        ('summary="say \\"hi\\""', {"summary": 'say "hi"'}, True),
        ('missing=""', {}, True),  # an absent label reads as ""
    ],
)
def test_matcher_semantics(text: str, labels: dict[str, str], expected: bool) -> None:
    m = Matcher.parse(text)
    assert m.matches(labels) is expected
    assert Matcher.parse(str(m)) == m
    assert Matcher.from_api(m.to_api()) == m


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("element=agg-1", "expected name"),
        ('1bad="x"', "expected name"),
        ('alertname=~"(unclosed"', "bad regex"),
    ],
)
def test_bad_matchers_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Matcher.parse(text)


def test_silence_validation_and_states() -> None:
    t0 = datetime(2026, 11, 23, 12, tzinfo=UTC)
    ok = dict(id="s", starts_at=t0, ends_at=t0 + timedelta(hours=1), created_by="a", comment="c", updated_at=t0)
    s = Silence(matchers=(Matcher("element", "agg-1"),), **ok)  # type: ignore[arg-type]
    assert s.state(t0 - timedelta(seconds=1)) is SilenceState.PENDING
    assert s.state(t0) is SilenceState.ACTIVE and s.mutes({"element": "agg-1"}, t0)
    assert s.state(t0 + timedelta(hours=1)) is SilenceState.EXPIRED
    with pytest.raises(ValueError, match="at least one matcher must not match the empty string"):
        Silence(matchers=(Matcher("element", ".*", MatchType.REGEX),), **ok)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one matcher is required"):
        Silence(matchers=(), **ok)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="endsAt must be after startsAt"):
        Silence(matchers=(Matcher("element", "x"),), **{**ok, "ends_at": t0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="comment is required"):
        Silence(matchers=(Matcher("element", "x"),), **{**ok, "comment": " "})  # type: ignore[arg-type]


async def test_silence_mutes_firing_until_it_ends_then_the_alert_is_sent(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    registry = CollectorRegistry()
    p = pipeline(sessions, config(receiver, "/noc", group_wait=0), clock, registry=registry)
    sid = p.silences.upsert(silence_body(clock, 'element="olt-1"', hours=0.5))
    await p.ingest([make_event(element="olt-1", at=clock()), make_event(element="olt-2", at=clock())])
    assert await p.flush() == 1
    [body] = receiver.posts("/noc")  # group_by alertname+element: only olt-2's group notified
    assert [a["labels"]["element"] for a in body["alerts"]] == ["olt-2"]
    assert registry.get_sample_value("vigil_alerts_muted", {"reason": "silence"}) == 1
    listed = {a["labels"]["element"]: a for a in p.list_alerts("firing")}
    assert listed["olt-1"]["silenced_by"] == [sid] and listed["olt-2"]["silenced_by"] == []
    assert p.silences.get(sid).state(p.silences.now()) is SilenceState.ACTIVE

    clock.advance(GROUP_INTERVAL)
    assert await p.flush() == 0  # still silenced, olt-2 already told
    clock.advance(1800)  # the silence is over; olt-2's repeat_interval (1 h) is not
    assert await p.flush() == 1  # silence over: olt-1 is still firing, so it is sent now
    assert [a["labels"]["element"] for a in receiver.posts("/noc")[-1]["alerts"]] == ["olt-1"]
    assert p.silences.get(sid).state(p.silences.now()) is SilenceState.EXPIRED


async def test_expire_ends_a_silence_and_a_resolved_alert_while_silenced_stays_quiet(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    p = pipeline(sessions, config(receiver, "/noc", group_wait=0), clock)
    sid = p.silences.upsert(silence_body(clock, 'alertname="LinkDown"', 'element=~"olt-.*"'))
    await p.ingest([make_event(element="olt-1", at=clock())])
    assert await p.flush() == 0
    await p.ingest([make_event(EventState.RESOLVED, element="olt-1", at=clock())])
    clock.advance(GROUP_INTERVAL)
    assert await p.flush() == 0  # never heard firing: the resolution is not news either
    await p.ingest([make_event(element="olt-3", at=clock())])
    assert await p.flush() == 0
    p.silences.expire(sid)
    clock.advance(GROUP_INTERVAL)
    assert await p.flush() == 1
    assert [a["labels"]["element"] for a in receiver.posts("/noc")[0]["alerts"]] == ["olt-3"]
    with pytest.raises(KeyError):
        p.silences.expire("no-such-silence")


async def test_heard_alert_silenced_then_resolved_still_gets_closure(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    p = pipeline(sessions, config(receiver, "/noc", group_wait=0), clock)
    await p.ingest([make_event(element="olt-1", at=clock())])
    assert await p.flush() == 1
    p.silences.upsert(silence_body(clock, 'element="olt-1"'))
    clock.advance(GROUP_INTERVAL)
    assert await p.flush() == 0  # silenced: no repeat
    await p.ingest([make_event(EventState.RESOLVED, element="olt-1", at=clock())])
    clock.advance(GROUP_INTERVAL)
    assert await p.flush() == 1
    assert receiver.posts("/noc")[-1]["status"] == "resolved"


async def test_maintenance_window_in_the_future_mutes_only_inside_it(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    p = pipeline(sessions, config(receiver, "/noc", group_wait=0), clock)
    sid = p.silences.upsert(silence_body(clock, 'element="olt-9"', start=1800, hours=2))
    assert p.silences.get(sid).state(p.silences.now()) is SilenceState.PENDING
    assert [s.id for s in p.silences.list()] == [sid]
    clock.advance(1800)
    await p.ingest([make_event(element="olt-9", at=clock())])
    assert await p.flush() == 0
    clock.advance(2 * 3600)
    assert await p.flush() == 1


def test_upsert_updates_in_place_and_rejects_bad_input(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    p = pipeline(sessions, config(receiver, "/noc"), clock)
    sid = p.silences.upsert(silence_body(clock, 'element="a"'))
    assert p.silences.upsert(silence_body(clock, 'element="b"', id=sid)) == sid
    assert [str(m) for m in p.silences.get(sid).matchers] == ['element="b"']
    api = {"name": "element", "value": "c", "isRegex": False, "isEqual": True}
    assert p.silences.get(p.silences.upsert(silence_body(clock, api))).matchers == (Matcher("element", "c"),)
    with pytest.raises(KeyError):
        p.silences.upsert(silence_body(clock, 'element="a"', id="unknown"))
    for bad, message in [
        ({**silence_body(clock, 'element="a"'), "endsAt": "tomorrow"}, "endsAt"),
        ({**silence_body(clock, 'element="a"'), "startsAt": "2026-11-23T10:00:00"}, "time zone"),
        ({k: v for k, v in silence_body(clock, 'element="a"').items() if k != "endsAt"}, "endsAt is required"),
        (silence_body(clock, 'element=~".*"'), "empty string"),
        ({**silence_body(clock, 'element="a"'), "createdBy": ""}, "createdBy"),
        ({**silence_body(clock), "matchers": "element=a"}, "must be a list"),
    ]:
        with pytest.raises(ValueError, match=message):
            p.silences.upsert(bad)
    assert len(p.silences.list()) == 2  # nothing half-written by the refused calls


def test_inhibitor_follows_the_topology() -> None:
    parents = {"olt-1": "agg-1", "olt-2": "agg-1", "agg-1": "cr-1", "olt-9": "agg-9"}
    parents |= {"loop-a": "loop-b", "loop-b": "loop-a"}
    inhibitor = Inhibitor(DEFAULT_INHIBIT_RULES, parents)
    assert inhibitor.ancestors("olt-1") == ["agg-1", "cr-1"]
    assert inhibitor.ancestors("loop-a") == ["loop-b"]  # a cycle does not hang
    firing = {
        "down": {"alertname": "ElementUnreachable", "element": "agg-1"},
        "olt1": {"alertname": "LinkDown", "element": "olt-1"},
        "olt2": {"alertname": "ElementUnreachable", "element": "olt-2"},
        "same": {"alertname": "InterfaceErrorsRising", "element": "agg-1"},
        "core": {"alertname": "LinkDown", "element": "cr-1"},
        "other": {"alertname": "LinkDown", "element": "olt-9"},
    }
    assert inhibitor.inhibited(firing) == {"olt1": "down", "olt2": "down", "same": "down"}
    # a port that is down mutes the port's other alerts, not its neighbours' nor the element's
    port = {
        "down": {"alertname": "InterfaceDown", "element": "olt-1", "ifIndex": "6"},
        "crc": {"alertname": "InterfaceErrorsRising", "element": "olt-1", "ifIndex": "6"},
        "next": {"alertname": "InterfaceErrorsRising", "element": "olt-1", "ifIndex": "7"},
        "cpu": {"alertname": "CpuUtilizationHigh", "element": "olt-1"},
        "elsewhere": {"alertname": "InterfaceErrorsRising", "element": "olt-2", "ifIndex": "6"},
    }
    assert inhibitor.inhibited(port) == {"crc": "down"}
    unnamed = {"down": {"alertname": "InterfaceDown", "element": "olt-1"}, "cpu": port["cpu"]}
    assert inhibitor.inhibited(unnamed) == {}  # a trap without ifIndex mutes nothing
    # a classic Alertmanager rule: critical mutes warning of the same alertname and element
    rule = InhibitRule.parse(['severity="critical"'], ['severity="warning"'], ["alertname", "element"])
    pair = {
        "c": {"alertname": "X", "element": "e", "severity": "critical"},
        "w": {"alertname": "X", "element": "e", "severity": "warning"},
        "w2": {"alertname": "X", "element": "f", "severity": "warning"},
    }
    assert Inhibitor([rule]).inhibited(pair) == {"w": "c"}


async def test_unreachable_upstream_element_holds_back_the_storm_below(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    registry = CollectorRegistry()
    parents = {"olt-1": "agg-1", "olt-2": "agg-1"}
    p = pipeline(sessions, config(receiver, "/noc", group_wait=0), clock, parents=parents, registry=registry)
    await p.ingest([
        make_event(name="ElementUnreachable", element="agg-1", at=clock()),
        make_event(element="olt-1", at=clock()),
        make_event(element="olt-2", at=clock()),
    ])
    assert await p.flush() == 1
    assert [a["labels"]["element"] for a in receiver.posts("/noc")[0]["alerts"]] == ["agg-1"]
    assert registry.get_sample_value("vigil_alerts_muted", {"reason": "inhibition"}) == 2
    inhibited = {a["labels"]["element"]: a["inhibited_by"] for a in p.list_alerts("firing")}
    source = make_event(name="ElementUnreachable", element="agg-1").fingerprint
    assert inhibited == {"agg-1": [], "olt-1": [source], "olt-2": [source]}
    # the aggregation switch answers again; olt-2's link is still down, so it is sent now
    await p.ingest([
        make_event(EventState.RESOLVED, name="ElementUnreachable", element="agg-1", at=clock()),
        make_event(EventState.RESOLVED, element="olt-1", at=clock()),
    ])
    clock.advance(GROUP_INTERVAL)
    assert await p.flush() == 2  # agg-1 resolved (heard firing) + olt-2 firing
    sent = sorted((b["status"], a["labels"]["element"]) for b in receiver.posts("/noc")[1:] for a in b["alerts"])
    assert sent == [("firing", "olt-2"), ("resolved", "agg-1")]


async def test_configured_inhibit_rules_replace_the_shipped_ones(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    events = [
        make_event(name="ElementUnreachable", element="agg-1", at=clock()),
        make_event(element="olt-1", at=clock(), extra=(("severity", "warning"),)),
        make_event(name="LinkDown", element="olt-1", at=clock(), extra=(("severity", "critical"), ("ifIndex", "2"))),
    ]
    parents = {"olt-1": "agg-1"}
    cfg = config(receiver, "/noc", group_wait=0, group_by=["element"])
    # [] turns inhibition off: all three alerts are sent
    off = pipeline(sessions, cfg.model_copy(update={"inhibit_rules": []}), clock, parents=parents)
    await off.ingest(events)
    await off.flush()
    assert sorted(len(b["alerts"]) for b in receiver.posts("/noc")) == [1, 2]
    rule = {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'], "equal": ["element"]}
    custom = cfg.model_validate({**cfg.model_dump(by_alias=True), "inhibit_rules": [rule]})
    assert p_inhibited(pipeline(sessions, custom, clock, parents=parents)) == {"olt-1": "LinkDown"}


def p_inhibited(p: Any) -> dict[str, str]:
    """Element -> alertname of the inhibiting alert, over the firing alerts ``p`` stores."""
    alerts = p.list_alerts("firing")
    by_fp = {a["fingerprint"]: a for a in alerts}
    return {
        a["labels"]["element"]: by_fp[a["inhibited_by"][0]]["labels"]["alertname"]
        for a in alerts
        if a["inhibited_by"]
    }
