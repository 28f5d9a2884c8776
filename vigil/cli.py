"""The ``vigil`` command: run the service, poll one agent, check a config."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from config import ConfigError, load_site
from config.redact import RedactSecrets

app = typer.Typer(add_completion=False, no_args_is_help=True, help="vigil: proactive care for telecom customers.")
console = Console()
err_console = Console(stderr=True)

_ADDR = re.compile(r"^(?:udp://)?(?P<host>[^:/\s]+):(?P<port>\d{1,5})$")


def _host_port(value: str, what: str) -> tuple[str, int]:
    m = re.match(r"^(?P<host>[^:\s]+):(?P<port>\d{1,5})$", value)
    if not m or not 0 < int(m["port"]) < 65536:
        raise typer.BadParameter(f"{what} must be HOST:PORT, got {value!r}")
    return m["host"], int(m["port"])


@app.command("check-config")
def check_config(path: Annotated[Path, typer.Argument(help="YAML site config")]) -> None:
    """Validate a site config; print every error with its field path (exit 1 if any)."""
    try:
        site = load_site(path)
    except ConfigError as err:
        err_console.print(f"[bold red]{escape(str(path))}: {len(err.issues)} error(s)[/]")
        for issue in err.issues:
            err_console.print(f"  [red]✗[/] [bold]{escape(issue.path)}[/]: {escape(issue.message)}", highlight=False)
        raise typer.Exit(1) from None
    cfg = site.config
    from collectors.profiles import ProfileError, load_profiles

    try:
        profiles = load_profiles([path.parent / d for d in cfg.snmp.profile_dirs])
    except ProfileError as err:
        err_console.print(f"[bold red]{escape(str(path))}: device profile error[/]")
        for problem in err.problems:
            err_console.print(f"  [red]✗[/] [bold]{escape(str(err.path))}[/]: {escape(problem)}", highlight=False)
        raise typer.Exit(1) from None
    for warning in site.warnings:  # valid, but will not work as it reads
        err_console.print(
            f"  [yellow]⚠ warning[/] [bold]{escape(warning.path)}[/]: {escape(warning.message)}", highlight=False
        )
    console.print(
        f"[green]✓[/] {path}: site '{cfg.site}', {len(cfg.areas)} areas, {len(cfg.elements)} elements, "
        f"{len(site.customers)} customers, {len(cfg.alerts.receivers)} receivers, {len(profiles)} device profiles"
    )


@app.command()
def poll(
    address: Annotated[str, typer.Argument(help="udp://HOST:PORT of the SNMP agent")],
    community: Annotated[str, typer.Option(help="SNMP community")] = "public",
    version: Annotated[str, typer.Option(help="SNMP version: 1 or 2c")] = "2c",
    interval: Annotated[float, typer.Option(
        help="seconds between the two polls; Net-SNMP's snmpd caches interface counters for 3 s "
        "(other agents up to 5 s or more), so a shorter interval can read the same values twice: 0 b/s"
    )] = 5.0,
    timeout: Annotated[float, typer.Option(help="seconds per request")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Poll one agent twice and print its interfaces with rates."""
    from collectors import SnmpError
    from collectors.probe import probe

    m = _ADDR.match(address)
    if not m or not 0 < int(m["port"]) < 65536:
        raise typer.BadParameter(f"address must be udp://HOST:PORT (port 1-65535), got {address!r}")
    if interval <= 0 or timeout <= 0:
        raise typer.BadParameter("--interval and --timeout must be > 0")
    if version not in ("1", "2c"):
        raise typer.BadParameter("version must be 1 or 2c (v3 comes with site configs)")
    try:
        rows = asyncio.run(
            probe(m["host"], int(m["port"]), community=community, version=version,
                  interval=interval, timeout=timeout)
        )
    except SnmpError as err:
        err_console.print(f"[red]poll failed:[/] {escape(str(err))}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps([r.as_dict() for r in rows], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{address} — {len(rows)} interfaces")
    for col in ("ifIndex", "ifName", "ifAlias", "oper", "speed Mb/s", "in b/s", "out b/s", "in err/s"):
        table.add_column(col, justify="right" if col not in ("ifName", "ifAlias") else "left")
    fmt = lambda v: "-" if v is None else f"{v:,.0f}"  # noqa: E731
    for r in rows:
        table.add_row(
            str(r.index), r.name or r.descr, r.alias, {1: "up", 2: "down"}.get(r.oper_status, str(r.oper_status)),
            str(r.high_speed_mbps), fmt(r.in_bps), fmt(r.out_bps),
            "-" if r.in_errors_per_s is None else f"{r.in_errors_per_s:.2f}",
        )
    console.print(table)


@app.command()
def run(
    config: Annotated[Path | None, typer.Option(help="YAML site config (default: the built-in lab network)")] = None,
    http: Annotated[str | None, typer.Option(help="HOST:PORT of the web app [default: 127.0.0.1:8080]")] = None,
    data_dir: Annotated[Path, typer.Option(help="where the database and SMS outbox live")] = Path("vigil-data"),
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: SQLite in the data dir)")] = None,
    speedup: Annotated[float | None, typer.Option(help="simulated time runs N times faster (lab default 60)")] = None,
    duration: Annotated[float | None, typer.Option(help="exit cleanly after this many wall seconds")] = None,
    fault_at: Annotated[str | None, typer.Option(help="lab: when the fault starts (simulated, e.g. 20m)")] = None,
    lab_port: Annotated[int, typer.Option(help="lab: first UDP port of the simulated agents")] = 16100,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Run vigil. Without --config it starts the built-in lab network with a scheduled fault."""
    from collectors.profiles import ProfileError
    from vigil.db import DatabaseDriverMissing
    from vigil.launch import launch

    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # httpx logs every request URL at INFO: Kannel's sendsms carries its password, the
    # dlr-url vigil's write token, and each customer's number and text
    if log_level.lower() != "debug":
        for noisy in ("httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:  # and no line names a password or token anyway
        handler.addFilter(RedactSecrets())
    host, port = _host_port(http, "--http") if http is not None else (None, None)
    if speedup is not None and speedup <= 0:
        raise typer.BadParameter("--speedup must be > 0")
    try:
        asyncio.run(
            launch(
                config=config, host=host, port=port, data_dir=data_dir, db=db, speedup=speedup,
                duration=duration, fault_at=fault_at, lab_port=lab_port,
                echo=lambda line: console.print(line, soft_wrap=True, highlight=False),
            )
        )
    except ConfigError as err:
        err_console.print(f"[bold red]{escape(str(err.source))}: {len(err.issues)} error(s)[/]")
        for issue in err.issues:
            err_console.print(f"  [red]✗[/] [bold]{escape(issue.path)}[/]: {escape(issue.message)}", highlight=False)
        raise typer.Exit(1) from None
    except ProfileError as err:
        err_console.print(f"[bold red]device profile error:[/] {escape(str(err))}", highlight=False)
        raise typer.Exit(1) from None
    except DatabaseDriverMissing as err:
        err_console.print(f"[bold red]cannot start:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except OSError as err:  # e.g. the HTTP or a lab port is taken
        err_console.print(f"[bold red]cannot start:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":  # pragma: no cover
    app()
