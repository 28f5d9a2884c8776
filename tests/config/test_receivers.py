"""Receiver channels in the site config: email and Alertmanager entries, errors with field paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import AlertmanagerConfig, EmailConfig, load_site
from config.models import DingTalkConfig, FeishuConfig, WeComConfig

from .test_load import issues_of

SITE = """\
site: test
alerts:
  route: {receiver: noc}
  receivers:
    - name: noc
      email_configs:
        - to: ["NOC 值班 <noc@example.cn>", oncall@example.cn]
          from: vigil@example.cn
          smarthost: "127.0.0.1:2525"
          auth_username: vigil
          auth_password_file: smtp.pass
          subject: "{{ status }}: {{ commonLabels.element }}"
        - to: [ops@example.cn]
          from: "vigil <vigil@example.cn>"
          smarthost: "smtp.example.cn:587"
          require_tls: true
          auth_username: vigil
          auth_password: s3cret
          send_resolved: true
      alertmanager_configs:
        - url: "http://127.0.0.1:9093"
          timeout: 5s
      webhook_configs: [{url: "http://127.0.0.1:9/hook"}]
"""


def write(tmp: Path, text: str) -> Path:
    (tmp / "smtp.pass").write_text("s3cret-pw\n", encoding="utf-8")
    path = tmp / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_email_and_alertmanager_configs_load(tmp_path: Path) -> None:
    receiver = load_site(write(tmp_path, SITE)).config.alerts.receivers[0]
    local, remote = receiver.email_configs
    assert isinstance(local, EmailConfig)
    assert local.to == ["NOC 值班 <noc@example.cn>", "oncall@example.cn"]
    assert (local.from_, local.host, local.port) == ("vigil@example.cn", "127.0.0.1", 2525)
    assert (local.require_tls, local.send_resolved, local.timeout) == (False, False, 10.0)  # defaults
    assert (remote.port, remote.require_tls, remote.send_resolved) == (587, True, True)
    assert "s3cret" not in repr(remote)  # a SecretStr
    [am] = receiver.alertmanager_configs
    assert isinstance(am, AlertmanagerConfig)
    assert (am.url, am.timeout, am.send_resolved) == ("http://127.0.0.1:9093", 5.0, True)


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        ('"127.0.0.1:2525"', '"127.0.0.1"', "alerts.receivers[0].email_configs[0].smarthost", "HOST:PORT"),
        ('"127.0.0.1:2525"', '"mail:99999"', "alerts.receivers[0].email_configs[0].smarthost", "out of range"),
        ("oncall@example.cn]", "not-an-address]", "alerts.receivers[0].email_configs[0].to[1]", "e-mail address"),
        ("from: vigil@example.cn", "from: nobody", "alerts.receivers[0].email_configs[0].from", "e-mail address"),
        ("to: [ops@example.cn]", "to: []", "alerts.receivers[0].email_configs[1].to", "at least 1"),
        ('subject: "{{ status }}', 'subject: "{{ status }', "alerts.receivers[0].email_configs[0].subject",
         "template syntax error"),
        ("require_tls: true", "require_tls: true\n          bcc: x", "alerts.receivers[0].email_configs[1].bcc",
         "unknown field"),
        ("auth_password_file: smtp.pass", "auth_password_file: missing.pass",
         "alerts.receivers[0].email_configs[0].auth_password_file", "cannot read secret file"),
        ("auth_password_file: smtp.pass", "auth_password_file: smtp.pass\n          auth_password: x",
         "alerts.receivers[0].email_configs[0].auth_password_file", "conflicts with auth_password"),
        ("auth_password_file: smtp.pass", "", "alerts.receivers[0].email_configs[0].auth_username",
         "needs auth_password"),
        ("          auth_username: vigil\n          auth_password_file", "          auth_password_file",
         "alerts.receivers[0].email_configs[0].auth_password_file", "needs auth_username"),
        ("require_tls: true", "require_tls: false", "alerts.receivers[0].email_configs[1].require_tls",
         "in clear to smtp.example.cn"),
        ('"http://127.0.0.1:9093"', '"127.0.0.1:9093"', "alerts.receivers[0].alertmanager_configs[0].url",
         "http(s)://"),
        ("timeout: 5s", "timeout: soon", "alerts.receivers[0].alertmanager_configs[0].timeout",
         "invalid duration"),
    ],
)
def test_broken_channel_field_is_named(tmp_path: Path, old: str, new: str, path: str, fragment: str) -> None:
    assert old in SITE
    issues = issues_of(write(tmp_path, SITE.replace(old, new, 1)))
    assert path in issues, issues
    assert fragment in issues[path]


def test_plain_auth_to_loopback_and_port_465_is_allowed(tmp_path: Path) -> None:
    text = SITE.replace('"smtp.example.cn:587"', '"smtp.example.cn:465"').replace("require_tls: true", "")
    assert load_site(write(tmp_path, text)).config.alerts.receivers[0].email_configs[1].port == 465


ROBOTS = """\
site: test
alerts:
  route: {receiver: noc}
  receivers:
    - name: noc
      dingtalk_configs:
        - url: "https://oapi.dingtalk.com/robot/send?access_token=abcdef0123456789"
          secret_file: robot.secret
          mentions: ["13800001111", "+86-13900002222"]
          title: "{{ status }} {{ commonLabels.element }}"
      wecom_configs:
        - url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-0000"
          send_resolved: false
      feishu_configs:
        - url: "https://open.feishu.cn/open-apis/bot/v2/hook/0d3c1b7e-0000"
          secret: SECabc
          mention_all: true
          text: "{% for a in alerts %}{{ a.labels.element }}{% endfor %}"
