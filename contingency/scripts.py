"""Hotline scripts, outage banners and customer SMS, rendered from Jinja2 templates.

Templates live in ``contingency/templates/<kind>.<language>.j2``; every piece of text a
customer or an agent reads is there, not in code.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

import jinja2

from contingency.errors import TemplateRenderError

__all__ = [
    "LANGUAGES",
    "AreaView",
    "IncidentView",
    "SmsKind",
    "banner_text",
    "preference_reply",
    "render_script",
    "render_sms",
    "sms_segments",
]

LANGUAGES: tuple[str, ...] = ("zh-CN", "en")
SmsKind = Literal["outage", "restored"]

# China Standard Time has no daylight saving: a fixed +08:00 avoids depending on tzdata.
_CST = timezone(timedelta(hours=8), "CST")

# GSM 03.38 basic character set (the escape 0x1B itself excluded) and its extension table.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True, slots=True)
class AreaView:
    """An area as templates see it."""

    id: str
    name: str
    name_zh: str = ""

    def display(self, language: str) -> str:
        """The area's name in ``language`` (Chinese name falls back to the plain one)."""
        return (self.name_zh or self.name) if language == "zh-CN" else self.name


@dataclass(frozen=True, slots=True)
class IncidentView:
    """Everything a script, banner or SMS template may mention about one incident."""

    key: str
    element: str
    title: str
    areas: tuple[AreaView, ...]
    since: float  # epoch seconds the incident opened
    ticket: str = ""
    eta: float | None = None  # expected restoration, epoch seconds, if anybody knows it
    customers: int = 0
    cause: str = ""
    hotline: str = "10000"
    planned: bool = False  # the fault fell in a maintenance window (``eta`` is its end)
    brand_zh: str = "中国电信"
    brand_en: str = "China Telecom"


def _local(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).astimezone(_CST)


def _datetime(ts: float) -> str:
    return _local(ts).strftime("%Y-%m-%d %H:%M")


def _hhmm(ts: float) -> str:
    return _local(ts).strftime("%H:%M")


def _until(ts: float, since: float, language: str) -> str:
    """A time customers read as a deadline: ``16:00`` on the incident's own day, with the date
    otherwise (``12月7日16:00`` / ``16:00 on 7 Dec``): an ETA days away is not "today"."""
    at, day = _local(ts), _local(since).date()
    if at.date() == day:
        return at.strftime("%H:%M")
    if language == "zh-CN":
        return f"{at.month}月{at.day}日{at:%H:%M}"
    return f"{at:%H:%M} on {at.day} {at:%b}"


def _make_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("contingency", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain text for phones and agent desktops, never HTML
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["datetime"] = _datetime
    env.filters["hhmm"] = _hhmm
    env.filters["until"] = _until
    return env


_ENV = _make_env()


def _render(kind: str, language: str, view: IncidentView) -> str:
    if language not in LANGUAGES:
        raise TemplateRenderError(f"{kind}.{language}.j2", f"unsupported language {language!r}")
    name = f"{kind}.{language}.j2"
    sep = "、" if language == "zh-CN" else ", "
    try:
        return _ENV.get_template(name).render(
            v=view,
            areas_text=sep.join(a.display(language) for a in view.areas),
        )
    except jinja2.TemplateError as err:
        raise TemplateRenderError(name, str(err)) from err


def _one_line(text: str, language: str) -> str:
    # Chinese has no word spaces: joining template lines must not add any
    joiner = "" if language == "zh-CN" else " "
    return re.sub(r"\s*\n\s*", joiner, text.strip())


def render_script(language: str, incident_view: IncidentView) -> str:
    """The hotline agent's script for callers from the affected areas."""
    return _render("script", language, incident_view).strip() + "\n"


def render_sms(kind: SmsKind, language: str, ctx: IncidentView) -> str:
    """A short customer SMS, ``outage`` or ``restored``, on one line."""
    if kind not in ("outage", "restored"):
        raise TemplateRenderError(f"sms_{kind}.{language}.j2", f"unknown SMS kind {kind!r}")
    return _one_line(_render(f"sms_{kind}", language, ctx), language)


def banner_text(language: str, ctx: IncidentView) -> str:
    """The one-line outage banner shown on agent desktops of the affected areas."""
    return _one_line(_render("banner", language, ctx), language)


def is_gsm7(text: str) -> bool:
    """Whether ``text`` fits the GSM 03.38 alphabet (else the whole message is sent as UCS-2)."""
    return all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text)


def sms_segments(text: str) -> int:
    """Number of SMS parts ``text`` needs: GSM-7 160/153 septets, else UCS-2 70/67 units."""
    if is_gsm7(text):
        costs = [2 if ch in _GSM_EXTENDED else 1 for ch in text]
        single, part = 160, 153
    else:
        # UTF-16 code units: characters outside the BMP (emoji) take a surrogate pair
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, part = 70, 67
    total = sum(costs)
    if total <= single:
        return 1
    # pack greedily: an escape pair or a surrogate pair is never split across parts
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:
            parts += 1
            used = 0
        used += cost
    return max(parts, math.ceil(total / part))


_PREFERENCE_REPLIES = {
    ("stop", "zh-CN"): "【中国电信】您已退订网络故障通知短信，回复KT可重新订阅。",
    ("stop", "en"): "[China Telecom] You will no longer get network outage texts. Reply KT to get them again.",
    ("start", "zh-CN"): "【中国电信】您已重新订阅网络故障通知短信，回复TD可退订。",
    ("start", "en"): "[China Telecom] You will get network outage texts again. Reply TD to stop them.",
}


def preference_reply(action: str, language: str) -> str:
    """The confirmation texted back when a customer stops ("TD") or restarts ("KT") outage texts."""
    return _PREFERENCE_REPLIES.get((action, language)) or _PREFERENCE_REPLIES[action, "zh-CN"]
