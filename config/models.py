"""Typed site configuration. Every model is frozen and forbids unknown fields.

Durations are seconds (floats) or strings such as ``"30s"``, ``"5m"``, ``"4h"``.
Defaults are stated here, once.
"""

from __future__ import annotations

import math
import re
from email.utils import getaddresses
from enum import StrEnum
from ipaddress import ip_address
from typing import Annotated, Literal

import jinja2
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)

__all__ = [
    "AlertsConfig",
    "Area",
    "ContingencyConfig",
    "Credential",
    "Customer",
    "CustomersConfig",
    "AlertmanagerConfig",
    "DetectorsConfig",
    "DingTalkConfig",
    "Duration",
    "EmailConfig",
    "Element",
    "ElementRole",
    "HttpConfig",
    "InhibitRuleConfig",
    "KannelConfig",
    "QuietHoursConfig",
    "LabConfig",
    "Receiver",
    "Route",
    "SiteConfig",
    "SmsConfig",
    "SnmpConfig",
    "SnmpDefaults",
    "TrapsConfig",
    "EnterpriseTrap",
    "FeishuConfig",
    "WeComConfig",
    "WebhookConfig",
    "is_loopback",
    "is_wildcard",
    "parse_duration",
    "split_hostport",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """``"5m"`` -> 300.0; numbers pass through as seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"invalid duration {value!r}: use seconds or '30s', '5m', '4h', '1d'")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite, got {value!r}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def http_url(value: str, what: str) -> str:
    """``value`` if it is an ``http(s)://HOST[:PORT][/PATH]`` URL; ValueError naming ``what`` otherwise."""
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
        raise ValueError(f"url must be http(s)://HOST[:PORT][/PATH], {what}")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ElementRole(StrEnum):
    CORE = "core"
    AGGREGATION = "aggregation"
    OLT = "olt"
    DSLAM = "dslam"
    BRAS = "bras"
    ACCESS = "access"
    OTHER = "other"


class Area(_Model):
    """A service area (district): the unit of banners and hotline scripts."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    name: str
    name_zh: str = ""


class Credential(_Model):
    """SNMP credential, referenced by name from elements. Secrets are never printed."""

    version: Literal["1", "2c", "3"] = "2c"
    community: SecretStr | None = None
    community_file: str | None = None
    community_env: str | None = None
    # SNMPv3 USM
    user: str | None = None
    auth_protocol: Literal["none", "md5", "sha", "sha224", "sha256", "sha384", "sha512"] = "none"
    auth_key: SecretStr | None = None
    auth_key_env: str | None = None
    auth_key_file: str | None = None
    priv_protocol: Literal["none", "des", "aes", "aes192", "aes256"] = "none"
    priv_key: SecretStr | None = None
    priv_key_env: str | None = None
    priv_key_file: str | None = None


# A poll interval or request timeout: 0 would time every request out at once / poll in a busy loop.
PositiveDuration = Annotated[Duration, Field(gt=0)]


class SnmpDefaults(_Model):
    interval: PositiveDuration = 60.0
    timeout: PositiveDuration = 2.0
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    max_repetitions: Annotated[int, Field(ge=1, le=1000)] = 25


class SnmpConfig(_Model):
    credentials: dict[str, Credential] = Field(default_factory=dict)
    defaults: SnmpDefaults = SnmpDefaults()
    concurrency: Annotated[int, Field(ge=1, le=10000)] = 64
    # folders of extra device profiles (YAML, see collectors/profiles/); relative to the config file
    profile_dirs: list[str] = Field(default_factory=list)
    label_refresh: PositiveDuration = 3600.0  # ifName/ifAlias/... are re-walked this often (or on a change)


class Element(_Model):
    """A network element: where to poll it and where it sits in the topology."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    role: ElementRole = ElementRole.OTHER
    address: str  # udp://HOST:PORT
    credential: str
    area: str | None = None  # the area an access element serves; None for shared ones
    parent: str | None = None  # upstream element
    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    max_repetitions: Annotated[int, Field(ge=1, le=1000)] | None = None

    @field_validator("address")
    @classmethod
    def _udp_address(cls, value: str) -> str:
        if not re.match(r"^udp://[^:/\s]+:\d{1,5}$", value):
            raise ValueError("address must look like udp://HOST:PORT")
        port = int(value.rsplit(":", 1)[1])
        if not 0 < port < 65536:
            raise ValueError(f"port {port} out of range")
        return value

    @property
    def host(self) -> str:
        return self.address[len("udp://") :].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


class CustomersConfig(_Model):
    """Customers come from a CSV file: account,phone,area,element[,grade,language,name,sms]."""

    file: str | None = None


class DetectorsConfig(_Model):
    """Defaults of the shipped detector configuration."""

    alpha: Annotated[float, Field(gt=0, le=1)] = 0.05
    threshold: Annotated[float, Field(gt=0)] = 6.0
    warmup: Annotated[int, Field(ge=1)] = 20
    for_: Annotated[Duration, Field(alias="for")] = 120.0
    keep_firing_for: Duration = 300.0
    utilization_threshold: Annotated[float, Field(gt=0, le=1.5)] = 0.9
    error_rate_min: Annotated[float, Field(ge=0)] = 1.0
    unreachable_after: Annotated[int, Field(ge=1, le=100)] = 3  # failed polls in a row
    # The NAB-scored composite score per series (detectors.composite): it raises Event.score and
    # feeds the collective detector, never alerts on its own. false = not run (saves its memory).
    composite: Annotated[bool, Field(strict=True)] = True

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class WebhookConfig(_Model):
    url: str
    send_resolved: bool = True
    timeout: PositiveDuration = 10.0

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value, "the receiver's webhook URL")


