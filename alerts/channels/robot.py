"""Group-chat robot channels: DingTalk (钉钉), WeCom (企业微信) and Feishu/Lark (飞书) custom robots.

Each posts one markdown message per notification: a title like the email subject
(``[FIRING:2] InterfaceErrorsRising (agg-yuexiu-01 critical)``), then per alert its summary,
element, severity, start (UTC, ``Z``), value/expected and a link. A group too large for the
vendor's size limit is cut to the alerts that fit, with "… and N more".

Signed robots (加签): DingTalk takes ``timestamp`` (ms) and ``sign`` in the query string, Feishu
``timestamp`` (s) and ``sign`` in the JSON body; both sign ``f"{timestamp}\\n{secret}"``.

Errors: transport errors, timeouts, HTTP 5xx/429 and the vendors' rate-limit codes retry; other
HTTP 4xx and non-zero ``errcode``/``code`` replies (sent with HTTP 200) are permanent. The robot's
access token, key or hook id never appears in ``recipient`` or an error message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote_plus, urlsplit, urlunsplit

import httpx
import jinja2
from pydantic import SecretStr

from alerts.channels.email import default_subject
from alerts.errors import ChannelError, PermanentError, RetryableError
from config.load import resolve_secret
from config.models import DingTalkConfig, FeishuConfig, WeComConfig

__all__ = ["DingTalk", "Feishu", "WeCom", "mask_url"]

_USER_AGENT = "vigil-alerts/0.1"

_TEXT = """\
{% if heading %}
### {{ title }}

{% endif %}
{% for a in alerts %}
**{{ "[RESOLVED] " if a.status == "resolved" }}{{ a.annotations.summary or a.labels.alertname }}**

> element: {{ a.labels.element or "-" }} · severity: {{ a.labels.severity or "-" }}

> started: {{ a.startsAt | when }}{{ " · ended: " ~ (a.endsAt | when) if a.status == "resolved" }}

{% if a.annotations.value %}
> value: {{ a.annotations.value }}{{ " (expected " ~ a.annotations.expected ~ ")" if a.annotations.expected }}

{% endif %}
{% if a.generatorURL %}
> [details]({{ a.generatorURL }})

