"""Email channel: one mail per notification through an SMTP smarthost (standard library only).

The mail has a text and an HTML part (UTF-8, 7-bit transfer encodings, so any relay takes it);
the subject is Alertmanager's default ``[FIRING:2] <group label values> (<other common
labels>)``. ``smtplib`` blocks, so a send runs in a worker thread.

Errors: connection refused, timeouts, dropped connections and 4xx replies are retryable;
5xx replies (550 mailbox unavailable, 535 bad credentials), a missing STARTTLS when
``require_tls`` is set, TLS failures and template errors are permanent.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path
from typing import Any

import jinja2
from pydantic import SecretStr

from alerts.errors import ChannelError, PermanentError, RetryableError
from config.load import resolve_secret
from config.models import EmailConfig, is_loopback

__all__ = ["Email", "default_subject"]

# 7-bit: non-ASCII text goes base64/quoted-printable, so relays without 8BITMIME accept it.
_POLICY = SMTP.clone(cte_type="7bit")

_TEXT = """\
{% for title, group in (("Firing", firing), ("Resolved", resolved)) if group -%}
{{ title }} ({{ group | length }})
{% for a in group %}
- {{ a.annotations.summary or a.labels.alertname }}
{%- if a.annotations.description %}
  {{ a.annotations.description }}
{%- endif %}
  Labels:
{%- for k, v in a.labels | dictsort %}
    {{ k }} = {{ v }}
{%- endfor %}
{%- set notes = a.annotations | dictsort | rejectattr(0, "in", ("summary", "description")) | list %}
{%- if notes %}
  Annotations:
{%- for k, v in notes %}
    {{ k }} = {{ v }}
{%- endfor %}
{%- endif %}
  Starts at: {{ a.startsAt }}
{%- if a.status == "resolved" %}
  Ends at: {{ a.endsAt }}
{%- endif %}
{%- if a.generatorURL %}
  Source: {{ a.generatorURL }}
{%- endif %}
{% endfor %}
{% endfor -%}
Sent by vigil ({{ receiver }}){% if externalURL %}: {{ externalURL }}{% endif %}
"""

_HTML = """\
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family: sans-serif; font-size: 14px">
<h2 style="color: {{ '#c0392b' if status == 'firing' else '#27ae60' }}">{{ subject }}</h2>
{% for title, group in (("Firing", firing), ("Resolved", resolved)) if group %}
<h3>{{ title }} ({{ group | length }})</h3>
{% for a in group %}
<div style="border-left: 4px solid {{ '#c0392b' if a.status == 'firing' else '#27ae60' }};
            padding: 4px 12px; margin: 12px 0">
