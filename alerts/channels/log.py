"""Log channel: write the notification to the log (the default ``log`` receiver)."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["Log"]

_log = logging.getLogger("vigil.alerts.notify")


class Log:
    """Logs one line per alert of the message; never fails."""

    kind = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or _log

    @property
    def recipient(self) -> str:
        return self._logger.name

    async def send(self, payload: dict[str, Any]) -> None:
        """Log the message's status and each alert's summary."""
        for alert in payload.get("alerts", []):
            self._logger.warning(
                "alert %s receiver=%s group=%s fingerprint=%s labels=%s summary=%s",
                alert.get("status"),
                payload.get("receiver"),
                payload.get("groupKey"),
                alert.get("fingerprint"),
                alert.get("labels"),
                alert.get("annotations", {}).get("summary", ""),
            )
