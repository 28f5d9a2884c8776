"""Collector benchmark: poller CPU per varbind of vigil vs Prometheus snmp_exporter vs snmpbulkwalk.

All pollers read what vigil's IF-MIB profile reads every poll -- GET sysUpTime.0, ifNumber.0,
ifTableLastChange.0 and a walk of ifHCInOctets, ifHCOutOctets, ifInErrors, ifOutErrors,
ifInDiscards, ifOperStatus, ifAdminStatus, ifCounterDiscontinuityTime -- from the same Net-SNMP snmpd on
loopback, GETBULK max-repetitions 25, in one run:

1. vigil: ``IfMibCollector.collect`` on ``FastSnmpClient`` (in-process CPU, time.process_time);
2. vigil: ``IfMibCollector.collect`` on the pysnmp ``SnmpClient``;
3. Prometheus snmp_exporter (Debian prometheus-snmp-exporter) with a hand-written module, scraped
   over HTTP; its CPU read from /proc/PID/stat (HTTP and text exposition included);
4. Net-SNMP ``snmpbulkwalk`` (one process per column + ``snmpget``), CPU of the children.

A varbind is one collected value (interfaces x 8 + 3 per poll), counted with Net-SNMP's tools at
start-up; every poller is checked to collect exactly that many per poll.

As root, the run happens in two throwaway network namespaces, deleted at the end: one holding
~200 virtual interfaces (veth pairs) so the agent has a big interface table, one holding exactly
24 (lo + 23 bridges: Debian's snmpd ignores include_ifmib_iface_prefix/ifmib_max_num_ifaces), the
shape of the "2,000 elements x 24 interfaces every 60 s" estimate. The host's network is never
touched. Without root (or with ``--no-netns``) both phases poll the host's own interfaces.

Usage: .venv/bin/python benchmarks/collector.py [--interfaces 200] [--seconds 6]
The last line printed is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMMUNITY = "vigilbench"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
# What vigil's IF-MIB profile (collectors/profiles/if-mib.yaml) reads every poll (ifHighSpeed,
# ifDescr, ifName, ifAlias, ifType are cached lookups); every poller below is given the same list.
SCALARS = {
    "sysUpTime": SYS_UPTIME,
    "ifNumber": "1.3.6.1.2.1.2.1.0",
    "ifTableLastChange": "1.3.6.1.2.1.31.1.5.0",
}
STATE_COLUMNS = {
    "ifHCInOctets": ("1.3.6.1.2.1.31.1.1.1.6", "counter"),
    "ifHCOutOctets": ("1.3.6.1.2.1.31.1.1.1.10", "counter"),
    "ifInErrors": ("1.3.6.1.2.1.2.2.1.14", "counter"),
    "ifOutErrors": ("1.3.6.1.2.1.2.2.1.20", "counter"),
    "ifInDiscards": ("1.3.6.1.2.1.2.2.1.13", "counter"),
    "ifOperStatus": ("1.3.6.1.2.1.2.2.1.8", "gauge"),
    "ifAdminStatus": ("1.3.6.1.2.1.2.2.1.7", "gauge"),
    "ifCounterDiscontinuityTime": ("1.3.6.1.2.1.31.1.1.1.19", "gauge"),
}
MAX_REPETITIONS = 25
SMALL_PREFIX = "vsa"  # the 24-interface namespace: lo + 23 bridges named so
CLK_TCK = os.sysconf("SC_CLK_TCK")


def poll_commands(port: int) -> list[list[str]]:
    """Net-SNMP's poll: snmpget of the scalars + one snmpbulkwalk per column."""
    agent = f"127.0.0.1:{port}"
    base = ["-v2c", "-c", COMMUNITY, "-On", "-Oq", "-t", "5", "-r", "1"]
    commands = [["snmpget", *base, agent, *SCALARS.values()]]
    commands += [["snmpbulkwalk", *base, f"-Cr{MAX_REPETITIONS}", agent, oid] for oid, _ in STATE_COLUMNS.values()]
    return commands


def count_values(port: int) -> int:
    """Values one poll collects from the agent, as Net-SNMP's tools print them."""
    total = 0
    for command in poll_commands(port):
        out = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "MIBS": ""})
        total += sum(1 for line in out.stdout.splitlines() if line.strip() and "No Such" not in line)
    return total


