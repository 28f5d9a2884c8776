"""Alertmanager routing: walk the route tree depth-first, pick receivers, build group keys.

A child route inherits ``receiver``, ``group_by`` and the three timers from its parent unless
it sets them itself (pydantic's ``model_fields_set`` tells which were set). Matchers are exact
label equality; a missing label equals ``""`` (Alertmanager's rule). Regex matchers (``=~``)
are not supported yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from config.models import Route

__all__ = ["RouteMatch", "group_key", "group_labels", "match_receivers", "match_routes"]

_INHERITED = ("receiver", "group_by", "group_wait", "group_interval", "repeat_interval")


class RouteMatch(NamedTuple):
    """One matching leaf: receiver name, the route with inherited settings, its stable id."""

    receiver: str
    route: Route
    route_id: str


def _matchers_str(matchers: Mapping[str, str]) -> str:
    return "{" + ",".join(f"{k}={v!r}" for k, v in sorted(matchers.items())) + "}"


def _matches(route: Route, labels: Mapping[str, str]) -> bool:
    return all(labels.get(name, "") == value for name, value in route.matchers.items())


def _inherit(child: Route, parent: Route) -> Route:
    unset = {
        name: getattr(parent, name)
        for name in _INHERITED
        if name not in child.model_fields_set or getattr(child, name) is None
    }
    return child.model_copy(update=unset) if unset else child


def _walk(route: Route, labels: Mapping[str, str], route_id: str) -> list[RouteMatch]:
    if not _matches(route, labels):
        return []
    found: list[RouteMatch] = []
    for index, child in enumerate(route.routes):
        child_id = f"{route_id}/{_matchers_str(child.matchers)}/{index}"
        matches = _walk(_inherit(child, route), labels, child_id)
        found.extend(matches)
        if matches and not child.continue_:
            break
    if not found and route.receiver is not None:
        found.append(RouteMatch(route.receiver, route, route_id))
    return found


def match_routes(route: Route, labels: Mapping[str, str]) -> list[RouteMatch]:
    """Every route (with its id) the labels end in, in tree order."""
    return _walk(route, labels, _matchers_str(route.matchers))


def match_receivers(route: Route, labels: Mapping[str, str]) -> list[tuple[str, Route]]:
    """(receiver, effective route) of every route the labels end in, depth-first."""
    return [(m.receiver, m.route) for m in match_routes(route, labels)]


def group_labels(route: Route, labels: Mapping[str, str]) -> dict[str, str]:
    """The labels a route groups by (``...`` means all), only those present."""
    if "..." in route.group_by:
        return dict(sorted(labels.items()))
    return {name: labels[name] for name in sorted(route.group_by) if name in labels}


def group_key(route_id: str, route: Route, labels: Mapping[str, str]) -> str:
    """Alertmanager-style group key: ``<route id>:<group labels>``."""
    return f"{route_id}:{_matchers_str(group_labels(route, labels))}"
