"""Build a run from the command line's choices: the lab network or a site config."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from config import ConfigError, ConfigIssue, ElementRole, SiteConfig, load_site
from vigil.clock import CLOCK_FILE, Clock, read_saved_time
from vigil.runtime import Runtime, RuntimeOptions

__all__ = ["launch", "lab_fault_element", "resume_time", "simulated_clock"]

log = logging.getLogger("vigil")


def lab_fault_element(site: SiteConfig) -> str:
    """Where the lab's demo fault strikes: the configured element or the first area aggregation."""
    if site.lab.fault_element:
        return site.lab.fault_element
    for el in site.elements:
        if el.role is ElementRole.AGGREGATION and el.area == "yuexiu":
            return el.name
    for el in site.elements:
        if el.role is ElementRole.AGGREGATION and el.area:
            return el.name
    raise ConfigError("lab", [ConfigIssue("lab.fault_element", "no aggregation element to fault")])


def lab_works_element(site: SiteConfig, fault_element: str) -> str | None:
    """Where the lab's planned works happen: an OLT of an area the demo fault does not touch."""
    fault_area = next((el.area for el in site.elements if el.name == fault_element), None)
    for el in site.elements:
        if el.role is ElementRole.OLT and el.area and el.area != fault_area:
            return el.name
    return None


def resume_time(data_dir: Path) -> float | None:
    """The simulated time the data dir's state was saved at, or None (nothing saved yet).

    The clock file a simulated run keeps (``clock.json``), or the newest sample of the detector
    state (a data dir saved before the clock file existed), whichever is later.
    """
    saved = (read_saved_time(data_dir / CLOCK_FILE), _detector_state_time(data_dir / "detectors.npz"))
    return max((t for t in saved if t is not None), default=None)


def _detector_state_time(path: Path) -> float | None:
    """The newest sample time in a saved detector state (its forecaster's last sample times), or None."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            times = data["forecast_t_last"]
    except (OSError, ValueError, KeyError, EOFError):  # none yet, or damaged: the run warns about it
        return None
    finite = times[np.isfinite(times)]
    return float(finite.max()) if finite.size else None


def simulated_clock(speedup: float, data_dir: Path) -> tuple[Clock, str | None]:
    """A simulated clock that never runs behind the state a previous run saved in ``data_dir``.

    A simulated clock (the lab's, or any speedup) is ahead of wall time by the end of a run; one
    started from wall time again would put the saved detector state, alerts, silences and texts
    in its future (error windows frozen, old maintenance windows pending again). It continues
    from where the saved state left off instead, or from now when that is later. Also returns a
    line saying so for the banner (None on a fresh data dir).
    """
    wall = time.time()
    saved = resume_time(data_dir)
    if saved is None or saved <= wall:
        return Clock(speedup=speedup), None
    ahead = saved - wall
    log.info("simulated clock resumes at %s, where the state in %s left off (%.0f min ahead of wall time)",
             _iso(saved), data_dir, ahead / 60)  # fmt: skip
    line = (f"  simulated clock resumes at {_iso(saved)}, where the saved state left off "
            f"({ahead / 3600:.1f} h ahead of wall time)")  # fmt: skip
    return Clock(speedup=speedup, start=saved), line


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def launch(
    *,
    config: Path | None,
    host: str | None,
    port: int | None,
    data_dir: Path,
    db: str | None,
    speedup: float | None,
    duration: float | None,
    fault_at: str | None,
    lab_port: int,
    echo: Callable[[str], None],
) -> None:
    """Start vigil and serve until ``duration`` passes (or forever)."""
    from config.models import parse_duration

    if config is None:
        from vigil.lab import demo_site

        site, customers = demo_site(base_port=lab_port)
        site = site.model_copy(update={"lab": site.lab.model_copy(update={"enabled": True})})
        source = "built-in lab network (Guangzhou demo site)"
    else:
        loaded = load_site(config)
        site, customers, source = loaded.config, loaded.customers, str(config)
        for warning in loaded.warnings:
            log.warning("%s: %s: %s", config, warning.path, warning.message)

    if host is None or port is None:
        host, _, p = site.http.listen.rpartition(":")
        port = int(p)
    lab = None
    scenario_lines: list[str] = []
    if site.lab.enabled:
        from vigil.lab import LabNetwork, default_scenario

        clock, resumed = simulated_clock(speedup if speedup is not None else site.lab.speedup, data_dir)
        start = clock.now()
        faults = []
        if site.lab.scenario:
            at = parse_duration(fault_at) if fault_at is not None else site.lab.fault_at
            element = lab_fault_element(site)
            faults = default_scenario(start, fault_at=at, element=element,
                                      works_element=lab_works_element(site, element))
            scenario_lines = faults.describe()
        lab = LabNetwork(site, clock.now, faults)
    elif speedup is not None and speedup != 1:
        clock, resumed = simulated_clock(speedup, data_dir)
    else:
        clock, resumed = Clock(), None  # wall time: a real network

    url = f"http://{host}:{port}"
    banner = [
        f"[bold]vigil[/] — {source}",
        f"  {len(site.areas)} areas, {len(site.elements)} elements, {len(customers)} customers",
    ]
    if clock.speedup != 1:
        banner.append(
            f"  [yellow]simulated clock: {clock.speedup:g}× real time[/] "
            f"(1 simulated minute = {60 / clock.speedup:g} s)"
        )
    if resumed is not None:
        banner.append(resumed)
    if lab is not None:
        first = site.elements[0]
        banner.append(f"  lab agents: udp://127.0.0.1:{first.port}.. (SNMP v2c, community 'public')")
    for line in scenario_lines:
        mins = line.split(":", 1)[0]
        banner.append(f"  scenario {mins}:{line.split(':', 1)[1]}")
    banner += [
        f"  hotline agent page:  {url}/agent",
        f"  API:                 {url}/api/v1/incidents  (docs {url}/api/docs)",
        f"  Prometheus metrics:  {url}/metrics",
        f"  data:                {data_dir.resolve()}",
    ]
    options = RuntimeOptions(
        http_host=host, http_port=port, data_dir=data_dir, db_url=db, speedup=clock.speedup,
        duration=duration, banner=banner, echo=echo, config_dir=config.parent if config is not None else None,
    )
    runtime = Runtime(site, customers, options, clock=clock, lab=lab)
    await runtime.run()
