"""Quiet hours in the customers' local time, across midnight and in zones with daylight saving."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from contingency.quiet import QuietHours

SH = ZoneInfo("Asia/Shanghai")


def at(text: str, zone: ZoneInfo = SH) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


@pytest.mark.parametrize(
    ("now", "due"),
    [
        ("2026-11-23 21:59:59", "2026-11-23 21:59:59"),  # before the window: unchanged
        ("2026-11-23 22:00:00", "2026-11-24 08:00:00"),  # evening part: tomorrow morning
        ("2026-11-24 02:10:00", "2026-11-24 08:00:00"),  # after midnight: this morning
        ("2026-11-24 08:00:00", "2026-11-24 08:00:00"),  # the end is outside
        ("2026-11-24 12:00:00", "2026-11-24 12:00:00"),
    ],
)
def test_overnight_window_defers_to_its_end(now: str, due: str) -> None:
    quiet = QuietHours.parse("22:00", "08:00")
    assert quiet.defer(at(now)) == at(due)
    assert quiet.contains(at(now)) is (at(now) != at(due))


def test_same_day_window_and_empty_window() -> None:
    lunch = QuietHours.parse("12:00", "13:30")
    assert lunch.defer(at("2026-11-23 12:45:00")) == at("2026-11-23 13:30:00")
    assert lunch.defer(at("2026-11-23 11:00:00")) == at("2026-11-23 11:00:00")
    never = QuietHours.parse("08:00", "08:00")
    assert not never.contains(at("2026-11-23 08:00:00"))


def test_local_time_follows_the_zone_and_daylight_saving() -> None:
    ny = ZoneInfo("America/New_York")
    quiet = QuietHours.parse("22:00", "07:00", "America/New_York")
    # 2026-11-01 is the autumn change in New York: 07:00 local is 12:00 UTC that morning
    assert quiet.defer(at("2026-11-01 01:30:00", ny)) == at("2026-11-01 07:00:00", ny)
    assert datetime.fromtimestamp(quiet.defer(at("2026-10-31 23:00:00", ny)), ny).hour == 7


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        QuietHours.parse("25:00", "08:00")
    with pytest.raises(Exception, match="Mars"):
        QuietHours.parse("22:00", "08:00", "Mars/Olympus")


def _manager(sessions, topology, clock, tmp_path, start: str, end: str):  # noqa: ANN001, ANN202
    from config.models import ContingencyConfig, SmsConfig
    from contingency import ContingencyManager, FileSmsSink
    from tests.contingency.conftest import HOLD_DOWN

    quiet = {"start": start, "end": end, "timezone": "Asia/Shanghai"}
    config = ContingencyConfig(hold_down=HOLD_DOWN, sms=SmsConfig(sink="file", path="s.jsonl", quiet_hours=quiet))
    sink = FileSmsSink(tmp_path / "s.jsonl", clock=clock)
    return ContingencyManager(sessions, topology, config, sink, clock=clock), sink


def test_outage_sms_due_in_quiet_hours_waits_for_their_end(sessions, topology, clock, tmp_path) -> None:  # noqa: ANN001
    from detectors.event import EventState
    from tests.contingency.conftest import make_event

    manager, sink = _manager(sessions, topology, clock, tmp_path, "10:00", "11:00")  # T0 is 10:13 in Shanghai
    manager.handle([make_event("agg-a", EventState.FIRING)])
    clock.advance(6 * 60)  # past the hold-down, still inside the quiet hours
    assert manager.tick() == 0 and sink.read() == []
    [incident] = manager.list_incidents()
    clock.t = at("2026-11-23 11:00:00")
    assert manager.tick() == 20
    timeline = " | ".join(e["text"] for t in manager.list_tickets() for e in t["timeline"])
    assert "held for quiet hours (10:00-11:00 Asia/Shanghai)" in timeline, timeline
    assert incident["customers"] == 20


def test_fault_that_clears_during_quiet_hours_texts_nobody(sessions, topology, clock, tmp_path) -> None:  # noqa: ANN001
    from detectors.event import EventState
    from tests.contingency.conftest import make_event

    manager, sink = _manager(sessions, topology, clock, tmp_path, "10:00", "11:00")
    manager.handle([make_event("agg-a", EventState.FIRING)])
    clock.advance(20 * 60)
    manager.handle([make_event("agg-a", EventState.RESOLVED, at=clock())])
    clock.t = at("2026-11-23 12:00:00")
    assert manager.tick() == 0 and sink.read() == []
    assert {m["status"] for m in manager.list_sms()} == {"cancelled"}


def test_restored_sms_in_quiet_hours_waits_too(sessions, topology, clock, tmp_path) -> None:  # noqa: ANN001
    from detectors.event import EventState
    from tests.contingency.conftest import make_event

    manager, sink = _manager(sessions, topology, clock, tmp_path, "10:30", "11:30")
    manager.handle([make_event("agg-a", EventState.FIRING)])
    clock.advance(6 * 60)  # 10:19: outside the quiet hours, the outage texts go
    assert manager.tick() == 20
    clock.t = at("2026-11-23 10:40:00")
    manager.handle([make_event("agg-a", EventState.RESOLVED, at=clock())])
    assert manager.tick() == 0
    clock.t = at("2026-11-23 11:30:00")
    assert manager.tick() == 20
    assert len(sink.read()) == 40  # 20 outage + 20 restored, nobody twice
    assert len([m for m in manager.list_sms() if m["kind"] == "restored" and m["status"] == "sent"]) == 20
