"""Asynchronous SNMP v1/v2c/v3 client: GET and multi-column table walks over shared engines.

The only module of vigil that imports pysnmp. pysnmp reports most failures as *values*
(``errorIndication``, ``errorStatus``); this module turns them into typed exceptions::

    SnmpError                 any SNMP failure; ``.target`` says which element
    ├── SnmpTimeout           no (valid) response within timeout * (retries + 1)
    ├── SnmpAuthError         the local engine rejected credentials (community/USM)
    ├── SnmpProtocolError     the agent answered with an errorStatus, or broke the protocol
    └── SnmpDecodeError       a response could not be decoded into values

A v2c agent silently drops a request with a wrong community, so a wrong community shows up
as :class:`SnmpTimeout`, not :class:`SnmpAuthError`.

SNMPv3 (USM): a wrong auth key or an unknown user is reported by the agent (usmStatsWrongDigests,
usmStatsUnknownUserNames) and raises :class:`SnmpAuthError` after one round trip. A wrong priv
key is silently dropped by the agent (it cannot decrypt the PDU); after such a timeout the client
probes the agent once at authNoPriv, and if it answers, raises :class:`SnmpAuthError` ("wrong
priv key") instead of :class:`SnmpTimeout`. A notInTimeWindow (the agent rebooted: engine boots
went up, or its time jumped) is re-synchronised by pysnmp's discovery and the request is retried
once more here, so a reboot is never reported as the element being down.

One pysnmp engine serves every v1/v2c target and every v3 user; a v3 user *name* that appears
in two credentials with different keys gets a second engine, since pysnmp keys its USM table by
user name (and the cloned, engine-localised rows would otherwise keep the first keys).

Values are converted to plain Python: integers of every kind (Integer, Counter32/64, Gauge32,
TimeTicks) -> ``int``; OctetString -> ``str`` when it is printable text (UTF-8, invalid bytes
replaced), else ``bytes`` (MAC addresses and other binary strings); IpAddress and OBJECT
IDENTIFIER -> dotted ``str``; noSuchObject / noSuchInstance / endOfMibView -> ``None``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.entity import config as _usm
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    next_cmd,
)
from pysnmp.proto import errind, rfc1902, rfc1905

__all__ = [
    "AUTH_PROTOCOLS",
    "PRIV_PROTOCOLS",
    "SnmpAuthError",
    "SnmpClient",
    "SnmpDecodeError",
    "SnmpError",
    "SnmpProtocolError",
    "SnmpTimeout",
    "Target",
]

log = logging.getLogger(__name__)

_VERSIONS = {"1": 0, "2c": 1, "3": 3}  # SNMP version -> pysnmp mpModel
# USM protocol names (config's vocabulary) -> pysnmp protocol identifiers.
AUTH_PROTOCOLS: Mapping[str, tuple[int, ...]] = {
    "none": tuple(_usm.USM_AUTH_NONE),
    "md5": tuple(_usm.USM_AUTH_HMAC96_MD5),
    "sha": tuple(_usm.USM_AUTH_HMAC96_SHA),
    "sha224": tuple(_usm.USM_AUTH_HMAC128_SHA224),
    "sha256": tuple(_usm.USM_AUTH_HMAC192_SHA256),
    "sha384": tuple(_usm.USM_AUTH_HMAC256_SHA384),
    "sha512": tuple(_usm.USM_AUTH_HMAC384_SHA512),
}
# "aes192"/"aes256" extend a short key as draft-blumenthal-aes-usm-04 says (Net-SNMP's AES-192/256);
# "aes192c"/"aes256c" use the Reeder 3DES-style extension that Cisco and others ship.
PRIV_PROTOCOLS: Mapping[str, tuple[int, ...]] = {
    "none": tuple(_usm.USM_PRIV_NONE),
    "des": tuple(_usm.USM_PRIV_CBC56_DES),
    "aes": tuple(_usm.USM_PRIV_CFB128_AES),
    "aes192": tuple(_usm.USM_PRIV_CFB192_AES_BLUMENTHAL),
    "aes256": tuple(_usm.USM_PRIV_CFB256_AES_BLUMENTHAL),
    "aes192c": tuple(_usm.USM_PRIV_CFB192_AES),
    "aes256c": tuple(_usm.USM_PRIV_CFB256_AES),
}
_MIN_KEY_LENGTH = 8  # RFC 3414 11.2: pass phrases shorter than 8 octets are refused by agents
_SNMP_ENGINE_ID = (1, 3, 6, 1, 6, 3, 10, 2, 1, 1, 0)  # snmpEngineID.0, readable in any view
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
    errind.NotInTimeWindow,  # only after the re-synchronisation retry failed too
    errind.UnknownEngineID,
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
    """Where and how to poll one network element.

    v1/v2c use ``community``; v3 uses ``user`` with ``auth_protocol``/``auth_key`` and
    ``priv_protocol``/``priv_key`` (names as in :data:`AUTH_PROTOCOLS`, :data:`PRIV_PROTOCOLS`)
    and the SNMPv3 ``context`` name. Secrets never appear in ``repr``.
    """

    element: str
    host: str
    port: int
    community: str = field(default="public", repr=False)
    version: str = "2c"  # "1", "2c" or "3"
    timeout: float = 2.0
    retries: int = 1
    max_repetitions: int = 25
    user: str | None = None
    auth_protocol: str = "none"
    auth_key: str | None = field(default=None, repr=False)
    priv_protocol: str = "none"
    priv_key: str | None = field(default=None, repr=False)
    context: str = ""

    def __post_init__(self) -> None:
        if self.version not in _VERSIONS:
            raise ValueError(f"SNMP version {self.version!r} is not supported (use '1', '2c' or '3')")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} out of range")
        if self.timeout <= 0 or self.retries < 0 or self.max_repetitions < 1:
            raise ValueError("timeout must be > 0, retries >= 0 and max_repetitions >= 1")
        if self.version == "3":
            _check_usm(self.user, self.auth_protocol, self.auth_key, self.priv_protocol, self.priv_key)

    @property
    def security_level(self) -> str:
        """``noAuthNoPriv``, ``authNoPriv`` or ``authPriv`` (v3); ``community`` for v1/v2c."""
        if self.version != "3":
            return "community"
        if self.priv_protocol != "none":
            return "authPriv"
        return "authNoPriv" if self.auth_protocol != "none" else "noAuthNoPriv"

    def __repr__(self) -> str:  # never print the community or keys
        usm = f" user={self.user!r} {self.security_level}" if self.version == "3" else ""
        return f"Target({self.element!r}, udp://{self.host}:{self.port}, v{self.version}{usm})"


def _check_usm(
    user: str | None, auth_protocol: str, auth_key: str | None, priv_protocol: str, priv_key: str | None
) -> None:
    """Raise ValueError unless the USM settings are complete and consistent (secrets not shown)."""
    if not user:
        raise ValueError("SNMP v3 needs a user")
    if auth_protocol not in AUTH_PROTOCOLS:
        raise ValueError(f"unknown auth_protocol {auth_protocol!r} (use {', '.join(AUTH_PROTOCOLS)})")
    if priv_protocol not in PRIV_PROTOCOLS:
        raise ValueError(f"unknown priv_protocol {priv_protocol!r} (use {', '.join(PRIV_PROTOCOLS)})")
    if (auth_protocol != "none") != (auth_key is not None):
        raise ValueError(f"user {user!r}: auth_protocol and auth_key go together")
    if (priv_protocol != "none") != (priv_key is not None):
        raise ValueError(f"user {user!r}: priv_protocol and priv_key go together")
    if priv_protocol != "none" and auth_protocol == "none":
        raise ValueError(f"user {user!r}: privacy needs authentication (authPriv)")
    for name, key in (("auth_key", auth_key), ("priv_key", priv_key)):
        if key is not None and len(key) < _MIN_KEY_LENGTH:
            raise ValueError(f"user {user!r}: {name} must be at least {_MIN_KEY_LENGTH} characters")


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


def _forget_peer(engine: SnmpEngine, address: object) -> bool:
    """Drop pysnmp's cached engine ID and time line for the agent at ``address``.

    pysnmp 7 caches a peer's engine ID per transport address for 300 s and does not refresh it
    when the agent answers with another one (after a reboot that lost its engine ID), so every
    request times out until expiry. There is no public API to drop the entry: this reaches
    into the v3 message processing model and USM, and degrades to a no-op if they change.
    """
    mp = engine.message_processing_subsystems.get(3)
    cache = getattr(mp, "_SnmpV3MessageProcessingModel__engineIdCache", None)
    expiry = getattr(mp, "_SnmpV3MessageProcessingModel__engineIdCacheExpQueue", None)
    usm = engine.security_models.get(3)
    timeline = getattr(usm, "_SnmpUSMSecurityModel__timeline", None)
    if not isinstance(cache, dict) or not isinstance(expiry, dict):
        return False
    wanted = tuple(address)[:2]  # type: ignore[arg-type]
    keys = [key for key in cache if tuple(key[1])[:2] == wanted]
    for key in keys:
        peer = cache.pop(key)
        if isinstance(timeline, dict):
            timeline.pop(peer.get("securityEngineId"), None)
        for queued in expiry.values():  # its expiry would otherwise `del` a missing key
            while key in queued:
                queued.remove(key)
    return bool(keys)


def _to_python(value: object) -> object:
    """Convert one pysnmp/pyasn1 value into int, str, bytes or None."""
    if isinstance(value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance | rfc1905.EndOfMibView):
        return None
    if isinstance(value, univ.Integer):  # Integer32, Counter32/64, Gauge32, TimeTicks, Unsigned32
        return int(value)
    if isinstance(value, rfc1902.IpAddress) or (
        isinstance(value, univ.OctetString) and value.tagSet == rfc1902.IpAddress.tagSet
    ):  # the second form: SNMPv1's NetworkAddress (rfc1155.IpAddress) in translated traps
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


_UsmKey = tuple[str, str, str | None, str, str | None]  # user, auth proto, auth key, priv proto, priv key
_Auth = CommunityData | UsmUserData


class SnmpClient:
    """SNMP v1/v2c/v3 client sharing pysnmp engines, created lazily on the running loop.

    Engine 0 serves every v1/v2c target and the first key set of every v3 user name; another
    engine is added only for a user name reused with different keys.
    """

    def __init__(self) -> None:
        self._engines: list[SnmpEngine] = []
        self._engine_users: list[dict[str, _UsmKey]] = []  # per engine: user name -> its keys
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transports: dict[tuple[str, int, float, int], UdpTransportTarget] = {}
        self._auth: dict[object, tuple[int, _Auth]] = {}  # credential -> (engine index, auth data)
        self._contexts: dict[str, ContextData] = {"": ContextData()}

    @property
    def _engine(self) -> SnmpEngine | None:
        """The main engine (v1/v2c and most v3 users), if created."""
        return self._engines[0] if self._engines else None

    def _engine_on_loop(self, index: int = 0) -> SnmpEngine:
        """Engine ``index`` (created as needed); all are rebuilt if the loop changed."""
        loop = asyncio.get_running_loop()
        if self._engines and self._loop is not loop:
            log.warning("SnmpClient moved to another event loop; rebuilding its engines")
            self.close()
        self._loop = loop
        while len(self._engines) <= index:
            self._engines.append(SnmpEngine())
            self._engine_users.append({})
        return self._engines[index]

    def close(self) -> None:
        """Close the engines' sockets; the client can be used again afterwards."""
        engines, self._engines, self._loop = self._engines, [], None
        self._engine_users = []
        self._transports.clear()
        self._auth.clear()
        for engine in engines:
            try:
                engine.close_dispatcher()
            except (PySnmpError, RuntimeError) as err:  # loop already closed
                log.debug("closing SNMP engine: %s", err)

    async def _transport(
        self, target: Target, timeout: float | None = None, retries: int | None = None
    ) -> UdpTransportTarget:
        timeout = target.timeout if timeout is None else timeout
        retries = target.retries if retries is None else retries
        key = (target.host, target.port, timeout, retries)
        transport = self._transports.get(key)
        if transport is None:
            try:
                transport = await UdpTransportTarget.create(
                    (target.host, target.port), timeout=timeout, retries=retries
                )
            except PySnmpError as err:
                raise SnmpError(f"cannot resolve address: {err}", target) from err
            self._transports[key] = transport
        return transport

    def _auth_data(self, target: Target) -> tuple[SnmpEngine, _Auth]:
        """The engine and the (cached) pysnmp credential object for ``target``."""
        self._engine_on_loop(0)  # first: a loop change resets the caches below
        if target.version != "3":
            key: object = (target.community, target.version)
            cached = self._auth.get(key)
            if cached is None:
                auth = CommunityData(target.community, mpModel=_VERSIONS[target.version])
                cached = self._auth[key] = (0, auth)
            return self._engine_on_loop(0), cached[1]
        assert target.user is not None  # checked by Target
        usm: _UsmKey = (
            target.user,
            target.auth_protocol,
            target.auth_key,
            target.priv_protocol,
            target.priv_key,
        )
        cached = self._auth.get(usm)
        if cached is None:
            index = 0
            while self._engine_users[index].get(target.user, usm) != usm:
                index += 1
                if index == len(self._engines):
                    break
            self._engine_on_loop(index)
            self._engine_users[index][target.user] = usm
            auth = UsmUserData(
                target.user,
                authKey=target.auth_key,
                privKey=target.priv_key,
                authProtocol=AUTH_PROTOCOLS[target.auth_protocol],
                privProtocol=PRIV_PROTOCOLS[target.priv_protocol],
            )
            cached = self._auth[usm] = (index, auth)
        return self._engine_on_loop(cached[0]), cached[1]

    def _context(self, target: Target) -> ContextData:
        context = self._contexts.get(target.context)
        if context is None:
            context = self._contexts[target.context] = ContextData(contextName=target.context)
        return context

    async def _send(
        self,
        kind: str,
        target: Target,
        engine: SnmpEngine,
        auth: _Auth,
        transport: UdpTransportTarget,
        oids: Sequence[Oid],
        max_repetitions: int,
    ) -> tuple[object, object, object, list[object]]:
        """One pysnmp command; library exceptions become typed errors."""
        context = self._context(target)
        var_binds = [ObjectType(ObjectIdentity(oid)) for oid in oids]
        try:
            if kind == "get":
                return await get_cmd(engine, auth, transport, context, *var_binds, lookupMib=False)
            if kind == "next":
                return await next_cmd(engine, auth, transport, context, *var_binds, lookupMib=False)
            return await bulk_cmd(
                engine, auth, transport, context, 0, max_repetitions, *var_binds, lookupMib=False
            )
        except _DECODE_EXCEPTIONS as err:
            raise SnmpDecodeError(f"undecodable response: {err!r}", target) from err
        except PySnmpError as err:
            raise SnmpError(f"{kind} failed: {err}", target) from err

    async def _request(
        self, kind: str, target: Target, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> list[tuple[Oid, object]]:
        """Send one GET / GETNEXT / GETBULK; return raw (oid, pysnmp value) pairs or raise."""
        engine, auth = self._auth_data(target)
        transport = await self._transport(target)
        result = await self._send(kind, target, engine, auth, transport, oids, max_repetitions)
        error_indication, error_status, error_index, response = result
        if target.version == "3" and self._may_have_rebooted(error_indication, engine, transport):
            # The agent may have rebooted: a new engine ID (pysnmp keeps sending the cached one
            # and never hears back) or new boots/time. pysnmp's cache is dropped, so this one
            # retry starts with discovery again and a reboot is not reported as "down".
            log.info(
                "SNMPv3 engine of %r re-discovered after %s; retrying",
                target,
                type(error_indication).__name__,
            )
            retry = await self._transport(target, timeout=min(target.timeout, 1.0), retries=0)
            result = await self._send(kind, target, engine, auth, retry, oids, max_repetitions)
            error_indication, error_status, error_index, response = result
        if error_indication:
            if (
                isinstance(error_indication, errind.RequestTimedOut)
                and target.security_level == "authPriv"
                and await self._answers_without_privacy(target, engine, auth)
            ):
                raise SnmpAuthError(
                    "decryption failed at the agent: wrong priv_key or priv_protocol "
                    "(it answers authNoPriv requests but dropped the encrypted one)",
                    target,
                )
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

    @staticmethod
    def _may_have_rebooted(
        error_indication: object, engine: SnmpEngine, transport: UdpTransportTarget
    ) -> bool:
        """Whether a v3 failure may be a reboot; if so pysnmp's view of the agent is dropped."""
        if isinstance(error_indication, errind.NotInTimeWindow | errind.UnknownEngineID):
            _forget_peer(engine, transport.transport_address)
            return True
        # A timeout after an earlier discovery: the engine ID may have changed.
        return isinstance(error_indication, errind.RequestTimedOut) and _forget_peer(
            engine, transport.transport_address
        )

    async def _answers_without_privacy(
        self, target: Target, engine: SnmpEngine, auth: _Auth
    ) -> bool:
        """Whether the agent answers an authNoPriv GET (so an authPriv timeout is a bad priv key)."""
        probe = copy.copy(auth)
        probe.security_level = "authNoPriv"  # same USM row and keys, no encryption
        transport = await self._transport(target, timeout=min(target.timeout, 1.0), retries=0)
        try:
            error_indication, *_ = await self._send(
                "get", target, engine, probe, transport, [_SNMP_ENGINE_ID], 0
            )
        except SnmpError:
            return False
        # Any answer (a value, authorizationError, or a report) proves the agent is alive.
        return not isinstance(error_indication, errind.RequestTimedOut)

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
