"""Alertmanager routing, table-driven."""

from __future__ import annotations

import pytest

from alerts import group_key, match_receivers, match_routes
from config.models import Route

TREE = Route.model_validate(
    {
        "receiver": "default",
        "group_by": ["alertname"],
        "group_wait": 30,
        "routes": [
            {
                "matchers": {"severity": "critical"},
                "receiver": "pager",
                "group_wait": 5,
                "routes": [
                    {"matchers": {"element": "core-1"}, "receiver": "core-team"},
                    {"matchers": {"area": "north"}},  # inherits receiver "pager"
                ],
            },
            {"matchers": {"alertname": "LinkDown"}, "receiver": "noc", "continue": True},
            {"matchers": {"alertname": "LinkDown"}, "receiver": "audit"},
            {"matchers": {"alertname": "LinkDown"}, "receiver": "never"},  # shadowed
            {"matchers": {"team": ""}, "receiver": "unowned", "continue": True},
        ],
    }
)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"alertname": "HighCpu", "team": "x"}, ["default"]),
        ({"alertname": "HighCpu", "severity": "critical", "team": "x"}, ["pager"]),
        (
            {"alertname": "HighCpu", "severity": "critical", "element": "core-1", "team": "x"},
            ["core-team"],
        ),
        ({"alertname": "X", "severity": "critical", "area": "north", "team": "x"}, ["pager"]),
        ({"alertname": "LinkDown", "team": "x"}, ["noc", "audit"]),
        ({"alertname": "HighCpu"}, ["unowned"]),  # missing label equals ""
        ({"alertname": "LinkDown", "severity": "critical", "team": "x"}, ["pager"]),
    ],
)
def test_match_receivers(labels: dict[str, str], expected: list[str]) -> None:
    assert [name for name, _ in match_receivers(TREE, labels)] == expected


def test_children_inherit_unset_settings() -> None:
    labels = {"alertname": "X", "severity": "critical", "area": "north"}
    [(receiver, route)] = match_receivers(TREE, labels)
    assert receiver == "pager"
    assert route.group_wait == 5  # from the parent "pager" route
    assert route.group_by == ["alertname"]  # from the root
    [(_, leaf)] = match_receivers(TREE, {"alertname": "X", "team": "t"})
    assert leaf.group_wait == 30


def test_group_key_distinguishes_routes_and_group_labels() -> None:
    labels = {"alertname": "LinkDown", "element": "olt-1", "team": "x"}
    noc, audit = match_routes(TREE, labels)
    key_noc = group_key(noc.route_id, noc.route, labels)
    assert key_noc != group_key(audit.route_id, audit.route, labels)
    assert key_noc.endswith(":{alertname='LinkDown'}")
    other = {**labels, "element": "olt-2"}
    assert group_key(noc.route_id, noc.route, other) == key_noc  # grouped by alertname only


def test_group_by_all_labels() -> None:
    route = Route(receiver="r", group_by=["..."])
    [match] = match_routes(route, {"b": "2", "a": "1"})
    assert group_key(match.route_id, match.route, {"b": "2", "a": "1"}) == "{}:{a='1',b='2'}"
