"""SNMPv3 USM against a real Net-SNMP snmpd: every auth/priv pair it supports, wrong keys, reboots.

Net-SNMP 5.9.3 (Debian 12) accepts ``createUser`` with MD5, SHA, SHA-224/256/384/512 and DES, AES,
AES-192, AES-256; its AES-192/256 extend short keys as draft-blumenthal-aes-usm-04 does (vigil's
``aes192``/``aes256``). The Cisco-style ``aes192c``/``aes256c`` key extension is checked only as
"differs from Net-SNMP's" (the agent cannot serve it), and 3DES is not offered by vigil.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collectors.snmp import SnmpAuthError, SnmpClient, SnmpTimeout, Target
from collectors.targets import TargetConfigError, targets_for
from config.models import SiteConfig
from tests.conftest import free_udp_port, require_binary

AUTH_KEY = "vigil-auth-pass"
PRIV_KEY = "vigil-priv-pass"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
ENGINE_BOOTS = "1.3.6.1.6.3.10.2.1.2.0"
ENGINE_ID = "1.3.6.1.6.3.10.2.1.1.0"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"

# (user, vigil auth, Net-SNMP auth, vigil priv, Net-SNMP priv): every auth and every priv once.
USERS = [
    ("u-md5-des", "md5", "MD5", "des", "DES"),
    ("u-sha-aes", "sha", "SHA", "aes", "AES"),
    ("u-sha224-aes", "sha224", "SHA-224", "aes", "AES"),
    ("u-sha256-aes192", "sha256", "SHA-256", "aes192", "AES-192"),
    ("u-sha384-aes256", "sha384", "SHA-384", "aes256", "AES-256"),
    ("u-sha512-aes256", "sha512", "SHA-512", "aes256", "AES-256"),
    ("u-sha-aes256", "sha", "SHA", "aes256", "AES-256"),  # SHA-1 is too short: key extension
    ("u-md5-aes192", "md5", "MD5", "aes192", "AES-192"),
]
AUTH_ONLY = ("u-sha256-auth", "sha256", "SHA-256")


@dataclass
class Snmpd:
    """A Net-SNMP snmpd that can be restarted on the same port."""

    binary: str
    workdir: Path
    port: int
    persistent: bool  # keep engine ID and boots across restarts (else a new engine ID each start)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.workdir / "snmpd.conf"
        lines = [f"agentAddress udp:127.0.0.1:{self.port}"]
        for user, _, auth, _, priv in USERS:
            lines += [f"createUser {user} {auth} {AUTH_KEY} {priv} {PRIV_KEY}", f"rouser {user} priv"]
        user, _, auth = AUTH_ONLY
        lines += [f"createUser {user} {auth} {AUTH_KEY}", f"rouser {user} auth"]
        conf.write_text("\n".join(lines) + "\n")
        persist = self.workdir / "persist"
        persist.mkdir(exist_ok=True)
        (persist / "snmpd.conf").touch()
        # -C reads only the -c files: listing the persistent file keeps engine ID and boots.
        files = f"{conf},{persist / 'snmpd.conf'}" if self.persistent else str(conf)
        command = [self.binary, "-f", "-C", "-c", files, "-Lf", str(self.workdir / "log"),
                   "-I", "-smux", "-M", str(self.workdir)]
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(persist), "MIBS": ""}
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"snmpd exited: {(self.workdir / 'log').read_text()}")
            user, _, auth, _, priv = USERS[1]
            done = subprocess.run(
                ["snmpget", "-v3", "-l", "authPriv", "-u", user, "-a", auth, "-A", AUTH_KEY,
                 "-x", priv, "-X", PRIV_KEY, "-t", "0.2", "-r", "0", f"127.0.0.1:{self.port}",
                 SYS_UPTIME],
                capture_output=True, check=False, env={**os.environ, "MIBS": ""},
            )
            if done.returncode == 0:
                return
        pytest.fail("snmpd did not answer v3 within 10 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def target(self, user: str, auth: str = "sha", priv: str = "aes", **overrides: object) -> Target:
        options: dict[str, object] = {
            "version": "3", "user": user, "auth_protocol": auth,
            "auth_key": AUTH_KEY if auth != "none" else None,
            "priv_protocol": priv, "priv_key": PRIV_KEY if priv != "none" else None,
            "timeout": 0.5, "retries": 1, **overrides,
        }
        return Target("v3-agent", "127.0.0.1", self.port, **options)  # type: ignore[arg-type]


def _snmpd(tmp_path: Path, persistent: bool) -> Iterator[Snmpd]:
    binary = require_binary("snmpd", "/usr/sbin/snmpd")
    require_binary("snmpget")
    agent = Snmpd(binary, tmp_path, free_udp_port(), persistent)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    yield from _snmpd(tmp_path_factory.mktemp("snmpd-v3"), persistent=True)


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    c = SnmpClient()
    yield c
    c.close()


def _netsnmp_walk(agent: Snmpd, oid: str) -> dict[str, str]:
    user, _, auth, _, priv = USERS[1]
    out = subprocess.run(
        ["snmpbulkwalk", "-v3", "-l", "authPriv", "-u", user, "-a", auth, "-A", AUTH_KEY, "-x", priv,
         "-X", PRIV_KEY, "-On", "-Oq", f"127.0.0.1:{agent.port}", oid],
        capture_output=True, text=True, check=True, env={**os.environ, "MIBS": ""},
    ).stdout
    prefix = "." + oid + "."
    return {
        name[len(prefix):]: value.strip().strip('"')
        for name, _, value in (line.partition(" ") for line in out.splitlines())
    }


@pytest.mark.parametrize(("user", "auth", "_a", "priv", "_p"), USERS, ids=[u[0] for u in USERS])
async def test_auth_priv_combinations(
    snmpd: Snmpd, client: SnmpClient, user: str, auth: str, _a: str, priv: str, _p: str
) -> None:
    target = snmpd.target(user, auth, priv)
    values = await client.get(target, [SYS_UPTIME, ENGINE_ID])
    assert isinstance(values[SYS_UPTIME], int) and values[SYS_UPTIME] > 0
    assert isinstance(values[ENGINE_ID], bytes) and len(values[ENGINE_ID]) >= 5


async def test_auth_no_priv(snmpd: Snmpd, client: SnmpClient) -> None:
    user, auth, _ = AUTH_ONLY
    target = snmpd.target(user, auth, "none")
    assert target.security_level == "authNoPriv"
    assert isinstance((await client.get(target, [SYS_UPTIME]))[SYS_UPTIME], int)


async def test_v3_table_walk_matches_snmpbulkwalk(snmpd: Snmpd, client: SnmpClient) -> None:
    expected = _netsnmp_walk(snmpd, IF_DESCR)
    table = await client.walk_table(snmpd.target("u-sha512-aes256", "sha512", "aes256"), [IF_DESCR])
    assert expected and table[IF_DESCR] == expected


async def test_wrong_auth_key_is_an_auth_error_after_one_round_trip(
    snmpd: Snmpd, client: SnmpClient
) -> None:
    target = snmpd.target("u-sha-aes", auth_key="not-the-auth-key", timeout=2.0, retries=2)
    started = time.monotonic()
    with pytest.raises(SnmpAuthError, match="(?i)digest") as caught:
        await client.get(target, [SYS_UPTIME])
    assert time.monotonic() - started < 1.0  # a report, not the 6 s timeout budget
    assert "not-the-auth-key" not in str(caught.value) and "not-the-auth-key" not in repr(target)


async def test_unknown_user_is_an_auth_error(snmpd: Snmpd, client: SnmpClient) -> None:
    started = time.monotonic()
    with pytest.raises(SnmpAuthError, match="(?i)unknown.*user"):
        await client.get(snmpd.target("nobody-here", timeout=2.0, retries=2), [SYS_UPTIME])
    assert time.monotonic() - started < 1.0


async def test_wrong_priv_key_is_an_auth_error_not_a_timeout(
    snmpd: Snmpd, client: SnmpClient
) -> None:
    # The agent silently drops what it cannot decrypt; the client proves it alive at authNoPriv.
    target = snmpd.target("u-sha-aes", priv_key="not-the-priv-key")
    started = time.monotonic()
    with pytest.raises(SnmpAuthError, match="priv_key"):
        await client.get(target, [SYS_UPTIME])
    assert time.monotonic() - started < 0.5 * 2 + 1.0 + 1.0 + 0.5  # budget + retry + probe
    # The good key still works afterwards on the same client (no poisoned USM row).
    assert (await client.get(snmpd.target("u-sha-aes"), [SYS_UPTIME]))[SYS_UPTIME]


async def test_cisco_aes256_key_extension_differs_from_net_snmp(
    snmpd: Snmpd, client: SnmpClient
) -> None:
    with pytest.raises(SnmpAuthError, match="priv_protocol"):
        await client.get(snmpd.target("u-sha-aes256", "sha", "aes256c"), [SYS_UPTIME])
    assert await client.get(snmpd.target("u-sha-aes256", "sha", "aes256"), [SYS_UPTIME])


async def test_same_user_name_with_two_key_sets(snmpd: Snmpd, client: SnmpClient) -> None:
    good = snmpd.target("u-sha-aes")
    wrong = snmpd.target("u-sha-aes", auth_key="other-auth-key")
    assert await client.get(good, [SYS_UPTIME])
    with pytest.raises(SnmpAuthError):
        await client.get(wrong, [SYS_UPTIME])
    assert await client.get(good, [SYS_UPTIME])  # the wrong set did not replace the good one


async def test_dead_v3_agent_is_a_timeout(client: SnmpClient) -> None:
    target = Target("dead", "127.0.0.1", free_udp_port(), version="3", user="u", auth_protocol="sha",
                    auth_key=AUTH_KEY, timeout=0.3, retries=0)
    with pytest.raises(SnmpTimeout):
        await client.get(target, [SYS_UPTIME])


@pytest.mark.parametrize("persistent", [True, False], ids=["boots+1", "new-engine-id"])
async def test_agent_restart_between_polls_is_not_down(tmp_path: Path, persistent: bool) -> None:
    """Engine boots went up (same engine ID), or the agent came back with a new engine ID."""
    for agent in _snmpd(tmp_path, persistent):
        client = SnmpClient()
        try:
            target = agent.target("u-sha256-aes192", "sha256", "aes192")
            before = await client.get(target, [ENGINE_BOOTS, ENGINE_ID])
            agent.stop()
            time.sleep(1.1)  # engine time must not be the same second
            agent.start()
            after = await client.get(target, [ENGINE_BOOTS, ENGINE_ID])
            if persistent:
                assert after[ENGINE_ID] == before[ENGINE_ID]
                assert after[ENGINE_BOOTS] == before[ENGINE_BOOTS] + 1  # type: ignore[operator]
            else:
                assert after[ENGINE_ID] != before[ENGINE_ID]
            assert await client.get(target, [SYS_UPTIME])  # and it stays synchronised
        finally:
            client.close()


def test_target_validation_and_repr_hide_secrets() -> None:
    target = Target("e", "h", 161, version="3", user="ops", auth_protocol="sha512",
                    auth_key="s3cret-auth", priv_protocol="aes256", priv_key="s3cret-priv")
    text = repr(target) + str(target)
    assert "s3cret" not in text and "ops" in text and "authPriv" in text
    v2 = Target("e", "h", 161, community="c0mmunity-secret")
    assert "c0mmunity-secret" not in repr(v2)
    with pytest.raises(ValueError, match="needs a user"):
        Target("e", "h", 161, version="3")
    with pytest.raises(ValueError, match="privacy needs authentication"):
        Target("e", "h", 161, version="3", user="u", priv_protocol="aes", priv_key="12345678")
    with pytest.raises(ValueError, match="at least 8"):
        Target("e", "h", 161, version="3", user="u", auth_protocol="sha", auth_key="short")
    with pytest.raises(ValueError, match="unknown auth_protocol"):
        Target("e", "h", 161, version="3", user="u", auth_protocol="sha1", auth_key="12345678")
    with pytest.raises(ValueError, match="go together"):
        Target("e", "h", 161, version="3", user="u", auth_protocol="md5")
    assert dataclasses.replace(target, priv_protocol="none", priv_key=None).security_level == "authNoPriv"


def test_targets_for_resolves_secrets_from_inline_env_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "priv.key").write_text("file-priv-key\nignored second line\n")
    monkeypatch.setenv("VIGIL_TEST_AUTH", "env-auth-key")
    site = SiteConfig.model_validate({
        "snmp": {
            "defaults": {"timeout": "3s", "retries": 2, "max_repetitions": 40},
            "credentials": {
                "v2": {"version": "2c", "community_env": "VIGIL_TEST_AUTH"},
                "v1": {"version": "1", "community": "inline-community"},
                "v3": {"version": "3", "user": "ops", "auth_protocol": "sha256",
                       "auth_key_env": "VIGIL_TEST_AUTH", "priv_protocol": "aes",
                       "priv_key_file": str(tmp_path / "priv.key")},
            },
        },
        "elements": [
            {"name": "a", "address": "udp://10.0.0.1:161", "credential": "v2"},
            {"name": "b", "address": "udp://10.0.0.2:1161", "credential": "v1", "timeout": 0.5},
            {"name": "c", "address": "udp://10.0.0.3:161", "credential": "v3", "retries": 0,
             "max_repetitions": 10},
        ],
    })
    a, b, c = targets_for(site)
    assert (a.version, a.community, a.timeout, a.retries, a.max_repetitions) == ("2c", "env-auth-key", 3.0, 2, 40)
    assert (b.version, b.community, b.port, b.timeout) == ("1", "inline-community", 1161, 0.5)
    assert (c.version, c.user, c.auth_protocol, c.auth_key, c.priv_protocol, c.priv_key) == (
        "3", "ops", "sha256", "env-auth-key", "aes", "file-priv-key")
    assert (c.retries, c.max_repetitions) == (0, 10)
    assert "env-auth-key" not in repr([a, b, c]) and "file-priv-key" not in repr([a, b, c])
    assert "env-auth-key" not in caplog.text

    monkeypatch.delenv("VIGIL_TEST_AUTH")
    with pytest.raises(TargetConfigError, match="element a: credential v2: environment variable"):
        targets_for(site)


def test_targets_for_rejects_a_short_v3_key_without_showing_it() -> None:
    site = SiteConfig.model_validate({
        "snmp": {"credentials": {"v3": {"version": "3", "user": "ops", "auth_protocol": "md5",
                                        "auth_key": "tiny"}}},
        "elements": [{"name": "c", "address": "udp://10.0.0.3:161", "credential": "v3"}],
    })
    with pytest.raises(TargetConfigError, match="at least 8") as caught:
        targets_for(site)
    assert "tiny" not in str(caught.value)
