"""The demo site: inventory, topology, customers, and the simulated devices' interfaces."""

from __future__ import annotations

import pytest

from config.models import ElementRole
from vigil.lab import ACCESS_ROLES, PortKind, demo_site, lab_devices


def test_demo_site_inventory() -> None:
    site, _ = demo_site(base_port=20000)
    assert {a.id for a in site.areas} == {"tianhe", "yuexiu", "haizhu"}
    assert all(a.name and a.name_zh for a in site.areas)
    assert len(site.elements) >= 10
    names = {el.name for el in site.elements}
    assert {"cr-gz-01", "agg-tianhe-01", "agg-yuexiu-01", "agg-haizhu-01"} <= names
    ports = [el.port for el in site.elements]
    assert ports == list(range(20000, 20000 + len(site.elements)))
    assert all(el.host == "127.0.0.1" and el.credential == "lab" for el in site.elements)
    cred = site.snmp.credentials["lab"]
    assert cred.version == "2c" and cred.community is not None
    assert cred.community.get_secret_value() == "public"
    assert site.snmp.defaults.interval == 60.0


def test_demo_site_topology() -> None:
    site, _ = demo_site()
    by_name = {el.name: el for el in site.elements}
    assert by_name["cr-gz-01"].role == ElementRole.CORE and by_name["cr-gz-01"].parent is None
    for area in site.areas:
        agg = by_name[f"agg-{area.id}-01"]
        assert (agg.role, agg.parent, agg.area) == (ElementRole.AGGREGATION, "cr-gz-01", area.id)
        access = [el for el in site.elements if el.parent == agg.name]
        assert len(access) == 2
        assert all(el.role in ACCESS_ROLES and el.area == area.id for el in access)
    assert by_name["dslam-yuexiu-01"].role == ElementRole.DSLAM


def test_demo_customers() -> None:
    site, customers = demo_site()
    access = {el.name: el for el in site.elements if el.role in ACCESS_ROLES}
    assert len(customers) >= 1000
    assert len({c.account for c in customers}) == len(customers)
    assert len({c.phone for c in customers}) == len(customers)
    assert customers[0].phone == "8613800000001"
    for c in customers:
        assert c.element in access and access[c.element].area == c.area
    assert set(access) == {c.element for c in customers}
    grades = {g: sum(c.grade == g for c in customers) for g in ("vip", "gold", "standard")}
    assert 0 < grades["vip"] < grades["gold"] < grades["standard"]
    english = sum(c.language == "en" for c in customers)
    assert 0 < english < len(customers) * 0.2
    assert all(c.name for c in customers)
    yuexiu = [c for c in customers if c.area == "yuexiu"]
    assert len(yuexiu) > 100


def test_demo_site_is_deterministic() -> None:
    assert demo_site(seed=7) == demo_site(seed=7)
    assert demo_site(seed=7)[1] != demo_site(seed=8)[1]
    assert len(demo_site(customers=1500)[1]) == 1500


@pytest.mark.parametrize(
    ("element", "ports", "first"),
    [
        ("cr-gz-01", 8, "et-0/0/0"),
        ("agg-yuexiu-01", 12, "XGigabitEthernet1/0/0"),
        ("olt-tianhe-01", 18, "GPON 0/1/0"),
        ("olt-tianhe-02", 18, "gpon_olt-1/1/1"),
        ("dslam-yuexiu-01", 25, "vdsl 0/2/0"),
    ],
)
def test_devices_ports(element: str, ports: int, first: str) -> None:
    site, _ = demo_site()
    dev = lab_devices(site)[element]
    assert len(dev.ports) == ports and dev.ports[0].name == first
    assert [p.if_index for p in dev.ports] == list(range(1, ports + 1))
    assert len({p.name for p in dev.ports}) == ports
    assert all(p.descr and p.alias for p in dev.ports)


def test_aggregation_ports_follow_topology() -> None:
    site, _ = demo_site()
    agg = lab_devices(site)["agg-yuexiu-01"]
    uplink = agg.port(1)
    assert uplink.kind is PortKind.UPLINK and uplink.alias == "uplink to cr-gz-01"
    assert uplink.speed_mbps == 10_000
    downlinks = [p for p in agg.ports if p.kind is PortKind.DOWNLINK]
    assert [p.peer for p in downlinks] == ["olt-yuexiu-01", "dslam-yuexiu-01"]
    core = lab_devices(site)["cr-gz-01"]
    assert {p.peer for p in core.ports if p.kind is PortKind.DOWNLINK} == {
        "agg-tianhe-01",
        "agg-yuexiu-01",
        "agg-haizhu-01",
    }
    assert {p.speed_mbps for p in core.ports} == {100_000, 10_000}
