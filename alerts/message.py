"""Alertmanager's webhook message (version 4): the payload every channel receives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from alerts.alert import Alert, common

__all__ = ["WEBHOOK_VERSION", "webhook_message"]

WEBHOOK_VERSION = "4"


def webhook_message(
    *,
    receiver: str,
    group_key: str,
    group_labels: Mapping[str, str],
    alerts: Sequence[Alert],
    external_url: str,
) -> dict[str, Any]:
    """Build the JSON body Alertmanager POSTs to a webhook for one group flush."""
    status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
    return {
        "version": WEBHOOK_VERSION,
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": dict(group_labels),
        "commonLabels": common([a.labels for a in alerts]),
        "commonAnnotations": common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "alerts": [a.to_webhook() for a in alerts],
    }
