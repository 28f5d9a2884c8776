"""Collectors against snmpsim serving real-device recordings from the snmpsim-data package.

Recordings used (community = file name): Cisco Catalyst 3560 ``cisco-c3560``, Juniper MX960
Junos 13.3 ``juniper-mx960-13-3r9-13``, Arista DCS-7150S ``arista-dcs-7150s-52-cl``, Huawei
S5720 ``huawei-s5720`` and a Linux Net-SNMP host ``unknown-002`` (os/linux). The recordings are
static (only the subtrees in ``_SUBTREES`` are served, to keep the first start short), so
``cisco-c3560-moving`` is the Cisco one with its octet counters and sysUpTime driven
by snmpsim's ``numeric`` variation module, and ``linux-writable`` is the Linux one with
sysUpTime, ifNumber, ifTableLastChange, one ifAlias and one ifOperStatus under ``writecache``
(changed with Net-SNMP's ``snmpset`` by tests/collectors/test_lookups.py and
tests/detectors/test_link_state_snmp.py).

snmpsim as root must drop privileges; the Python running it lives under /root, which the
``nobody`` user cannot read, so the launcher pre-imports the stdlib modules snmpsim loads lazily.
"""

from __future__ import annotations

import asyncio
import bz2
import grp
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collectors.ifmib import IfMibCollector
from collectors.profiles import ProfileCollector, load_profiles
from collectors.sample import Sample, SampleKind
from collectors.snmp import SnmpClient, SnmpError, Target
from tests.conftest import free_udp_port, require_module

RECORDINGS = {
    "cisco-c3560": "network/switch/cisco-c3560",
    "juniper-mx960-13-3r9-13": "network/router/juniper-mx960-13-3r9-13",
    "arista-dcs-7150s-52-cl": "cloud/arista-dcs-7150s-52-cl",
    "huawei-s5720": "network/router/huawei-s5720",
    "unknown-002": "os/linux/unknown-002",
}
# Profiles each recording's sysObjectID must select.
GENERIC = {"if_mib", "host_resources", "entity_sensor_dom", "dsl_line"}
EXPECTED_PROFILES = {
    "cisco-c3560": GENERIC | {"cisco_cpu_memory"},
    "juniper-mx960-13-3r9-13": GENERIC,
    "arista-dcs-7150s-52-cl": GENERIC,
    "huawei-s5720": GENERIC | {"huawei_cpu_memory"},
    "unknown-002": GENERIC,
}
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
WRITABLE_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8.6"  # linux-writable's eth port 6 (up), for port-down tests
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.18"
IF_HC_IN = "1.3.6.1.2.1.31.1.1.1.6"
IF_HC_OUT = "1.3.6.1.2.1.31.1.1.1.10"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_NUMBER = "1.3.6.1.2.1.2.1.0"
IF_TABLE_LAST_CHANGE = "1.3.6.1.2.1.31.1.5.0"
MOVING_RATE = 125_000  # octets/s of every moving counter: 1 Mbit/s
# DOM rows added to the moving Cisco variant: entPhysicalIndex -> (name, raw value, precision).
DOM_ROWS = {20001: ("Te1/0/1 Receive Power Sensor", -35, 1), 20002: ("Te1/0/1 Transmit Power Sensor", -212, 2)}

# The subtrees the profiles read: only these rows of each recording are served, so snmpsim's
# first start indexes ~40k lines instead of ~250k (the rows themselves are unchanged).
_SUBTREES = tuple(
    prefix + "."
    for prefix in (
        "1.3.6.1.2.1.1",  # system
        "1.3.6.1.2.1.2",  # interfaces
        "1.3.6.1.2.1.10.94",  # ADSL-LINE-MIB
        "1.3.6.1.2.1.25",  # HOST-RESOURCES-MIB
        "1.3.6.1.2.1.31",  # IF-MIB ifMIBObjects
        "1.3.6.1.2.1.47.1.1.1.1.7",  # entPhysicalName
        "1.3.6.1.2.1.99",  # ENTITY-SENSOR-MIB
        "1.3.6.1.4.1.9.9.48",  # CISCO-MEMORY-POOL-MIB
        "1.3.6.1.4.1.9.9.109",  # CISCO-PROCESS-MIB
        "1.3.6.1.4.1.2011.5.25.31",  # HUAWEI-ENTITY-EXTENT-MIB
    )
)
# snmpsim imports these lazily after dropping root; /root is unreadable to nobody.
_PRELOAD = (
    "encodings.idna,encodings.latin_1,dbm.dumb,bz2,lzma,shelve,pickle,json,csv,uuid,hmac,hashlib,"
    "random,unicodedata,stringprep,py_compile,inspect,tempfile,subprocess,email.message,"
    "email.parser,importlib.metadata,importlib.resources,logging.handlers,http.client,"
    "urllib.request,zipfile,mimetypes,calendar,datetime,locale,gettext,platform,getpass,"
    "textwrap,queue,numbers,decimal,fractions"
)
_LAUNCHER = """\
import importlib, sys
for name in sys.argv[1].split(","):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
from snmpsim.commands.responder import main
sys.argv = ["snmpsim-command-responder", *sys.argv[2:]]
sys.exit(main())
"""


