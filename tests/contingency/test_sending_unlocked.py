"""Sending never holds the manager: a gateway that hangs delays its own texts, nothing else.

tick() claims due texts in a transaction (queued -> sending), sends them outside the manager's
lock and records the outcomes after; a concurrent tick never takes a claimed text, and a sink that
allows it (Kannel) gets a batch's texts several at a time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from contingency import ContingencyManager
from contingency.store import SmsMessage
from detectors.event import EventState
from tests.contingency.conftest import CUSTOMERS, HOLD_DOWN, FakeClock, make_event

OLT_A1 = sum(1 for c in CUSTOMERS if c.element == "olt-a1")
OLT_B1 = sum(1 for c in CUSTOMERS if c.element == "olt-b1")


class _GateSink:
    """A gateway whose requests hang until released; counts sends per message id and the most
    requests it had in flight at once."""

    def __init__(self, max_concurrent_sends: int = 1) -> None:
        self.max_concurrent_sends = max_concurrent_sends
        self.release = threading.Event()
        self.entered = threading.Event()
        self.sent: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._in_flight = 0
        self.peak = 0

    def send(self, phone: str, text: str, *, message_id: str) -> None:
        with self._lock:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
            self.sent[message_id] += 1
        self.entered.set()
        try:
            assert self.release.wait(30), "the test never released the gateway"
        finally:
            with self._lock:
                self._in_flight -= 1


class _SlowSink:
    """Answers every request after ``delay`` seconds; thread-safe."""

    def __init__(self, delay: float, max_concurrent_sends: int | None) -> None:
        self.delay = delay
        if max_concurrent_sends is not None:  # None: the SmsSink protocol alone
            self.max_concurrent_sends = max_concurrent_sends
        self._lock = threading.Lock()
        self._in_flight = 0
        self.peak = 0
        self.sent: list[str] = []

    def send(self, phone: str, text: str, *, message_id: str) -> None:
        with self._lock:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        time.sleep(self.delay)
        with self._lock:
            self._in_flight -= 1
            self.sent.append(message_id)


def _statuses(sessions: sessionmaker) -> Counter[str]:
    with sessions() as session:
        return Counter(session.scalars(select(SmsMessage.status)))


def test_a_hanging_send_does_not_hold_handle_and_a_claimed_text_is_never_taken_twice(
    make_manager: Callable[..., ContingencyManager], sessions: sessionmaker, clock: FakeClock,
) -> None:
    sink = _GateSink()
    manager = make_manager(sink)
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    clock.advance(HOLD_DOWN)
    ticking = threading.Thread(target=manager.tick, kwargs={"batch": 5}, daemon=True)
    ticking.start()
    try:
        assert sink.entered.wait(10)  # the first of 5 claimed texts hangs at the gateway
        # a new fault meanwhile is handled at once: incident, ticket, banner
        started = time.monotonic()
        manager.handle([make_event("olt-b1", EventState.FIRING)])
        assert time.monotonic() - started < 5
        assert {i["element"] for i in manager.list_incidents() if i["status"] == "open"} == {"olt-a1", "olt-b1"}
        assert {b["incident_key"] for b in manager.list_banners()} == {"olt-a1", "olt-b1"}
        # the 5 claimed texts are "sending": a second tick takes the others, never those
        assert _statuses(sessions)["sending"] == 5
        second = threading.Thread(target=manager.tick, kwargs={"batch": 100}, daemon=True)
        second.start()
        deadline = time.monotonic() + 10
        while sum(sink.sent.values()) < 2 and time.monotonic() < deadline:  # both ticks at the gateway
            time.sleep(0.02)
        assert sum(sink.sent.values()) == 2
    finally:
        sink.release.set()
        ticking.join(30)
    second.join(30)
    assert not ticking.is_alive() and not second.is_alive()
    assert len(sink.sent) == OLT_A1 and set(sink.sent.values()) == {1}, sink.sent
    # olt-a1's texts sent once each; olt-b1's wait for its own hold-down
    assert _statuses(sessions) == Counter({"sent": OLT_A1, "queued": OLT_B1})


def test_a_sink_that_allows_it_gets_a_batch_several_texts_at_a_time(
    make_manager: Callable[..., ContingencyManager], sessions: sessionmaker, clock: FakeClock,
) -> None:
    sink = _SlowSink(delay=0.2, max_concurrent_sends=4)
    manager = make_manager(sink)
    manager.handle([make_event("olt-a1", EventState.FIRING)])  # 10 customers
    clock.advance(HOLD_DOWN)
    started = time.monotonic()
    assert manager.tick() == OLT_A1
    elapsed = time.monotonic() - started
    assert sink.peak == 4  # bounded
    assert elapsed < OLT_A1 * 0.2 * 0.75, f"{OLT_A1} texts of 0.2 s each took {elapsed:.2f} s"
    assert len(sink.sent) == len(set(sink.sent)) == OLT_A1
    assert _statuses(sessions) == Counter({"sent": OLT_A1})


def test_a_sink_without_max_concurrent_sends_is_sent_one_text_at_a_time(
    make_manager: Callable[..., ContingencyManager], clock: FakeClock,
) -> None:
    sink = _SlowSink(delay=0.01, max_concurrent_sends=None)  # as the file and console sinks: in order
    manager = make_manager(sink)
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    clock.advance(HOLD_DOWN)
    assert manager.tick() == OLT_A1
    assert sink.peak == 1


def test_a_resolve_while_outage_texts_are_at_the_gateway_still_tells_those_customers_it_is_over(
    make_manager: Callable[..., ContingencyManager], sessions: sessionmaker, clock: FakeClock,
) -> None:
    sink = _GateSink()
    manager = make_manager(sink)
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    clock.advance(HOLD_DOWN)
    ticking = threading.Thread(target=manager.tick, kwargs={"batch": 3}, daemon=True)
    ticking.start()
    try:
        assert sink.entered.wait(10)  # 3 outage texts claimed, at the gateway
        manager.handle([make_event("olt-a1", EventState.RESOLVED)])  # not waiting for them
    finally:
        sink.release.set()
        ticking.join(30)
    manager.tick()  # whatever that tick left (it stops claiming after its budget)
    with sessions() as session:
        rows = Counter((k, s) for k, s in session.execute(select(SmsMessage.kind, SmsMessage.status)))
    # the 3 that went get "restored"; the 7 never sent are cancelled, their customers told nothing
    assert rows == Counter({("outage", "sent"): 3, ("outage", "cancelled"): OLT_A1 - 3, ("restored", "sent"): 3})
