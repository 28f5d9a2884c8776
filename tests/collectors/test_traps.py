"""The trap listener against Net-SNMP's snmptrap / snmpinform (v1, v2c, v3), and a fuzz storm."""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import random
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from collectors.trap import COLD_START, LINK_DOWN, LINK_UP, SNMP_TRAP_ADDRESS, WARM_START, Trap
from collectors.traps import TrapListener, V3User
from tests.conftest import require_binary

COMMUNITY = "trap-community"
AUTH_KEY = "trap-auth-pass"
PRIV_KEY = "trap-priv-pass"
SENDER_ENGINE = "0x80001f8880aabbccdd0011"  # the v3 trap sender's engine ID (snmptrap -e)
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
NET_SNMP_ENV = {**os.environ, "MIBS": ""}


@dataclass
class Harness:
    """A running listener, the traps it produced, and its metrics."""

    listener: TrapListener
    registry: CollectorRegistry
    traps: asyncio.Queue[Trap] = field(default_factory=asyncio.Queue)

    @property
    def target(self) -> str:
        host, port = self.listener.address
        return f"{host}:{port}"

    async def next_trap(self, timeout: float = 2.0) -> Trap:
        return await asyncio.wait_for(self.traps.get(), timeout)

    def metric(self, version: str, result: str) -> float:
        value = self.registry.get_sample_value(
            "vigil_traps_total", {"version": version, "result": result}
        )
        return value or 0.0


