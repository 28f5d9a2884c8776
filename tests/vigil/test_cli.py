"""The `vigil` command as a user types it: check-config and poll."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.collectors.test_snmpd import COMMUNITY, IF_DESCR, Agent, _bulkwalk, snmpd  # noqa: F401 - fixture
from tests.conftest import vigil_command

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "site.yaml"


def vigil(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*vigil_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_check_config_accepts_the_shipped_example() -> None:
    done = vigil("check-config", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert "10 elements" in done.stdout and "1200 customers" in done.stdout


def test_check_config_prints_every_error_with_its_path(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    broken = (
        text.replace(
            "credential: lab, parent: cr-gz-01,      area: yuexiu", "credential: nope, parent: cr-gz-01, area: x"
        )
        .replace("receiver: noc-critical\n        matchers", "receiver: pager\n        matchers")
        .replace("hold_down: 5m", "hold_down: soon")
    )
    assert broken != text
    (tmp_path / "site.yaml").write_text(broken, encoding="utf-8")
    rows = (ROOT / "examples" / "customers.csv").read_text(encoding="utf-8").splitlines()
    rows[5] = rows[5].replace(",8613", ",86x3")
    (tmp_path / "customers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")

    done = vigil("check-config", str(tmp_path / "site.yaml"))
    assert done.returncode == 1
    # the model errors come first (the duration); fix it and every cross-reference error shows
    assert "contingency.hold_down" in done.stderr and "invalid duration" in done.stderr
    (tmp_path / "site.yaml").write_text(broken.replace("hold_down: soon", "hold_down: 5m"), encoding="utf-8")
    done = vigil("check-config", str(tmp_path / "site.yaml"))
    assert done.returncode == 1
    for path in (
        "elements[2].credential",
        "elements[2].area",
        "alerts.route.routes[0].receiver",
        "customers.csv:6.phone",
    ):
        assert path in done.stderr, done.stderr


def test_check_config_warns_about_one_v3_user_with_two_key_sets(tmp_path: Path) -> None:
    import json

    site = {
        "site": "two-keys",
        "snmp": {"credentials": {
            "north": {"version": "3", "user": "noc", "auth_protocol": "sha", "auth_key": "north-auth-1"},
            "south": {"version": "3", "user": "noc", "auth_protocol": "sha", "auth_key": "south-auth-2"},
        }},
        "elements": [{"name": "n-1", "address": "udp://127.0.0.1:16100", "credential": "north"}],
    }
    (tmp_path / "site.yaml").write_text(json.dumps(site), encoding="utf-8")
    done = vigil("check-config", str(tmp_path / "site.yaml"))
    assert done.returncode == 0, done.stderr  # valid: a warning, not an error
    assert "warning" in done.stderr and "snmp.credentials.south.user" in done.stderr, done.stderr
    assert "'noc'" in done.stderr and "'north' wins" in done.stderr, done.stderr


def test_check_config_prints_a_message_with_brackets_as_it_is(tmp_path: Path) -> None:
    """"http(s)://HOST[:PORT][/PATH]" is text, not console markup (it was a MarkupError traceback)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    (tmp_path / "site.yaml").write_text(text.replace('url: "http://127.0.0.1:9099/vigil"', 'url: "not a url"', 1),
                                        encoding="utf-8")
    (tmp_path / "customers.csv").write_text((ROOT / "examples" / "customers.csv").read_text(encoding="utf-8"),
                                            encoding="utf-8")
    done = vigil("check-config", str(tmp_path / "site.yaml"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "webhook_configs[0].url" in done.stderr and "HOST[:PORT][/PATH]" in done.stderr, done.stderr


def test_check_config_missing_file(tmp_path: Path) -> None:
    done = vigil("check-config", str(tmp_path / "nope.yaml"))
    assert done.returncode == 1 and "cannot read" in done.stderr


def test_poll_lists_what_snmpbulkwalk_lists(snmpd: Agent) -> None:  # noqa: F811 - fixture
    done = vigil("poll", f"udp://{snmpd.host}:{snmpd.port}", "--community", COMMUNITY, "--json", "--interval", "3.2")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    walked = _bulkwalk(snmpd, IF_DESCR)
    assert {str(r["index"]): r["descr"] for r in rows} == walked
    assert all("in_bps" in r for r in rows)


def test_poll_table_output_and_errors(snmpd: Agent) -> None:  # noqa: F811 - fixture
    done = vigil("poll", f"udp://{snmpd.host}:{snmpd.port}", "--community", COMMUNITY, "--interval", "0.5")
    assert done.returncode == 0 and "interfaces" in done.stdout
    assert vigil("poll", "127.0.0.1", "--community", "x").returncode == 2  # usage error
    dead = vigil(
        "poll", f"udp://127.0.0.1:{snmpd.port}", "--community", "wrong", "--timeout", "0.3", "--interval", "0.1"
    )
    assert dead.returncode == 2 and "poll failed" in dead.stderr


def test_run_and_poll_reject_bad_options() -> None:
    assert vigil("run", "--http", "nohost").returncode == 2
    assert vigil("run", "--speedup", "0").returncode == 2
    assert vigil("poll", "udp://127.0.0.1:161", "--interval", "0").returncode == 2
    assert vigil("poll", "udp://127.0.0.1:99999").returncode == 2  # port out of range


def test_run_without_the_postgresql_driver_says_what_to_install(tmp_path: Path) -> None:
    """`vigil run --db postgresql+psycopg://...` where psycopg is not installed: one line naming the
    package to install (and no password), not a ModuleNotFoundError traceback."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['psycopg'] = None\n", encoding="utf-8")
    done = subprocess.run(
        [*vigil_command(), "run", "--db", "postgresql+psycopg://vigil:pw-Secret@127.0.0.1:1/vigil",
         "--data-dir", str(tmp_path / "data"), "--duration", "5"],
        capture_output=True, text=True, timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(hide)},
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "pw-Secret" not in done.stderr, done.stderr[-2000:]
    [line] = [ln for ln in done.stderr.splitlines() if "cannot start" in ln]
    assert "psycopg" in line and "pip install 'vigil[postgres]'" in line, line
