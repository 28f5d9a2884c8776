"""Bugs an operator deploying vigil and a hotline agent using it hit.

Found by a black-box review (2026-12-05: a fresh clone's `make run`, PostgreSQL, upgrades from an
older vigil's database, the Kannel path, /agent in Chromium); each test failed before its fix
(commits 9fc0774..f9aab36, 6636c01).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from alerts.silence import SilenceStore
from alerts.store import AlertsBase
from config.models import ContingencyConfig, Customer
from contingency import ContingencyBase, ContingencyManager, FileSmsSink, Topology
from detectors.event import EventState
from tests.conftest import free_tcp_port, free_udp_port, require_binary, require_module, serve_app, vigil_command
from tests.contingency.conftest import AREAS, CUSTOMERS, ELEMENTS, HOLD_DOWN, FakeClock, make_event
from tests.vigil.stubs import NoAlerts as _NoAlerts
from vigil.db import create_database
from vigil.migrate import current_revision, head_revision, upgrade
from vigil.web import create_app

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# Bug 1: migrations 0003, 0004 and 0005 were edited after they shipped (9280e8a added
# silences.scheduled to 0003 and sms_messages.phone_key to 0004, 388b8c9 added
# incidents.event_elements to 0005). A database an older vigil brought to that revision is
# "already there" for Alembic, never gets the column, and the current vigil dies at its first
# query: `vigil run` on a PostgreSQL database made by vigil aaae939 ends in
# "UndefinedColumn: column silences.scheduled does not exist" (data kept, service down).
# --------------------------------------------------------------------------------------------
# (revision the older vigil left the database at, columns that revision had not created then)
_SHIPPED = {
    "f61f608 (0003)": ("0003", [("silences", "scheduled")]),
    "96314b9 (0004)": ("0004", [("silences", "scheduled"), ("sms_messages", "phone_key")]),
    "195f414 (0005)": ("0005", [("silences", "scheduled"), ("sms_messages", "phone_key"),
                                ("incidents", "event_elements")]),
    "9280e8a (0005)": ("0005", [("incidents", "event_elements")]),
}


@pytest.mark.parametrize("made_by", sorted(_SHIPPED))
def test_a_database_made_by_an_older_vigil_is_upgraded_to_the_current_schema(db_url: str, made_by: str) -> None:
    revision, missing = _SHIPPED[made_by]
    engine = create_engine(db_url)
    try:
        # the database as that vigil left it: at `revision`, without the columns added to the
        # migration files later, with a silence and a sent text in it
        upgrade(engine, revision)
        with engine.begin() as conn:
            if ("sms_messages", "phone_key") in missing:
                conn.execute(text("DROP INDEX ix_sms_messages_phone_key"))
            for table, column in missing:
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
            conn.execute(text(
                "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, updated_at, created_at)"
                " VALUES ('s-old', :m, '2030-01-01 00:00:00', '2030-01-01 02:00:00', 'noc', 'works',"
                " '2026-12-01 00:00:00', '2026-12-01 00:00:00')"),
                {"m": json.dumps([{"name": "element", "value": "olt-a1", "isRegex": False, "isEqual": True}])})
            conn.execute(text(
                "INSERT INTO incidents (id, key, open_key, element, status, title, areas, plan, fingerprints,"
                " opened_at) VALUES (1, 'olt-a1', 'olt-a1', 'olt-a1', 'open', 'down', '[]', '{}', '{}', 1.0)"))
    finally:
        engine.dispose()

    engine, sessions = create_database(db_url)  # what `vigil run --db URL` does at start
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, [AlertsBase.metadata, ContingencyBase.metadata])
        assert diff == [], f"a database made by vigil {made_by} is not upgraded to the models: {diff}"
        store = SilenceStore(sessions, clock=time.time)
        assert [s.id for s in store.list()] == ["s-old"]  # the data is kept and readable
        with engine.connect() as conn:
            assert conn.execute(text("SELECT key FROM incidents")).scalars().all() == ["olt-a1"]
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# The hotline agent's page in a real headless Chromium, served over the real rooms.
# --------------------------------------------------------------------------------------------
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
AFFECTED = next(c for c in CUSTOMERS if c.element == "olt-a1")  # Yuexiu, under the fault below
UNAFFECTED = next(c for c in CUSTOMERS if c.element == "olt-b1")  # Haizhu, nothing wrong there


class _Flaky:
    """The contingency room as the web app sees it, whose reads can be made to fail (a database
    restarting, a lock timeout): ``fail[name]`` is raised by that method while set."""

    def __init__(self, manager: ContingencyManager) -> None:
        self._manager = manager
        self.fail: dict[str, BaseException | None] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)

    def impact(self, phone: str) -> dict[str, Any]:
        if self.fail.get("impact"):
            raise self.fail["impact"]  # type: ignore[misc]
        return self._manager.impact(phone)

    def list_banners(self, active_only: bool = True) -> list[dict[str, Any]]:
        if self.fail.get("list_banners"):
            raise self.fail["list_banners"]  # type: ignore[misc]
        return self._manager.list_banners(active_only)


@pytest.fixture
def agent_desk(tmp_path: Path) -> Iterator[tuple[Any, ContingencyManager, _Flaky, FakeClock]]:
    """(a Chromium page on /agent, the manager, its flaky facade, the clock); olt-a1 is down."""
    chromium = require_binary("chromium", "/usr/bin/chromium")
    require_module("playwright")
    from playwright.sync_api import sync_playwright

    engine = create_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    ContingencyBase.metadata.create_all(engine)
    AlertsBase.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    clock = FakeClock()
    manager = ContingencyManager(
        sessions, Topology(ELEMENTS, AREAS, CUSTOMERS), ContingencyConfig(hold_down=HOLD_DOWN),
        FileSmsSink(tmp_path / "sms.jsonl", clock=clock), clock=clock, registry=CollectorRegistry(),
    )
    flaky = _Flaky(manager)
    app = create_app(registry=CollectorRegistry(), render_device_metrics=lambda: "", alerts=_NoAlerts(),
                     contingency=flaky, status=lambda: {"site": "user-reports-deploy"},
                     silences=SilenceStore(sessions, clock=clock))
    manager.handle([make_event("olt-a1", EventState.FIRING, at=clock())])
    try:
        with serve_app(app) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url + "/agent")
                page.locator('.banner[data-area="yuexiu"]').wait_for(timeout=10_000)
                yield page, manager, flaky, clock
            finally:
                browser.close()
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Bug 2: the caller lookup fails (the API answers 500: a database hiccup, vigil restarting) and
# the page goes on showing the PREVIOUS caller's result under the new number: the agent tells
# an unaffected caller from Haizhu "you are affected by the Yuexiu outage, we texted you"
# (an uncaught "Internal Server Error is not valid JSON" in the console, nothing on screen).
# --------------------------------------------------------------------------------------------
def test_a_failed_caller_lookup_does_not_leave_the_previous_callers_verdict(agent_desk) -> None:  # noqa: ANN001
    page, _manager, flaky, _clock = agent_desk
    page.fill("#phone", AFFECTED.phone)
    page.click("button[type=submit]")
    page.wait_for_function("document.querySelector('#verdict')?.textContent.includes('Affected')")

    flaky.fail["impact"] = RuntimeError("database is locked")
    page.fill("#phone", UNAFFECTED.phone)
    page.click("button[type=submit]")
    time.sleep(2)
    result = page.inner_text("#result")
    assert "Affected" not in result and AFFECTED.account not in result, (
        f"lookup of {UNAFFECTED.phone} failed, yet the page still shows the previous caller: {result!r}"
    )


# --------------------------------------------------------------------------------------------
# Bug 3: /api/v1/banners answers an error in JSON (vigil's own ValueError handler: 422
# {"detail": ...}; an auth proxy's 401/503 JSON) and the page, which never looks at the status,
# renders {"detail": ...} as an empty list: "No active outage" while Yuexiu is down.
# --------------------------------------------------------------------------------------------
def test_a_banner_api_error_is_never_shown_as_no_active_outage(agent_desk) -> None:  # noqa: ANN001
    page, _manager, flaky, _clock = agent_desk
    assert page.locator(".banner").count() == 1
    flaky.fail["list_banners"] = ValueError("plan: unreadable snapshot")
    time.sleep(4.5)  # the page refreshes every 3 s
    text_now = page.inner_text("#banners")
    assert "No active outage" not in text_now, (
        "the banners API failed and the agent is told there is no outage while Yuexiu is down"
    )


# --------------------------------------------------------------------------------------------
# Bug 4: with `sink: kannel`, `vigil run` (default --log-level info) logs every sendsms request
# URL through httpx's INFO logger: the Kannel sendsms-user's password, http.write_token (inside
# the dlr-url) and each customer's number and text, one line per SMS, into journald/syslog.
# --------------------------------------------------------------------------------------------
class _FakeKannel:
    """Kannel's smsbox sendsms interface: answers "0: Accepted for delivery" and keeps the queries."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake.queries.append(self.path)
                fake.before_answer()
                body = b"0: Accepted for delivery"
                self.send_response(202)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def before_answer(self) -> None:
        """Called in the request's thread before the answer (a gateway that hangs waits here)."""

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


