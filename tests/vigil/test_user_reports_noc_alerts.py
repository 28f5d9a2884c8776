"""Bugs a NOC engineer reading the alerts vigil produces hit.

Found by a black-box review (2026-12-05: the lab's webhook payloads, /api/v1/alerts, the engine
driven directly); each test failed before its fix (commits 3f663f3, 895f074, c4a3bbd).
"""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from alerts.pipeline import AlertPipeline
from collectors.sample import Sample, SampleKind, labels_of
from config.models import AlertsConfig, DetectorsConfig
from detectors import COLLECTIVE_DEGRADATION, ELEMENT_ANOMALOUS, DetectionEngine, Event, EventState, Severity
from tests.conftest import free_tcp_port, free_udp_range, vigil_command
from vigil.db import create_database
from vigil.web import create_app

STEP = 60.0
T0 = 1_800_000_000.0


class _Empty:
    def __getattr__(self, name: str):  # noqa: ANN204
        return lambda *args, **kwargs: []


def _firing(name: str, element: str, severity: Severity, detector: str, **extra: str) -> Event:
    labels = (("alertname", name), ("element", element), *sorted({**extra, "severity": str(severity)}.items()))
    return Event(name=name, element=element, state=EventState.FIRING, labels=labels, detector=detector,
                 series="up", value=0.0, expected=1.0, band=(1.0, 1.0), score=1.0, active_at=1.0,
                 severity=severity, fired_at=1.0, summary=f"{name} on {element}")  # fmt: skip


