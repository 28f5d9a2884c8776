"""Chat-robot channels (DingTalk, WeCom, Feishu) against a real HTTP server on 127.0.0.1.

The server stands in for the vendors' webhook endpoints: it records each request, checks the
signatures of signed robots the way the vendors do (recomputing the HMAC from the received
timestamp) and answers with the vendors' error bodies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from alerts import PermanentError, RetryableError
from alerts.channels import DingTalk, Feishu, WeCom, receiver_channels
from alerts.channels.email import default_subject
from alerts.channels.robot import mask_url
from config.models import DingTalkConfig, FeishuConfig, Receiver, WeComConfig
from tests.conftest import free_tcp_port

DING_PATH = "/robot/send"
DING_TOKEN = "TOKENding0123456789abcdef"
WECOM_PATH = "/cgi-bin/webhook/send"
WECOM_KEY = "KEYwecom-0123-4567-89ab"
FEISHU_HOOK = "HOOKfeishu-0123-4567-89ab"
FEISHU_PATH = f"/open-apis/bot/v2/hook/{FEISHU_HOOK}"
DING_SECRET = "SECding0123456789"
FEISHU_SECRET = "feishuSecret42"
SUMMARY = "越秀汇聚交换机 ge-0/0/1 接口错误上升"
OK = {"errcode": 0, "errmsg": "ok"}


@dataclass
class Request:
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    size: int


@dataclass
class Robots:
    """What the stand-in vendor server received, and what it is told to answer."""

    base_url: str = ""
    requests: list[Request] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def one(self) -> Request:
        with self.lock:
            assert len(self.requests) == 1, self.requests
            return self.requests[0]


def _ding_sign_ok(query: dict[str, str]) -> bool:
    timestamp = query["timestamp"]
    digest = hmac.new(DING_SECRET.encode(), f"{timestamp}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
    fresh = abs(int(timestamp) - time.time() * 1000) < 3_600_000
    return fresh and hmac.compare_digest(base64.b64encode(digest).decode(), query["sign"])


def _feishu_sign_ok(body: dict[str, Any]) -> bool:
    timestamp = body["timestamp"]
    digest = hmac.new(f"{timestamp}\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256).digest()
    fresh = abs(int(timestamp) - time.time()) < 3600
    return fresh and hmac.compare_digest(base64.b64encode(digest).decode(), body["sign"])


@pytest.fixture
def robots() -> Iterator[Robots]:
    state = Robots()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            parts = urlsplit(self.path)
            # parse_qs decodes the URL encoding, as the vendors do before checking the sign
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            body = json.loads(raw.decode("utf-8"))
            with state.lock:
                state.requests.append(Request(parts.path, query, body, len(raw)))
                scripted = state.script.get(parts.path, [])
                status, reply = scripted.pop(0) if scripted else (200, OK)
            if "sign" in query and not _ding_sign_ok(query):
                status, reply = 200, {"errcode": 310000, "errmsg": "sign not match"}
            if "sign" in body and not _feishu_sign_ok(body):
                status, reply = 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def ding_url(robots: Robots) -> str:
    return f"{robots.base_url}{DING_PATH}?access_token={DING_TOKEN}"


def wecom_url(robots: Robots) -> str:
    return f"{robots.base_url}{WECOM_PATH}?key={WECOM_KEY}"


def feishu_url(robots: Robots) -> str:
    return f"{robots.base_url}{FEISHU_PATH}"


def _alert(i: int, status: str = "firing", summary: str = SUMMARY) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "InterfaceErrorsRising", "element": "agg-yuexiu-01",
                   "severity": "critical", "ifName": f"ge-0/0/{i}"},
        "annotations": {"summary": f"{summary} #{i}", "value": "12.5", "expected": "0.3"},
        "startsAt": "2023-11-14T22:13:20.000Z",
        "endsAt": "2023-11-14T23:00:00.000Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": f"http://127.0.0.1:8080/alerts?fingerprint=fp{i:04d}",
        "fingerprint": f"fp{i:04d}",
    }


def message(count: int = 2, *, resolved: int = 0, summary: str = SUMMARY) -> dict[str, Any]:
    """A webhook message (version 4) as the pipeline hands it to channels."""
    alerts = [_alert(i, summary=summary) for i in range(count)]
    alerts += [_alert(count + i, "resolved", summary) for i in range(resolved)]
    return {
        "version": "4",
        "groupKey": '{}:{alertname="InterfaceErrorsRising"}',
        "truncatedAlerts": 0,
        "status": "firing" if count else "resolved",
        "receiver": "noc",
        "groupLabels": {"alertname": "InterfaceErrorsRising"},
        "commonLabels": {"alertname": "InterfaceErrorsRising", "element": "agg-yuexiu-01",
                         "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:8080",
        "alerts": alerts,
    }


# ------------------------------------------------------------------ shapes and signatures
async def test_dingtalk_signed_markdown_with_mentions(robots: Robots) -> None:
    config = DingTalkConfig(url=ding_url(robots), mentions=["13800001111"])
    await DingTalk(config, secret=_secret(DING_SECRET)).send(message(2, resolved=1))
    req = robots.one()
    assert req.path == DING_PATH
    assert req.query["access_token"] == DING_TOKEN
    assert set(req.query) == {"access_token", "timestamp", "sign"}  # the server checked the sign
    assert set(req.body) == {"msgtype", "markdown", "at"}
    assert req.body["msgtype"] == "markdown"
    assert req.body["at"] == {"atMobiles": ["13800001111"], "isAtAll": False}
    title, text = req.body["markdown"]["title"], req.body["markdown"]["text"]
    assert title == "[FIRING:2] InterfaceErrorsRising (agg-yuexiu-01 critical)"
    assert text.startswith(f"### {title}")
    assert f"**{SUMMARY} #0**" in text and f"**[RESOLVED] {SUMMARY} #2**" in text
    assert "element: agg-yuexiu-01 · severity: critical" in text
    assert "started: 2023-11-14 22:13:20Z" in text and "ended: 2023-11-14 23:00:00Z" in text
    assert "value: 12.5 (expected 0.3)" in text
    assert "[details](http://127.0.0.1:8080/alerts?fingerprint=fp0000)" in text
    assert text.rstrip().endswith("@13800001111")  # DingTalk highlights only mobiles in the text


async def test_dingtalk_wrong_secret_is_permanent_and_names_no_secret(robots: Robots) -> None:
    channel = DingTalk(DingTalkConfig(url=ding_url(robots)), secret=_secret("SECwrong-secret"))
    with pytest.raises(PermanentError) as info:
        await channel.send(message())
    text = str(info.value)
    assert "310000" in text and "sign not match" in text and "receiver 'noc'" in text
    assert f"{DING_PATH}?access_token=TOKE****" in text
    assert DING_TOKEN not in text and "SECwrong" not in text
    assert info.value.channel == "dingtalk" and DING_TOKEN not in info.value.recipient


async def test_wecom_markdown(robots: Robots) -> None:
    await WeCom(WeComConfig(url=wecom_url(robots))).send(message(1))
    req = robots.one()
    assert (req.path, req.query) == (WECOM_PATH, {"key": WECOM_KEY})
    assert set(req.body) == {"msgtype", "markdown"} and req.body["msgtype"] == "markdown"
    content = req.body["markdown"]["content"]
    assert content.startswith("### [FIRING:1] InterfaceErrorsRising (agg-yuexiu-01 critical)")
    assert f"**{SUMMARY} #0**" in content


async def test_wecom_mentions_send_text_with_mobiles(robots: Robots) -> None:
    config = WeComConfig(url=wecom_url(robots), mentions=["13800001111"], mention_all=True)
    await WeCom(config).send(message(1))
    body = robots.one().body
    assert body["msgtype"] == "text"
    assert body["text"]["mentioned_mobile_list"] == ["13800001111", "@all"]
    content = body["text"]["content"]
    assert f"{SUMMARY} #0" in content and "**" not in content and "###" not in content
    assert "details: http://127.0.0.1:8080/alerts?fingerprint=fp0000" in content


async def test_feishu_signed_card(robots: Robots) -> None:
    config = FeishuConfig(url=feishu_url(robots), mention_all=True)
    await Feishu(config, secret=_secret(FEISHU_SECRET)).send(message(1, resolved=1))
    req = robots.one()
    assert req.path == FEISHU_PATH and req.query == {}
    assert set(req.body) == {"timestamp", "sign", "msg_type", "card"}  # the server checked the sign
    assert req.body["msg_type"] == "interactive"
    card = req.body["card"]
    assert card["header"]["title"] == {
        "tag": "plain_text", "content": "[FIRING:1] InterfaceErrorsRising (agg-yuexiu-01 critical)"}
    assert card["header"]["template"] == "red"
    [element] = card["elements"]
    assert element["tag"] == "markdown"
    assert f"**{SUMMARY} #0**" in element["content"] and "###" not in element["content"]
    assert element["content"].endswith("<at id=all></at>")


async def test_feishu_wrong_secret_is_permanent(robots: Robots) -> None:
    channel = Feishu(FeishuConfig(url=feishu_url(robots)), secret=_secret("notTheSecret"))
    with pytest.raises(PermanentError) as info:
        await channel.send(message())
    text = str(info.value)
    assert "19021" in text and "sign match fail" in text
    assert FEISHU_HOOK not in text and "/hook/HOOK****" in text and "notTheSecret" not in text


async def test_unsigned_feishu_sends_no_sign(robots: Robots) -> None:
    await Feishu(FeishuConfig(url=feishu_url(robots))).send(message(0, resolved=1))
    body = robots.one().body
    assert "sign" not in body and "timestamp" not in body
    assert body["card"]["header"]["template"] == "green"
    assert body["card"]["header"]["title"]["content"] == "[RESOLVED] InterfaceErrorsRising (agg-yuexiu-01 critical)"


async def test_custom_templates(robots: Robots) -> None:
    config = DingTalkConfig(
        url=ding_url(robots),
        title="告警 {{ commonLabels.element }}",
        text="{% for a in alerts %}- {{ a.annotations.summary }}\n{% endfor %}",
    )
    await DingTalk(config).send(message(2))
    markdown = robots.one().body["markdown"]
    assert markdown["title"] == "告警 agg-yuexiu-01"
    assert markdown["text"] == f"- {SUMMARY} #0\n- {SUMMARY} #1"


# ------------------------------------------------------------------ error mapping
def _channel(kind: str, robots: Robots) -> DingTalk | WeCom | Feishu:
    if kind == "dingtalk":
        return DingTalk(DingTalkConfig(url=ding_url(robots)))
    if kind == "wecom":
        return WeCom(WeComConfig(url=wecom_url(robots)))
    return Feishu(FeishuConfig(url=feishu_url(robots)))


_PATHS = {"dingtalk": DING_PATH, "wecom": WECOM_PATH, "feishu": FEISHU_PATH}
_SECRETS = {"dingtalk": DING_TOKEN, "wecom": WECOM_KEY, "feishu": FEISHU_HOOK}


@pytest.mark.parametrize(
    ("kind", "status", "reply", "error"),
    [
        ("dingtalk", 200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, RetryableError),
        ("dingtalk", 200, {"errcode": 300001, "errmsg": "token is not exist"}, PermanentError),
        ("dingtalk", 200, {"errcode": 310000, "errmsg": "keywords not in content"}, PermanentError),
        ("wecom", 200, {"errcode": 45009, "errmsg": "api freq out of limit"}, RetryableError),
        ("wecom", 200, {"errcode": 93000, "errmsg": "invalid webhook url"}, PermanentError),
        ("wecom", 200, {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}, PermanentError),
        ("feishu", 200, {"code": 11232, "msg": "frequency limited psm"}, RetryableError),
        ("feishu", 200, {"code": 9499, "msg": "too many request"}, RetryableError),
        ("feishu", 400, {"code": 9499, "msg": "Bad Request"}, PermanentError),
        ("feishu", 200, {"code": 19024, "msg": "Key Words Not Found"}, PermanentError),
        ("dingtalk", 500, {"errcode": -1, "errmsg": "system busy"}, RetryableError),
        ("wecom", 502, {}, RetryableError),
        ("feishu", 503, {}, RetryableError),
        ("wecom", 429, {}, RetryableError),
        ("dingtalk", 404, {}, PermanentError),
        ("feishu", 400, {"code": 19002, "msg": "params error"}, PermanentError),
    ],
)
async def test_reply_mapping(
    robots: Robots, kind: str, status: int, reply: dict[str, Any], error: type[Exception]
) -> None:
    robots.script[_PATHS[kind]] = [(status, reply)]
    with pytest.raises(error) as info:
        await _channel(kind, robots).send(message())
    assert type(info.value) is error
    text = str(info.value)
    assert f"{kind} -> " in text and "receiver 'noc'" in text and f"HTTP {status}" in text
    assert _SECRETS[kind] not in text
    for key in ("errcode", "code"):
        if key in reply:
            assert str(reply[key]) in text


@pytest.mark.parametrize("kind", ["dingtalk", "wecom", "feishu"])
async def test_success_reply_and_connection_refused(robots: Robots, kind: str) -> None:
    await _channel(kind, robots).send(message())  # {"errcode": 0} is success
    port = free_tcp_port()
    config = {"url": f"http://127.0.0.1:{port}{_PATHS[kind]}?access_token={DING_TOKEN}"}
    cls, cfg = {"dingtalk": (DingTalk, DingTalkConfig), "wecom": (WeCom, WeComConfig),
                "feishu": (Feishu, FeishuConfig)}[kind]
    with pytest.raises(RetryableError) as info:
        await cls(cfg.model_validate(config)).send(message())
    assert DING_TOKEN not in str(info.value) and "ConnectError" in str(info.value)


def test_mask_url() -> None:
    assert mask_url("https://oapi.dingtalk.com/robot/send?access_token=abcdef0123456789") == (
        "https://oapi.dingtalk.com/robot/send?access_token=abcd****")
    assert mask_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7d2e-4c1b&debug=1") == (
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a****&debug=****")
    assert mask_url("https://open.feishu.cn/open-apis/bot/v2/hook/0d3c1b7e-aaaa-bbbb") == (
        "https://open.feishu.cn/open-apis/bot/v2/hook/0d3c****")
    assert mask_url("https://user:pw@example.cn/x") == "https://****@example.cn/x"


# ------------------------------------------------------------------ size limits
@pytest.mark.parametrize(("kind", "limit"), [("dingtalk", 18000), ("wecom", 4096), ("feishu", 19000)])
async def test_sixty_alerts_are_cut_to_the_limit(robots: Robots, kind: str, limit: int) -> None:
    payload = message(60, summary=SUMMARY * 3)
    await _channel(kind, robots).send(payload)
    req = robots.one()
    body = req.body
    text = {"dingtalk": lambda: body["markdown"]["text"], "wecom": lambda: body["markdown"]["content"],
            "feishu": lambda: body["card"]["elements"][0]["content"]}[kind]()
    measured = req.size if kind == "feishu" else len(text.encode())
    assert measured <= limit
    shown = text.count(f"{SUMMARY * 3} #")
    assert 0 < shown < 60
    assert text.endswith(f"… and {60 - shown} more")
    block = len(text.split("**", 3)[3].split("\n\n**", 1)[0].encode()) + 200  # one alert, generously
    assert measured > limit - block  # as many alerts as fit, not a few
    assert default_subject(payload) == "[FIRING:60] InterfaceErrorsRising (agg-yuexiu-01 critical)"


async def test_wecom_text_limit_is_2048(robots: Robots) -> None:
    await WeCom(WeComConfig(url=wecom_url(robots), mention_all=True)).send(message(60))
    content = robots.one().body["text"]["content"]
    assert len(content.encode()) <= 2048 and "… and " in content


# ------------------------------------------------------------------ wiring
def test_receiver_channels_put_robots_last(tmp_path: Path) -> None:
    (tmp_path / "ding.secret").write_text(f"{DING_SECRET}\n", encoding="utf-8")
    receiver = Receiver.model_validate({
        "name": "noc",
        "feishu_configs": [{"url": "https://open.feishu.cn/open-apis/bot/v2/hook/0d3c1b7e-aaaa"}],
        "dingtalk_configs": [{"url": "https://oapi.dingtalk.com/robot/send?access_token=abcdef0123",
                              "secret_file": "ding.secret", "send_resolved": False}],
        "wecom_configs": [{"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7d2e"}],
        "webhook_configs": [{"url": "http://127.0.0.1:9/a"}],
    })
    built = receiver_channels(receiver, base=tmp_path)
    assert [(c.kind, c.recipient, r) for c, r in built] == [
        ("webhook", "http://127.0.0.1:9/a", True),
        ("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=abcd****", False),
        ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a****", True),
        ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/0d3c****", True),
    ]


async def test_pipeline_delivers_a_receivers_dingtalk_config(robots: Robots, tmp_path: Path) -> None:
    """A receiver with only a signed DingTalk robot: the pipeline's flush reaches the robot."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from alerts import AlertPipeline, AlertsBase
    from config.models import AlertsConfig

    from .conftest import FakeClock, make_event

    (tmp_path / "ding.secret").write_text(f"{DING_SECRET}\n", encoding="utf-8")
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    AlertsBase.metadata.create_all(engine)
    cfg = AlertsConfig.model_validate({
        "route": {"receiver": "noc", "group_wait": 0},
        "receivers": [{"name": "noc", "dingtalk_configs": [
            {"url": ding_url(robots), "secret_file": "ding.secret"}]}],
    })
    clock = FakeClock()
    pipeline = AlertPipeline(sessionmaker(engine, expire_on_commit=False), cfg, clock=clock, secrets_dir=tmp_path)
    await pipeline.ingest([make_event(element="agg-yuexiu-01", at=clock())])
    assert await pipeline.flush() == 1
    req = robots.one()
    assert "sign" in req.query  # signed with the secret file's first line, verified by the server
    assert req.body["markdown"]["title"].startswith("[FIRING:1]")
    assert "LinkDown on agg-yuexiu-01" in req.body["markdown"]["text"]
    [row] = pipeline.list_notifications()
    assert row["channel"] == "dingtalk" and DING_TOKEN not in row["recipient"]
    engine.dispose()


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)
