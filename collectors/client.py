"""The client the poller uses: v1/v2c on the lean asyncio codec, SNMPv3 on pysnmp.

Both speak the same interface (``get``, ``walk_table``, ``close``) and raise the same
``collectors.snmp`` errors, so collectors never know which one answered. The fast path costs
about a tenth of pysnmp's CPU per varbind (benchmarks/collector.py); pysnmp keeps what needs a
full engine: USM security, engine discovery and time windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from collectors.snmp import SnmpClient, Target
from collectors.v2c import FastSnmpClient

__all__ = ["Client", "SnmpReader"]


class SnmpReader(Protocol):
    """What collectors need from an SNMP client."""

    async def get(self, target: Target, oids: Sequence[str]) -> dict[str, object]: ...

    async def walk_table(
        self, target: Target, columns: Sequence[str], *, max_repetitions: int | None = None
    ) -> dict[str, dict[str, object]]: ...

    def close(self) -> None: ...


class Client:
    """Routes each target to the fast v1/v2c client or to pysnmp (v3), created on first use."""

    def __init__(self, fast: FastSnmpClient | None = None, full: SnmpClient | None = None) -> None:
        self._fast = fast
        self._full = full

    @property
    def fast(self) -> FastSnmpClient:
        if self._fast is None:
            self._fast = FastSnmpClient()
        return self._fast

    @property
    def full(self) -> SnmpClient:
        if self._full is None:
            self._full = SnmpClient()
        return self._full

    def _for(self, target: Target) -> SnmpReader:
        return self.full if target.version == "3" else self.fast

    async def get(self, target: Target, oids: Sequence[str]) -> dict[str, object]:
        return await self._for(target).get(target, oids)

    async def walk_table(
        self, target: Target, columns: Sequence[str], *, max_repetitions: int | None = None
    ) -> dict[str, dict[str, object]]:
        return await self._for(target).walk_table(target, columns, max_repetitions=max_repetitions)

    def close(self) -> None:
        for client in (self._fast, self._full):
            if client is not None:
                client.close()
