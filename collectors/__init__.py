"""collectors: SNMP polling of network elements into ``Sample`` values, and trap reception.

``client`` routes requests (``v2c``: lean asyncio BER codec for v1/v2c; ``snmp``: pysnmp for
SNMPv3), ``profiles`` says what to poll per device (YAML, by sysObjectID), ``ifmib`` is the
interface collector, ``counters`` turns counters into rates safely, ``poller`` runs many
targets, ``exporter`` re-exposes raw values under snmp_exporter's names, ``traps`` listens for
traps and informs (``trap.Trap`` values), ``targets`` builds targets from the site config and
``probe`` is the one-shot report behind ``vigil poll``.
"""

from collectors.client import Client, SnmpReader
from collectors.counters import RateCalculator
from collectors.exporter import SnmpMetricsExporter
from collectors.ifmib import IfMibCollector, Interface
from collectors.poller import CONSECUTIVE_FAILURES, UP, Poller
from collectors.probe import InterfaceReport, probe
from collectors.profiles import ColumnType, Profile, ProfileCollector, ProfileError, load_profile, load_profiles
from collectors.sample import Sample, SampleKind, labels_of
from collectors.snmp import (
    SnmpAuthError,
    SnmpClient,
    SnmpDecodeError,
    SnmpError,
    SnmpProtocolError,
    SnmpTimeout,
    Target,
)
from collectors.targets import TargetConfigError, targets_for
from collectors.trap import Trap
from collectors.traps import TrapListener, V3User
from collectors.v2c import FastSnmpClient

__all__ = [
    "CONSECUTIVE_FAILURES",
    "UP",
    "Client",
    "ColumnType",
    "FastSnmpClient",
    "IfMibCollector",
    "Interface",
    "InterfaceReport",
    "Poller",
    "Profile",
    "ProfileCollector",
    "ProfileError",
    "RateCalculator",
    "Sample",
    "SampleKind",
    "SnmpAuthError",
    "SnmpClient",
    "SnmpDecodeError",
    "SnmpError",
    "SnmpMetricsExporter",
    "SnmpProtocolError",
    "SnmpReader",
    "SnmpTimeout",
    "Target",
    "TargetConfigError",
    "Trap",
    "TrapListener",
    "V3User",
    "labels_of",
    "load_profile",
    "load_profiles",
    "probe",
    "targets_for",
]
