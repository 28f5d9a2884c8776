"""Alerting: events -> alerts -> routing and grouping -> durable outbox -> channels."""

from alerts.alert import Alert, AlertStatus
from alerts.channels import CHANNELS, Alertmanager, Channel, Email, Log, Webhook
from alerts.errors import AlertsError, ChannelError, PermanentError, RetryableError, RoutingError
from alerts.message import webhook_message
from alerts.pipeline import AlertPipeline
from alerts.route import RouteMatch, group_key, match_receivers, match_routes
from alerts.store import AlertGroupRecord, AlertRecord, AlertsBase, NotificationRecord

__all__ = [
    "CHANNELS",
    "Alert",
    "AlertGroupRecord",
    "AlertPipeline",
    "AlertRecord",
    "AlertStatus",
    "Alertmanager",
    "AlertsBase",
    "AlertsError",
    "Channel",
    "ChannelError",
    "Email",
    "Log",
    "NotificationRecord",
    "PermanentError",
    "RetryableError",
    "RouteMatch",
    "RoutingError",
    "Webhook",
    "group_key",
    "match_receivers",
    "match_routes",
    "webhook_message",
]