def log(message: str) -> None:
    """Progress on stderr; figures on stdout."""
    print(message, file=sys.stderr, flush=True)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------------
# Outside: the network namespace with many interfaces


def ip(*args: str, stdin: str | None = None) -> None:
    subprocess.run(["ip", *args], input=stdin, text=True, check=True, capture_output=True)


def make_namespace(name: str, commands: list[str]) -> None:
    """A network namespace holding the interfaces ``commands`` create."""
    ip("netns", "add", name)
    ip("-n", name, "-batch", "-", stdin="\n".join(["link set lo up", *commands]) + "\n")


def run_phase_in(namespace: str, phase: str, args: argparse.Namespace) -> dict[str, object]:
    """Run one phase of this script inside ``namespace``; its result is its last stdout line."""
    command = [
        "ip",
        "netns",
        "exec",
        namespace,
        sys.executable,
        __file__,
        "--inside",
        phase,
        "--seconds",
        str(args.seconds),
    ]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"phase {phase} failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_in_namespaces(args: argparse.Namespace) -> int:
    """Two throwaway namespaces (a big interface table; exactly 24 interfaces), then report."""
    big_ns, small_ns = f"vigil-bench-{os.getpid()}", f"vigil-bench-{os.getpid()}-24"
    pairs = max(args.interfaces - 2, 2) // 2  # lo + 2 x pairs veth (+ 1 bridge if odd)
    big_cmds = [f"link add vbb{i}a type veth peer name vbb{i}b" for i in range(pairs)]
    big_cmds += [f"link set vbb{i}{side} up" for i in range(pairs) for side in "ab"]
    if (args.interfaces - 1) % 2:
        big_cmds += ["link add vbbbr type bridge", "link set vbbbr up"]
    small_cmds = [f"link add {SMALL_PREFIX}{i} type bridge" for i in range(23)]
    small_cmds += [f"link set {SMALL_PREFIX}{i} up" for i in range(23)]
    try:
        make_namespace(big_ns, big_cmds)
        make_namespace(small_ns, small_cmds)
    except (subprocess.CalledProcessError, FileNotFoundError) as err:
        for name in (big_ns, small_ns):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        log(f"no network namespace ({err}); polling the host's interfaces instead")
        return run_here(args)
    try:
        log(f"network namespaces: {big_ns} (lo + {pairs} veth pairs), {small_ns} (lo + 23 bridges)")
        big = run_phase_in(big_ns, "big", args)
        small = run_phase_in(small_ns, "small", args)
    finally:
        for name in (big_ns, small_ns):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
    report(big, small, "in throwaway network namespaces")
    return 0


# ---------------------------------------------------------------------------------------------
# Inside: agents, exporter, pollers


@dataclass
class Agent:
    """One snmpd we started."""

    process: subprocess.Popen[bytes]
    port: int
    interfaces: int
    values: int  # varbinds one poll collects


@contextmanager
def snmpd(workdir: Path, name: str, extra: str = "") -> Iterator[Agent]:
    """An unprivileged snmpd on a free loopback port, stopped on exit."""
    port = free_port(socket.SOCK_DGRAM)
    conf = workdir / f"{name}.conf"
    conf.write_text(f"agentAddress udp:127.0.0.1:{port}\nrocommunity {COMMUNITY} 127.0.0.1\n{extra}")
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir / f"{name}-persist"), "MIBS": ""}
    command = ["snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(workdir / f"{name}.log")]
    command += ["-p", str(workdir / f"{name}.pid"), "-I", "-smux", "-M", str(workdir)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            out = subprocess.run(
                [
                    "snmpbulkwalk",
                    "-v2c",
                    "-c",
                    COMMUNITY,
                    "-On",
                    "-Oqv",
                    "-t",
                    "0.5",
                    "-r",
                    "0",
                    f"127.0.0.1:{port}",
                    "1.3.6.1.2.1.2.2.1.1",
                ],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "MIBS": ""},
            )
            if out.returncode == 0 and out.stdout.strip():
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"snmpd {name} did not start")
            time.sleep(0.1)
        yield Agent(process, port, len(out.stdout.split()), count_values(port))
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def exporter_config() -> dict[str, object]:
    """A snmp_exporter 0.21 module walking the same columns with numeric OIDs (no lookups)."""
    metrics: list[dict[str, object]] = [
        {"name": name, "oid": oid[:-2], "type": "gauge"} for name, oid in SCALARS.items()
    ]
    metrics += [
        {"name": name, "oid": oid, "type": kind, "indexes": [{"labelname": "ifIndex", "type": "gauge"}]}
        for name, (oid, kind) in STATE_COLUMNS.items()
    ]
    module = {
        "version": 2,
        "max_repetitions": MAX_REPETITIONS,
        "retries": 1,
        "timeout": "5s",
        "auth": {"community": COMMUNITY},
        "get": list(SCALARS.values()),
        "walk": [oid for oid, _ in STATE_COLUMNS.values()],
        "metrics": metrics,
    }
    return {"vigil_if": module}


