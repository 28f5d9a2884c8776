"""What each simulated agent looks like: vendor identity and interfaces, derived from the site.

Any ``SiteConfig`` works: an element's role picks a vendor template, and its ports follow the
topology (an aggregation switch gets one uplink to its parent and one downlink per child).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from config.models import Element, ElementRole, SiteConfig

__all__ = ["Device", "Port", "PortKind", "dsl_lines", "lab_devices", "optic_ports", "uplink_of"]

# IANAifType values used by the templates.
_ETHERNET = 6
_VDSL = 97
_GPON = 250

_NEIGHBOURHOODS: dict[str, tuple[str, ...]] = {
    "tianhe": (
        "Zhujiang New Town",
        "Tianhe North",
        "Shipai",
        "Linhe",
        "Tangxia",
        "Yuancun",
        "Wushan",
        "Cencun",
    ),
    "yuexiu": (
        "Beijing Road",
        "Dongshan",
        "Liurong",
        "Huanghuagang",
        "Baiyun Road",
        "Dadong",
        "Renmin Road",
        "Guangta",
    ),
    "haizhu": (
        "Jiangnan West",
        "Pazhou",
        "Chigang",
        "Binjiang",
        "Nanzhou",
        "Changgang",
        "Ruibao",
        "Guanzhou",
    ),
}
_DEFAULT_PLACES = (
    "Block A",
    "Block B",
    "Block C",
    "Block D",
    "Block E",
    "Block F",
    "Block G",
    "Block H",
)


class PortKind(StrEnum):
    """Where a port sits; it decides the traffic profile."""

    BACKBONE = "backbone"  # core router towards the national backbone
    UPLINK = "uplink"  # towards the parent element (traffic arrives: in > out)
    STANDBY = "standby"  # protection uplink, idle
    DOWNLINK = "downlink"  # towards a child element (traffic leaves: out > in)
    ACCESS = "access"  # PON or DSL port serving customers
    ENTERPRISE = "enterprise"  # leased line, mobile backhaul, management
    SPARE = "spare"  # unused, admin down


@dataclass(frozen=True, slots=True)
class Port:
    """One row of ifTable/ifXTable."""

    if_index: int
    name: str
    descr: str
    alias: str
    if_type: int
    speed_mbps: int
    kind: PortKind
    peer: str | None = None  # element at the other end, when it is in the site

    @property
    def up(self) -> bool:
        """Oper status up (spare ports are down)."""
        return self.kind is not PortKind.SPARE

    @property
    def speed_bps(self) -> int:
        """Nominal speed in bit/s."""
        return self.speed_mbps * 1_000_000


@dataclass(frozen=True, slots=True)
class Device:
    """The identity and interfaces one simulated agent serves."""

    element: str
    role: ElementRole
    model: str  # vendor and model, for banners
    sys_descr: str
    sys_object_id: tuple[int, ...]
    sys_location: str
    ports: tuple[Port, ...]

    def port(self, if_index: int) -> Port:
        """The port with ``if_index``."""
        for port in self.ports:
            if port.if_index == if_index:
                return port
        raise KeyError(f"{self.element} has no ifIndex {if_index}")


def uplink_of(device: Device) -> Port:
    """The device's (first) uplink port."""
    for port in device.ports:
        if port.kind is PortKind.UPLINK:
            return port
    raise KeyError(f"{device.element} has no uplink")


def optic_ports(device: Device) -> tuple[Port, ...]:
    """Ports with a pluggable optic and digital diagnostics: an OLT's PON ports and uplinks."""
    if device.role != ElementRole.OLT:
        return ()
    kinds = (PortKind.ACCESS, PortKind.UPLINK, PortKind.STANDBY)
    return tuple(p for p in device.ports if p.kind in kinds)


def dsl_lines(device: Device) -> tuple[Port, ...]:
    """A DSLAM's DSL lines in service (spare lines have no ATU-R)."""
    if device.role != ElementRole.DSLAM:
        return ()
    return tuple(p for p in device.ports if p.if_type == _VDSL and p.kind is PortKind.ACCESS)