@dataclass(frozen=True)
class Simulator:
    """A running snmpsim and the recordings it serves."""

    host: str
    port: int
    data: Path

    def target(self, community: str, element: str | None = None, **overrides: object) -> Target:
        options: dict[str, object] = {"community": community, "timeout": 3.0, "retries": 1}
        options.update(overrides)
        return Target(element or community, self.host, self.port, **options)  # type: ignore[arg-type]

    def records(self, community: str) -> dict[str, tuple[str, str]]:
        """The recording's OID -> (tag, value)."""
        return parse_snmprec(self.data / f"{community}.snmprec")


def parse_snmprec(path: Path) -> dict[str, tuple[str, str]]:
    """An .snmprec file as OID -> (type tag, value text); hex values are decoded."""
    records: dict[str, tuple[str, str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("|", 2)
        if len(parts) != 3 or line.startswith("#"):
            continue
        oid, tag, value = parts
        if tag.endswith("x") and ":" not in tag:
            value = bytes.fromhex(value).decode("utf-8", errors="replace")
            tag = tag[:-1]
        records[oid] = (tag, value)
    return records


def column(records: dict[str, tuple[str, str]], oid: str) -> dict[str, str]:
    """Index suffix -> value of one column of a recording."""
    prefix = oid + "."
    return {k[len(prefix) :]: v for k, (_tag, v) in records.items() if k.startswith(prefix)}


def _recording_dir() -> Path:
    require_module("snmpsim")
    require_module("snmpsim_data")
    import snmpsim_data

    return Path(snmpsim_data.__file__).parent / "data"


def _write_variants(data: Path) -> None:
    """The moving Cisco recording (numeric module, DOM rows) and the writable Linux one."""
    lines = [
        line
        for line in (data / "cisco-c3560.snmprec").read_text(encoding="utf-8").splitlines()
        if line.count("|") >= 2
    ]
    moving: list[str] = []
    for line in lines:
        oid, tag, value = line.split("|", 2)
        if oid.startswith((IF_HC_IN + ".", IF_HC_OUT + ".")):
            line = f"{oid}|70:numeric|rate={MOVING_RATE},initial={value}"
        elif oid == SYS_UPTIME:
            line = f"{oid}|67:numeric|rate=100,initial={value}"
        moving.append(line)
    for index, (name, raw, precision) in DOM_ROWS.items():
        moving += [
            f"1.3.6.1.2.1.47.1.1.1.1.7.{index}|4|{name}",
            f"1.3.6.1.2.1.99.1.1.1.1.{index}|2|14",
            f"1.3.6.1.2.1.99.1.1.1.2.{index}|2|9",
            f"1.3.6.1.2.1.99.1.1.1.3.{index}|2|{precision}",
            f"1.3.6.1.2.1.99.1.1.1.4.{index}|2|{raw}",
            f"1.3.6.1.2.1.99.1.1.1.5.{index}|2|1",
        ]
    moving.sort(key=lambda line: tuple(int(p) for p in line.split("|", 1)[0].split(".")))
    (data / "cisco-c3560-moving.snmprec").write_text("\n".join(moving) + "\n", encoding="utf-8")

    writable: list[str] = []
    for line in (data / "unknown-002.snmprec").read_text(encoding="utf-8").splitlines():
        if line.count("|") < 2:
            continue
        oid, tag, value = line.split("|", 2)
        if oid in (SYS_UPTIME, IF_NUMBER, IF_TABLE_LAST_CHANGE, WRITABLE_OPER_STATUS) or oid == f"{IF_ALIAS}.2":
            line = f"{oid}|{tag}:writecache|value={value}"
        writable.append(line)
    if not any(line.startswith(IF_TABLE_LAST_CHANGE + "|") for line in writable):
        writable.append(f"{IF_TABLE_LAST_CHANGE}|67:writecache|value=100")
    writable.sort(key=lambda line: tuple(int(p) for p in line.split("|", 1)[0].split(".")))
    (data / "linux-writable.snmprec").write_text("\n".join(writable) + "\n", encoding="utf-8")


async def _answers(target: Target, deadline: float) -> None:
    client = SnmpClient()
    try:
        while True:
            try:
                await client.get(target, [SYS_UPTIME])
                return
            except SnmpError:
                if time.monotonic() > deadline:
                    raise
    finally:
        client.close()


@pytest.fixture(scope="session")
def snmpsim() -> Iterator[Simulator]:
    """snmpsim on a loopback port serving the five recordings and the two variants."""
    source = _recording_dir()
    root = Path(tempfile.mkdtemp(prefix="vigil-snmpsim-"))
    data, cache = root / "data", root / "cache"
    data.mkdir()
    cache.mkdir()
    for community, relative in RECORDINGS.items():
        with bz2.open(source / f"{relative}.snmprec.bz2", "rt", encoding="utf-8") as packed:
            kept = [line for line in packed if line.startswith(_SUBTREES)]
        (data / f"{community}.snmprec").write_text("".join(kept), encoding="utf-8")
    _write_variants(data)
    launcher = root / "launch.py"
    launcher.write_text(_LAUNCHER, encoding="utf-8")
    for path in (root, data, *data.iterdir(), launcher):
        path.chmod(path.stat().st_mode | stat.S_IRGRP | stat.S_IROTH | stat.S_IXOTH)
    cache.chmod(0o777)  # snmpsim writes its indices as the unprivileged user
    port = free_udp_port()
    command = [
        sys.executable, str(launcher), _PRELOAD,
        f"--data-dir={data}", f"--cache-dir={cache}",
        f"--agent-udpv4-endpoint=127.0.0.1:{port}", "--logging-method=null",
    ]
    if os.geteuid() == 0:
        group = "nogroup"
        try:
            grp.getgrnam(group)
        except KeyError:
            group = "nobody"
        command += ["--process-user=nobody", f"--process-group={group}"]
    log = (root / "snmpsim.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    simulator = Simulator("127.0.0.1", port, data)
    try:
        # The first start indexes every data file (about 10 s for these 300k lines).
        try:
            asyncio.run(
                _answers(simulator.target("huawei-s5720", timeout=0.5, retries=0), time.monotonic() + 120)
            )
        except SnmpError:
            log.flush()
            pytest.fail(
                "snmpsim did not answer: " + (root / "snmpsim.log").read_text(errors="replace")[-2000:]
            )
        yield simulator
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _by_metric(samples: list[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for sample in samples:
        out.setdefault(sample.metric, []).append(sample)
    return out


@pytest.mark.parametrize("community", list(RECORDINGS))
async def test_interfaces_match_the_recording(snmpsim: Simulator, community: str) -> None:
    records = snmpsim.records(community)
    names = column(records, IF_NAME)
    descrs = column(records, IF_DESCR)
    assert len(descrs) >= 2, "the recording has an interface table"
    client = SnmpClient()
    try:
        collector = IfMibCollector(client, snmpsim.target(community))
        await collector.collect()
    finally:
        client.close()
    seen = {str(i.index): i for i in collector.interfaces}
    assert len(seen) == len(descrs), f"{community}: interface count"
    assert {k: i.descr for k, i in seen.items()} == descrs
    assert {k: i.name for k, i in seen.items()} == {k: names.get(k, "") for k in descrs}


@pytest.mark.parametrize("community", list(RECORDINGS))
async def test_sys_object_id_selects_profiles(snmpsim: Simulator, community: str) -> None:
    records = snmpsim.records(community)
    client = SnmpClient()
    try:
        collector = ProfileCollector(client, snmpsim.target(community), load_profiles())
        samples = await collector.collect()
    finally:
        client.close()
    assert collector.sys_object_id == records["1.3.6.1.2.1.1.2.0"][1]
    assert {p.name for p in collector.active or ()} == EXPECTED_PROFILES[community]
    metrics = _by_metric(samples)
    in_octets = column(records, IF_HC_IN)
    assert {s.label("ifIndex") for s in metrics["ifHCInOctets"]} == set(in_octets)
    assert {s.label("ifIndex"): s.value for s in metrics["ifHCInOctets"]} == {
        k: int(v) for k, v in in_octets.items()
    }
    names = column(records, IF_NAME)
    assert {s.label("ifName") for s in metrics["ifHCInOctets"]} == {names[k] for k in in_octets}


async def test_vendor_profiles_read_the_recorded_values(snmpsim: Simulator) -> None:
    client = SnmpClient()
    profiles = load_profiles()
    try:
        got = {}
        for community in ("cisco-c3560", "huawei-s5720", "unknown-002"):
            collector = ProfileCollector(client, snmpsim.target(community), profiles)
            got[community] = _by_metric(await collector.collect())
    finally:
        client.close()
    cisco = snmpsim.records("cisco-c3560")
    (cpu,) = got["cisco-c3560"]["cpmCPUTotal5minRev"]
    assert cpu.value == int(cisco["1.3.6.1.4.1.9.9.109.1.1.1.1.8.1"][1]) and cpu.kind is SampleKind.GAUGE
    pools = {s.label("ciscoMemoryPoolName"): s.value for s in got["cisco-c3560"]["ciscoMemoryPoolUsed"]}
    assert pools["Processor"] == int(cisco["1.3.6.1.4.1.9.9.48.1.1.1.5.1"][1])
    huawei = snmpsim.records("huawei-s5720")
    usage = column(huawei, "1.3.6.1.4.1.2011.5.25.31.1.1.1.1.5")
    assert {s.label("entPhysicalIndex"): s.value for s in got["huawei-s5720"]["hwEntityCpuUsage"]} == {
        k: int(v) for k, v in usage.items()
    }
    linux = snmpsim.records("unknown-002")
    loads = column(linux, "1.3.6.1.2.1.25.3.3.1.2")
    assert {s.label("hrDeviceIndex"): s.value for s in got["unknown-002"]["hrProcessorLoad"]} == {
        k: int(v) for k, v in loads.items()
    }
    descrs = column(linux, "1.3.6.1.2.1.25.2.3.1.3")
    used = column(linux, "1.3.6.1.2.1.25.2.3.1.6")
    assert {s.label("hrStorageDescr"): s.value for s in got["unknown-002"]["hrStorageUsed"]} == {
        descrs[k]: int(v) for k, v in used.items()
    }


async def test_numeric_variation_gives_moving_counters_and_rates(snmpsim: Simulator) -> None:
    client = SnmpClient()
    try:
        collector = ProfileCollector(client, snmpsim.target("cisco-c3560-moving"), load_profiles())
        first = _by_metric(await collector.collect())
        await asyncio.sleep(1.5)
        second = _by_metric(await collector.collect())
    finally:
        client.close()
    before = {s.label("ifIndex"): s.value for s in first["ifHCInOctets"]}
    after = {s.label("ifIndex"): s.value for s in second["ifHCInOctets"]}
    assert before.keys() == after.keys() and len(after) >= 50
    assert all(after[k] > before[k] for k in after), "every numeric counter moved"
    rates = {s.label("ifIndex"): s.value for s in second["if_in_bps"]}
    # the recording's ports without ifHCInOctets get their rate from the 32-bit ifInOctets (static here)
    no_hc = {s.label("ifIndex") for s in second["ifInOctets"]}
    assert no_hc and not no_hc & set(after) and set(rates) == set(after) | no_hc
    bps = [rates[k] for k in after]
    # 1 Mbit/s each, measured over the client's clock (request latency blurs it a little)
    assert all(0.5 * MOVING_RATE * 8 < v < 2 * MOVING_RATE * 8 for v in bps), bps[:5]
    assert {s.label("ifIndex") for s in second["if_out_bps"]} == set(after) | no_hc
    dom = {s.label("entPhysicalName"): s.value for s in second["optical_power_dbm"]}
    assert dom == pytest.approx({"Te1/0/1 Receive Power Sensor": -3.5, "Te1/0/1 Transmit Power Sensor": -2.12})
