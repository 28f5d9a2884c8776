"""Secrets never reach a log line: credential-like URL query values and user-info passwords."""

from __future__ import annotations

import io
import logging

import httpx

from config.redact import RedactSecrets, redact_secrets
from contingency.errors import SmsRetryableError
from contingency.sms import KannelSmsSink


def test_redact_secrets_hides_passwords_and_tokens_and_keeps_the_rest() -> None:
    url = ("http://kannel:13013/cgi-bin/sendsms?username=vigil&password=kannel-Secret&to=8613800000001"
           "&dlr-url=http%3A%2F%2Fvigil%2Fapi%2Fv1%2Fsms%2Fdlr%3Ftoken%3Dwrite-Token%26id%3Dm-1")
    shown = redact_secrets(url)
    assert "kannel-Secret" not in shown and "write-Token" not in shown
    assert "username=vigil" in shown and "password=***" in shown and "%26id%3Dm-1" in shown
    assert redact_secrets("postgresql://vigil:pw-1@db/vigil") == "postgresql://vigil:***@db/vigil"
    assert redact_secrets("3 texts sent, 0 failed") == "3 texts sent, 0 failed"


def test_the_log_filter_scrubs_messages_args_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("tests.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("HTTP Request: GET %s", "http://k/s?password=p-Secret-1&to=1")
        try:
            raise RuntimeError("http://k/s?token=t-Secret-2")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert "p-Secret-1" not in logged and "t-Secret-2" not in logged and "password=***" in logged


def test_kannel_errors_do_not_carry_the_password() -> None:
    def echo(request: httpx.Request) -> httpx.Response:  # a gateway that echoes its query back
        return httpx.Response(503, text=f"overloaded: {request.url}")

    sink = KannelSmsSink("http://kannel:13013", username="vigil", password="kannel-Secret-3",
                         transport=httpx.MockTransport(echo))
    try:
        sink.send("8613800000001", "hello", message_id="m-1")
    except SmsRetryableError as err:
        assert "kannel-Secret-3" not in str(err), str(err)
    else:
        raise AssertionError("a 503 is retryable")
    finally:
        sink.close()
