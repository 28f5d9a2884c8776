"""Errors raised by the alerts package.

::

    AlertsError                 base of every error raised here
    ├── RoutingError            routing tree or receiver set-up is unusable
    └── ChannelError            a channel could not deliver (carries channel + recipient)
        ├── RetryableError      5xx, 429, timeout, connection error: retried with backoff
        └── PermanentError      4xx, bad URL: marked failed, never retried
"""

from __future__ import annotations

__all__ = ["AlertsError", "ChannelError", "PermanentError", "RetryableError", "RoutingError"]


class AlertsError(Exception):
    """Base of every error raised by the alerts package."""


class RoutingError(AlertsError):
    """The routing tree or the receivers cannot be used as configured."""


class ChannelError(AlertsError):
    """A channel failed to deliver a notification."""

    def __init__(self, message: str, *, channel: str, recipient: str) -> None:
        super().__init__(f"{channel} -> {recipient}: {message}")
        self.channel = channel
        self.recipient = recipient


class RetryableError(ChannelError):
    """Delivery failed for a transient reason; the same notification may be tried again."""


class PermanentError(ChannelError):
    """Delivery was refused; trying again would fail the same way."""
