"""AlertPipeline against a SQLite file and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from alerts import AlertPipeline, NotificationRecord
from config.models import AlertsConfig
from detectors.event import EventState

from .conftest import FakeClock, Receiver, make_event

GROUP_WAIT = 30.0
GROUP_INTERVAL = 300.0
REPEAT = 3600.0


def config(receiver: Receiver, *paths: str, **route: Any) -> AlertsConfig:
    """One webhook receiver per path, all matched (continue) below a ``log`` root."""
    return AlertsConfig.model_validate(
        {
            "route": {
                "receiver": "log",
                "group_wait": GROUP_WAIT,
                "group_interval": GROUP_INTERVAL,
                "repeat_interval": REPEAT,
                **route,
                "routes": [
                    {"receiver": p.strip("/"), "continue": True, "matchers": {}} for p in paths
                ],
            },
            "receivers": [
                {"name": "log"},
                *(
                    {
                        "name": p.strip("/"),
                        "webhook_configs": [{"url": receiver.url(p), "timeout": 2}],
                    }
                    for p in paths
                ),
            ],
        }
    )


def pipeline(
    sessions: sessionmaker[Session], cfg: AlertsConfig, clock: FakeClock, **kw: Any
) -> AlertPipeline:
    return AlertPipeline(sessions, cfg, clock=clock, external_url="http://vigil.test", **kw)


def assert_alertmanager_v4(body: dict[str, Any]) -> None:
    """The keys and types of Alertmanager's webhook payload (version 4)."""
    assert set(body) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert body["version"] == "4"
    assert body["status"] in {"firing", "resolved"}
    assert isinstance(body["groupKey"], str) and body["groupKey"]
    assert body["truncatedAlerts"] == 0
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        assert all(isinstance(v, str) for v in body[key].values())
    for alert in body["alerts"]:
        assert set(alert) == {
            "status",
            "labels",
            "annotations",
            "startsAt",
            "endsAt",
            "generatorURL",
            "fingerprint",
        }
        for stamp in (alert["startsAt"], alert["endsAt"]):
            assert stamp.endswith("Z")
            datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def test_firing_then_duplicate_then_resolved(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    registry = CollectorRegistry()
    p = pipeline(sessions, config(receiver, "/noc"), clock, registry=registry)
    event = make_event(at=clock())
    await p.ingest([event])
    assert await p.flush() == 0  # group_wait not over
    assert receiver.posts("/noc") == []

    clock.advance(GROUP_WAIT)
    assert await p.flush() == 1
    [body] = receiver.posts("/noc")
    assert_alertmanager_v4(body)
    assert body["status"] == "firing" and body["receiver"] == "noc"
    assert body["externalURL"] == "http://vigil.test"
    [alert] = body["alerts"]
    assert alert["fingerprint"] == event.fingerprint
    assert alert["labels"] == dict(event.labels)
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert body["groupLabels"] == {"alertname": "LinkDown", "element": "olt-1"}

    # The same FIRING again, and time passing within repeat_interval: nothing new.
    clock.advance(10)
    await p.ingest([event])
    clock.advance(GROUP_INTERVAL)
    assert await p.flush() == 0
    assert len(receiver.posts("/noc")) == 1
    assert registry.get_sample_value("vigil_alerts_firing") == 1

    await p.ingest([make_event(EventState.RESOLVED, at=clock())])
    clock.advance(GROUP_INTERVAL)
    assert await p.flush() == 1
    first, resolved = receiver.posts("/noc")
    assert_alertmanager_v4(resolved)
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert resolved["groupKey"] == first["groupKey"]
    clock.advance(REPEAT * 2)
    assert await p.flush() == 0
    assert len(receiver.posts("/noc")) == 2
    assert registry.get_sample_value("vigil_alerts_firing") == 0
    assert (
        registry.get_sample_value(
            "vigil_notifications_total", {"receiver": "noc", "channel": "webhook", "result": "sent"}
        )
        == 2
    )
    assert [a["status"] for a in p.list_alerts()] == ["resolved"]
    assert p.list_alerts("firing") == []
    rows = p.list_notifications()
    assert [r["status"] for r in rows] == ["sent", "sent"]
    assert rows[0]["recipient"] == receiver.url("/noc")
    assert rows[1]["text"] == "[FIRING:1] LinkDown olt-1 - LinkDown on olt-1"
    assert rows[1]["incident"] == first["groupKey"]


async def test_repeat_interval_resends_still_firing_group(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    p = pipeline(sessions, config(receiver, "/noc", group_wait=0), clock)
    await p.ingest([make_event(at=clock())])
    assert await p.flush() == 1
    clock.advance(REPEAT - 1)
    assert await p.flush() == 0
    clock.advance(GROUP_INTERVAL)
    assert await p.flush() == 1
    assert len(receiver.posts("/noc")) == 2


async def test_group_wait_collects_alerts_into_one_message(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    p = pipeline(sessions, config(receiver, "/noc", group_by=["alertname"]), clock)
    await p.ingest([make_event(element="olt-1", at=clock())])
    clock.advance(5)
    await p.ingest([make_event(element="olt-2", at=clock())])
    clock.advance(GROUP_WAIT)
    assert await p.flush() == 1
    [body] = receiver.posts("/noc")
    assert sorted(a["labels"]["element"] for a in body["alerts"]) == ["olt-1", "olt-2"]
    assert body["commonLabels"]["alertname"] == "LinkDown"
    assert "element" not in body["commonLabels"]


async def test_pending_is_stored_but_not_notified(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    p = pipeline(sessions, config(receiver, "/noc", group_wait=0), clock)
    await p.ingest([make_event(EventState.PENDING, at=clock())])
    assert await p.flush() == 0
    assert [a["status"] for a in p.list_alerts()] == ["pending"]
    assert p.list_notifications() == []
    await p.ingest([make_event(EventState.RESOLVED, at=clock())])  # never fired: silent
    assert await p.flush() == 0
    assert receiver.posts("/noc") == []


async def test_retryable_errors_back_off_then_deliver_once(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    receiver.script["/noc"] = [500, 500, 200]
    registry = CollectorRegistry()
    p = pipeline(
        sessions, config(receiver, "/noc", group_wait=0), clock, registry=registry, retry_base=10
    )
    await p.ingest([make_event(at=clock())])
    assert await p.flush() == 0
    [row] = p.list_notifications()
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "HTTP 500" in row["last_error"]
    assert await p.flush() == 0  # backoff: not due yet
    assert len(receiver.posts("/noc")) == 1
    clock.advance(10)
    assert await p.flush() == 0
    clock.advance(19)
    assert await p.flush() == 0  # second backoff is 20s
    clock.advance(1)
    assert await p.flush() == 1
    [row] = p.list_notifications()
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 3, None)
    assert len(receiver.posts("/noc")) == 3
    labels = {"receiver": "noc", "channel": "webhook"}
    assert (
        registry.get_sample_value("vigil_notifications_total", {**labels, "result": "retry"}) == 2
    )
    assert registry.get_sample_value("vigil_notifications_total", {**labels, "result": "sent"}) == 1
    clock.advance(1000)
    assert await p.flush() == 0
    assert len(receiver.posts("/noc")) == 3


async def test_client_error_fails_without_retry(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    receiver.script["/noc"] = [400]
    p = pipeline(sessions, config(receiver, "/noc", group_wait=0), clock)
    await p.ingest([make_event(at=clock())])
    assert await p.flush() == 0
    clock.advance(REPEAT - 1)  # backoff would have elapsed; a repeat would not
    assert await p.flush() == 0
    [row] = p.list_notifications()
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert "HTTP 400" in row["last_error"]
    assert len(receiver.posts("/noc")) == 1


async def test_dead_receiver_does_not_block_another(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    from tests.conftest import free_tcp_port

    cfg = AlertsConfig.model_validate(
        {
            "route": {
                "receiver": "log",
                "group_wait": 0,
                "routes": [
                    {"receiver": "dead", "continue": True},
                    {"receiver": "noc"},
                ],
            },
            "receivers": [
                {"name": "log"},
                {
                    "name": "dead",
                    "webhook_configs": [{"url": f"http://127.0.0.1:{free_tcp_port()}/x"}],
                },
                {"name": "noc", "webhook_configs": [{"url": receiver.url("/noc")}]},
            ],
        }
    )
    p = pipeline(sessions, cfg, clock)
    await p.ingest([make_event(at=clock())])
    assert await p.flush() == 1
    assert len(receiver.posts("/noc")) == 1
    rows = {r["receiver"]: r for r in p.list_notifications()}
    assert rows["noc"]["status"] == "sent"
    assert rows["dead"]["status"] == "pending" and rows["dead"]["attempts"] == 1
    assert "ConnectError" in rows["dead"]["last_error"]


async def test_log_receiver(sessions: sessionmaker[Session], clock: FakeClock, caplog: Any) -> None:
    p = pipeline(
        sessions,
        AlertsConfig.model_validate({"route": {"receiver": "log", "group_wait": 0}}),
        clock,
    )
    await p.ingest([make_event(at=clock())])
    with caplog.at_level("WARNING", logger="vigil.alerts.notify"):
        assert await p.flush() == 1
    assert "LinkDown on olt-1" in caplog.text
    [row] = p.list_notifications()
    assert (row["channel"], row["recipient"], row["status"]) == (
        "log",
        "vigil.alerts.notify",
        "sent",
    )


async def test_restart_delivers_enqueued_notification_once(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock, db_url: str
) -> None:
    from sqlalchemy import create_engine

    cfg = config(receiver, "/noc", group_wait=0)
    first = pipeline(sessions, cfg, clock)
    await first.ingest([make_event(at=clock())])  # enqueued, never flushed: "crash"
    del first
    engine = create_engine(db_url)
    try:
        second = pipeline(sessionmaker(engine, expire_on_commit=False), cfg, clock)
        assert await second.flush() == 1
        assert await second.flush() == 0
        await second.ingest([make_event(at=clock())])  # replayed event after restart
        clock.advance(REPEAT - 1)
        assert await second.flush() == 0
    finally:
        engine.dispose()
    assert len(receiver.posts("/noc")) == 1


async def test_restart_before_group_wait_still_notifies(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    cfg = config(receiver, "/noc")
    await pipeline(sessions, cfg, clock).ingest([make_event(at=clock())])
    clock.advance(GROUP_WAIT)
    assert await pipeline(sessions, cfg, clock).flush() == 1
    assert len(receiver.posts("/noc")) == 1


async def test_concurrent_flushes_send_each_row_once(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    cfg = config(receiver, "/noc", "/ops", group_wait=0)
    a, b = pipeline(sessions, cfg, clock), pipeline(sessions, cfg, clock)
    await a.ingest([make_event(at=clock()), make_event(element="olt-2", at=clock())])
    sent = await asyncio.gather(a.flush(), b.flush(), a.flush())
    assert sum(sent) == 4
    assert len(receiver.posts("/noc")) == 2 and len(receiver.posts("/ops")) == 2


async def test_crash_between_send_and_commit_is_not_resent(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    cfg = config(receiver, "/noc", group_wait=0)
    p = pipeline(sessions, cfg, clock, sending_lease=60)
    await p.ingest([make_event(at=clock())])
    # Simulate a process that claimed the row, sent it, and died before recording the outcome.
    with sessions.begin() as s:
        s.execute(
            update(NotificationRecord).values(
                status="sending",
                attempts=1,
                claimed_at=datetime.fromtimestamp(clock(), UTC),
                claim_token="dead-process",
            )
        )
    restarted = pipeline(sessions, cfg, clock, sending_lease=60)
    assert await restarted.flush() == 0  # lease not expired: maybe still in flight
    assert p.list_notifications()[0]["status"] == "sending"
    clock.advance(60)
    assert await restarted.flush() == 0
    [row] = restarted.list_notifications()
    assert row["status"] == "failed" and "outcome unknown" in row["last_error"]
    assert receiver.posts("/noc") == []


async def test_send_resolved_false_skips_resolved_message(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    cfg = AlertsConfig.model_validate(
        {
            "route": {"receiver": "noc", "group_wait": 0, "group_interval": 60},
            "receivers": [
                {
                    "name": "noc",
                    "webhook_configs": [
                        {"url": receiver.url("/noc"), "send_resolved": False},
                        {"url": receiver.url("/noc2")},
                    ],
                },
            ],
        }
    )
    p = pipeline(sessions, cfg, clock)
    await p.ingest([make_event(at=clock())])
    assert await p.flush() == 2
    await p.ingest([make_event(EventState.RESOLVED, at=clock())])
    clock.advance(60)
    assert await p.flush() == 1
    assert [b["status"] for b in receiver.posts("/noc")] == ["firing"]
    assert [b["status"] for b in receiver.posts("/noc2")] == ["firing", "resolved"]


async def test_refire_after_resolve_notifies_again(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    p = pipeline(sessions, config(receiver, "/noc", group_wait=0, group_interval=60), clock)
    await p.ingest([make_event(at=clock())])
    await p.flush()
    clock.advance(60)
    await p.ingest([make_event(EventState.RESOLVED, at=clock())])
    await p.flush()
    clock.advance(60)
    await p.ingest([make_event(at=clock())])
    await p.flush()
    assert [b["status"] for b in receiver.posts("/noc")] == ["firing", "resolved", "firing"]


def test_concurrent_ingest_of_same_event_enqueues_once(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    import threading

    cfg = config(receiver, "/noc", group_wait=0)
    pipelines = [pipeline(sessions, cfg, clock) for _ in range(4)]
    start = threading.Barrier(len(pipelines))
    errors: list[BaseException] = []

    def run(p: AlertPipeline) -> None:
        start.wait()
        try:
            asyncio.run(p.ingest([make_event(at=clock())]))
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(p,)) for p in pipelines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(pipelines[0].list_notifications()) == 1
    assert asyncio.run(pipelines[1].flush()) == 1
    assert len(receiver.posts("/noc")) == 1


# --------------------------------------------------------------------------- outbox order and supersession


class Gate:
    """A channel whose sends wait until the test opens the gate (a receiver that hangs)."""

    kind = "webhook"
    recipient = "gate"

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.started: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []

    async def send(self, payload: dict[str, Any]) -> None:
        self.started.append(payload)
        await self.open.wait()
        self.sent.append(payload)


def statuses(p: AlertPipeline) -> list[str]:
    return [r["status"] for r in reversed(p.list_notifications())]


async def test_a_repeat_during_an_outage_supersedes_the_unsent_retry(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    receiver.script["/noc"] = [503] * 3
    registry = CollectorRegistry()
    p = pipeline(sessions, config(receiver, "/noc", group_wait=0), clock, registry=registry, retry_max=REPEAT * 2)
    await p.ingest([make_event(at=clock())])
    for _ in range(2):  # the first try and a repeat fail; the repeat replaces the first
        assert await p.flush() == 0
        clock.advance(REPEAT)
    assert statuses(p) == ["superseded", "pending"]
    assert await p.flush() == 0  # the third try fails too: still one row waits, not three
    assert statuses(p) == ["superseded", "superseded", "pending"]
    clock.advance(REPEAT)
    assert await p.flush() == 1  # back: one message, not a burst of copies
    assert statuses(p) == ["superseded", "superseded", "superseded", "sent"]
    assert len(receiver.posts("/noc")) == 4
    labels = {"receiver": "noc", "channel": "webhook"}
    assert registry.get_sample_value("vigil_notifications_superseded_total", labels) == 3


async def test_a_superseded_row_passes_its_resolved_alerts_on(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    """[A, B firing] sent; [A firing, B resolved] fails; [A, C firing] replaces it and still says B resolved."""
    receiver.script["/noc"] = [200, 503]
    cfg = config(receiver, "/noc", group_wait=0, group_interval=60, group_by=["element"])
    p = pipeline(sessions, cfg, clock, retry_base=600)
    await p.ingest([make_event(name="A", at=clock()), make_event(name="B", at=clock())])
    assert await p.flush() == 1
    clock.advance(60)
    await p.ingest([make_event(EventState.RESOLVED, name="B", at=clock())])
    assert await p.flush() == 0  # 503: retried in 10 min
    clock.advance(60)
    await p.ingest([make_event(name="C", at=clock())])
    assert await p.flush() == 1
    assert statuses(p) == ["sent", "superseded", "sent"]
    last = receiver.posts("/noc")[-1]
    assert {a["labels"]["alertname"]: a["status"] for a in last["alerts"]} == {
        "A": "firing", "B": "resolved", "C": "firing",
    }


async def test_resolved_with_send_resolved_false_cancels_an_unsent_firing(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    receiver.script["/noc"] = [503]
    cfg = AlertsConfig.model_validate({
        "route": {"receiver": "noc", "group_wait": 0, "group_interval": 60},
        "receivers": [{"name": "noc", "webhook_configs": [{"url": receiver.url("/noc"), "send_resolved": False}]}],
    })
    p = pipeline(sessions, cfg, clock, retry_base=600)
    await p.ingest([make_event(at=clock())])
    assert await p.flush() == 0
    await p.ingest([make_event(EventState.RESOLVED, at=clock())])
    clock.advance(600)
    assert await p.flush() == 0
    assert statuses(p) == ["superseded"]  # the alert is over: no late "firing"
    assert len(receiver.posts("/noc")) == 1


async def test_a_groups_rows_go_out_in_order_and_a_hanging_integration_holds_up_no_other(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    gate = Gate()
    cfg = config(receiver, "/hang", "/noc", group_wait=0, group_interval=60)
    p = pipeline(sessions, cfg, clock, channels={"hang": gate})
    await p.ingest([make_event(at=clock())])
    assert await p.dispatch() == 2  # started, not awaited
    await asyncio.sleep(0.5)
    assert len(receiver.posts("/noc")) == 1  # the other integration is not held up
    assert len(gate.started) == 1 and p.sends_in_flight == 1
    clock.advance(60)
    await p.ingest([make_event(EventState.RESOLVED, at=clock())])
    await p.dispatch()
    await asyncio.sleep(0.5)
    assert [b["status"] for b in receiver.posts("/noc")] == ["firing", "resolved"]
    # the hanging integration's "resolved" waits behind its "firing" in flight: not sent, not superseded
    assert len(gate.started) == 1
    assert [r["status"] for r in reversed(p.list_notifications()) if r["receiver"] == "hang"] == [
        "sending", "pending",
    ]
    gate.open.set()
    await asyncio.sleep(0.1)
    assert await p.flush() == 1
    assert [b["status"] for b in gate.sent] == ["firing", "resolved"]


async def test_sends_in_flight_are_capped_per_integration(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    gate = Gate()
    p = pipeline(sessions, config(receiver, "/hang", group_wait=0), clock, channels={"hang": gate}, max_sends=2)
    await p.ingest([make_event(element=f"olt-{i}", at=clock()) for i in range(3)])
    assert await p.dispatch() == 2
    assert await p.dispatch() == 0  # the third group waits for a free slot
    gate.open.set()
    await asyncio.sleep(0.1)
    assert await p.flush() == 1
    assert len(gate.sent) == 3


async def test_a_send_cut_off_by_a_graceful_stop_is_sent_after_the_restart(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock
) -> None:
    cfg = config(receiver, "/noc", group_wait=0)
    registry = CollectorRegistry()
    gate = Gate()
    first = pipeline(sessions, cfg, clock, channels={"noc": gate}, registry=registry)
    await first.ingest([make_event(at=clock())])
    assert await first.dispatch() == 1
    await asyncio.sleep(0.1)
    assert await first.drain(timeout=0.1) == 1  # the stop does not wait out a hanging receiver
    [row] = first.list_notifications()
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "shutdown" in row["last_error"]
    labels = {"receiver": "noc", "channel": "webhook", "result": "interrupted"}
    assert registry.get_sample_value("vigil_notifications_total", labels) == 1
    restarted = pipeline(sessions, cfg, clock)
    assert await restarted.flush() == 1  # at once, not after a backoff
    assert await restarted.flush() == 0
    assert len(receiver.posts("/noc")) == 1