KANNEL_PASSWORD = "kannel-Secret-9f3"
WRITE_TOKEN = "write-Token-77c1"


def _kannel_site(tmp_path: Path, kannel_url: str) -> Path:
    """One element nobody answers for (so ElementUnreachable fires at once), two customers on it,
    no hold-down: a text goes to Kannel within seconds of the start."""
    (tmp_path / "customers.csv").write_text(
        "account,phone,area,element,grade,language,name\n"
        "GZ1,8613800000001,yuexiu,dead-a,standard,zh-CN,张三\n"
        "GZ2,8613800000002,yuexiu,dead-a,standard,en,Li Si\n",
        encoding="utf-8",
    )
    site = {
        "site": "user-reports-deploy",
        "areas": [{"id": "yuexiu", "name": "Yuexiu", "name_zh": "越秀"}],
        "snmp": {
            "credentials": {"v2": {"version": "2c", "community": "user-reports-deploy"}},
            "defaults": {"interval": "1s", "timeout": "0.2s", "retries": 0},
        },
        "elements": [{"name": "dead-a", "address": f"udp://127.0.0.1:{free_udp_port()}", "credential": "v2",
                      "area": "yuexiu"}],
        "customers": {"file": "customers.csv"},
        "traps": {"enabled": False},
        "detectors": {"for": 0, "keep_firing_for": 0, "unreachable_after": 1},
        "contingency": {
            "hold_down": 0,
            "sms": {"sink": "kannel", "kannel": {"url": kannel_url, "username": "vigil",
                                                 "password": KANNEL_PASSWORD}},
        },
        "http": {"listen": f"127.0.0.1:{free_tcp_port()}", "write_token": WRITE_TOKEN},
    }
    path = tmp_path / "site.yaml"
    path.write_text(json.dumps(site), encoding="utf-8")  # JSON is YAML
    return path


