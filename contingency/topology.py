"""The network as a tree: which areas and customers hang below a faulty element."""

from __future__ import annotations

import re
from collections.abc import Sequence

from config.models import Area, Customer, Element
from contingency.errors import TopologyError, UnknownElementError

__all__ = ["Topology", "normalize_phone"]

_PHONE_NOISE = re.compile(r"[\s\-().]")


def normalize_phone(phone: str) -> str:
    """Digits only, without the +86 / 0086 / 86 country prefix of a Chinese mobile number."""
    digits = _PHONE_NOISE.sub("", phone).lstrip("+")
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        # 86 + an 11-digit mobile number; shorter numbers starting with 86 are left alone
        digits = digits[2:]
    return digits


class Topology:
    """Elements linked by ``parent``, the areas they serve and the customers hanging off them."""

    def __init__(
        self,
        elements: Sequence[Element],
        areas: Sequence[Area],
        customers: Sequence[Customer],
    ) -> None:
        self._elements: dict[str, Element] = {}
        for element in elements:
            if element.name in self._elements:
                raise TopologyError(f"duplicate element {element.name!r}")
            self._elements[element.name] = element
        self._areas: dict[str, Area] = {}
        for area in areas:
            if area.id in self._areas:
                raise TopologyError(f"duplicate area {area.id!r}")
            self._areas[area.id] = area
        self._children: dict[str, list[str]] = {name: [] for name in self._elements}
        for element in elements:
            if element.area is not None and element.area not in self._areas:
                raise TopologyError(
                    f"element {element.name!r} serves unknown area {element.area!r}"
                )
            if element.parent is None:
                continue
            if element.parent not in self._elements:
                raise TopologyError(
                    f"element {element.name!r} has unknown parent {element.parent!r}"
                )
            self._children[element.parent].append(element.name)
        self._check_cycles()
        self._customers: list[Customer] = []
        self._by_element: dict[str, list[Customer]] = {name: [] for name in self._elements}
        self._by_phone: dict[str, Customer] = {}
        for customer in customers:
            if customer.element not in self._elements:
                raise TopologyError(
                    f"customer {customer.account!r} hangs off unknown element {customer.element!r}"
                )
            if customer.area not in self._areas:
                raise TopologyError(
                    f"customer {customer.account!r} is in unknown area {customer.area!r}"
                )
            self._customers.append(customer)
            self._by_element[customer.element].append(customer)
            # first account wins for a shared phone: one person, one text
            self._by_phone.setdefault(normalize_phone(customer.phone), customer)

    def _check_cycles(self) -> None:
        """Raise TopologyError naming the loop if parent links form a cycle."""
        done: set[str] = set()
        for start in self._elements:
            path: list[str] = []
            seen: set[str] = set()
            name: str | None = start
            while name is not None and name not in done:
                if name in seen:
                    loop = path[path.index(name) :] + [name]
                    raise TopologyError("element parent cycle: " + " -> ".join(loop))
                seen.add(name)
                path.append(name)
                name = self._elements[name].parent
            done.update(path)

    def element(self, name: str) -> Element:
        """The element called ``name``; UnknownElementError if absent."""
        try:
            return self._elements[name]
        except KeyError:
            raise UnknownElementError(name) from None

    def area(self, id: str) -> Area | None:
        """The area with this id, or None."""
        return self._areas.get(id)

    @property
    def areas(self) -> list[Area]:
        """Every area, in configuration order."""
        return list(self._areas.values())

    @property
    def customers(self) -> list[Customer]:
        """Every customer, in input order."""
        return list(self._customers)

    def descendants(self, element: str) -> set[str]:
        """Names of ``element`` and every element below it."""
        self.element(element)
        found = {element}
        stack = [element]
        while stack:
            for child in self._children[stack.pop()]:
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found

    def ancestors(self, element: str) -> list[str]:
        """Names of the elements above ``element``, nearest first (empty if unknown or a root)."""
        out: list[str] = []
        node = self._elements.get(element)
        while node is not None and node.parent is not None and node.parent not in out:
            out.append(node.parent)
            node = self._elements.get(node.parent)
        return out

    def affected_customers(self, element: str) -> list[Customer]:
        """Customers whose access element is ``element`` or below it, in input order."""
        below = self.descendants(element)
        return [c for c in self._customers if c.element in below]

    def affected_areas(self, element: str) -> list[Area]:
        """Areas served below ``element`` (by elements or customers), in configuration order."""
        below = self.descendants(element)
        ids = {self._elements[name].area for name in below} - {None}
        ids.update(c.area for c in self._customers if c.element in below)
        return [area for area_id, area in self._areas.items() if area_id in ids]

    def customer_by_phone(self, phone: str) -> Customer | None:
        """The customer with this phone (``+86 138 ...`` and ``138...`` match), or None."""
        return self._by_phone.get(normalize_phone(phone))
