"""Minimal, strict BER codec for SNMP v1/v2c messages (the fast path next to pysnmp).

Only what a poller needs: GetRequest, GetNextRequest, GetBulkRequest and Response PDUs carrying
INTEGER, OCTET STRING, NULL, OBJECT IDENTIFIER, IpAddress, Counter32, Gauge32 (Unsigned32),
TimeTicks, Opaque, Counter64 and the v2c exceptions noSuchObject / noSuchInstance / endOfMibView.
SNMPv3, traps and everything else stay with pysnmp (``collectors.snmp``).

OIDs travel as their BER *content octets* (``bytes``): a column's OID is a byte prefix of every
instance below it, so a table walk tests membership with ``bytes.startswith`` and never builds
tuples of arcs on the hot path.

Decoded values are plain Python: ``int`` for every integer type, ``bytes`` for OCTET STRING,
:class:`Opaque` (a ``bytes``) for Opaque, a dotted ``str`` for IpAddress and OBJECT IDENTIFIER,
``None`` for NULL, and the singletons :data:`NO_SUCH_OBJECT`, :data:`NO_SUCH_INSTANCE`,
:data:`END_OF_MIB_VIEW`. Unsigned types are read as unsigned even when a (buggy) agent omitted the
leading zero octet, then range-checked against their width.

Every malformed input raises :class:`BerError` (a ``ValueError``) -- never ``IndexError`` or
``OverflowError`` -- and no claimed length is trusted before it is checked against the data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

__all__ = [
    "COUNTER32",
    "COUNTER64",
    "END_OF_MIB_VIEW",
    "GAUGE32",
    "GET_BULK_REQUEST",
    "GET_NEXT_REQUEST",
    "GET_REQUEST",
    "INTEGER",
    "IP_ADDRESS",
    "NO_SUCH_INSTANCE",
    "NO_SUCH_OBJECT",
    "NULL",
    "OBJECT_IDENTIFIER",
    "OCTET_STRING",
    "OPAQUE",
    "RESPONSE",
    "TIMETICKS",
    "BerError",
    "Header",
    "Message",
    "Opaque",
    "SnmpException",
    "decode_header",
    "decode_message",
    "decode_subids",
    "decode_varbinds",
    "decode_oid",
    "encode_message",
    "encode_oid",
    "encode_request",
    "oid_to_str",
    "str_to_oid",
]

# Universal and SNMP application tags.
INTEGER: Final = 0x02
OCTET_STRING: Final = 0x04
NULL: Final = 0x05
OBJECT_IDENTIFIER: Final = 0x06
SEQUENCE: Final = 0x30
IP_ADDRESS: Final = 0x40
COUNTER32: Final = 0x41
GAUGE32: Final = 0x42  # also Unsigned32
TIMETICKS: Final = 0x43
OPAQUE: Final = 0x44
COUNTER64: Final = 0x46
_NO_SUCH_OBJECT_TAG: Final = 0x80
_NO_SUCH_INSTANCE_TAG: Final = 0x81
_END_OF_MIB_VIEW_TAG: Final = 0x82

# PDU tags (context-specific, constructed).
GET_REQUEST: Final = 0xA0
GET_NEXT_REQUEST: Final = 0xA1
RESPONSE: Final = 0xA2
GET_BULK_REQUEST: Final = 0xA5
_PDU_TYPES: Final = frozenset({GET_REQUEST, GET_NEXT_REQUEST, RESPONSE, GET_BULK_REQUEST})

VERSION_1: Final = 0
VERSION_2C: Final = 1

_MAX_LENGTH_OCTETS: Final = 4  # a UDP datagram is < 64 KiB: longer length fields are hostile
_MAX_OID_ARCS: Final = 128  # RFC 2578: at most 128 sub-identifiers
_MAX_OID_OCTETS: Final = 5 * _MAX_OID_ARCS
_MAX_ARC: Final = 0xFFFFFFFF  # sub-identifiers are 32-bit unsigned
# A sub-identifier that starts with 0x80 (non-minimal) or needs more than 32 bits (5 octets with
# a first octet above 0x8f, or 6+ octets), found at C speed instead of a per-octet loop.
_BAD_SUBID: Final = re.compile(rb"(?:^|(?<=[\x00-\x7f]))(?:\x80|[\x90-\xff][\x80-\xff]{3}|[\x80-\xff]{5})")
# Unsigned application types: tag -> (max content octets, exclusive upper bound).
_UNSIGNED: Final[dict[int, tuple[int, int]]] = {
    COUNTER32: (5, 1 << 32),
    GAUGE32: (5, 1 << 32),
    TIMETICKS: (5, 1 << 32),
    COUNTER64: (9, 1 << 64),
}


class BerError(ValueError):
    """Malformed or unsupported BER input; ``offset`` is where decoding stopped (-1: unknown)."""

    def __init__(self, message: str, offset: int = -1) -> None:
        super().__init__(f"{message} (at offset {offset})" if offset >= 0 else message)
        self.offset = offset


class Opaque(bytes):
    """The content of an SNMP Opaque value (kept as raw bytes, not decoded further)."""

    __slots__ = ()


class SnmpException:
    """One of the v2c varbind exceptions: noSuchObject, noSuchInstance, endOfMibView."""

    __slots__ = ("name", "tag")

    def __init__(self, name: str, tag: int) -> None:
        self.name = name
        self.tag = tag

    def __repr__(self) -> str:
        return self.name


NO_SUCH_OBJECT: Final = SnmpException("noSuchObject", _NO_SUCH_OBJECT_TAG)
NO_SUCH_INSTANCE: Final = SnmpException("noSuchInstance", _NO_SUCH_INSTANCE_TAG)
END_OF_MIB_VIEW: Final = SnmpException("endOfMibView", _END_OF_MIB_VIEW_TAG)
_EXCEPTIONS: Final = {e.tag: e for e in (NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW)}

Value = object  # int | bytes | Opaque | str | None | SnmpException
VarBind = tuple[bytes, Value]  # (OID content octets, value)


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded SNMP v1/v2c message.

    For a GetBulkRequest ``error_status`` and ``error_index`` hold non-repeaters and
    max-repetitions, as on the wire.
    """

    version: int
    community: bytes
    pdu_type: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: list[VarBind]