@contextmanager
def snmp_exporter(workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Prometheus snmp_exporter with our module on a free port, stopped on exit."""
    binary = shutil.which("prometheus-snmp-exporter") or shutil.which("snmp_exporter")
    if binary is None:
        raise RuntimeError("prometheus-snmp-exporter is not installed (apt-get install prometheus-snmp-exporter)")
    config = workdir / "snmp.yml"
    config.write_text(json.dumps(exporter_config(), indent=1))  # JSON is YAML
    port = free_port(socket.SOCK_STREAM)
    command = [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            with suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/metrics")
                if conn.getresponse().status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"snmp_exporter did not start: {err}")
            time.sleep(0.1)
        yield process, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Result:
    """CPU and wall time spent to collect ``varbinds`` values in ``polls`` polls."""

    name: str
    polls: int
    varbinds: int
    cpu: float
    wall: float
    requests: int = 0

    @property
    def cpu_ms_per_varbind(self) -> float:
        return self.cpu * 1000 / self.varbinds

    @property
    def varbinds_per_s(self) -> float:
        return self.varbinds / self.wall

    @property
    def cpu_ms_per_poll(self) -> float:
        return self.cpu * 1000 / self.polls


async def poll_loop(
    name: str,
    make_client: Callable[[], object],
    port: int,
    interfaces: int,
    expected: int,
    seconds: float,
    elements: int,
) -> Result:
    """Poll ``elements`` IfMibCollectors (one agent) round after round for ``seconds``."""
    from collectors.ifmib import IfMibCollector
    from collectors.snmp import Target

    client = make_client()
    collectors = [
        IfMibCollector(
            client,  # type: ignore[arg-type]
            Target(f"{name}-{i}", "127.0.0.1", port, community=COMMUNITY, timeout=5.0, max_repetitions=MAX_REPETITIONS),
        )
        for i in range(elements)
    ]
    try:
        await asyncio.gather(*(c.collect() for c in collectors))  # warm-up: labels, caches
        await asyncio.gather(*(c.collect() for c in collectors))
        assert all(len(c.interfaces) == interfaces for c in collectors), "interface count moved"
        per_poll = {c.varbinds for c in collectors}
        if per_poll != {expected}:
            raise RuntimeError(f"{name}: a poll collected {per_poll} varbinds, expected {expected}")
        stats = getattr(client, "stats", None)
        requests_before = stats.requests if stats else 0
        polls = varbinds = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while time.perf_counter() - wall0 < seconds:
            await asyncio.gather(*(c.collect() for c in collectors))
            polls += elements
            varbinds += sum(c.varbinds for c in collectors)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        requests = (stats.requests - requests_before) if stats else 0
    finally:
        client.close()  # type: ignore[attr-defined]
    return Result(name, polls, varbinds, cpu, wall, requests)


async def client_only_loop(port: int, interfaces: int, expected: int, seconds: float, elements: int) -> Result:
    """FastSnmpClient alone: the scalars' GET + the multi-column walk, no samples built."""
    from collectors.snmp import Target
    from collectors.v2c import FastSnmpClient

    client = FastSnmpClient()
    target = Target("walk", "127.0.0.1", port, community=COMMUNITY, timeout=5.0, max_repetitions=MAX_REPETITIONS)
    columns = [oid for oid, _ in STATE_COLUMNS.values()]
    reps = min(interfaces + 1, MAX_REPETITIONS)

    async def poll() -> None:
        await client.get(target, list(SCALARS.values()))
        await client.walk_table(target, columns, max_repetitions=reps)

    try:
        await asyncio.gather(*(poll() for _ in range(elements)))
        polls = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while time.perf_counter() - wall0 < seconds:
            await asyncio.gather(*(poll() for _ in range(elements)))
            polls += elements
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        client.close()
    return Result("vigil client only", polls, polls * expected, cpu, wall)


async def request_loop(port: int, seconds: float, concurrency: int) -> Result:
    """Per-request cost of FastSnmpClient: GET sysUpTime.0 (1 varbind) over and over."""
    from collectors.snmp import Target
    from collectors.v2c import FastSnmpClient

    client = FastSnmpClient()
    target = Target("get", "127.0.0.1", port, community=COMMUNITY, timeout=5.0)
    try:
        await client.get(target, [SYS_UPTIME])
        requests = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while time.perf_counter() - wall0 < seconds:
            await asyncio.gather(*(client.get(target, [SYS_UPTIME]) for _ in range(concurrency)))
            requests += concurrency
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        client.close()
    return Result("vigil GET", requests, requests, cpu, wall, requests)


def exporter_loop(pid: int, port: int, agent_port: int, expected: int, seconds: float, threads: int) -> Result:
    """Scrape snmp_exporter from ``threads`` keep-alive HTTP clients; the exporter's CPU."""
    path = f"/snmp?target=127.0.0.1:{agent_port}&module=vigil_if"
    names = (*SCALARS, *STATE_COLUMNS)

    def scrape(conn: http.client.HTTPConnection) -> str:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
        if response.status != 200:
            raise RuntimeError(f"exporter answered {response.status}: {body[:200]}")
        return body

    warm = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = scrape(warm)
    samples = sum(1 for line in body.splitlines() if line.split("{")[0].split(" ")[0] in names)
    if samples != expected:
        raise RuntimeError(f"exporter returned {samples} samples, expected {expected}")
    if "snmp_scrape_pdus_returned" not in body:
        raise RuntimeError("unexpected exporter output")
    warm.close()
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < stop:
            scrape(conn)
            counts[slot] += 1
        conn.close()

    cpu0, wall0 = proc_cpu(pid), time.perf_counter()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    cpu, wall = proc_cpu(pid) - cpu0, time.perf_counter() - wall0
    polls = sum(counts)
    return Result("snmp_exporter", polls, polls * samples, cpu, wall)


def bulkwalk_loop(agent_port: int, expected: int, seconds: float, parallel: int) -> Result:
    """One poll = snmpget of the scalars + one snmpbulkwalk per column; CPU of the children."""
    env = {**os.environ, "MIBS": ""}
    commands = poll_commands(agent_port)
    polls = 0
    cpu0, wall0 = children_cpu(), time.perf_counter()
    while time.perf_counter() - wall0 < seconds:
        running = [
            subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            for _ in range(parallel)
            for c in commands
        ]
        if any(p.wait() != 0 for p in running):
            raise RuntimeError("snmpbulkwalk failed")
        polls += parallel
    cpu, wall = children_cpu() - cpu0, time.perf_counter() - wall0
    return Result("snmpbulkwalk", polls, polls * expected, cpu, wall, polls * len(commands))


def phase_big(seconds: float) -> dict[str, object]:
    """Every poller against one snmpd with a big interface table."""
    from collectors.snmp import SnmpClient
    from collectors.v2c import FastSnmpClient

    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        workdir = Path(tmp)
        with snmpd(workdir, "big") as big, snmp_exporter(workdir) as (exporter, exporter_port):
            n, v = big.interfaces, big.values
            log(f"agent: snmpd with {n} interfaces, {v} values per poll")

            def measured(name: str, fn: Callable[[], Result]) -> dict[str, object]:
                log(f"  {name} ...")
                before = proc_cpu(big.process.pid)
                result = fn()
                return {**asdict(result), "agent_cpu": proc_cpu(big.process.pid) - before}

            return {
                "interfaces": n,
                "values": v,
                "fast": measured(
                    "vigil + FastSnmpClient",
                    lambda: asyncio.run(poll_loop("fast", FastSnmpClient, big.port, n, v, seconds, 8)),
                ),
                "only": measured(
                    "FastSnmpClient alone", lambda: asyncio.run(client_only_loop(big.port, n, v, seconds / 2, 8))
                ),
                "slow": measured(
                    "vigil + pysnmp SnmpClient",
                    lambda: asyncio.run(poll_loop("pysnmp", SnmpClient, big.port, n, v, seconds, 8)),
                ),
                "exporter": measured(
                    "snmp_exporter", lambda: exporter_loop(exporter.pid, exporter_port, big.port, v, seconds, 4)
                ),
                "bulkwalk": measured("snmpbulkwalk", lambda: bulkwalk_loop(big.port, v, seconds, 2)),
            }


def phase_small(seconds: float) -> dict[str, object]:
    """Per-request cost and a real poll of a small element (24 interfaces in the namespace)."""
    from collectors.v2c import FastSnmpClient

    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp, snmpd(Path(tmp), "small") as small:
        log(f"agent: snmpd with {small.interfaces} interfaces")
        per_request = asyncio.run(request_loop(small.port, seconds / 2, 16))
        polls = asyncio.run(
            poll_loop("fast24", FastSnmpClient, small.port, small.interfaces, small.values, seconds / 2, 16)
        )
    return {
        "interfaces": small.interfaces,
        "values": small.values,
        "request": asdict(per_request),
        "poll": asdict(polls),
    }


def run_here(args: argparse.Namespace) -> int:
    """Both phases in this process's network namespace (the host's interfaces)."""
    report(phase_big(args.seconds), phase_small(args.seconds), "host network namespace")
    return 0


def _result(data: object) -> tuple[Result, float | None]:
    fields = dict(data)  # type: ignore[call-overload]
    agent = fields.pop("agent_cpu", None)
    return Result(**fields), agent


def report(big: dict[str, object], small: dict[str, object], where: str) -> None:
    """Print the table, the ratios, the 2,000 x 24 estimate and the JSON line."""
    n = big["interfaces"]
    (fast, fast_agent), (only, _), (slow, slow_agent), (exp, exp_agent), (walk, walk_agent) = (
        _result(big[key]) for key in ("fast", "only", "slow", "exporter", "bulkwalk")
    )
    per_request, _ = _result(small["request"])
    small_poll, _ = _result(small["poll"])
    # Extrapolation: c_req = CPU of one GET of 1 varbind; c_vb = the marginal CPU of a varbind
    # in the big-table run once its requests are paid; a poll of 24 interfaces costs r24 requests
    # (the GET of the scalars + the GETBULK rounds snmpd needed, counted on the 24-interface
    # agent) and v24 = 24 x 8 + 3 = 195 varbinds.
    c_req = per_request.cpu * 1000 / per_request.requests
    c_vb = (fast.cpu * 1000 - fast.requests * c_req) / fast.varbinds
    r24 = small_poll.requests / small_poll.polls
    v24 = int(small["values"])  # type: ignore[call-overload]
    poll_24_ms = r24 * c_req + v24 * c_vb
    share = 2000 * poll_24_ms / 1000 / 60
    share_measured = 2000 * small_poll.cpu_ms_per_poll / 1000 / 60

    print(
        f"agent: Net-SNMP snmpd on loopback ({where}), {n} interfaces; columns "
        f"{', '.join(STATE_COLUMNS)} + GET {', '.join(SCALARS)}; GETBULK max-repetitions {MAX_REPETITIONS}"
    )
    print(
        f"{'poller':<36}{'polls':>7}{'varbinds':>10}{'varbinds/s':>12}{'CPU s':>8}"
        f"{'ms CPU/varbind':>16}{'agent CPU s':>13}"
    )
    rows = [
        ("vigil IfMibCollector+FastSnmpClient", fast, fast_agent),
        ("  FastSnmpClient alone (GET+walk)", only, None),
        ("vigil IfMibCollector+pysnmp", slow, slow_agent),
        ("snmp_exporter 0.21 (HTTP scrapes)", exp, exp_agent),
        ("snmpbulkwalk+snmpget processes", walk, walk_agent),
    ]
    for label, result, agent in rows:
        agent_text = f"{agent:>13.2f}" if agent is not None else f"{'':>13}"
        print(
            f"{label:<36}{result.polls:>7}{result.varbinds:>10}{result.varbinds_per_s:>12.0f}"
            f"{result.cpu:>8.2f}{result.cpu_ms_per_varbind:>16.5f}{agent_text}"
        )
    ratio = fast.cpu_ms_per_varbind / exp.cpu_ms_per_varbind
    print(
        f"ratio vigil/snmp_exporter = {ratio:.3f}; pysnmp/snmp_exporter = "
        f"{slow.cpu_ms_per_varbind / exp.cpu_ms_per_varbind:.2f}; snmpbulkwalk/snmp_exporter = "
        f"{walk.cpu_ms_per_varbind / exp.cpu_ms_per_varbind:.2f}; vigil fast path vs pysnmp: "
        f"{slow.cpu_ms_per_varbind / fast.cpu_ms_per_varbind:.1f}x less CPU"
    )
    print(
        f"c_req = {c_req:.4f} ms CPU per request (GET of 1 varbind, {per_request.requests} GETs); "
        f"c_vb = {c_vb:.5f} ms CPU per varbind (big-table run minus {fast.requests} requests x c_req)"
    )
    print(
        f"2,000 elements x 24 interfaces every 60 s: CPU share of one core = "
        f"2000 x (r24 x c_req + v24 x c_vb) / 60 s with r24 = {r24:.2f} requests and v24 = {v24} "
        f"varbinds per poll = {share:.4f} ({share * 100:.2f} %); "
        f"measured on a {small['interfaces']}-interface snmpd: {small_poll.cpu_ms_per_poll:.3f} ms "
        f"CPU per poll -> {share_measured:.4f} ({share_measured * 100:.2f} %)"
    )
    figures = {
        "vigil_cpu_ms_per_varbind": round(fast.cpu_ms_per_varbind, 6),
        "snmp_exporter_cpu_ms_per_varbind": round(exp.cpu_ms_per_varbind, 6),
        "ratio_vs_snmp_exporter": round(ratio, 4),
        "pysnmp_cpu_ms_per_varbind": round(slow.cpu_ms_per_varbind, 6),
        "snmpbulkwalk_cpu_ms_per_varbind": round(walk.cpu_ms_per_varbind, 6),
        "cpu_share_2000x24_per_60s": round(share, 5),
        "cpu_share_2000x24_per_60s_measured": round(share_measured, 5),
        "vigil_client_only_cpu_ms_per_varbind": round(only.cpu_ms_per_varbind, 6),
        "vigil_varbinds_per_s": round(fast.varbinds_per_s),
        "snmp_exporter_varbinds_per_s": round(exp.varbinds_per_s),
        "pysnmp_varbinds_per_s": round(slow.varbinds_per_s),
        "c_req_ms": round(c_req, 5),
        "c_vb_ms": round(c_vb, 6),
        "interfaces": n,
        "small_agent_interfaces": small["interfaces"],
    }
    print(json.dumps(figures), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interfaces", type=int, default=200, help="interfaces of the big agent")
    parser.add_argument("--seconds", type=float, default=6.0, help="duration of each poller's run")
    parser.add_argument("--no-netns", action="store_true", help="poll the host's interfaces")
    parser.add_argument("--inside", choices=["big", "small"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    for tool in ("snmpd", "snmpbulkwalk", "snmpget"):
        if shutil.which(tool) is None:
            log(f"{tool} is not installed (apt-get install snmpd snmp)")
            return 2
    if args.inside:
        phase = phase_big if args.inside == "big" else phase_small
        print(json.dumps(phase(args.seconds)), flush=True)
        return 0
    if args.no_netns or os.geteuid() != 0 or shutil.which("ip") is None:
        return run_here(args)
    return run_in_namespaces(args)


if __name__ == "__main__":
    sys.exit(main())
