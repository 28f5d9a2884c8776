"""Inhibition: a firing *source* alert mutes the *target* alerts it explains.

Alertmanager's inhibit rules (source matchers, target matchers, ``equal`` labels) plus a
topology form: with ``topology=True`` the source's ``element`` must be an ancestor of the
target's ``element`` in the site's topology (``parents``: element -> upstream element). So an
unreachable aggregation switch pages the NOC once, and the storm of alerts from the OLTs and
ports behind it is held back until it resolves (then anything still firing below is sent).

An alert never inhibits itself. :data:`DEFAULT_INHIBIT_RULES` are the shipped rules, used when
the site configures none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from alerts.silence import Matcher, matches_all

__all__ = ["DEFAULT_INHIBIT_RULES", "InhibitRule", "Inhibitor"]


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """Mute alerts matching ``target`` while one matching ``source`` fires (see module doc)."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...] = ()
    equal: tuple[str, ...] = ()
    topology: bool = False
    name: str = ""

    @classmethod
    def parse(
        cls,
        source: Iterable[str],
        target: Iterable[str] = (),
        equal: Iterable[str] = (),
        *,
        topology: bool = False,
        name: str = "",
    ) -> InhibitRule:
        return cls(
            tuple(Matcher.parse(m) for m in source),
            tuple(Matcher.parse(m) for m in target),
            tuple(equal),
            topology,
            name,
        )


DEFAULT_INHIBIT_RULES: tuple[InhibitRule, ...] = (
    InhibitRule.parse(['alertname="ElementUnreachable"'], topology=True, name="unreachable upstream element"),
    InhibitRule.parse(
        ['alertname="ElementUnreachable"'],
        ['alertname!="ElementUnreachable"'],
        ["element"],
        name="unreachable element",
    ),
    # a port that is down (or flapping: InterfaceDown is damped) explains its CRC bursts,
    # utilisation and predictions; element-wide alerts (no ifIndex) are not muted
    InhibitRule.parse(
        ['alertname="InterfaceDown"'],
        ['alertname!="InterfaceDown"', 'ifIndex=~".+"'],
        ["element", "ifIndex"],
        name="interface down",
    ),
)


class Inhibitor:
    """Which firing alerts are muted by which, for one snapshot of the firing set."""

    def __init__(self, rules: Sequence[InhibitRule], parents: Mapping[str, str] | None = None) -> None:
        self.rules = tuple(rules)
        self._parents = dict(parents or {})

    def ancestors(self, element: str) -> list[str]:
        """Upstream elements of ``element``, nearest first (a cycle in the topology stops the walk)."""
        out: list[str] = []
        node = self._parents.get(element)
        while node is not None and node not in out and node != element:
            out.append(node)
            node = self._parents.get(node)
        return out

    def inhibited(self, firing: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
        """``{target fingerprint: source fingerprint}`` over ``firing`` (fingerprint -> labels)."""
        out: dict[str, str] = {}
        for rule in self.rules:
            sources = [(fp, labels) for fp, labels in firing.items() if matches_all(rule.source, labels)]
            if not sources:
                continue
            for fp, labels in firing.items():
                if fp in out or not matches_all(rule.target, labels):
                    continue
                for source_fp, source in sources:
                    if source_fp == fp or any(source.get(k, "") != labels.get(k, "") for k in rule.equal):
                        continue
                    if rule.topology and source.get("element", "") not in self.ancestors(labels.get("element", "")):
                        continue
                    out[fp] = source_fp
                    break
        return out
