"""FastSnmpClient against a real Net-SNMP snmpd (parity with the pysnmp SnmpClient) and a small
fake agent on a loopback socket (drop rules, error mapping, timeouts)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collectors import ber
from collectors.ifmib import IF_COLUMNS, SYS_UPTIME, IfMibCollector
from collectors.sample import Sample, SampleKind
from collectors.snmp import (
    SnmpClient,
    SnmpDecodeError,
    SnmpError,
    SnmpProtocolError,
    SnmpTimeout,
    Target,
)
from collectors.v2c import FastSnmpClient
from tests.conftest import free_udp_port, require_binary

COMMUNITY = "vigilfast"
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
MISSING = "1.3.6.1.2.1.1.99.0"
# Columns whose values move while we look (counters, the HC octets of lo carry our own queries).
MOVING = {IF_COLUMNS[name] for name in ("ifHCInOctets", "ifHCOutOctets", "ifInDiscards", "ifInErrors", "ifOutErrors")}


@dataclass(frozen=True)
class Agent:
    """A running snmpd on 127.0.0.1."""

    host: str
    port: int

    def target(self, element: str = "snmpd", **overrides: object) -> Target:
        options: dict[str, object] = {"community": COMMUNITY, "timeout": 1.0, **overrides}
        return Target(element, self.host, self.port, **options)  # type: ignore[arg-type]


def start_snmpd(workdir: Path) -> tuple[subprocess.Popen[bytes], Agent]:
    """Start an unprivileged snmpd on a free loopback port (shared with the hostile tests)."""
    binary = require_binary("snmpd", "/usr/sbin/snmpd")
    snmpget = require_binary("snmpget")
    port = free_udp_port()
    conf = workdir / "snmpd.conf"
    conf.write_text(f"agentAddress udp:127.0.0.1:{port}\nrocommunity {COMMUNITY} 127.0.0.1\n")
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir / "persist"), "MIBS": ""}
    # -C: never read /etc/snmp; -I -smux: no SMUX listener on tcp/199; -M: load no MIB files.
    command = [binary, "-f", "-C", "-c", str(conf), "-Lf", str(workdir / "snmpd.log")]
    command += ["-p", str(workdir / "snmpd.pid"), "-I", "-smux", "-M", str(workdir)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"snmpd exited with {process.returncode}")
        probe = [snmpget, "-v2c", "-c", COMMUNITY, "-t", "0.2", "-r", "0", "-On"]
        done = subprocess.run([*probe, f"127.0.0.1:{port}", SYS_UPTIME], capture_output=True, check=False)
        if done.returncode == 0:
            return process, Agent("127.0.0.1", port)
    stop_snmpd(process)
    pytest.fail("snmpd did not answer within 10 s")


def stop_snmpd(process: subprocess.Popen[bytes]) -> None:
    """Terminate the snmpd we started."""
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    process, agent = start_snmpd(tmp_path_factory.mktemp("snmpd-fast"))
    try:
        yield agent
    finally:
        stop_snmpd(process)


def assert_sandwiched(before: object, middle: object, after: object, what: str) -> None:
    """A counter read between two reads of the other client lies between them."""
    assert isinstance(middle, int) and isinstance(before, int) and isinstance(after, int), what
    assert before <= middle <= after, f"{what}: {before} <= {middle} <= {after}"


# -- parity with pysnmp on a real agent ---------------------------------------------------------


@pytest.mark.parametrize("version", ["2c", "1"])
@pytest.mark.parametrize("repetitions", [2, 25])
async def test_walk_table_matches_pysnmp(snmpd: Agent, version: str, repetitions: int) -> None:
    target = snmpd.target(version=version, max_repetitions=repetitions)
    columns = list(IF_COLUMNS.values())
    slow, fast = SnmpClient(), FastSnmpClient()
    try:
        before = await slow.walk_table(target, columns)
        got = await fast.walk_table(target, columns)
        after = await slow.walk_table(target, columns)
    finally:
        slow.close()
        fast.close()
    assert list(got) == columns
    assert got[IF_COLUMNS["ifDescr"]], "snmpd lists no interfaces"
    for column in columns:
        assert set(got[column]) == set(before[column]) == set(after[column]), column
        for index, value in got[column].items():
            if column in MOVING:
                assert_sandwiched(before[column][index], value, after[column][index], column)
            else:
                assert value == before[column][index], (column, index)
                assert type(value) is type(before[column][index])
    if version == "1":
        assert got[IF_COLUMNS["ifHCInOctets"]] == {}, "Counter64 cannot travel in SNMPv1"
    # several GETBULK rounds when repetitions=2: the de-interleaving across rounds is covered
    assert fast.stats.requests >= (2 if repetitions == 2 else 1)
    assert fast.stats.dropped == 0 and fast.stats.timeouts == 0


@pytest.mark.parametrize("version", ["2c", "1"])
async def test_get_matches_pysnmp(snmpd: Agent, version: str) -> None:
    oids = [SYS_UPTIME, SYS_NAME, SYS_OBJECT_ID, MISSING, SYS_DESCR]
    target = snmpd.target(version=version)
    slow, fast = SnmpClient(), FastSnmpClient()
    try:
        before = await slow.get(target, oids)
        got = await fast.get(target, oids)
        after = await slow.get(target, oids)
    finally:
        slow.close()
        fast.close()
    assert list(got) == oids
    assert_sandwiched(before[SYS_UPTIME], got[SYS_UPTIME], after[SYS_UPTIME], "sysUpTime")
    for oid in oids[1:]:
        assert got[oid] == before[oid], oid
    assert got[SYS_NAME] == os.uname().nodename
    assert isinstance(got[SYS_OBJECT_ID], str) and got[SYS_OBJECT_ID].startswith("1.3.6.1.4.1.")
    assert got[MISSING] is None


def _by_series(samples: list[Sample]) -> dict[tuple[str, tuple[tuple[str, str], ...]], Sample]:
    return {(s.metric, s.labels): s for s in samples}


async def test_ifmib_collector_on_fast_client_matches_pysnmp(snmpd: Agent) -> None:
    slow, fast = SnmpClient(), FastSnmpClient()
    slow_collector = IfMibCollector(slow, snmpd.target("a"), clock=lambda: 1000.0)
    fast_collector = IfMibCollector(fast, snmpd.target("a"), clock=lambda: 1000.0)  # type: ignore[arg-type]
    try:
        before = await slow_collector.collect()
        got = await fast_collector.collect()
        after = await slow_collector.collect()
        second = await fast_collector.collect()
    finally:
        slow.close()
        fast.close()
    assert len(got) == len(before) > 0
    slow_before, slow_after, fast_got = _by_series(before), _by_series(after), _by_series(got)
    assert set(fast_got) == set(slow_before)
    moving = {"sysUpTime", "ifHCInOctets", "ifHCOutOctets", "ifInErrors", "ifOutErrors", "ifInDiscards"}
    for key, sample in fast_got.items():
        assert sample.kind == slow_before[key].kind and sample.element == "a"
        if sample.metric in moving:
            assert_sandwiched(int(slow_before[key].value), int(sample.value), int(slow_after[key].value), str(key))
        else:
            assert sample.value == slow_before[key].value, key
    assert [i.name for i in fast_collector.interfaces] == [i.name for i in slow_collector.interfaces]
    assert [i.descr for i in fast_collector.interfaces] == [i.descr for i in slow_collector.interfaces]
    # the label walk is cached: the 2nd poll costs a GET and one GETBULK round (rows + 1)
    assert fast.stats.requests == 2 + 1 + 1 + 1
    assert not [s for s in second if s.kind is SampleKind.RATE], "same clock: no rate yet"


async def test_concurrent_requests_share_one_socket(snmpd: Agent) -> None:
    fast = FastSnmpClient()
    targets = [snmpd.target(f"e{i}") for i in range(40)]
    try:
        results = await asyncio.gather(
            *(fast.get(t, [SYS_NAME]) for t in targets),
            *(fast.walk_table(t, [IF_COLUMNS["ifDescr"]]) for t in targets),
        )
        address = fast.local_address()
    finally:
        fast.close()
    assert all(r == {SYS_NAME: os.uname().nodename} for r in results[:40])
    assert all(r == results[40] and r[IF_COLUMNS["ifDescr"]] for r in results[40:])
    assert address is not None and address[1] > 0
    assert fast.stats.responses == fast.stats.requests and fast.stats.dropped == 0


async def test_wrong_community_times_out_then_works(snmpd: Agent) -> None:
    fast = FastSnmpClient()
    try:
        with pytest.raises(SnmpTimeout):
            await fast.walk_table(snmpd.target(community="nope", timeout=0.2, retries=0), [SYS_NAME])
        assert (await fast.get(snmpd.target(), [SYS_NAME]))[SYS_NAME] == os.uname().nodename
    finally:
        fast.close()


async def test_timeout_retries_and_target_on_error() -> None:
    fast = FastSnmpClient()
    target = Target("dead", "127.0.0.1", free_udp_port(), timeout=0.2, retries=2)
    started = time.monotonic()
    try:
        with pytest.raises(SnmpTimeout) as caught:
            await fast.get(target, [SYS_UPTIME])
    finally:
        fast.close()
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 0.6 + 0.5
    assert caught.value.target is target and "dead" in str(caught.value)
    assert fast.stats.retransmits == 2 and fast.stats.timeouts == 1


async def test_v3_targets_are_refused_with_a_clear_error() -> None:
    target = Target("v3", "127.0.0.1", 161, version="3", user="u", auth_protocol="sha", auth_key="k" * 8)
    fast = FastSnmpClient()
    with pytest.raises(SnmpError, match="use SnmpClient") as caught:
        await fast.get(target, [SYS_UPTIME])
    assert caught.value.target is target
    fast.close()


async def test_bad_oid_text_is_a_value_error() -> None:
    fast = FastSnmpClient()
    with pytest.raises(ValueError, match="not a numeric OID"):
        await fast.get(Target("x", "127.0.0.1", 161), ["1.3.six"])
    fast.close()


# -- a fake agent on a loopback socket ----------------------------------------------------------

Reply = Callable[[ber.Message], list[bytes]]


class FakeAgent:
    """A UDP socket that answers each request with the datagrams ``reply`` builds for it."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a second source port
        self.other.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[ber.Message] = []

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        data, addr = self.sock.recvfrom(65535)
        request = ber.decode_message(data)
        self.requests.append(request)
        for datagram in self.reply(request):
            if datagram.startswith(b"OTHER:"):
                self.other.sendto(datagram[6:], addr)
            else:
                self.sock.sendto(datagram, addr)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        self.other.close()

    def target(self, **overrides: object) -> Target:
        options: dict[str, object] = {"community": COMMUNITY, "timeout": 0.3, "retries": 0}
        return Target("fake", "127.0.0.1", self.port, **{**options, **overrides})  # type: ignore[arg-type]


