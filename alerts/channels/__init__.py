"""Notification channels: a ``Channel`` protocol plus an explicit registry of kinds."""

from __future__ import annotations

from pathlib import Path

from alerts.channels.alertmanager import Alertmanager
from alerts.channels.base import Channel
from alerts.channels.email import Email
from alerts.channels.log import Log
from alerts.channels.robot import DingTalk, Feishu, WeCom
from alerts.channels.webhook import Webhook
from alerts.errors import ChannelError, PermanentError, RetryableError
from config.models import Receiver

__all__ = [
    "CHANNELS",
    "Alertmanager",
    "Channel",
    "ChannelError",
    "DingTalk",
    "Email",
    "Feishu",
    "Log",
    "PermanentError",
    "RetryableError",
    "WeCom",
    "Webhook",
    "receiver_channels",
]

# kind -> class; the pipeline builds each receiver config entry with its kind's class.
CHANNELS: dict[str, type[Channel]] = {
    "webhook": Webhook,
    "email": Email,
    "alertmanager": Alertmanager,
    "dingtalk": DingTalk,
    "wecom": WeCom,
    "feishu": Feishu,
    "log": Log,
}


def receiver_channels(receiver: Receiver, base: Path | None = None) -> list[tuple[Channel, bool]]:
    """Every channel a receiver's ``*_configs`` define, with its ``send_resolved``.

    Webhooks come first, so integrations numbered by position (``noc``, ``noc/1``) keep the
    names they had before the other kinds existed; the chat robots (DingTalk, WeCom, Feishu) come
    after the older kinds for the same reason. ``base`` anchors relative secret files.
    """
    built: list[tuple[Channel, bool]] = []
    built += [(Webhook.from_config(c), c.send_resolved) for c in receiver.webhook_configs]
    built += [(Email.from_config(c, base), c.send_resolved) for c in receiver.email_configs]
    built += [(Alertmanager.from_config(c), c.send_resolved) for c in receiver.alertmanager_configs]
    built += [(DingTalk.from_config(c, base), c.send_resolved) for c in receiver.dingtalk_configs]
    built += [(WeCom.from_config(c, base), c.send_resolved) for c in receiver.wecom_configs]
    built += [(Feishu.from_config(c, base), c.send_resolved) for c in receiver.feishu_configs]
    return built
