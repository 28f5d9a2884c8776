"""The whole story, end to end: `vigil run` on the lab network at high speed.

SNMP over real UDP -> rates -> detector -> incident -> one ticket, a banner for the right area,
one SMS per affected customer (none for others), caller lookup -> the fault clears -> everything
resolves and "restored" goes to those who were told of the outage.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_tcp_port, free_udp_range, require_binary, require_module, vigil_command
from vigil.lab import demo_site

# 60x: one simulated minute per wall second; fast enough for CI, slow enough that a loaded
# machine's event-loop lag does not distort rates (at 120x, 0.1 s of lag is 12 simulated seconds).
SPEEDUP = 60
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
FAULT_ELEMENT = "agg-yuexiu-01"
FAULT_AREA = "yuexiu"


@dataclass
class Run:
    url: str
    data_dir: Path
    lab_port: int
    proc: subprocess.Popen[str]
    started: float

    def get(self, path: str) -> Any:
        r = httpx.get(self.url + path, timeout=10)
        r.raise_for_status()
        return r.json()

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"vigil exited ({self.proc.returncode}) while waiting for {what}")
            try:
                value = check()
            except httpx.HTTPError:
                value = None
            if value:
                return value
            time.sleep(0.25)
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    data_dir = tmp_path_factory.mktemp("vigil-e2e")
    port, lab_port = free_tcp_port(), free_udp_range(10)
    log = (data_dir / "vigil.log").open("w")
    proc = subprocess.Popen(
        [*vigil_command(), "run", "--http", f"127.0.0.1:{port}", "--data-dir", str(data_dir),
         "--speedup", str(SPEEDUP), "--fault-at", "20m", "--lab-port", str(lab_port), "--duration", "400"],
        stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    r = Run(f"http://127.0.0.1:{port}", data_dir, lab_port, proc, time.monotonic())
    try:
        r.wait_for("the web app", lambda: r.get("/healthz")["status"] == "ok", 30)
        yield r
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def affected_and_others() -> tuple[set[str], set[str]]:
    _site, customers = demo_site()
    affected = {c.phone for c in customers if c.area == FAULT_AREA}
    return affected, {c.phone for c in customers} - affected


def sms_lines(run: Run) -> list[dict[str, Any]]:
    path = run.data_dir / "sms-outbox.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_startup_banner_and_metrics(run: Run) -> None:
    def metrics() -> dict[str, Any]:
        return {f.name: f for f in text_string_to_metric_families(httpx.get(run.url + "/metrics", timeout=10).text)}

    def polled(families: dict[str, Any]) -> set[str]:
        family = families.get("vigil_polls")
        polls = [s for s in family.samples if s.name == "vigil_polls_total"] if family is not None else []
        return {s.labels["element"] for s in polls if s.labels["result"] == "ok"}

    # the first poll of each element lands at its own moment: wait for the two this test reads, not just any
    def ready() -> bool:
        families = metrics()
        octets = families.get("ifHCInOctets")
        return polled(families) >= {FAULT_ELEMENT, "cr-gz-01"} and octets is not None and any(
            s.labels.get("element") == FAULT_ELEMENT for s in octets.samples)

    run.wait_for("a poll of the fault element and the core", ready, 30)
    body = httpx.get(run.url + "/metrics", timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(body)}
    # snmp_exporter's exact names: the bare counter name, no _total
    assert "# TYPE ifHCInOctets counter" in body and "ifHCInOctets_total" not in body
    octets = [s for s in families["ifHCInOctets"].samples if s.labels["element"] == FAULT_ELEMENT]
    assert octets and {"ifIndex", "ifName", "ifDescr", "ifAlias", "element", "area"} <= set(octets[0].labels)
    assert octets[0].labels["area"] == FAULT_AREA
    assert polled(families) >= {FAULT_ELEMENT, "cr-gz-01"}
    # the port-state pair InterfaceDown reads: a spare port is shut (2) and not up, a used one is up
    status = {(s.labels["element"], s.labels["ifIndex"], n): s.value
              for n in ("ifAdminStatus", "ifOperStatus") for s in families[n].samples}  # fmt: skip
    shut = [k[:2] for k, v in status.items() if k[2] == "ifAdminStatus" and v == 2]
    assert shut and all(status[(*k, "ifOperStatus")] != 1 for k in shut)
    assert any(k[2] == "ifAdminStatus" and v == 1 and status[(*k[:2], "ifOperStatus")] == 1 for k, v in status.items())
    log = (run.data_dir / "vigil.log").read_text(encoding="utf-8")
    assert "/agent" in log and f"{SPEEDUP}× real time" in log


def test_silences_api_speaks_alertmanager_v2(run: Run) -> None:
    """A maintenance window through the HTTP API: create, list, read, expire; bad input is a 400."""
    sim_now = float(run.get("/api/v1/status")["sim_time"])  # silences run on vigil's (lab) clock
    starts = datetime.fromtimestamp(sim_now - 60, UTC).isoformat()
    body = {
        "matchers": [{"name": "element", "value": "olt-under-maintenance", "isRegex": False, "isEqual": True}],
        "startsAt": starts,
        "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "noc-li",
        "comment": "CHG-1 board swap",
    }
    r = httpx.post(run.url + "/api/v2/silences", json=body, timeout=10)
    assert r.status_code == 200, r.text
    sid = r.json()["silenceID"]
    listed = {s["id"]: s for s in run.get("/api/v2/silences")}
    assert listed[sid]["status"]["state"] == "active"
    assert listed[sid]["matchers"] == body["matchers"] and listed[sid]["createdBy"] == "noc-li"
    assert run.get(f"/api/v2/silence/{sid}")["comment"] == "CHG-1 board swap"
    assert httpx.delete(f"{run.url}/api/v2/silence/{sid}", timeout=10).status_code == 200
    assert run.get(f"/api/v2/silence/{sid}")["status"]["state"] == "expired"
    bad = httpx.post(run.url + "/api/v2/silences", json={**body, "matchers": ['element=~".*"']}, timeout=10)
    assert bad.status_code == 400 and "empty string" in bad.json()["detail"]
    assert httpx.delete(f"{run.url}/api/v2/silence/nope", timeout=10).status_code == 404


def test_prometheus_scrapes_metrics_and_rate_works(run: Run, tmp_path: Path) -> None:
    """A real Prometheus scrapes /metrics; PromQL's rate() works on the snmp_exporter-named counters."""
    prometheus = require_binary("prometheus")
    port = free_tcp_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: vigil\n"
        f"    static_configs: [{{targets: ['{run.url.removeprefix('http://')}']}}]\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        def query(q: str) -> list[dict[str, Any]]:
            try:
                body = httpx.get(f"{api}/query", params={"query": q}, timeout=5).json()
            except ValueError:  # not ready yet: Prometheus answers 503 in plain text while starting
                return []
            return body["data"]["result"] if body.get("status") == "success" else []

        up = run.wait_for("Prometheus to scrape vigil", lambda: query('up{job="vigil"} == 1'), 30)
        assert up
        rates = run.wait_for(
            "rate(ifHCInOctets)",
            lambda: query(f'rate(ifHCInOctets{{element="{FAULT_ELEMENT}"}}[5s]) > 0'),
            30,
        )
        assert {"ifName", "ifAlias", "ifDescr", "ifIndex", "area"} <= set(rates[0]["metric"])
        assert query("vigil_polls_total") and query("ifOperStatus") and query("sysUpTime")

        # the shipped Grafana dashboard: every panel query and variable is valid PromQL with data
        dashboard = json.loads((ROOT / "examples" / "grafana" / "vigil-overview.json").read_text(encoding="utf-8"))
        exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
        assert len(exprs) >= 15
        grafana = {"$__rate_interval": "5s", "$area": ".*", "$element": ".*"}
        for expr in exprs:
            q = expr
            for var, value in grafana.items():
                q = q.replace(var, value)
            assert "$" not in q, expr
            body = httpx.get(f"{api}/query", params={"query": q}, timeout=5).json()
            assert body["status"] == "success", (expr, body)
            assert run.wait_for(f"data for {expr}", lambda q=q: query(q), 15), expr
        for var in dashboard["templating"]["list"]:
            metric = var["definition"].removeprefix("label_values(").split(",")[0]
            label = var["name"]
            values = httpx.get(f"{api}/label/{label}/values", params={"match[]": metric}, timeout=5).json()["data"]
            assert values, var["definition"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_fault_opens_one_incident_ticket_banner_and_sms(run: Run) -> None:
    incidents = run.wait_for(
        "the incident", lambda: [i for i in run.get("/api/v1/incidents") if i["status"] == "open"], 120
    )
    opened_wall = time.monotonic() - run.started
    assert [i["element"] for i in incidents if not i["title"].startswith("[planned")] == [FAULT_ELEMENT]
    tickets = [t for t in run.get("/api/v1/tickets") if t["incident_key"] == FAULT_ELEMENT]
    assert len(tickets) == 1 and tickets[0]["status"] == "open"

    banners = [b for b in run.get("/api/v1/banners") if not b["planned"]]
    assert {b["area_id"] for b in banners} == {FAULT_AREA}
    assert "越秀" in banners[0]["text_zh"] and "Yuexiu" in banners[0]["text_en"]

    affected, others = affected_and_others()
    sent = run.wait_for(
        "every outage SMS through the sink", lambda: len(sms_lines(run)) >= len(affected) and sms_lines(run), 30
    )
    phones = [m["to"] for m in sent]
    assert len(phones) == len(set(phones)), "somebody got two outage messages"
    assert set(phones) == affected and not set(phones) & others
    api_sms = run.get("/api/v1/notifications?channel=sms")
    assert {n["recipient"] for n in api_sms if n["kind"] == "outage" and n["status"] == "sent"} == affected
    assert {n["incident"] for n in api_sms if n["status"] == "sent"} == {FAULT_ELEMENT}

    # the agent's caller lookup
    phone = sorted(affected)[0]
    impact = run.get(f"/api/v1/callers/{phone}/impact")
    assert impact["affected"] is True and impact["incidents"][0]["key"] == FAULT_ELEMENT
    assert impact["script"] and tickets[0]["number"] in impact["script"]
    unaffected = run.get(f"/api/v1/callers/{sorted(others)[0]}/impact")
    assert unaffected["affected"] is False and unaffected["script"] is None
    assert httpx.get(run.url + "/api/v1/callers/not-a-phone/impact").status_code == 422
    print(f"incident open {opened_wall:.1f}s after start at x{SPEEDUP}")  # shown with -s


def test_agent_page_shows_banner_and_looks_up_callers(run: Run) -> None:
    """A hotline agent's view, in a real headless Chromium: banner of the area, caller lookup."""
    chromium = require_binary("chromium", "/usr/bin/chromium")
    require_module("playwright")
    from playwright.sync_api import sync_playwright

    affected, others = affected_and_others()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(run.url + "/agent")
            banner = page.locator(f'.banner[data-area="{FAULT_AREA}"]')
            banner.wait_for(timeout=10_000)
            assert "越秀" in banner.inner_text()
            assert banner.get_attribute("data-planned") == "no"  # a fault, not planned works
            assert page.locator('.banner[data-planned="no"]').count() == 1
            page.fill("#phone", sorted(affected)[0])
            page.click("button[type=submit]")
            page.locator("#script").wait_for(timeout=10_000)
            assert "Affected" in page.inner_text("#verdict")
            assert page.get_attribute("#sms-status", "data-status") in ("queued", "sending", "sent")
            assert FAULT_ELEMENT in page.inner_text("#script") or "越秀" in page.inner_text("#script")
            page.screenshot(path=str(run.data_dir / "agent-affected.png"), full_page=True)
            page.fill("#phone", sorted(others)[0])
            page.click("button[type=submit]")
            page.wait_for_function("document.querySelector('#verdict')?.textContent.includes('Not affected')")
            page.fill("#phone", "12")
            page.click("button[type=submit]")
            page.locator("#result .err").wait_for(timeout=10_000)
        finally:
            browser.close()


def test_recovery_resolves_everything(run: Run) -> None:
    run.wait_for(
        "the incident to resolve",
        lambda: [i for i in run.get("/api/v1/incidents")
                 if i["status"] == "resolved" and i["element"] == FAULT_ELEMENT],
        150,
    )
    incidents = run.get("/api/v1/incidents")
    assert all(i["status"] == "resolved" for i in incidents)
    tickets = {t["incident_key"]: t for t in run.get("/api/v1/tickets")}
    ticket = tickets[FAULT_ELEMENT]
    assert ticket["status"] == "closed" and ticket["closed_at"]
    assert len(ticket["timeline"]) >= 3
    assert run.get("/api/v1/banners") == []

    # the lab's planned works (a maintenance window announced at startup): a planned incident with
    # its own closed ticket and planned-works banner, and not one text, because the works ended
    # inside their window
    [planned] = [i for i in incidents if i["element"] != FAULT_ELEMENT]
    assert planned["title"].startswith("[planned maintenance]") and planned["maintenance"]["over"] is False
    assert planned["customers"] > 0 and set(planned["sms"]) == {"outage_cancelled"}
    assert tickets[planned["element"]]["status"] == "closed"
    assert any("held for maintenance window" in e["text"] for e in tickets[planned["element"]]["timeline"])
    [works_banner] = [b for b in run.get("/api/v1/banners?all=true") if b["incident_key"] == planned["element"]]
    assert works_banner["text_en"].startswith("[Planned maintenance]")
    affected, _ = affected_and_others()
    run.wait_for("restored SMS through the sink", lambda: len(sms_lines(run)) >= 2 * len(affected), 30)
    per_phone: dict[str, int] = {}
    for m in sms_lines(run):
        per_phone[m["to"]] = per_phone.get(m["to"], 0) + 1
    assert set(per_phone) == affected and set(per_phone.values()) == {2}  # outage, then restored
    api_sms = run.get("/api/v1/notifications?channel=sms")
    restored = {n["recipient"] for n in api_sms if n["kind"] == "restored" and n["status"] == "sent"}
    assert restored == affected
    alerts = run.get("/api/v1/alerts")
    assert alerts and all(a["status"] == "resolved" for a in alerts)
    assert run.get(f"/api/v1/callers/{sorted(affected)[0]}/impact")["affected"] is False