def response(
    request: ber.Message,
    varbinds: list[tuple[bytes, int, object]],
    *,
    request_id: int | None = None,
    community: bytes | None = None,
    version: int | None = None,
    pdu_type: int = ber.RESPONSE,
    status: int = 0,
    index: int = 0,
) -> bytes:
    """A response to ``request`` with optional wrong fields."""
    return ber.encode_message(
        request.version if version is None else version,
        request.community if community is None else community,
        pdu_type,
        request.request_id if request_id is None else request_id,
        status,
        index,
        varbinds,
    )


UPTIME_OID = ber.str_to_oid(SYS_UPTIME)


async def with_fake(reply: Reply, run: Callable[[FastSnmpClient, FakeAgent], object]) -> object:
    agent = FakeAgent(reply)
    agent.start()
    client = FastSnmpClient()
    try:
        return await run(client, agent)  # type: ignore[misc]
    finally:
        client.close()
        agent.close()


async def test_drops_wrong_answers_and_takes_the_right_one() -> None:
    def reply(request: ber.Message) -> list[bytes]:
        good = [(UPTIME_OID, ber.TIMETICKS, 4242)]
        bad = [(UPTIME_OID, ber.TIMETICKS, 666)]
        return [
            response(request, bad, request_id=request.request_id + 1),
            response(request, bad, community=b"other"),
            response(request, bad, version=0 if request.version else 1),
            response(request, bad, pdu_type=ber.GET_REQUEST),
            b"OTHER:" + response(request, bad),
            response(request, [(ber.str_to_oid(SYS_NAME), ber.TIMETICKS, 666)]),  # other name
            response(request, bad)[:-3],  # truncated
            b"\x30\x84\xff\xff\xff\xff",  # claims 4 GiB
            response(request, good),
            response(request, bad),  # a late duplicate: nobody waits for it any more
        ]

    async def run(client: FastSnmpClient, agent: FakeAgent) -> None:
        assert await client.get(agent.target(), [SYS_UPTIME]) == {SYS_UPTIME: 4242}
        await asyncio.sleep(0.05)
        stats = client.stats
        assert stats.dropped_wrong_community == 1
        assert stats.dropped_wrong_version == 1
        assert stats.dropped_not_response == 1
        assert stats.dropped_wrong_source == 1
        assert stats.dropped_malformed == 2
        assert stats.dropped_mismatched == 1
        assert stats.dropped_unknown_request == 2  # the wrong request-id and the late duplicate
        assert stats.responses == 1 and stats.requests == 1

    await with_fake(reply, run)