# ---------------------------------------------------------------------------------------------
# OIDs


def encode_oid(arcs: Sequence[int]) -> bytes:
    """Content octets of the OBJECT IDENTIFIER ``arcs`` (at least two arcs)."""
    if len(arcs) < 2 or len(arcs) > _MAX_OID_ARCS:
        raise BerError(f"an OID needs 2..{_MAX_OID_ARCS} arcs, got {len(arcs)}")
    first, second = arcs[0], arcs[1]
    if first not in (0, 1, 2) or second < 0 or (first < 2 and second > 39):
        raise BerError(f"invalid first arcs {first}.{second}")
    out = bytearray()
    for arc in (first * 40 + second, *arcs[2:]):
        if arc < 0 or arc > _MAX_ARC:
            raise BerError(f"OID arc {arc} out of range")
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def decode_subids(content: bytes) -> tuple[int, ...]:
    """Sub-identifiers of OID content octets (no first-arc split); strict about the encoding."""
    if content.isascii():  # every sub-identifier is one octet: the common case, no loop
        subids = tuple(content)
    else:
        if content[-1] & 0x80:
            raise BerError("truncated OBJECT IDENTIFIER")
        arcs: list[int] = []
        value = 0
        start = True
        for octet in content:
            if start and octet == 0x80:
                raise BerError("non-minimal OBJECT IDENTIFIER sub-identifier")
            value = (value << 7) | (octet & 0x7F)
            if value > _MAX_ARC:
                raise BerError("OBJECT IDENTIFIER sub-identifier exceeds 32 bits")
            if octet & 0x80:
                start = False
            else:
                arcs.append(value)
                value = 0
                start = True
        subids = tuple(arcs)
    if len(subids) >= _MAX_OID_ARCS:
        raise BerError(f"OBJECT IDENTIFIER longer than {_MAX_OID_ARCS} arcs")
    return subids


def decode_oid(content: bytes) -> tuple[int, ...]:
    """Arcs of OID content octets; rejects empty, truncated and non-minimal encodings."""
    if not content:
        raise BerError("empty OBJECT IDENTIFIER")
    subids = decode_subids(content)
    head = subids[0]
    if head < 40:
        return (0, *subids)
    if head < 80:
        return (1, head - 40, *subids[1:])
    return (2, head - 80, *subids[1:])


def oid_to_str(content: bytes) -> str:
    """OID content octets -> ``"1.3.6.1..."``."""
    return ".".join(map(str, decode_oid(content)))


def str_to_oid(text: str) -> bytes:
    """``"1.3.6.1..."`` (leading dot allowed) -> OID content octets."""
    try:
        arcs = [int(part) for part in text.strip().lstrip(".").split(".")]
    except ValueError as err:
        raise BerError(f"not a numeric OID: {text!r}") from err
    return encode_oid(arcs)


