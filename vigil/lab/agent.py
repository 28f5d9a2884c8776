"""Simulated SNMP agents: one UDP port per lab element, served by one pysnmp engine.

The engine runs inside the caller's asyncio loop: its ``AsyncioDispatcher`` is built on the
running loop and each ``UdpAsyncioTransport`` is an asyncio datagram endpoint on it, so nothing
calls the blocking ``open_dispatcher()``. Each port is registered under its own transport domain
(``udp.DOMAIN_NAME + (i,)``); pysnmp maps an incoming datagram's transport to that domain and
stores it in the ``rfc3412.receiveMessage:request`` execution context, which is how the one
instrumentation controller knows which element a request is for. Values are computed at request
time from the ``TrafficModel`` at ``clock()``, read once per PDU.

Besides SNMPv2-MIB system and IF-MIB ifTable/ifXTable, each agent serves what the collectors'
health profiles poll:

* HOST-RESOURCES-MIB ``hrProcessorTable`` (every element): one processor, hrDeviceIndex 768;
  ``hrProcessorFrwID`` (.1) = 0.0 and ``hrProcessorLoad`` (.2, INTEGER percent over the last
  minute) at ``1.3.6.1.2.1.25.3.3.1.2.768``.
* ENTITY-MIB ``entPhysicalTable`` and ENTITY-SENSOR-MIB ``entPhySensorTable`` (OLTs): entity 1
  is the chassis; the optic of ifIndex ``i`` is a module ``1000 + 10 i`` named "<ifName>
  transceiver", mapped to ``ifIndex.i`` by ``entAliasMappingIdentifier`` (``47.1.3.2.1.2.E.0``),
  with two sensors contained in it: ``+1`` "<ifName> Rx Power" and ``+2`` "<ifName> Tx Power".
  DOM convention (RFC 3433 has no dBm type; Cisco's extension adds dBm(14)): ``entPhySensorType``
  other(1), ``entPhySensorScale`` units(9), ``entPhySensorPrecision`` 1, ``entPhySensorValue``
  in tenths of a dBm (-203 = -20.3 dBm), ``entPhySensorOperStatus`` ok(1),
  ``entPhySensorUnitsDisplay`` "dBm". A profile should select sensors by UnitsDisplay "dBm"
  (or type 14) and read ``value x 10 ** -precision`` (scale units).
* ADSL-LINE-MIB ``adslAturPhysTable`` (DSLAMs, lines in service), indexed by ifIndex:
  ``adslAturCurrSnrMgn`` (.4, INTEGER tenths of a dB) and ``adslAturCurrAtn`` (.5, Gauge32
  tenths of a dB) at ``1.3.6.1.2.1.10.94.1.1.3.1.{4,5}.ifIndex``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from bisect import bisect_right
from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto.api import v2c
from pysnmp.smi.instrum import AbstractMibInstrumController

from config.load import resolve_secret
from config.models import SiteConfig
from vigil.lab.device import Device, dsl_lines, lab_devices, optic_ports
from vigil.lab.scenario import Fault
from vigil.lab.traffic import CPU_DEVICE_INDEX, PortCounters, TrafficModel

__all__ = ["LabNetwork"]

log = logging.getLogger(__name__)

_SYSTEM = (1, 3, 6, 1, 2, 1, 1)
_IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
_IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
_IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
_HR_PROCESSOR = (1, 3, 6, 1, 2, 1, 25, 3, 3, 1)
_ENT_PHYSICAL = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1)
_ENT_ALIAS = (1, 3, 6, 1, 2, 1, 47, 1, 3, 2, 1, 2)
_ENT_SENSOR = (1, 3, 6, 1, 2, 1, 99, 1, 1, 1)
_ADSL_ATUR_PHYS = (1, 3, 6, 1, 2, 1, 10, 94, 1, 1, 3, 1)
# entPhysicalClass values, EntitySensorDataType/Scale/Status values used here
_CHASSIS, _MODULE, _SENSOR = 3, 9, 8
_SENSOR_OTHER, _SCALE_UNITS, _SENSOR_OK = 1, 9, 1
_GAUGE32_MAX = 4294967295
_REQUEST = "rfc3412.receiveMessage:request"
# pysnmp caps a GETBULK answer at 64 varbinds; a whole OLT table row set (18 ports x 6 columns)
# fits in one answer of 256 (~10 kB, well under the UDP limit), like Net-SNMP's snmpd.
_MAX_BULK_VARBINDS = 256


class _Dyn(IntEnum):
    """Values computed at request time."""

    UPTIME = 0
    IN_OCTETS = 1
    OUT_OCTETS = 2
    IN_ERRORS = 3
    OUT_ERRORS = 4
    IN_DISCARDS = 5
    OPER_STATUS = 6
    CPU_LOAD = 7
    OPTIC_RX = 8
    OPTIC_TX = 9
    DSL_SNR = 10
    DSL_ATN = 11


_DYN_VALUE: dict[_Dyn, Callable[[PortCounters], Any]] = {
    _Dyn.IN_OCTETS: lambda c: v2c.Counter64(c.in_octets),
    _Dyn.OUT_OCTETS: lambda c: v2c.Counter64(c.out_octets),
    _Dyn.IN_ERRORS: lambda c: v2c.Counter32(c.in_errors),
    _Dyn.OUT_ERRORS: lambda c: v2c.Counter32(c.out_errors),
    _Dyn.IN_DISCARDS: lambda c: v2c.Counter32(c.in_discards),
    _Dyn.OPER_STATUS: lambda c: v2c.Integer(c.oper_status),
}


class _Table:
    """The sorted OIDs one agent serves: static values prebuilt, dynamic ones by reference."""

    __slots__ = ("element", "oids", "names", "values", "index")

    def __init__(self, device: Device) -> None:
        self.element = device.element
        rows: list[tuple[tuple[int, ...], Any]] = [
            (_SYSTEM + (1, 0), v2c.OctetString(device.sys_descr)),
            (_SYSTEM + (2, 0), v2c.ObjectIdentifier(device.sys_object_id)),
            (_SYSTEM + (3, 0), (_Dyn.UPTIME, -1)),
            (_SYSTEM + (4, 0), v2c.OctetString("NOC Guangzhou <noc-gz@lab.vigil.example>")),
            (_SYSTEM + (5, 0), v2c.OctetString(device.element)),
            (_SYSTEM + (6, 0), v2c.OctetString(device.sys_location)),
            (_IF_NUMBER, v2c.Integer(len(device.ports))),
        ]
        for pos, p in enumerate(device.ports):
            i = p.if_index
            rows += [
                (_IF_ENTRY + (1, i), v2c.Integer(i)),
                (_IF_ENTRY + (2, i), v2c.OctetString(p.descr)),
                (_IF_ENTRY + (3, i), v2c.Integer(p.if_type)),
                (_IF_ENTRY + (5, i), v2c.Gauge32(min(p.speed_bps, _GAUGE32_MAX))),
                (_IF_ENTRY + (7, i), v2c.Integer(1 if p.up else 2)),  # ifAdminStatus
                (_IF_ENTRY + (8, i), (_Dyn.OPER_STATUS, pos)),
                (_IF_ENTRY + (13, i), (_Dyn.IN_DISCARDS, pos)),
                (_IF_ENTRY + (14, i), (_Dyn.IN_ERRORS, pos)),
                (_IF_ENTRY + (20, i), (_Dyn.OUT_ERRORS, pos)),
                (_IFX_ENTRY + (1, i), v2c.OctetString(p.name)),
                (_IFX_ENTRY + (6, i), (_Dyn.IN_OCTETS, pos)),
                (_IFX_ENTRY + (10, i), (_Dyn.OUT_OCTETS, pos)),
                (_IFX_ENTRY + (15, i), v2c.Gauge32(p.speed_mbps)),
                (_IFX_ENTRY + (18, i), v2c.OctetString(p.alias)),
            ]
        rows += [
            (_HR_PROCESSOR + (1, CPU_DEVICE_INDEX), v2c.ObjectIdentifier((0, 0))),
            (_HR_PROCESSOR + (2, CPU_DEVICE_INDEX), (_Dyn.CPU_LOAD, 0)),
        ]
        rows += _entity_rows(device)
        for pos, p in enumerate(dsl_lines(device)):
            rows += [
                (_ADSL_ATUR_PHYS + (4, p.if_index), (_Dyn.DSL_SNR, pos)),
                (_ADSL_ATUR_PHYS + (5, p.if_index), (_Dyn.DSL_ATN, pos)),
            ]
        rows.sort(key=lambda row: row[0])
        self.oids = [oid for oid, _ in rows]
        self.names = [v2c.ObjectIdentifier(oid) for oid in self.oids]
        self.values = [value for _, value in rows]
        self.index = {oid: n for n, oid in enumerate(self.oids)}


def _entity_rows(device: Device) -> list[tuple[tuple[int, ...], Any]]:
    """ENTITY-MIB and ENTITY-SENSOR-MIB rows: the chassis, one module and two sensors per optic."""
    optics = optic_ports(device)
    if not optics:
        return []
    rows: list[tuple[tuple[int, ...], Any]] = [
        (_ENT_PHYSICAL + (2, 1), v2c.OctetString(device.model)),
        (_ENT_PHYSICAL + (4, 1), v2c.Integer(0)),
        (_ENT_PHYSICAL + (5, 1), v2c.Integer(_CHASSIS)),
        (_ENT_PHYSICAL + (7, 1), v2c.OctetString(device.element)),
    ]
    for pos, p in enumerate(optics):
        module = 1000 + 10 * p.if_index
        kind = "GPON class C+ SFP" if p.if_type == 250 else "10GBASE-ZR SFP+"
        rows += [
            (_ENT_PHYSICAL + (2, module), v2c.OctetString(kind)),
            (_ENT_PHYSICAL + (4, module), v2c.Integer(1)),
            (_ENT_PHYSICAL + (5, module), v2c.Integer(_MODULE)),
            (_ENT_PHYSICAL + (7, module), v2c.OctetString(f"{p.name} transceiver")),
            (_ENT_ALIAS + (module, 0), v2c.ObjectIdentifier(_IF_ENTRY + (1, p.if_index))),
        ]
        for offset, what, dyn in ((1, "Rx", _Dyn.OPTIC_RX), (2, "Tx", _Dyn.OPTIC_TX)):
            sensor = module + offset
            rows += [
                (_ENT_PHYSICAL + (2, sensor), v2c.OctetString(f"{what} power sensor")),
                (_ENT_PHYSICAL + (4, sensor), v2c.Integer(module)),
                (_ENT_PHYSICAL + (5, sensor), v2c.Integer(_SENSOR)),
                (_ENT_PHYSICAL + (7, sensor), v2c.OctetString(f"{p.name} {what} Power")),
                (_ENT_SENSOR + (1, sensor), v2c.Integer(_SENSOR_OTHER)),
                (_ENT_SENSOR + (2, sensor), v2c.Integer(_SCALE_UNITS)),
                (_ENT_SENSOR + (3, sensor), v2c.Integer(1)),
                (_ENT_SENSOR + (4, sensor), (dyn, pos)),
                (_ENT_SENSOR + (5, sensor), v2c.Integer(_SENSOR_OK)),
                (_ENT_SENSOR + (6, sensor), v2c.OctetString("dBm")),
            ]
    return rows


class _Instrumentation(AbstractMibInstrumController):
    """GET/GETNEXT (and so GETBULK) over the per-element tables, values at request time."""

    def __init__(
        self, tables: dict[tuple[int, ...], _Table], model: TrafficModel, clock: Callable[[], float]
    ) -> None:
        self._tables = tables
        self._model = model
        self._clock = clock
        self._pdu: object = None  # the PDU being answered; held so its id is not reused
        self._t = 0.0
        self.varbinds = 0  # varbinds answered, for measurements

    def _request(self, ctx: dict[str, Any]) -> tuple[_Table, float]:
        """The table for the port the request came in on, and the PDU's clock reading."""
        execution = ctx["snmpEngine"].observer.get_execution_context(_REQUEST)
        pdu = execution["pdu"]
        if pdu is not self._pdu:  # one clock reading per PDU: a GETBULK is one instant
            self._pdu, self._t = pdu, self._clock()
        return self._tables[tuple(execution["transportDomain"])], self._t

    def _value(self, table: _Table, n: int, t: float) -> Any:
        value = table.values[n]
        if type(value) is not tuple:
            return value
        kind, pos = value
        model, element = self._model, table.element
        if kind is _Dyn.UPTIME:
            return v2c.TimeTicks(model.uptime(t))
        if kind is _Dyn.CPU_LOAD:
            return v2c.Integer(round(model.cpu(element, t) * 100))
        if kind is _Dyn.OPTIC_RX:
            return v2c.Integer(round(model.optics(element, t)[pos].rx_dbm * 10))
        if kind is _Dyn.OPTIC_TX:
            return v2c.Integer(round(model.optics(element, t)[pos].tx_dbm * 10))
        if kind is _Dyn.DSL_SNR:
            return v2c.Integer(round(model.dsl(element, t)[pos].snr_margin_db * 10))
        if kind is _Dyn.DSL_ATN:
            return v2c.Gauge32(max(round(model.dsl(element, t)[pos].attenuation_db * 10), 0))
        return _DYN_VALUE[kind](model.element(element, t)[pos])

    def read_variables(self, *var_binds: tuple[Any, Any], **ctx: Any) -> list[tuple[Any, Any]]:
        """GET: the value of each OID, or noSuchInstance."""
        table, t = self._request(ctx)
        out = []
        for oid, _ in var_binds:
            n = table.index.get(tuple(oid))
            out.append(
                (oid, v2c.NoSuchInstance())
                if n is None
                else (table.names[n], self._value(table, n, t))
            )
        self.varbinds += len(out)
        return out

    def read_next_variables(self, *var_binds: tuple[Any, Any], **ctx: Any) -> list[tuple[Any, Any]]:
        """GETNEXT: the first OID after each one, or endOfMibView."""
        table, t = self._request(ctx)
        out = []
        for oid, _ in var_binds:
            n = bisect_right(table.oids, tuple(oid))
            out.append(
                (oid, v2c.EndOfMibView())
                if n == len(table.oids)
                else (table.names[n], self._value(table, n, t))
            )
        self.varbinds += len(out)
        return out