async def test_only_undecodable_answers_give_a_decode_error() -> None:
    def reply(request: ber.Message) -> list[bytes]:
        varbinds = [(UPTIME_OID, ber.TIMETICKS, 1)]
        good = response(request, varbinds)
        # same header, a varbind whose value claims more octets than there are
        return [good.replace(b"\x43\x01\x01", b"\x43\x02\x01")]

    async def run(client: FastSnmpClient, agent: FakeAgent) -> None:
        target = agent.target(retries=1, timeout=0.2)
        with pytest.raises(SnmpDecodeError) as caught:
            await client.get(target, [SYS_UPTIME])
        assert caught.value.target is target
        assert client.stats.retransmits == 1 and len(agent.requests) == 2

    await with_fake(reply, run)


async def test_error_status_is_a_protocol_error() -> None:
    def reply(request: ber.Message) -> list[bytes]:
        return [response(request, [(UPTIME_OID, ber.NULL, None)], status=5, index=1)]

    async def run(client: FastSnmpClient, agent: FakeAgent) -> None:
        with pytest.raises(SnmpProtocolError) as caught:
            await client.get(agent.target(), [SYS_UPTIME])
        assert caught.value.status == "genErr" and caught.value.index == 1
        assert SYS_UPTIME in str(caught.value)

    await with_fake(reply, run)


