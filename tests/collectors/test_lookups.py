"""Lookups (ifName, ifAlias, ifType, ifHighSpeed...) are cached, not re-walked every poll.

A counting client (a real SnmpClient that records what it sends) polls snmpsim's
``linux-writable`` recording; Net-SNMP's ``snmpset`` changes ifAlias, ifTableLastChange,
ifNumber and sysUpTime under snmpsim's ``writecache`` module between polls.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from collectors.profiles import (
    IF_NUMBER,
    IF_TABLE_LAST_CHANGE,
    SYS_UPTIME,
    ProfileCollector,
    load_profiles,
)
from collectors.sample import SampleKind
from collectors.snmp import SnmpClient, Target
from tests.collectors.test_snmpsim import IF_ALIAS, IF_NAME, Simulator, snmpsim  # noqa: F401
from tests.conftest import require_binary

COMMUNITY = "linux-writable"


class CountingClient(SnmpClient):
    """A real client that records every GET and every table walk it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: list[tuple[str, ...]] = []
        self.walks: list[tuple[str, ...]] = []

    async def get(self, target: Target, oids: Sequence[str]) -> dict[str, object]:
        self.gets.append(tuple(oids))
        return await super().get(target, oids)

    async def walk_table(
        self, target: Target, columns: Sequence[str], *, max_repetitions: int | None = None
    ) -> dict[str, dict[str, object]]:
        self.walks.append(tuple(columns))
        return await super().walk_table(target, columns, max_repetitions=max_repetitions)

    def label_walks(self) -> int:
        return sum(1 for walk in self.walks if IF_NAME in walk)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def snmpset(sim: Simulator, oid: str, kind: str, value: str) -> None:
    binary = require_binary("snmpset")
    subprocess.run(
        [binary, "-v2c", "-c", COMMUNITY, "-t", "2", "-r", "1", f"{sim.host}:{sim.port}", oid, kind, value],
        check=True,
        capture_output=True,
    )


def aliases(collector: ProfileCollector) -> dict[str, str]:
    return {row.index: str(row.values.get("ifAlias") or "") for row in collector.rows["interfaces"]}


async def test_labels_walked_once_then_on_a_slower_schedule(snmpsim: Simulator) -> None:  # noqa: F811
    client = CountingClient()
    clock = Clock()
    collector = ProfileCollector(
        client, snmpsim.target(COMMUNITY), load_profiles(), clock, label_refresh=300.0
    )
    try:
        for _ in range(5):
            await collector.collect()
            clock.now += 60.0
        assert client.label_walks() == 1, "label columns walked on the first poll only"
        assert len(client.walks) == 5 + 1, "one walk of the polled columns per poll, plus labels"
        assert all(IF_NAME not in walk for walk in client.walks[2:])
        # every poll asks sysUpTime, ifNumber and ifTableLastChange in one GET
        polls = [get for get in client.gets if SYS_UPTIME in get]
        assert len(polls) == 5
        assert all(IF_NUMBER in get and IF_TABLE_LAST_CHANGE in get for get in polls)
        await collector.collect()  # 300 s after the first poll: refresh due
        assert client.label_walks() == 2
        assert collector.lookup_refreshes == 2
    finally:
        client.close()


async def test_table_change_signals_refresh_the_labels(snmpsim: Simulator) -> None:  # noqa: F811
    client = CountingClient()
    clock = Clock()
    collector = ProfileCollector(client, snmpsim.target(COMMUNITY), load_profiles(), clock)
    try:
        await collector.collect()
        walks = client.label_walks()
        assert walks == 1

        # An alias changed, nothing says the table changed: the cached label stays.
        snmpset(snmpsim, f"{IF_ALIAS}.2", "s", "uplink to agg-1")
        clock.now += 60
        await collector.collect()
        assert client.label_walks() == 1
        assert aliases(collector)["2"] != "uplink to agg-1"

        # ifTableLastChange moves: labels are walked again in that poll.
        snmpset(snmpsim, IF_TABLE_LAST_CHANGE, "t", "12345")
        clock.now += 60
        await collector.collect()
        assert client.label_walks() == 2
        assert aliases(collector)["2"] == "uplink to agg-1"

        # ifNumber changes: walked again.
        snmpset(snmpsim, IF_NUMBER, "i", "16")
        clock.now += 60
        await collector.collect()
        assert client.label_walks() == 3
        clock.now += 60
        await collector.collect()
        assert client.label_walks() == 3, "a steady ifNumber does not trigger a refresh"

        # sysUpTime goes back (the agent restarted): walked again, and no rate across the reset.
        snmpset(snmpsim, "1.3.6.1.2.1.1.3.0", "t", "50")
        clock.now += 60
        samples = await collector.collect()
        assert client.label_walks() == 4
        assert not [s for s in samples if s.kind is SampleKind.RATE]
        clock.now += 60
        samples = await collector.collect()
        assert client.label_walks() == 4
        assert [s for s in samples if s.metric == "if_in_bps"], "rates again after the reset"
    finally:
        client.close()


async def test_absent_tables_are_left_out_until_the_next_refresh(snmpsim: Simulator) -> None:  # noqa: F811
    hr_processor_load = "1.3.6.1.2.1.25.3.3.1.2"  # HOST-RESOURCES: not on a Catalyst 3560
    client = CountingClient()
    clock = Clock()
    collector = ProfileCollector(
        client, snmpsim.target("cisco-c3560"), load_profiles(), clock, label_refresh=300.0
    )
    try:
        for _ in range(3):
            await collector.collect()
            clock.now += 150.0
    finally:
        client.close()
    polled = [walk for walk in client.walks if "1.3.6.1.2.1.31.1.1.1.6" in walk]
    assert len(polled) == 3
    assert [hr_processor_load in walk for walk in polled] == [True, False, True], (
        "probed on the first poll, skipped, probed again after the refresh at 300 s"
    )
    assert "cpmCPUTotal5minRev" in {
        name for rows in collector.rows.values() for row in rows for name in row.values
    }
