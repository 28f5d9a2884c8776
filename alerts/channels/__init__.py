"""Notification channels: a ``Channel`` protocol plus an explicit registry of kinds."""

from __future__ import annotations

from alerts.channels.alertmanager import Alertmanager
from alerts.channels.base import Channel
from alerts.channels.email import Email
from alerts.channels.log import Log
from alerts.channels.webhook import Webhook
from alerts.errors import ChannelError, PermanentError, RetryableError

__all__ = [
    "CHANNELS",
    "Alertmanager",
    "Channel",
    "ChannelError",
    "Email",
    "Log",
    "PermanentError",
    "RetryableError",
    "Webhook",
]

# kind -> class; the pipeline builds each receiver config entry with its kind's class.
CHANNELS: dict[str, type[Channel]] = {
    "webhook": Webhook,
    "email": Email,
    "alertmanager": Alertmanager,
    "log": Log,
}
