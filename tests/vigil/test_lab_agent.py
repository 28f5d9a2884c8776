"""The lab agents answer real SNMP clients (Net-SNMP tools, pysnmp) inside the test's loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from tests.conftest import free_udp_range, require_binary
from vigil.lab import LabNetwork, default_scenario, demo_site, lab_devices

IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_TABLE = "1.3.6.1.2.1.2.2"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
START = 1795363200.0 + 19 * 3600  # 19:00 local, Guangzhou


class FakeClock:
    """A simulated clock the test moves by hand."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def _run(*cmd: str) -> tuple[int, str, str]:
    """Run a Net-SNMP tool without blocking the loop that serves the agents."""
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


def _parse(output: str) -> list[tuple[tuple[int, ...], str]]:
    """``-On -Oq`` lines -> (oid, value)."""
    rows = []
    for line in output.splitlines():
        oid, _, value = line.partition(" ")
        rows.append((tuple(int(x) for x in oid.strip(".").split(".")), value.strip().strip('"')))
    return rows


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def lab(clock: FakeClock) -> AsyncIterator[LabNetwork]:
    site, _ = demo_site(base_port=free_udp_range(10))
    network = LabNetwork(site, clock, default_scenario(START))
    await network.start()
    try:
        yield network
    finally:
        await network.stop()


def _port(lab: LabNetwork, element: str) -> str:
    host, port = lab.addresses()[element]
    return f"{host}:{port}"


async def test_bulkwalk_ifname_of_every_element(lab: LabNetwork) -> None:
    tool = require_binary("snmpbulkwalk")
    devices = lab_devices(lab.site)
    for element in devices:
        rc, out, err = await _run(
            tool, "-v2c", "-c", "public", "-On", "-Oq", _port(lab, element), IF_NAME
        )
        assert rc == 0, err
        rows = _parse(out)
        assert [v for _, v in rows] == [p.name for p in devices[element].ports]
        assert [oid[-1] for oid, _ in rows] == [p.if_index for p in devices[element].ports]


async def test_get_system_group(lab: LabNetwork, clock: FakeClock) -> None:
    tool = require_binary("snmpget")
    target = _port(lab, "agg-yuexiu-01")
    oids = [SYS_UPTIME, "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.2.1.0", "1.3.6.1.2.1.1.2.0"]
    rc, out, err = await _run(tool, "-v2c", "-c", "public", "-On", "-Oqt", target, *oids)
    assert rc == 0, err
    values = [v for _, v in _parse(out)]
    assert values[0] == "0"  # booted at the run start
    assert values[1:3] == ["agg-yuexiu-01", "12"]
    assert values[3].startswith(".1.3.6.1.4.1.2011.")
    clock.t += 123.45
    rc, out, _ = await _run(tool, "-v2c", "-c", "public", "-On", "-Oqt", target, SYS_UPTIME)
    assert _parse(out)[0][1] == "12345"
    rc, out, _ = await _run(tool, "-v2c", "-c", "public", "-On", target, "1.3.6.1.2.1.1.9.0")
    assert "No Such Instance" in out


async def test_iftable_walk_is_complete_and_ordered(lab: LabNetwork) -> None:
    tool = require_binary("snmpbulkwalk")
    device = lab_devices(lab.site)["olt-yuexiu-01"]
    rc, out, err = await _run(
        tool, "-v2c", "-c", "public", "-On", "-Oq", _port(lab, "olt-yuexiu-01"), IF_TABLE
    )
    assert rc == 0, err
    oids = [oid for oid, _ in _parse(out)]
    assert oids == sorted(oids) and len(set(oids)) == len(oids)
    columns = sorted({oid[9] for oid in oids})
    assert columns == [1, 2, 3, 5, 7, 8, 13, 14, 20]
    assert len(oids) == len(columns) * len(device.ports)
    # The whole agent walks to the end of the MIB (snmpwalk fails on a non-increasing OID).
    walk = require_binary("snmpwalk")
    rc, out, err = await _run(walk, "-v2c", "-c", "public", "-On", _port(lab, "cr-gz-01"), ".1")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith('.1.3.6.1.2.1.1.1.0 = STRING: "Juniper')
    assert lines[-1].startswith(".1.3.6.1.2.1.31.1.1.1.18.8 = ")
    speeds = [line for line in lines if line.startswith(".1.3.6.1.2.1.2.2.1.5.")]
    assert speeds[0].endswith("Gauge32: 4294967295")  # 100G ifSpeed is capped