<p><strong>{{ a.annotations.summary or a.labels.alertname }}</strong></p>
{% if a.annotations.description %}<p>{{ a.annotations.description }}</p>{% endif %}
<table style="border-collapse: collapse">
<tr><th colspan="2" style="text-align: left">Labels</th></tr>
{% for k, v in a.labels | dictsort %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>
{% endfor %}
{% set notes = a.annotations | dictsort | rejectattr(0, "in", ("summary", "description")) | list %}
{% if notes %}<tr><th colspan="2" style="text-align: left">Annotations</th></tr>
{% for k, v in notes %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>
{% endfor %}{% endif %}
<tr><td>Starts at</td><td>{{ a.startsAt }}</td></tr>
{% if a.status == "resolved" %}<tr><td>Ends at</td><td>{{ a.endsAt }}</td></tr>{% endif %}
</table>
{% if a.generatorURL %}<p><a href="{{ a.generatorURL }}">Source</a></p>{% endif %}
</div>
{% endfor %}
{% endfor %}
<p style="color: #888">Sent by vigil ({{ receiver }}){% if externalURL %}:
<a href="{{ externalURL }}">{{ externalURL }}</a>{% endif %}</p>
</body></html>
"""


def default_subject(payload: Mapping[str, Any]) -> str:
    """Alertmanager's ``__subject``: ``[FIRING:2] LinkDown (agg-yuexiu-01 critical)``."""
    status = str(payload.get("status", "firing"))
    alerts = payload.get("alerts", [])
    head = f"[{status.upper()}"
    if status == "firing":
        head += f":{sum(1 for a in alerts if a.get('status') == 'firing')}"
    group: Mapping[str, str] = payload.get("groupLabels", {})
    common: Mapping[str, str] = payload.get("commonLabels", {})
    parts = [head + "]", *(group[k] for k in sorted(group))]
    rest = [common[k] for k in sorted(common) if k not in group]
    if rest:
        parts.append(f"({' '.join(rest)})")
    return " ".join(parts)


def _addr_spec(value: str) -> str:
    return getaddresses([value])[0][1]


class Email:
    """Mails each notification to ``config.to`` through ``config.smarthost``."""

    kind = "email"

    def __init__(self, config: EmailConfig, *, password: SecretStr | None = None) -> None:
        self.config = config
        self._password = password
        self._to = [_addr_spec(a) for a in config.to]
        self._from = _addr_spec(config.from_)
        # Trusted operator templates; HTML autoescapes label values, text and subject do not.
        text_env = jinja2.Environment(autoescape=False, keep_trailing_newline=True)
        html_env = jinja2.Environment(autoescape=True)
        self._subject = text_env.from_string(config.subject) if config.subject else None
        self._text = text_env.from_string(config.text or _TEXT)
        self._html = html_env.from_string(config.html or _HTML)

    @classmethod
    def from_config(cls, config: EmailConfig, base: Path | None = None) -> Email:
        """Build from a receiver's ``email_configs`` entry; ``base`` anchors a relative password file."""
        password = resolve_secret(
            config.auth_password, None, config.auth_password_file, base=base
        )
        return cls(config, password=password)

    @property
    def recipient(self) -> str:
        return ", ".join(self._to)

    def build(self, payload: Mapping[str, Any]) -> EmailMessage:
        """The mail for one webhook message (text and HTML alternatives)."""
        alerts = payload.get("alerts", [])
        context = dict(payload)
        context["firing"] = [a for a in alerts if a.get("status") == "firing"]
        context["resolved"] = [a for a in alerts if a.get("status") == "resolved"]
        subject = self._subject.render(context) if self._subject else default_subject(payload)
        # A header is one line: a template's newlines would be a header injection.
        context["subject"] = subject = " ".join(subject.split())
        msg = EmailMessage(policy=_POLICY)
        msg["Subject"] = subject
        msg["From"] = self.config.from_
        msg["To"] = ", ".join(self.config.to)
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid("vigil", domain=self._from.rpartition("@")[2])
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(self._text.render(context), charset="utf-8")
        msg.add_alternative(self._html.render(context), subtype="html", charset="utf-8")
        return msg

    async def send(self, payload: dict[str, Any]) -> None:
        """Mail ``payload``; raise ``RetryableError`` or ``PermanentError`` on failure."""
        receiver = str(payload.get("receiver", "?"))
        try:
            msg = self.build(payload)
        except jinja2.TemplateError as err:
            raise self._error(PermanentError, receiver, f"template error: {err}") from err
        await asyncio.to_thread(self._deliver, msg, receiver)

    # ------------------------------------------------------------------ SMTP
    def _error(
        self, kind: type[ChannelError], receiver: str, detail: str
    ) -> ChannelError:
        return kind(
            f"receiver {receiver!r} via {self.config.smarthost}: {detail}",
            channel=self.kind,
            recipient=self.recipient,
        )

    def _by_code(self, code: int, text: bytes | str, receiver: str, what: str) -> ChannelError:
        reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        kind = PermanentError if 500 <= code < 600 else RetryableError  # 4xx and odd replies
        return self._error(kind, receiver, f"{what}: {code} {reply}".strip())

    def _deliver(self, msg: EmailMessage, receiver: str) -> None:
        """Blocking: connect, (STARTTLS), (AUTH), send; map every failure to a channel error."""
        cfg = self.config
        host, port = cfg.host, cfg.port
        try:
            if port == 465:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, port, local_hostname=cfg.hello, timeout=cfg.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(host, port, local_hostname=cfg.hello, timeout=cfg.timeout)
            with smtp:
                smtp.ehlo()
                tls = port == 465
                if cfg.require_tls and not tls:
                    if not smtp.has_extn("starttls"):
                        raise self._error(
                            PermanentError, receiver,
                            "require_tls is set but the server does not advertise STARTTLS",
                        )
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                    tls = True
                if cfg.auth_username is not None:
                    # As Go's PlainAuth: credentials go in clear to a loopback relay only.
                    if not tls and not is_loopback(host):
                        raise self._error(
                            PermanentError, receiver,
                            "refusing to send credentials without TLS: set require_tls",
                        )
                    password = self._password.get_secret_value() if self._password else ""
                    try:
                        smtp.login(cfg.auth_username, password)
                    except UnicodeEncodeError as err:  # smtplib encodes credentials as ASCII
                        raise self._error(
                            PermanentError, receiver, "auth_username/auth_password must be ASCII"
                        ) from err
                refused = smtp.send_message(msg, self._from, self._to)
        except ChannelError:
            raise
        except smtplib.SMTPRecipientsRefused as err:  # every recipient refused
            codes = {code for code, _ in err.recipients.values()}
            detail = "; ".join(
                f"{rcpt}: {code} {text.decode('utf-8', 'replace')}"
                for rcpt, (code, text) in err.recipients.items()
            )
            kind = RetryableError if all(400 <= c < 500 for c in codes) else PermanentError
            raise self._error(kind, receiver, f"recipients refused: {detail}") from err
        except smtplib.SMTPResponseException as err:  # MAIL, DATA, AUTH, HELO, connect replies
            raise self._by_code(err.smtp_code, err.smtp_error, receiver, type(err).__name__) from err
        except smtplib.SMTPNotSupportedError as err:
            raise self._error(PermanentError, receiver, f"not supported: {err}") from err
        except smtplib.SMTPServerDisconnected as err:
            raise self._error(RetryableError, receiver, f"disconnected: {err}") from err
        except smtplib.SMTPException as err:  # before OSError, its base class
            raise self._error(PermanentError, receiver, f"{type(err).__name__}: {err}") from err
        except ssl.SSLError as err:  # before OSError: a certificate problem does not heal
            raise self._error(PermanentError, receiver, f"TLS: {err}") from err
        except TimeoutError as err:
            raise self._error(RetryableError, receiver, f"timed out after {cfg.timeout}s") from err
        except OSError as err:  # refused, unreachable, DNS
            raise self._error(RetryableError, receiver, f"{type(err).__name__}: {err}") from err
        if refused:
            # Some recipients have it already: a retry would mail them twice, so fail visibly.
            detail = "; ".join(
                f"{rcpt}: {code} {text.decode('utf-8', 'replace')}"
                for rcpt, (code, text) in refused.items()
            )
            raise self._error(
                PermanentError, receiver,
                f"delivered to {len(self._to) - len(refused)} of {len(self._to)}, refused: {detail}",
            )

