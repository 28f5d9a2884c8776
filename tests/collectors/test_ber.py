"""The lean SNMP BER codec: known encodings, every value type, strictness, and a seeded fuzz."""

from __future__ import annotations

import contextlib
import random

import pytest

from collectors import ber

SYS_UPTIME = ber.str_to_oid("1.3.6.1.2.1.1.3.0")
IF_DESCR_1 = ber.str_to_oid("1.3.6.1.2.1.2.2.1.2.1")

# snmpget -v2c -c public HOST 1.3.6.1.2.1.1.3.0 with request-id 1, byte for byte.
GET_SYS_UPTIME = bytes.fromhex(
    "30260201010406" + b"public".hex() + "a019020101020100020100300e300c06082b060102010103000500"
)


def test_get_request_matches_the_known_encoding() -> None:
    packet = ber.encode_request(ber.VERSION_2C, b"public", ber.GET_REQUEST, 1, [SYS_UPTIME])
    assert packet == GET_SYS_UPTIME


@pytest.mark.parametrize(
    ("version", "pdu_type", "non_repeaters", "max_repetitions"),
    [
        (ber.VERSION_1, ber.GET_REQUEST, 0, 0),
        (ber.VERSION_1, ber.GET_NEXT_REQUEST, 0, 0),
        (ber.VERSION_2C, ber.GET_NEXT_REQUEST, 0, 0),
        (ber.VERSION_2C, ber.GET_BULK_REQUEST, 1, 25),
        (ber.VERSION_2C, ber.GET_BULK_REQUEST, 0, 1000),
    ],
)
def test_requests_round_trip(version: int, pdu_type: int, non_repeaters: int, max_repetitions: int) -> None:
    oids = [SYS_UPTIME, IF_DESCR_1, ber.str_to_oid("1.3.6.1.4.1.2011.5.25.31.1.1.1.1.5.16842753")]
    packet = ber.encode_request(version, b"s3cr\xe9t", pdu_type, -123456, oids, non_repeaters, max_repetitions)
    message = ber.decode_message(packet)
    assert message == ber.Message(
        version,
        b"s3cr\xe9t",
        pdu_type,
        -123456,
        non_repeaters,
        max_repetitions,
        [(oid, None) for oid in oids],
    )


def test_getbulk_does_not_exist_in_v1() -> None:
    with pytest.raises(ber.BerError, match="SNMPv1"):
        ber.encode_request(ber.VERSION_1, b"c", ber.GET_BULK_REQUEST, 1, [SYS_UPTIME], 0, 10)


VALUES: list[tuple[int, object, object]] = [
    (ber.INTEGER, 0, 0),
    (ber.INTEGER, 127, 127),
    (ber.INTEGER, 128, 128),
    (ber.INTEGER, -1, -1),
    (ber.INTEGER, -129, -129),
    (ber.INTEGER, 2**31 - 1, 2**31 - 1),
    (ber.INTEGER, -(2**31), -(2**31)),
    (ber.OCTET_STRING, b"", b""),
    (ber.OCTET_STRING, b"x" * 300, b"x" * 300),  # long-form length
    (ber.NULL, None, None),
    (ber.OBJECT_IDENTIFIER, "1.3.6.1.4.1.8072.3.2.10", "1.3.6.1.4.1.8072.3.2.10"),
    (ber.OBJECT_IDENTIFIER, "2.999.4294967295", "2.999.4294967295"),
    (ber.IP_ADDRESS, "192.168.255.1", "192.168.255.1"),
    (ber.COUNTER32, 0, 0),
    (ber.COUNTER32, 2**32 - 1, 2**32 - 1),
    (ber.GAUGE32, 1000000, 1000000),
    (ber.TIMETICKS, 8640000, 8640000),
    (ber.OPAQUE, b"\x9f\x78\x04\x3f\x80\x00\x00", ber.Opaque(b"\x9f\x78\x04\x3f\x80\x00\x00")),
    (ber.COUNTER64, 2**64 - 1, 2**64 - 1),
    (ber.COUNTER64, 255, 255),
    (0x80, ber.NO_SUCH_OBJECT, ber.NO_SUCH_OBJECT),
    (0x81, ber.NO_SUCH_INSTANCE, ber.NO_SUCH_INSTANCE),
    (0x82, ber.END_OF_MIB_VIEW, ber.END_OF_MIB_VIEW),
]


@pytest.mark.parametrize(("tag", "value", "expected"), VALUES)
def test_response_values_decode(tag: int, value: object, expected: object) -> None:
    packet = ber.encode_message(ber.VERSION_2C, b"public", ber.RESPONSE, 77, 0, 0, [(IF_DESCR_1, tag, value)])
    message = ber.decode_message(packet)
    assert message.pdu_type == ber.RESPONSE and message.request_id == 77
    ((oid, decoded),) = message.varbinds
    assert oid == IF_DESCR_1
    assert decoded == expected and type(decoded) is type(expected)


