"""Collectors against a real Net-SNMP snmpd on a loopback port (compared with Net-SNMP's tools)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collectors.exporter import SnmpMetricsExporter
from collectors.ifmib import IF_COLUMNS, IfMibCollector
from collectors.poller import Poller
from collectors.probe import probe
from collectors.sample import Sample, SampleKind
from collectors.snmp import SnmpClient, SnmpTimeout, Target
from tests.conftest import free_udp_port, require_binary

COMMUNITY = "vigiltest"
IF_DESCR = IF_COLUMNS["ifDescr"]
IF_NAME = IF_COLUMNS["ifName"]
IF_HC_IN = IF_COLUMNS["ifHCInOctets"]


@dataclass(frozen=True)
class Agent:
    """A running snmpd."""

    host: str
    port: int

    def target(self, element: str = "snmpd", **overrides: object) -> Target:
        options: dict[str, object] = {"community": COMMUNITY, "timeout": 1.0, **overrides}
        return Target(element, self.host, self.port, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    binary = require_binary("snmpd", "/usr/sbin/snmpd")
    require_binary("snmpbulkwalk")
    snmpget = require_binary("snmpget")
    workdir = tmp_path_factory.mktemp("snmpd")
    port = free_udp_port()
    conf = workdir / "snmpd.conf"
    conf.write_text(f"agentAddress udp:127.0.0.1:{port}\nrocommunity {COMMUNITY} 127.0.0.1\n")
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir / "persist"), "MIBS": ""}
    # -C: never read /etc/snmp; -I -smux: no SMUX listener on tcp/199; -M: load no MIB files.
    command = [
        binary,
        "-f",
        "-C",
        "-c",
        str(conf),
        "-Lf",
        str(workdir / "snmpd.log"),
        "-p",
        str(workdir / "snmpd.pid"),
        "-I",
        "-smux",
        "-M",
        str(workdir),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_until_answering(snmpget, port, process, workdir / "snmpd.log")
        yield Agent("127.0.0.1", port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_answering(
    snmpget: str, port: int, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"snmpd exited with {process.returncode}: {log.read_text() if log.exists() else ''}"
            )
        done = subprocess.run(
            [
                snmpget,
                "-v2c",
                "-c",
                COMMUNITY,
                "-t",
                "0.2",
                "-r",
                "0",
                "-On",
                f"127.0.0.1:{port}",
                "1.3.6.1.2.1.1.3.0",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return
    pytest.fail("snmpd did not answer within 10 s")


def _bulkwalk(agent: Agent, oid: str) -> dict[str, str]:
    """Net-SNMP's view of a column: index suffix -> value as snmpbulkwalk prints it."""
    out = subprocess.run(
        [
            "snmpbulkwalk",
            "-v2c",
            "-c",
            COMMUNITY,
            "-On",
            "-Oq",
            f"{agent.host}:{agent.port}",
            oid,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MIBS": ""},
    ).stdout
    prefix = "." + oid + "."
    table = {}
    for line in out.splitlines():
        name, _, value = line.partition(" ")
        assert name.startswith(prefix), line
        table[name[len(prefix) :]] = value.strip().strip('"')
    return table


async def test_probe_matches_snmpbulkwalk(snmpd: Agent) -> None:
    descr = _bulkwalk(snmpd, IF_DESCR)
    names = _bulkwalk(snmpd, IF_NAME)
    assert descr, "snmpd lists no interfaces"

    # snmpd caches interface counters for ~3 s: poll further apart than that, or lo reads 0 bps.
    reports = await probe(snmpd.host, snmpd.port, COMMUNITY, interval=3.2, timeout=1.0)

    assert [(str(r.index), r.descr) for r in reports] == sorted(
        descr.items(), key=lambda kv: int(kv[0])
    )
    assert {str(r.index): r.name for r in reports} == names
    for report in reports:
        assert report.in_bps is not None and report.in_bps >= 0
        assert report.out_bps is not None and report.out_bps >= 0
        assert report.in_errors_per_s is not None
        assert set(report.as_dict()) >= {"index", "name", "in_bps", "out_errors_per_s"}
    loopback = next(r for r in reports if r.descr == "lo")
    assert loopback.oper_status == 1
    assert loopback.in_bps > 0, "our own SNMP traffic crosses lo between the two polls"


@pytest.mark.parametrize("version", ["2c", "1"])
async def test_walk_table_matches_snmpbulkwalk(snmpd: Agent, version: str) -> None:
    client = SnmpClient()
    try:
        # max_repetitions=2 forces several GETBULK rounds and the de-interleaving across them
        target = snmpd.target(version=version, max_repetitions=2)
        tables = await client.walk_table(target, [IF_DESCR, IF_NAME, IF_HC_IN])
    finally:
        client.close()
    assert tables[IF_DESCR] == _bulkwalk(snmpd, IF_DESCR)
    assert tables[IF_NAME] == _bulkwalk(snmpd, IF_NAME)
    if version == "2c":
        hc_in = tables[IF_HC_IN]
        assert set(hc_in) == set(_bulkwalk(snmpd, IF_HC_IN))
        assert all(isinstance(v, int) for v in hc_in.values())
    else:
        assert tables[IF_HC_IN] == {}  # Counter64 cannot travel in SNMPv1


@pytest.mark.parametrize("version", ["2c", "1"])
async def test_get_converts_values_and_missing_oids(snmpd: Agent, version: str) -> None:
    client = SnmpClient()
    oids = ["1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.99.0"]
    try:
        values = await client.get(snmpd.target(version=version), oids)
    finally:
        client.close()
    assert list(values) == oids
    assert isinstance(values[oids[0]], int) and values[oids[0]] > 0
    assert values[oids[1]] == os.uname().nodename
    assert isinstance(values[oids[2]], str) and values[oids[2]].startswith("1.3.6.1.4.1.")
    assert values[oids[3]] is None


async def test_timeout_when_nobody_answers() -> None:
    client = SnmpClient()
    target = Target("dead", "127.0.0.1", free_udp_port(), timeout=0.3, retries=1)
    started = time.monotonic()
    try:
        with pytest.raises(SnmpTimeout) as caught:
            await client.get(target, ["1.3.6.1.2.1.1.3.0"])
    finally:
        client.close()
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 0.3 * 2 + 1.0
    assert caught.value.target is target
    assert "dead" in str(caught.value)


async def test_wrong_community_times_out(snmpd: Agent) -> None:
    client = SnmpClient()
    target = snmpd.target(community="not-the-community", timeout=0.3, retries=0)
    try:
        with pytest.raises(SnmpTimeout):
            await client.walk_table(target, [IF_DESCR])
        # the same engine still works with the right community afterwards
        assert await client.walk_table(snmpd.target(), [IF_DESCR])
    finally:
        client.close()


class _RecordingClient(SnmpClient):
    """A real client that remembers which columns each walk asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.walks: list[tuple[str, ...]] = []

    async def walk_table(
        self, target: Target, columns: Sequence[str], *, max_repetitions: int | None = None
    ) -> dict[str, dict[str, object]]:
        self.walks.append(tuple(columns))
        return await super().walk_table(target, columns, max_repetitions=max_repetitions)


async def test_collector_caches_labels_and_derives_rates(snmpd: Agent) -> None:
    client = _RecordingClient()
    collector = IfMibCollector(client, snmpd.target("agent-1"))
    try:
        first = await collector.collect()
        second = await collector.collect()
    finally:
        client.close()
    assert len(client.walks) == 3, "labels are walked once, state columns every poll"
    assert IF_DESCR in client.walks[1] and IF_DESCR not in client.walks[2]

    assert all(s.element == "agent-1" for s in first + second)
    assert not [s for s in first if s.kind is SampleKind.RATE], "no rate from one sample"
    indices = {str(i.index) for i in collector.interfaces}
    by_metric: dict[str, list[Sample]] = {}
    for sample in second:
        by_metric.setdefault(sample.metric, []).append(sample)
    for metric in ("ifHCInOctets", "ifHCOutOctets", "ifInErrors", "ifOperStatus", "ifHighSpeed"):
        assert {s.label("ifIndex") for s in by_metric[metric]} == indices, metric
        assert {name for s in by_metric[metric] for name, _ in s.labels} == {
            "ifIndex",
            "ifName",
            "ifDescr",
            "ifAlias",
        }
    for metric in ("if_in_bps", "if_out_bps", "if_in_errors_per_s", "if_in_discards_per_s"):
        assert {s.label("ifIndex") for s in by_metric[metric]} == indices, metric
        assert all(s.kind is SampleKind.RATE and s.value >= 0 for s in by_metric[metric])
        assert {name for s in by_metric[metric] for name, _ in s.labels} == {"ifIndex", "ifName"}
    (uptime,) = by_metric["sysUpTime"]
    assert uptime.labels == () and uptime.value > 0
    with_speed = {str(i.index) for i in collector.interfaces if i.high_speed_mbps > 0}
    assert {s.label("ifIndex") for s in by_metric.get("if_in_utilization", [])} == with_speed


async def test_snmpv1_agent_gets_rates_from_32_bit_counters(snmpd: Agent) -> None:
    """SNMPv1 cannot carry Counter64: ifInOctets/ifOutOctets give the rates, and only there."""
    in32 = IF_COLUMNS["ifInOctets"]
    for version in ("1", "2c"):
        client = _RecordingClient()
        collector = IfMibCollector(client, snmpd.target(f"agent-v{version}", version=version))
        try:
            await collector.collect()
            # beyond snmpd's 3 s counter cache: a rate over a shorter interval can be a whole
            # cache period of lo's traffic over a few ms, above its 10 Mbit/s (dropped)
            await asyncio.sleep(3.2 if version == "1" else 0.01)
            samples = await collector.collect()
        finally:
            client.close()
        indices = {str(i.index) for i in collector.interfaces}
        metrics = {s.metric: {x.label("ifIndex") for x in samples if x.metric == s.metric} for s in samples}
        walked_32 = any(in32 in walk for walk in client.walks)
        if version == "1":
            assert metrics["if_in_bps"] == metrics["if_out_bps"] == indices, metrics
            assert metrics["if_in_utilization"] >= {i for i in indices if i == "1"}  # lo: 10 Mbit/s
            assert walked_32 and metrics["ifInOctets"] == metrics["ifOutOctets"] == indices
            assert "ifHCInOctets" not in metrics
            assert all(i.in_octets > 0 for i in collector.interfaces if i.name == "lo")
        else:  # the 64-bit counters are there for every port: the 32-bit ones are not even read
            assert not walked_32 and "ifInOctets" not in metrics and metrics["ifHCInOctets"] == indices


async def test_poller_counts_dead_target_and_keeps_polling_live_one(snmpd: Agent) -> None:
    registry = CollectorRegistry()
    exporter = SnmpMetricsExporter()
    received: list[list[Sample]] = []
    client = SnmpClient()
    dead = Target("dead-1", "127.0.0.1", free_udp_port(), timeout=0.2, retries=0)
    poller = Poller(
        client,
        [snmpd.target("live-1"), dead],
        areas={"live-1": "north", "dead-1": "south"},
        exporter=exporter,
        registry=registry,
        on_samples=received.append,
    )
    try:
        await poller.poll_all()
        await poller.poll_all()
    finally:
        client.close()

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("vigil_polls_total", element="live-1", result="ok") == 2
    assert value("vigil_polls_total", element="live-1", result="failed") in (None, 0)
    assert value("vigil_polls_total", element="dead-1", result="failed") == 2
    assert value("vigil_polls_total", element="dead-1", result="ok") in (None, 0)
    assert value("vigil_target_up", element="live-1") == 1
    assert value("vigil_target_up", element="dead-1") == 0
    assert value("vigil_series", element="live-1") == len(received[-1]) > 0
    assert value("vigil_series", element="dead-1") == 0
    assert value("vigil_poll_duration_seconds_count", element="dead-1") == 2

    assert len(received) == 2
    assert {s.element for batch in received for s in batch} == {"live-1"}
    text = exporter.render()
    assert 'element="live-1"' in text and 'area="north"' in text
    assert "dead-1" not in text
