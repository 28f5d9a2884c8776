"""InterfaceDown from polling a real agent: snmpsim's Linux recording, a port taken down by snmpset."""

from __future__ import annotations

from collectors.profiles import ProfileCollector, load_profiles
from collectors.snmp import SnmpClient
from detectors.event import EventState
from detectors.traps import DETECTOR_LINK_POLL, INTERFACE_DOWN, TrapRules
from tests.collectors.test_lookups import COMMUNITY, Clock, snmpset
from tests.collectors.test_snmpsim import WRITABLE_OPER_STATUS, Simulator, snmpsim  # noqa: F401


async def test_a_port_that_goes_down_on_a_real_agent_raises_interface_down(snmpsim: Simulator) -> None:  # noqa: F811
    client, clock, rules = SnmpClient(), Clock(), TrapRules()
    collector = ProfileCollector(client, snmpsim.target(COMMUNITY, "linux-1"), load_profiles(), clock)

    async def poll() -> list:
        samples = await collector.collect()
        clock.now += 60.0
        return rules.observe(samples)

    try:
        first = await collector.collect()
        status = {(s.metric, s.label("ifIndex")): s.value for s in first if s.metric.endswith("Status")}
        # the recording: port 2 shut, ports 3-4 enabled but never up, port 6 up
        assert status[("ifAdminStatus", "2")] == 2 and status[("ifOperStatus", "3")] == 2
        assert status[("ifAdminStatus", "3")] == 1 and status[("ifOperStatus", "6")] == 1
        assert rules.observe(first) == [] and await poll() == []  # shut and never-up ports raise nothing
        snmpset(snmpsim, WRITABLE_OPER_STATUS, "i", "2")
        [down] = await poll()
        assert (down.name, down.state, down.detector) == (INTERFACE_DOWN, EventState.FIRING, DETECTOR_LINK_POLL)
        assert down.label("ifIndex") == "6" and down.label("ifName") and down.element == "linux-1"
        assert await poll() == []  # still down: one alert
        snmpset(snmpsim, WRITABLE_OPER_STATUS, "i", "1")
        [up] = await poll()
        assert up.state is EventState.RESOLVED and up.fingerprint == down.fingerprint
    finally:
        snmpset(snmpsim, WRITABLE_OPER_STATUS, "i", "1")
        client.close()