def test_vigil_run_does_not_log_the_kannel_password_or_the_write_token(tmp_path: Path) -> None:
    kannel = _FakeKannel()
    log_path = tmp_path / "vigil.log"
    try:
        config = _kannel_site(tmp_path, kannel.url)
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [*vigil_command(), "run", "--config", str(config), "--data-dir", str(tmp_path / "data")],
                stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
            )
            try:
                deadline = time.monotonic() + 40
                while len(kannel.queries) < 2 and time.monotonic() < deadline and process.poll() is None:
                    time.sleep(0.2)
                assert len(kannel.queries) >= 2, log_path.read_text()[-3000:]
                assert KANNEL_PASSWORD in kannel.queries[0]  # Kannel itself does get it
                time.sleep(1)
            finally:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
    finally:
        kannel.close()
    logged = log_path.read_text(encoding="utf-8", errors="replace")
    leaks = [line[:200] for line in logged.splitlines() if KANNEL_PASSWORD in line or WRITE_TOKEN in line]
    assert not leaks, f"{len(leaks)} log line(s) carry the Kannel password or the write token: {leaks[:2]}"


# --------------------------------------------------------------------------------------------
# Bug 5: planned works below a fault above. olt-a1 is in a maintenance window (its customers'
# texts held, a planned banner); agg-a above it fails and absorbs that incident, then recovers a
# minute later while the works go on. olt-a1 continues as an incident of its own, but built
# without its window (_split_below: build_plan(..., labels={"element": ...}) and no maintenance):
# an ordinary outage, "still faulty after agg-a recovered", an outage banner instead of the
# planned one, and its customers are texted about works that are still inside their window.
# (Seen in a lab run: a CollectiveDegradation on cr-gz-01 absorbed the Tianhe planned works;
# after it cleared, olt-tianhe-01's 230 customers were handled as an outage.)
# --------------------------------------------------------------------------------------------
def test_planned_works_below_a_recovered_fault_stay_planned(tmp_path: Path) -> None:
    from contingency.maintenance import MaintenanceWindow
    from tests.contingency.conftest import T0

    engine = create_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    ContingencyBase.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    clock = FakeClock()
    works = MaintenanceWindow(id="mw-1", starts_at=T0 - 600, ends_at=T0 + 3600,
                              comment="CHG-1234 fibre splice", created_by="noc-li")

    def board(labels: Any) -> MaintenanceWindow | None:
        covered = labels.get("element") == "olt-a1" and works.starts_at <= clock() < works.ends_at
        return works if covered else None

    sink = FileSmsSink(tmp_path / "sms.jsonl", clock=clock)
    manager = ContingencyManager(sessions, Topology(ELEMENTS, AREAS, CUSTOMERS), ContingencyConfig(hold_down=HOLD_DOWN),
                                 sink, clock=clock, maintenance=board, registry=CollectorRegistry())
    olt_a1 = {c.phone for c in CUSTOMERS if c.element == "olt-a1"}
    try:
        manager.handle([make_event("olt-a1", EventState.FIRING, at=clock())])  # the planned works
        [planned] = manager.list_incidents()
        assert planned["title"].startswith("[planned maintenance]")
        clock.advance(60)
        manager.handle([make_event("agg-a", EventState.FIRING, at=clock())])  # above: absorbs it
        clock.advance(60)
        manager.handle([make_event("agg-a", EventState.RESOLVED, at=clock())])  # back within its hold-down
        clock.advance(2 * HOLD_DOWN)  # T0 + 720 s: the works' window runs until T0 + 3600 s
        manager.tick()

        texted = {str(line["to"]) for line in sink.read()} & olt_a1
        assert not texted, f"{len(texted)} customer(s) texted about planned works still inside their window"
        [goes_on] = [i for i in manager.list_incidents() if i["element"] == "olt-a1" and i["status"] == "open"]
        assert goes_on["maintenance"] is not None and goes_on["title"].startswith("[planned maintenance]"), goes_on
        assert [b["planned"] for b in manager.list_banners()] == [True]
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Bug 6: the NOC's expected restoration (PUT /api/v1/incidents/{id}/eta) reaches the customers'
# outage SMS as a bare HH:MM. A fibre cut repaired the day after tomorrow at 16:00 is texted as
# "expected back by 16:00" / "预计16:00前恢复": every customer reads "today" (the banner and the
# ticket carry the date; the SMS, the only thing the customer sees, does not).
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_an_eta_days_away_is_not_texted_as_a_time_of_today(language: str) -> None:
    from contingency.scripts import AreaView, IncidentView, render_sms
    from tests.contingency.conftest import T0

    def text(eta: float) -> str:
        view = IncidentView(key="agg-a", element="agg-a", title="down", since=T0, ticket="PT-1", eta=eta,
                            areas=(AreaView("yuexiu", "Yuexiu", "越秀"),))
        return render_sms("outage", language, view)

    later_today = T0 + 3 * 3600
    in_two_days = later_today + 2 * 86400
    assert text(later_today) != text(in_two_days), (
        f"an ETA two days away is texted exactly like one today: {text(in_two_days)!r}"
    )