async def test_counters_follow_the_clock_and_the_fault(lab: LabNetwork, clock: FakeClock) -> None:
    tool = require_binary("snmpget")
    target = _port(lab, "agg-yuexiu-01")
    oids = ["1.3.6.1.2.1.31.1.1.1.6.1", "1.3.6.1.2.1.31.1.1.1.10.1", "1.3.6.1.2.1.2.2.1.14.1"]

    async def sample() -> list[int]:
        rc, out, err = await _run(tool, "-v2c", "-c", "public", "-On", "-Oqv", target, *oids)
        assert rc == 0, err
        return [int(v) for v in out.split()]

    speed = 10e9 / 8
    for at, saturated in [(10 * 60, False), (50 * 60, True), (80 * 60, False)]:
        clock.t = START + at
        first = await sample()
        expected = lab.model.port("agg-yuexiu-01", 1, clock.t)
        assert first == [expected.in_octets, expected.out_octets, expected.in_errors]
        clock.t += 60
        second = await sample()
        in_rate, out_rate, errors = ((b - a) / 60 for a, b in zip(first, second, strict=True))
        if saturated:
            assert in_rate > 0.96 * speed and out_rate > 0.96 * speed and errors > 100
        else:
            assert in_rate < 0.7 * speed and out_rate < 0.7 * speed and errors < 1


async def test_v1_getnext_skips_counter64(lab: LabNetwork) -> None:
    tool = require_binary("snmpwalk")
    rc, out, err = await _run(
        tool, "-v1", "-c", "public", "-On", _port(lab, "olt-tianhe-02"), "1.3.6.1.2.1.31.1.1.1"
    )
    assert rc == 0, err
    assert "Counter64" not in out
    assert out.count(".1.3.6.1.2.1.31.1.1.1.1.") == 18  # ifName still there


async def test_wrong_community_gets_no_answer(lab: LabNetwork) -> None:
    tool = require_binary("snmpget")
    rc, _, err = await _run(
        tool, "-v2c", "-c", "private", "-t", "0.3", "-r", "0", _port(lab, "cr-gz-01"), SYS_UPTIME
    )
    assert rc != 0 and "Timeout" in err


async def test_pysnmp_client_in_the_same_loop(lab: LabNetwork) -> None:
    """The service's poller shares the loop with the agents: a pysnmp GETBULK round trip."""
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData,
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        bulk_cmd,
    )

    engine = SnmpEngine()
    try:
        host, port = lab.addresses()["dslam-yuexiu-01"]
        target = await UdpTransportTarget.create((host, port), timeout=2, retries=0)
        error, status, _, var_binds = await bulk_cmd(
            engine,
            CommunityData("public"),
            target,
            ContextData(),
            0,
            25,
            ObjectType(ObjectIdentity("1.3.6.1.2.1.31.1.1.1.1")),
            ObjectType(ObjectIdentity("1.3.6.1.2.1.31.1.1.1.15")),
            lookupMib=False,
        )
    finally:
        engine.close_dispatcher()
    assert error is None and not status
    names = [str(v) for oid, v in var_binds[0::2] if oid.prettyPrint().startswith(IF_NAME + ".")]
    assert names[:2] == ["vdsl 0/2/0", "vdsl 0/2/1"] and names[-1] == "GigabitEthernet0/0/1"
    speeds = {int(v) for _, v in var_binds[1::2]}
    assert speeds == {100, 1000}