async def net_snmp(*argv: str) -> tuple[int, str]:
    """Run a Net-SNMP tool without blocking the loop (snmpinform waits for our acknowledgement)."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=NET_SNMP_ENV
    )
    out, err = await asyncio.wait_for(process.communicate(), 15)
    return process.returncode or 0, (out + err).decode(errors="replace")


def _v3_args(user: str = "trapper", auth_key: str = AUTH_KEY) -> list[str]:
    return ["-v", "3", "-u", user, "-l", "authPriv", "-a", "SHA-256", "-A", auth_key,
            "-x", "AES", "-X", PRIV_KEY]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    require_binary("snmptrap")
    require_binary("snmpinform")
    registry = CollectorRegistry()
    queue: asyncio.Queue[Trap] = asyncio.Queue()
    listener = TrapListener(
        port=0,
        communities=["other-community", COMMUNITY],
        users=[V3User("trapper", "sha256", AUTH_KEY, "aes", PRIV_KEY, engine_ids=(SENDER_ENGINE,))],
        elements_by_address={"127.0.0.1": "agg-test-01"},
        on_trap=queue.put_nowait,
        registry=registry,
    )
    await listener.start()
    try:
        yield Harness(listener, registry, queue)
    finally:
        await listener.stop()
    assert not listener.running


async def test_v2c_link_down_trap(harness: Harness) -> None:
    started = time.time()
    rc, out = await net_snmp(
        "snmptrap", "-v", "2c", "-c", COMMUNITY, harness.target, "4242", LINK_DOWN,
        f"{IF_INDEX}.7", "i", "7", f"{IF_OPER}.7", "i", "2",
        "1.3.6.1.2.1.31.1.1.1.1.7", "s", "Gi0/7",
    )
    assert rc == 0, out
    trap = await harness.next_trap(timeout=0.5)  # at once, not at the next poll
    assert trap.trap_oid == LINK_DOWN and trap.version == "2c" and not trap.is_inform
    assert (trap.address, trap.element, trap.uptime) == ("127.0.0.1", "agg-test-01", 4242)
    assert trap.security_name == "community#1"  # which community, never the community itself
    assert trap.varbinds == (
        (f"{IF_INDEX}.7", 7), (f"{IF_OPER}.7", 2), ("1.3.6.1.2.1.31.1.1.1.1.7", "Gi0/7"),
    )
    assert started <= trap.received_at <= time.time()
    assert harness.metric("2c", "accepted") == 1


@pytest.mark.parametrize(
    ("generic", "specific", "expected"),
    [
        ("0", "0", COLD_START),
        ("1", "0", WARM_START),
        ("2", "0", LINK_DOWN),
        ("3", "0", LINK_UP),
        ("6", "17", "1.3.6.1.4.1.2011.5.25.0.17"),  # enterprise-specific: ENTERPRISE.0.SPECIFIC
    ],
)
async def test_v1_trap_is_translated_per_rfc3584(
    harness: Harness, generic: str, specific: str, expected: str
) -> None:
    rc, out = await net_snmp(
        "snmptrap", "-v", "1", "-c", COMMUNITY, harness.target, "1.3.6.1.4.1.2011.5.25",
        "10.9.8.7", generic, specific, "555", f"{IF_INDEX}.3", "i", "3",
    )
    assert rc == 0, out
    trap = await harness.next_trap()
    assert (trap.version, trap.trap_oid, trap.uptime) == ("1", expected, 555)
    assert trap.value(SNMP_TRAP_ADDRESS) == "10.9.8.7"  # the v1 agent-addr
    assert trap.value("1.3.6.1.6.3.1.1.4.3.0") == "1.3.6.1.4.1.2011.5.25"  # snmpTrapEnterprise
    assert trap.value(f"{IF_INDEX}.3") == 3
    assert all(COMMUNITY not in str(value) for _, value in trap.varbinds)  # snmpTrapCommunity dropped
    assert trap.element == "agg-test-01"


async def test_v2c_inform_is_acknowledged(harness: Harness) -> None:
    rc, out = await net_snmp(
        "snmpinform", "-v", "2c", "-c", COMMUNITY, "-t", "1", "-r", "0", harness.target, "99",
        COLD_START,
    )
    assert rc == 0, out  # snmpinform exits 0 only when the inform was acknowledged
    trap = await harness.next_trap()
    assert trap.is_inform and trap.trap_oid == COLD_START and trap.version == "2c"


async def test_wrong_community_is_rejected(harness: Harness) -> None:
    rc, _ = await net_snmp(
        "snmpinform", "-v", "2c", "-c", "not-our-community", "-t", "0.5", "-r", "0",
        harness.target, "1", COLD_START,
    )
    assert rc != 0  # never acknowledged
    assert harness.traps.empty()
    assert harness.metric("2c", "rejected") == 1 and harness.metric("2c", "accepted") == 0


async def test_v3_inform_is_acknowledged(harness: Harness) -> None:
    # The listener is the authoritative engine for informs: snmpinform discovers its engine ID.
    rc, out = await net_snmp(
        "snmpinform", *_v3_args(), "-t", "1", "-r", "0", harness.target, "7", WARM_START,
        f"{IF_INDEX}.1", "i", "1",
    )
    assert rc == 0, out
    trap = await harness.next_trap()
    assert (trap.version, trap.is_inform, trap.security_name) == ("3", True, "trapper")
    assert trap.trap_oid == WARM_START and trap.value(f"{IF_INDEX}.1") == 1


async def test_v3_trap_from_a_configured_engine_id(harness: Harness) -> None:
    rc, out = await net_snmp(
        "snmptrap", *_v3_args(), "-e", SENDER_ENGINE, harness.target, "8", LINK_UP,
        f"{IF_INDEX}.2", "i", "2",
    )
    assert rc == 0, out
    trap = await harness.next_trap()
    assert (trap.version, trap.is_inform, trap.trap_oid) == ("3", False, LINK_UP)
    assert trap.value(f"{IF_INDEX}.2") == 2


async def test_v3_trap_from_an_unknown_engine_or_with_a_wrong_key_is_rejected(
    harness: Harness,
) -> None:
    rc, _ = await net_snmp(
        "snmptrap", *_v3_args(), "-e", "0x80001f8880ffffffff", harness.target, "8", LINK_UP
    )
    assert rc == 0  # a trap is fire-and-forget
    rc, out = await net_snmp(
        "snmpinform", *_v3_args(auth_key="wrong-auth-pass"), "-t", "0.5", "-r", "0",
        harness.target, "8", LINK_UP,
    )
    assert rc != 0 and "uthentication" in out  # the listener reported a wrong digest
    await asyncio.sleep(0.1)
    assert harness.traps.empty()
    assert harness.metric("3", "rejected") >= 2 and harness.metric("3", "accepted") == 0


async def test_a_ber_sequence_that_is_no_snmp_message_is_malformed_not_rejected(harness: Harness) -> None:
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for garbage in ("3003020101", "3003020105", "30050201010400"):  # a version only; v5; no PDU
            sender.sendto(bytes.fromhex(garbage), harness.listener.address)
        deadline = time.monotonic() + 2
        while sum(harness.listener.counts.values()) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        sender.close()
    assert harness.listener.counts == {"malformed": 3}
    assert harness.metric("2c", "malformed") == 2 and harness.metric("2c", "rejected") == 0
    # a real SNMP message the listener refuses is still "rejected"
    rc, _ = await net_snmp(
        "snmpinform", "-v", "2c", "-c", "nope", "-t", "0.3", "-r", "0", harness.target, "1", COLD_START
    )
    assert rc != 0 and harness.metric("2c", "rejected") == 1


async def test_one_user_name_with_two_key_sets_per_engine_id_and_first_wins_for_informs() -> None:
    """USM holds one key set per (engine ID, user): two "noc" users with their own senders' engine
    IDs both send v3 traps; informs (all on the listener's engine ID) only with the first's keys."""
    require_binary("snmptrap")
    require_binary("snmpinform")
    north_engine, south_engine = "0x80001f8880000000000001", "0x80001f8880000000000002"
    queue: asyncio.Queue[Trap] = asyncio.Queue()
    registry = CollectorRegistry()
    listener = TrapListener(
        port=0, communities=[], on_trap=queue.put_nowait, registry=registry,
        users=[
            V3User("noc", "sha256", "north-auth-1", "aes", PRIV_KEY, engine_ids=(north_engine,), name="north"),
            V3User("noc", "sha256", "south-auth-2", "aes", PRIV_KEY, engine_ids=(south_engine,), name="south"),
        ],
    )
    await listener.start()
    target = "{}:{}".format(*listener.address)
    try:
        for engine_id, auth in ((north_engine, "north-auth-1"), (south_engine, "south-auth-2")):
            rc, out = await net_snmp("snmptrap", *_v3_args("noc", auth), "-e", engine_id, target, "8", LINK_UP)
            assert rc == 0, out
            trap = await asyncio.wait_for(queue.get(), 2)
            assert (trap.version, trap.security_name, trap.trap_oid) == ("3", "noc", LINK_UP)
        # a sender engine listed for the other key set: rejected, as any wrong key is
        await net_snmp("snmptrap", *_v3_args("noc", "south-auth-2"), "-e", north_engine, target, "8", LINK_UP)
        inform = ("-t", "1", "-r", "0", target, "9", COLD_START)
        rc, out = await net_snmp("snmpinform", *_v3_args("noc", "north-auth-1"), *inform)
        assert rc == 0, out
        assert (await asyncio.wait_for(queue.get(), 2)).is_inform
        rc, out = await net_snmp("snmpinform", *_v3_args("noc", "south-auth-2"), *inform)
        assert rc != 0 and "uthentication" in out, out
        await asyncio.sleep(0.1)
        assert queue.empty()
    finally:
        await listener.stop()


async def test_a_failing_handler_does_not_stop_the_listener() -> None:
    require_binary("snmptrap")
    seen: list[Trap] = []

    def handler(trap: Trap) -> None:
        seen.append(trap)
        if len(seen) == 1:
            raise RuntimeError("boom")

    async with TrapListener(port=0, communities=[COMMUNITY], on_trap=handler) as listener:
        target = "{}:{}".format(*listener.address)
        for _ in range(2):
            rc, out = await net_snmp("snmptrap", "-v", "2c", "-c", COMMUNITY, target, "1", COLD_START)
            assert rc == 0, out
        await asyncio.sleep(0.1)
        assert len(seen) == 2
        assert listener.counts == {"handler_error": 1, "accepted": 1}


def test_listener_repr_and_validation_hide_secrets() -> None:
    listener = TrapListener(communities=["s3cret-community"],
                            users=[V3User("ops", "sha", "s3cret-auth", "aes", "s3cret-priv")],
                            on_trap=lambda trap: None)
    assert "s3cret" not in repr(listener) and "s3cret" not in repr(listener._users)
    assert listener.port == 1162
    with pytest.raises(ValueError, match="at least one community"):
        TrapListener(communities=[], on_trap=lambda trap: None)
    with pytest.raises(ValueError, match="5-32 octets"):
        V3User("ops", "sha", "12345678", engine_ids=("0x0102",))
    with pytest.raises(ValueError, match="privacy needs authentication"):
        V3User("ops", priv_protocol="aes", priv_key="12345678")


async def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        listener = TrapListener(port=port, communities=[COMMUNITY], on_trap=lambda trap: None)
        with pytest.raises(OSError, match=f"cannot bind 127.0.0.1:{port}"):
            await listener.start()
        assert not listener.running


# -- fuzz: the trap side of issue 3 point 9 ----------------------------------------------------


def _tlv(tag: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + payload


def _int(value: int, tag: int = 0x02) -> bytes:
    return _tlv(tag, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([arcs[0] * 40 + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _v2c_trap(community: bytes, varbinds: Sequence[bytes], request_id: int = 1) -> bytes:
    pdu = _tlv(0xA7, _int(request_id) + _int(0) + _int(0) + _tlv(0x30, b"".join(varbinds)))
    return _tlv(0x30, _int(1) + _tlv(0x04, community) + pdu)


def _vb(oid: bytes, value: bytes) -> bytes:
    return _tlv(0x30, oid + value)


def _valid_v2c(community: str = COMMUNITY, extra: Sequence[bytes] = ()) -> bytes:
    return _v2c_trap(community.encode(), [
        _vb(_oid("1.3.6.1.2.1.1.3.0"), _int(100, tag=0x43)),
        _vb(_oid("1.3.6.1.6.3.1.1.4.1.0"), _oid(LINK_DOWN)),
        _vb(_oid(f"{IF_INDEX}.5"), _int(5)),
        *extra,
    ])


_VALID = _valid_v2c()


async def _capture(argv: Sequence[str]) -> bytes:
    """The first datagram a Net-SNMP tool sends (to a socket that never answers)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    try:
        process = await asyncio.create_subprocess_exec(
            *[a.replace("TARGET", f"127.0.0.1:{port}") for a in argv],
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=NET_SNMP_ENV,
        )
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 65535), 5)
        await process.wait()
        return data
    finally:
        sock.close()


