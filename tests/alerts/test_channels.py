"""The channel registry: every receiver config kind has a channel class, built in a stable order."""

from __future__ import annotations

from pathlib import Path

from alerts import CHANNELS, Alertmanager, Channel, Email, Webhook
from alerts.channels import receiver_channels
from config.models import Receiver


def test_every_config_kind_is_registered() -> None:
    kinds = {name.removesuffix("_configs") for name in Receiver.model_fields if name.endswith("_configs")}
    assert kinds == set(CHANNELS) - {"log"}
    for kind, cls in CHANNELS.items():
        assert cls.kind == kind


def test_receiver_channels_in_order_with_send_resolved(tmp_path: Path) -> None:
    (tmp_path / "smtp.pass").write_text("s3cret-pw\n", encoding="utf-8")
    receiver = Receiver.model_validate(
        {
            "name": "noc",
            "alertmanager_configs": [{"url": "http://127.0.0.1:9093/"}],
            "email_configs": [
                {"to": ["noc@example.cn"], "from": "vigil@example.cn", "smarthost": "127.0.0.1:25",
                 "auth_username": "vigil", "auth_password_file": "smtp.pass"},
            ],
            "webhook_configs": [
                {"url": "http://127.0.0.1:9/a"},
                {"url": "http://127.0.0.1:9/b", "send_resolved": False},
            ],
        }
    )
    built = receiver_channels(receiver, base=tmp_path)  # smtp.pass is read relative to base
    assert all(isinstance(channel, Channel) for channel, _ in built)
    assert [(type(c), c.recipient, r) for c, r in built] == [
        (Webhook, "http://127.0.0.1:9/a", True),
        (Webhook, "http://127.0.0.1:9/b", False),
        (Email, "noc@example.cn", False),
        (Alertmanager, "http://127.0.0.1:9093", True),
    ]
    assert receiver_channels(Receiver(name="log")) == []
