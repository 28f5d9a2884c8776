"""KannelSmsSink against a real Kannel (bearerbox + smsbox) and its fake SMSC, all on 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from contingency import SmsPermanentError, SmsRetryableError
from contingency.sms import KannelSmsSink
from tests.conftest import free_tcp_port, require_binary

FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
_GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (text|ucs-2|data|udh \S+) (.*)>$")


@dataclass
class Kannel:
    url: str
    out: Path

    def received(self, n: int, timeout: float = 15.0) -> list[tuple[str, str, str]]:
        """(from, to, text) of the first ``n`` messages the fake SMSC got (waits for them)."""
        deadline = time.monotonic() + timeout
        got: list[tuple[str, str, str]] = []
        while time.monotonic() < deadline:
            got = []
            for line in self.out.read_text(errors="replace").splitlines():
                m = _GOT.search(line)
                if m is None:
                    continue
                sender, to, coding, body = m.groups()
                text = urllib.parse.unquote_to_bytes(body).decode("utf-16-be") if coding == "ucs-2" else body
                got.append((sender, to, text))
            if len(got) >= n:
                return got
            time.sleep(0.2)
        raise AssertionError(f"the fake SMSC got {len(got)} of {n} messages: {got}")


@pytest.fixture
def kannel(tmp_path: Path) -> Iterator[Kannel]:
    bearerbox = require_binary("bearerbox", "/usr/sbin/bearerbox")
    smsbox = require_binary("smsbox", "/usr/sbin/smsbox")
    fakesmsc = require_binary("fakesmsc", FAKESMSC)
    admin, box, smsc, http = (free_tcp_port() for _ in range(4))
    conf = tmp_path / "kannel.conf"
    conf.write_text(
        f"""group = core
admin-port = {admin}
admin-password = adminpw
smsbox-port = {box}
box-allow-ip = 127.0.0.1
admin-allow-ip = 127.0.0.1
log-file = "{tmp_path / 'bearerbox.log'}"

group = smsc
smsc = fake
smsc-id = FAKE
port = {smsc}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {http}
sendsms-interface = 127.0.0.1
log-file = "{tmp_path / 'smsbox.log'}"

group = sendsms-user
username = vigil
password = vigilpw
max-messages = 10
concatenation = true

group = sms-service
keyword = default
text = "ok"
""",
        encoding="utf-8",
    )
    out = tmp_path / "fakesmsc.out"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen([bearerbox, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_port(admin)
        procs.append(subprocess.Popen([smsbox, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_port(http)
        with out.open("wb") as fh:
            procs.append(subprocess.Popen(
                [fakesmsc, "-H", "127.0.0.1", "-r", str(smsc), "-i", "1", "-m", "0", "100 200 text hello"],
                stdout=fh, stderr=subprocess.STDOUT,
            ))
        _wait_smsc_online(admin)
        yield Kannel(f"http://127.0.0.1:{http}", out)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answers on 127.0.0.1:{port}")


def _wait_smsc_online(admin: int, timeout: float = 15.0) -> None:
    """bearerbox's status page says the fake SMSC is connected (else the first send would queue)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"http://127.0.0.1:{admin}/status.txt?password=adminpw", timeout=2).text
        if re.search(r"FAKE\[FAKE\].*online", status) or "fake" in status.lower() and "online" in status:
            return
        time.sleep(0.2)
    raise AssertionError("the fake SMSC never came online")


def test_chinese_and_gsm_texts_reach_the_smsc_intact(kannel: Kannel) -> None:
    sink = KannelSmsSink(kannel.url, username="vigil", password="vigilpw", sender="10000")
    zh = "【中国电信】尊敬的客户：越秀区网络故障抢修中，预计两小时内恢复，给您带来不便敬请谅解。如有疑问请拨打10000。"
    en = "China Telecom: service in Yuexiu is restored. Sorry for the trouble. Ref PT-20261123-0001 {ok}"
    sink.send("+8613800000001", zh, message_id="m1")
    sink.send("8613800000002", en, message_id="m2")
    sink.send("8613800000002", en, message_id="m2")  # the same id again: not sent twice
    got = kannel.received(2)
    assert ("10000", "8613800000001", zh) in got
    assert ("10000", "8613800000002", en) in got
    time.sleep(1.5)
    assert len(kannel.received(2)) == 2


def test_a_long_chinese_text_is_split_into_parts_by_kannel(kannel: Kannel) -> None:
    sink = KannelSmsSink(kannel.url, username="vigil", password="vigilpw")
    text = "【中国电信】" + "越秀区光缆中断抢修中，" * 12
    sink.send("8613800000009", text, message_id="long")
    parts = kannel.received(3)  # 137 UCS-2 characters: 67 per part -> 3 parts, reassembled by the phone
    assert len(parts) == 3 and all(to == "8613800000009" for _, to, _ in parts)


def test_bad_credentials_are_permanent_and_a_dead_gateway_is_retryable(kannel: Kannel) -> None:
    wrong = KannelSmsSink(kannel.url, username="vigil", password="nope")
    with pytest.raises(SmsPermanentError, match="403"):
        wrong.send("8613800000001", "hello", message_id="x1")
    dead = KannelSmsSink(f"http://127.0.0.1:{free_tcp_port()}", username="vigil", password="vigilpw", timeout=2)
    with pytest.raises(SmsRetryableError, match="ConnectError"):
        dead.send("8613800000001", "hello", message_id="x2")
    with pytest.raises(SmsPermanentError, match="not a phone number"):
        dead.send("call me", "hello", message_id="x3")


def test_site_config_builds_the_kannel_sink_and_names_bad_fields(kannel: Kannel, tmp_path: Path) -> None:
    from config.load import validate_site
    from config.models import SiteConfig, SmsConfig
    from contingency.sms import sink_from_config

    (tmp_path / "kannel.secret").write_text("vigilpw\n", encoding="utf-8")
    cfg = SmsConfig.model_validate({
        "sink": "kannel", "sender": "10001",
        "kannel": {"url": kannel.url, "username": "vigil", "password_file": "kannel.secret", "timeout": "5s"},
    })
    sink = sink_from_config(cfg, tmp_path, base=tmp_path)
    sink.send("8613800000005", "检修通知", message_id="cfg-1")
    assert ("10001", "8613800000005", "检修通知") in kannel.received(1)

    def issues(sms: dict[str, object]) -> dict[str, str]:
        site = SiteConfig.model_validate({"site": "t", "contingency": {"sms": sms}})
        return {i.path: i.message for i in validate_site(site, base=tmp_path)}

    assert "contingency.sms.kannel" in issues({"sink": "kannel"})
    assert "contingency.sms.kannel.password" in issues(
        {"sink": "kannel", "kannel": {"url": kannel.url, "username": "u"}})
    missing = issues({"sink": "kannel", "kannel": {"url": kannel.url, "username": "u", "password_file": "nope"}})
    assert "cannot read secret file" in missing["contingency.sms.kannel.password_file"]
    with pytest.raises(ValueError, match="not an http"):
        SmsConfig.model_validate({"sink": "kannel", "kannel": {"url": "ftp://x", "username": "u", "password": "p"}})
