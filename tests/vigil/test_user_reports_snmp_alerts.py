"""Bugs a NOC engineer or an operator integrating vigil hit on the SNMP and alert sides.

Found by a black-box review (2026-12-04: real snmpd, snmpsim, Alertmanager, aiosmtpd and a webhook
listener); each test failed before its fix (commits 31ea5e3..9867193, d76bac9..7b04bf4).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from alerts import AlertPipeline
from config.models import AlertsConfig
from detectors.event import EventState
from tests.alerts.conftest import FakeClock, Receiver, clock, make_event, receiver, sessions  # noqa: F401

GROUP_INTERVAL = 300.0


def _webhook_config(receiver: Receiver, path: str, **route: Any) -> AlertsConfig:  # noqa: F811
    return AlertsConfig.model_validate(
        {
            "route": {
                "receiver": "noc",
                "group_wait": 0,
                "group_interval": GROUP_INTERVAL,
                "repeat_interval": 4 * 3600,
                **route,
            },
            "receivers": [{"name": "noc", "webhook_configs": [{"url": receiver.url(path), "timeout": 2}]}],
        }
    )


# --------------------------------------------------------------------------------------------
# Bug 1: after a receiver outage, a stale "firing" retry is delivered after the newer "resolved"
# notification of the same group, so the receiver ends on "firing" for an alert long resolved.
# --------------------------------------------------------------------------------------------
async def test_stale_firing_retry_is_not_delivered_after_resolved(
    sessions: sessionmaker[Session], receiver: Receiver, clock: FakeClock  # noqa: F811
) -> None:
    # the webhook endpoint is down (HTTP 503) for its first five requests, then back
    receiver.script["/noc"] = [503, 503, 503, 503, 503]
    p = AlertPipeline(sessions, _webhook_config(receiver, "/noc"), clock=clock, external_url="http://vigil.test")
    start = clock()
    await p.ingest([make_event(at=clock())])
    # keep flushing every 5 s (as the runtime does every 0.5 s) for ten minutes; the alert
    # resolves after two minutes
    resolved = False
    while clock() < start + 600:
        if not resolved and clock() >= start + 120:
            await p.ingest([make_event(EventState.RESOLVED, at=clock())])
            resolved = True
        await p.flush()
        clock.advance(5)
    statuses = [body["status"] for body in receiver.posts("/noc")]
    delivered = [s for s, code in zip(statuses, [503] * 5 + [200] * 100, strict=False) if code == 200]
    assert "resolved" in delivered, statuses
    # what the receiver finally holds must be the group's current state: resolved
    assert delivered[-1] == "resolved", (
        f"receiver accepted {delivered}: a stale firing notification arrived after the resolved one"
    )


# --------------------------------------------------------------------------------------------
# A real `vigil run` against real HTTP receivers on 127.0.0.1: one that hangs (a blackholed
# webhook: the connection opens, no answer comes) and one that answers at once.
# --------------------------------------------------------------------------------------------
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from pathlib import Path  # noqa: E402

from tests.conftest import free_tcp_port, free_udp_port, vigil_command  # noqa: E402


class _Hooks:
    """Two webhook endpoints: ``/hang`` never answers (until released), ``/fast`` answers 200."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.posts: list[tuple[float, str, dict[str, Any]]] = []  # (wall time, path, body)
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                with hooks.lock:
                    hooks.posts.append((time.monotonic(), self.path, body))
                if self.path.startswith("/hang"):
                    hooks.release.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for(self, predicate: Any, timeout: float) -> list[tuple[float, str, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                hits = [p for p in self.posts if predicate(p)]
            if hits:
                return hits
            time.sleep(0.05)
        return []

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _site(tmp_path: Path, hooks: _Hooks, *, elements: list[dict[str, Any]]) -> Path:
    site = {
        "site": "user-reports",
        "snmp": {
            "credentials": {"v2": {"version": "2c", "community": "review8"}},
            "defaults": {"interval": "1s", "timeout": "0.2s", "retries": 0},
        },
        "elements": elements,
        "traps": {"enabled": False},
        "detectors": {"for": 0, "keep_firing_for": 0, "unreachable_after": 1},
        "alerts": {
            "route": {"receiver": "noc", "group_wait": 0, "group_interval": "10s", "repeat_interval": "1h"},
            "receivers": [
                {
                    "name": "noc",
                    "webhook_configs": [
                        {"url": f"{hooks.url}/hang", "timeout": "25s"},
                        {"url": f"{hooks.url}/fast", "timeout": "5s"},
                    ],
                }
            ],
        },
        "http": {"listen": f"127.0.0.1:{free_tcp_port()}"},
    }
    path = tmp_path / "site.yaml"
    path.write_text(json.dumps(site), encoding="utf-8")  # JSON is YAML
    return path


@contextmanager
def _vigil(tmp_path: Path, config: Path) -> Iterator[subprocess.Popen[str]]:
    log = (tmp_path / "vigil.log").open("w")
    process = subprocess.Popen(
        [*vigil_command(), "run", "--config", str(config), "--data-dir", str(tmp_path / "data")],
        stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()


def _dead(name: str, **extra: Any) -> dict[str, Any]:
    """An element nobody answers for (a free UDP port on 127.0.0.1)."""
    return {"name": name, "address": f"udp://127.0.0.1:{free_udp_port()}", "credential": "v2", **extra}


def _alert_of(element: str) -> Any:
    return lambda post: any(a["labels"].get("element") == element for a in post[2]["alerts"])


# --------------------------------------------------------------------------------------------
# Bug 2: one hanging channel stalls every other channel (and the SMS tick) for its whole timeout
# --------------------------------------------------------------------------------------------
def test_hanging_channel_does_not_delay_other_channels(tmp_path: Path) -> None:
    hooks = _Hooks()
    # dead-a is polled every second from the start; dead-b's first poll comes ~5 s later
    config = _site(tmp_path, hooks, elements=[_dead("dead-a"), _dead("dead-b", interval="10s")])
    try:
        with _vigil(tmp_path, config):
            first = hooks.wait_for(lambda p: p[1] == "/hang" and _alert_of("dead-a")(p), 20)
            assert first, (tmp_path / "vigil.log").read_text()[-3000:]
            # the /hang request for dead-a is now in flight for up to its 25 s timeout
            fast_a = hooks.wait_for(lambda p: p[1] == "/fast" and _alert_of("dead-a")(p), 5)
            assert fast_a
            fast_b = hooks.wait_for(lambda p: p[1] == "/fast" and _alert_of("dead-b")(p), 12)
            assert fast_b, (
                "dead-b's alert did not reach the healthy /fast webhook while the /hang webhook was "
                "stuck: " + (tmp_path / "vigil.log").read_text()[-1500:]
            )
            assert fast_b[0][0] - fast_a[0][0] < 9
    finally:
        hooks.close()


# --------------------------------------------------------------------------------------------
# Bug 3: a graceful stop (SIGTERM) during a delivery leaves the row 'sending': after the restart
# it is marked failed ("outcome unknown") and never sent, so that channel never hears the alert
# --------------------------------------------------------------------------------------------
def test_sigterm_during_delivery_does_not_strand_the_notification(tmp_path: Path) -> None:
    hooks = _Hooks()
    config = _site(tmp_path, hooks, elements=[_dead("dead-a")])
    try:
        with _vigil(tmp_path, config) as process:
            assert hooks.wait_for(lambda p: p[1] == "/hang", 20), (tmp_path / "vigil.log").read_text()[-3000:]
            process.send_signal(signal.SIGTERM)  # systemctl stop / restart
            process.wait(40)  # (uvicorn re-raises the SIGTERM after its clean shutdown: rc -15)
        with sqlite3.connect(tmp_path / "data" / "vigil.db") as db:
            rows = db.execute("SELECT id, integration, status FROM alert_notifications ORDER BY id").fetchall()
        stranded = [row for row in rows if row[2] == "sending"]
        assert not stranded, (
            f"after a clean shutdown these notifications are left 'sending' (a restart marks them "
            f"failed, never re-sent): {rows}"
        )
    finally:
        hooks.close()


# --------------------------------------------------------------------------------------------
# Bug 4: the web port already taken (another vigil, a second instance by mistake) ends in a raw
# asyncio traceback ("Task exception was never retrieved ... SystemExit(3)") after the banner
# has already announced the URLs as served
# --------------------------------------------------------------------------------------------
def test_http_port_in_use_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    import socket

    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    config = tmp_path / "site.yaml"
    config.write_text(json.dumps({
        "site": "user-reports",
        "snmp": {"credentials": {"v2": {"version": "2c", "community": "review8"}}},
        "elements": [_dead("dead-a")],
        "traps": {"enabled": False},
        "http": {"listen": f"127.0.0.1:{port}"},
    }))
    try:
        done = subprocess.run(
            [*vigil_command(), "run", "--config", str(config), "--data-dir", str(tmp_path / "data"),
             "--duration", "20"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
        )
    finally:
        taken.close()
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-2000:]
    assert str(port) in out and "in use" in out, out[-2000:]
    assert "Traceback" not in out, out[-3000:]
    assert "Task exception was never retrieved" not in out, out[-3000:]


# --------------------------------------------------------------------------------------------
# Bug 5: two v3 credentials with the same user name and different keys (one user "noc", another
# password per region) are both accepted for traps by default, but the listener keeps only the
# last one's keys for informs: every inform from devices with the first credential is rejected as
# an authentication failure, silently (only vigil_traps_total{result="rejected"} moves)
# --------------------------------------------------------------------------------------------
def test_same_v3_user_with_two_keys_is_not_silently_dropped_by_the_trap_listener(tmp_path: Path) -> None:
    from tests.conftest import require_binary

    snmpinform = require_binary("snmpinform")
    traps = free_udp_port()
    config = tmp_path / "site.yaml"
    config.write_text(json.dumps({
        "site": "user-reports",
        "snmp": {"credentials": {
            "north": {"version": "3", "user": "noc", "auth_protocol": "sha", "auth_key": "north-auth-1",
                      "priv_protocol": "aes", "priv_key": "north-priv-1"},
            "south": {"version": "3", "user": "noc", "auth_protocol": "sha", "auth_key": "south-auth-2",
                      "priv_protocol": "aes", "priv_key": "south-priv-2"},
        }, "defaults": {"interval": "30s", "timeout": "0.2s", "retries": 0}},
        "elements": [{"name": "north-1", "address": f"udp://127.0.0.1:{free_udp_port()}", "credential": "north"},
                     {"name": "south-1", "address": f"udp://127.0.0.1:{free_udp_port()}", "credential": "south"}],
        "traps": {"listen": f"127.0.0.1:{traps}"},
        "http": {"listen": f"127.0.0.1:{free_tcp_port()}"},
    }))
    with _vigil(tmp_path, config):
        deadline = time.monotonic() + 20
        while "listening for SNMP traps" not in (tmp_path / "vigil.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "vigil.log").read_text()[-2000:]
            time.sleep(0.2)
        results = {}
        for auth, priv in (("north-auth-1", "north-priv-1"), ("south-auth-2", "south-priv-2")):
            done = subprocess.run(
                [snmpinform, "-v3", "-u", "noc", "-l", "authPriv", "-a", "SHA", "-A", auth, "-x", "AES",
                 "-X", priv, "-t", "2", "-r", "0", f"127.0.0.1:{traps}", "", "1.3.6.1.6.3.1.1.5.1"],
                capture_output=True, text=True, timeout=20,
            )
            results[auth] = (done.returncode, done.stderr.strip())
        time.sleep(0.5)
    log = (tmp_path / "vigil.log").read_text()
    warned = any(
        "noc" in line and ("north" in line or "south" in line) and ("WARNING" in line or "ERROR" in line)
        for line in log.splitlines()
    )
    both_accepted = all(rc == 0 for rc, _ in results.values())
    assert both_accepted or warned, (
        f"an inform with each credential's keys: {results}; nothing in the log says that user 'noc' "
        "can only be accepted with one of its two keys"
    )


# --------------------------------------------------------------------------------------------
# Bug 6: SNMPv1 (README: "SNMP v1/v2c") gives no traffic at all: the IF-MIB profile reads only the
# 64-bit ifHCIn/OutOctets, which v1 cannot carry, and has no ifInOctets/ifOutOctets fallback
# (snmp_exporter's if_mib walks both), so a v1 device has no bps, no utilisation, no alerts on them
# --------------------------------------------------------------------------------------------
from tests.collectors.test_snmpd import COMMUNITY as SNMPD_COMMUNITY  # noqa: E402
from tests.collectors.test_snmpd import snmpd  # noqa: E402,F401


def test_snmpv1_agent_gets_traffic_rates(snmpd: Any) -> None:  # noqa: F811
    done = subprocess.run(
        [*vigil_command(), "poll", f"udp://{snmpd.host}:{snmpd.port}", "--community", SNMPD_COMMUNITY,
         "--version", "1", "--interval", "3.5", "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout)
    # any port: lo's 10 Mbit/s speed drops a rate when the shared box's loopback runs above 15 Mbit/s
    rated = [row for row in rows if row["in_bps"] is not None and row["out_bps"] is not None]
    assert rated, f"SNMPv1 poll of Net-SNMP gives no traffic rate on any port (ifInOctets is there): {rows}"