async def test_stop_releases_ports_and_busy_port_fails_cleanly(clock: FakeClock) -> None:
    site, _ = demo_site(base_port=free_udp_range(10))
    first = LabNetwork(site, clock, [])
    await first.start()
    second = LabNetwork(site, clock, [])
    with pytest.raises(OSError, match="cannot bind"):
        await second.start()
    assert not second.running
    tool = require_binary("snmpget")
    rc, out, err = await _run(
        tool, "-v2c", "-c", "public", "-On", "-Oqv", _port(first, "cr-gz-01"), "1.3.6.1.2.1.1.5.0"
    )
    assert rc == 0 and out.strip().strip('"') == "cr-gz-01", err
    await first.stop()
    await first.stop()  # idempotent
    for el in site.elements:  # every port is free again
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", el.port))


async def test_malformed_datagrams_are_dropped(lab: LabNetwork) -> None:
    host, port = lab.addresses()["cr-gz-01"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"\x30\x84\xff\xff\xff\xff", b"\x30\x03\x02\x01", b"", b"\x00" * 40):
            s.sendto(junk, (host, port))
    await asyncio.sleep(0.05)
    tool = require_binary("snmpget")
    rc, _, err = await _run(tool, "-v2c", "-c", "public", f"{host}:{port}", SYS_UPTIME)
    assert rc == 0, err


async def test_getbulk_answers_a_whole_olt_in_one_round_trip(lab: LabNetwork) -> None:
    tool = require_binary("snmpbulkget")
    columns = [f"1.3.6.1.2.1.2.2.1.{c}" for c in (8, 14, 20)]
    columns += [f"1.3.6.1.2.1.31.1.1.1.{c}" for c in (6, 10, 15)]
    rc, out, err = await _run(
        tool, "-v2c", "-c", "public", "-On", "-Oq", "-Cn1", "-Cr19",
        _port(lab, "olt-haizhu-01"), "1.3.6.1.2.1.1.3", *columns,
    )  # fmt: skip
    assert rc == 0, err
    rows = _parse(out)
    assert len(rows) == 1 + 6 * 19  # more than pysnmp's default cap of 64 varbinds
    assert rows[0][0] == (1, 3, 6, 1, 2, 1, 1, 3, 0)  # GETNEXT of the non-repeater: sysUpTime.0


def test_describe_lists_agents_and_timeline(clock: FakeClock) -> None:
    site, _ = demo_site(base_port=16100)
    lines = LabNetwork(site, clock, default_scenario(START)).describe()
    assert lines[0].split()[:3] == ["cr-gz-01", "udp://127.0.0.1:16100", "core"]
    assert any("ZTE" in line for line in lines)
    assert lines[-1].startswith("T+75 min")


HR_PROCESSOR_LOAD = "1.3.6.1.2.1.25.3.3.1.2"
ENT_PHYSICAL_NAME = "1.3.6.1.2.1.47.1.1.1.1.7"
ENT_SENSOR = "1.3.6.1.2.1.99.1.1.1"
ADSL_ATUR_PHYS = "1.3.6.1.2.1.10.94.1.1.3.1"


def _rows(output: str) -> list[tuple[tuple[int, ...], str]]:
    """``_parse`` without Net-SNMP's notices (end of the MIB view, nothing under the root)."""
    notices = ("No more variables", "No Such Object", "No Such Instance")
    lines = [line for line in output.splitlines() if line.startswith(".") and not any(n in line for n in notices)]
    return _parse("\n".join(lines))


async def test_bulkwalk_hr_processor_load_of_every_element(lab: LabNetwork, clock: FakeClock) -> None:
    tool = require_binary("snmpbulkwalk")
    for element in lab_devices(lab.site):
        rc, out, err = await _run(tool, "-v2c", "-c", "public", "-On", "-Oq", _port(lab, element), HR_PROCESSOR_LOAD)
        assert rc == 0, err
        rows = _rows(out)
        assert [oid[-1] for oid, _ in rows] == [768]
        assert int(rows[0][1]) == round(lab.model.cpu(element, clock.t) * 100)
        assert 3 <= int(rows[0][1]) <= 60


