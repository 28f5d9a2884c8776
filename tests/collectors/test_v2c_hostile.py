"""Hostile input on the fast client's socket while it polls a real snmpd (issue 3, point 9).

The client polls snmpd through a UDP relay on loopback, so datagrams sent from the relay's
socket come from the address the client expects: replays of recorded answers, answers with a
wrong request-id, community or version, truncated, bit-flipped or oversized ones. Another socket
sprays random bytes and replays from a wrong address. Every poll must still return what snmpd
says, nothing may escape, and memory must stay flat.
"""

from __future__ import annotations

import asyncio
import gc
import random
import socket
import tracemalloc
from collections import deque
from collections.abc import Iterator

import pytest

from collectors import ber
from collectors.ifmib import IF_COLUMNS
from collectors.snmp import SnmpTimeout, Target
from collectors.v2c import FastSnmpClient
from tests.collectors.test_v2c import COMMUNITY, Agent, start_snmpd, stop_snmpd

SYS_NAME = "1.3.6.1.2.1.1.5.0"
STATIC_COLUMNS = [IF_COLUMNS[name] for name in ("ifDescr", "ifName", "ifType")]
HOSTILE = 12_000


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    process, agent = start_snmpd(tmp_path_factory.mktemp("snmpd-hostile"))
    try:
        yield agent
    finally:
        stop_snmpd(process)


class Relay(asyncio.DatagramProtocol):
    """Forwards the client's requests to snmpd and snmpd's answers back, keeping recent answers."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.front: asyncio.DatagramTransport | None = None
        self.back: asyncio.DatagramTransport | None = None
        self.client: tuple[str, int] | None = None
        self.recorded: deque[bytes] = deque(maxlen=64)
        self.in_flight: deque[int] = deque(maxlen=8)  # request-ids an on-path attacker saw
        self.stranger: socket.socket | None = None  # when set: forge answers to every request
        self.forged = 0

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        relay = self

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                if relay.front is not None and relay.client is not None:
                    relay.front.sendto(data, relay.client)
                    relay.recorded.append(data)

        self.front, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.back, _ = await loop.create_datagram_endpoint(Back, local_addr=("127.0.0.1", 0))
        return int(self.front.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.client = addr
        request_id = ber.decode_message(data).request_id
        self.in_flight.append(request_id)
        assert self.back is not None and self.front is not None
        if self.stranger is not None:  # forged answers, all before the real one
            self.front.sendto(forged(request_id, community=b"guess"), addr)
            self.front.sendto(forged(request_id, version=0), addr)
            self.front.sendto(forged(request_id, pdu_type=ber.GET_REQUEST), addr)
            self.front.sendto(forged(request_id).replace(b"\x04\x04EVIL", b"\x47\x04EVIL"), addr)
            self.stranger.sendto(forged(request_id), addr)
            self.forged += 5
        self.back.sendto(data, (self.agent.host, self.agent.port))

    def close(self) -> None:
        for transport in (self.front, self.back):
            if transport is not None:
                transport.close()


SYS_NAME_OID = ber.str_to_oid(SYS_NAME)


def forged(
    request_id: int, *, community: bytes = COMMUNITY.encode(), version: int = 1, pdu_type: int = ber.RESPONSE
) -> bytes:
    """An answer to a request in flight that must be rejected (its value would show as EVIL)."""
    return ber.encode_message(
        version, community, pdu_type, request_id, 0, 0, [(SYS_NAME_OID, ber.OCTET_STRING, b"EVIL")]
    )


def hostile_datagram(rng: random.Random, relay: Relay) -> tuple[bytes, bool]:
    """One hostile datagram and whether it must come from a stranger's address."""
    real = bytearray(rng.choice(list(relay.recorded)))
    kind = rng.randrange(14)
    if kind >= 9 and relay.in_flight:  # forged answers to requests in flight
        request_id = rng.choice(list(relay.in_flight))
        if kind == 9:
            return forged(request_id, community=b"guess"), False
        if kind == 10:
            return forged(request_id, version=0), False
        if kind == 11:
            return forged(request_id), True  # everything right but the source address
        if kind == 12:
            return forged(request_id, pdu_type=ber.GET_REQUEST), False
        return forged(request_id).replace(b"\x04\x04EVIL", b"\x47\x04EVIL"), False
    if kind == 0:  # a replay of an old answer
        return bytes(real), rng.random() < 0.5
    if kind == 1:  # another request-id (random 31-bit: it never matches a pending request)
        return forged(rng.randrange(1, 2**31)), False
    if kind == 2:  # another community of the same length
        community = COMMUNITY.encode()
        return bytes(real).replace(community, community[:-1] + b"X", 1), False
    if kind == 3:  # SNMPv1 instead of v2c
        return bytes(real).replace(b"\x02\x01\x01\x04", b"\x02\x01\x00\x04", 1), False
    if kind == 4:  # truncated
        return bytes(real[: rng.randrange(len(real))]), False
    if kind == 5:  # bit flips
        for _ in range(rng.randint(1, 6)):
            real[rng.randrange(len(real))] ^= 1 << rng.randrange(8)
        return bytes(real), False
    if kind == 6:  # an outer length claiming gigabytes
        return b"\x30\x84\x7f\xff\xff\xff" + bytes(real[2:]), False
    if kind == 7:  # a length somewhere inside claiming far more than the datagram holds
        at = rng.randrange(len(real) - 2)
        real[at : at + 2] = b"\x84\x7f"
        return bytes(real), False
    return rng.randbytes(rng.randint(0, 1400)), True