# --------------------------------------------------------------------------------------------
# Bug 7: the README's deployment path does not reach PostgreSQL. `make run` installs
# `pip install -e .` (no extras), psycopg is only in the dev extra, and the documented
# `vigil run --db postgresql+psycopg://user@host/db` then dies with a
# "ModuleNotFoundError: No module named 'psycopg'" traceback after the migrations' log lines.
# --------------------------------------------------------------------------------------------
def test_make_run_installs_the_postgresql_driver_the_readme_documents() -> None:
    import re
    import tomllib

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "postgresql+psycopg://" in readme  # the documented --db URL
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    install = re.search(r"^venv:.*\n\t\$\(BIN\)/pip install (.*)$", makefile, re.MULTILINE)
    assert install, "the Makefile's venv target (make run) installs with pip"
    extras = re.findall(r"\[([^\]]*)\]", install.group(1))
    requirements = list(project["dependencies"])
    for extra in ",".join(extras).split(","):
        requirements += project.get("optional-dependencies", {}).get(extra.strip(), [])
    assert any(re.match(r"psycopg\b", r) for r in requirements), (
        f"make run installs {install.group(1)!r}: no psycopg among {requirements}, so "
        "`vigil run --db postgresql+psycopg://...` fails with ModuleNotFoundError"
    )