class _GuardedUdpTransport(udp.UdpTransport):
    """A UDP server transport that drops, counts and logs datagrams pysnmp fails on."""

    dropped = 0

    def datagram_received(self, datagram: bytes, address: Any) -> None:
        self.loop.call_soon(self._receive, address, datagram)

    def _receive(self, address: Any, datagram: bytes) -> None:
        if self._callback_function is None:  # closed while the datagram was queued
            return
        try:
            self._callback_function(self, address, datagram)  # type: ignore[misc]
        except Exception as err:  # malformed BER raises more than PyAsn1Error (SNMP-NOTES)
            self.dropped += 1
            log.debug("lab agent dropped a datagram from %s: %r", address, err)


class LabNetwork:
    """The lab site's simulated SNMP agents (v1/v2c GET, GETNEXT, GETBULK) on one loop."""

    def __init__(
        self,
        site: SiteConfig,
        clock: Callable[[], float],
        scenario: Iterable[Fault],
        host: str = "127.0.0.1",
        *,
        seed: int = 7,
        boot: float | None = None,
    ) -> None:
        self.site = site
        self.host = host
        self.clock = clock
        self.devices = lab_devices(site)
        self.boot = clock() if boot is None else boot
        self._scenario = scenario
        self.model = TrafficModel(self.devices, scenario, boot=self.boot, seed=seed)
        self._engine: engine.SnmpEngine | None = None
        self._transports: list[tuple[_GuardedUdpTransport, socket.socket]] = []
        self._instrum: _Instrumentation | None = None

    @property
    def running(self) -> bool:
        """Whether the agents are serving."""
        return self._engine is not None

    @property
    def varbinds_served(self) -> int:
        """Varbinds answered since start."""
        return self._instrum.varbinds if self._instrum else 0

    @property
    def scenario(self) -> list[Fault]:
        """The scheduled faults, in start order."""
        return sorted(self._scenario, key=lambda f: f.start)

    @property
    def works(self) -> list[Any]:
        """The maintenance windows announced with the scenario (``PlannedWork``), if any."""
        return list(getattr(self._scenario, "works", []))

    def describe(self) -> list[str]:
        """Banner lines: one per agent, then the scenario's timeline when it has one."""
        lines = []
        for el in self.site.elements:
            dev = self.devices[el.name]
            lines.append(
                f"{el.name:<16} udp://{self.host}:{el.port:<5} {el.role:<11} "
                f"{len(dev.ports):>2} ports  {dev.model}"
            )
        describe = getattr(self._scenario, "describe", None)
        return lines + (describe() if callable(describe) else [])

    def addresses(self) -> dict[str, tuple[str, int]]:
        """Element name -> (host, port) it is served on."""
        return {el.name: (self.host, el.port) for el in self.site.elements}

    async def start(self) -> None:
        """Bind one UDP port per element on the running loop and start answering."""
        if self._engine is not None:
            return
        loop = asyncio.get_running_loop()
        snmp = engine.SnmpEngine()
        snmp.register_transport_dispatcher(AsyncioDispatcher(loop=loop))
        tables: dict[tuple[int, ...], _Table] = {}
        try:
            for i, el in enumerate(self.site.elements, start=1):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    sock.bind((self.host, el.port))  # fails here, not later, if the port is taken
                except OSError as err:
                    sock.close()
                    raise OSError(
                        err.errno,
                        f"lab agent {el.name}: cannot bind {self.host}:{el.port}: {err.strerror}",
                    ) from err
                sock.setblocking(False)
                transport = _GuardedUdpTransport(loop=loop).open_server_mode(sock=sock)
                self._transports.append((transport, sock))
                domain = udp.DOMAIN_NAME + (i,)
                config.add_transport(snmp, domain, transport)
                tables[domain] = _Table(self.devices[el.name])
            for n, (name, cred) in enumerate(sorted(self.site.snmp.credentials.items())):
                if cred.version == "3":
                    log.warning("lab agents serve v1/v2c only; credential %s is ignored", name)
                    continue
                secret = resolve_secret(cred.community, cred.community_env, cred.community_file)
                community = secret.get_secret_value() if secret else "public"
                config.add_v1_system(snmp, f"lab-{n}", community, securityName=f"lab-{name}")
                for model in (1, 2):
                    config.add_vacm_user(snmp, model, f"lab-{name}", "noAuthNoPriv", (1, 3, 6))
            self._instrum = _Instrumentation(tables, self.model, self.clock)
            snmp_context = context.SnmpContext(snmp)
            snmp_context.unregister_context_name(v2c.OctetString(""))
            snmp_context.register_context_name(v2c.OctetString(""), self._instrum)
            cmdrsp.GetCommandResponder(snmp, snmp_context)
            cmdrsp.NextCommandResponder(snmp, snmp_context)
            bulk = cmdrsp.BulkCommandResponder(snmp, snmp_context)
            bulk.max_varbinds = _MAX_BULK_VARBINDS
            self._engine = snmp
            # The datagram endpoints are created by tasks on this loop: wait until they exist.
            for _ in range(1000):
                if all(t.transport is not None for t, _ in self._transports):
                    break
                await asyncio.sleep(0.001)
            else:
                raise RuntimeError("lab agents: UDP endpoints did not open")
        except BaseException:
            self._engine = snmp
            self.close()
            raise
        log.info(
            "lab network: %d agents on %s:%d-%d",
            len(self._transports),
            self.host,
            min(el.port for el in self.site.elements),
            max(el.port for el in self.site.elements),
        )

    def close(self) -> None:
        """Stop answering and release the ports (idempotent)."""
        snmp, self._engine = self._engine, None
        if snmp is not None:
            snmp.close_dispatcher()  # closes every registered transport and its socket
        for transport, sock in self._transports:
            if transport.transport is None:  # endpoint never opened: nobody else closes it
                sock.close()
        self._transports = []

    async def stop(self) -> None:
        """Stop answering, and let the loop finish closing the sockets."""
        self.close()
        await asyncio.sleep(0)

    async def __aenter__(self) -> LabNetwork:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
