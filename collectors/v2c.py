"""Fast SNMP v1/v2c client: one shared asyncio UDP socket and the lean codec of ``collectors.ber``.

Same interface, value conversions and exceptions as :class:`collectors.snmp.SnmpClient` (pysnmp),
at a fraction of its CPU cost; pysnmp stays the engine for SNMPv3, traps and the lab agents.

One UDP socket per address family serves every target. Requests are matched to responses by
request-id in a dict of pending futures; a datagram is dropped (and counted in
:attr:`FastSnmpClient.stats`) when it is malformed, answers no pending request, comes from another
address or port than the request went to, or carries another community, version or PDU type.
A spoofed or garbled datagram therefore never resolves a request: the request keeps waiting for
the real answer, retransmits after the target's timeout, and fails with :class:`SnmpTimeout` --
or :class:`SnmpDecodeError` when the only answers that came were undecodable. Memory is bounded:
no queues, at most ``max_in_flight`` pending requests, bounded caches.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass, fields

from collectors import ber
from collectors.snmp import (
    SnmpDecodeError,
    SnmpError,
    SnmpProtocolError,
    SnmpTimeout,
    Target,
)

__all__ = ["FastClientStats", "FastSnmpClient"]

log = logging.getLogger(__name__)

_VERSIONS = {"1": ber.VERSION_1, "2c": ber.VERSION_2C}
_NO_SUCH_NAME = 2  # SNMPv1 errorStatus for "no such name" (also the v1 end of a GETNEXT walk)
_ERROR_STATUS = (  # RFC 3416 error-status names, as pysnmp prints them
    "noError",
    "tooBig",
    "noSuchName",
    "badValue",
    "readOnly",
    "genErr",
    "noAccess",
    "wrongType",
    "wrongLength",
    "wrongEncoding",
    "wrongValue",
    "noCreation",
    "inconsistentValue",
    "resourceUnavailable",
    "commitFailed",
    "undoFailed",
    "authorizationError",
    "notWritable",
    "inconsistentName",
)
_WHITESPACE = str.maketrans("", "", "\t\r\n")  # allowed in text although not "printable"
_CACHE_MAX = 65536  # entries per cache (OIDs, index suffixes, host names): a hostile agent can't grow it


@dataclass(slots=True)
class FastClientStats:
    """Counters of one client (monotonic; read them for metrics or tests)."""

    requests: int = 0
    retransmits: int = 0
    timeouts: int = 0
    responses: int = 0
    dropped_malformed: int = 0
    dropped_unknown_request: int = 0
    dropped_wrong_source: int = 0
    dropped_wrong_community: int = 0
    dropped_wrong_version: int = 0
    dropped_not_response: int = 0
    dropped_mismatched: int = 0
    internal_errors: int = 0

    @property
    def dropped(self) -> int:
        """All datagrams dropped, whatever the reason."""
        return sum(getattr(self, f.name) for f in fields(self) if f.name.startswith("dropped_"))


class _Pending:
    """One request waiting for its response."""

    __slots__ = (
        "addr",
        "community",
        "decode_error",
        "future",
        "mismatch",
        "oids",
        "packet",
        "pdu_type",
        "retries_left",
        "target",
        "timer",
        "transport",
        "version",
    )

    def __init__(
        self,
        future: asyncio.Future[tuple[ber.Header, list[ber.VarBind]]],
        addr: tuple[str, int],
        community: bytes,
        version: int,
        packet: bytes,
        target: Target,
        transport: asyncio.DatagramTransport,
        pdu_type: int,
        oids: Sequence[bytes],
    ) -> None:
        self.future = future
        self.pdu_type = pdu_type
        self.oids = oids
        self.mismatch = ""
        self.transport = transport
        self.addr = addr
        self.community = community
        self.version = version
        self.packet = packet
        self.target = target
        self.retries_left = target.retries
        self.timer: asyncio.TimerHandle | None = None
        self.decode_error: ber.BerError | None = None


class _Protocol(asyncio.DatagramProtocol):
    """Hands every datagram of the shared socket to its client."""

    def __init__(self, client: FastSnmpClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            self.client._on_datagram(data, addr)
        except Exception:  # a bug here must never close the shared socket
            self.client.stats.internal_errors += 1
            log.exception("SNMP datagram from %s could not be handled", addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("SNMP socket error: %s", exc)


def _octets(raw: bytes) -> str | bytes:
    """Printable text as ``str``, binary strings as ``bytes`` (as ``SnmpClient`` converts)."""
    if raw.isascii():  # fast path for the usual interface names and descriptions
        text = raw.rstrip(b"\x00").decode("ascii")
    else:
        text = raw.rstrip(b"\x00").decode("utf-8", errors="replace")
    return text if text.translate(_WHITESPACE).isprintable() else raw


def _convert(value: object) -> object:
    """A decoded BER value -> the Python value ``SnmpClient`` returns."""
    cls = value.__class__
    if cls is int or cls is str or value is None:
        return value
    if cls is bytes:
        return _octets(value)  # type: ignore[arg-type]
    if cls is ber.Opaque:
        return bytes(value)  # type: ignore[arg-type]
    return None  # noSuchObject / noSuchInstance / endOfMibView


def _index_of(suffix: bytes, cache: dict[bytes, tuple[str, tuple[int, ...]]]) -> tuple[str, tuple[int, ...]]:
    """Index suffix octets -> (``"1.2.3"``, arcs); cached: the same rows come back every poll."""
    found = cache.get(suffix)
    if found is None:
        arcs = ber.decode_subids(suffix)
        found = (".".join(map(str, arcs)), arcs)
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[suffix] = found
    return found


def _after(name: bytes, asked: bytes) -> bool:
    """Whether OID ``name`` comes after ``asked`` in the MIB's (arc by arc) order."""
    if name.isascii() and asked.isascii():  # one octet per arc: byte order is arc order
        return name > asked
    return ber.decode_subids(name) > ber.decode_subids(asked)


