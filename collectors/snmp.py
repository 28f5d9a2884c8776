"""Asynchronous SNMP v1/v2c client: GET and multi-column table walks over one shared engine.

The only module of vigil that imports pysnmp. pysnmp reports most failures as *values*
(``errorIndication``, ``errorStatus``); this module turns them into typed exceptions::

    SnmpError                 any SNMP failure; ``.target`` says which element
    ├── SnmpTimeout           no (valid) response within timeout * (retries + 1)
    ├── SnmpAuthError         the local engine rejected credentials (community/USM)
    ├── SnmpProtocolError     the agent answered with an errorStatus, or broke the protocol
    └── SnmpDecodeError       a response could not be decoded into values

A v2c agent silently drops a request with a wrong community, so a wrong community shows up
as :class:`SnmpTimeout`, not :class:`SnmpAuthError`.

Values are converted to plain Python: integers of every kind (Integer, Counter32/64, Gauge32,
TimeTicks) -> ``int``; OctetString -> ``str`` when it is printable text (UTF-8, invalid bytes
replaced), else ``bytes`` (MAC addresses and other binary strings); IpAddress and OBJECT
IDENTIFIER -> dotted ``str``; noSuchObject / noSuchInstance / endOfMibView -> ``None``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    bulk_cmd,
    get_cmd,
    next_cmd,
)
from pysnmp.proto import errind, rfc1902, rfc1905

__all__ = [
    "SnmpAuthError",
    "SnmpClient",
    "SnmpDecodeError",
    "SnmpError",
    "SnmpProtocolError",
    "SnmpTimeout",
    "Target",
]

log = logging.getLogger(__name__)

_VERSIONS = {"1": 0, "2c": 1}  # SNMP version -> pysnmp mpModel
_NO_SUCH_NAME = 2  # SNMPv1 errorStatus for "no such name" (also the v1 end of a GETNEXT walk)
_AUTH_INDICATIONS = (
    errind.UnknownCommunityName,
    errind.AuthenticationError,
    errind.AuthenticationFailure,
    errind.NoAuthentication,
    errind.WrongDigest,
    errind.UnknownUserName,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
    errind.UnsupportedAuthProtocol,
    errind.UnsupportedPrivProtocol,
    errind.NotInTimeWindow,
    errind.DecryptionError,
    errind.EncryptionError,
    errind.NoEncryption,
)
_DECODE_INDICATIONS = (errind.DeserializationError, errind.SerializationError)
# pyasn1 still raises these on some malformed inputs rather than PyAsn1Error (see SNMP-NOTES).
_DECODE_EXCEPTIONS = (PyAsn1Error, IndexError, OverflowError, UnicodeError)

_WHITESPACE = str.maketrans("", "", "\t\r\n")  # allowed in text although not "printable"

Oid = tuple[int, ...]


@dataclass(frozen=True)
class Target:
    """Where and how to poll one network element."""

    element: str
    host: str
    port: int
    community: str = "public"
    version: str = "2c"  # "1" or "2c" for now
    timeout: float = 2.0
    retries: int = 1
    max_repetitions: int = 25

    def __post_init__(self) -> None:
        if self.version not in _VERSIONS:
            raise ValueError(f"SNMP version {self.version!r} is not supported (use '1' or '2c')")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} out of range")
        if self.timeout <= 0 or self.retries < 0 or self.max_repetitions < 1:
            raise ValueError("timeout must be > 0, retries >= 0 and max_repetitions >= 1")

    def __repr__(self) -> str:  # never print the community
        return f"Target({self.element!r}, udp://{self.host}:{self.port}, v{self.version})"


class SnmpError(Exception):
    """An SNMP request to ``target`` failed."""

    def __init__(self, message: str, target: Target) -> None:
        super().__init__(f"{target.element} (udp://{target.host}:{target.port}): {message}")
        self.target = target


class SnmpTimeout(SnmpError):
    """No response within the target's timeout and retries."""


class SnmpAuthError(SnmpError):
    """The credentials were rejected."""


class SnmpProtocolError(SnmpError):
    """The agent answered with an error status, or its answer broke the protocol."""

    def __init__(self, message: str, target: Target, status: str = "", index: int = 0) -> None:
        super().__init__(message, target)
        self.status = status
        self.index = index


class SnmpDecodeError(SnmpError):
    """A response could not be decoded."""


def _parse_oid(oid: str) -> Oid:
    """``"1.3.6.1"`` or ``".1.3.6.1"`` -> ``(1, 3, 6, 1)``."""
    try:
        parts = tuple(int(p) for p in oid.strip().lstrip(".").split("."))
    except ValueError as err:
        raise ValueError(f"not a numeric OID: {oid!r}") from err
    if len(parts) < 2 or any(p < 0 for p in parts):
        raise ValueError(f"not a numeric OID: {oid!r}")
    return parts