# ---------------------------------------------------------------------------------------------
# Encoding


def _length(n: int) -> bytes:
    """BER definite length octets."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82, n >> 8, n & 0xFF))
    raise BerError(f"length {n} too large for an SNMP message")


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def _signed(value: int) -> bytes:
    """Minimal two's-complement content octets of ``value``."""
    size = (value if value >= 0 else ~value).bit_length() // 8 + 1
    return value.to_bytes(size, "big", signed=True)


def _unsigned(value: int) -> bytes:
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def _integer(value: int) -> bytes:
    if not -(1 << 31) <= value < (1 << 31):
        raise BerError(f"INTEGER {value} outside Integer32")
    return _tlv(INTEGER, _signed(value))


def _encode_value(tag: int, value: object) -> bytes:
    """TLV of one typed varbind value (see :func:`encode_message`)."""
    if tag == INTEGER and isinstance(value, int):
        return _integer(value)
    if tag in _UNSIGNED and isinstance(value, int):
        if not 0 <= value < _UNSIGNED[tag][1]:
            raise BerError(f"value {value} out of range for tag 0x{tag:02x}")
        return _tlv(tag, _unsigned(value))
    if tag in (OCTET_STRING, OPAQUE) and isinstance(value, bytes | bytearray):
        return _tlv(tag, bytes(value))
    if tag == IP_ADDRESS and isinstance(value, str):
        try:
            octets = bytes(int(part) for part in value.split("."))
        except ValueError as err:
            raise BerError(f"not an IPv4 address: {value!r}") from err
        if len(octets) != 4:
            raise BerError(f"not an IPv4 address: {value!r}")
        return _tlv(IP_ADDRESS, octets)
    if tag == OBJECT_IDENTIFIER and isinstance(value, str):
        return _tlv(OBJECT_IDENTIFIER, str_to_oid(value))
    if tag == NULL and value is None:
        return b"\x05\x00"
    if isinstance(value, SnmpException) and tag == value.tag:
        return bytes((tag, 0))
    raise BerError(f"cannot encode {type(value).__name__} with tag 0x{tag:02x}")


_NULL_VARBINDS: dict[bytes, bytes] = {}
_NULL_VARBINDS_MAX = 8192  # bounded cache of pre-encoded "OID = NULL" request varbinds


def _null_varbind(oid: bytes) -> bytes:
    """Pre-encoded ``SEQUENCE { oid, NULL }`` of a request (cached)."""
    encoded = _NULL_VARBINDS.get(oid)
    if encoded is None:
        if not oid:
            raise BerError("empty OBJECT IDENTIFIER")
        encoded = _tlv(SEQUENCE, _tlv(OBJECT_IDENTIFIER, oid) + b"\x05\x00")
        if len(_NULL_VARBINDS) >= _NULL_VARBINDS_MAX:
            _NULL_VARBINDS.clear()
        _NULL_VARBINDS[oid] = encoded
    return encoded


def _wrap(version: int, community: bytes, pdu_type: int, pdu_body: bytes) -> bytes:
    if version not in (VERSION_1, VERSION_2C):
        raise BerError(f"SNMP version {version} is not v1 (0) or v2c (1)")
    if pdu_type not in _PDU_TYPES:
        raise BerError(f"unsupported PDU type 0x{pdu_type:02x}")
    if pdu_type == GET_BULK_REQUEST and version == VERSION_1:
        raise BerError("GetBulkRequest does not exist in SNMPv1")
    body = bytes((INTEGER, 1, version)) + _tlv(OCTET_STRING, community) + _tlv(pdu_type, pdu_body)
    return _tlv(SEQUENCE, body)


