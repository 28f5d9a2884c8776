"""Alertmanager channel: hand the alerts to a real Alertmanager (``POST /api/v2/alerts``).

vigil then acts as one more alert source for the operator's Alertmanager, as Prometheus does.
A resolved alert is posted with its ``endsAt``, which resolves it there. A firing alert is
posted without one, so Alertmanager keeps it active for its ``resolve_timeout`` (default 5m)
from each post; vigil re-posts a firing group only every ``repeat_interval``, so set that
Alertmanager's ``resolve_timeout`` above the ``repeat_interval`` of the routes to this receiver.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from alerts.alert import ZERO_TIME
from alerts.errors import PermanentError, RetryableError
from config.models import AlertmanagerConfig

__all__ = ["Alertmanager", "postable_alerts"]

_USER_AGENT = "vigil-alerts/0.1"
_PATH = "/api/v2/alerts"


def postable_alerts(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The webhook message's alerts as Alertmanager API v2 ``PostableAlerts``."""
    out = []
    for alert in payload.get("alerts", []):
        item: dict[str, Any] = {
            "labels": dict(alert.get("labels", {})),
            "annotations": dict(alert.get("annotations", {})),
            "startsAt": alert["startsAt"],
        }
        ends_at = alert.get("endsAt")
        if alert.get("status") == "resolved" and ends_at and ends_at != ZERO_TIME:
            item["endsAt"] = ends_at
        if alert.get("generatorURL"):
            item["generatorURL"] = alert["generatorURL"]
        out.append(item)
    return out


class Alertmanager:
    """POSTs each message's alerts to ``{url}/api/v2/alerts``; 5xx/429/transport retry, 4xx fail."""

    kind = "alertmanager"

    def __init__(
        self, url: str, timeout: float = 10.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.endpoint = self.url + _PATH
        self.timeout = timeout
        self._client = client

    @classmethod
    def from_config(cls, config: AlertmanagerConfig) -> Alertmanager:
        """Build from a receiver's ``alertmanager_configs`` entry."""
        return cls(config.url, config.timeout)

    @property
    def recipient(self) -> str:
        return self.url

    async def send(self, payload: dict[str, Any]) -> None:
        """Post the alerts of ``payload``; raise ``RetryableError`` or ``PermanentError``."""
        receiver = payload.get("receiver", "?")
        alerts = postable_alerts(payload)
        if not alerts:
            return
        body = json.dumps(alerts, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
        where = f"receiver {receiver!r}: POST {self.endpoint}"
        try:
            if self._client is not None:
                response = await self._client.post(
                    self.endpoint, content=body, headers=headers, timeout=self.timeout
                )
            else:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    response = await client.post(self.endpoint, content=body, headers=headers)
        except httpx.TimeoutException as err:
            raise RetryableError(
                f"{where}: timed out after {self.timeout}s", channel=self.kind, recipient=self.url
            ) from err
        except httpx.TransportError as err:
            raise RetryableError(
                f"{where}: {type(err).__name__}: {err}", channel=self.kind, recipient=self.url
            ) from err
        except httpx.InvalidURL as err:
            raise PermanentError(
                f"{where}: invalid URL: {err}", channel=self.kind, recipient=self.url
            ) from err
        status = response.status_code
        if 200 <= status < 300:
            return
        # Alertmanager explains a 400 in the body: "invalid label set: invalid name ..."
        detail = f"{where}: HTTP {status}: {response.text[:300]}"
        if status >= 500 or status == 429:
            raise RetryableError(detail, channel=self.kind, recipient=self.url)
        raise PermanentError(detail, channel=self.kind, recipient=self.url)
