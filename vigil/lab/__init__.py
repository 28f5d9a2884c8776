"""The embedded lab network: a demo site of simulated SNMP agents with a scheduled fault.

``demo_site()`` builds the Guangzhou demo inventory and customers, ``default_scenario()`` the
fault story, ``LabNetwork`` serves one SNMP agent per element on 127.0.0.1 inside the running
asyncio loop, with counters and gauges (CPU, optic DOM, DSL line) from the deterministic
``TrafficModel``; ``FaultKind`` lists the degradations a scenario can inject.
"""

from vigil.lab.agent import LabNetwork
from vigil.lab.device import Device, Port, PortKind, dsl_lines, lab_devices, optic_ports
from vigil.lab.scenario import Fault, FaultKind, PlannedWork, Scenario, default_scenario
from vigil.lab.site import ACCESS_ROLES, demo_site
from vigil.lab.traffic import DslReading, OpticReading, PortCounters, TrafficModel, diurnal

__all__ = [
    "ACCESS_ROLES",
    "Device",
    "DslReading",
    "Fault",
    "FaultKind",
    "LabNetwork",
    "OpticReading",
    "Port",
    "PortCounters",
    "PortKind",
    "Scenario",
    "TrafficModel",
    "PlannedWork",
    "default_scenario",
    "demo_site",
    "diurnal",
    "dsl_lines",
    "lab_devices",
    "optic_ports",
]
