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
