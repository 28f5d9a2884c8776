"""The channel protocol: deliver one Alertmanager webhook message somewhere."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Channel"]


@runtime_checkable
class Channel(Protocol):
    """A notification channel; ``send`` raises ``RetryableError`` or ``PermanentError``."""

    kind: str  # "webhook", "log": recorded as the outbox row's channel
    recipient: str  # where it goes (URL, logger name): shown by the HTTP API

    async def send(self, payload: dict[str, Any]) -> None:
        """Deliver one Alertmanager webhook message (version 4)."""
        ...