"""


def test_robot_configs_load(tmp_path: Path) -> None:
    (tmp_path / "robot.secret").write_text("SECdingtalk\n", encoding="utf-8")
    receiver = load_site(write(tmp_path, ROBOTS)).config.alerts.receivers[0]
    [ding], [wecom], [feishu] = receiver.dingtalk_configs, receiver.wecom_configs, receiver.feishu_configs
    assert isinstance(ding, DingTalkConfig) and isinstance(wecom, WeComConfig) and isinstance(feishu, FeishuConfig)
    assert (ding.secret_file, ding.mentions, ding.send_resolved) == (
        "robot.secret", ["13800001111", "+86-13900002222"], True)
    assert (wecom.send_resolved, wecom.mentions, wecom.timeout) == (False, [], 10.0)
    assert feishu.mention_all and "SECabc" not in repr(feishu)  # a SecretStr


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        ('"https://oapi.dingtalk.com', '"oapi.dingtalk.com', "alerts.receivers[0].dingtalk_configs[0].url",
         "http(s) webhook URL"),
        ("secret_file: robot.secret", "secret_file: missing.secret",
         "alerts.receivers[0].dingtalk_configs[0].secret_file", "cannot read secret file"),
        ("secret_file: robot.secret", "secret: x\n          secret_file: robot.secret",
         "alerts.receivers[0].dingtalk_configs[0].secret_file", "conflicts with secret"),
        ('"+86-13900002222"', '"call me"', "alerts.receivers[0].dingtalk_configs[0].mentions[1]",
         "should match pattern"),
        ('title: "{{ status }}', 'title: "{{ status }', "alerts.receivers[0].dingtalk_configs[0].title",
         "template syntax error"),
        ("send_resolved: false", "send_resolved: false\n          secret: x",
         "alerts.receivers[0].wecom_configs[0].secret", "unknown field"),
        ("mention_all: true", "mentions: ['13800001111']", "alerts.receivers[0].feishu_configs[0].mentions",
         "unknown field"),
        ("{% for a in alerts %}", "{% for a in alerts", "alerts.receivers[0].feishu_configs[0].text",
         "template syntax error"),
    ],
)
def test_broken_robot_field_is_named(tmp_path: Path, old: str, new: str, path: str, fragment: str) -> None:
    (tmp_path / "robot.secret").write_text("SECdingtalk\n", encoding="utf-8")
    assert old in ROBOTS
    issues = issues_of(write(tmp_path, ROBOTS.replace(old, new, 1)))
    assert path in issues, issues
    assert fragment in issues[path]
