"""Email channel against a real SMTP server (aiosmtpd on 127.0.0.1): content, auth, TLS, errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from alerts import Alert, Email, PermanentError, RetryableError, webhook_message
from alerts.channels.email import default_subject
from config.models import EmailConfig
from detectors.event import EventState
from tests.conftest import free_tcp_port, require_module

from .conftest import make_event

# aiosmtpd warns when AUTH is offered without TLS: the auth tests do that on purpose, on loopback.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SUMMARY = "越秀汇聚交换机 ge-0/0/1 接口错误上升"


@dataclass
class Mailbox:
    """What the server received, and the replies it is told to give."""

    port: int = 0
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    def received(self) -> EmailMessage:
        assert len(self.messages) == 1, self.messages
        return email.message_from_bytes(self.messages[0][2], policy=default)  # type: ignore[return-value]


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if address in self.box.rcpt_replies:
            return self.box.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.box.data_reply is not None:
            return self.box.data_reply
        self.box.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def _smtp_server(box: Mailbox, **kwargs: Any) -> Iterator[Mailbox]:
    require_module("aiosmtpd")
    from aiosmtpd.controller import Controller

    box.port = free_tcp_port()
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=box.port, **kwargs)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    yield from _smtp_server(Mailbox())


def _config(port: int, **extra: Any) -> EmailConfig:
    return EmailConfig.model_validate(
        {
            "to": ["NOC 值班 <noc@example.cn>", "oncall@example.cn"],
            "from": "vigil@example.cn",
            "smarthost": f"127.0.0.1:{port}",
            "timeout": 5,
            **extra,
        }
    )


def _payload(*, resolved: bool = False) -> dict[str, Any]:
    alerts = []
    for if_name in ("ge-0/0/1", "ge-0/0/2"):
        event = make_event(
            EventState.RESOLVED if resolved else EventState.FIRING,
            name="InterfaceErrorsRising",
            element="agg-yuexiu-01",
            extra=(("severity", "critical"),),
        )
        alert = Alert.from_event(event, "http://127.0.0.1:8080")
        alerts.append(
            dataclasses.replace(
                alert,
                fingerprint=f"fp-{if_name}",
                labels={**alert.labels, "ifName": if_name},
                annotations={**alert.annotations, "summary": SUMMARY, "runbook": "https://wiki/接口"},
            )
        )
    return webhook_message(
        receiver="noc-mail",
        group_key='{}:{alertname="InterfaceErrorsRising"}',
        group_labels={"alertname": "InterfaceErrorsRising"},
        alerts=alerts,
        external_url="http://127.0.0.1:8080",
    )


async def test_mail_arrives_with_recipients_subject_both_parts_and_chinese(smtp: Mailbox) -> None:
    channel = Email(_config(smtp.port))
    await channel.send(_payload())

    mail_from, rcpt_tos, _ = smtp.messages[0]
    assert mail_from == "vigil@example.cn"
    assert rcpt_tos == ["noc@example.cn", "oncall@example.cn"]
    msg = smtp.received()
    assert msg["Subject"] == "[FIRING:2] InterfaceErrorsRising (agg-yuexiu-01 critical)"
    assert msg["To"] == "NOC 值班 <noc@example.cn>, oncall@example.cn"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    plain, rich = text.get_content(), html.get_content()
    for body in (plain, rich):
        assert SUMMARY in body
        assert "ge-0/0/2" in body and "agg-yuexiu-01" in body
        assert "if_in_utilization" in body  # the description
        assert "https://wiki/接口" in body  # another annotation
        assert "2023-11-14T22:13:20Z" in body  # startsAt
        assert "http://127.0.0.1:8080/alerts?fingerprint=" in body  # generatorURL
    assert "Firing (2)" in plain
    assert "<table" in rich and "<table" not in plain
    # 7-bit transfer encodings: no relay needs 8BITMIME for the Chinese text
    assert all(ord(c) < 128 for c in smtp.messages[0][2].decode("ascii"))


async def test_resolved_mail_has_ends_at(smtp: Mailbox) -> None:
    await Email(_config(smtp.port)).send(_payload(resolved=True))
    msg = smtp.received()
    assert msg["Subject"] == "[RESOLVED] InterfaceErrorsRising (agg-yuexiu-01 critical)"
    plain = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Resolved (2)" in plain and "Ends at: 2023-11-14T22:13:20Z" in plain


async def test_templates_from_config(smtp: Mailbox) -> None:
    config = _config(
        smtp.port,
        subject="{{ alerts | length }} 告警 {{ commonLabels.element }}\nInjected: x",
        text="{% for a in firing %}{{ a.labels.ifName }};{% endfor %}\n{{ commonAnnotations.summary }}",
        html="<p>{{ commonAnnotations.summary }} {{ '<i>' }}</p>",
    )
    await Email(config).send(_payload())
    msg = smtp.received()
    assert msg["Subject"] == "2 告警 agg-yuexiu-01 Injected: x"  # one line, no header injection
    assert msg["Injected"] is None
    plain = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert plain.replace("\r\n", "\n").strip() == f"ge-0/0/1;ge-0/0/2;\n{SUMMARY}"  # canonical CRLF
    assert msg.get_body(("html",)).get_content().strip() == f"<p>{SUMMARY} &lt;i&gt;</p>"  # type: ignore[union-attr]
    smtp.messages[0][2].decode("ascii")  # short Chinese lines too go 7-bit (no 8BITMIME needed)


@pytest.mark.parametrize(
    ("groups", "common", "subject"),
    [
        ({"alertname": "LinkDown"}, {"alertname": "LinkDown"}, "[FIRING:1] LinkDown"),
        (
            {"element": "olt-1", "alertname": "LinkDown"},
            {"alertname": "LinkDown", "element": "olt-1", "severity": "critical"},
            "[FIRING:1] LinkDown olt-1 (critical)",
        ),
        ({}, {}, "[FIRING:1]"),
    ],
)
def test_default_subject_is_alertmanagers(groups: dict[str, str], common: dict[str, str], subject: str) -> None:
    payload = {"status": "firing", "alerts": [{"status": "firing"}], "groupLabels": groups, "commonLabels": common}
    assert default_subject(payload) == subject


@pytest.mark.parametrize(
    ("rcpt", "data", "error", "fragment"),
    [
        ({"noc@example.cn": "550 5.1.1 mailbox unavailable"}, None, PermanentError, "550"),
        (
            {"noc@example.cn": "550 5.1.1 no such user", "oncall@example.cn": "550 5.1.1 no such user"},
            None, PermanentError, "recipients refused",
        ),
        (
            {"noc@example.cn": "450 4.2.1 try later", "oncall@example.cn": "451 4.3.0 busy"},
            None, RetryableError, "recipients refused",
        ),
        ({}, "554 5.6.0 message rejected", PermanentError, "554"),
        ({}, "451 4.3.0 local error, try again", RetryableError, "451"),
    ],
)
async def test_smtp_replies_map_to_errors(
    smtp: Mailbox, rcpt: dict[str, str], data: str | None, error: type[Exception], fragment: str
) -> None:
    smtp.rcpt_replies.update(rcpt)
    smtp.data_reply = data
    with pytest.raises(error) as info:
        await Email(_config(smtp.port)).send(_payload())
    message = str(info.value)
    assert "receiver 'noc-mail'" in message and fragment in message
    assert info.value.channel == "email"  # type: ignore[attr-defined]
    assert info.value.recipient == "noc@example.cn, oncall@example.cn"  # type: ignore[attr-defined]


async def test_partial_refusal_is_permanent_and_says_who_got_it(smtp: Mailbox) -> None:
    smtp.rcpt_replies["oncall@example.cn"] = "550 5.1.1 mailbox unavailable"
    with pytest.raises(PermanentError, match="delivered to 1 of 2"):
        await Email(_config(smtp.port)).send(_payload())
    assert smtp.messages[0][1] == ["noc@example.cn"]  # no retry: noc must not get it twice


async def test_closed_port_is_retryable() -> None:
    with pytest.raises(RetryableError, match="receiver 'noc-mail'.*ConnectionRefusedError"):
        await Email(_config(free_tcp_port())).send(_payload())


async def test_silent_server_times_out_retryably() -> None:
    with socket.socket() as listener:  # accepts TCP (backlog) but never says 220
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        config = _config(listener.getsockname()[1], timeout=0.3)
        with pytest.raises(RetryableError, match="timed out"):
            await Email(config).send(_payload())


# ---------------------------------------------------------------------- AUTH


@pytest.fixture
def smtp_auth() -> Iterator[Mailbox]:
    require_module("aiosmtpd")
    from aiosmtpd.smtp import AuthResult, LoginPassword

    box = Mailbox()

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        box.logins.append((data.login, data.password))
        ok = (data.login, data.password) == (b"vigil", b"s3cret-pw")
        return AuthResult(success=ok, handled=False)

    yield from _smtp_server(box, authenticator=authenticator, auth_require_tls=False, auth_required=True)


async def test_auth_password_file(smtp_auth: Mailbox, tmp_path: Path) -> None:
    (tmp_path / "smtp.pass").write_text("s3cret-pw\n", encoding="utf-8")
    config = _config(smtp_auth.port, auth_username="vigil", auth_password_file="smtp.pass")
    await Email.from_config(config, base=tmp_path).send(_payload())
    assert smtp_auth.logins == [(b"vigil", b"s3cret-pw")]
    assert len(smtp_auth.messages) == 1


async def test_wrong_password_is_permanent(smtp_auth: Mailbox) -> None:
    config = _config(smtp_auth.port, auth_username="vigil", auth_password="wrong")
    with pytest.raises(PermanentError, match="535"):
        await Email.from_config(config).send(_payload())
    assert smtp_auth.messages == []


async def test_non_ascii_password_is_permanent(smtp_auth: Mailbox) -> None:
    config = _config(smtp_auth.port, auth_username="vigil", auth_password="密码")
    with pytest.raises(PermanentError, match="ASCII"):
        await Email.from_config(config).send(_payload())


async def test_no_credentials_where_auth_is_required(smtp_auth: Mailbox) -> None:
    with pytest.raises(PermanentError, match="530"):
        await Email(_config(smtp_auth.port)).send(_payload())


# ----------------------------------------------------------------------- TLS


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A CA-flagged self-signed certificate for IP 127.0.0.1 (cert, key)."""
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vigil test relay")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "relay.crt", tmp / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_require_tls_uses_starttls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test relay's certificate
    seen: list[bool] = []

    class TlsOnly(_Handler):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            seen.append(session.ssl is not None)
            return await super().handle_DATA(server, session, envelope)

    require_module("aiosmtpd")
    from aiosmtpd.controller import Controller

    box = Mailbox(port=free_tcp_port())
    controller = Controller(
        TlsOnly(box), hostname="127.0.0.1", port=box.port, tls_context=context, require_starttls=True
    )
    controller.start()
    try:
        await Email(_config(box.port, require_tls=True)).send(_payload())
    finally:
        controller.stop()
    assert seen == [True]
    assert SUMMARY in box.received().get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_require_tls_without_starttls_is_permanent(smtp: Mailbox) -> None:
    with pytest.raises(PermanentError, match="does not advertise STARTTLS"):
        await Email(_config(smtp.port, require_tls=True)).send(_payload())
    assert smtp.messages == []