async def test_answers_that_do_not_fit_the_request_end_in_a_protocol_error() -> None:
    def reply(request: ber.Message) -> list[bytes]:  # always the same, stale first row
        return [response(request, [(ber.str_to_oid("1.3.6.1.2.1.2.2.1.2.1"), ber.OCTET_STRING, b"lo")])]

    async def run(client: FastSnmpClient, agent: FakeAgent) -> None:
        with pytest.raises(SnmpProtocolError, match="does not follow"):
            await client.walk_table(agent.target(), ["1.3.6.1.2.1.2.2.1.2.5"])
        assert client.stats.dropped_mismatched == 1

    await with_fake(reply, run)


async def test_walk_rejects_an_agent_that_goes_backwards() -> None:
    column = "1.3.6.1.2.1.2.2.1.2"
    rows = [(ber.str_to_oid(f"{column}.{i}"), ber.OCTET_STRING, b"eth") for i in (5, 3)]

    def reply(request: ber.Message) -> list[bytes]:
        return [response(request, rows)]  # the first row fits the request, the second goes back

    async def run(client: FastSnmpClient, agent: FakeAgent) -> None:
        with pytest.raises(SnmpProtocolError, match="not increasing"):
            await client.walk_table(agent.target(max_repetitions=2), [column])

    await with_fake(reply, run)


async def test_walk_converts_every_value_type_like_snmp_client() -> None:
    column = "1.3.6.1.4.1.99.1"
    values: list[tuple[int, object, object]] = [
        (ber.INTEGER, -7, -7),
        (ber.OCTET_STRING, b"uplink to core\n", "uplink to core\n"),
        (ber.OCTET_STRING, b"\x00\x1b\x21\x3a\x4f\x5e", b"\x00\x1b\x21\x3a\x4f\x5e"),
        (ber.OCTET_STRING, "广州".encode(), "广州"),
        (ber.OBJECT_IDENTIFIER, "1.3.6.1.4.1.2011", "1.3.6.1.4.1.2011"),
        (ber.IP_ADDRESS, "10.1.2.3", "10.1.2.3"),
        (ber.COUNTER32, 4294967295, 4294967295),
        (ber.GAUGE32, 10000, 10000),
        (ber.TIMETICKS, 123, 123),
        (ber.OPAQUE, b"\x9f\x78\x04", b"\x9f\x78\x04"),
        (ber.COUNTER64, 2**64 - 1, 2**64 - 1),
        (ber.NULL, None, None),
        (0x81, ber.NO_SUCH_INSTANCE, None),
    ]
    # index 200 and 16384 need multi-octet sub-identifiers
    indices = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 200, 16384]
    rows = [(ber.str_to_oid(f"{column}.{i}"), tag, v) for i, (tag, v, _) in zip(indices, values, strict=True)]
    rows.append((ber.str_to_oid("1.3.6.1.4.1.99.2.1"), ber.INTEGER, 1))  # next column: the end

    def reply(request: ber.Message) -> list[bytes]:
        return [response(request, rows)]

    async def run(client: FastSnmpClient, agent: FakeAgent) -> None:
        table = (await client.walk_table(agent.target(), [column]))[column]
        expected = {str(i): want for i, (_, _, want) in zip(indices, values, strict=True)}
        assert table == expected
        assert {k: type(v) for k, v in table.items()} == {k: type(v) for k, v in expected.items()}

    await with_fake(reply, run)


async def test_cancelled_and_closed_requests_leave_nothing_pending() -> None:
    def reply(request: ber.Message) -> list[bytes]:
        return []  # a black hole

    async def run(client: FastSnmpClient, agent: FakeAgent) -> None:
        task = asyncio.create_task(client.get(agent.target(timeout=5.0), [SYS_UPTIME]))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client._pending == {}
        waiting = asyncio.create_task(client.get(agent.target(timeout=5.0), [SYS_UPTIME]))
        await asyncio.sleep(0.05)
        client.close()
        with pytest.raises(SnmpError, match="client closed"):
            await waiting

    await with_fake(reply, run)
