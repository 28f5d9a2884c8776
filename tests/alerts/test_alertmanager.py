"""Alertmanager channel against the real Debian prometheus-alertmanager on 127.0.0.1."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from alerts import Alert, Alertmanager, PermanentError, RetryableError, webhook_message
from alerts.channels.alertmanager import postable_alerts
from detectors.event import EventState
from tests.conftest import free_tcp_port, require_binary

from .conftest import make_event

CONFIG = """\
route:
  receiver: "null"
receivers:
  - name: "null"
"""


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager with a null receiver; yields its base URL."""
    binary = require_binary("prometheus-alertmanager", "/usr/bin/prometheus-alertmanager")
    folder = tmp_path_factory.mktemp("alertmanager")
    (folder / "a.yml").write_text(CONFIG, encoding="utf-8")
    port = free_tcp_port()
    log = (folder / "log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'a.yml'}",
            f"--storage.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"alertmanager exited: {(folder / 'log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"alertmanager not ready: {(folder / 'log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _payload(state: EventState, *, at: float, element: str, labels: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    event = make_event(state, name="InterfaceErrorsRising", element=element, at=at, extra=labels)
    alert = Alert.from_event(event, "http://127.0.0.1:8080")
    return webhook_message(
        receiver="noc-am",
        group_key='{}:{alertname="InterfaceErrorsRising"}',
        group_labels={"alertname": "InterfaceErrorsRising"},
        alerts=[alert],
        external_url="http://127.0.0.1:8080",
    )


def _listed(url: str, element: str, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v2/alerts", params=params, timeout=5)
    response.raise_for_status()
    return [a for a in response.json() if a["labels"].get("element") == element]


async def test_firing_alert_appears_with_its_labels(alertmanager: str) -> None:
    payload = _payload(EventState.FIRING, at=time.time() - 60, element="agg-yuexiu-01", labels=(("area", "越秀"),))
    await Alertmanager(alertmanager, 5.0).send(payload)

    [listed] = _listed(alertmanager, "agg-yuexiu-01", active="true")
    sent = payload["alerts"][0]
    assert listed["labels"] == sent["labels"]  # label values in Chinese included
    assert listed["annotations"] == sent["annotations"]
    assert listed["generatorURL"] == sent["generatorURL"]
    assert listed["status"]["state"] == "active"
    assert listed["startsAt"].startswith(sent["startsAt"][:19])


async def test_resolved_alert_is_no_longer_active(alertmanager: str) -> None:
    channel = Alertmanager(alertmanager + "/", 5.0)  # a trailing slash is fine
    await channel.send(_payload(EventState.FIRING, at=time.time() - 60, element="olt-tianhe-02"))
    assert [a["status"]["state"] for a in _listed(alertmanager, "olt-tianhe-02", active="true")] == ["active"]

    resolved = _payload(EventState.RESOLVED, at=time.time() - 1, element="olt-tianhe-02")
    assert postable_alerts(resolved)[0]["endsAt"] == resolved["alerts"][0]["endsAt"]
    await channel.send(resolved)
    assert _listed(alertmanager, "olt-tianhe-02", active="true") == []
    assert _listed(alertmanager, "olt-tianhe-02") == []  # the API lists resolved alerts nowhere


async def test_bad_payload_is_permanent(alertmanager: str) -> None:
    payload = _payload(EventState.FIRING, at=time.time(), element="bad-1", labels=(("bad-name", "x"),))
    with pytest.raises(PermanentError) as info:
        await Alertmanager(alertmanager, 5.0).send(payload)
    message = str(info.value)
    assert "receiver 'noc-am'" in message and "HTTP 400" in message and "invalid" in message
    assert info.value.recipient == alertmanager
    assert _listed(alertmanager, "bad-1") == []


async def test_wrong_base_path_is_permanent(alertmanager: str) -> None:
    with pytest.raises(PermanentError, match="HTTP 404"):
        await Alertmanager(alertmanager + "/nope", 5.0).send(
            _payload(EventState.FIRING, at=time.time(), element="x-1")
        )


async def test_closed_port_is_retryable() -> None:
    with pytest.raises(RetryableError, match="receiver 'noc-am'.*ConnectError"):
        await Alertmanager(f"http://127.0.0.1:{free_tcp_port()}", 2.0).send(
            _payload(EventState.FIRING, at=time.time(), element="x-1")
        )


@pytest.mark.parametrize(
    ("status", "error"),
    [(200, None), (500, RetryableError), (503, RetryableError), (429, RetryableError),
     (400, PermanentError), (422, PermanentError)],
)
async def test_status_mapping(status: int, error: type[Exception] | None) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, text="nope")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        channel = Alertmanager("http://am.test:9093", 1.0, client)
        payload = _payload(EventState.FIRING, at=time.time(), element="x-1")
        if error is None:
            await channel.send(payload)
        else:
            with pytest.raises(error):
                await channel.send(payload)
    assert [str(r.url) for r in seen] == ["http://am.test:9093/api/v2/alerts"]


def test_postable_alerts_shape() -> None:
    firing = _payload(EventState.FIRING, at=1_700_000_000.0, element="olt-1")
    resolved = _payload(EventState.RESOLVED, at=1_700_000_000.0, element="olt-1")
    [f] = postable_alerts(firing)
    [r] = postable_alerts(resolved)
    assert set(f) == {"labels", "annotations", "startsAt", "generatorURL"}  # no endsAt: still firing
    assert r["endsAt"] == "2023-11-14T22:13:20Z"
    assert f["labels"] == {"alertname": "InterfaceErrorsRising", "element": "olt-1", "ifName": "ge-0/0/1"}


async def test_nothing_to_post_sends_nothing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await Alertmanager("http://am.test:9093", 1.0, client).send({"receiver": "noc-am", "alerts": []})