{% endif %}
{% endfor %}
"""


def _when(value: object) -> str:
    """RFC 3339 -> ``2023-11-14 22:13:20Z`` (UTC); anything else as given."""
    text = str(value or "")
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if stamp.year <= 1:  # Alertmanager's zero time: no end yet
        return "-"
    return stamp.strftime("%Y-%m-%d %H:%M:%SZ")


def _hide(value: str) -> str:
    return value[:4] + "****" if len(value) > 8 else "****"


def mask_url(url: str) -> str:
    """The URL without its secrets: query values, the hook id after ``/hook/``, user info."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    if "@" in parts.netloc:
        netloc = "****@" + netloc
    segments = parts.path.split("/")
    for i in range(1, len(segments)):
        if segments[i - 1] == "hook" and segments[i]:
            segments[i] = _hide(segments[i])
    query = "&".join(
        f"{k}={_hide(v)}" if v else k
        for k, _, v in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return urlunsplit((parts.scheme, netloc, "/".join(segments), query, ""))


def _secrets_of(url: str) -> list[str]:
    """Every substring of ``url`` that ``mask_url`` hides, longest first (to scrub error text)."""
    parts = urlsplit(url)
    found = [pair.partition("=")[2] for pair in parts.query.split("&")]
    segments = parts.path.split("/")
    found += [segments[i] for i in range(1, len(segments)) if segments[i - 1] == "hook"]
    if "@" in parts.netloc:
        found.append(parts.netloc.rpartition("@")[0])
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def _sign(secret: str, timestamp: int, *, key_is_secret: bool) -> str:
    """base64 HMAC-SHA256 of ``"{timestamp}\\n{secret}"``: DingTalk keys it with the secret over
    that string; Feishu keys it with that string over an empty message."""
    string = f"{timestamp}\n{secret}".encode()
    if key_is_secret:
        digest = hmac.new(secret.encode(), string, hashlib.sha256).digest()
    else:
        digest = hmac.new(string, b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes of ``text``, on a character boundary, ending in "…"."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: max(limit - 3, 0)].decode("utf-8", "ignore") + "…"


def _plain(markdown: str) -> str:
    """Markdown -> plain text for WeCom's text messages: no ``###``, ``**``, ``>``; links as URLs."""
    text = re.sub(r"\[([^\]]*)\]\(([^)]*)\)", r"\1: \2", markdown)
    text = re.sub(r"^(#+|>)\s*", "", text, flags=re.MULTILINE).replace("**", "")
    return re.sub(r"\n{2,}", "\n", text).strip() + "\n"


class _Robot(ABC):
    """Shared by the three vendors: render, fit to the size limit, POST, map the reply."""

    kind: ClassVar[str]
    limit: ClassVar[int]  # bytes of what the vendor measures (see ``_size``)
    heading: ClassVar[bool] = True  # the text repeats the title (no separate title on screen)
    retry_codes: ClassVar[frozenset[int]] = frozenset()

    def __init__(
        self,
        config: DingTalkConfig | WeComConfig | FeishuConfig,
        *,
        secret: SecretStr | None = None,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.url = config.url
        self.timeout = config.timeout
        self._secret = secret
        self._client = client
        self._clock = clock
        self._masked = mask_url(config.url)
        self._hidden = _secrets_of(config.url)
        if secret is not None and len(secret.get_secret_value()) >= 4:
            self._hidden.append(secret.get_secret_value())
        # Trusted operator templates over the webhook message; chat markdown needs no escaping.
        env = jinja2.Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True)
        env.filters["when"] = _when
        self._title = env.from_string(config.title) if config.title else None
        self._text = env.from_string(config.text or _TEXT)

    @property
    def recipient(self) -> str:
        return self._masked

    # ------------------------------------------------------------ rendering
    def _context(self, payload: Mapping[str, Any], shown: list[Any], more: int) -> dict[str, Any]:
        alerts = payload.get("alerts", [])
        context = dict(payload)
        context["firing"] = [a for a in alerts if a.get("status") == "firing"]
        context["resolved"] = [a for a in alerts if a.get("status") == "resolved"]
        context["alerts"] = shown
        context["truncated"] = more
        context["heading"] = self.heading
        return context

    def _render(self, payload: Mapping[str, Any], title: str, count: int) -> str:
        alerts = payload.get("alerts", [])
        # Firing alerts first: when the group is cut, the ones still burning are shown.
        ordered = sorted(alerts, key=lambda a: a.get("status") != "firing")
        context = self._context(payload, ordered[:count], len(alerts) - count)
        context["title"] = title
        text = self._text.render(context).strip()
        if count < len(alerts):
            text += f"\n\n… and {len(alerts) - count} more"
        return self._decorate(text)

    def render(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        """(title, text) for one message, cut to the vendor's size limit."""
        if self._title is not None:
            context = self._context(payload, list(payload.get("alerts", [])), 0)
            title = " ".join(self._title.render(context).split())
        else:
            title = default_subject(payload)
        title = _cut(title, 256)
        total = len(payload.get("alerts", []))
        text = self._render(payload, title, total)
        limit = self._limit()
        if self._size(title, text) <= limit:
            return title, text
        low, high = 0, total - 1  # the largest count that fits: ``low`` always fits (or is 0)
        while low < high:
            middle = (low + high + 1) // 2
            if self._size(title, self._render(payload, title, middle)) <= limit:
                low = middle
            else:
                high = middle - 1
        text = self._render(payload, title, low)
        overflow = self._size(title, text) - limit
        if overflow > 0:  # even one alert is too big (a long template): cut the text itself
            text = _cut(text, len(text.encode()) - overflow)
        return title, text

    def _decorate(self, text: str) -> str:
        """The final text (a vendor appends its @mentions)."""
        return text

    def _size(self, title: str, text: str) -> int:
        return len(text.encode())

    def _limit(self) -> int:
        return self.limit

    @abstractmethod
    def _request(self, status: str, title: str, text: str) -> tuple[str, dict[str, Any]]:
        """(URL, JSON body) to POST: each vendor's own message format."""

    # ------------------------------------------------------------ delivery
    def _error(self, kind: type[ChannelError], receiver: str, detail: str) -> ChannelError:
        for hidden in self._hidden:
            detail = detail.replace(hidden, "****")
        return kind(
            f"receiver {receiver!r}: POST {self._masked}: {detail}",
            channel=self.kind,
            recipient=self._masked,
        )

    def _retryable(self, code: int, message: str) -> bool:
        return code in self.retry_codes

    @staticmethod
    def _reply(response: httpx.Response) -> tuple[int, str] | None:
        """The vendor's (code, message) from a JSON reply, or None if it has none."""
        try:
            data = response.json()
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        for code_key, msg_key in (("errcode", "errmsg"), ("code", "msg"), ("StatusCode", "StatusMessage")):
            if code_key in data:
                try:
                    return int(data[code_key]), str(data.get(msg_key, ""))
                except (TypeError, ValueError):
                    return None
        return None

    async def send(self, payload: dict[str, Any]) -> None:
        """Post ``payload`` to the robot; raise ``RetryableError`` or ``PermanentError``."""
        receiver = str(payload.get("receiver", "?"))
        try:
            title, text = self.render(payload)
        except jinja2.TemplateError as err:
            raise self._error(PermanentError, receiver, f"template error: {err}") from err
        url, message = self._request(str(payload.get("status", "firing")), title, text)
        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": _USER_AGENT}
        try:
            if self._client is not None:
                response = await self._client.post(
                    url, content=body, headers=headers, timeout=self.timeout
                )
            else:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    response = await client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as err:
            raise self._error(RetryableError, receiver, f"timed out after {self.timeout}s") from err
        except httpx.TransportError as err:
            raise self._error(RetryableError, receiver, f"{type(err).__name__}: {err}") from err
        except httpx.InvalidURL as err:
            raise self._error(PermanentError, receiver, f"invalid URL: {err}") from err
        status = response.status_code
        reply = self._reply(response)
        if 200 <= status < 300 and (reply is None or reply[0] == 0):
            return
        detail = f"HTTP {status}"
        if reply is not None:
            detail += f", code {reply[0]}: {reply[1][:200]}"
        else:
            detail += f": {response.text[:200]}"
        if status >= 500 or status == 429 or (reply is not None and self._retryable(*reply)):
            raise self._error(RetryableError, receiver, detail)
        raise self._error(PermanentError, receiver, detail)


class DingTalk(_Robot):
    """DingTalk custom robot: ``msgtype: markdown`` with ``at.atMobiles`` / ``isAtAll``."""

    kind = "dingtalk"
    limit = 18000  # markdown text bytes; DingTalk rejects messages around 20 000 bytes
    # 130101 send too fast (20 a minute), 410100 flow control, -1 system busy
    retry_codes = frozenset({130101, 410100, -1})

    config: DingTalkConfig

    @classmethod
    def from_config(cls, config: DingTalkConfig, base: Path | None = None) -> DingTalk:
        """Build from a receiver's ``dingtalk_configs`` entry; ``base`` anchors ``secret_file``."""
        return cls(config, secret=resolve_secret(config.secret, None, config.secret_file, base=base))

    def _decorate(self, text: str) -> str:
        # A mobile is highlighted (and notified) only where "@<mobile>" appears in the text.
        if self.config.mentions:
            text += "\n\n" + " ".join(f"@{m}" for m in self.config.mentions)
        return text

    def _request(self, status: str, title: str, text: str) -> tuple[str, dict[str, Any]]:
        message = {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": text},
            "at": {"atMobiles": list(self.config.mentions), "isAtAll": self.config.mention_all},
        }
        url = self.url
        if self._secret is not None:
            timestamp = int(self._clock() * 1000)
            sign = _sign(self._secret.get_secret_value(), timestamp, key_is_secret=True)
            url += ("&" if "?" in url else "?") + f"timestamp={timestamp}&sign={quote_plus(sign)}"
        return url, message


class WeCom(_Robot):
    """WeCom group robot: ``msgtype: markdown``, or ``text`` with ``mentioned_mobile_list``."""

    kind = "wecom"
    limit = 4096  # markdown content bytes (text messages: 2048)
    # 45009 API frequency limit (20 a minute), -1 system busy
    retry_codes = frozenset({45009, -1})

    config: WeComConfig

    @classmethod
    def from_config(cls, config: WeComConfig, base: Path | None = None) -> WeCom:
        """Build from a receiver's ``wecom_configs`` entry (WeCom robots are not signed)."""
        return cls(config)

    @property
    def _as_text(self) -> bool:
        return bool(self.config.mentions) or self.config.mention_all

    def _decorate(self, text: str) -> str:
        return _plain(text) if self._as_text else text

    def _limit(self) -> int:
        return 2048 if self._as_text else self.limit

    def _request(self, status: str, title: str, text: str) -> tuple[str, dict[str, Any]]:
        if self._as_text:
            mobiles = list(self.config.mentions) + (["@all"] if self.config.mention_all else [])
            return self.url, {
                "msgtype": "text",
                "text": {"content": text, "mentioned_mobile_list": mobiles},
            }
        return self.url, {"msgtype": "markdown", "markdown": {"content": text}}


class Feishu(_Robot):
    """Feishu/Lark custom bot: ``msg_type: interactive``, a card with the title as its header."""

    kind = "feishu"
    limit = 19000  # the whole JSON body; Feishu refuses bodies over 20 KB
    heading = False  # the card header shows the title
    # 11232 frequency limited; 9499 is "too many request" but also "Bad Request" (see _retryable)
    retry_codes = frozenset({9499, 11232})

    config: FeishuConfig

    @classmethod
    def from_config(cls, config: FeishuConfig, base: Path | None = None) -> Feishu:
        """Build from a receiver's ``feishu_configs`` entry; ``base`` anchors ``secret_file``."""
        return cls(config, secret=resolve_secret(config.secret, None, config.secret_file, base=base))

    def _retryable(self, code: int, message: str) -> bool:
        # Feishu answers a malformed or oversized body with 9499 "Bad Request": not transient.
        if code == 9499 and "bad request" in message.lower():
            return False
        return code in self.retry_codes

    def _decorate(self, text: str) -> str:
        return text + "\n\n<at id=all></at>" if self.config.mention_all else text

    @staticmethod
    def _card(status: str, title: str, text: str) -> dict[str, Any]:
        return {
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": True},
                "header": {
                    "title": {"tag": "plain_text", "content": title},
                    "template": "red" if status == "firing" else "green",
                },
                "elements": [{"tag": "markdown", "content": text}],
            },
        }

    def _size(self, title: str, text: str) -> int:
        body = self._card("resolved", title, text)
        body.update(timestamp="0000000000", sign="x" * 44)  # as signed, whether or not it is
        return len(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())

    def _request(self, status: str, title: str, text: str) -> tuple[str, dict[str, Any]]:
        message = self._card(status, title, text)
        if self._secret is not None:
            timestamp = int(self._clock())
            message = {
                "timestamp": str(timestamp),
                "sign": _sign(self._secret.get_secret_value(), timestamp, key_is_secret=False),
                **message,
            }
        return self.url, message
