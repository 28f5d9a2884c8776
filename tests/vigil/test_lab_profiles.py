"""The shipped device profiles against the lab's agents: the detectors' series come out right."""

from __future__ import annotations

from collectors.client import Client
from collectors.profiles import ProfileCollector, load_profiles
from collectors.targets import targets_for
from tests.conftest import free_udp_range
from vigil.clock import Clock
from vigil.lab import LabNetwork, demo_site


async def test_profiles_emit_cpu_optics_and_dsl_series() -> None:
    site, _ = demo_site(base_port=free_udp_range(10))
    clock = Clock(60)
    lab = LabNetwork(site, clock.now, [])
    await lab.start()
    client = Client()
    try:
        targets = {t.element: t for t in targets_for(site)}
        profiles = load_profiles()
        series: dict[str, dict[str, list]] = {}
        for element in ("olt-yuexiu-01", "dslam-yuexiu-01", "cr-gz-01"):
            samples = await ProfileCollector(client, targets[element], profiles, clock=clock.now).collect()
            series[element] = {}
            for s in samples:
                series[element].setdefault(s.metric, []).append(s)
    finally:
        client.close()
        await lab.stop()
    optics = series["olt-yuexiu-01"]["optical_rx_dbm"]
    assert optics and all("Rx" in s.label("entPhysicalName") for s in optics)
    assert all(-30 < s.value < -10 for s in optics)
    # the Tx sensors are exported raw but are not the RX series the detectors watch
    raw = series["olt-yuexiu-01"]["optical_power_dbm"]
    assert len(raw) > len(optics) and any("Tx" in s.label("entPhysicalName") for s in raw)
    dsl = series["dslam-yuexiu-01"]["dsl_snr_margin_db"]
    assert dsl and all(3 < s.value < 20 for s in dsl) and all(s.label("ifName") for s in dsl)
    for element in series:
        (cpu,) = series[element]["cpu_utilization"]
        assert 0 <= cpu.value <= 1
    assert "optical_rx_dbm" not in series["cr-gz-01"]


async def test_a_poll_read_late_never_makes_a_full_link_more_than_full() -> None:
    """A saturated uplink (98 % of its speed) polled twice a simulated minute apart, the first reply
    read 12 simulated seconds late (a loop stalled for 200 ms at 60x): the counters grew by a full
    minute in 48 seconds of sample time. The rate is capped at the speed, never 122 %."""
    from vigil.lab import Fault, FaultKind

    site, _ = demo_site(base_port=free_udp_range(10))
    t0 = 1_800_000_000.0
    now = {"agent": t0, "lag": 0.0}
    saturated = Fault("agg-yuexiu-01", 1, FaultKind.SATURATION, t0, t0 + 3600, 0.98)
    lab = LabNetwork(site, lambda: now["agent"], [saturated], boot=t0)
    await lab.start()
    client = Client()
    try:
        target = next(t for t in targets_for(site) if t.element == "agg-yuexiu-01")
        collector = ProfileCollector(client, target, load_profiles(), clock=lambda: now["agent"] + now["lag"])
        now.update(agent=t0 + 120, lag=12.0)
        await collector.collect()
        now.update(agent=t0 + 180, lag=0.0)
        samples = await collector.collect()
    finally:
        client.close()
        await lab.stop()
    uplink = [s for s in samples if s.label("ifIndex") == "1"]
    utilization = [s.value for s in uplink if s.metric in ("if_in_utilization", "if_out_utilization")]
    assert len(utilization) == 2 and all(0.9 < u <= 1.0 for u in utilization), utilization
