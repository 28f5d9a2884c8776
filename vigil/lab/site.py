"""The built-in demo site: a small Guangzhou broadband network and its customers."""

from __future__ import annotations

import random

from pydantic import SecretStr

from config.models import (
    Area,
    Credential,
    Customer,
    Element,
    ElementRole,
    SiteConfig,
    SnmpConfig,
    SnmpDefaults,
)

__all__ = ["ACCESS_ROLES", "demo_site"]

ACCESS_ROLES = frozenset({ElementRole.OLT, ElementRole.DSLAM, ElementRole.ACCESS})

_AREAS = (
    Area(id="tianhe", name="Tianhe", name_zh="天河"),
    Area(id="yuexiu", name="Yuexiu", name_zh="越秀"),
    Area(id="haizhu", name="Haizhu", name_zh="海珠"),
)
# Access elements per area: Yuexiu, the old town, still has copper (a VDSL2 DSLAM).
_ACCESS: dict[str, tuple[tuple[str, ElementRole], ...]] = {
    "tianhe": (("olt-tianhe-01", ElementRole.OLT), ("olt-tianhe-02", ElementRole.OLT)),
    "yuexiu": (("olt-yuexiu-01", ElementRole.OLT), ("dslam-yuexiu-01", ElementRole.DSLAM)),
    "haizhu": (("olt-haizhu-01", ElementRole.OLT), ("olt-haizhu-02", ElementRole.OLT)),
}
# Relative number of customers per access element role.
_WEIGHT = {ElementRole.OLT: 5, ElementRole.DSLAM: 2}

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗梁郑谢宋唐许邓冯韩曹曾彭萧蔡潘田董袁"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建国志海婷文博宇浩然嘉欣子轩梓涵"
_EN_FIRST = (
    "James",
    "Mary",
    "David",
    "Linda",
    "Michael",
    "Sarah",
    "Daniel",
    "Emma",
    "Thomas",
    "Olivia",
    "Lucas",
    "Sophie",
    "Ahmed",
    "Priya",
    "Kenji",
    "Maria",
)
_EN_LAST = (
    "Smith",
    "Brown",
    "Wilson",
    "Taylor",
    "Martin",
    "Garcia",
    "Müller",
    "Rossi",
    "Khan",
    "Tanaka",
    "Silva",
    "Nguyen",
    "Dubois",
    "Kowalski",
)


def demo_site(
    base_port: int = 16100, customers: int = 1200, seed: int = 7
) -> tuple[SiteConfig, list[Customer]]:
    """The demo site (agents on 127.0.0.1 from ``base_port``) and ``customers`` seeded rows."""
    specs: list[tuple[str, ElementRole, str | None, str | None]] = [
        ("cr-gz-01", ElementRole.CORE, None, None)
    ]
    specs += [(f"agg-{a.id}-01", ElementRole.AGGREGATION, "cr-gz-01", a.id) for a in _AREAS]
    for area in _AREAS:
        specs += [(name, role, f"agg-{area.id}-01", area.id) for name, role in _ACCESS[area.id]]
    elements = [
        Element(
            name=name,
            role=role,
            address=f"udp://127.0.0.1:{base_port + i}",
            credential="lab",
            area=area,
            parent=parent,
        )
        for i, (name, role, parent, area) in enumerate(specs)
    ]
    site = SiteConfig(
        site="guangzhou-lab",
        areas=list(_AREAS),
        elements=elements,
        snmp=SnmpConfig(
            credentials={"lab": Credential(version="2c", community=SecretStr("public"))},
            defaults=SnmpDefaults(interval=60.0),
        ),
    )
    return site, _customers(elements, customers, seed)


def _customers(elements: list[Element], count: int, seed: int) -> list[Customer]:
    """``count`` deterministic customers spread over the access elements by weight."""
    rng = random.Random(seed)
    access = [el for el in elements if el.role in ACCESS_ROLES]
    weights = [_WEIGHT.get(el.role, 3) for el in access]
    rows = []
    for i in range(count):
        el = rng.choices(access, weights)[0]
        english = rng.random() < 0.08
        if english:
            name = f"{rng.choice(_EN_FIRST)} {rng.choice(_EN_LAST)}"
        else:
            name = rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2))))
        roll = rng.random()
        grade = "vip" if roll < 0.03 else "gold" if roll < 0.18 else "standard"
        rows.append(
            Customer(
                account=f"GZ{20_000_000 + i * 7 + rng.randrange(7):08d}",
                phone=f"86138{i + 1:08d}",
                area=el.area or "",
                element=el.name,
                grade=grade,
                language="en" if english else "zh-CN",
                name=name,
            )
        )
    return rows
