"""Load a site config: parse YAML -> validate models -> cross-reference checks -> customers file.

Errors are collected, not raised one at a time: :class:`ConfigError` carries every
:class:`ConfigIssue` with the field path (``elements[3].credential``) so ``vigil check-config``
can print them all. Only this package reads the environment and secret files.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import yaml
from pydantic import SecretStr, ValidationError

from config.models import Credential, Customer, EmailConfig, Route, SiteConfig, is_loopback

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "LoadedSite",
    "load_customers",
    "load_site",
    "resolve_secret",
    "validate_site",
]


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem: where (a field path, or ``file:line``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid; ``issues`` lists every problem found."""

    def __init__(self, source: str, issues: Sequence[ConfigIssue]) -> None:
        self.source = source
        self.issues = list(issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"{source}: {len(self.issues)} error(s)\n{lines}")


@dataclass(frozen=True)
class LoadedSite:
    """A validated site and its customers."""

    config: SiteConfig
    customers: list[Customer]
    source: str
    warnings: list[ConfigIssue] = dataclass_field(default_factory=list)  # valid, but probably not meant


def _loc_path(loc: Iterable[object]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def _pydantic_issues(err: ValidationError, prefix: str = "") -> list[ConfigIssue]:
    issues = []
    for e in err.errors():
        loc = list(e["loc"])
        # pydantic appends the tagged/union member or validator name; keep the field path only
        path = _loc_path(loc)
        message = e["msg"]
        if e["type"] == "extra_forbidden":
            message = "unknown field"
        issues.append(ConfigIssue(prefix + path, message))
    return issues


def resolve_secret(
    value: SecretStr | None, env: str | None, file: str | None, *, base: Path | None = None
) -> SecretStr | None:
    """A secret given inline, by environment variable name, or by file path (first line)."""
    if value is not None:
        return value
    if env is not None:
        if env not in os.environ:
            raise ValueError(f"environment variable {env} is not set")
        return SecretStr(os.environ[env])
    if file is not None:
        path = Path(file)
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            return SecretStr(path.read_text(encoding="utf-8").splitlines()[0].strip())
        except (OSError, IndexError) as err:
            raise ValueError(f"cannot read secret file {path}: {err}") from err
    return None


def _check_credential(name: str, cred: Credential, base: Path | None) -> list[ConfigIssue]:
    path = f"snmp.credentials.{name}"
    issues: list[ConfigIssue] = []
    for field in ("community", "auth_key", "priv_key"):
        given = [
            f
            for f in (field, f"{field}_env", f"{field}_file")
            if getattr(cred, f) is not None
        ]
        if len(given) > 1:
            issues.append(ConfigIssue(f"{path}.{given[1]}", f"conflicts with {given[0]}: give one"))
        try:
            resolve_secret(
                getattr(cred, field), getattr(cred, f"{field}_env"), getattr(cred, f"{field}_file"),
                base=base,
            )
        except ValueError as err:
            issues.append(ConfigIssue(f"{path}.{given[0] if given else field}", str(err)))
    if cred.version in ("1", "2c"):
        if not any(
            getattr(cred, f) is not None for f in ("community", "community_env", "community_file")
        ):
            issues.append(ConfigIssue(f"{path}.community", f"SNMP v{cred.version} needs a community"))
        if cred.user is not None:
            issues.append(ConfigIssue(f"{path}.user", "user is for SNMP v3 only"))
    else:
        if not cred.user:
            issues.append(ConfigIssue(f"{path}.user", "SNMP v3 needs a user"))
        has_auth = any(getattr(cred, f) is not None for f in ("auth_key", "auth_key_env", "auth_key_file"))
        has_priv = any(getattr(cred, f) is not None for f in ("priv_key", "priv_key_env", "priv_key_file"))
        if (cred.auth_protocol != "none") != has_auth:
            issues.append(ConfigIssue(f"{path}.auth_protocol", "auth_protocol and auth_key go together"))
        if (cred.priv_protocol != "none") != has_priv:
            issues.append(ConfigIssue(f"{path}.priv_protocol", "priv_protocol and priv_key go together"))
        if cred.priv_protocol != "none" and cred.auth_protocol == "none":
            issues.append(ConfigIssue(f"{path}.priv_protocol", "privacy needs authentication (authPriv)"))
    return issues


def _check_email(path: str, mail: EmailConfig, base: Path | None) -> list[ConfigIssue]:
    """Password given once and readable, paired with a user, never sent in clear off the host."""
    issues: list[ConfigIssue] = []
    has_password = mail.auth_password is not None or mail.auth_password_file is not None
    if mail.auth_password is not None and mail.auth_password_file is not None:
        issues.append(ConfigIssue(f"{path}.auth_password_file", "conflicts with auth_password: give one"))
    elif mail.auth_password_file is not None:
        try:
            resolve_secret(None, None, mail.auth_password_file, base=base)
        except ValueError as err:
            issues.append(ConfigIssue(f"{path}.auth_password_file", str(err)))
    if mail.auth_username is None and has_password:
        field = "auth_password" if mail.auth_password is not None else "auth_password_file"
        issues.append(ConfigIssue(f"{path}.{field}", "a password needs auth_username"))
    if mail.auth_username is not None:
        if not has_password:
            issues.append(
                ConfigIssue(f"{path}.auth_username", "needs auth_password or auth_password_file")
            )
        if not mail.require_tls and mail.port != 465 and not is_loopback(mail.host):
            issues.append(
                ConfigIssue(
                    f"{path}.require_tls",
                    f"credentials would cross the network in clear to {mail.host}: "
                    "set require_tls: true (or use port 465)",
                )
            )
    return issues


def _route_receivers(route: Route, path: str) -> Iterable[tuple[str, str]]:
    if route.receiver is not None:
        yield f"{path}.receiver", route.receiver
    for i, child in enumerate(route.routes):
        yield from _route_receivers(child, f"{path}.routes[{i}]")


def validate_site(site: SiteConfig, base: Path | None = None) -> list[ConfigIssue]:
    """Cross-reference checks the models cannot do alone."""
    issues: list[ConfigIssue] = []
    area_ids = {a.id for a in site.areas}
    seen_areas: set[str] = set()
    for i, area in enumerate(site.areas):
        if area.id in seen_areas:
            issues.append(ConfigIssue(f"areas[{i}].id", f"duplicate area '{area.id}'"))
        seen_areas.add(area.id)

    for name, cred in site.snmp.credentials.items():
        issues.extend(_check_credential(name, cred, base))

    names: dict[str, int] = {}
    addresses: dict[str, str] = {}
    for i, el in enumerate(site.elements):
        p = f"elements[{i}]"
        if el.name in names:
            issues.append(ConfigIssue(f"{p}.name", f"duplicate element '{el.name}'"))
        names.setdefault(el.name, i)
        if el.address in addresses:
            issues.append(
                ConfigIssue(f"{p}.address", f"{el.address} is also used by '{addresses[el.address]}'")
            )
        addresses.setdefault(el.address, el.name)
        if el.credential not in site.snmp.credentials:
            issues.append(ConfigIssue(f"{p}.credential", f"undefined credential '{el.credential}'"))
        if el.area is not None and el.area not in area_ids:
            issues.append(ConfigIssue(f"{p}.area", f"undefined area '{el.area}'"))
    parents = {el.name: el.parent for el in site.elements}
    for i, el in enumerate(site.elements):
        if el.parent is None:
            continue
        if el.parent not in parents:
            issues.append(ConfigIssue(f"elements[{i}].parent", f"undefined element '{el.parent}'"))
            continue
        seen, cur = {el.name}, el.parent
        while cur is not None and cur in parents:
            if cur in seen:
                issues.append(ConfigIssue(f"elements[{i}].parent", f"parent cycle through '{cur}'"))
                break
            seen.add(cur)
            cur = parents[cur]

    http = site.http
    tokens = [f for f in ("write_token", "write_token_env", "write_token_file") if getattr(http, f) is not None]
    if len(tokens) > 1:
        issues.append(ConfigIssue(f"http.{tokens[1]}", f"conflicts with {tokens[0]}: give one"))
    elif tokens:
        try:
            resolve_secret(http.write_token, http.write_token_env, http.write_token_file, base=base)
        except ValueError as err:
            issues.append(ConfigIssue(f"http.{tokens[0]}", str(err)))

    sms = site.contingency.sms
    if sms.sink == "kannel" and sms.kannel is None:
        issues.append(ConfigIssue("contingency.sms.kannel", "sink: kannel needs a kannel: {url, username, password}"))
    if sms.kannel is not None:
        given = [f for f in ("password", "password_env", "password_file") if getattr(sms.kannel, f) is not None]
        if len(given) != 1:
            issues.append(ConfigIssue("contingency.sms.kannel.password",
                                      "give exactly one of password, password_env, password_file"))
        else:
            try:
                resolve_secret(sms.kannel.password, sms.kannel.password_env, sms.kannel.password_file, base=base)
            except ValueError as err:
                issues.append(ConfigIssue(f"contingency.sms.kannel.{given[0]}", str(err)))
        # delivery reports asked for in so many words: say what they need (the default stays quiet)
        if sms.sink == "kannel" and sms.kannel.delivery_reports and "delivery_reports" in sms.kannel.model_fields_set:
            if not tokens:
                issues.append(ConfigIssue("contingency.sms.kannel.delivery_reports",
                                          "Kannel's delivery reports need http.write_token (the dlr-url carries it)"))
            if http.callback_url() is None:
                issues.append(ConfigIssue("http.public_url", f"http.listen {http.listen} is a wildcard: "
                                          "set public_url, the URL Kannel reaches vigil at for delivery reports"))

    if site.lab.enabled:
        if site.lab.fault_element is not None and site.lab.fault_element not in parents:
            issues.append(
                ConfigIssue("lab.fault_element", f"undefined element '{site.lab.fault_element}'")
            )
        for i, el in enumerate(site.elements):
            if el.host not in ("127.0.0.1", "localhost"):
                issues.append(
                    ConfigIssue(f"elements[{i}].address", "lab agents serve on 127.0.0.1 only")
                )

    for name in site.traps.credentials or []:
        if name not in site.snmp.credentials:
            issues.append(ConfigIssue("traps.credentials", f"undefined credential '{name}'"))
    for name in site.traps.engine_ids:
        cred = site.snmp.credentials.get(name)
        if cred is None or cred.version != "3":
            issues.append(ConfigIssue(f"traps.engine_ids.{name}", f"'{name}' is not an SNMPv3 credential"))

    receivers = {r.name for r in site.alerts.receivers}
    seen_r: set[str] = set()
    for i, r in enumerate(site.alerts.receivers):
        if r.name in seen_r:
            issues.append(ConfigIssue(f"alerts.receivers[{i}].name", f"duplicate receiver '{r.name}'"))
        seen_r.add(r.name)
        for j, mail in enumerate(r.email_configs):
            issues.extend(_check_email(f"alerts.receivers[{i}].email_configs[{j}]", mail, base))
        for field in ("dingtalk_configs", "feishu_configs"):
            for j, robot in enumerate(getattr(r, field)):
                if robot.secret_file is not None:
                    try:
                        resolve_secret(None, None, robot.secret_file, base=base)
                    except ValueError as err:
                        path = f"alerts.receivers[{i}].{field}[{j}].secret_file"
                        issues.append(ConfigIssue(path, str(err)))
    if site.alerts.route.receiver is None:
        issues.append(ConfigIssue("alerts.route.receiver", "the root route needs a receiver"))
    for path, name in _route_receivers(site.alerts.route, "alerts.route"):
        if name not in receivers:
            issues.append(ConfigIssue(path, f"undefined receiver '{name}' used in route"))
    return issues


def _engine_id(text: str) -> str:
    return text.strip().lower().removeprefix("0x").replace(":", "")


def site_warnings(site: SiteConfig, base: Path | None = None) -> list[ConfigIssue]:
    """What is valid but will not work as the config reads: logged at startup, shown by check-config.

    Two SNMPv3 credentials accepted for traps with the same user name and different keys: USM holds
    one key set per (engine ID, user name), and informs are all authenticated against vigil's own
    engine ID, so the trap listener accepts informs with the first one's keys only (it registers
    the credentials in order: ``traps.credentials``, else ``snmp.credentials``). v3 traps from the
    engine IDs each lists in ``traps.engine_ids`` are accepted with its own keys, unless two list
    the same engine ID.
    """
    warnings: list[ConfigIssue] = []
    traps = site.traps
    if not traps.enabled:
        return warnings
    names = traps.credentials if traps.credentials is not None else list(site.snmp.credentials)
    first: dict[tuple[str, str], tuple[str, tuple[object, ...]]] = {}  # (engine, user) -> credential
    for name in dict.fromkeys(names):
        cred = site.snmp.credentials.get(name)
        if cred is None or cred.version != "3" or not cred.user:
            continue
        try:
            auth = resolve_secret(cred.auth_key, cred.auth_key_env, cred.auth_key_file, base=base)
            priv = resolve_secret(cred.priv_key, cred.priv_key_env, cred.priv_key_file, base=base)
        except ValueError:
            continue  # an error of its own (validate_site)
        keys = (
            cred.auth_protocol, auth.get_secret_value() if auth else None,
            cred.priv_protocol, priv.get_secret_value() if priv else None,
        )
        engines = traps.engine_ids.get(name, [])
        for engine in ("", *dict.fromkeys(_engine_id(e) for e in engines)):
            winner, winner_keys = first.setdefault((engine, cred.user), (name, keys))
            if winner == name or winner_keys == keys:
                continue
            if not engine:
                others = " (v3 traps from the engine IDs each lists in traps.engine_ids are accepted with its own keys)"
                message = (
                    f"SNMPv3 user '{cred.user}' is also in credential '{winner}' with other keys: the trap "
                    f"listener authenticates informs against vigil's one engine ID, which holds one key set "
                    f"per user, so '{winner}' wins and informs sent with the keys of '{name}' are rejected"
                    f"{others if engines or traps.engine_ids.get(winner) else ''}; give '{name}' another user name"
                )
                warnings.append(ConfigIssue(f"snmp.credentials.{name}.user", message))
            else:
                message = (
                    f"engine ID {engine} is listed for SNMPv3 user '{cred.user}' by credentials '{winner}' and "
                    f"'{name}' with other keys: '{winner}' wins, v3 traps from it with the keys of '{name}' "
                    "are rejected"
                )
                warnings.append(ConfigIssue(f"traps.engine_ids.{name}", message))
    return warnings


def load_customers(path: Path, site: SiteConfig) -> tuple[list[Customer], list[ConfigIssue]]:
    """Read the customers CSV (header: account,phone,area,element[,grade,language,name,sms])."""
    issues: list[ConfigIssue] = []
    customers: list[Customer] = []
    areas = {a.id for a in site.areas}
    elements = {e.name for e in site.elements}
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as err:
        return [], [ConfigIssue("customers.file", f"cannot read {path}: {err.strerror}")]
    with handle:
        reader = csv.DictReader(handle)
        missing = {"account", "phone", "area", "element"} - set(reader.fieldnames or [])
        if missing:
            return [], [ConfigIssue(f"{path}:1", f"missing column(s) {', '.join(sorted(missing))}")]
        phones: set[str] = set()
        for line, row in enumerate(reader, start=2):
            where = f"{path.name}:{line}"
            clean = {k: v for k, v in row.items() if k and v not in (None, "")}
            try:
                customer = Customer.model_validate(clean)
            except ValidationError as err:
                issues.extend(
                    ConfigIssue(f"{where}.{_loc_path(e['loc'])}", e["msg"]) for e in err.errors()
                )
                continue
            if customer.area not in areas:
                issues.append(ConfigIssue(f"{where}.area", f"undefined area '{customer.area}'"))
            if customer.element not in elements:
                issues.append(ConfigIssue(f"{where}.element", f"undefined element '{customer.element}'"))
            if customer.phone in phones:
                issues.append(ConfigIssue(f"{where}.phone", f"duplicate phone {customer.phone}"))
            phones.add(customer.phone)
            customers.append(customer)
    return customers, issues


def load_site(path: str | Path) -> LoadedSite:
    """Load and validate a YAML site config and its customers file; raise ConfigError."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(source, [ConfigIssue("<file>", f"cannot read: {err.strerror}")]) from err
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<yaml>"
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(source, [ConfigIssue(where, f"invalid YAML: {problem}")]) from err
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, [ConfigIssue("<root>", "the config must be a mapping")])
    try:
        site = SiteConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(source, _pydantic_issues(err)) from err
    issues = validate_site(site, base=path.parent)
    customers: list[Customer] = []
    if site.customers.file is not None:
        cpath = Path(site.customers.file)
        if not cpath.is_absolute():
            cpath = path.parent / cpath
        customers, cissues = load_customers(cpath, site)
        issues.extend(cissues)
    if issues:
        raise ConfigError(source, issues)
    return LoadedSite(site, customers, source, site_warnings(site, base=path.parent))
