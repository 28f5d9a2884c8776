from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.models import SmsConfig
from contingency import (
    SMS_SINKS,
    ConsoleSmsSink,
    FileSmsSink,
    KannelSmsSink,
    SmsPermanentError,
    SmsRetryableError,
    SmsSink,
    sink_from_config,
)


def test_file_sink_writes_json_lines_once_per_message_id(tmp_path: Path) -> None:
    path = tmp_path / "out" / "sms.jsonl"
    sink = FileSmsSink(path, sender="10000", clock=lambda: 42.0)
    sink.send("13800000001", "您好", message_id="m1")
    sink.send("13800000001", "您好", message_id="m1")  # a retry: delivered once
    sink.send("+8613800000002", "hello", message_id="m2")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {"message_id": "m1", "to": "13800000001", "from": "10000", "text": "您好",
         "segments": 1, "sent_at": 42.0},
        {"message_id": "m2", "to": "+8613800000002", "from": "10000", "text": "hello",
         "segments": 1, "sent_at": 42.0},
    ]
    # a new sink on the same file still knows what was sent
    FileSmsSink(path).send("13800000001", "您好", message_id="m1")
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2


def test_file_sink_unwritable_is_retryable(tmp_path: Path) -> None:
    sink = FileSmsSink(tmp_path / "outbox")
    (tmp_path / "outbox").mkdir()  # the outbox became a directory: appending fails
    with pytest.raises(SmsRetryableError, match="cannot write"):
        sink.send("13800000001", "x", message_id="m1")


@pytest.mark.parametrize("sink_type", [FileSmsSink, ConsoleSmsSink])
def test_bad_number_is_permanent(tmp_path: Path, sink_type: type) -> None:
    sink = sink_type(tmp_path / "s.jsonl") if sink_type is FileSmsSink else sink_type(print)
    with pytest.raises(SmsPermanentError, match="not a phone number") as info:
        sink.send("call-me", "x", message_id="m9")
    assert info.value.phone == "call-me" and info.value.message_id == "m9"


def test_console_sink() -> None:
    lines: list[str] = []
    sink = ConsoleSmsSink(lines.append, sender="10000")
    sink.send("13800000001", "hello", message_id="m1")
    sink.send("13800000001", "hello", message_id="m1")
    assert lines == ["SMS m1 10000 -> 13800000001 [1 seg]: hello"]


def test_registry_and_config(tmp_path: Path) -> None:
    assert {"file": FileSmsSink, "console": ConsoleSmsSink, "kannel": KannelSmsSink} == SMS_SINKS
    sink = sink_from_config(SmsConfig(sink="file", path="o.jsonl", sender="10001"), tmp_path)
    assert isinstance(sink, FileSmsSink) and sink.path == tmp_path / "o.jsonl"
    assert sink.sender == "10001" and isinstance(sink, SmsSink)
    assert isinstance(sink_from_config(SmsConfig(sink="console"), tmp_path), ConsoleSmsSink)
