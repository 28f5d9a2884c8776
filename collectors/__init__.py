"""collectors package: SNMP polling of network elements into ``Sample`` values.

``snmp`` talks to agents, ``counters`` turns counters into rates, ``ifmib`` collects interfaces,
``exporter`` re-exposes raw samples with snmp_exporter's names, ``poller`` runs many targets and
``probe`` is the one-shot report behind ``vigil poll``.
"""

from collectors.counters import RateCalculator
from collectors.exporter import SnmpMetricsExporter
from collectors.ifmib import IfMibCollector, Interface
from collectors.poller import Poller
from collectors.probe import InterfaceReport, probe
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

__all__ = [
    "IfMibCollector",
    "Interface",
    "InterfaceReport",
    "Poller",
    "RateCalculator",
    "Sample",
    "SampleKind",
    "SnmpAuthError",
    "SnmpClient",
    "SnmpDecodeError",
    "SnmpError",
    "SnmpMetricsExporter",
    "SnmpProtocolError",
    "SnmpTimeout",
    "Target",
    "labels_of",
    "probe",
]
