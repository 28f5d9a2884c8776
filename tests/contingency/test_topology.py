from __future__ import annotations

import pytest

from config.models import Area, Customer, Element
from contingency import Topology, TopologyError, UnknownElementError, normalize_phone
from tests.contingency.conftest import AREAS, CUSTOMERS, ELEMENTS


def _el(name: str, parent: str | None) -> Element:
    return Element(name=name, address="udp://127.0.0.1:161", credential="c", parent=parent)


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ("core", {"core", "agg-a", "agg-b", "olt-a1", "olt-a2", "olt-b1", "olt-b2"}),
        ("agg-a", {"agg-a", "olt-a1", "olt-a2"}),
        ("olt-b2", {"olt-b2"}),
    ],
)
def test_descendants(topology: Topology, element: str, expected: set[str]) -> None:
    assert topology.descendants(element) == expected


def test_affected_customers_and_areas(topology: Topology) -> None:
    customers = topology.affected_customers("agg-a")
    assert len(customers) == 20
    assert {c.element for c in customers} == {"olt-a1", "olt-a2"}
    assert [a.id for a in topology.affected_areas("agg-a")] == ["yuexiu", "tianhe"]
    assert [a.id for a in topology.affected_areas("olt-b1")] == ["haizhu"]
    assert len(topology.affected_customers("core")) == 40


@pytest.mark.parametrize("phone", ["13800000003", "+8613800000003", "86 138 0000 0003",
                                   "008613800000003", "+86-138-0000-0003"])
def test_customer_by_phone_normalises(topology: Topology, phone: str) -> None:
    customer = topology.customer_by_phone(phone)
    assert customer is not None and customer.account == "GZ00003"


def test_lookup_misses(topology: Topology) -> None:
    assert topology.customer_by_phone("13999999999") is None
    assert topology.area("nowhere") is None
    assert topology.area("tianhe") == AREAS[1]
    with pytest.raises(UnknownElementError, match="ghost"):
        topology.descendants("ghost")
    with pytest.raises(LookupError):
        topology.element("ghost")


def test_cycle_is_an_error() -> None:
    with pytest.raises(TopologyError, match="cycle: .*a -> b -> a|cycle: .*b -> a -> b"):
        Topology([_el("a", "b"), _el("b", "a"), _el("c", "a")], [], [])


def test_unknown_parent_is_an_error() -> None:
    with pytest.raises(TopologyError, match="unknown parent 'nope'"):
        Topology([_el("a", "nope")], [], [])


def test_customer_on_unknown_element_is_an_error() -> None:
    stray = Customer(account="X1", phone="13900000000", area="yuexiu", element="olt-z")
    with pytest.raises(TopologyError, match="X1.*olt-z"):
        Topology(ELEMENTS, AREAS, [*CUSTOMERS, stray])


def test_unknown_area_is_an_error() -> None:
    with pytest.raises(TopologyError, match="unknown area"):
        Topology(ELEMENTS, [Area(id="yuexiu", name="Yuexiu")], CUSTOMERS)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("+86 138 0013 8000", "13800138000"), ("8613800138000", "13800138000"),
     ("0086-13800138000", "13800138000"), ("86123", "86123"), ("020-12345678", "02012345678")],
)
def test_normalize_phone(raw: str, normal: str) -> None:
    assert normalize_phone(raw) == normal
