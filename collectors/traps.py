"""SNMP trap and inform listener (v1, v2c, v3 USM) on the running asyncio loop.

One pysnmp engine with a notification receiver, bound to one UDP port. The engine's
``AsyncioDispatcher`` is built on the running loop and the UDP endpoint is an asyncio datagram
transport on it (as in ``vigil/lab/agent.py``); nothing blocks. Every datagram is handed to
pysnmp inside a guard: malformed BER raises more than ``PyAsn1Error`` (see SNMP-NOTES), and no
datagram may stop the listener. Each one is counted in ``vigil_traps_total{version,result}``:

``accepted``       a notification was decoded, authenticated and handed to ``on_trap``
``rejected``       pysnmp dropped it: wrong community, unknown user, bad digest, not in time
                   window, not a notification PDU, or a discovery probe it answered itself
``malformed``      not one BER SEQUENCE filling the datagram, not an SNMP message (pysnmp's
                   snmpInASNParseErrs or snmpInBadVersions moved: e.g. ``30 03 02 01 01``, a
                   well-formed SEQUENCE holding only a version), or a notification without
                   snmpTrapOID.0
``handler_error``  ``on_trap`` raised (logged with its traceback)

Informs (v2c and v3) are acknowledged by pysnmp's receiver before ``on_trap`` runs. For v3
*informs* the listener is the authoritative engine: senders discover its engine ID, so a
:class:`V3User` needs nothing more. For v3 *traps* the sender is authoritative and its keys are
localised to *its* engine ID, which the listener must know in advance: list it in
``V3User.engine_ids`` (Net-SNMP: ``snmptrap -e ENGINEID`` or ``trapsess -e``; devices show it as
``snmpEngineID``). A v3 trap from an unlisted engine is rejected (usmStatsUnknownUserNames).

USM keeps one key set per (engine ID, user name). Two users of the same name with different keys
(one user "noc", another password per region) can therefore both send v3 *traps* when each lists
its own senders' engine IDs, but only one can send *informs*: those are all authenticated against
the listener's one engine ID. The first user given wins there (and on an engine ID two of them
list); the others' informs are rejected as wrong digests. The site config warns about it
(``config.site_warnings``: at startup and in ``vigil check-config``); the listener logs it.

The default port is 1162: the standard port 162 is privileged, so run as root or grant
``CAP_NET_BIND_SERVICE`` (``setcap cap_net_bind_service=+ep`` on the interpreter, or
``AmbientCapabilities=CAP_NET_BIND_SERVICE`` in the systemd unit), or redirect 162 to 1162
(``iptables -t nat -A PREROUTING -p udp --dport 162 -j REDIRECT --to-ports 1162``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto import rfc1902
from pysnmp.proto.api import v2c

from collectors.snmp import AUTH_PROTOCOLS, PRIV_PROTOCOLS, _check_usm, _format_oid, _to_python
from collectors.trap import SNMP_TRAP_ADDRESS, SNMP_TRAP_OID, SYS_UPTIME, Trap

__all__ = ["TrapListener", "V3User"]

log = logging.getLogger(__name__)

_SNMP_TRAP_COMMUNITY = "1.3.6.1.6.3.18.1.4.0"  # added by the RFC 3584 v1 -> v2 translation
_VERSIONS = {0: "1", 1: "2c", 3: "3"}  # msgVersion / mpModel -> label
_OPEN_TIMEOUT = 5.0


@dataclass(frozen=True)
class V3User:
    """A USM user allowed to send v3 traps/informs; ``engine_ids`` (hex) of its trap senders."""

    user: str
    auth_protocol: str = "none"
    auth_key: str | None = field(default=None, repr=False)
    priv_protocol: str = "none"
    priv_key: str | None = field(default=None, repr=False)
    engine_ids: tuple[str, ...] = ()
    name: str = ""  # where it comes from (a credential's name), for messages

    def __post_init__(self) -> None:
        _check_usm(self.user, self.auth_protocol, self.auth_key, self.priv_protocol, self.priv_key)
        for engine_id in self.engine_ids:
            raw = _engine_id_bytes(engine_id)
            if not 5 <= len(raw) <= 32:  # RFC 3411 SnmpEngineID: 5..32 octets
                raise ValueError(f"user {self.user!r}: engine ID {engine_id!r} must be 5-32 octets")

    @property
    def security_level(self) -> str:
        """``noAuthNoPriv``, ``authNoPriv`` or ``authPriv``."""
        if self.priv_protocol != "none":
            return "authPriv"
        return "authNoPriv" if self.auth_protocol != "none" else "noAuthNoPriv"


def _engine_id_bytes(engine_id: str) -> bytes:
    """``"0x8000..."`` or ``"8000..."`` (hex, ``:`` allowed) -> bytes."""
    text = engine_id.strip().lower().removeprefix("0x").replace(":", "")
    try:
        return bytes.fromhex(text)
    except ValueError as err:
        raise ValueError(f"engine ID {engine_id!r} is not hex") from err


def _keys(user: V3User) -> tuple[str, str | None, str, str | None]:
    return (user.auth_protocol, user.auth_key, user.priv_protocol, user.priv_key)


def _framed(datagram: bytes) -> bool:
    """Whether the datagram is exactly one definite-length BER SEQUENCE (an SNMP message is).

    Checked before pysnmp sees it: truncated datagrams and absurd length fields (which cost
    pyasn1 milliseconds each) are dropped for the price of a few byte comparisons.
    """
    if len(datagram) < 2 or datagram[0] != 0x30:
        return False
    first = datagram[1]
    if first < 0x80:
        return 2 + first == len(datagram)
    octets = first & 0x7F
    if not 1 <= octets <= 3 or len(datagram) < 2 + octets:  # a UDP payload is < 2**24 bytes
        return False
    return 2 + octets + int.from_bytes(datagram[2 : 2 + octets], "big") == len(datagram)


def _peek_version(datagram: bytes) -> str:
    """The message's SNMP version from its first BER bytes (``unknown`` if unreadable)."""
    if len(datagram) < 5 or datagram[0] != 0x30:
        return "unknown"
    n = 1
    first = datagram[n]
    n += 1 + (first & 0x7F if first & 0x80 else 0)  # skip the SEQUENCE length
    if n + 3 > len(datagram) or datagram[n] != 0x02 or datagram[n + 1] != 1:
        return "unknown"
    return _VERSIONS.get(datagram[n + 2], "unknown")