def lab_devices(site: SiteConfig) -> dict[str, Device]:
    """One simulated device per element of ``site``, keyed by element name."""
    children: dict[str, list[Element]] = {}
    for el in site.elements:
        if el.parent:
            children.setdefault(el.parent, []).append(el)
    olt_rank = {el.name: i for i, el in enumerate(e for e in site.elements if e.role == "olt")}
    areas = {a.id: a for a in site.areas}
    devices = {}
    for el in site.elements:
        kids = children.get(el.name, [])
        area_name = areas[el.area].name if el.area in areas else "Guangzhou"
        location = f"{area_name} central office, {el.name}"
        if el.role == ElementRole.CORE:
            dev = _core(el, kids, location)
        elif el.role == ElementRole.AGGREGATION:
            dev = _aggregation(el, kids, location)
        elif el.role == ElementRole.OLT:
            dev = _olt(el, location, zte=olt_rank[el.name] % 2 == 1)
        elif el.role == ElementRole.DSLAM:
            dev = _dslam(el, location)
        else:
            dev = _generic(el, kids, location)
        devices[el.name] = dev
    return devices


def _places(el: Element) -> tuple[str, ...]:
    return _NEIGHBOURHOODS.get(el.area or "", _DEFAULT_PLACES)


def _core(el: Element, kids: list[Element], location: str) -> Device:
    ports = [
        Port(
            1,
            "et-0/0/0",
            "et-0/0/0",
            "backbone: ChinaNet gz-bb-01 et-5/1/0",
            _ETHERNET,
            100_000,
            PortKind.BACKBONE,
        ),
        Port(
            2,
            "et-0/0/1",
            "et-0/0/1",
            "backbone: ChinaNet gz-bb-02 et-5/1/0",
            _ETHERNET,
            100_000,
            PortKind.BACKBONE,
        ),
    ]
    for kid in kids:
        n = len(ports) - 2
        ports.append(
            Port(
                len(ports) + 1,
                f"xe-1/0/{n}",
                f"xe-1/0/{n}",
                f"to {kid.name}",
                _ETHERNET,
                10_000,
                PortKind.DOWNLINK,
                kid.name,
            )
        )
    extras = [
        ("to bras-gz-01 (BNG) xe-0/1/0", PortKind.ENTERPRISE),
        ("to cdn-gz-01 video cache", PortKind.ENTERPRISE),
        ("spare", PortKind.SPARE),
    ]
    for alias, kind in extras:
        n = len(ports) - 2
        ports.append(
            Port(len(ports) + 1, f"xe-1/0/{n}", f"xe-1/0/{n}", alias, _ETHERNET, 10_000, kind)
        )
    return Device(
        el.name,
        el.role,
        "Juniper MX960",
        "Juniper Networks, Inc. mx960 internet router, kernel JUNOS 21.4R3-S5.4, "
        "Build date: 2023-09-14 04:10:22 UTC Copyright (c) 1996-2023 Juniper Networks, Inc.",
        (1, 3, 6, 1, 4, 1, 2636, 1, 1, 1, 2, 29),
        location,
        tuple(ports),
    )


def _aggregation(el: Element, kids: list[Element], location: str) -> Device:
    parent = el.parent or "core"
    ports = [
        Port(
            1,
            "XGigabitEthernet1/0/0",
            "XGigabitEthernet1/0/0",
            f"uplink to {parent}",
            _ETHERNET,
            10_000,
            PortKind.UPLINK,
            el.parent,
        )
    ]
    for kid in kids:
        name = f"XGigabitEthernet1/0/{len(ports)}"
        ports.append(
            Port(
                len(ports) + 1,
                name,
                name,
                f"to {kid.name} uplink",
                _ETHERNET,
                10_000,
                PortKind.DOWNLINK,
                kid.name,
            )
        )
    places = _places(el)
    area = (el.area or "site").capitalize()
    extras = [
        f"mobile: {area} 4G/5G BBU hub",
        f"ent: {area} district government leased line",
        f"ent: {places[0]} hospital leased line",
        f"ent: {places[1]} SME broadband",
        f"mgmt: {area} DCN",
        "ent: Guangzhou Metro station link",
    ]
    for i in range(12 - len(ports)):
        name = f"GigabitEthernet2/0/{i}"
        alias, kind = (
            (extras[i], PortKind.ENTERPRISE) if i < len(extras) else ("spare", PortKind.SPARE)
        )
        ports.append(Port(len(ports) + 1, name, name, alias, _ETHERNET, 1_000, kind))
    return Device(
        el.name,
        el.role,
        "Huawei S9312",
        "Huawei Versatile Routing Platform Software\r\nVRP (R) software, Version 5.170 "
        "(S9300 V200R020C10SPC500)\r\nCopyright (C) 2000-2023 HUAWEI TECH CO., LTD\r\n"
        "Quidway S9312",
        (1, 3, 6, 1, 4, 1, 2011, 2, 23, 142),
        location,
        tuple(ports),
    )


