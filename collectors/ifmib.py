"""IF-MIB interface collector: the shipped ``if_mib`` profile, plus a typed view of the interfaces.

A thin wrapper over :class:`collectors.profiles.ProfileCollector` polling only the IF-MIB
profile (``collectors/profiles/if-mib.yaml``), whatever the device's sysObjectID. Samples keep
snmp_exporter's if_mib names; the label columns (ifDescr, ifName, ifAlias, ifType, ifHighSpeed, ifSpeed)
are cached and walked again only on the first poll, when an unknown ifIndex appears, when
sysUpTime goes back or ifNumber/ifTableLastChange changes, or every ``label_refresh`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from collectors.profiles import (
    BUILTIN_PROFILE_DIR,
    SYS_UPTIME,
    Profile,
    ProfileCollector,
    load_profile,
)
from collectors.sample import Sample
from collectors.snmp import SnmpClient, Target

__all__ = ["IF_COLUMNS", "SYS_UPTIME", "IfMibCollector", "Interface", "if_mib_profile"]


@cache
def if_mib_profile() -> Profile:
    """The shipped IF-MIB profile."""
    return load_profile(BUILTIN_PROFILE_DIR / "if-mib.yaml")


IF_COLUMNS: dict[str, str] = {c.name: c.oid for c in if_mib_profile().tables[0].columns}


@dataclass(frozen=True)
class Interface:
    """One row of the interface table as last polled (0 / "" where the agent had no value)."""

    index: int
    name: str
    descr: str
    alias: str
    type: int
    high_speed_mbps: int  # ifHighSpeed, else ifSpeed / 10**6
    oper_status: int
    in_octets: int  # ifHCInOctets, else the 32-bit ifInOctets (SNMPv1, no ifXTable)
    out_octets: int
    in_errors: int
    out_errors: int
    in_discards: int


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _first(values: dict[str, object], *names: str) -> int:
    """The first of ``names`` the row has a number for (64-bit counters, then 32-bit ones)."""
    for name in names:
        value = values.get(name)
        if isinstance(value, int):
            return value
    return 0


def _speed_mbps(values: dict[str, object]) -> int:
    """ifHighSpeed, else ifSpeed (bit/s) in Mbit/s, for a device without ifXTable."""
    high = _int(values.get("ifHighSpeed"))
    return high if high else round(_int(values.get("ifSpeed")) / 1e6)


class IfMibCollector:
    """Collect IF-MIB interface samples from one target."""

    def __init__(
        self,
        client: SnmpClient,
        target: Target,
        clock: Callable[[], float] = time.time,
        label_refresh: float = 3600.0,
    ) -> None:
        self.client = client
        self.target = target
        self.clock = clock
        self.label_refresh = label_refresh
        self.interfaces: list[Interface] = []
        self._collector = ProfileCollector(
            client, target, [if_mib_profile()], clock, label_refresh, select=False
        )

    @property
    def varbinds(self) -> int:
        """Varbinds received by the last poll."""
        return self._collector.varbinds

    async def collect(self) -> list[Sample]:
        """Poll the target once; raw samples, sysUpTime and (from the 2nd poll) rates."""
        samples = await self._collector.collect()
        self.interfaces = [
            Interface(
                index=int(row.index),
                name=_text(row.values.get("ifName")),
                descr=_text(row.values.get("ifDescr")),
                alias=_text(row.values.get("ifAlias")),
                type=_int(row.values.get("ifType")),
                high_speed_mbps=_speed_mbps(row.values),
                oper_status=_int(row.values.get("ifOperStatus")),
                in_octets=_first(row.values, "ifHCInOctets", "ifInOctets"),
                out_octets=_first(row.values, "ifHCOutOctets", "ifOutOctets"),
                in_errors=_int(row.values.get("ifInErrors")),
                out_errors=_int(row.values.get("ifOutErrors")),
                in_discards=_int(row.values.get("ifInDiscards")),
            )
            for row in self._collector.rows.get("interfaces", [])
            if row.index.isdigit()
        ]
        return samples
