"""Poller: global concurrency limit, a dead element never delays a live one, overruns are
counted and logged, reachability samples feed ReachabilityRule (real snmpsim + a dead port)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from collectors.exporter import SnmpMetricsExporter
from collectors.poller import Poller
from collectors.profiles import load_profiles
from collectors.sample import Sample
from collectors.snmp import SnmpClient, Target
from detectors.event import EventState
from detectors.reachability import ReachabilityRule
from tests.collectors.test_snmpsim import Simulator, snmpsim  # noqa: F401
from tests.conftest import free_udp_port

LIVE = ["cisco-c3560", "huawei-s5720", "unknown-002", "arista-dcs-7150s-52-cl"]


class InflightClient(SnmpClient):
    """A real client that tracks how many targets have a request under way at once."""

    def __init__(self) -> None:
        super().__init__()
        self.busy: dict[str, int] = {}
        self.peak = 0

    async def _track(self, target: Target, request):  # noqa: ANN001, ANN202
        self.busy[target.element] = self.busy.get(target.element, 0) + 1
        self.peak = max(self.peak, sum(1 for n in self.busy.values() if n))
        try:
            return await request
        finally:
            self.busy[target.element] -= 1

    async def get(self, target: Target, oids: Sequence[str]) -> dict[str, object]:
        return await self._track(target, super().get(target, oids))

    async def walk_table(
        self, target: Target, columns: Sequence[str], *, max_repetitions: int | None = None
    ) -> dict[str, dict[str, object]]:
        return await self._track(
            target, super().walk_table(target, columns, max_repetitions=max_repetitions)
        )


def make_poller(
    client: SnmpClient,
    targets: list[Target],
    **options: object,
) -> tuple[Poller, CollectorRegistry, list[list[Sample]], list[list[Sample]]]:
    registry = CollectorRegistry()
    received: list[list[Sample]] = []
    status: list[list[Sample]] = []
    poller = Poller(
        client,
        targets,
        areas={t.element: "north" for t in targets},
        exporter=SnmpMetricsExporter(),
        registry=registry,
        on_samples=received.append,
        on_status=status.append,
        **options,  # type: ignore[arg-type]
    )
    return poller, registry, received, status


def dead_target(element: str = "dead-1", timeout: float = 0.5, retries: int = 1) -> Target:
    return Target(element, "127.0.0.1", free_udp_port(), timeout=timeout, retries=retries)


async def test_dead_element_does_not_delay_a_live_one(snmpsim: Simulator) -> None:  # noqa: F811
    client = SnmpClient()
    live = snmpsim.target("huawei-s5720", element="live-1")
    dead = dead_target(timeout=1.0, retries=1)  # budget: 2 s per request
    poller, registry, received, _ = make_poller(client, [live, dead])
    done_at: dict[str, float] = {}
    poller.on_samples = lambda batch: (received.append(batch), done_at.setdefault("live-1", time.perf_counter()))
    try:
        await poller.poll("live-1")  # labels walked once: the next polls are normal polls
        alone_started = time.perf_counter()
        await poller.poll("live-1")
        alone = time.perf_counter() - alone_started
        done_at.clear()
        started = time.perf_counter()
        await poller.poll_all()
        total = time.perf_counter() - started
    finally:
        client.close()
    live_took = done_at["live-1"] - started
    assert total >= 1.9, "the dead element used its whole timeout budget (2 x 1 s)"
    assert live_took < max(3 * alone, alone + 0.5) and live_took < 1.0, (alone, live_took)
    assert registry.get_sample_value("vigil_target_up", {"element": "live-1"}) == 1
    assert registry.get_sample_value("vigil_target_up", {"element": "dead-1"}) == 0
    assert registry.get_sample_value("vigil_polls_total", {"element": "dead-1", "result": "failed"}) == 1


async def test_global_concurrency_limit_holds_for_single_polls(snmpsim: Simulator) -> None:  # noqa: F811
    client = InflightClient()
    targets = [snmpsim.target(c) for c in LIVE]
    poller, registry, received, _ = make_poller(client, targets, concurrency=2)
    try:
        # the scheduler's way: one poll() per element, all due at once
        await asyncio.gather(*(poller.poll(t.element) for t in targets))
        assert client.peak == 2
        await poller.poll_all()
        assert client.peak == 2
    finally:
        client.close()
    assert len(received) == 2 * len(LIVE)
    for target in targets:
        assert registry.get_sample_value("vigil_polls_total", {"element": target.element, "result": "ok"}) == 2


async def test_varbinds_and_profiles(snmpsim: Simulator) -> None:  # noqa: F811
    client = SnmpClient()
    target = snmpsim.target("cisco-c3560")
    poller, registry, received, _ = make_poller(client, [target], profiles=load_profiles())
    try:
        await poller.poll(target.element)
    finally:
        client.close()
    varbinds = registry.get_sample_value("vigil_varbinds_total", {"element": target.element})
    collector = poller.collectors[target.element]
    assert varbinds == collector.varbinds and varbinds >= len(received[0]) > 0
    assert {"cpmCPUTotal5minRev", "ifHCInOctets"} <= {s.metric for s in received[0]}
    # the cached ifType, as the link-state rule asks it (the recording's ports are Ethernet, 6)
    indices = {s.label("ifIndex") for s in received[0] if s.metric == "ifOperStatus"}
    assert indices and {poller.interface_type(target.element, i) for i in indices} >= {6}
    assert poller.interface_type(target.element, "999999") is None
    assert poller.interface_type("no-such-element", "1") is None


async def test_overruns_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    client = SnmpClient()
    dead = dead_target(timeout=0.4, retries=1)  # 0.8 s per poll
    poller, registry, _, _ = make_poller(client, [dead], intervals={"dead-1": 0.5})
    caplog.set_level(logging.WARNING, logger="collectors.poller")
    try:
        first = asyncio.create_task(poller.poll("dead-1"))
        await asyncio.sleep(0.1)
        await poller.poll("dead-1")  # due while the first still runs: counted, not started
        await first
    finally:
        client.close()
    assert registry.get_sample_value("vigil_poll_overruns_total", {"element": "dead-1"}) == 2
    assert registry.get_sample_value("vigil_polls_total", {"element": "dead-1", "result": "failed"}) == 1
    overruns = [r.getMessage() for r in caplog.records if "overrun" in r.getMessage()]
    assert len(overruns) == 2 and all("element=dead-1" in m for m in overruns)
    assert any("still running" in m for m in overruns)
    assert any("> interval 0.500s" in m for m in overruns)


async def test_up_samples_feed_the_reachability_rule(snmpsim: Simulator) -> None:  # noqa: F811
    client = SnmpClient()
    live = snmpsim.target("unknown-002", element="live-1")
    dead = dead_target(timeout=0.2, retries=0)
    poller, registry, received, status = make_poller(client, [live, dead])
    rule = ReachabilityRule(failures=3)
    events = []
    try:
        for _ in range(3):
            await poller.poll_all()
            events += rule.update([s for batch in status for s in batch])
            status.clear()
    finally:
        client.close()
    assert registry.get_sample_value("vigil_consecutive_failures", {"element": "dead-1"}) == 3
    assert registry.get_sample_value("vigil_consecutive_failures", {"element": "live-1"}) == 0
    assert [(e.element, e.state) for e in events] == [("dead-1", EventState.FIRING)]
    assert {s.element for batch in received for s in batch} == {"live-1"}, "no data samples of a dead element"
