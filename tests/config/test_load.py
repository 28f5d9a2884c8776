"""Config loading: every error is reported with its field path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from config import ConfigError, load_site, parse_duration

GOOD = """
site: test
areas:
  - {id: north, name: North}
  - {id: south, name: South}
snmp:
  credentials:
    lab: {version: "2c", community: public}
    v3: {version: "3", user: noc, auth_protocol: sha, auth_key_env: VIGIL_TEST_AUTH,
         priv_protocol: aes, priv_key_file: priv.key}
elements:
  - {name: cr-1, role: core, address: "udp://127.0.0.1:16100", credential: lab}
  - {name: agg-n, role: aggregation, address: "udp://127.0.0.1:16101", credential: v3,
     parent: cr-1, area: north}
customers:
  file: customers.csv
alerts:
  route:
    receiver: noc
    routes:
      - {receiver: oncall, matchers: {severity: critical}}
  receivers:
    - name: noc
      webhook_configs: [{url: "http://127.0.0.1:9/hook"}]
    - name: oncall
"""

CUSTOMERS = "account,phone,area,element,grade,language\nA1,8613800000001,north,agg-n,vip,en\n"


def write(tmp: Path, config: str, customers: str = CUSTOMERS) -> Path:
    (tmp / "customers.csv").write_text(customers, encoding="utf-8")
    (tmp / "priv.key").write_text("privsecret\n", encoding="utf-8")
    path = tmp / "site.yaml"
    path.write_text(textwrap.dedent(config), encoding="utf-8")
    return path


def issues_of(path: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_site(path)
    return {i.path: i.message for i in info.value.issues}


def test_good_config_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "authsecret")
    site = load_site(write(tmp_path, GOOD))
    assert [e.name for e in site.config.elements] == ["cr-1", "agg-n"]
    assert site.customers[0].phone == "8613800000001"
    assert site.config.alerts.route.routes[0].receiver == "oncall"
    # secrets never show in reprs
    assert "public" not in repr(site.config.snmp.credentials["lab"])


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        ("credential: v3,", "credential: nope,", "elements[1].credential", "undefined credential 'nope'"),
        ("parent: cr-1,", "parent: ghost,", "elements[1].parent", "undefined element 'ghost'"),
        ("area: north}", "area: west}", "elements[1].area", "undefined area 'west'"),
        ("receiver: oncall,", "receiver: pager,", "alerts.route.routes[0].receiver", "undefined receiver 'pager'"),
        ('"udp://127.0.0.1:16101"', '"tcp://x"', "elements[1].address", "udp://HOST:PORT"),
        ("site: test", "site: test\nbogus: 1", "bogus", "unknown field"),
        ("role: core,", "role: mainframe,", "elements[0].role", "Input should be"),
        ("community: public}", "community: public, user: x}", "snmp.credentials.lab.user", "v3 only"),
        ('"http://127.0.0.1:9/hook"}', '"http://127.0.0.1:9/hook", timeout: 0}',
         "alerts.receivers[0].webhook_configs[0].timeout", "greater than 0"),
        ("receiver: noc\n", "receiver: noc\n    group_interval: 0s\n", "alerts.route.group_interval",
         "greater than 0"),
        ("receiver: noc\n", "receiver: noc\n    repeat_interval: .inf\n", "alerts.route.repeat_interval",
         "finite"),
    ],
)
def test_broken_field_is_named(tmp_path, monkeypatch, old, new, path, fragment):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "authsecret")
    assert old in GOOD
    issues = issues_of(write(tmp_path, GOOD.replace(old, new)))
    assert path in issues, issues
    assert fragment in issues[path]


def test_every_error_is_reported_at_once(tmp_path):
    # env var missing AND a bad credential reference AND a bad customer row
    broken = GOOD.replace("credential: lab}", "credential: zzz}")
    customers = CUSTOMERS + "A2,notaphone,north,agg-n,standard,zh-CN\nA3,8613800000003,east,agg-n,,\n"
    issues = issues_of(write(tmp_path, broken, customers))
    assert "snmp.credentials.v3.auth_key_env" in issues
    assert "environment variable VIGIL_TEST_AUTH is not set" in issues["snmp.credentials.v3.auth_key_env"]
    assert "elements[0].credential" in issues
    assert "customers.csv:3.phone" in issues
    assert issues["customers.csv:4.area"] == "undefined area 'east'"


def test_parent_cycle(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "x")
    cyc = GOOD.replace("role: core,", "role: core, parent: agg-n,")
    issues = issues_of(write(tmp_path, cyc))
    assert any("cycle" in m for m in issues.values())


def test_invalid_yaml_names_line(tmp_path):
    issues = issues_of(write(tmp_path, "areas: [\n  - {id: a\n"))
    assert any(p.startswith("line ") for p in issues)


def test_missing_file(tmp_path):
    issues = issues_of(tmp_path / "nope.yaml")
    assert "cannot read" in issues["<file>"]


@pytest.mark.parametrize(
    ("value", "seconds"), [("30s", 30.0), ("5m", 300.0), ("4h", 14400.0), (12, 12.0), ("250ms", 0.25)]
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["5 minutes", "-1", True, None, float("inf"), float("nan"), -0.5])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_detectors_composite_is_on_by_default_and_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "x")
    assert load_site(write(tmp_path, GOOD)).config.detectors.composite is True
    off = load_site(write(tmp_path, GOOD + "detectors:\n  composite: false\n"))
    assert off.config.detectors.composite is False


@pytest.mark.parametrize("value", ["maybe", "1", "0.175", "null"])
def test_bad_detectors_composite_is_named(tmp_path, monkeypatch, value):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "x")
    issues = issues_of(write(tmp_path, GOOD + f"detectors:\n  composite: {value}\n"))
    assert issues == {"detectors.composite": "Input should be a valid boolean"}, issues


def test_quiet_hours_and_inhibit_rules_load(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "x")
    extra = (
        "contingency:\n  sms:\n    quiet_hours: {start: \"22:30\", end: \"07:30\", timezone: Asia/Urumqi}\n"
    )
    site = load_site(write(tmp_path, GOOD.replace("    - name: oncall\n", "    - name: oncall\n  inhibit_rules:\n"
                                                  "    - {source_matchers: ['severity=\"critical\"'],"
                                                  " target_matchers: ['severity=~\"warning|info\"'],"
                                                  " equal: [element]}\n") + extra)).config
    quiet = site.contingency.sms.quiet_hours
    assert quiet is not None and (quiet.start, quiet.end, quiet.timezone) == ("22:30", "07:30", "Asia/Urumqi")
    [rule] = site.alerts.inhibit_rules or []
    assert rule.equal == ["element"] and rule.target_matchers == ['severity=~"warning|info"']
    assert load_site(write(tmp_path, GOOD)).config.alerts.inhibit_rules is None  # the shipped rules


@pytest.mark.parametrize(
    ("fragment", "path", "message"),
    [
        ("contingency:\n  sms:\n    quiet_hours: {start: \"24:00\"}\n", "contingency.sms.quiet_hours.start", "HH:MM"),
        ("contingency:\n  sms:\n    quiet_hours: {timezone: Mars/Base}\n", "contingency.sms.quiet_hours.timezone",
         "unknown time zone"),
    ],
)
def test_bad_quiet_hours_are_named(tmp_path, monkeypatch, fragment, path, message):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "x")
    issues = issues_of(write(tmp_path, GOOD + fragment))
    assert path in issues and message in issues[path], issues


def test_bad_inhibit_matcher_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "x")
    rules = "  inhibit_rules:\n    - {source_matchers: [element=agg-n]}\n"
    bad = GOOD.replace("    - name: oncall\n", "    - name: oncall\n" + rules)
    issues = issues_of(write(tmp_path, bad))
    assert any(p.startswith("alerts.inhibit_rules[0].source_matchers") and "expected name" in m
               for p, m in issues.items()), issues


def test_customers_may_opt_out_of_texts(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "authsecret")
    rows = ("account,phone,area,element,sms\nA1,8613800000001,north,agg-n,no\n"
            "A2,8613800000002,north,agg-n,\nA3,8613800000003,north,agg-n,yes\n")
    site = load_site(write(tmp_path, GOOD, rows))
    assert [c.sms for c in site.customers] == [False, True, True]
    issues = issues_of(write(tmp_path, GOOD, rows + "A4,8613800000004,north,agg-n,maybe\n"))
    assert "customers.csv:5.sms" in issues


KANNEL = ("contingency:\n  sms:\n    sink: kannel\n"
          "    kannel: {url: \"http://127.0.0.1:13013\", username: u, password: p%s}\n")


def test_kannel_delivery_reports_need_a_token_and_a_url_only_when_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "x")
    # an existing config (no token, wildcard listen) stays valid: reports are simply off
    site = load_site(write(tmp_path, GOOD + KANNEL % "" + "http: {listen: \"0.0.0.0:8080\"}\n"))
    assert site.config.contingency.sms.kannel.delivery_reports is True
    assert site.config.http.callback_url() is None
    # asked for in so many words: each missing piece is named
    issues = issues_of(write(tmp_path, GOOD + KANNEL % ", delivery_reports: true"
                             + "http: {listen: \"0.0.0.0:8080\"}\n"))
    assert "http.write_token" in issues["contingency.sms.kannel.delivery_reports"]
    assert "set public_url" in issues["http.public_url"]
    ok = load_site(write(tmp_path, GOOD + KANNEL % ", delivery_reports: true"
                         + "http: {listen: \"0.0.0.0:8080\", write_token: t,"
                           " public_url: \"https://vigil.example.com:8443/noc/\"}\n"))
    assert ok.config.http.callback_url() == "https://vigil.example.com:8443/noc"
    assert load_site(write(tmp_path, GOOD + "http: {listen: \"10.0.0.5:8080\"}\n")).config.http.callback_url() \
        == "http://10.0.0.5:8080"


@pytest.mark.parametrize("url", ["vigil.example.com", "ftp://vigil", "https://vigil/x?token=1",
                                 "https://user:pw@vigil", "https://vigil/#top"])
def test_a_bad_public_url_is_named(tmp_path, monkeypatch, url):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "x")
    issues = issues_of(write(tmp_path, GOOD + f"http: {{public_url: \"{url}\"}}\n"))
    assert "http.public_url" in issues and "http(s)://HOST[:PORT][/PATH]" in issues["http.public_url"], issues


# -- warnings: valid configs that will not work as they read -------------------------------------

TWO_NOC = GOOD.replace(
    "         priv_protocol: aes, priv_key_file: priv.key}\n",
    "         priv_protocol: aes, priv_key_file: priv.key}\n"
    "    v3-south: {version: \"3\", user: noc, auth_protocol: sha, auth_key: south-auth,\n"
    "               priv_protocol: aes, priv_key: south-priv}\n",
)


def test_same_v3_user_with_other_keys_is_a_warning_naming_both_and_the_winner(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "authsecret")
    loaded = load_site(write(tmp_path, TWO_NOC))  # valid: traps with per-device engine IDs work
    (warning,) = loaded.warnings
    assert warning.path == "snmp.credentials.v3-south.user"
    assert "'noc'" in warning.message and "'v3'" in warning.message and "'v3-south'" in warning.message
    assert "'v3' wins" in warning.message and "informs" in warning.message


def test_same_v3_user_warning_follows_the_trap_credentials_and_their_order(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "authsecret")
    first_south = TWO_NOC + "traps: {credentials: [v3-south, v3]}\n"
    (warning,) = load_site(write(tmp_path, first_south)).warnings
    assert warning.path == "snmp.credentials.v3.user" and "'v3-south' wins" in warning.message
    only_one = TWO_NOC + "traps: {credentials: [v3]}\n"
    assert load_site(write(tmp_path, only_one)).warnings == []
    disabled = TWO_NOC + "traps: {enabled: false}\n"
    assert load_site(write(tmp_path, disabled)).warnings == []


def test_same_v3_user_with_the_same_keys_is_no_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "south-auth")
    (tmp_path / "priv.key").write_text("south-priv\n")
    same = TWO_NOC.replace("priv_key_file: priv.key}", "priv_key: south-priv}")
    assert load_site(write(tmp_path, same)).warnings == []


def test_an_engine_id_listed_for_both_credentials_of_one_user_is_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_AUTH", "authsecret")
    engines = TWO_NOC + (
        "traps: {engine_ids: {v3: ['0x80001f8880aabbccdd'],"
        " v3-south: ['80:00:1f:88:80:aa:bb:cc:dd', '0x8000000001']}}\n"
    )
    warnings = {w.path: w.message for w in load_site(write(tmp_path, engines)).warnings}
    assert set(warnings) == {"snmp.credentials.v3-south.user", "traps.engine_ids.v3-south"}
    assert "80001f8880aabbccdd" in warnings["traps.engine_ids.v3-south"]
    assert "'v3' wins" in warnings["traps.engine_ids.v3-south"]
    assert "accepted with its own keys" in warnings["snmp.credentials.v3-south.user"]
