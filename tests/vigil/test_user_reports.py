"""Bugs a NOC engineer, a hotline agent or an operator hit using vigil as shipped.

Found by a black-box review (2026-12-04: `vigil run`, the API, /agent, the CLI, broken configs);
each test failed before its fix (commits 019f38c..adec547).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from alerts.silence import SilenceStore
from alerts.store import AlertsBase
from config import ConfigError, load_site
from config.models import ContingencyConfig
from contingency import ContingencyBase, ContingencyManager, FileSmsSink, Topology
from detectors.event import EventState
from tests.contingency.conftest import AREAS, CUSTOMERS, ELEMENTS, HOLD_DOWN, FakeClock, make_event
from tests.vigil.stubs import NoAlerts
from vigil.web import create_app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "site.yaml"
TOKEN = "user-reports-token"
CUSTOMER = next(c for c in CUSTOMERS if c.element == "olt-a1" and c.sms)


@pytest.fixture
def rooms(tmp_path: Path) -> Iterator[tuple[ContingencyManager, SilenceStore, FakeClock, Path]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    ContingencyBase.metadata.create_all(engine)
    AlertsBase.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    clock = FakeClock()
    manager = ContingencyManager(
        sessions, Topology(ELEMENTS, AREAS, CUSTOMERS), ContingencyConfig(hold_down=HOLD_DOWN),
        FileSmsSink(tmp_path / "sms.jsonl", clock=clock), clock=clock, registry=CollectorRegistry(),
    )
    silences = SilenceStore(sessions, clock=clock)
    try:
        yield manager, silences, clock, tmp_path
    finally:
        engine.dispose()


def call(rooms: tuple[ContingencyManager, SilenceStore, FakeClock, Path], method: str, path: str,
         **kwargs: Any) -> httpx.Response:
    """One request to the web app over the rooms (in process, server errors as 500 responses)."""
    manager, silences, _, _ = rooms
    app = create_app(registry=CollectorRegistry(), render_device_metrics=lambda: "", alerts=NoAlerts(),
                     contingency=manager, status=lambda: {}, silences=silences, write_token=TOKEN)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as client:
            headers = {"Authorization": f"Bearer {TOKEN}", **kwargs.pop("headers", {})}
            return await client.request(method, path, headers=headers, **kwargs)

    return asyncio.run(go())


# --------------------------------------------------------------------------- hotline agent


def test_a_customer_texted_before_opting_out_is_not_shown_as_never_texted(rooms) -> None:  # noqa: ANN001
    """The outage text went out, then the customer replied "TD". When they call, the agent's
    lookup must still say they were texted (and when), not "Opted out of SMS: not texted"."""
    manager, _, clock, _ = rooms
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    clock.advance(HOLD_DOWN)
    assert manager.tick() > 0
    before = manager.impact(CUSTOMER.phone)["incidents"][0]["sms"]
    assert before["status"] == "sent" and before["sent_at"]

    clock.advance(60)
    assert manager.inbound_sms(CUSTOMER.phone, "TD")  # opts out of *future* texts
    after = manager.impact(CUSTOMER.phone)["incidents"][0]["sms"]
    assert after["status"] != "opted_out", after  # the agent page renders this as "not texted"
    assert after.get("sent_at") == before["sent_at"], after


def test_kt_after_td_during_the_hold_down_gets_the_outage_text_after_all(rooms) -> None:  # noqa: ANN001
    """README: "TD" stops outage texts, "KT" starts them again. A customer who sends TD and then
    KT while the outage text is still in its hold-down is texted like everybody else."""
    manager, _, clock, tmp_path = rooms
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    clock.advance(30)
    manager.inbound_sms(CUSTOMER.phone, "TD")
    clock.advance(30)
    manager.inbound_sms(CUSTOMER.phone, "KT")
    clock.advance(HOLD_DOWN)
    manager.tick()
    sms = manager.impact(CUSTOMER.phone)["incidents"][0]["sms"]
    assert sms["status"] == "sent", sms


# --------------------------------------------------------------------------- JSON API, bad input


def test_eta_for_an_incident_id_too_big_for_the_database_is_404_not_500(rooms) -> None:  # noqa: ANN001
    r = call(rooms, "PUT", "/api/v1/incidents/99999999999999999999999/eta", json={"eta": None, "by": "noc-li"})
    assert r.status_code in (404, 422), (r.status_code, r.text)


def test_deeply_nested_json_for_a_silence_is_400_not_500(rooms) -> None:  # noqa: ANN001
    body = "[" * 100_000 + "]" * 100_000
    r = call(rooms, "POST", "/api/v2/silences", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, (r.status_code, r.text[:200])


def test_a_silence_with_null_author_and_comment_is_refused(rooms) -> None:  # noqa: ANN001
    """createdBy and comment are required; JSON null must not slip through as the text "None"."""
    _, silences, clock, _ = rooms
    body = {"matchers": [{"name": "element", "value": "olt-a1", "isRegex": False, "isEqual": True}],
            "endsAt": "2030-01-01T00:00:00Z", "createdBy": None, "comment": None}
    r = call(rooms, "POST", "/api/v2/silences", json=body)
    assert r.status_code == 400, (r.status_code, r.text)
    assert all(s.created_by != "None" for s in silences.list())


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("PUT", "/api/v1/incidents/1/eta", {"eta": "0001-01-01T00:00:00+08:00", "by": "noc-li"}, "eta"),
    ("POST", "/api/v2/silences", {"matchers": [{"name": "element", "value": "olt-a1"}], "createdBy": "a",
                                  "comment": "c", "startsAt": "2030-01-01T00:00:00Z",
                                  "endsAt": "9999-12-31T23:59:59-08:00"}, "endsAt"),
])
def test_an_out_of_range_time_is_refused_naming_the_field(rooms, method, path, body, field) -> None:  # noqa: ANN001
    """Today the answer is a bare "year 0 is out of range" / "year 10000 is out of range"."""
    manager, _, _, _ = rooms
    manager.handle([make_event("olt-a1", EventState.FIRING)])  # incident 1 exists
    r = call(rooms, method, path, json=body)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert field in r.json()["detail"], r.text


# --------------------------------------------------------------------------- operator: config, CLI


def _example_with(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    (tmp_path / "site.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    (tmp_path / "customers.csv").write_text((ROOT / "examples" / "customers.csv").read_text(encoding="utf-8"),
                                            encoding="utf-8")
    return tmp_path / "site.yaml"


def test_check_config_names_a_webhook_url_that_is_not_a_url(tmp_path: Path) -> None:
    """alertmanager_configs and the robots check their url; webhook_configs accepts anything, so
    check-config says OK and the NOC's critical alerts then never arrive."""
    path = _example_with(tmp_path, 'url: "http://127.0.0.1:9099/vigil"', 'url: "not a url"')
    with pytest.raises(ConfigError) as info:
        load_site(path)
    assert any("webhook_configs[0].url" in issue.path for issue in info.value.issues), info.value.issues


