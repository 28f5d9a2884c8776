"""Where customer SMS go: a Protocol, a JSON-lines file sink, a console sink and their registry.

A sink is keyed by ``message_id``: sending the same id twice delivers once, so a retry after a
crash between "sent" and "recorded" never texts a customer twice.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from config.models import SmsConfig
from contingency.errors import SmsPermanentError, SmsRetryableError
from contingency.scripts import sms_segments

__all__ = ["SMS_SINKS", "ConsoleSmsSink", "FileSmsSink", "SmsSink", "sink_from_config"]

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


SMS_SINKS: dict[str, type[FileSmsSink] | type[ConsoleSmsSink]] = {
    "file": FileSmsSink,
    "console": ConsoleSmsSink,
}


def sink_from_config(
    config: SmsConfig,
    data_dir: Path,
    *,
    clock: Callable[[], float] = time.time,
    console_write: Callable[[str], None] = print,
) -> SmsSink:
    """The sink ``config.sink`` names; a relative file path is taken inside ``data_dir``."""
    if config.sink == "file":
        path = Path(config.path)
        return FileSmsSink(path if path.is_absolute() else data_dir / path, sender=config.sender,
                           clock=clock)
    return ConsoleSmsSink(console_write, sender=config.sender)
