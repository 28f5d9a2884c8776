"""Runtime: alert delivery beside a hanging receiver, the graceful stop, and a taken HTTP port."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from config import load_site
from tests.alerts.conftest import make_event
from tests.conftest import free_tcp_port, free_udp_port, vigil_command
from vigil.clock import Clock
from vigil.runtime import Runtime, RuntimeOptions, listen_sockets


class Hanging:
    """A webhook endpoint on 127.0.0.1 that takes requests and answers only once released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.statuses: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                hook.statuses.append(body["status"])
                hook.release.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    hook = Hanging()
    yield hook
    hook.close()


def site_file(tmp_path: Path, url: str, **http: Any) -> Path:
    site = {
        "site": "delivery",
        "snmp": {"credentials": {"v2": {"version": "2c", "community": "delivery"}},
                 "defaults": {"interval": "1s", "timeout": "0.2s", "retries": 0}},
        "elements": [{"name": "dead-a", "address": f"udp://127.0.0.1:{free_udp_port()}", "credential": "v2"}],
        "traps": {"enabled": False},
        "detectors": {"for": 0, "keep_firing_for": 0, "unreachable_after": 1},
        "alerts": {"route": {"receiver": "noc", "group_wait": 0, "group_interval": "10s"},
                   "receivers": [{"name": "noc", "webhook_configs": [{"url": url, "timeout": "25s"}]}]},
        "http": {"listen": f"127.0.0.1:{free_tcp_port()}", **http},
    }  # fmt: skip
    path = tmp_path / "site.yaml"
    path.write_text(json.dumps(site), encoding="utf-8")
    return path


def test_a_taken_http_port_is_named_in_one_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as caught:
            listen_sockets("127.0.0.1", port)
    assert caught.value.errno == errno.EADDRINUSE
    assert str(caught.value).startswith(f"the HTTP address 127.0.0.1:{port} is already in use")
    sockets = listen_sockets("127.0.0.1", port)  # free again: bound, not yet listening
    try:
        assert [s.getsockname() for s in sockets] == [("127.0.0.1", port)]
    finally:
        for s in sockets:
            s.close()


async def test_the_jobs_never_wait_for_a_hanging_send(tmp_path: Path, hanging: Hanging) -> None:
    """The alert job only starts sends; SMS ticks and trap expiry are jobs of their own."""
    loaded = load_site(site_file(tmp_path, hanging.url))
    runtime = Runtime(loaded.config, loaded.customers,
                      RuntimeOptions(data_dir=tmp_path / "data", config_dir=tmp_path, echo=lambda _: None),
                      clock=Clock())  # fmt: skip
    try:
        assert {job.id for job in runtime._schedule().get_jobs()} >= {"deliver", "contingency", "expire-traps"}
        await runtime.alerts.ingest([make_event(element="dead-a", at=runtime.clock.now())])
        await asyncio.wait_for(runtime._dispatch_alerts(), 2)  # returns with the send in flight
        for _ in range(100):
            if hanging.statuses:
                break
            await asyncio.sleep(0.02)
        assert hanging.statuses == ["firing"] and runtime.alerts.sends_in_flight == 1
        await asyncio.wait_for(runtime._contingency_tick(), 2)
        await asyncio.wait_for(runtime._expire_traps(), 2)
        await asyncio.wait_for(runtime._dispatch_alerts(), 2)  # nothing new: the send stays in flight
        assert runtime.alerts.sends_in_flight == 1
        assert await runtime.alerts.drain(timeout=0.1) == 1
        assert [n["status"] for n in runtime.alerts.list_notifications()] == ["pending"]
    finally:
        runtime.client.close()
        runtime.engine.dispose()


def test_sigint_during_a_send_keeps_it_for_the_restart(tmp_path: Path, hanging: Hanging) -> None:
    config = site_file(tmp_path, hanging.url)
    command = [*vigil_command(), "run", "--config", str(config), "--data-dir", str(tmp_path / "data")]
    log = tmp_path / "vigil.log"

    def run_until(predicate: Any, timeout: float) -> tuple[int, float]:
        with log.open("a") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True,
                                       env={**os.environ, "COLUMNS": "200"})  # fmt: skip
            try:
                deadline = time.monotonic() + timeout
                while not predicate() and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert predicate(), log.read_text()[-3000:]
                stopping = time.monotonic()
                process.send_signal(signal.SIGINT)
                return process.wait(30), time.monotonic() - stopping
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)

    rc, took = run_until(lambda: hanging.statuses, 20)
    assert rc == 0, log.read_text()[-3000:]
    assert took < 15  # the stop waits a few seconds for the send, not its 25 s timeout
    with sqlite3.connect(tmp_path / "data" / "vigil.db") as db:
        [(status, error)] = db.execute("SELECT status, last_error FROM alert_notifications").fetchall()
    assert status == "pending" and "shutdown" in error
    assert "Traceback" not in log.read_text()
    hanging.release.set()

    def sent() -> bool:
        with sqlite3.connect(tmp_path / "data" / "vigil.db") as db:
            return db.execute("SELECT status FROM alert_notifications WHERE id = 1").fetchone()[0] == "sent"

    rc, _ = run_until(sent, 20)  # the restart sends the notification the stop kept
    assert rc == 0
    assert hanging.statuses == ["firing", "firing"]
