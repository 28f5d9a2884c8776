"""Webhook channel: POST Alertmanager's webhook JSON (version 4) to a URL."""

from __future__ import annotations

import json
from typing import Any

import httpx

from alerts.errors import PermanentError, RetryableError
from config.models import WebhookConfig

__all__ = ["Webhook"]

_USER_AGENT = "vigil-alerts/0.1"


class Webhook:
    """POSTs each message as JSON; 2xx is success, 5xx/429/transport errors retry, 4xx fail."""

    kind = "webhook"

    def __init__(
        self, url: str, timeout: float = 10.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._client = client

    @classmethod
    def from_config(cls, config: WebhookConfig) -> Webhook:
        """Build from a receiver's ``webhook_configs`` entry."""
        return cls(config.url, config.timeout)

    @property
    def recipient(self) -> str:
        return self.url

    async def send(self, payload: dict[str, Any]) -> None:
        """POST ``payload``; raise ``RetryableError`` or ``PermanentError`` on failure."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
        try:
            if self._client is not None:
                response = await self._client.post(
                    self.url, content=body, headers=headers, timeout=self.timeout
                )
            else:
                # A client per send: no connection state survives between flushes or event
                # loops, which keeps the channel safe to share; pooling is a later optimisation.
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    response = await client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as err:
            raise RetryableError(
                f"timed out after {self.timeout}s", channel=self.kind, recipient=self.url
            ) from err
        except httpx.TransportError as err:
            raise RetryableError(
                f"{type(err).__name__}: {err}", channel=self.kind, recipient=self.url
            ) from err
        except httpx.InvalidURL as err:
            raise PermanentError(
                f"invalid URL: {err}", channel=self.kind, recipient=self.url
            ) from err
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = f"HTTP {status}: {response.text[:200]}"
        if status >= 500 or status == 429:
            raise RetryableError(detail, channel=self.kind, recipient=self.url)
        raise PermanentError(detail, channel=self.kind, recipient=self.url)