def split_hostport(value: str) -> tuple[str, int]:
    """``"smtp.example.com:25"`` / ``"[::1]:25"`` -> (host, port); ValueError otherwise."""
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or ":" in host and "[" not in value or not port.isdigit():
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. smtp.example.com:25)")
    if not 0 < int(port) < 65536:
        raise ValueError(f"port {port} out of range")
    return host, int(port)


def is_wildcard(host: str) -> bool:
    """``0.0.0.0``, ``::`` (or ``*``, empty): a listen address that names no host to call back."""
    return host.strip("[]") in ("0.0.0.0", "::", "*", "")


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1: traffic that never leaves the machine."""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _mailbox(value: str) -> str:
    """One address, bare or with a display name (``NOC 值班 <noc@example.com>``)."""
    pairs = getaddresses([value])
    if len(pairs) != 1 or "@" not in pairs[0][1] or not pairs[0][1].isascii():
        raise ValueError(f"{value!r} is not one e-mail address (name <user@domain> or user@domain)")
    return value


def _template(value: str | None) -> str | None:
    """Jinja2 syntax is checked at load, so a typo is a config error, not a failed send."""
    if value is not None:
        try:
            jinja2.Environment().parse(value)
        except jinja2.TemplateSyntaxError as err:
            raise ValueError(f"template syntax error, line {err.lineno}: {err.message}") from err
    return value


Template = Annotated[str | None, AfterValidator(_template)]


class EmailConfig(_Model):
    """Mail through an SMTP smarthost (Alertmanager's ``email_configs``).

    ``require_tls`` defaults to false (Alertmanager: true) so a local relay works as is; with
    it, STARTTLS is mandatory. Port 465 is implicit TLS. ``subject``/``text``/``html`` are
    Jinja2 templates over the webhook message; unset, Alertmanager-like defaults are used.
    """

    to: Annotated[list[Annotated[str, AfterValidator(_mailbox)]], Field(min_length=1)]
    from_: Annotated[str, AfterValidator(_mailbox), Field(alias="from")]
    smarthost: str  # HOST:PORT
    hello: str = "localhost"  # the EHLO name
    auth_username: str | None = None
    auth_password: SecretStr | None = None
    auth_password_file: str | None = None
    require_tls: bool = False
    send_resolved: bool = False  # as Alertmanager's email default
    timeout: PositiveDuration = 10.0
    subject: Template = None
    text: Template = None
    html: Template = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("smarthost")
    @classmethod
    def _smarthost(cls, value: str) -> str:
        split_hostport(value)
        return value

    @property
    def host(self) -> str:
        return split_hostport(self.smarthost)[0]

    @property
    def port(self) -> int:
        return split_hostport(self.smarthost)[1]


class AlertmanagerConfig(_Model):
    """Forward alerts to an Alertmanager's ``/api/v2/alerts`` (``url`` is its base URL)."""

    url: str
    timeout: PositiveDuration = 10.0

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value, "Alertmanager's base URL")

    @property
    def send_resolved(self) -> bool:
        """Always: Alertmanager resolves an alert only when told its ``endsAt``."""
        return True


def _robot_url(value: str) -> str:
    return http_url(value, "the robot's http(s) webhook URL")


# A mobile number as the chat vendors take it: digits, optionally +86 / 86- prefixed.
Mobile = Annotated[str, Field(pattern=r"^\+?[0-9][0-9-]{4,19}$")]


class _RobotConfig(_Model):
    """A group-chat custom robot: its webhook URL, and Jinja2 ``title``/``text`` over the message."""

    url: Annotated[str, AfterValidator(_robot_url)]
    send_resolved: bool = True
    timeout: PositiveDuration = 10.0
    mention_all: bool = False  # @all (the robot may need to be a group admin for it)
    title: Template = None  # default: Alertmanager's subject, "[FIRING:2] LinkDown (agg-1 critical)"
    text: Template = None  # markdown; default: summary, element, severity, times, value, link


