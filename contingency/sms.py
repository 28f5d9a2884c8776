"""Where customer SMS go: a Protocol, a JSON-lines file sink, a console sink, a Kannel gateway.

A sink is keyed by ``message_id``: sending the same id twice delivers once, so a retry after a
crash between "sent" and "recorded" never texts a customer twice (for the file sink across
restarts; for Kannel within the process, since its ``sendsms`` interface has no idempotency key).

:class:`KannelSmsSink` hands each message to a Kannel SMS gateway's HTTP ``sendsms`` interface
(the open-source gateway operators run in front of their SMSCs): GSM-7 text as is, anything else
(Chinese) as UCS-2 (``coding=2``, ``charset=UTF-8``); long texts are split by Kannel (set
``max-messages`` and ``concatenation = true`` in the ``sendsms-user`` group). Kannel's answers map
to the sink errors: ``0: Accepted`` / ``3: Queued`` = sent; 4xx (bad credentials, bad number) =
permanent; 5xx, timeouts and refused connections = retryable.

Given a ``dlr_url`` (vigil's delivery-report callback, token included), each text asks Kannel for
delivery reports (``dlr-mask`` 27 = delivered 1 + not delivered 2 + SMSC accepted 8 + SMSC
rejected 16) at ``<dlr_url>&id=<message id>&type=%d&reply=%A``; Kannel fills in ``%d`` (the report
type) and ``%A`` (the SMSC's answer). :func:`kannel_delivery` reads the type.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import httpx

from config.load import resolve_secret
from config.models import SmsConfig
from config.redact import redact_secrets
from contingency.errors import SmsPermanentError, SmsRetryableError
from contingency.scripts import is_gsm7, sms_segments
from contingency.store import SmsDelivery

__all__ = [
    "KANNEL_DLR_MASK",
    "SMS_SINKS",
    "ConsoleSmsSink",
    "FileSmsSink",
    "KannelSmsSink",
    "SmsSink",
    "kannel_delivery",
    "kannel_escape",
    "sink_from_config",
]

KANNEL_DLR_MASK = 1 | 2 | 8 | 16  # delivered, not delivered, SMSC accepted, SMSC rejected


def kannel_delivery(dlr_type: int) -> SmsDelivery:
    """What a Kannel delivery report type (the ``%d`` of a dlr-url) says. Kannel's user guide:
    1 delivered to phone, 2 non-delivered to phone, 4 queued on SMSC, 8 delivered to SMSC, 16
    non-delivered to SMSC; some SMSC drivers combine bits (e.g. 0x22 expired), the strongest bit
    wins. ValueError for anything else."""
    if isinstance(dlr_type, bool) or not 0 < dlr_type < 256:
        raise ValueError(f"type: {dlr_type!r} is not a Kannel delivery report type (1, 2, 4, 8 or 16)")
    for bit, status in ((1, SmsDelivery.DELIVERED), (2, SmsDelivery.FAILED), (16, SmsDelivery.SMSC_REJECTED),
                        (8, SmsDelivery.SMSC_ACCEPTED), (4, SmsDelivery.BUFFERED)):
        if dlr_type & bit:
            return status
    raise ValueError(f"type: {dlr_type!r} is not a Kannel delivery report type (1, 2, 4, 8 or 16)")


def kannel_escape(value: str) -> str:
    """``value`` URL-encoded for a query string *inside a Kannel dlr-url*: Kannel replaces
    ``%X`` escape codes there (``%C3`` of an encoded "é" would become the charset), so every
    ``%`` of the encoding is written ``%%``, which Kannel turns back into ``%``."""
    return urllib.parse.quote(value, safe="").replace("%", "%%")

_PHONE = re.compile(r"^\+?[0-9]{5,15}$")


@runtime_checkable
class SmsSink(Protocol):
    """Delivers one SMS; raises SmsRetryableError or SmsPermanentError."""

    def send(self, phone: str, text: str, *, message_id: str) -> None:
        """Deliver ``text`` to ``phone`` once per ``message_id``."""
        ...


def _check(phone: str, text: str, message_id: str) -> None:
    if not _PHONE.match(phone):
        raise SmsPermanentError(phone, "not a phone number", message_id=message_id)
    if not text:
        raise SmsPermanentError(phone, "empty text", message_id=message_id)


class FileSmsSink:
    """Appends one JSON line per message (message_id, to, from, text, segments, sent_at)."""

    def __init__(
        self,
        path: str | Path,
        *,
        sender: str = "10000",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.sender = sender
        self._clock = clock
        self._lock = threading.Lock()
        self._sent: set[str] = set()
        if self.path.is_file():
            self._sent = {rec["message_id"] for rec in self.read()}

    def read(self) -> list[dict[str, object]]:
        """Every message written so far, oldest first (skips a torn last line)."""
        if not self.path.is_file():
            return []
        records: list[dict[str, object]] = []
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line torn by a crash mid-write; the message is retried
        return records

    def send(self, phone: str, text: str, *, message_id: str) -> None:
        """Append the message unless ``message_id`` was already written."""
        _check(phone, text, message_id)
        record = {
            "message_id": message_id,
            "to": phone,
            "from": self.sender,
            "text": text,
            "segments": sms_segments(text),
            "sent_at": self._clock(),
        }
        with self._lock:
            if message_id in self._sent:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            except OSError as err:
                raise SmsRetryableError(
                    phone, f"cannot write {self.path}: {err.strerror}", message_id=message_id
                ) from err
            self._sent.add(message_id)


class ConsoleSmsSink:
    """Prints each message as one line (for demos and development)."""

    def __init__(
        self,
        console_write: Callable[[str], None] = print,
        *,
        sender: str = "10000",
    ) -> None:
        self._write = console_write
        self.sender = sender
        self._sent: set[str] = set()

    def send(self, phone: str, text: str, *, message_id: str) -> None:
        """Write ``SMS <id> <from> -> <to> [n seg]: text`` once per message id."""
        _check(phone, text, message_id)
        if message_id in self._sent:
            return
        self._write(f"SMS {message_id} {self.sender} -> {phone} [{sms_segments(text)} seg]: {text}")
        self._sent.add(message_id)


class KannelSmsSink:
    """Sends through a Kannel gateway's ``/cgi-bin/sendsms`` (see the module docstring)."""

    # the outbox sends a batch this many requests at a time (thread-safe: one httpx.Client), so
    # a gateway slow to answer costs a batch its timeout about batch / 8 times, not once per text
    max_concurrent_sends = 8

    def __init__(
        self,
        url: str,
        *,
        username: str,
        password: str,
        sender: str = "10000",
        timeout: float = 10.0,
        smsc: str | None = None,
        dlr_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/cgi-bin/sendsms" if "/cgi-bin/" not in url else url
        self._shown_url = redact_secrets(self.url)  # what error texts (logged, stored) name
        self.sender = sender
        # vigil's delivery-report callback with its query so far (``...?token=...``); None: no DLR
        self.dlr_url = dlr_url
        self._auth = {"username": username, "password": password}
        self._smsc = smsc
        self._client = httpx.Client(timeout=timeout, transport=transport)
        self._lock = threading.Lock()
        self._sent: set[str] = set()

    def send(self, phone: str, text: str, *, message_id: str) -> None:
        """One ``sendsms`` request per message id."""
        _check(phone, text, message_id)
        with self._lock:
            if message_id in self._sent:
                return
        params = {**self._auth, "to": phone.lstrip("+"), "from": self.sender, "text": text, "charset": "UTF-8"}
        if not is_gsm7(text):
            params["coding"] = "2"  # UCS-2: Chinese, or any character outside GSM 03.38
        if self._smsc:
            params["smsc"] = self._smsc
        if self.dlr_url:
            params["dlr-mask"] = str(KANNEL_DLR_MASK)
            sep = "&" if "?" in self.dlr_url else "?"
            params["dlr-url"] = f"{self.dlr_url}{sep}id={kannel_escape(message_id)}&type=%d&reply=%A"
        try:
            response = self._client.get(self.url, params=params)
        except httpx.TimeoutException as err:
            raise SmsRetryableError(phone, f"kannel {self._shown_url}: timed out", message_id=message_id) from err
        except httpx.HTTPError as err:
            raise SmsRetryableError(phone, self._scrub(f"kannel {self._shown_url}: {type(err).__name__}: {err}"),
                                    message_id=message_id) from err
        body = response.text.strip()[:200]
        if response.status_code >= 500 or response.status_code == 429:
            raise SmsRetryableError(phone, self._scrub(f"kannel {self._shown_url}: HTTP {response.status_code} {body}"),
                                    message_id=message_id)
        if response.status_code >= 400 or not body.startswith(("0:", "3:")):
            raise SmsPermanentError(phone, self._scrub(f"kannel {self._shown_url}: HTTP {response.status_code} {body}"),
                                    message_id=message_id)
        with self._lock:
            self._sent.add(message_id)

    def _scrub(self, text: str) -> str:
        """An error text without the sendsms password (a gateway may echo its query back)."""
        text = redact_secrets(text)
        password = self._auth["password"]
        return text.replace(password, "***") if len(password) >= 4 else text

    def close(self) -> None:
        self._client.close()


SMS_SINKS: dict[str, type[FileSmsSink] | type[ConsoleSmsSink] | type[KannelSmsSink]] = {
    "file": FileSmsSink,
    "console": ConsoleSmsSink,
    "kannel": KannelSmsSink,
}


def sink_from_config(
    config: SmsConfig,
    data_dir: Path,
    *,
    clock: Callable[[], float] = time.time,
    console_write: Callable[[str], None] = print,
    base: Path | None = None,
    dlr_url: str | None = None,
) -> SmsSink:
    """The sink ``config.sink`` names; a relative file path is taken inside ``data_dir``.

    ``base`` anchors a relative Kannel ``password_file`` (the config file's folder); ``dlr_url``
    is vigil's delivery-report callback for Kannel (used if ``kannel.delivery_reports`` is on).
    """
    if config.sink == "kannel":
        k = config.kannel
        if k is None:
            raise ValueError("contingency.sms.kannel: sink kannel needs its settings")
        secret = resolve_secret(k.password, k.password_env, k.password_file, base=base)
        return KannelSmsSink(k.url, username=k.username, password=secret.get_secret_value() if secret else "",
                             sender=config.sender, timeout=k.timeout, smsc=k.smsc,
                             dlr_url=dlr_url if k.delivery_reports else None)
    if config.sink == "file":
        path = Path(config.path)
        return FileSmsSink(path if path.is_absolute() else data_dir / path, sender=config.sender,
                           clock=clock)
    return ConsoleSmsSink(console_write, sender=config.sender)