def _olt(el: Element, location: str, *, zte: bool) -> Device:
    places = _places(el)
    parent = el.parent or "aggregation"
    ports = []
    for n in range(16):
        kind = PortKind.SPARE if n >= 14 else PortKind.ACCESS
        alias = (
            "spare"
            if kind is PortKind.SPARE
            else (f"PON {places[n % len(places)]} {n // len(places) + 1}#, splitter 1:64")
        )
        if zte:
            name = descr = f"gpon_olt-1/1/{n + 1}"
        else:
            name, descr = f"GPON 0/1/{n}", f"HUAWEI, MA5800 Series, GPON 0/1/{n} Interface"
        ports.append(Port(n + 1, name, descr, alias, _GPON, 2_500, kind))
    for n, kind in enumerate((PortKind.UPLINK, PortKind.STANDBY)):
        alias = f"uplink to {parent}" + (" (standby)" if kind is PortKind.STANDBY else "")
        if zte:
            name = descr = f"xgei-1/3/{n + 1}"
        else:
            name, descr = f"XGE 0/9/{n}", f"HUAWEI, MA5800 Series, XGE 0/9/{n} Interface"
        ports.append(Port(len(ports) + 1, name, descr, alias, _ETHERNET, 10_000, kind, el.parent))
    if zte:
        model, descr, oid = (
            "ZTE ZXA10 C600",
            "ZXA10 C600, ZTE ZXA10 Software Version: V1.2.1",
            (1, 3, 6, 1, 4, 1, 3902, 1082, 1001, 600),
        )
    else:
        model, descr, oid = (
            "Huawei MA5800-X7",
            "Huawei Integrated Access Software MA5800-X7 V100R019C10",
            (1, 3, 6, 1, 4, 1, 2011, 2, 248),
        )
    return Device(el.name, el.role, model, descr, oid, location, tuple(ports))


def _dslam(el: Element, location: str) -> Device:
    places = _places(el)
    ports = []
    for n in range(24):
        kind = PortKind.SPARE if n >= 22 else PortKind.ACCESS
        alias = (
            "spare"
            if kind is PortKind.SPARE
            else (f"VDSL2 {places[n % len(places)]} cabinet {n // len(places) + 1}")
        )
        ports.append(
            Port(
                n + 1,
                f"vdsl 0/2/{n}",
                f"HUAWEI, MA5616 Series, VDSL 0/2/{n}",
                alias,
                _VDSL,
                100,
                kind,
            )
        )
    ports.append(
        Port(
            25,
            "GigabitEthernet0/0/1",
            "HUAWEI, MA5616 Series, GigabitEthernet0/0/1",
            f"uplink to {el.parent or 'aggregation'}",
            _ETHERNET,
            1_000,
            PortKind.UPLINK,
            el.parent,
        )
    )
    return Device(
        el.name,
        el.role,
        "Huawei MA5616",
        "Huawei Integrated Access Software MA5616 V800R017C10",
        (1, 3, 6, 1, 4, 1, 2011, 2, 169, 1),
        location,
        tuple(ports),
    )


def _generic(el: Element, kids: list[Element], location: str) -> Device:
    ports = []
    if el.parent:
        ports.append(
            Port(
                1,
                "GigabitEthernet0/0/0",
                "GigabitEthernet0/0/0",
                f"uplink to {el.parent}",
                _ETHERNET,
                10_000,
                PortKind.UPLINK,
                el.parent,
            )
        )
    for kid in kids:
        name = f"GigabitEthernet0/0/{len(ports)}"
        ports.append(
            Port(
                len(ports) + 1,
                name,
                name,
                f"to {kid.name}",
                _ETHERNET,
                10_000,
                PortKind.DOWNLINK,
                kid.name,
            )
        )
    while len(ports) < 8:
        name = f"GigabitEthernet0/1/{len(ports)}"
        ports.append(
            Port(
                len(ports) + 1,
                name,
                name,
                "customer aggregate",
                _ETHERNET,
                1_000,
                PortKind.ENTERPRISE,
            )
        )
    return Device(
        el.name,
        el.role,
        "Cisco ASR 1000",
        "Cisco IOS XE Software, Version 17.09.04a, ASR1000 Software (X86_64_LINUX_IOSD-"
        "UNIVERSALK9-M)",
        (1, 3, 6, 1, 4, 1, 9, 1, 1861),
        location,
        tuple(ports),
    )