def _mismatch(entry: _Pending, varbinds: list[ber.VarBind]) -> str:
    """Why ``varbinds`` cannot answer the request of ``entry`` ('' when they can).

    A GET is answered with the very names asked for; a GETNEXT/GETBULK's first row with names
    after them (or endOfMibView). Anything else is a stale, misrouted or forged answer.
    """
    oids = entry.oids
    if entry.pdu_type == ber.GET_REQUEST:
        if len(varbinds) != len(oids) or any(name != asked for (name, _), asked in zip(varbinds, oids, strict=True)):
            return "the response names other OIDs than the GET asked for"
        return ""
    if entry.pdu_type == ber.GET_NEXT_REQUEST and len(varbinds) != len(oids):
        return f"asked {len(oids)} OIDs, got {len(varbinds)} varbinds"
    for (name, value), asked in zip(varbinds, oids, strict=False):  # rows after the 1st
        if value is not ber.END_OF_MIB_VIEW and not _after(name, asked):
            return f"{ber.oid_to_str(name)} does not follow {ber.oid_to_str(asked)}"
    return ""


class FastSnmpClient:
    """SNMP v1/v2c client on one shared UDP socket per address family, created on the running loop.

    A drop-in for :class:`collectors.snmp.SnmpClient` on v1/v2c targets: ``get``,
    ``walk_table`` and ``close`` behave the same and raise the same exceptions.
    """

    def __init__(self, *, max_in_flight: int = 4096, receive_buffer: int = 4 << 20) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        self.max_in_flight = max_in_flight
        self.receive_buffer = receive_buffer
        self.stats = FastClientStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transports: dict[int, asyncio.DatagramTransport] = {}
        self._opening: dict[int, asyncio.Future[asyncio.DatagramTransport]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._pending: dict[int, _Pending] = {}
        self._addresses: dict[str, tuple[int, str]] = {}
        self._oids: dict[str, bytes] = {}
        self._suffixes: dict[bytes, tuple[str, tuple[int, ...]]] = {}
        self._ids = random.Random()  # request-ids need unpredictability, not crypto strength

    # -- sockets -------------------------------------------------------------------------------

    def local_address(self, family: int = socket.AF_INET) -> tuple[str, int] | None:
        """The (host, port) the socket of ``family`` is bound to, if it is open."""
        transport = self._transports.get(family)
        if transport is None:
            return None
        host, port = transport.get_extra_info("sockname")[:2]
        return host, port

    def close(self) -> None:
        """Close the sockets and fail pending requests; the client can be used again afterwards."""
        transports, self._transports = self._transports, {}
        pending, self._pending = self._pending, {}
        self._opening.clear()
        self._loop = None
        self._slots = None
        for entry in pending.values():
            if entry.timer is not None:
                entry.timer.cancel()
            if not entry.future.done():
                entry.future.set_exception(SnmpError("client closed", entry.target))
        for transport in transports.values():
            transport.close()

    def _check_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                log.warning("FastSnmpClient moved to another event loop; reopening its sockets")
                self.close()
            self._loop = loop
            self._slots = asyncio.Semaphore(self.max_in_flight)
        return loop

    async def _transport(
        self, loop: asyncio.AbstractEventLoop, family: int, target: Target
    ) -> asyncio.DatagramTransport:
        """The shared socket of ``family``, opened once even under concurrent first requests."""
        transport = self._transports.get(family)
        if transport is not None:
            return transport
        opening = self._opening.get(family)
        if opening is None:
            opening = self._opening[family] = loop.create_future()
            try:
                local = ("0.0.0.0", 0) if family == socket.AF_INET else ("::", 0)
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), local_addr=local, family=family
                )
                sock = transport.get_extra_info("socket")
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
                except OSError as err:  # the kernel caps it; a smaller buffer still works
                    log.debug("SO_RCVBUF %d refused: %s", self.receive_buffer, err)
            except OSError as err:
                self._opening.pop(family, None)
                error = SnmpError(f"cannot open a UDP socket: {err}", target)
                opening.set_exception(error)
                opening.exception()  # retrieved: waiters get their own copy below
                raise error from err
            self._transports[family] = transport
            self._opening.pop(family, None)
            opening.set_result(transport)
            return transport
        try:
            return await asyncio.shield(opening)
        except SnmpError as err:
            raise SnmpError(str(err.args[0]), target) from err

    async def _address(self, loop: asyncio.AbstractEventLoop, target: Target) -> tuple[int, str]:
        """(family, numeric address) of the target's host, resolved once."""
        if target.version not in _VERSIONS:
            raise SnmpError(f"SNMP v{target.version} is not handled by FastSnmpClient (use SnmpClient)", target)
        found = self._addresses.get(target.host)
        if found is not None:
            return found
        try:
            ip = ipaddress.ip_address(target.host)
            found = (socket.AF_INET if ip.version == 4 else socket.AF_INET6, str(ip))
        except ValueError:
            try:
                infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_DGRAM)
            except OSError as err:
                raise SnmpError(f"cannot resolve address: {err}", target) from err
            if not infos:
                raise SnmpError("cannot resolve address: no result", target) from None
            family, _, _, _, sockaddr = infos[0]
            found = (family, str(sockaddr[0]))
        if len(self._addresses) >= _CACHE_MAX:
            self._addresses.clear()
        self._addresses[target.host] = found
        return found

    def _oid(self, text: str) -> bytes:
        """Numeric OID text -> BER content octets (cached)."""
        oid = self._oids.get(text)
        if oid is None:
            try:
                oid = ber.str_to_oid(text)
            except ber.BerError as err:
                raise ValueError(f"not a numeric OID: {text!r}") from err
            if len(self._oids) >= _CACHE_MAX:
                self._oids.clear()
            self._oids[text] = oid
        return oid

    # -- requests ------------------------------------------------------------------------------

    def _request_id(self) -> int:
        """A random unused request-id: an old answer with a few flipped bits, or a blind
        spoofer, hits a request in flight with odds of ~ in-flight / 2^31 (sequential ids
        would make near misses likely)."""
        request_id = self._ids.getrandbits(31)
        while not request_id or request_id in self._pending:
            request_id = self._ids.getrandbits(31)
        return request_id

    async def _request(
        self, pdu_type: int, target: Target, oids: Sequence[bytes], max_repetitions: int = 0
    ) -> list[ber.VarBind]:
        """Send one GET / GETNEXT / GETBULK; return the response's varbinds or raise."""
        loop = self._check_loop()
        family, host = await self._address(loop, target)
        transport = await self._transport(loop, family, target)
        slots = self._slots
        assert slots is not None
        async with slots:
            request_id = self._request_id()
            community = target.community.encode()
            version = _VERSIONS[target.version]  # checked by _address() already
            packet = ber.encode_request(version, community, pdu_type, request_id, oids, 0, max_repetitions)
            future: asyncio.Future[tuple[ber.Header, list[ber.VarBind]]] = loop.create_future()
            entry = _Pending(
                future,
                (host, target.port),
                community,
                version,
                packet,
                target,
                transport,
                pdu_type,
                oids,
            )
            self._pending[request_id] = entry
            self.stats.requests += 1
            transport.sendto(packet, entry.addr)
            entry.timer = loop.call_later(target.timeout, self._expire, request_id)
            try:
                header, varbinds = await future
            finally:
                if self._pending.get(request_id) is entry:  # cancelled: forget it
                    del self._pending[request_id]
                    if entry.timer is not None:
                        entry.timer.cancel()
        status = header.error_status
        if status:
            index = header.error_index
            name = _ERROR_STATUS[status] if 0 <= status < len(_ERROR_STATUS) else str(status)
            where = ber.oid_to_str(oids[index - 1]) if 0 < index <= len(oids) else "?"
            raise SnmpProtocolError(f"agent returned {name} at {where}", target, status=name, index=index)
        return varbinds

    def _expire(self, request_id: int) -> None:
        """Timer callback: retransmit, or fail the request once its retries are spent."""
        entry = self._pending.get(request_id)
        if entry is None:
            return
        if entry.retries_left > 0:
            entry.retries_left -= 1
            self.stats.retransmits += 1
            if not entry.transport.is_closing():
                entry.transport.sendto(entry.packet, entry.addr)
            assert self._loop is not None
            entry.timer = self._loop.call_later(entry.target.timeout, self._expire, request_id)
            return
        del self._pending[request_id]
        self.stats.timeouts += 1
        if entry.future.done():
            return
        if entry.decode_error is not None:
            error: SnmpError = SnmpDecodeError(f"undecodable response: {entry.decode_error}", entry.target)
        elif entry.mismatch:
            error = SnmpProtocolError(f"no valid answer: {entry.mismatch}", entry.target)
        else:
            target = entry.target
            error = SnmpTimeout(
                f"no SNMP response within {target.timeout:g} s x {target.retries + 1} tries",
                target,
            )
        entry.future.set_exception(error)

    def _on_datagram(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        """Match one datagram to its pending request, or drop and count it."""
        stats = self.stats
        try:
            header = ber.decode_header(data)
        except ber.BerError:
            stats.dropped_malformed += 1
            return
        entry = self._pending.get(header.request_id)
        if entry is None:
            stats.dropped_unknown_request += 1
            return
        if addr[0] != entry.addr[0] or addr[1] != entry.addr[1]:
            stats.dropped_wrong_source += 1
            return
        if header.pdu_type != ber.RESPONSE:
            stats.dropped_not_response += 1
            return
        if header.version != entry.version:
            stats.dropped_wrong_version += 1
            return
        if header.community != entry.community:
            stats.dropped_wrong_community += 1
            return
        try:
            varbinds = ber.decode_varbinds(data, header)
        except ber.BerError as err:
            entry.decode_error = err  # keep waiting: the real answer may still come
            stats.dropped_malformed += 1
            return
        if not header.error_status:
            mismatch = _mismatch(entry, varbinds)
            if mismatch:
                entry.mismatch = mismatch  # a forged or stale answer: keep waiting
                stats.dropped_mismatched += 1
                return
        del self._pending[header.request_id]
        if entry.timer is not None:
            entry.timer.cancel()
        stats.responses += 1
        if not entry.future.done():
            entry.future.set_result((header, varbinds))

    # -- the SnmpClient interface --------------------------------------------------------------

    async def get(self, target: Target, oids: Sequence[str]) -> dict[str, object]:
        """GET ``oids``; map each requested OID to its value (None when absent)."""
        wanted = [self._oid(oid) for oid in oids]
        values: dict[bytes, object] = {}
        pending = list(wanted)
        while pending:
            try:
                response = await self._request(ber.GET_REQUEST, target, pending)
            except SnmpProtocolError as err:
                # SNMPv1 fails the whole GET on one missing OID: drop it and ask again.
                if target.version == "1" and err.status == "noSuchName" and err.index > 0:
                    values[pending.pop(err.index - 1)] = None
                    continue
                raise
            if len(response) != len(pending):
                raise SnmpProtocolError(f"asked {len(pending)} OIDs, got {len(response)} varbinds", target)
            for asked, (_oid, value) in zip(pending, response, strict=True):
                values[asked] = _convert(value)
            pending = []
        return {text: values.get(oid) for text, oid in zip(oids, wanted, strict=True)}

    async def walk_table(
        self, target: Target, columns: Sequence[str], *, max_repetitions: int | None = None
    ) -> dict[str, dict[str, object]]:
        """Walk table ``columns`` together: column OID -> {index suffix -> value}.

        v2c sends GETBULK for all unfinished columns at once and de-interleaves the answer;
        v1 sends GETNEXT. A column ends when it leaves its subtree or reaches endOfMibView.
        """
        repetitions = max(1, min(max_repetitions or target.max_repetitions, 1000))
        roots = [self._oid(column) for column in columns]
        tables: list[dict[str, object]] = [{} for _ in roots]
        cursors = list(roots)  # full OID octets of each column's last instance
        active = list(range(len(roots)))
        suffixes = self._suffixes
        end = ber.END_OF_MIB_VIEW
        while active:
            response = await self._walk_step(target, [cursors[c] for c in active], repetitions)
            if not response:
                raise SnmpProtocolError("empty response to a table walk", target)
            width = len(active)
            finished: list[int] = []
            for position, column in enumerate(active):
                root = roots[column]
                size = len(root)
                table = tables[column]
                cursor = cursors[column]
                last = _index_of(cursor[size:], suffixes)[1] if len(cursor) > size else ()
                for oid, value in response[position::width]:
                    if value is end or len(oid) <= size or not oid.startswith(root):
                        finished.append(column)
                        break
                    suffix = oid[size:]
                    index = suffixes.get(suffix)
                    if index is None:
                        index = _index_of(suffix, suffixes)
                    if index[1] <= last:
                        raise SnmpProtocolError(
                            f"OID not increasing: {ber.oid_to_str(oid)} after {ber.oid_to_str(cursor)}",
                            target,
                        )
                    table[index[0]] = value if value.__class__ is int else _convert(value)
                    cursor = oid
                    last = index[1]
                cursors[column] = cursor
            if finished:
                active = [c for c in active if c not in finished]
        return {column: table for column, table in zip(columns, tables, strict=True)}

    async def _walk_step(self, target: Target, cursors: list[bytes], repetitions: int) -> list[ber.VarBind]:
        """One GETBULK (v2c) or GETNEXT (v1) from ``cursors``; v1 end-of-MIB -> endOfMibView."""
        if target.version != "1":
            return await self._request(ber.GET_BULK_REQUEST, target, cursors, repetitions)
        pending = list(cursors)
        ended: set[int] = set()
        while True:
            asking = [oid for i, oid in enumerate(pending) if i not in ended]
            if not asking:
                return [(oid, ber.END_OF_MIB_VIEW) for oid in pending]
            try:
                response = await self._request(ber.GET_NEXT_REQUEST, target, asking)
            except SnmpProtocolError as err:
                # v1 agents answer noSuchName when a GETNEXT runs past the end of the MIB.
                if err.status == "noSuchName" and 0 < err.index <= len(asking):
                    ended.add([i for i in range(len(pending)) if i not in ended][err.index - 1])
                    continue
                raise
            if len(response) != len(asking):
                raise SnmpProtocolError(f"asked {len(asking)} OIDs, got {len(response)} varbinds", target)
            answers = iter(response)
            return [(oid, ber.END_OF_MIB_VIEW) if i in ended else next(answers) for i, oid in enumerate(pending)]