@functools.cache
def _oversized() -> tuple[bytes, bytes]:
    """A trap with a ~60 kB OCTET STRING; one with a huge INTEGER and an OID with huge arcs."""
    big = _valid_v2c(extra=[_vb(_oid("1.3.6.1.4.1.9.9.1.0"), _tlv(0x04, b"x" * 60_000))])
    huge = _valid_v2c(extra=[
        _vb(_oid("1.3.6.1.4.1.9.9.2.0"), _tlv(0x02, b"\x7f" * 5_000)),
        _vb(_tlv(0x06, b"\x2b" + b"\xff" * 2_000 + b"\x01"), _int(1)),
    ])
    return big, huge


@functools.cache
def _nested(depth: int) -> bytes:
    return _tlv(0x30, _nested(depth - 1)) if depth else b"\x05\x00"


def _rss() -> int:
    """Resident set size of this process in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hostile(rng: random.Random, v3_trap: bytes, v3_probe: bytes) -> bytes:
    """One malformed or hostile datagram."""
    valid = _VALID
    kind = rng.randrange(12)
    if kind == 0:  # random bytes
        return rng.randbytes(rng.randrange(1, 1500))
    if kind == 1:  # truncated BER
        return valid[: rng.randrange(1, len(valid))]
    if kind == 2:  # bit flips in a valid message
        data = bytearray(valid)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == 3:  # wrong community
        return _valid_v2c(community=f"guess-{rng.randrange(10**6)}")
    if kind == 4:  # replayed v3 trap (authentic: USM accepts replays inside its 150 s window)
        return v3_trap
    if kind == 5:  # replayed v3 message with a flipped byte (bad digest or garbage)
        data = bytearray(v3_trap)
        data[rng.randrange(len(data))] ^= 0xFF
        return bytes(data)
    if kind == 6:  # replayed v3 discovery probe: the listener answers with a report
        return v3_probe
    if kind == 7:  # oversized value: a ~60 kB OCTET STRING
        return _oversized()[0]
    if kind == 8:  # absurd length field (claims ~2 GB)
        return b"\x30\x84\x7f\xff\xff\xff" + valid[2:]
    if kind == 9:  # huge integer and an OID with huge arcs
        return _oversized()[1]
    if kind == 10:  # deep nesting
        return _nested(rng.randrange(50, 400))
    # SNMPv1 trap with an invalid generic-trap value and a wrong request id elsewhere
    v1 = _tlv(0xA4, _oid("1.3.6.1.4.1.9") + _tlv(0x40, b"\x7f\x00\x00\x01") + _int(rng.randrange(7, 300))
              + _int(0) + _int(1, tag=0x43) + _tlv(0x30, b""))
    return _tlv(0x30, _int(0) + _tlv(0x04, COMMUNITY.encode()) + v1)


async def test_fuzz_storm_no_crash_bounded_memory_and_still_receiving() -> None:
    require_binary("snmptrap")
    require_binary("snmpinform")
    loop = asyncio.get_running_loop()
    leaked: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: leaked.append(context))
    received: dict[str, Trap | int] = {"count": 0}

    def on_trap(trap: Trap) -> None:  # keep no list: the memory check must see the listener only
        received["count"] = int(received["count"]) + 1  # type: ignore[call-overload]
        received["last"] = trap

    registry = CollectorRegistry()
    listener = TrapListener(
        port=0, communities=[COMMUNITY],
        users=[V3User("trapper", "sha256", AUTH_KEY, "aes", PRIV_KEY, engine_ids=(SENDER_ENGINE,))],
        on_trap=on_trap, registry=registry,
    )
    await listener.start()
    target = listener.address
    v3_trap = await _capture(["snmptrap", *_v3_args(), "-e", SENDER_ENGINE, "TARGET", "5", LINK_DOWN])
    v3_probe = await _capture(["snmpinform", *_v3_args(), "-t", "5", "-r", "0", "TARGET", "5", LINK_DOWN])
    rng = random.Random(20261123)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))

    def handled() -> int:
        return sum(listener.counts.values())

    async def storm(n: int) -> None:
        """Send ``n`` hostile datagrams, paced so the socket buffer never overflows."""
        datagrams = [_hostile(rng, v3_trap, v3_probe) for _ in range(n)]  # built before measuring
        start = handled()
        for i, datagram in enumerate(datagrams):
            sender.sendto(datagram, target)
            if i - (handled() - start) >= 16 or len(datagram) > 8_000:
                deadline = loop.time() + 5
                while handled() - start < i + 1 and loop.time() < deadline:
                    await asyncio.sleep(0.0002)
        deadline = loop.time() + 5
        while handled() - start < n and loop.time() < deadline:
            await asyncio.sleep(0.001)

    try:
        await storm(1_000)  # warm-up: pysnmp's lazily built MIB objects and caches
        gc.collect()
        rss_before = _rss()
        await storm(10_000)
        gc.collect()
        rss_growth = _rss() - rss_before
        # tracemalloc slows pysnmp ~7x: trace a further 1,500 datagrams of the same mix.
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        await storm(1_500)
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert handled() >= 12_500, listener.counts  # every datagram was handled, none dropped
        assert listener.counts.get("malformed", 0) > 2_000, listener.counts
        assert listener.counts.get("rejected", 0) > 2_000, listener.counts
        assert rss_growth < 16 * 2**20, f"RSS grew {rss_growth / 2**20:.1f} MiB over 10,000 datagrams"
        assert after - before < 256 * 2**10, f"traced memory grew {(after - before) / 2**10:.0f} KiB"
        assert peak - before < 16 * 2**20, f"traced peak {(peak - before) / 2**20:.1f} MiB"
        assert not leaked, leaked[:3]
        assert listener.running
        # a valid trap after the storm is still received, at once
        count = int(received["count"])  # type: ignore[call-overload]
        rc, out = await net_snmp("snmptrap", "-v", "2c", "-c", COMMUNITY, "{}:{}".format(*target),
                                 "31337", COLD_START)
        assert rc == 0, out
        for _ in range(100):
            if int(received["count"]) > count:  # type: ignore[call-overload]
                break
            await asyncio.sleep(0.01)
        last = received["last"]
        assert isinstance(last, Trap) and (last.trap_oid, last.uptime) == (COLD_START, 31337)
        rc, out = await net_snmp("snmpinform", "-v", "2c", "-c", COMMUNITY, "-t", "1", "-r", "0",
                                 "{}:{}".format(*target), "1", WARM_START)
        assert rc == 0, out
    finally:
        sender.close()
        await listener.stop()
        loop.set_exception_handler(None)