def _format_oid(oid: Oid) -> str:
    """``(1, 3, 6, 1)`` -> ``"1.3.6.1"``."""
    return ".".join(map(str, oid))


def _octets(raw: bytes) -> str | bytes:
    """Printable text as ``str``, binary strings as ``bytes``."""
    text = raw.rstrip(b"\x00").decode("utf-8", errors="replace")
    return text if text.translate(_WHITESPACE).isprintable() else raw


def _indication_error(indication: object, target: Target) -> SnmpError:
    """The typed exception for a pysnmp ``errorIndication`` value."""
    message = str(indication) or type(indication).__name__
    if isinstance(indication, errind.RequestTimedOut):
        return SnmpTimeout(message, target)
    if isinstance(indication, _AUTH_INDICATIONS):
        return SnmpAuthError(message, target)
    if isinstance(indication, _DECODE_INDICATIONS):
        return SnmpDecodeError(message, target)
    return SnmpError(message, target)


def _to_python(value: object) -> object:
    """Convert one pysnmp/pyasn1 value into int, str, bytes or None."""
    if isinstance(value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance | rfc1905.EndOfMibView):
        return None
    if isinstance(value, univ.Integer):  # Integer32, Counter32/64, Gauge32, TimeTicks, Unsigned32
        return int(value)
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(b) for b in value.asOctets())
    if isinstance(value, rfc1902.Bits | rfc1902.Opaque):
        return value.asOctets()
    if isinstance(value, univ.OctetString):
        return _octets(value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return _format_oid(tuple(value))
    if isinstance(value, univ.Null):
        return None
    raise TypeError(f"unexpected SNMP value type {type(value).__name__}")


class SnmpClient:
    """SNMP v1/v2c client sharing ONE pysnmp engine, created lazily on the running loop."""

    def __init__(self) -> None:
        self._engine: SnmpEngine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transports: dict[tuple[str, int, float, int], UdpTransportTarget] = {}
        self._auth: dict[tuple[str, str], CommunityData] = {}
        self._context = ContextData()

    def _engine_on_loop(self) -> SnmpEngine:
        """The shared engine; rebuilt if the client is used from another event loop."""
        loop = asyncio.get_running_loop()
        if self._engine is not None and self._loop is not loop:
            log.warning("SnmpClient moved to another event loop; rebuilding its engine")
            self.close()
        if self._engine is None:
            self._engine = SnmpEngine()
            self._loop = loop
        return self._engine

    def close(self) -> None:
        """Close the engine's sockets; the client can be used again afterwards."""
        engine, self._engine, self._loop = self._engine, None, None
        self._transports.clear()
        self._auth.clear()
        if engine is not None:
            try:
                engine.close_dispatcher()
            except (PySnmpError, RuntimeError) as err:  # loop already closed
                log.debug("closing SNMP engine: %s", err)

    async def _transport(self, target: Target) -> UdpTransportTarget:
        key = (target.host, target.port, target.timeout, target.retries)
        transport = self._transports.get(key)
        if transport is None:
            try:
                transport = await UdpTransportTarget.create(
                    (target.host, target.port), timeout=target.timeout, retries=target.retries
                )
            except PySnmpError as err:
                raise SnmpError(f"cannot resolve address: {err}", target) from err
            self._transports[key] = transport
        return transport

    def _auth_data(self, target: Target) -> CommunityData:
        key = (target.community, target.version)
        auth = self._auth.get(key)
        if auth is None:
            auth = self._auth[key] = CommunityData(
                target.community, mpModel=_VERSIONS[target.version]
            )
        return auth

    async def _request(
        self, kind: str, target: Target, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> list[tuple[Oid, object]]:
        """Send one GET / GETNEXT / GETBULK; return raw (oid, pysnmp value) pairs or raise."""
        engine = self._engine_on_loop()
        transport = await self._transport(target)
        auth = self._auth_data(target)
        var_binds = [ObjectType(ObjectIdentity(oid)) for oid in oids]
        try:
            if kind == "get":
                result = await get_cmd(
                    engine, auth, transport, self._context, *var_binds, lookupMib=False
                )
            elif kind == "next":
                result = await next_cmd(
                    engine, auth, transport, self._context, *var_binds, lookupMib=False
                )
            else:
                result = await bulk_cmd(
                    engine,
                    auth,
                    transport,
                    self._context,
                    0,
                    max_repetitions,
                    *var_binds,
                    lookupMib=False,
                )
        except _DECODE_EXCEPTIONS as err:
            raise SnmpDecodeError(f"undecodable response: {err!r}", target) from err
        except PySnmpError as err:
            raise SnmpError(f"{kind} failed: {err}", target) from err
        error_indication, error_status, error_index, response = result
        if error_indication:
            raise _indication_error(error_indication, target)
        if error_status and int(error_status):
            index = int(error_index)
            status = error_status.prettyPrint()
            where = _format_oid(oids[index - 1]) if 0 < index <= len(oids) else "?"
            raise SnmpProtocolError(
                f"agent returned {status} at {where}", target, status=status, index=index
            )
        try:
            return [(tuple(oid), value) for oid, value in response]
        except _DECODE_EXCEPTIONS as err:
            raise SnmpDecodeError(f"undecodable varbind: {err!r}", target) from err

    async def get(self, target: Target, oids: Sequence[str]) -> dict[str, object]:
        """GET ``oids``; map each requested OID to its value (None when absent)."""
        wanted = [_parse_oid(oid) for oid in oids]
        values: dict[Oid, object] = {}
        pending = list(wanted)
        while pending:
            try:
                response = await self._request("get", target, pending)
            except SnmpProtocolError as err:
                # SNMPv1 fails the whole GET on one missing OID: drop it and ask again.
                if target.version == "1" and err.status == "noSuchName" and err.index > 0:
                    values[pending.pop(err.index - 1)] = None
                    continue
                raise
            if len(response) != len(pending):
                raise SnmpProtocolError(
                    f"asked {len(pending)} OIDs, got {len(response)} varbinds", target
                )
            for asked, (_oid, value) in zip(pending, response, strict=True):
                values[asked] = self._convert(value, target)
            pending = []
        return {_format_oid(oid): values.get(oid) for oid in wanted}

    async def walk_table(
        self, target: Target, columns: Sequence[str], *, max_repetitions: int | None = None
    ) -> dict[str, dict[str, object]]:
        """Walk table ``columns`` together: column OID -> {index suffix -> value}.

        v2c sends GETBULK for all unfinished columns at once and de-interleaves the answer;
        v1 sends GETNEXT. A column ends when it leaves its subtree or reaches endOfMibView.
        ``max_repetitions`` (default: the target's) lets a caller that knows the row count
        ask for rows + 1, so a small table costs one request without decoding spare rows.
        """
        repetitions = max(1, min(max_repetitions or target.max_repetitions, 1000))
        roots = [_parse_oid(column) for column in columns]
        tables: list[dict[str, object]] = [{} for _ in roots]
        cursors = list(roots)
        active = list(range(len(roots)))
        while active:
            response = await self._walk_step(target, [cursors[c] for c in active], repetitions)
            if not response:
                raise SnmpProtocolError("empty response to a table walk", target)
            finished: set[int] = set()
            width = len(active)
            for j, (oid, value) in enumerate(response):
                column = active[j % width]
                if column in finished:
                    continue
                root = roots[column]
                if (
                    value is None
                    or isinstance(value, rfc1905.EndOfMibView)
                    or oid[: len(root)] != root
                    or len(oid) == len(root)
                ):
                    finished.add(column)
                    continue
                if oid <= cursors[column]:
                    raise SnmpProtocolError(
                        f"OID not increasing: {_format_oid(oid)} after "
                        f"{_format_oid(cursors[column])}",
                        target,
                    )
                tables[column][_format_oid(oid[len(root) :])] = self._convert(value, target)
                cursors[column] = oid
            active = [c for c in active if c not in finished]
        return {column: table for column, table in zip(columns, tables, strict=True)}

    async def _walk_step(
        self, target: Target, cursors: list[Oid], repetitions: int
    ) -> list[tuple[Oid, object]]:
        """One GETBULK (v2c) or GETNEXT (v1) from ``cursors``; v1 end-of-MIB -> None values."""
        if target.version != "1":
            return await self._request("bulk", target, cursors, repetitions)
        pending = list(cursors)
        ended: set[int] = set()
        while True:
            asking = [oid for i, oid in enumerate(pending) if i not in ended]
            if not asking:
                return [(oid, None) for oid in pending]
            try:
                response = await self._request("next", target, asking)
            except SnmpProtocolError as err:
                # v1 agents answer noSuchName when a GETNEXT runs past the end of the MIB.
                if err.status == "noSuchName" and 0 < err.index <= len(asking):
                    ended.add([i for i in range(len(pending)) if i not in ended][err.index - 1])
                    continue
                raise
            answers = iter(response)
            return [(oid, None) if i in ended else next(answers) for i, oid in enumerate(pending)]

    @staticmethod
    def _convert(value: object, target: Target) -> object:
        try:
            return _to_python(value)
        except (TypeError, *_DECODE_EXCEPTIONS) as err:
            raise SnmpDecodeError(f"cannot convert {type(value).__name__}: {err}", target) from err