async def test_hostile_datagrams_while_polling(snmpd: Agent) -> None:
    rng = random.Random(9)
    relay = Relay(snmpd)
    port = await relay.start()
    client = FastSnmpClient()
    targets = [
        Target(f"r{i}", "127.0.0.1", port, community=COMMUNITY, timeout=1.0, retries=2, max_repetitions=3)
        for i in range(4)
    ]
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    try:
        # baseline, straight from the agent through the relay
        expected_tables = await client.walk_table(targets[0], STATIC_COLUMNS)
        expected_name = (await client.get(targets[0], [SYS_NAME]))[SYS_NAME]
        assert expected_tables[STATIC_COLUMNS[0]] and expected_name
        address = client.local_address()
        assert address is not None and relay.front is not None
        client_addr = ("127.0.0.1", address[1])
        before = client.stats.responses

        gc.collect()
        tracemalloc.start()
        baseline_memory = tracemalloc.get_traced_memory()[0]
        sent = {"relay": 0, "stranger": 0}
        polls_done = 0
        relay.stranger = stranger

        async def spray() -> None:
            for i in range(HOSTILE):
                datagram, from_stranger = hostile_datagram(rng, relay)
                if from_stranger:
                    stranger.sendto(datagram, client_addr)
                    sent["stranger"] += 1
                else:
                    relay.front.sendto(datagram, client_addr)  # type: ignore[union-attr]
                    sent["relay"] += 1
                if i % 20 == 19:
                    await asyncio.sleep(0.002)  # let the client read and poll meanwhile

        async def poll() -> None:
            nonlocal polls_done
            while sent["relay"] + sent["stranger"] < HOSTILE:
                results = await asyncio.gather(
                    *(client.walk_table(t, STATIC_COLUMNS) for t in targets),
                    *(client.get(t, [SYS_NAME]) for t in targets),
                )
                for table in results[: len(targets)]:
                    assert table == expected_tables  # never another request's answer
                for values in results[len(targets) :]:
                    assert values == {SYS_NAME: expected_name}
                polls_done += 1

        await asyncio.wait_for(asyncio.gather(spray(), poll()), timeout=45)
        relay.stranger = None
        await asyncio.sleep(0.2)  # drain what is still in flight
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - baseline_memory
        tracemalloc.stop()
    finally:
        stranger.close()
        relay.close()
        client.close()

    stats = client.stats
    assert polls_done >= 3, "healthy polls kept running during the spray"
    assert stats.internal_errors == 0
    assert stats.timeouts == 0
    assert stats.responses - before >= polls_done * len(targets) * 2
    assert sum(sent.values()) == HOSTILE
    # Every hostile datagram reached the socket and was dropped for a reason (a few may be
    # lost in the kernel when the loop falls behind: asyncio reads one datagram per iteration).
    assert stats.dropped >= 0.9 * (HOSTILE + relay.forged), stats
    assert stats.dropped_unknown_request > 0.2 * HOSTILE  # replays and other request-ids
    assert stats.dropped_malformed > 0.1 * HOSTILE
    # forged answers to requests in flight: one of each per request during the spray
    forged_per_kind = relay.forged // 5
    assert forged_per_kind >= 20
    for reason in ("wrong_source", "wrong_community", "wrong_version", "not_response"):
        assert getattr(stats, f"dropped_{reason}") >= 0.9 * forged_per_kind, reason
    assert client._pending == {}
    assert grown < 512 * 1024, f"memory grew by {grown} bytes"


async def test_flood_without_any_request_pending() -> None:
    """Datagrams to an idle client's socket are dropped without state or errors."""
    client = FastSnmpClient()
    sink = Target("nobody", "127.0.0.1", 9, timeout=0.05, retries=0)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rng = random.Random(4)
    try:
        with pytest.raises(SnmpTimeout):  # opens the socket; port 9 (discard) never answers
            await client.get(sink, [SYS_NAME])
        address = client.local_address()
        assert address is not None
        response = ber.encode_message(1, b"public", ber.RESPONSE, 1, 0, 0, [(b"\x2b\x06", ber.NULL, None)])
        for i in range(2000):
            data = response if i % 2 else rng.randbytes(rng.randint(0, 300))
            stranger.sendto(data, ("127.0.0.1", address[1]))
            if i % 20 == 19:
                await asyncio.sleep(0.002)  # asyncio reads one datagram per loop iteration
        await asyncio.sleep(0.1)
    finally:
        stranger.close()
        client.close()
    assert client.stats.dropped_unknown_request >= 950
    assert client.stats.dropped >= 1950 and client.stats.internal_errors == 0
