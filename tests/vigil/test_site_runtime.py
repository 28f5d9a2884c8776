"""`vigil run --config` on a site without the lab: an unreachable element, and traps at once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import free_tcp_port, free_udp_port, require_binary, vigil_command

SITE = """
site: trap-test
areas: [{{id: a1, name: Area One, name_zh: 一区}}]
snmp:
  credentials:
    c: {{version: "2c", community_env: VIGIL_TEST_COMMUNITY}}
  defaults: {{interval: 1s, timeout: 0.2s, retries: 0}}
elements:
  - {{name: olt-1, role: olt, address: "udp://127.0.0.2:{dead}", credential: c, area: a1}}
traps: {{listen: "127.0.0.1:{traps}"}}
customers: {{file: customers.csv}}
detectors: {{unreachable_after: 2}}
contingency: {{hold_down: 1s}}
http: {{write_token_file: api.token}}
"""


def test_unreachable_element_and_link_down_trap(tmp_path: Path) -> None:
    snmptrap = require_binary("snmptrap")
    port, traps = free_tcp_port(), free_udp_port()
    (tmp_path / "site.yaml").write_text(SITE.format(dead=free_udp_port(), traps=traps), encoding="utf-8")
    (tmp_path / "api.token").write_text("t0ken-for-the-noc\n", encoding="utf-8")
    (tmp_path / "customers.csv").write_text(
        "account,phone,area,element\nA1,8613900000001,a1,olt-1\nA2,8613900000002,a1,olt-1\n", encoding="utf-8"
    )
    env = {**os.environ, "VIGIL_TEST_COMMUNITY": "s3cret-community", "COLUMNS": "200"}
    proc = subprocess.Popen(
        [*vigil_command(), "run", "--config", str(tmp_path / "site.yaml"), "--http", f"127.0.0.1:{port}",
         "--data-dir", str(tmp_path / "data"), "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    url = f"http://127.0.0.1:{port}"

    def alerts() -> dict[str, dict]:
        try:
            return {a["labels"]["alertname"]: a for a in httpx.get(url + "/api/v1/alerts", timeout=3).json()}
        except httpx.HTTPError:
            return {}

    try:
        deadline = time.monotonic() + 30
        while "ElementUnreachable" not in alerts() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert alerts()["ElementUnreachable"]["status"] == "firing"
        # a linkDown from the element's address becomes an event at once, with the trap's ifName
        sent = time.monotonic()
        subprocess.run(
            [snmptrap, "-v", "2c", "-c", "s3cret-community", "--clientaddr=127.0.0.2", f"127.0.0.1:{traps}", "",
             "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.7", "i", "7", "1.3.6.1.2.1.31.1.1.1.1.7", "s", "gpon 0/1/6"],
            check=True, timeout=10,
        )
        while "InterfaceDown" not in alerts() and time.monotonic() - sent < 10:
            time.sleep(0.1)
        down = alerts()["InterfaceDown"]
        assert down["labels"]["element"] == "olt-1" and down["labels"]["ifName"] == "gpon 0/1/6"
        assert time.monotonic() - sent < 5
        # a wrong community is rejected and counted
        subprocess.run([snmptrap, "-v", "2c", "-c", "wrong", f"127.0.0.1:{traps}", "", "1.3.6.1.6.3.1.1.5.1"],
                       check=True, timeout=10)
        time.sleep(0.5)
        metrics = httpx.get(url + "/metrics", timeout=3).text
        assert 'vigil_traps_total{result="rejected",version="2c"}' in metrics
        assert 'vigil_target_up{element="olt-1"} 0.0' in metrics
        incidents = httpx.get(url + "/api/v1/incidents", timeout=3).json()
        assert [i["element"] for i in incidents] == ["olt-1"] and incidents[0]["customers"] == 2
        # writes need the bearer token from http.write_token_file; a silence mutes olt-1's alerts
        body = {"matchers": ['element="olt-1"'], "endsAt": "2099-01-01T00:00:00Z", "createdBy": "noc",
                "comment": "fibre cut, field team on site"}
        refused = httpx.post(url + "/api/v2/silences", json=body, timeout=3)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        wrong = httpx.post(url + "/api/v2/silences", json=body, headers={"Authorization": "Bearer nope"}, timeout=3)
        assert wrong.status_code == 401
        ok = httpx.post(url + "/api/v2/silences", json=body, headers={"Authorization": "Bearer t0ken-for-the-noc"},
                        timeout=3)
        assert ok.status_code == 200, ok.text
        sid = ok.json()["silenceID"]
        assert all(a["silenced_by"] == [sid] for a in alerts().values() if a["status"] == "firing")
        assert httpx.delete(f"{url}/api/v2/silence/{sid}", timeout=3).status_code == 401
        # the NOC gives the expected restoration: the agents' banner says it
        incident_id = incidents[0]["id"]
        auth = {"Authorization": "Bearer t0ken-for-the-noc"}
        eta = {"eta": "2099-01-01T08:30:00+08:00", "by": "noc-li", "note": "field team on site"}
        assert httpx.put(f"{url}/api/v1/incidents/{incident_id}/eta", json=eta, timeout=3).status_code == 401
        put = httpx.put(f"{url}/api/v1/incidents/{incident_id}/eta", json=eta, headers=auth, timeout=3)
        assert put.status_code == 200, put.text
        assert put.json()["eta"] == "2099-01-01T00:30:00Z"
        [banner] = httpx.get(url + "/api/v1/banners", timeout=3).json()
        assert "2099-01-01 08:30" in banner["text_en"] and "2099-01-01 08:30" in banner["text_zh"]
        bad = httpx.put(f"{url}/api/v1/incidents/{incident_id}/eta", json={**eta, "eta": "tomorrow"},
                        headers=auth, timeout=3)
        assert bad.status_code == 422 and "eta" in bad.json()["detail"]
        assert httpx.put(f"{url}/api/v1/incidents/9999/eta", json=eta, headers=auth, timeout=3).status_code == 404
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "s3cret-community" not in out  # secrets never reach the logs