def encode_request(
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    oids: Sequence[bytes],
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """A Get/GetNext/GetBulk request for OID content octets ``oids`` (values NULL)."""
    if pdu_type == RESPONSE:
        raise BerError("encode_request builds requests, not responses")
    if not 0 <= non_repeaters < (1 << 31) or not 0 <= max_repetitions < (1 << 31):
        raise BerError("non-repeaters and max-repetitions must be 0..2^31-1")
    varbinds = b"".join([_null_varbind(oid) for oid in oids])
    pdu = _integer(request_id) + _integer(non_repeaters) + _integer(max_repetitions) + _tlv(SEQUENCE, varbinds)
    return _wrap(version, community, pdu_type, pdu)


def encode_message(
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    error_status: int,
    error_index: int,
    varbinds: Sequence[tuple[bytes, int, object]],
) -> bytes:
    """Any supported message; varbinds are ``(oid content, tag, value)`` with typed values.

    Values per tag: INTEGER/Counter32/Gauge32/TimeTicks/Counter64 ``int``; OCTET STRING and
    Opaque ``bytes``; IpAddress and OBJECT IDENTIFIER dotted ``str``; NULL ``None``; the
    exception tags their :class:`SnmpException` singleton.
    """
    encoded = b"".join(
        [_tlv(SEQUENCE, _tlv(OBJECT_IDENTIFIER, oid) + _encode_value(tag, v)) for oid, tag, v in varbinds]
    )
    pdu = _integer(request_id) + _integer(error_status) + _integer(error_index) + _tlv(SEQUENCE, encoded)
    return _wrap(version, community, pdu_type, pdu)


# ---------------------------------------------------------------------------------------------
# Decoding


def _read_length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(length, position after the length octets); the content must fit before ``end``."""
    if pos >= end:
        raise BerError("truncated: length missing", pos)
    first = data[pos]
    pos += 1
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise BerError("indefinite length is not allowed", pos - 1)
        if count > _MAX_LENGTH_OCTETS or pos + count > end:
            raise BerError("bad long-form length", pos - 1)
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise BerError(f"length {length} runs past the end of its container", pos)
    return length, pos


def _expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """Check the tag at ``pos``; return (content start, content end)."""
    if pos >= end:
        raise BerError(f"truncated: {what} missing", pos)
    if data[pos] != tag:
        raise BerError(f"expected {what} (tag 0x{tag:02x}), got tag 0x{data[pos]:02x}", pos)
    length, start = _read_length(data, pos + 1, end)
    return start, start + length


def _read_integer(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """(INTEGER value, position after it); Integer32 range only."""
    start, stop = _expect(data, pos, end, INTEGER, what)
    if not 1 <= stop - start <= 4:
        raise BerError(f"{what}: INTEGER of {stop - start} octets", pos)
    return int.from_bytes(data[start:stop], "big", signed=True), stop


class Header(NamedTuple):
    """The fixed part of a message; the varbinds start at ``body_start`` and run to the end."""

    version: int
    community: bytes
    pdu_type: int
    request_id: int
    error_status: int
    error_index: int
    body_start: int


def decode_header(data: bytes) -> Header:
    """Decode and check the framing of a message up to its varbind list (cheap: no varbinds)."""
    try:
        return _decode_header(data)
    except BerError:
        raise
    except (IndexError, ValueError, OverflowError, TypeError) as err:  # belt and braces
        raise BerError(f"malformed message: {err}") from None


def decode_varbinds(data: bytes, header: Header) -> list[VarBind]:
    """Decode the varbind list of a message whose ``header`` came from :func:`decode_header`."""
    try:
        return _varbinds(data, header.body_start, len(data))
    except BerError:
        raise
    except (IndexError, ValueError, OverflowError, TypeError) as err:
        raise BerError(f"malformed varbind: {err}") from None


def decode_message(data: bytes) -> Message:
    """Decode one SNMP v1/v2c message; any malformation raises :class:`BerError`."""
    if not isinstance(data, bytes):
        data = bytes(data)
    header = decode_header(data)
    return Message(*header[:6], decode_varbinds(data, header))


def _decode_header(data: bytes) -> Header:
    if not isinstance(data, bytes):
        raise BerError(f"expected bytes, got {type(data).__name__}")
    size = len(data)
    start, end = _expect(data, 0, size, SEQUENCE, "message SEQUENCE")
    if end != size:
        raise BerError(f"{size - end} trailing octets after the message", end)
    version, pos = _read_integer(data, start, end, "version")
    if version not in (VERSION_1, VERSION_2C):
        raise BerError(f"SNMP version {version} is not v1/v2c", start)
    c_start, c_end = _expect(data, pos, end, OCTET_STRING, "community")
    community = data[c_start:c_end]
    pos = c_end
    if pos >= end:
        raise BerError("truncated: PDU missing", pos)
    pdu_type = data[pos]
    if pdu_type not in _PDU_TYPES:
        raise BerError(f"unsupported PDU type 0x{pdu_type:02x}", pos)
    p_start, p_end = _expect(data, pos, end, pdu_type, "PDU")
    if p_end != end:
        raise BerError("trailing octets after the PDU", p_end)
    request_id, pos = _read_integer(data, p_start, p_end, "request-id")
    status, pos = _read_integer(data, pos, p_end, "error-status")
    index, pos = _read_integer(data, pos, p_end, "error-index")
    v_start, v_end = _expect(data, pos, p_end, SEQUENCE, "varbind list")
    if v_end != p_end:
        raise BerError("trailing octets after the varbind list", v_end)
    return Header(version, community, pdu_type, request_id, status, index, v_start)


def _varbinds(data: bytes, pos: int, end: int) -> list[VarBind]:
    """Decode the varbinds in ``data[pos:end]``.

    The hot loop of the poller: short-form lengths inlined, tags as literals (0x30 SEQUENCE,
    0x06 OID, 0x46 Counter64, 0x41-0x43 Counter32/Gauge32/TimeTicks, 0x02 INTEGER, 0x04 OCTET
    STRING). Out-of-range indexing can only happen on truncated input; the callers turn that
    ``IndexError`` into :class:`BerError`.
    """
    out: list[VarBind] = []
    append = out.append
    from_bytes = int.from_bytes
    while pos < end:
        if data[pos] != 0x30:
            raise BerError("expected varbind SEQUENCE", pos)
        length = data[pos + 1]
        if length < 0x80:
            pos += 2
            vb_end = pos + length
            if vb_end > end:
                raise BerError("varbind runs past the varbind list", pos)
        else:
            length, pos = _read_length(data, pos + 1, end)
            vb_end = pos + length
        # name: OBJECT IDENTIFIER
        if data[pos] != 0x06:
            raise BerError("varbind name is not an OBJECT IDENTIFIER", pos)
        length = data[pos + 1]
        if length < 0x80:
            oid_end = pos + 2 + length
            if not length or oid_end >= vb_end:  # >=: the value's tag must follow
                raise BerError("bad varbind name length", pos)
            oid = data[pos + 2 : oid_end]
            if not oid.isascii() and (oid[-1] & 0x80 or _BAD_SUBID.search(oid)):
                raise BerError("malformed OBJECT IDENTIFIER", pos)
        else:
            length, pos = _read_length(data, pos + 1, vb_end)
            oid_end = pos + length
            if length > _MAX_OID_OCTETS or oid_end >= vb_end:
                raise BerError("bad varbind name length", pos)
            oid = data[pos:oid_end]
            decode_oid(oid)  # validates and counts the arcs (rare: long names)
        # value
        tag = data[oid_end]
        length = data[oid_end + 1]
        if length < 0x80:
            pos = oid_end + 2
        else:
            length, pos = _read_length(data, oid_end + 1, vb_end)
        if pos + length != vb_end:
            raise BerError("varbind value length does not match the varbind", pos)
        if tag == 0x46:  # Counter64
            if not 0 < length <= 9:
                raise BerError(f"Counter64 of {length} octets", pos)
            value: Value = from_bytes(data[pos:vb_end], "big")
            if value >> 64:
                raise BerError("Counter64 exceeds 64 bits", pos)
        elif 0x41 <= tag <= 0x43:  # Counter32, Gauge32 / Unsigned32, TimeTicks
            if length == 1:  # zero error counters, small gauges: no slice, no call
                value = data[pos]
            else:
                if not 1 < length <= 5:
                    raise BerError(f"unsigned value of {length} octets", pos)
                value = from_bytes(data[pos:vb_end], "big")
                if value >> 32:
                    raise BerError("unsigned value exceeds 32 bits", pos)
        elif tag == 0x02:
            if length == 1:  # enumerations such as ifOperStatus
                value = data[pos]
                if value > 0x7F:
                    value -= 0x100
            else:
                if not 1 < length <= 4:
                    raise BerError(f"INTEGER of {length} octets", pos)
                value = from_bytes(data[pos:vb_end], "big", signed=True)
        elif tag == 0x04:
            value = data[pos:vb_end]
        elif tag == 0x05 or 0x80 <= tag <= 0x82:  # NULL, noSuchObject/Instance, endOfMibView
            if length:
                raise BerError("NULL/exception value with content", pos)
            value = _EXCEPTIONS.get(tag)
        elif tag == 0x06:
            value = oid_to_str(data[pos:vb_end])
        elif tag == 0x40:
            if length != 4:
                raise BerError(f"IpAddress of {length} octets", pos)
            value = "%d.%d.%d.%d" % tuple(data[pos:vb_end])  # noqa: UP031 - fastest here
        elif tag == 0x44:
            value = Opaque(data[pos:vb_end])
        else:
            raise BerError(f"unsupported value tag 0x{tag:02x}", oid_end)
        append((oid, value))
        pos = vb_end
    return out
