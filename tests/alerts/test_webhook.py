"""Webhook channel: error mapping (MockTransport) and a real POST."""

from __future__ import annotations

import httpx
import pytest

from alerts import PermanentError, RetryableError, Webhook

from .conftest import Receiver


def _client(handler: httpx.MockTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=handler)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (200, None),
        (204, None),
        (500, RetryableError),
        (503, RetryableError),
        (429, RetryableError),
        (400, PermanentError),
        (404, PermanentError),
    ],
)
async def test_status_mapping(status: int, error: type[Exception] | None) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status))
    async with _client(transport) as client:
        hook = Webhook("http://hook.test/x", 1.0, client)
        if error is None:
            await hook.send({"version": "4"})
        else:
            with pytest.raises(error) as info:
                await hook.send({"version": "4"})
            assert info.value.recipient == "http://hook.test/x"


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
async def test_transport_errors_are_retryable(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with _client(httpx.MockTransport(handler)) as client:
        with pytest.raises(RetryableError) as info:
            await Webhook("http://hook.test/x", 1.0, client).send({})
        assert info.value.__cause__ is exc


async def test_posts_json_to_real_server(receiver: Receiver) -> None:
    await Webhook(receiver.url("/hook"), 2.0).send({"version": "4", "alerts": []})
    assert receiver.posts("/hook") == [{"version": "4", "alerts": []}]
