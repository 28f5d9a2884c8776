"""How fast does the proactive story unfold? Fault injection -> ticket, banner, first SMS.

Runs `vigil run` on the built-in lab network at a given --speedup and reports, in wall seconds and
simulated minutes, the time from the scenario's fault injection to the incident's ticket, its
banner, the first customer SMS, and (when it gets that far) the resolution after the fault clears.

    python benchmarks/story.py --speedup 60
    python benchmarks/story.py --speedup 1 --fault-at 21m     # real time: takes ~30 minutes

Last line: a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx


def _free_tcp() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_udp_base(count: int) -> int:
    for base in range(30000, 60000, 53):
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP range")


def _ts(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speedup", type=float, default=60.0)
    ap.add_argument("--fault-at", default="20m")
    ap.add_argument("--timeout", type=float, default=None, help="wall seconds to wait (default: from speedup)")
    ap.add_argument("--until", choices=["sms", "resolved"], default="resolved")
    args = ap.parse_args()
    speed = args.speedup
    timeout = args.timeout or (100 * 60 / speed + 60)
    port, lab = _free_tcp(), _free_udp_base(10)
    data = Path(tempfile.mkdtemp(prefix="vigil-story-"))
    vigil = Path(sys.executable).parent / "vigil"
    cmd = [str(vigil), "run", "--http", f"127.0.0.1:{port}", "--data-dir", str(data), "--speedup", str(speed),
           "--fault-at", args.fault_at, "--lab-port", str(lab), "--duration", str(timeout + 30)]
    log = (data / "vigil.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    seen: dict[str, float] = {}  # first wall time (since start) each milestone was observed
    result: dict[str, float | None] = {}
    try:
        fault_sim, element = None, None
        while time.monotonic() - t0 < timeout:
            time.sleep(0.2 if speed > 5 else 2)
            try:
                status = httpx.get(url + "/api/v1/status", timeout=5).json()
                tickets = httpx.get(url + "/api/v1/tickets", timeout=5).json()
                banners = httpx.get(url + "/api/v1/banners?all=true", timeout=5).json()
                incidents = httpx.get(url + "/api/v1/incidents", timeout=5).json()
            except httpx.HTTPError:
                continue
            now = time.monotonic() - t0
            if fault_sim is None and status.get("scenario"):
                first = min(status["scenario"], key=lambda f: f["start"])
                fault_sim, element = first["start"], first["element"]
                seen["fault_wall_predicted"] = now + (fault_sim - status["sim_time"]) / speed
            if fault_sim is not None:  # the demo fault's own incident (the lab also has planned works)
                tickets = [t for t in tickets if t["incident_key"] == element]
                banners = [b for b in banners if b["incident_key"] == element]
                incidents = [i for i in incidents if i["element"] == element]
            if tickets and "ticket" not in seen:
                seen["ticket"] = now
            if banners and "banner" not in seen:
                seen["banner"] = now
            if "sms" not in seen:
                sms = httpx.get(url + "/api/v1/notifications?channel=sms", timeout=5).json()
                sent = [m for m in sms if m["status"] == "sent" and m.get("incident") == element]
                if sent:
                    seen["sms"] = now
                    result["first_sms_sim"] = min(_ts(m["sent_at"]) for m in sent)
            if tickets:
                result["ticket_sim"] = _ts(tickets[0]["opened_at"])
            if banners:
                result["banner_sim"] = _ts(banners[-1]["created_at"])
            if any(i["status"] == "resolved" for i in incidents) and "resolved" not in seen:
                seen["resolved"] = now
                result["resolved_sim"] = _ts(incidents[0]["resolved_at"])
            if args.until == "sms" and "sms" in seen or "resolved" in seen:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    out: dict[str, float | None] = {"speedup": speed}
    if fault_sim is None:
        print("no scenario seen: did vigil start? log:", data / "vigil.log")
    else:
        fault_end = fault_sim + 55 * 60
        for name in ("ticket", "banner", "first_sms"):
            sim = result.get(f"{name}_sim")
            out[f"{name}_after_fault_sim_min"] = None if sim is None else round((sim - fault_sim) / 60, 2)
            out[f"{name}_after_fault_wall_s"] = None if sim is None else round((sim - fault_sim) / speed, 2)
        if result.get("resolved_sim"):
            out["resolved_after_fault_cleared_sim_min"] = round((result["resolved_sim"] - fault_end) / 60, 2)
        for name in ("ticket", "banner", "sms"):
            if name in seen:
                out[f"{name}_observed_wall_s"] = round(seen[name] - seen["fault_wall_predicted"], 2)
    for key, value in out.items():
        print(f"{key:>40}: {value}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