# --------------------------------------------------------------------------------------------
# Bug 8: a hung SMS gateway stalls vigil's whole event path. The contingency tick holds the
# manager's lock while it sends a claimed batch (up to 200 texts, each up to kannel.timeout), so
# the processor, which hands every event batch to ContingencyManager.handle under that lock,
# waits: a second element failing meanwhile gets no incident, no banner, and the detection of
# every later sample (NOC alerts included) waits with it, for texts x timeout (20 x 10 s here).
# --------------------------------------------------------------------------------------------
class _HangingKannel(_FakeKannel):
    """A Kannel smsbox that accepts the connection and never answers (overloaded, or its
    bearerbox gone), until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        super().__init__()

    def before_answer(self) -> None:
        self.release.wait(120)

    def close(self) -> None:
        self.release.set()
        super().close()


def test_a_hung_sms_gateway_does_not_stall_new_incidents(tmp_path: Path) -> None:
    import httpx

    kannel = _HangingKannel()
    rows = ["account,phone,area,element,grade,language,name"]
    rows += [f"GZA{i},86138000010{i:02d},yuexiu,dead-a,standard,zh-CN,A{i}" for i in range(20)]
    rows += ["GZB1,8613800002001,haizhu,dead-b,standard,zh-CN,B1"]
    (tmp_path / "customers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    port = free_tcp_port()
    site = {
        "site": "user-reports-deploy-hung-gateway",
        "areas": [{"id": "yuexiu", "name": "Yuexiu", "name_zh": "越秀"},
                  {"id": "haizhu", "name": "Haizhu", "name_zh": "海珠"}],
        "snmp": {"credentials": {"v2": {"version": "2c", "community": "user-reports-deploy"}},
                 "defaults": {"interval": "1s", "timeout": "0.2s", "retries": 0}},
        "elements": [
            {"name": "dead-a", "address": f"udp://127.0.0.1:{free_udp_port()}", "credential": "v2",
             "area": "yuexiu"},
            # polled from ~5 s after the start: it fails once dead-a's texts are on their way
            {"name": "dead-b", "address": f"udp://127.0.0.1:{free_udp_port()}", "credential": "v2",
             "area": "haizhu", "interval": "10s"},
        ],
        "customers": {"file": "customers.csv"},
        "traps": {"enabled": False},
        "detectors": {"for": 0, "keep_firing_for": 0, "unreachable_after": 1},
        "contingency": {"hold_down": 0, "sms": {"sink": "kannel", "kannel": {
            "url": kannel.url, "username": "vigil", "password": "pw", "timeout": "10s",
            "delivery_reports": False}}},
        "http": {"listen": f"127.0.0.1:{port}"},
    }
    config = tmp_path / "site.yaml"
    config.write_text(json.dumps(site), encoding="utf-8")
    log_path = tmp_path / "vigil.log"
    try:
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [*vigil_command(), "run", "--config", str(config), "--data-dir", str(tmp_path / "data")],
                stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
            )
            try:
                deadline = time.monotonic() + 30
                while not kannel.queries and time.monotonic() < deadline and process.poll() is None:
                    time.sleep(0.2)
                assert kannel.queries, log_path.read_text()[-3000:]  # dead-a's texts: the gateway hangs
                elements: set[str] = set()
                deadline = time.monotonic() + 25  # dead-b fails within ~10 s of the start
                while "dead-b" not in elements and time.monotonic() < deadline:
                    try:
                        incidents = httpx.get(f"http://127.0.0.1:{port}/api/v1/incidents", timeout=5).json()
                        elements = {i["element"] for i in incidents}
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.5)
                assert "dead-b" in elements, (
                    f"dead-b failed but has no incident while the SMS gateway hangs (incidents: {elements}): "
                    + "\n".join(line for line in log_path.read_text().splitlines() if "dead-b" in line)[-1500:]
                )
            finally:
                kannel.release.set()
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(40)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
    finally:
        kannel.close()


# --------------------------------------------------------------------------------------------
# Bug 9: the agent page gets slower with every incident vigil has ever handled. It polls
# GET /api/v1/incidents (and /api/v1/status, whose open_incidents count calls list_incidents()
# again) every 3 s per agent; list_incidents() parses every stored plan, the full customer
# snapshot of every past incident (Plan.from_json), to print len(plan.customers). At the
# operator scale the README quotes (100,000 customers under one fault) each past incident adds
# ~0.4 s to every refresh of every agent's page and of /healthz: ten past faults, ~4 s.
# --------------------------------------------------------------------------------------------
def test_the_agent_pages_incident_list_does_not_reread_every_past_customer_snapshot(tmp_path: Path) -> None:
    import httpx

    from config.models import Area, Element

    def el(name: str, parent: str | None = None, area: str | None = None) -> Element:
        return Element(name=name, address="udp://127.0.0.1:1161", credential="lab", parent=parent, area=area)

    elements = [el("core"), el("agg", "core")] + [el(f"olt{i}", "agg", f"a{i % 5}") for i in range(50)]
    areas = [Area(id=f"a{i}", name=f"Area {i}", name_zh=f"区{i}") for i in range(5)]
    customers = [Customer(account=f"C{k:08d}", phone=f"86138{k:08d}", area=f"a{k % 50 % 5}", element=f"olt{k % 50}")
                 for k in range(100_000)]
    engine = create_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    ContingencyBase.metadata.create_all(engine)
    clock = FakeClock()
    manager = ContingencyManager(
        sessionmaker(engine, expire_on_commit=False), Topology(elements, areas, customers),
        ContingencyConfig(hold_down=HOLD_DOWN), FileSmsSink(tmp_path / "sms.jsonl", clock=clock), clock=clock,
        registry=CollectorRegistry(),
    )
    try:
        manager.handle([make_event("agg", EventState.FIRING, at=clock())])  # one big fault, over in a minute
        clock.advance(60)
        manager.handle([make_event("agg", EventState.RESOLVED, at=clock())])
        with engine.begin() as conn:  # nine more like it in the history (days, weeks ago)
            for k in range(1, 10):
                conn.execute(text(
                    "INSERT INTO incidents (key, open_key, element, status, title, areas, plan, fingerprints,"
                    " opened_at, resolved_at) SELECT key, NULL, element, status, title, areas, plan, fingerprints,"
                    " opened_at - :d, resolved_at - :d FROM incidents WHERE id = 1"), {"d": k * 86400})
        app = create_app(registry=CollectorRegistry(), render_device_metrics=lambda: "", alerts=_NoAlerts(),
                         contingency=manager, status=lambda: {})

        async def refresh() -> float:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as client:
                started = time.perf_counter()
                response = await client.get("/api/v1/incidents")
                elapsed = time.perf_counter() - started
                assert response.status_code == 200 and len(response.json()) == 10
                return elapsed

        asyncio.run(refresh())  # warm
        elapsed = min(asyncio.run(refresh()) for _ in range(2))
        assert elapsed < 1.0, (
            f"GET /api/v1/incidents (polled every 3 s by each agent page) took {elapsed:.1f} s with ten "
            "past incidents in the history"
        )
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Bug 10: a customer's "TD" typed the way Chinese phones often send it is ignored: full-width
# letters from a Chinese IME ("ＴＤ"), or the keyword with the sentence's full stop ("退订。",
# "TD。"). vigil answers nothing (no confirmation), stores nothing, and the customer goes on
# getting outage texts after asking to stop (the gateway replies only with what vigil returns).
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reply", ["ＴＤ", "退订。", "TD。"])
def test_td_as_chinese_phones_send_it_stops_the_texts(tmp_path: Path, reply: str) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    ContingencyBase.metadata.create_all(engine)
    clock = FakeClock()
    manager = ContingencyManager(
        sessionmaker(engine, expire_on_commit=False), Topology(ELEMENTS, AREAS, CUSTOMERS),
        ContingencyConfig(hold_down=HOLD_DOWN), FileSmsSink(tmp_path / "sms.jsonl", clock=clock), clock=clock,
        registry=CollectorRegistry(),
    )
    try:
        manager.handle([make_event("olt-a1", EventState.FIRING, at=clock())])
        confirmation = manager.inbound_sms(AFFECTED.phone, reply)
        assert confirmation, f"{reply!r} from {AFFECTED.phone} was ignored: no confirmation, texts not stopped"
        clock.advance(HOLD_DOWN)
        manager.tick()
        texted = {str(line["to"]) for line in FileSmsSink(tmp_path / "sms.jsonl").read()}
        assert AFFECTED.phone not in texted
    finally:
        engine.dispose()