def test_header_then_varbinds_equals_whole_message() -> None:
    varbinds = [(IF_DESCR_1, tag, value) for tag, value, _ in VALUES]
    packet = ber.encode_message(ber.VERSION_1, b"c", ber.RESPONSE, 5, 0, 0, varbinds)
    header = ber.decode_header(packet)
    assert (header.version, header.community, header.request_id) == (0, b"c", 5)
    assert ber.decode_varbinds(packet, header) == ber.decode_message(packet).varbinds
    assert len(ber.decode_message(packet).varbinds) == len(VALUES)


def _vb(value_tlv: bytes) -> bytes:
    """A raw response with one varbind whose value TLV is given as is."""
    varbind = b"\x06\x02\x2b\x06" + value_tlv
    vb = bytes([0x30, len(varbind)]) + varbind
    vbl = bytes([0x30, len(vb)]) + vb
    pdu_body = b"\x02\x01\x01\x02\x01\x00\x02\x01\x00" + vbl
    pdu = bytes([0xA2, len(pdu_body)]) + pdu_body
    body = b"\x02\x01\x01\x04\x01c" + pdu
    return bytes([0x30, len(body)]) + body


@pytest.mark.parametrize(
    ("value_tlv", "expected"),
    [
        (b"\x41\x04\xff\xff\xff\xff", 2**32 - 1),  # a Counter32 without its leading zero
        (b"\x41\x05\x00\xff\xff\xff\xff", 2**32 - 1),
        (b"\x46\x09\x00\xff\xff\xff\xff\xff\xff\xff\xff", 2**64 - 1),
        (b"\x04\x81\x03abc", b"abc"),  # non-minimal long-form length (Net-SNMP writes these)
        (b"\x04\x82\x00\x03abc", b"abc"),
        (b"\x02\x01\xff", -1),
        (b"\x42\x01\xfe", 254),
    ],
)
def test_lenient_where_agents_are_sloppy(value_tlv: bytes, expected: object) -> None:
    ((_, value),) = ber.decode_message(_vb(value_tlv)).varbinds
    assert value == expected


MALFORMED: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not a sequence", b"\x31\x00"),
    ("indefinite length", b"\x30\x80\x00\x00"),
    ("claims 4 GiB", b"\x30\x84\xff\xff\xff\xff" + b"\x00" * 10),
    ("five length octets", b"\x30\x85\x00\x00\x00\x00\x05" + b"\x00" * 5),
    ("truncated", GET_SYS_UPTIME[:-1]),
    ("trailing octets", GET_SYS_UPTIME + b"\x00"),
    ("version 3", GET_SYS_UPTIME.replace(b"\x02\x01\x01\x04", b"\x02\x01\x03\x04", 1)),
    ("trap PDU", GET_SYS_UPTIME.replace(b"\xa0\x19", b"\xa4\x19")),
    ("community not a string", GET_SYS_UPTIME.replace(b"\x04\x06public", b"\x02\x06public")),
    ("5-octet INTEGER", _vb(b"\x02\x05\x00\x80\x00\x00\x00")),
    ("empty INTEGER", _vb(b"\x02\x00")),
    ("Counter32 beyond 32 bits", _vb(b"\x41\x05\x01\x00\x00\x00\x00")),
    ("6-octet Counter32", _vb(b"\x41\x06\x00\x00\x00\x00\x00\x01")),
    ("Counter64 beyond 64 bits", _vb(b"\x46\x09\x01" + b"\x00" * 8)),
    ("empty Counter64", _vb(b"\x46\x00")),
    ("NULL with content", _vb(b"\x05\x01\x00")),
    ("endOfMibView with content", _vb(b"\x82\x01\x00")),
    ("IpAddress of 5 octets", _vb(b"\x40\x05\x01\x02\x03\x04\x05")),
    ("unsupported tag", _vb(b"\x47\x01\x00")),
    ("constructed OCTET STRING", _vb(b"\x24\x03\x04\x01a")),
    ("value longer than varbind", _vb(b"\x04\x05ab")),
    ("OID value truncated", _vb(b"\x06\x02\x2b\x86")),
    ("OID value non-minimal", _vb(b"\x06\x03\x2b\x80\x01")),
    ("OID value empty", _vb(b"\x06\x00")),
]


@pytest.mark.parametrize(("case", "data"), MALFORMED, ids=[case for case, _ in MALFORMED])
def test_malformed_input_raises_ber_error(case: str, data: bytes) -> None:
    with pytest.raises(ber.BerError):
        ber.decode_message(data)


@pytest.mark.parametrize(
    "name",
    [
        b"\x2b\x86",  # ends inside a sub-identifier
        b"\x2b\x80\x01",  # non-minimal sub-identifier
        b"\x80\x2b",  # non-minimal first sub-identifier
        b"\x2b\x90\x80\x80\x80\x01",  # 2^32 + ...: more than 32 bits in 5 octets
        b"\x2b\x81\x80\x80\x80\x80\x01",  # six octets
    ],
)
def test_malformed_varbind_names_are_rejected(name: bytes) -> None:
    good = ber.encode_message(1, b"c", ber.RESPONSE, 1, 0, 0, [(b"\x2b\x06", ber.NULL, None)])
    bad = ber.encode_message(1, b"c", ber.RESPONSE, 1, 0, 0, [(name, ber.NULL, None)])
    assert ber.decode_message(good).varbinds == [(b"\x2b\x06", None)]
    with pytest.raises(ber.BerError):
        ber.decode_message(bad)


