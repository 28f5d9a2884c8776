"""Edge cases found in review: nobody texted twice or wrongly, whatever the spelling, the timing or
the process (each test failed before its fix)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from sqlalchemy.orm import sessionmaker

from config.models import ContingencyConfig, Customer
from contingency import ContingencyManager, FileSmsSink, Topology
from contingency.errors import SmsRetryableError
from detectors.event import EventState
from tests.contingency.conftest import AREAS, CUSTOMERS, ELEMENTS, HOLD_DOWN, FakeClock, make_event, text_then_absorb
from tests.contingency.test_maintenance import WindowBoard, window

FIRING, RESOLVED = EventState.FIRING, EventState.RESOLVED
PHONE = CUSTOMERS[0].phone  # an olt-a1 customer


def texts(sink: FileSmsSink) -> Counter[str]:
    return Counter(str(line["to"]) for line in sink.read())


class OnSend:
    """A sink that runs ``act`` (another thread's or process's move) while sending to PHONE, once,
    then fails as a busy gateway (``busy``) or after delivering (a sink bug)."""

    def __init__(self, inner: FileSmsSink, act: Callable[[], object], *, busy: bool) -> None:
        self.inner, self.act, self.busy, self.done = inner, act, busy, False

    def send(self, phone: str, text: str, *, message_id: str) -> None:
        if phone != PHONE or self.done:
            self.inner.send(phone, text, message_id=message_id)
            return
        self.done = True
        if not self.busy:
            self.inner.send(phone, text, message_id=message_id)
            raise RuntimeError("sink bug after delivery")
        self.act()
        raise SmsRetryableError(phone, "gateway busy", message_id=message_id)


def test_an_unplanned_fault_above_does_not_wait_for_a_window_below(
    sessions: sessionmaker, topology: Topology, config: ContingencyConfig, clock: FakeClock,
    sink: FileSmsSink,
) -> None:
    board = WindowBoard(clock)
    board.windows["olt-a1"] = window(4 * 3600)  # a 4 h splice on olt-a1
    manager = ContingencyManager(sessions, topology, config, sink, clock=clock, maintenance=board)
    manager.handle([make_event("olt-a1", FIRING)])
    clock.advance(60)
    manager.handle([make_event("agg-a", FIRING)])  # the aggregation fails: a real outage
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 20
    assert set(texts(sink)) == {c.phone for c in CUSTOMERS if c.element in ("olt-a1", "olt-a2")}


def test_one_person_two_spellings_one_text(
    sessions: sessionmaker, config: ContingencyConfig, clock: FakeClock, sink: FileSmsSink,
) -> None:
    twice = [Customer(account="X2", phone="+8613800009999", area="tianhe", element="olt-a2"),
             Customer(account="X1", phone="13800009999", area="yuexiu", element="olt-a1")]
    manager = ContingencyManager(sessions, Topology(ELEMENTS, AREAS, twice + list(CUSTOMERS)), config, sink,
                                 clock=clock)
    text_then_absorb(manager, clock)
    assert [to for to in texts(sink).elements() if to.endswith("13800009999")] == ["13800009999"]


def test_td_from_any_spelling_cancels_the_text(
    sessions: sessionmaker, config: ContingencyConfig, clock: FakeClock, sink: FileSmsSink,
) -> None:
    spelled = [Customer(account="X2", phone="008613800009999", area="tianhe", element="olt-a2")]
    manager = ContingencyManager(sessions, Topology(ELEMENTS, AREAS, spelled + list(CUSTOMERS)), config, sink,
                                 clock=clock)
    manager.handle([make_event("olt-a2", FIRING)])
    assert manager.inbound_sms("+86 138 0000 9999", "TD")
    clock.advance(HOLD_DOWN)
    manager.tick()
    assert not [to for to in texts(sink) if to.endswith("13800009999")]


def test_td_while_the_text_is_being_tried_stops_the_retry(
    sessions: sessionmaker, topology: Topology, config: ContingencyConfig, clock: FakeClock,
    sink: FileSmsSink, registry: CollectorRegistry,
) -> None:
    holder: list[ContingencyManager] = []
    flaky = OnSend(sink, lambda: holder[0].inbound_sms(PHONE, "TD"), busy=True)
    manager = ContingencyManager(sessions, topology, config, flaky, clock=clock, registry=registry)
    holder.append(manager)
    manager.handle([make_event("olt-a1", FIRING)])
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 9
    clock.advance(700)  # past the retry's back-off
    assert manager.tick() == 0
    assert texts(sink)[PHONE] == 0
    assert manager.impact(PHONE)["incidents"][0]["sms"]["status"] == "opted_out"


def test_a_resolve_by_another_process_while_sending_cancels_the_retry(
    sessions: sessionmaker, topology: Topology, config: ContingencyConfig, clock: FakeClock,
    sink: FileSmsSink,
) -> None:
    other = ContingencyManager(sessions, topology, config, sink, clock=clock)
    flaky = OnSend(sink, lambda: other.handle([make_event("olt-a1", RESOLVED)]), busy=True)
    manager = ContingencyManager(sessions, topology, config, flaky, clock=clock)
    manager.handle([make_event("olt-a1", FIRING)])
    clock.advance(HOLD_DOWN)
    manager.tick()
    clock.advance(700)
    manager.tick()
    other.tick()
    [incident] = manager.list_incidents()
    assert incident["status"] == "resolved"
    assert incident["sms"]["outage_sent"] == 9 and incident["sms"]["outage_cancelled"] == 1
    assert texts(sink)[PHONE] == 0  # no outage text after the restoration, and no "restored" either


def test_absorbing_never_retries_a_text_that_may_have_gone(
    sessions: sessionmaker, topology: Topology, config: ContingencyConfig, clock: FakeClock,
    sink: FileSmsSink,
) -> None:
    manager = ContingencyManager(sessions, topology, config, OnSend(sink, lambda: None, busy=False), clock=clock)
    text_then_absorb(manager, clock)
    assert texts(sink)[PHONE] == 1


def test_planned_works_above_over_but_a_fault_below_goes_on_texts_its_customers(
    sessions: sessionmaker, topology: Topology, config: ContingencyConfig, clock: FakeClock,
    sink: FileSmsSink,
) -> None:
    board = WindowBoard(clock)
    board.windows["agg-a"] = window(4 * 3600)  # planned works on the aggregation
    manager = ContingencyManager(sessions, topology, config, sink, clock=clock, maintenance=board)
    manager.handle([make_event("agg-a", FIRING)])
    manager.handle([make_event("olt-a1", FIRING, name="ElementUnreachable")])  # joins the planned incident
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 0  # planned: nobody texted
    manager.handle([make_event("agg-a", RESOLVED)])  # the works are done, olt-a1 did not come back
    clock.advance(HOLD_DOWN)
    assert manager.tick() == 10  # olt-a1's customers, not at the window's end but after a hold-down
    olt_a1 = {c.phone for c in CUSTOMERS if c.element == "olt-a1"}
    assert set(texts(sink)) == olt_a1