# --------------------------------------------------------------------------------------------
# Bug 1: every alert's generatorURL (webhook JSON, Alertmanager channel, e-mail/robot links) is
# "<externalURL>/alerts?fingerprint=<fp>", a path vigil does not serve: the NOC engineer who
# clicks "source" on an alert gets {"detail": "Not Found"} (404). The lab's webhook payloads all
# point to http://127.0.0.1:8080/alerts?fingerprint=9b54485352f55049 -> 404.
# Cause: alerts/alert.py:37 (generator_url) vs vigil/web.py:88 (only /api/v1/alerts, no
# fingerprint filter, and no /alerts page).
# --------------------------------------------------------------------------------------------
def test_an_alerts_generator_url_opens_that_alert(tmp_path: Path) -> None:
    engine, sessions = create_database(f"sqlite:///{tmp_path / 'vigil.db'}")
    try:
        pipeline = AlertPipeline(sessions, AlertsConfig(), clock=lambda: T0, external_url="http://vigil")
        mine = _firing("InterfaceDown", "agg-yuexiu-01", Severity.CRITICAL, "link_state", ifIndex="1", ifName="xe1")
        other = _firing("InterfaceDown", "agg-tianhe-01", Severity.CRITICAL, "link_state", ifIndex="2", ifName="xe2")
        asyncio.run(pipeline.ingest([mine, other]))
        (record,) = [a for a in pipeline.list_alerts(None) if a["fingerprint"] == mine.fingerprint]
        from alerts.alert import Alert

        url = Alert.from_event(mine, "http://vigil").to_webhook()["generatorURL"]
        parts = urlsplit(url)
        app = create_app(registry=CollectorRegistry(), render_device_metrics=lambda: "", alerts=pipeline,
                         contingency=_Empty(), status=lambda: {})  # fmt: skip

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://vigil", follow_redirects=True) as c:
                return await c.get(parts.path + ("?" + parts.query if parts.query else ""))

        response = asyncio.run(go())
        assert response.status_code == 200, f"generatorURL {url} answers {response.status_code}: {response.text[:200]}"
        assert mine.fingerprint in response.text
        assert other.fingerprint not in response.text  # the link names one alert, not the whole list
        assert record["status"] == "firing"
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Bugs 2 and 3: an ElementUnreachable or a DeviceRestarted still firing when vigil stops never
# resolves after the restart. ReachabilityRule keeps no state and is not given the firing alerts
# back (only TrapRules.restore takes back InterfaceDown), so the element's first good poll
# resolves nothing; TrapRules.tick resolves a DeviceRestarted only from its in-memory _active.
# The NOC keeps a critical "cr-gz-01 unreachable" forever, and because ElementUnreachable
# inhibits every element below it (topology inhibition), every alert under it is muted for good.
# Repro: seed both alerts firing for cr-gz-01 in vigil.db, `vigil run` the lab 12 s: both are
# still "firing" although cr-gz-01 answered every poll and restart_hold (5 min) went by.
# Cause: vigil/runtime.py:189 and :215 (only trap_rules.restore is fed the store's firing alerts),
# detectors/reachability.py:67-72 (an "up" with no streak returns None), detectors/traps.py:216
# (restore skips every alert but InterfaceDown).
# --------------------------------------------------------------------------------------------
def _run(data_dir: Path, seconds: int) -> str:
    cmd = [*vigil_command(), "run", "--http", f"127.0.0.1:{free_tcp_port()}", "--data-dir", str(data_dir),
           "--speedup", "60", "--lab-port", str(free_udp_range(10)), "--duration", str(seconds)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def restarted_with_firing_alerts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data = tmp_path_factory.mktemp("restart")
    _run(data, 3)
    engine, sessions = create_database(f"sqlite:///{(data / 'vigil.db').resolve()}")
    unreachable = _firing("ElementUnreachable", "cr-gz-01", Severity.CRITICAL, "reachability")
    restarted = _firing("DeviceRestarted", "cr-gz-01", Severity.WARNING, "snmp_trap")
    asyncio.run(AlertPipeline(sessions, AlertsConfig(), clock=lambda: 2.0).ingest([unreachable, restarted]))
    engine.dispose()
    _run(data, 10)  # 10 simulated minutes: cr-gz-01 answers every poll, restart_hold (5 min) passes
    with sqlite3.connect(data / "vigil.db") as db:
        rows = dict(db.execute("SELECT fingerprint, status FROM alerts").fetchall())
    return {"ElementUnreachable": rows[unreachable.fingerprint], "DeviceRestarted": rows[restarted.fingerprint]}


def test_element_unreachable_from_before_a_restart_resolves_when_the_element_answers(
    restarted_with_firing_alerts: dict[str, str],
) -> None:
    assert restarted_with_firing_alerts["ElementUnreachable"] == "resolved"


def test_device_restarted_from_before_a_restart_resolves_after_its_hold(
    restarted_with_firing_alerts: dict[str, str],
) -> None:
    assert restarted_with_firing_alerts["DeviceRestarted"] == "resolved"


# --------------------------------------------------------------------------------------------
# Bug 4: ElementBehaviourAnomalous says the opposite of what happens. During a 55-min fault
# (CRC errors, then the uplink saturated) it resolves "Behaviour of agg-1 back to normal" while the
# link is still at 98 % with 400 errors/s, and a few minutes after the fault has cleared (every
# rule resolved) it fires again "Behaviour of agg-1 unusual" for half an hour. Seen in the lab:
# agg-yuexiu-01 "unusual" fires at T+~78 min, after the fault cleared at T+75, and the NOC is
# paged for a healthy element. The outlier detector learns the fault's feature vectors
# (the baseline does not learn the points of an active rule; the outlier detector learns all),
# so the fault becomes its "normal" and normal becomes the outlier.
# Cause: detectors/engine.py:820 (_outlier_step: det.partial_fit(feats) learns faulty vectors).
# --------------------------------------------------------------------------------------------
def _element_fault_events() -> list[tuple[int, Event]]:
    engine = DetectionEngine.from_config(DetectorsConfig())
    rng = np.random.default_rng(7)
    a, b = labels_of(ifIndex="1", ifName="xe-1/0/0"), labels_of(ifIndex="2", ifName="xe-1/0/1")
    out: list[tuple[int, Event]] = []
    for k in range(720):
        t = T0 + k * STEP
        fault = 600 <= k < 655
        saturated = fault and k >= 615
        u = 0.3 + 0.1 * math.sin(2 * math.pi * t / 86400) + rng.normal(0, 0.01)
        err = min(400.0, (k - 600) * 20.0) if fault else abs(rng.normal(0, 0.3))
        samples = [
            Sample("agg-1", "if_in_utilization", a, 0.98 if saturated else u, t, SampleKind.RATE),
            Sample("agg-1", "if_out_utilization", a, 0.98 if saturated else 0.9 * u, t, SampleKind.RATE),
            Sample("agg-1", "if_in_errors_per_s", a, err, t, SampleKind.RATE),
            Sample("agg-1", "if_in_utilization", b, 0.2 + rng.normal(0, 0.01), t, SampleKind.RATE),
            Sample("agg-1", "cpu_utilization", (), 0.2 + rng.normal(0, 0.02), t, SampleKind.GAUGE),
        ]
        out += [(k, e) for e in engine.update(samples)]
    return out


def test_element_behaviour_is_not_unusual_once_the_fault_has_cleared() -> None:
    events = _element_fault_events()
    rules_done = max(k for k, e in events if e.name != ELEMENT_ANOMALOUS and e.state is EventState.RESOLVED)
    late = [(k, e.summary) for k, e in events
            if e.name == ELEMENT_ANOMALOUS and e.state is EventState.FIRING and k > rules_done]  # fmt: skip
    assert late == [], f"the fault cleared (every rule resolved at step {rules_done}), yet: {late}"


def test_element_behaviour_is_not_back_to_normal_in_the_middle_of_the_fault() -> None:
    events = _element_fault_events()
    early = [(k, e.summary) for k, e in events
             if e.name == ELEMENT_ANOMALOUS and e.state is EventState.RESOLVED and 600 <= k < 655]  # fmt: skip
    assert early == [], f"'back to normal' while the uplink is saturated with 400 CRC errors/s: {early}"


# --------------------------------------------------------------------------------------------
# Bug 5: the resolved CollectiveDegradation names the wrong children. 12 of 16 ONTs under olt-1
# lose 10 dB together; the FIRING alert says children=ont-00..ont-11, the RESOLVED one (the
# notification the NOC closes the case with) says children=ont-07: whichever child was still
# marked anomalous in the collective window at that moment, not the elements that degraded.
# Cause: detectors/engine.py:1075-1078 (_collective_event: `children` is the current members
# whenever any is left; the previous event's list is used only when none is).
# --------------------------------------------------------------------------------------------
def test_resolved_collective_degradation_names_the_children_that_degraded() -> None:
    onts = [f"ont-{i:02d}" for i in range(16)]
    engine = DetectionEngine.from_config(DetectorsConfig(), parents=dict.fromkeys(onts, "olt-1"))
    rng = np.random.default_rng(2)
    events: list[Event] = []
    for k in range(300):
        t = T0 + k * STEP
        bad = 200 <= k < 240
        samples = [
            Sample(o, "optical_rx_dbm", labels_of(ifName="pon0"),
                   (-20.0 - min(10.0, (k - 200) * 1.0)) if bad and i < 12 else -20.0 + rng.normal(0, 0.1),
                   t, SampleKind.GAUGE)
            for i, o in enumerate(onts)
        ]  # fmt: skip
        events += engine.update(samples)
    collective = [e for e in events if e.name == COLLECTIVE_DEGRADATION and e.state is not EventState.PENDING]
    assert [e.state for e in collective] == [EventState.FIRING, EventState.RESOLVED]
    fired, resolved = collective
    assert dict(fired.annotations)["children"] == ",".join(onts[:12])
    assert dict(resolved.annotations)["children"] == dict(fired.annotations)["children"]
