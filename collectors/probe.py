"""One-shot interface report of an agent (``vigil poll udp://HOST:PORT``): two polls, rates."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass

from collectors.client import Client
from collectors.ifmib import IfMibCollector
from collectors.sample import Sample, SampleKind
from collectors.snmp import Target

__all__ = ["InterfaceReport", "probe"]


@dataclass(frozen=True)
class InterfaceReport:
    """One interface as seen by two polls ``interval`` seconds apart."""

    index: int
    name: str
    descr: str
    alias: str
    oper_status: int
    high_speed_mbps: int
    in_bps: float | None
    out_bps: float | None
    in_errors_per_s: float | None
    out_errors_per_s: float | None

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON or a table."""
        return asdict(self)


def _rates(samples: list[Sample]) -> dict[tuple[int, str], float]:
    return {
        (int(s.label("ifIndex")), s.metric): s.value for s in samples if s.kind is SampleKind.RATE
    }


async def probe(
    host: str,
    port: int,
    community: str = "public",
    version: str = "2c",
    interval: float = 5.0,  # > Net-SNMP's 3 s interface counter cache
    timeout: float = 2.0,
) -> list[InterfaceReport]:
    """Poll ``host:port`` twice ``interval`` seconds apart; one report per interface.

    Raises :class:`collectors.snmp.SnmpError` (e.g. ``SnmpTimeout``) when the agent fails.
    """
    if interval <= 0:
        raise ValueError("interval must be > 0")
    target = Target(
        element=f"{host}:{port}",
        host=host,
        port=port,
        community=community,
        version=version,
        timeout=timeout,
    )
    client = Client()
    try:
        collector = IfMibCollector(client, target)
        await collector.collect()
        await asyncio.sleep(interval)
        rates = _rates(await collector.collect())
    finally:
        client.close()
    return [
        InterfaceReport(
            index=i.index,
            name=i.name,
            descr=i.descr,
            alias=i.alias,
            oper_status=i.oper_status,
            high_speed_mbps=i.high_speed_mbps,
            in_bps=rates.get((i.index, "if_in_bps")),
            out_bps=rates.get((i.index, "if_out_bps")),
            in_errors_per_s=rates.get((i.index, "if_in_errors_per_s")),
            out_errors_per_s=rates.get((i.index, "if_out_errors_per_s")),
        )
        for i in collector.interfaces
    ]
