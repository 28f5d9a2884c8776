"""KannelSmsSink against a real Kannel (bearerbox + smsbox) and its fake SMSC, all on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contingency import SmsPermanentError, SmsRetryableError
from contingency.sms import KannelSmsSink
from tests.conftest import free_tcp_port
from tests.kannel import Kannel, start_kannel


@pytest.fixture
def kannel(tmp_path: Path) -> Iterator[Kannel]:
    with start_kannel(tmp_path) as k:
        yield k


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