class _GuardedUdpTransport(udp.UdpTransport):
    """A UDP server transport that hands each datagram to pysnmp inside a guard."""

    def __init__(self, listener: TrapListener, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._listener = listener

    def datagram_received(self, datagram: bytes, address: Any) -> None:
        if self._callback_function is not None:
            self._listener._receive(self, address, datagram)


class _GuardedUdp6Transport(udp6.Udp6Transport):
    """The IPv6 twin of :class:`_GuardedUdpTransport`."""

    def __init__(self, listener: TrapListener, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._listener = listener

    def datagram_received(self, datagram: bytes, address: Any) -> None:
        if self._callback_function is not None:
            self._listener._receive(self, address, datagram)


class _Receiver(ntfrcv.NotificationReceiver):
    """pysnmp's receiver (it acknowledges informs), remembering who sent the PDU."""

    def __init__(self, snmp: engine.SnmpEngine, listener: TrapListener) -> None:
        super().__init__(snmp, listener._notification)
        self.current: tuple[int, str, bool] = (1, "", False)

    def process_pdu(self, snmp: engine.SnmpEngine, mp_model: int, *args: Any) -> None:
        """Note the message version, security name and PDU type, then let pysnmp handle it."""
        # pysnmp passes: securityModel, securityName, securityLevel, contextEngineId,
        # contextName, pduVersion, PDU, maxSizeResponseScopedPDU, stateReference.
        security_name, pdu = args[1], args[6]
        self.current = (int(mp_model), str(security_name), pdu.tagSet == v2c.InformRequestPDU.tagSet)
        super().process_pdu(snmp, mp_model, *args)


class TrapListener:
    """Receive SNMP traps and informs on ``host:port`` and hand each one to ``on_trap`` at once."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 1162,
        communities: Sequence[str],
        users: Sequence[V3User] = (),
        elements_by_address: Mapping[str, str] = MappingProxyType({}),
        on_trap: Callable[[Trap], None],
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
        engine_id: str | None = None,
    ) -> None:
        if not 0 <= port < 65536:
            raise ValueError(f"port {port} out of range")
        if not communities and not users:
            raise ValueError("a trap listener needs at least one community or v3 user")
        if isinstance(communities, str):
            raise TypeError("communities is a sequence of strings, not one string")
        if engine_id is not None and not 5 <= len(_engine_id_bytes(engine_id)) <= 32:
            raise ValueError("engine_id must be 5-32 octets of hex")
        self.host = host
        self.port = port
        self._communities = tuple(communities)
        self._users = tuple(users)
        self.elements_by_address = elements_by_address
        self.on_trap = on_trap
        self.clock = clock
        self._engine_id = engine_id
        self._engine: engine.SnmpEngine | None = None
        self._transport: udp.UdpTransport | None = None
        self._sock: socket.socket | None = None
        self._receiver: _Receiver | None = None
        self._outcome: str | None = None
        self._parse_errors: tuple[Any, ...] = ()  # pysnmp's snmpInASNParseErrs, snmpInBadVersions
        self._handled = 0
        self._traps = Counter(
            "vigil_traps",
            "SNMP notifications received, by SNMP version and result.",
            ["version", "result"],
            registry=registry,
        )
        self.counts: dict[str, int] = {}  # result -> datagrams, for tests and status pages

    def __repr__(self) -> str:  # never print communities or keys
        return (
            f"TrapListener(udp://{self.host}:{self.port}, {len(self._communities)} communities, "
            f"users={[u.user for u in self._users]})"
        )

    @property
    def running(self) -> bool:
        """Whether the listener is bound and receiving."""
        return self._engine is not None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port when 0 was asked for."""
        if self._sock is not None:
            host, port = self._sock.getsockname()[:2]
            return host, port
        return self.host, self.port

    async def start(self) -> None:
        """Bind the UDP port on the running loop and start receiving."""
        if self._engine is not None:
            return
        loop = asyncio.get_running_loop()
        if self._engine_id is not None:
            snmp = engine.SnmpEngine(
                snmpEngineID=rfc1902.OctetString(_engine_id_bytes(self._engine_id))
            )
        else:
            snmp = engine.SnmpEngine()
        snmp.register_transport_dispatcher(AsyncioDispatcher(loop=loop))
        ipv6 = ":" in self.host
        sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError as err:
            sock.close()
            snmp.close_dispatcher()
            hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)" if self.port < 1024 else ""
            raise OSError(
                err.errno, f"trap listener: cannot bind {self.host}:{self.port}: {err.strerror}{hint}"
            ) from err
        sock.setblocking(False)
        self._sock = sock
        transport_cls = _GuardedUdp6Transport if ipv6 else _GuardedUdpTransport
        transport = transport_cls(self, loop).open_server_mode(sock=sock)
        self._transport = transport
        try:
            config.add_transport(snmp, (udp6 if ipv6 else udp).DOMAIN_NAME, transport)
            for i, community in enumerate(self._communities):
                config.add_v1_system(snmp, f"c{i}", community, securityName=f"community#{i}")
            registered: dict[tuple[bytes | None, str], V3User] = {}
            for user in self._users:
                self._add_user(snmp, user, registered)
            self._receiver = _Receiver(snmp, self)
            mib = snmp.get_mib_builder()
            self._parse_errors = (
                *mib.import_symbols("__SNMPv2-MIB", "snmpInASNParseErrs"),
                *mib.import_symbols("__SNMPv2-MIB", "snmpInBadVersions"),
            )
            self._engine = snmp
            deadline = loop.time() + _OPEN_TIMEOUT
            while transport.transport is None:  # the endpoint is created by a task on this loop
                if loop.time() > deadline:
                    raise RuntimeError("trap listener: UDP endpoint did not open")
                await asyncio.sleep(0.001)
        except BaseException:
            self._engine = snmp
            await self.stop()
            raise
        log.info("trap listener on udp://%s:%d", *self.address)

    def _add_user(
        self, snmp: engine.SnmpEngine, user: V3User, registered: dict[tuple[bytes | None, str], V3User]
    ) -> None:
        """Register ``user`` for informs (our engine ID) and for traps from each listed engine.

        USM holds one key set per (engine ID, user name): where an earlier user of the same name
        has other keys, the earlier one wins (pysnmp would silently replace it) and it is logged.
        """
        for engine_id in (None, *user.engine_ids):
            engine_key = None if engine_id is None else _engine_id_bytes(engine_id)
            earlier = registered.setdefault((engine_key, user.user), user)
            if earlier is not user:
                if _keys(earlier) != _keys(user):
                    where = "informs" if engine_key is None else f"v3 traps from engine 0x{engine_key.hex()}"
                    log.info(
                        "trap listener: SNMPv3 user %r is given twice with different keys (%s, %s): "
                        "for %s the first one's keys are used, the other's are rejected",
                        user.user, earlier.name or "first", user.name or "second", where,
                    )
                continue
            config.add_v3_user(
                snmp,
                user.user,
                AUTH_PROTOCOLS[user.auth_protocol],
                user.auth_key,
                PRIV_PROTOCOLS[user.priv_protocol],
                user.priv_key,
                securityEngineId=(
                    None if engine_id is None else rfc1902.OctetString(_engine_id_bytes(engine_id))
                ),
            )

    async def stop(self) -> None:
        """Stop receiving and release the port (idempotent)."""
        snmp, self._engine = self._engine, None
        receiver, self._receiver = self._receiver, None
        if snmp is not None:
            if receiver is not None:
                receiver.close(snmp)
            snmp.close_dispatcher()  # closes the registered transport and its socket
        transport, self._transport = self._transport, None
        sock, self._sock = self._sock, None
        if transport is not None and transport.transport is None and sock is not None:
            sock.close()  # endpoint never opened: nobody else closes the socket
        await asyncio.sleep(0)  # let the loop finish closing the endpoint

    async def __aenter__(self) -> TrapListener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- per datagram ---------------------------------------------------------------------

    def _receive(self, transport: udp.UdpTransport, address: Any, datagram: bytes) -> None:
        """Hand one datagram to pysnmp; count what became of it; never raise."""
        callback = transport._callback_function
        if callback is None:  # closed
            return
        self._outcome = None
        try:
            if not _framed(datagram):
                raise ValueError(f"not one BER SEQUENCE ({len(datagram)} bytes)")
            parse_errors = self._count_parse_errors()
            callback(transport, address, datagram)
        except Exception as err:  # malformed BER raises more than PyAsn1Error (SNMP-NOTES)
            result = "malformed"
            log.debug("trap listener dropped a datagram from %s: %r", address, err)
            self._forget_message_state(failed=True)
        else:
            if self._outcome is None and self._count_parse_errors() != parse_errors:
                result = "malformed"  # a BER SEQUENCE, but no SNMP message pysnmp could read
            else:
                result = self._outcome or "rejected"
            self._forget_message_state(failed=False)
        version = _peek_version(datagram)
        if version == "3":
            self._compact_usm_timeline()
        self._handled += 1
        if self._handled % 256 == 0:
            self._sweep_expiry_slots()
        self._traps.labels(version, result).inc()
        self.counts[result] = self.counts.get(result, 0) + 1

    def _count_parse_errors(self) -> int:
        """pysnmp's count of datagrams that were no SNMP message (undecodable, unknown version)."""
        return sum(int(scalar.syntax) for scalar in self._parse_errors)

    def _forget_message_state(self, *, failed: bool) -> None:
        """Drop what pysnmp kept of the datagram just handled.

        pysnmp records per-message state before calling the receiver and removes it after; an
        exception in between (a v1 trap with generic-trap 99 raises KeyError) leaves it behind
        for good, and a v3 message rejected without a report, or a v3 trap, leaves a message
        processing cache entry for 60 s. A receiver handles each datagram synchronously
        (informs are answered before the call returns), so none of it is needed afterwards:
        without this, a flood of hostile v3 datagrams would hold ~400 bytes each for a minute.
        """
        snmp = self._engine
        if snmp is None:
            return
        info = getattr(snmp.message_dispatcher, "_MsgAndPduDispatcher__transportInfo", None)
        if isinstance(info, dict) and info:
            info.clear()
        if failed:
            with contextlib.suppress(KeyError):  # KeyError: it was not left behind
                snmp.observer.clear_execution_context(snmp, "rfc3412.receiveMessage:request")
        for mp in snmp.message_processing_subsystems.values():
            cache = getattr(mp, "_cache", None)
            index = getattr(cache, "_Cache__stateReferenceIndex", None)
            expiry = getattr(cache, "_Cache__expirationQueue", None)
            if not isinstance(index, dict) or not index or not isinstance(expiry, dict):
                continue
            for _info, expire_at in index.values():
                expiry.get(expire_at, {}).get("stateReference", {}).clear()
            index.clear()

    def _sweep_expiry_slots(self) -> None:
        """Drop emptied per-tick slots of pysnmp's message caches (one per 0.1 s tick for 60 s)."""
        if self._engine is None:
            return
        for mp in self._engine.message_processing_subsystems.values():
            expiry = getattr(getattr(mp, "_cache", None), "_Cache__expirationQueue", None)
            if isinstance(expiry, dict):
                for expire_at in [k for k, slot in expiry.items() if not any(slot.values())]:
                    del expiry[expire_at]  # pysnmp checks presence before deleting a slot

    def _compact_usm_timeline(self) -> None:
        """Keep pysnmp's USM time-line expiry queue from growing with replayed v3 messages.

        Every authenticated v3 message appends its sender's engine ID to the list of the tick
        300 s ahead, duplicates included, so a replay flood of one captured trap (which USM
        accepts inside its 150 s window) would hold ~400 bytes per datagram for 5 minutes.
        De-duplicating the current tick's list keeps pysnmp's semantics and bounds it.
        """
        usm = self._engine.security_models.get(3) if self._engine is not None else None
        queue = getattr(usm, "_SnmpUSMSecurityModel__timelineExpQueue", None)
        timer = getattr(usm, "_SnmpUSMSecurityModel__expirationTimer", None)
        if not isinstance(queue, dict) or not isinstance(timer, int) or self._engine is None:
            return
        dispatcher = self._engine.transport_dispatcher
        resolution = dispatcher.get_timer_resolution() if dispatcher is not None else 1.0
        key = int(timer + 300 / resolution)  # where pysnmp appended (service.py, 3.2.7)
        pending = queue.get(key)
        if isinstance(pending, list) and len(pending) > 1:
            queue[key] = list(dict.fromkeys(pending))

    def _notification(
        self,
        snmp: engine.SnmpEngine,
        state_reference: int,
        context_engine_id: Any,
        context_name: Any,
        var_binds: Sequence[tuple[Any, Any]],
        cb_ctx: Any,
    ) -> None:
        """pysnmp's callback for one authenticated notification."""
        try:
            trap = self._trap(snmp, state_reference, var_binds)
        except Exception as err:  # a notification we cannot read is malformed, not fatal
            log.debug("trap listener: unreadable notification: %r", err)  # counted; no log flood
            self._outcome = "malformed"
            return
        try:
            self.on_trap(trap)
        except Exception:
            log.exception("on_trap failed for a trap from %s", trap.source)
            self._outcome = "handler_error"
            return
        self._outcome = "accepted"

    def _trap(
        self, snmp: engine.SnmpEngine, state_reference: int, var_binds: Sequence[tuple[Any, Any]]
    ) -> Trap:
        """Build the :class:`Trap` value from pysnmp's SNMPv2-form varbinds."""
        _domain, address = snmp.message_dispatcher.get_transport_info(state_reference)
        host, port = str(address[0]), int(address[1])
        assert self._receiver is not None
        mp_model, security_name, is_inform = self._receiver.current
        uptime: int | None = None
        trap_oid = ""
        rest: list[tuple[str, object]] = []
        for oid, value in var_binds:
            name = _format_oid(tuple(oid))
            if name == SYS_UPTIME and uptime is None:
                uptime = int(value)
            elif name == SNMP_TRAP_OID and not trap_oid:
                trap_oid = _format_oid(tuple(value))
            elif name != _SNMP_TRAP_COMMUNITY:
                rest.append((name, _to_python(value)))
        if not trap_oid:
            raise ValueError(f"notification from {host} without snmpTrapOID.0")
        element = self.elements_by_address.get(host)
        if element is None:  # a v1 trap relayed by a proxy names its agent in the PDU
            agent = dict(rest).get(SNMP_TRAP_ADDRESS)
            element = self.elements_by_address.get(agent) if isinstance(agent, str) else None
        return Trap(
            address=host,
            port=port,
            element=element,
            version=_VERSIONS.get(mp_model, str(mp_model)),
            trap_oid=trap_oid,
            uptime=uptime,
            varbinds=tuple(rest),
            received_at=self.clock(),
            security_name=security_name,
            is_inform=is_inform,
        )