async def test_bulkwalk_optical_sensors_of_an_olt(lab: LabNetwork, clock: FakeClock) -> None:
    tool = require_binary("snmpbulkwalk")
    target = _port(lab, "olt-yuexiu-01")
    device = lab_devices(lab.site)["olt-yuexiu-01"]
    rc, out, err = await _run(tool, "-v2c", "-c", "public", "-On", "-Oq", target, ENT_PHYSICAL_NAME)
    assert rc == 0, err
    names = dict((oid[-1], value) for oid, value in _rows(out))
    assert names[1] == "olt-yuexiu-01"
    pon = device.port(1)
    assert names[1010] == f"{pon.name} transceiver" and names[1011] == f"{pon.name} Rx Power"
    assert len(names) == 1 + 16 * 3  # chassis, then a module and two sensors per optic
    rc, out, err = await _run(tool, "-v2c", "-c", "public", "-On", "-Oq", target, ENT_SENSOR)
    assert rc == 0, err
    table: dict[int, dict[int, str]] = {}
    for oid, value in _rows(out):
        table.setdefault(oid[-2], {})[oid[-1]] = value
    assert set(table) == {1, 2, 3, 4, 5, 6}  # type, scale, precision, value, status, units
    assert len(table[4]) == 32  # RX and TX of 16 optics
    assert set(table[1].values()) == {"1"} and set(table[2].values()) == {"9"} and set(table[3].values()) == {"1"}
    assert set(table[6].values()) == {"dBm"}
    optics = {o.if_index: o for o in lab.model.optics("olt-yuexiu-01", clock.t)}
    for if_index, reading in optics.items():
        assert int(table[4][1000 + 10 * if_index + 1]) == round(reading.rx_dbm * 10)
        assert int(table[4][1000 + 10 * if_index + 2]) == round(reading.tx_dbm * 10)
        assert -220 <= int(table[4][1000 + 10 * if_index + 1]) <= -180
    # entAliasMappingIdentifier: the module of ifIndex 17 (the uplink) maps to ifIndex.17
    rc, out, err = await _run(tool, "-v2c", "-c", "public", "-On", "-Oq", target, "1.3.6.1.2.1.47.1.3.2.1.2")
    assert rc == 0, err
    alias = {oid[-2]: value for oid, value in _rows(out)}
    assert alias[1170] == ".1.3.6.1.2.1.2.2.1.1.17"
    # The whole OLT still walks in order to the end of its MIB view.
    walk = require_binary("snmpwalk")
    rc, out, err = await _run(walk, "-v2c", "-c", "public", "-On", target, ".1")
    assert rc == 0, err
    lines = [line for line in out.splitlines() if "No more variables" not in line]
    assert lines[-1] == '.1.3.6.1.2.1.99.1.1.1.6.1182 = STRING: "dBm"'  # standby uplink's TX sensor


async def test_bulkwalk_dsl_lines_follow_the_model(lab: LabNetwork, clock: FakeClock) -> None:
    tool = require_binary("snmpbulkwalk")
    target = _port(lab, "dslam-yuexiu-01")
    rc, out, err = await _run(tool, "-v2c", "-c", "public", "-On", "-Oq", target, ADSL_ATUR_PHYS)
    assert rc == 0, err
    rows = _rows(out)
    snr = {oid[-1]: int(v) for oid, v in rows if oid[-2] == 4}
    atn = {oid[-1]: int(v) for oid, v in rows if oid[-2] == 5}
    assert sorted(snr) == sorted(atn) == list(range(1, 23))  # lines in service, by ifIndex
    for line in lab.model.dsl("dslam-yuexiu-01", clock.t):
        assert snr[line.if_index] == round(line.snr_margin_db * 10)
        assert atn[line.if_index] == round(line.attenuation_db * 10)
    assert all(60 < v < 145 for v in snr.values())
    # Elements without optics or lines serve none.
    for element in ("cr-gz-01", "dslam-yuexiu-01"):
        rc, out, err = await _run(tool, "-v2c", "-c", "public", "-On", "-Oq", _port(lab, element), ENT_SENSOR)
        assert rc == 0, err
        assert _rows(out) == []
    rc, out, err = await _run(tool, "-v2c", "-c", "public", "-On", "-Oq", _port(lab, "olt-yuexiu-01"), ADSL_ATUR_PHYS)
    assert rc == 0, err
    assert not [oid for oid, _ in _rows(out) if oid[:12] == (1, 3, 6, 1, 2, 1, 10, 94, 1, 1, 3, 1)]
