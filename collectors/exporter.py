"""Prometheus text exposition of the latest raw SNMP samples, with snmp_exporter's bare names.

prometheus_client would expose a counter ``ifHCInOctets`` as ``ifHCInOctets_total``, which the
community SNMP dashboards do not query, so the text format 0.0.4 is written here by hand.
Only raw samples (COUNTER, GAUGE) are exported; derived rates stay inside vigil.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

from collectors.sample import Sample, SampleKind

__all__ = ["CONTENT_TYPE", "SnmpMetricsExporter"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_HELP: dict[str, str] = {
    "sysUpTime": "The time (in hundredths of a second) since the network management portion "
    "of the system was last re-initialized. - 1.3.6.1.2.1.1.3",
    "ifOperStatus": "The current operational state of the interface. - 1.3.6.1.2.1.2.2.1.8",
    "ifAdminStatus": "The desired state of the interface. - 1.3.6.1.2.1.2.2.1.7",
    "ifInDiscards": "The number of inbound packets which were chosen to be discarded even though "
    "no errors had been detected. - 1.3.6.1.2.1.2.2.1.13",
    "ifInErrors": "The number of inbound packets that contained errors. - 1.3.6.1.2.1.2.2.1.14",
    "ifOutErrors": "The number of outbound packets that could not be transmitted because of "
    "errors. - 1.3.6.1.2.1.2.2.1.20",
    "ifHCInOctets": "The total number of octets received on the interface, including framing "
    "characters. - 1.3.6.1.2.1.31.1.1.1.6",
    "ifHCOutOctets": "The total number of octets transmitted out of the interface, including "
    "framing characters. - 1.3.6.1.2.1.31.1.1.1.10",
    "ifInOctets": "The total number of octets received on the interface, including framing "
    "characters. - 1.3.6.1.2.1.2.2.1.10",
    "ifOutOctets": "The total number of octets transmitted out of the interface, including "
    "framing characters. - 1.3.6.1.2.1.2.2.1.16",
    "ifSpeed": "An estimate of the interface's current bandwidth in bits per second. - 1.3.6.1.2.1.2.2.1.5",
    "ifHighSpeed": "An estimate of the interface's current bandwidth in units of 1,000,000 "
    "bits per second. - 1.3.6.1.2.1.31.1.1.1.15",
}
_TYPES = {SampleKind.COUNTER: "counter", SampleKind.GAUGE: "gauge"}


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)  # exact, even for 64-bit counters beyond float precision
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class SnmpMetricsExporter:
    """The latest raw samples of every element, rendered as Prometheus text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # render() may run on an HTTP server thread
        self._samples: dict[str, tuple[str, tuple[Sample, ...]]] = {}

    def update(self, element: str, area: str | None, samples: Sequence[Sample]) -> None:
        """Replace ``element``'s exported samples by the raw ones among ``samples``."""
        raw = tuple(s for s in samples if s.kind in _TYPES)
        with self._lock:
            self._samples[element] = (area or "", raw)

    def forget(self, element: str) -> None:
        """Stop exporting ``element``."""
        with self._lock:
            self._samples.pop(element, None)

    def render(self) -> str:
        """Text exposition format 0.0.4 of every element's latest samples."""
        with self._lock:
            snapshot = list(self._samples.items())
        families: dict[str, list[str]] = {}
        kinds: dict[str, SampleKind] = {}
        for element, (area, samples) in sorted(snapshot):
            for sample in samples:
                labels = dict(sample.labels)
                labels["element"] = element
                labels["area"] = area
                text = ",".join(
                    f'{name}="{_escape_label(value)}"' for name, value in sorted(labels.items())
                )
                families.setdefault(sample.metric, []).append(
                    f"{sample.metric}{{{text}}} {_format_value(sample.value)}"
                )
                kinds.setdefault(sample.metric, sample.kind)
        lines: list[str] = []
        for metric in sorted(families):
            help_text = _HELP.get(metric, f"SNMP metric {metric}")
            lines.append(f"# HELP {metric} {_escape_help(help_text)}")
            lines.append(f"# TYPE {metric} {_TYPES[kinds[metric]]}")
            lines.extend(families[metric])
        return "\n".join(lines) + "\n" if lines else ""
