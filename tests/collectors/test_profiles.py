"""Profiles: shipped YAML, validation errors with file and field path, sysObjectID matching,
and a user's profile directory polled without code (against snmpsim's Linux recording)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from collectors.profiles import (
    BUILTIN_PROFILE_DIR,
    ProfileCollector,
    ProfileError,
    load_profile,
    load_profiles,
    select_profiles,
)
from collectors.sample import SampleKind
from collectors.snmp import SnmpClient
from tests.collectors.test_snmpsim import Simulator, column, snmpsim  # noqa: F401

SHIPPED = {
    "if_mib",
    "host_resources",
    "entity_sensor_dom",
    "dsl_line",
    "cisco_cpu_memory",
    "huawei_cpu_memory",
}

VALID = {
    "name": "ucast",
    "match": ["1.3.6.1.4.1.8072"],
    "tables": [
        {
            "name": "interfaces",
            "index": ["ifIndex"],
            "labels": ["ifIndex", "ifDescr"],
            "columns": [
                {
                    "name": "ifInUcastPkts",
                    "oid": "1.3.6.1.2.1.2.2.1.11",
                    "type": "counter32",
                    "rate": "if_in_ucast_pkts_per_s",
                },
                {"name": "ifDescr", "oid": ".1.3.6.1.2.1.2.2.1.2", "type": "string-label"},
            ],
        }
    ],
}


def test_shipped_profiles_load() -> None:
    profiles = {p.name: p for p in load_profiles()}
    assert set(profiles) == SHIPPED
    assert profiles["if_mib"].match == ()  # generic
    assert len(list(BUILTIN_PROFILE_DIR.glob("*.yaml"))) == len(SHIPPED)


def _broken(path: list[object], value: object) -> dict:
    data = yaml.safe_load(yaml.safe_dump(VALID))
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


_DELETE = object()

# (case, where to break VALID, new value, text the error must contain)
INVALID = [
    ("unknown field", ["tables", 0, "columns", 0, "colour"], "red", "tables.0.columns.0.colour"),
    ("bad type", ["tables", 0, "columns", 0, "type"], "counter16", "tables.0.columns.0.type"),
    ("named OID", ["tables", 0, "columns", 0, "oid"], "IF-MIB::ifInUcastPkts", "tables.0.columns.0.oid"),
    ("rate on a gauge", ["tables", 0, "columns", 0, "type"], "gauge", "tables.0.columns.0"),
    ("unknown label", ["tables", 0, "labels"], ["ifIndex", "ifSpeed"], "ifSpeed"),
    ("bad match prefix", ["match"], ["enterprises.9"], "match.0"),
    ("missing name", ["name"], _DELETE, "name"),
    ("utilization without speed", ["tables", 0, "columns", 0, "utilization"], "u", "speed"),
    ("fallback for no column", ["tables", 0, "columns", 0, "fallback_for"], "ifHCInUcastPkts", "fallback_for"),
    ("fallback for itself", ["tables", 0, "columns", 0, "fallback_for"], "ifInUcastPkts", "fallback_for"),
]


@pytest.mark.parametrize(
    ("path", "value", "needle"), [pytest.param(p, v, n, id=c) for c, p, v, n in INVALID]
)
def test_invalid_profiles_name_file_and_field(
    tmp_path: Path, path: list[object], value: object, needle: str
) -> None:
    file = tmp_path / "mine.yaml"
    file.write_text(yaml.safe_dump(_broken(path, value)), encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(file)
    message = str(caught.value)
    assert str(file) in message and needle in message, message
    with pytest.raises(ProfileError):
        load_profiles([tmp_path])


def test_unreadable_yaml_and_missing_directory(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="bad.yaml"):
        load_profile(file)
    with pytest.raises(ProfileError, match="not a directory"):
        load_profiles([tmp_path / "nowhere"])


# (sysObjectID, profiles that must apply)
GENERIC = {"if_mib", "host_resources", "entity_sensor_dom", "dsl_line"}
MATCHES = [
    ("1.3.6.1.4.1.9.1.617", GENERIC | {"cisco_cpu_memory"}),
    ("1.3.6.1.4.1.2011.2.23.276", GENERIC | {"huawei_cpu_memory"}),
    (".1.3.6.1.4.1.2011", GENERIC | {"huawei_cpu_memory"}),
    ("1.3.6.1.4.1.8072.3.2.10", GENERIC),
    ("1.3.6.1.4.1.90", GENERIC),  # not Cisco (9): prefixes match whole arcs
    ("1.3.6.1.4.1.20110", GENERIC),  # not Huawei (2011)
    (None, GENERIC),
]


@pytest.mark.parametrize(("sys_object_id", "expected"), MATCHES)
def test_select_by_sys_object_id_prefix(sys_object_id: str | None, expected: set[str]) -> None:
    assert {p.name for p in select_profiles(load_profiles(), sys_object_id)} == expected


def test_user_profile_replaces_a_shipped_one_by_name(tmp_path: Path) -> None:
    replacement = {**VALID, "name": "cisco_cpu_memory", "match": ["1.3.6.1.4.1.9"]}
    (tmp_path / "cisco.yaml").write_text(yaml.safe_dump(replacement), encoding="utf-8")
    profiles = {p.name: p for p in load_profiles([tmp_path])}
    assert set(profiles) == SHIPPED
    assert profiles["cisco_cpu_memory"].tables[0].columns[0].name == "ifInUcastPkts"


async def test_user_profile_is_polled_without_code(snmpsim: Simulator, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "ucast.yaml").write_text(yaml.safe_dump(VALID), encoding="utf-8")
    profiles = load_profiles([tmp_path], builtin=False)
    client = SnmpClient()
    times = {"now": 100.0}
    try:
        linux = ProfileCollector(
            client, snmpsim.target("unknown-002"), profiles, lambda: times["now"]
        )
        first = await linux.collect()
        times["now"] = 160.0
        second = await linux.collect()
        cisco = ProfileCollector(client, snmpsim.target("cisco-c3560"), profiles)
        other = await cisco.collect()
    finally:
        client.close()
    records = snmpsim.records("unknown-002")
    expected = column(records, "1.3.6.1.2.1.2.2.1.11")
    descrs = column(records, "1.3.6.1.2.1.2.2.1.2")
    raw = [s for s in first if s.metric == "ifInUcastPkts"]
    assert {s.label("ifIndex"): s.value for s in raw} == {k: int(v) for k, v in expected.items()}
    assert {s.label("ifDescr") for s in raw} == {descrs[k] for k in expected}
    assert all(s.kind is SampleKind.COUNTER for s in raw)
    rates = [s for s in second if s.metric == "if_in_ucast_pkts_per_s"]
    assert len(rates) == len(expected) and all(s.value == 0 for s in rates)  # a static recording
    assert cisco.active == [] and [s.metric for s in other] == ["sysUpTime"]


# -- 64-bit counters preferred per port, the 32-bit ones where a port has none ---------------------

IF = {c.name: c.oid for c in load_profile(BUILTIN_PROFILE_DIR / "if-mib.yaml").tables[0].columns}
W32 = 1 << 32


class FakeAgent:
    """An in-memory agent: ``values`` maps full OIDs to values; records every walk."""

    def __init__(self, values: dict[str, object]) -> None:
        self.values = values
        self.walks: list[tuple[str, ...]] = []

    async def get(self, target: object, oids: list[str]) -> dict[str, object]:
        return {oid: self.values.get(oid) for oid in oids}

    async def walk_table(
        self, target: object, columns: list[str], *, max_repetitions: int | None = None
    ) -> dict[str, dict[str, object]]:
        self.walks.append(tuple(columns))
        return {
            column: {oid[len(column) + 1 :]: v for oid, v in self.values.items() if oid.startswith(column + ".")}
            for column in columns
        }

    def set(self, column: str, index: int, value: object) -> None:
        self.values[f"{IF[column]}.{index}"] = value


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _agent(rows: dict[int, dict[str, int]]) -> FakeAgent:
    agent = FakeAgent({"1.3.6.1.2.1.1.3.0": 100, "1.3.6.1.2.1.2.1.0": len(rows), "1.3.6.1.2.1.31.1.5.0": 0})
    for index, columns in rows.items():
        agent.set("ifDescr", index, f"port{index}")
        agent.set("ifOperStatus", index, 1)
        agent.set("ifInErrors", index, 0)
        for name, value in columns.items():
            agent.set(name, index, value)
    return agent


def _if_mib_collector(agent: FakeAgent, clock: Clock) -> ProfileCollector:
    from collectors.snmp import Target

    profile = load_profile(BUILTIN_PROFILE_DIR / "if-mib.yaml")
    return ProfileCollector(agent, Target("dev", "127.0.0.1", 161), [profile], clock, select=False)  # type: ignore[arg-type]


def _by(samples: list, metric: str) -> dict[str, float]:
    return {s.label("ifIndex"): s.value for s in samples if s.metric == metric}


async def test_hc_counters_preferred_per_port_32_bit_ones_where_there_are_none() -> None:
    # port 1: ifXTable with 64-bit counters (the agent also has its 32-bit ones); port 2: 1 Gbit/s
    # without 64-bit counters; port 3: no ifXTable at all (no ifHighSpeed: ifSpeed gives its speed)
    agent = _agent({
        1: {"ifHCInOctets": 10**12, "ifInOctets": 5, "ifHighSpeed": 1000, "ifSpeed": 1_000_000_000},
        2: {"ifInOctets": W32 - 1000, "ifHighSpeed": 1000, "ifSpeed": 1_000_000_000},
        3: {"ifInOctets": 1000, "ifSpeed": 100_000_000},
    })
    clock = Clock()
    collector = _if_mib_collector(agent, clock)
    await collector.collect()
    assert any(IF["ifInOctets"] in walk for walk in agent.walks), "ports without HC counters: 32-bit walked"
    clock.now += 30
    agent.set("ifHCInOctets", 1, 10**12 + 3_750_000_000)  # 1 Gbit/s
    agent.set("ifInOctets", 2, (W32 - 1000 + 3_000_000_000) % W32)  # 800 Mbit/s: wrapped past half the range
    agent.set("ifInOctets", 3, 1000 + 30_000_000)  # 8 Mbit/s
    agent.set("ifInOctets", 1, 77)  # never used: port 1 has its 64-bit counter
    samples = await collector.collect()
    assert _by(samples, "if_in_bps") == pytest.approx({"1": 1e9, "2": 8e8, "3": 8e6})
    assert _by(samples, "if_in_utilization") == pytest.approx({"1": 1.0, "2": 0.8, "3": 0.08})
    # exported under snmp_exporter's names: each port its own counter, ifSpeed where no ifHighSpeed
    assert set(_by(samples, "ifHCInOctets")) == {"1"}
    assert set(_by(samples, "ifInOctets")) == {"2", "3"}
    assert set(_by(samples, "ifHighSpeed")) == {"1", "2"} and _by(samples, "ifSpeed") == {"3": 100_000_000}
    assert all(s.kind is SampleKind.COUNTER for s in samples if s.metric == "ifInOctets")


async def test_32_bit_counters_are_not_walked_where_every_port_has_hc_ones() -> None:
    agent = _agent({i: {"ifHCInOctets": i, "ifHCOutOctets": i, "ifInOctets": i, "ifHighSpeed": 1000} for i in (1, 2)})
    clock = Clock()
    collector = _if_mib_collector(agent, clock)
    for _ in range(3):
        samples = await collector.collect()
        clock.now += 10
    assert not [w for w in agent.walks if IF["ifInOctets"] in w or IF["ifOutOctets"] in w], agent.walks
    assert not _by(samples, "ifInOctets") and set(_by(samples, "if_in_bps")) == {"1", "2"}
    # a port without HC counters appears: its 32-bit counters are read from that poll on
    agent.set("ifDescr", 3, "port3")
    agent.set("ifOperStatus", 3, 1)
    agent.set("ifInOctets", 3, 100)
    agent.set("ifSpeed", 3, 10_000_000)
    await collector.collect()
    clock.now += 10
    agent.set("ifInOctets", 3, 100 + 12_500)
    samples = await collector.collect()
    assert _by(samples, "if_in_bps")["3"] == pytest.approx(10_000.0)


async def test_32_bit_counter_that_can_wrap_twice_between_polls_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    agent = _agent({2: {"ifInOctets": 0, "ifHighSpeed": 1000}})  # 1 Gbit/s: 2**32 octets in 34 s
    clock = Clock()
    collector = _if_mib_collector(agent, clock)
    await collector.collect()
    clock.now += 30
    await collector.collect()
    assert "32-bit counter" not in caplog.text, "30 s: one wrap at most, nothing to say"
    for _ in range(2):  # 60 s: it may have wrapped twice; said once
        clock.now += 60
        await collector.collect()
    warnings = [r.getMessage() for r in caplog.records if "32-bit counter" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once per counter
    assert "ifInOctets" in warnings[0] and "poll at most every 34 s" in warnings[0], warnings[0]
