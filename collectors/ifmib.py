"""IF-MIB interface collector: raw snmp_exporter-named samples plus derived per-second rates.

Each :meth:`IfMibCollector.collect` reads sysUpTime, then walks the status/counter columns
with one multi-column walk. The label columns (ifDescr, ifName, ifAlias, ifType) are cached
and walked again only on the first poll, when an unknown ifIndex appears, after an agent
reset, or every ``label_refresh`` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from collectors.counters import RateCalculator
from collectors.sample import Sample, SampleKind, labels_of
from collectors.snmp import SnmpClient, SnmpProtocolError, Target

__all__ = ["IF_COLUMNS", "SYS_UPTIME", "IfMibCollector", "Interface"]

log = logging.getLogger(__name__)

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
_IF_ENTRY = "1.3.6.1.2.1.2.2.1"
_IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"
IF_COLUMNS: dict[str, str] = {
    "ifDescr": f"{_IF_ENTRY}.2",
    "ifType": f"{_IF_ENTRY}.3",
    "ifOperStatus": f"{_IF_ENTRY}.8",
    "ifInDiscards": f"{_IF_ENTRY}.13",
    "ifInErrors": f"{_IF_ENTRY}.14",
    "ifOutErrors": f"{_IF_ENTRY}.20",
    "ifName": f"{_IFX_ENTRY}.1",
    "ifHCInOctets": f"{_IFX_ENTRY}.6",
    "ifHCOutOctets": f"{_IFX_ENTRY}.10",
    "ifHighSpeed": f"{_IFX_ENTRY}.15",
    "ifAlias": f"{_IFX_ENTRY}.18",
}
_LABEL_COLUMNS = ("ifDescr", "ifName", "ifAlias", "ifType")
_STATE_COLUMNS = (
    "ifOperStatus",
    "ifHighSpeed",
    "ifHCInOctets",
    "ifHCOutOctets",
    "ifInErrors",
    "ifOutErrors",
    "ifInDiscards",
)
# Raw samples: metric name -> (kind, counter width in bits; 0 for gauges).
_RAW: dict[str, tuple[SampleKind, int]] = {
    "ifHCInOctets": (SampleKind.COUNTER, 64),
    "ifHCOutOctets": (SampleKind.COUNTER, 64),
    "ifInErrors": (SampleKind.COUNTER, 32),
    "ifOutErrors": (SampleKind.COUNTER, 32),
    "ifInDiscards": (SampleKind.COUNTER, 32),
    "ifOperStatus": (SampleKind.GAUGE, 0),
    "ifHighSpeed": (SampleKind.GAUGE, 0),
}
_ERROR_RATES = {
    "ifInErrors": "if_in_errors_per_s",
    "ifOutErrors": "if_out_errors_per_s",
    "ifInDiscards": "if_in_discards_per_s",
}
_OCTET_RATES = {
    "ifHCInOctets": ("if_in_bps", "if_in_utilization"),
    "ifHCOutOctets": ("if_out_bps", "if_out_utilization"),
}
_SPEED_MARGIN = 1.5  # a rate above 1.5x the interface speed is impossible: treat it as a glitch


@dataclass(frozen=True)
class Interface:
    """One row of the interface table as last polled (0 / "" where the agent had no value)."""

    index: int
    name: str
    descr: str
    alias: str
    type: int
    high_speed_mbps: int
    oper_status: int
    in_octets: int
    out_octets: int
    in_errors: int
    out_errors: int
    in_discards: int


@dataclass(frozen=True, slots=True)
class _Labels:
    """Cached label columns of one interface."""

    descr: str
    name: str
    alias: str
    type: int


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


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
        self._rates = RateCalculator()
        self._labels: dict[int, _Labels] = {}
        self._labels_at: float | None = None
        self._last_uptime: int | None = None

    async def collect(self) -> list[Sample]:
        """Poll the target once; raw samples, sysUpTime and (from the 2nd poll) rates."""
        uptime = _int((await self.client.get(self.target, [SYS_UPTIME]))[SYS_UPTIME])
        if uptime is None:
            raise SnmpProtocolError("agent has no sysUpTime.0", self.target)
        reset = self._last_uptime is not None and uptime < self._last_uptime
        self._last_uptime = uptime
        # Known row count + 1: one GETBULK round trip ends every column of a small table.
        rows = min(len(self._labels) + 1, self.target.max_repetitions) if self._labels else None
        state = await self.client.walk_table(
            self.target, [IF_COLUMNS[name] for name in _STATE_COLUMNS], max_repetitions=rows
        )
        now = self.clock()
        columns = {name: state[IF_COLUMNS[name]] for name in _STATE_COLUMNS}
        indices = sorted(
            {int(suffix) for table in columns.values() for suffix in table if suffix.isdigit()}
        )
        if self._labels_stale(indices, now, reset):
            await self._refresh_labels(now)
            indices = sorted(set(indices) | set(self._labels))

        samples = [Sample(self.target.element, "sysUpTime", (), uptime, now, SampleKind.GAUGE)]
        interfaces: list[Interface] = []
        for index in indices:
            key = str(index)
            values = {name: _int(columns[name].get(key)) for name in _STATE_COLUMNS}
            labels = self._labels.get(index, _Labels("", "", "", 0))
            interfaces.append(
                Interface(
                    index=index,
                    name=labels.name,
                    descr=labels.descr,
                    alias=labels.alias,
                    type=labels.type,
                    high_speed_mbps=values["ifHighSpeed"] or 0,
                    oper_status=values["ifOperStatus"] or 0,
                    in_octets=values["ifHCInOctets"] or 0,
                    out_octets=values["ifHCOutOctets"] or 0,
                    in_errors=values["ifInErrors"] or 0,
                    out_errors=values["ifOutErrors"] or 0,
                    in_discards=values["ifInDiscards"] or 0,
                )
            )
            samples.extend(self._samples_of(index, labels, values, uptime, now))
        self._rates.retain(
            {(index, name) for index in indices for name in (*_ERROR_RATES, *_OCTET_RATES)}
        )
        self.interfaces = interfaces
        return samples

    def _labels_stale(self, indices: list[int], now: float, reset: bool) -> bool:
        if self._labels_at is None or reset or now - self._labels_at >= self.label_refresh:
            return True
        return any(index not in self._labels for index in indices)

    async def _refresh_labels(self, now: float) -> None:
        """Walk the label columns again (ifIndex may have been renumbered)."""
        table = await self.client.walk_table(
            self.target, [IF_COLUMNS[name] for name in _LABEL_COLUMNS]
        )
        by_name = {name: table[IF_COLUMNS[name]] for name in _LABEL_COLUMNS}
        suffixes = {suffix for column in by_name.values() for suffix in column}
        self._labels = {
            int(suffix): _Labels(
                descr=_text(by_name["ifDescr"].get(suffix)),
                name=_text(by_name["ifName"].get(suffix)),
                alias=_text(by_name["ifAlias"].get(suffix)),
                type=_int(by_name["ifType"].get(suffix)) or 0,
            )
            for suffix in suffixes
            if suffix.isdigit()
        }
        self._labels_at = now
        log.debug("%s: %d interfaces labelled", self.target.element, len(self._labels))

    def _samples_of(
        self,
        index: int,
        labels: _Labels,
        values: dict[str, int | None],
        uptime: int,
        now: float,
    ) -> list[Sample]:
        element = self.target.element
        raw_labels = labels_of(
            ifIndex=str(index), ifName=labels.name, ifDescr=labels.descr, ifAlias=labels.alias
        )
        rate_labels = labels_of(ifIndex=str(index), ifName=labels.name)
        samples: list[Sample] = []
        for metric, (kind, _width) in _RAW.items():
            value = values[metric]
            if value is not None:
                samples.append(Sample(element, metric, raw_labels, value, now, kind))

        speed_bps = (values["ifHighSpeed"] or 0) * 1e6
        for metric, (bps_name, util_name) in _OCTET_RATES.items():
            value = values[metric]
            if value is None:
                continue
            max_rate = speed_bps / 8 * _SPEED_MARGIN if speed_bps > 0 else None
            rate = self._rates.update(
                (index, metric), value, now, width=64, uptime=uptime, max_rate=max_rate
            )
            if rate is None:
                continue
            bps = rate * 8
            samples.append(Sample(element, bps_name, rate_labels, bps, now, SampleKind.RATE))
            if speed_bps > 0:
                samples.append(
                    Sample(element, util_name, rate_labels, bps / speed_bps, now, SampleKind.RATE)
                )

        for metric, rate_name in _ERROR_RATES.items():
            value = values[metric]
            if value is None:
                continue
            rate = self._rates.update((index, metric), value, now, width=32, uptime=uptime)
            if rate is not None:
                samples.append(Sample(element, rate_name, rate_labels, rate, now, SampleKind.RATE))
        return samples