async def test_untrusted_certificate_is_permanent(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()
    servers = _smtp_server(box, tls_context=context)
    next(servers)
    try:
        with pytest.raises(PermanentError, match="TLS"):
            await Email(_config(box.port, require_tls=True)).send(_payload())
    finally:
        next(servers, None)
    assert box.messages == []


async def test_pipeline_delivers_a_receivers_email_config(smtp: Mailbox, tmp_path: Path) -> None:
    """The pipeline builds every *_configs channel of a receiver: an alert reaches the SMTP server."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from alerts import AlertPipeline, AlertsBase
    from config.models import AlertsConfig

    from .conftest import FakeClock, make_event

    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    AlertsBase.metadata.create_all(engine)
    cfg = AlertsConfig.model_validate({
        "route": {"receiver": "noc", "group_wait": 0},
        "receivers": [{"name": "noc", "email_configs": [_config(smtp.port).model_dump(by_alias=True)]}],
    })
    clock = FakeClock()
    pipeline = AlertPipeline(sessionmaker(engine, expire_on_commit=False), cfg, clock=clock)
    await pipeline.ingest([make_event(element="agg-yuexiu-01", at=clock())])
    assert await pipeline.flush() == 1
    mail = smtp.received()
    assert "[FIRING:1]" in mail["Subject"] and "agg-yuexiu-01" in mail["Subject"]
    assert [r["channel"] for r in pipeline.list_notifications()] == ["email"]
    engine.dispose()