@pytest.mark.parametrize(
    "arcs",
    [(1, 3), (1, 3, 6, 1, 2, 1, 1, 3, 0), (0, 39), (2, 999, 0), (1, 3, 127, 128, 16383, 16384, 2**32 - 1)],
)
def test_oid_round_trip(arcs: tuple[int, ...]) -> None:
    encoded = ber.encode_oid(arcs)
    assert ber.decode_oid(encoded) == arcs
    assert ber.str_to_oid(".".join(map(str, arcs))) == encoded
    assert ber.oid_to_str(encoded) == ".".join(map(str, arcs))


@pytest.mark.parametrize("arcs", [(1,), (3, 1), (1, 40), (1, 3, -1), (1, 3, 2**32), tuple(range(2, 131))])
def test_invalid_oids_are_not_encoded(arcs: tuple[int, ...]) -> None:
    with pytest.raises(ber.BerError):
        ber.encode_oid(arcs)


def test_column_oid_is_a_byte_prefix_of_its_instances() -> None:
    column = ber.str_to_oid("1.3.6.1.2.1.31.1.1.1.6")
    for index in (1, 127, 128, 300, 16384, 2**31):
        instance = ber.str_to_oid(f"1.3.6.1.2.1.31.1.1.1.6.{index}")
        assert instance.startswith(column)
        assert ber.decode_subids(instance[len(column) :]) == (index,)
    assert not ber.str_to_oid("1.3.6.1.2.1.31.1.1.1.60.1").startswith(column + b"\x00")


def test_fast_name_validation_agrees_with_the_full_decoder() -> None:
    """The regex used on the hot path accepts exactly the names decode_subids accepts."""
    rng = random.Random(20261123)
    alphabet = [0x00, 0x01, 0x2B, 0x7F, 0x80, 0x81, 0x8F, 0x90, 0xFF]
    for _ in range(5000):
        name = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        try:
            ber.decode_subids(name)
            valid = True
        except ber.BerError:
            valid = False
        packet = ber.encode_message(1, b"c", ber.RESPONSE, 1, 0, 0, [(name, ber.NULL, None)])
        try:
            ber.decode_message(packet)
            accepted = True
        except ber.BerError:
            accepted = False
        assert accepted == valid, name.hex()


def _mutations(rng: random.Random, seeds: list[bytes], count: int) -> list[bytes]:
    """Random bytes, truncations, bit flips, length rewrites and splices of valid messages."""
    out: list[bytes] = []
    for _ in range(count):
        seed = bytearray(rng.choice(seeds))
        kind = rng.randrange(7)
        if kind == 0:
            data = bytearray(rng.randbytes(rng.randint(0, 200)))
        elif kind == 1:
            data = seed[: rng.randrange(len(seed))]
        elif kind == 2:
            data = seed
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == 3:
            data = seed
            data[rng.randrange(len(data))] = rng.choice([0x00, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF])
        elif kind == 4:
            at = rng.randrange(len(seed))
            data = seed[:at] + rng.randbytes(rng.randint(1, 8)) + seed[at:]
        elif kind == 5:
            a, b = sorted(rng.randrange(len(seed)) for _ in range(2))
            data = seed[:a] + seed[b:]
        else:
            data = seed[:2] + seed[2:] * rng.randint(2, 50)  # deep repetition
        out.append(bytes(data))
    return out


def test_fuzz_only_ber_error_escapes() -> None:
    """12,000 hostile inputs: every failure is a BerError, never IndexError/Overflow/Recursion."""
    rng = random.Random(31337)
    seeds = [
        GET_SYS_UPTIME,
        ber.encode_request(1, b"public", ber.GET_BULK_REQUEST, 99, [SYS_UPTIME, IF_DESCR_1], 0, 25),
        ber.encode_message(1, b"public", ber.RESPONSE, 2**31 - 1, 0, 0, [(IF_DESCR_1, t, v) for t, v, _ in VALUES]),
        _vb(b"\x46\x09\x00\xff\xff\xff\xff\xff\xff\xff\xff"),
    ]
    inputs = _mutations(rng, seeds, 12000)
    decoded = failed = 0
    for data in inputs:
        try:
            message = ber.decode_message(data)
        except ber.BerError:
            failed += 1
            continue
        decoded += 1
        assert message.version in (0, 1)
        for oid, _value in message.varbinds:
            ber.decode_oid(oid)  # every accepted name is a valid OID
    assert decoded + failed == 12000
    assert failed > 6000 and decoded > 100  # the fuzz reaches both outcomes
    for data in inputs[:3000]:  # the other entry points too
        for decode in (ber.decode_oid, ber.decode_subids, ber.decode_header):
            with contextlib.suppress(ber.BerError):
                decode(data)
