"""Alert values built from events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerts import Alert, webhook_message
from detectors.event import EventState, fingerprint_labels

from .conftest import T0, make_event


def test_fingerprint_is_independent_of_label_order() -> None:
    a = {"alertname": "LinkDown", "element": "olt-1", "ifName": "ge-0/0/1"}
    b = dict(reversed(list(a.items())))
    assert list(a) != list(b)
    assert fingerprint_labels(a) == fingerprint_labels(b)


def test_fingerprint_is_the_events_and_survives_state_changes() -> None:
    firing = Alert.from_event(make_event(EventState.FIRING), "http://x")
    resolved = Alert.from_event(make_event(EventState.RESOLVED, at=T0 + 60), "http://x")
    assert firing.fingerprint == make_event().fingerprint == resolved.fingerprint


def test_firing_alert_fields() -> None:
    alert = Alert.from_event(make_event(), "http://vigil:8080/")
    assert alert.status == "firing"
    assert alert.labels["alertname"] == "LinkDown"
    assert alert.starts_at == datetime.fromtimestamp(T0, UTC)
    assert alert.ends_at is None
    assert alert.generator_url == f"http://vigil:8080/alerts?fingerprint={alert.fingerprint}"
    notes = alert.annotations
    assert notes["summary"] == "LinkDown on olt-1"
    for word in ("0.97", "0.41", "0.2..0.6", "8.5", "ewma", "if_in_utilization"):
        assert word in notes["description"]
    entry = alert.to_webhook()
    assert entry["endsAt"] == "0001-01-01T00:00:00Z"
    assert entry["startsAt"] == "2023-11-14T22:13:20Z"
    hash(alert)  # frozen values hash despite dict fields


def test_resolved_alert_has_end_time() -> None:
    alert = Alert.from_event(make_event(EventState.RESOLVED, at=T0 + 60), "http://x")
    assert alert.status == "resolved"
    assert alert.to_webhook()["endsAt"] == "2023-11-14T22:14:20Z"


def test_pending_event_is_not_an_alert() -> None:
    with pytest.raises(ValueError, match="pending"):
        Alert.from_event(make_event(EventState.PENDING), "http://x")


def test_message_common_labels_and_status() -> None:
    a = Alert.from_event(make_event(element="olt-1"), "http://x")
    b = Alert.from_event(make_event(EventState.RESOLVED, element="olt-2"), "http://x")
    message = webhook_message(
        receiver="noc",
        group_key="k",
        group_labels={"alertname": "LinkDown"},
        alerts=[a, b],
        external_url="http://x",
    )
    assert message["status"] == "firing"
    assert message["commonLabels"] == {"alertname": "LinkDown", "ifName": "ge-0/0/1"}
    assert message["version"] == "4" and message["truncatedAlerts"] == 0
