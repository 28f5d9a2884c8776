"""Stand-ins for the web app's collaborators that a test does not exercise."""

from __future__ import annotations

from typing import Any


class NoAlerts:
    """The alerts side of ``create_app`` with nothing in it."""

    def list_alerts(self, status: str | None = None, fingerprint: str | None = None) -> list[dict[str, Any]]:
        return []

    def list_notifications(self, limit: int = 500) -> list[dict[str, Any]]:
        return []