class _SignedRobotConfig(_RobotConfig):
    """A robot whose security setting is "signature" (加签): give ``secret`` or ``secret_file``."""

    secret: SecretStr | None = None
    secret_file: str | None = None  # first line; relative to the config file

    @field_validator("secret_file")
    @classmethod
    def _one_secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("secret") is not None:
            raise ValueError("conflicts with secret: give one")
        return value


class DingTalkConfig(_SignedRobotConfig):
    """DingTalk (钉钉) custom robot: ``https://oapi.dingtalk.com/robot/send?access_token=...``."""

    mentions: list[Mobile] = Field(default_factory=list)  # atMobiles


class WeComConfig(_RobotConfig):
    """WeCom (企业微信) group robot: ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...``.

    WeCom's markdown cannot @ by mobile: with ``mentions`` or ``mention_all`` the message goes
    as plain text with ``mentioned_mobile_list``.
    """

    mentions: list[Mobile] = Field(default_factory=list)  # mentioned_mobile_list


class FeishuConfig(_SignedRobotConfig):
    """Feishu/Lark (飞书) custom bot: ``https://open.feishu.cn/open-apis/bot/v2/hook/<id>``.

    Feishu @-mentions need open_ids, not mobiles: only ``mention_all`` is offered.
    """


class Receiver(_Model):
    name: str
    webhook_configs: list[WebhookConfig] = Field(default_factory=list)
    email_configs: list[EmailConfig] = Field(default_factory=list)
    alertmanager_configs: list[AlertmanagerConfig] = Field(default_factory=list)
    dingtalk_configs: list[DingTalkConfig] = Field(default_factory=list)
    wecom_configs: list[WeComConfig] = Field(default_factory=list)
    feishu_configs: list[FeishuConfig] = Field(default_factory=list)


class Route(_Model):
    """Alertmanager-style routing tree node."""

    receiver: str | None = None
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "element"])
    matchers: dict[str, str] = Field(default_factory=dict)
    continue_: Annotated[bool, Field(alias="continue")] = False
    group_wait: Duration = 30.0
    group_interval: PositiveDuration = 300.0
    repeat_interval: PositiveDuration = 14400.0
    routes: list[Route] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_MATCHER = re.compile(r'^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*$')


def _matchers(values: list[str]) -> list[str]:
    """Alertmanager matcher strings: ``element="agg-1"``, ``alertname=~"Interface.*"``."""
    for value in values:
        if not _MATCHER.match(value):
            raise ValueError(f'matcher {value!r}: expected name="value" with =, !=, =~ or !~')
        if "~" in value:
            pattern = value.split('"', 1)[1].rsplit('"', 1)[0]
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"matcher {value!r}: bad regex: {err}") from err
    return values


Matchers = Annotated[list[str], AfterValidator(_matchers)]


class InhibitRuleConfig(_Model):
    """Alertmanager's inhibit rule; ``topology: true`` also needs the source upstream of the target."""

    source_matchers: Matchers = Field(min_length=1)
    target_matchers: Matchers = Field(default_factory=list)
    equal: list[str] = Field(default_factory=list)
    topology: bool = False


class AlertsConfig(_Model):
    route: Route = Route(receiver="log")
    receivers: list[Receiver] = Field(default_factory=lambda: [Receiver(name="log")])
    # None: the shipped rules (alerts.inhibit.DEFAULT_INHIBIT_RULES); [] turns inhibition off.
    inhibit_rules: list[InhibitRuleConfig] | None = None


_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class QuietHoursConfig(_Model):
    """No customer SMS between ``start`` and ``end`` (local ``timezone``; may cross midnight)."""

    start: str = "22:00"
    end: str = "08:00"
    timezone: str = "Asia/Shanghai"

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r} is not a time of day HH:MM (00:00-23:59)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from err
        return value


class KannelConfig(_Model):
    """A Kannel SMS gateway's HTTP ``sendsms`` interface (a ``sendsms-user`` of its smsbox)."""

    url: str  # e.g. http://127.0.0.1:13013 (the smsbox sendsms-port)
    username: str
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: str | None = None  # relative to the config file
    smsc: str | None = None  # route through this smsc-id
    timeout: PositiveDuration = 10.0
    # ask Kannel for delivery reports (DLR) at vigil's /api/v1/sms/dlr (http.public_url, carrying
    # http.write_token): agents then see "delivered" / "not delivered"
    delivery_reports: bool = True

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL of the smsbox sendsms interface")
        return value


class SmsConfig(_Model):
    sink: Literal["console", "file", "kannel"] = "file"
    path: str = "sms-outbox.jsonl"  # relative to the data dir
    sender: str = "10000"
    quiet_hours: QuietHoursConfig | None = None  # off unless set
    kannel: KannelConfig | None = None  # required by sink: kannel


