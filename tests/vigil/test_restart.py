"""A restart keeps what vigil learned: detector state is saved on exit and restored at start."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import free_tcp_port, free_udp_range, vigil_command


def run_once(data_dir: Path, seconds: int, *args: str) -> str:
    cmd = [*vigil_command(), "run", "--http", f"127.0.0.1:{free_tcp_port()}", "--data-dir", str(data_dir),
           "--speedup", "60", "--lab-port", str(free_udp_range(10)), "--duration", str(seconds), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


def test_detector_state_survives_a_restart(tmp_path: Path) -> None:
    first = run_once(tmp_path, 6)
    assert "detector state restored" not in first
    state = tmp_path / "detectors.npz"
    assert state.exists() and state.stat().st_size > 0
    second = run_once(tmp_path, 4)
    restored = [line for line in second.splitlines() if "detector state restored" in line]
    assert restored, second[-2000:]
    assert int(restored[0].split("restored:")[1].split()[0]) > 100  # series, not a fresh warm-up
    # the ports the lab's polls saw (up, down, shut) come back too: a "down" counts at once
    links = [line for line in second.splitlines() if "link state restored" in line]
    assert links, second[-2000:]
    assert int(links[0].split("restored:")[1].split()[0]) >= 10  # interfaces of the 10 lab elements


def test_a_damaged_state_file_means_a_fresh_start_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "detectors.npz").write_bytes(b"not a state file")
    (tmp_path / "link-state.json").write_text('{"version": 1, "links": [["cr-gz-01"]]}')
    out = run_once(tmp_path, 3)
    assert "starting a fresh warm-up" in out
    assert "link state not restored" in out and "links[0]" in out
    assert json.loads((tmp_path / "link-state.json").read_text())["version"] == 1  # rewritten on exit


def test_a_port_down_before_a_restart_resolves_when_the_first_poll_sees_it_up(tmp_path: Path) -> None:
    """The store holds a firing InterfaceDown for a lab port that is up: the restarted vigil takes
    it back (TrapRules.restore) and its first poll of the port resolves it."""
    import asyncio
    import sqlite3

    from alerts.pipeline import AlertPipeline
    from config.models import AlertsConfig
    from detectors.event import Event, EventState, Severity
    from vigil.db import create_database

    run_once(tmp_path, 3)
    engine, sessions = create_database(f"sqlite:///{(tmp_path / 'vigil.db').resolve()}")
    labels = (("alertname", "InterfaceDown"), ("element", "cr-gz-01"), ("ifIndex", "1"), ("severity", "critical"))
    down = Event(name="InterfaceDown", element="cr-gz-01", state=EventState.FIRING, labels=labels,
                 detector="link_state", series="ifOperStatus", value=1.0, expected=0.0, band=(0.0, 0.0),
                 score=1.0, active_at=1.0, severity=Severity.CRITICAL, fired_at=1.0, summary="went down")
    asyncio.run(AlertPipeline(sessions, AlertsConfig(), clock=lambda: 2.0).ingest([down]))
    engine.dispose()
    second = run_once(tmp_path, 6)
    assert "trap rules: 1 alerts still firing from before the restart taken back" in second, second[-2000:]
    with sqlite3.connect(tmp_path / "vigil.db") as db:
        [(status,)] = db.execute("SELECT status FROM alerts WHERE fingerprint = ?", (down.fingerprint,)).fetchall()
    assert status == "resolved"


def test_a_restarted_lab_continues_its_clock_and_plays_the_story_again(tmp_path: Path) -> None:
    """The lab's clock runs 60x: after a 20 s run (no fault yet) the saved state is 20 simulated
    minutes ahead of wall time. The restarted lab continues from there instead of going back to
    wall time, where the saved state was in its future: the CRC errors' window stood still (no
    InterfaceErrorsRising in the whole second run) and the first run's maintenance window came back
    as ``pending`` next to the new one."""
    run_once(tmp_path, 20, "--fault-at", "30m")
    clock_file = tmp_path / "clock.json"
    saved = json.loads(clock_file.read_text())["now"] if clock_file.exists() else None
    second = run_once(tmp_path, 14, "--fault-at", "2m")
    assert "event firing InterfaceErrorsRising on agg-yuexiu-01" in second, second[-3000:]
    with sqlite3.connect(tmp_path / "vigil.db") as db:
        rows = db.execute(
            "SELECT created_at, starts_at, ends_at FROM silences WHERE created_by = 'lab' ORDER BY created_at"
        ).fetchall()
    (old_made, _, old_end), (new_made, new_start, _) = [[_ts(v) for v in row] for row in rows]
    assert old_end <= new_made < new_start  # the first run's window withdrawn, the new one announced ahead
    assert saved is not None and new_made >= saved  # the second run's clock never went back
    assert "simulated clock resumes at" in second, second[-2000:]


def _ts(value: str) -> float:
    """A timestamp as SQLite keeps it (naive UTC) in seconds since the epoch."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