@pytest.mark.parametrize(("old", "new", "field"), [
    ("timeout: 2s ", "timeout: 0 ", "snmp.defaults.timeout"),     # vigil run: TargetConfigError traceback
    ("interval: 60s ", "interval: 0 ", "snmp.defaults.interval"),  # vigil run: every poll an "overrun"
])
def test_check_config_refuses_a_zero_snmp_timeout_or_interval(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = _example_with(tmp_path, old, new)
    with pytest.raises(ConfigError) as info:
        load_site(path)
    assert any(issue.path == field for issue in info.value.issues), info.value.issues


def test_poll_with_a_port_out_of_range_is_a_usage_error_not_a_traceback() -> None:
    from typer.testing import CliRunner

    from vigil.cli import app

    result = CliRunner().invoke(app, ["poll", "udp://127.0.0.1:99999"])
    assert not isinstance(result.exception, ValueError), result.exception
    assert result.exit_code == 2, result.output


def test_open_writes_warning_names_the_address_vigil_actually_listens_on(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    """`vigil run --http 127.0.0.1:18080` without a write token warns "anyone who reaches
    127.0.0.1:8080 can create silences": the config default, not where vigil listens."""
    from vigil.lab import demo_site
    from vigil.runtime import Runtime, RuntimeOptions

    site, customers = demo_site(base_port=17900)
    options = RuntimeOptions(http_host="127.0.0.1", http_port=18799, data_dir=tmp_path, echo=lambda _: None)
    with caplog.at_level(logging.WARNING, logger="vigil"):
        runtime = Runtime(site, customers, options)
    try:
        warning = next(r.getMessage() for r in caplog.records if "write_token is not set" in r.getMessage())
        assert "127.0.0.1:18799" in warning, warning
    finally:
        runtime.client.close()
        runtime.engine.dispose()


# --------------------------------------------------------------------------- maintenance windows


def test_extending_a_maintenance_window_moves_the_banner_and_script_too(rooms) -> None:  # noqa: ANN001
    """README: a planned banner and script give the window's end as the expected restoration, and
    an extended window moves the texts with it. After the NOC extends the window by 30 minutes the
    held texts move (and ``planned_until`` says so) but the banner text and the hotline script
    still promise the old end, so agents tell callers the wrong time."""
    from datetime import UTC, datetime

    from tests.contingency.conftest import T0
    from vigil.runtime import maintenance_lookup

    manager, silences, clock, _ = rooms
    manager._maintenance = maintenance_lookup(silences)  # as the Runtime wires it

    def at(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")

    def cst(seconds: float) -> str:  # how banners print times (UTC+8)
        return datetime.fromtimestamp(seconds + 8 * 3600, UTC).strftime("%H:%M")

    window = {"matchers": [{"name": "element", "value": "olt-a1", "isRegex": False, "isEqual": True}],
              "startsAt": at(T0 + 3600), "endsAt": at(T0 + 7200), "createdBy": "noc-li", "comment": "CHG-1 splice"}
    sid = silences.upsert(window)
    clock.advance(3700)
    manager.handle([make_event("olt-a1", EventState.FIRING)])
    [banner] = manager.list_banners()
    assert banner["planned"] and cst(T0 + 7200) in banner["text_en"]

    silences.upsert({**window, "id": sid, "endsAt": at(T0 + 9000)})  # the works take 30 min longer
    clock.advance(5)
    manager.tick()
    [banner] = manager.list_banners()
    assert banner["planned_until"] == at(T0 + 9000)  # the API field moved ...
    assert cst(T0 + 9000) in banner["text_en"], banner["text_en"]  # ... the words agents read did not
    assert cst(T0 + 9000) in banner["script_en"], banner["script_en"]