class ContingencyConfig(_Model):
    hold_down: Duration = 300.0  # an incident must stay open this long before customers are texted
    # Events below this severity (e.g. info-level behaviour outliers) reach the NOC only.
    min_severity: Literal["info", "warning", "critical"] = "warning"
    # Predicted breaches (events with an ETA) reach the NOC; customers hear of real faults only.
    act_on_predictions: bool = False
    default_language: Literal["zh-CN", "en"] = "zh-CN"
    sms: SmsConfig = SmsConfig()


class EnterpriseTrap(_Model):
    """What a vendor trap means: the alert it raises."""

    alertname: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    severity: Literal["info", "warning", "critical"] = "warning"


class TrapsConfig(_Model):
    """The SNMP trap/inform listener. Port 162 needs root or CAP_NET_BIND_SERVICE; 1162 does not."""

    enabled: bool = True
    listen: str = "127.0.0.1:1162"
    # credentials (snmp.credentials names) accepted for traps; default: every credential
    credentials: list[str] | None = None
    # v3 credential name -> authoritative engine IDs (hex) of the devices sending it v3 traps
    engine_ids: dict[str, list[str]] = Field(default_factory=dict)
    restart_hold: Duration = 300.0  # a coldStart/warmStart alert resolves itself after this
    enterprise: dict[str, EnterpriseTrap] = Field(default_factory=dict)  # trap OID prefix -> alert

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("listen must be HOST:PORT")
        return value

    @field_validator("enterprise")
    @classmethod
    def _oids(cls, value: dict[str, EnterpriseTrap]) -> dict[str, EnterpriseTrap]:
        for oid in value:
            if not re.match(r"^\.?[0-9]+(\.[0-9]+)+$", oid):
                raise ValueError(f"{oid!r} is not a numeric OID prefix")
        return value


class LabConfig(_Model):
    """Serve simulated agents for this config's elements (the built-in lab network)."""

    enabled: bool = False
    speedup: Annotated[float, Field(gt=0)] = 60.0  # the lab clock runs this much faster by default
    scenario: bool = True  # inject the demo fault
    fault_at: Duration = 1200.0  # simulated seconds after start
    fault_element: str | None = None  # default: the first aggregation element with an area


class HttpConfig(_Model):
    listen: str = "127.0.0.1:8080"
    # the URL others reach vigil at (SMS gateway callbacks such as Kannel's dlr-url, alerts'
    # externalURL); default: http://<listen> unless listen is a wildcard (0.0.0.0, ::)
    public_url: str | None = None
    # Bearer token for the API's writes (silences). Unset: writes are open (fine on 127.0.0.1 only).
    write_token: SecretStr | None = None
    write_token_env: str | None = None
    write_token_file: str | None = None  # relative to the config file

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("listen must be HOST:PORT")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s?#@]+(/[^\s?#]*)?$", value):
            raise ValueError(f"{value!r} is not http(s)://HOST[:PORT][/PATH] (no query, no credentials), "
                             "the URL vigil is reached at")
        return value.rstrip("/")

    def callback_url(self) -> str | None:
        """Base URL for callbacks to vigil: ``public_url``, else ``http://<listen>``; None when
        listen is a wildcard address and no public_url says where vigil is."""
        if self.public_url is not None:
            return self.public_url
        host, _, port = self.listen.rpartition(":")
        if is_wildcard(host):
            return None
        return f"http://{host}:{port}"


class SiteConfig(_Model):
    """The whole site: inventory, topology, customers, SNMP, detection, alerting, contingency."""

    site: str = "vigil"
    areas: list[Area] = Field(default_factory=list)
    elements: list[Element] = Field(default_factory=list)
    customers: CustomersConfig = CustomersConfig()
    snmp: SnmpConfig = SnmpConfig()
    traps: TrapsConfig = TrapsConfig()
    detectors: DetectorsConfig = DetectorsConfig()
    alerts: AlertsConfig = AlertsConfig()
    contingency: ContingencyConfig = ContingencyConfig()
    http: HttpConfig = HttpConfig()
    lab: LabConfig = LabConfig()


class Customer(_Model):
    """One row of the customers file."""

    account: Annotated[str, Field(min_length=1)]
    phone: Annotated[str, Field(pattern=r"^\+?[0-9]{5,15}$")]
    area: str
    element: str  # the access element (OLT/DSLAM) the customer hangs off
    grade: Literal["vip", "gold", "standard"] = "standard"
    language: Literal["zh-CN", "en"] = "zh-CN"
    name: str = ""
    # false (no/0/off): the customer asked not to get outage texts; agents still see them affected
    sms: bool = True
