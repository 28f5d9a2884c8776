"""SnmpMetricsExporter: snmp_exporter's bare names, escaping, per-element replacement."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from collectors.exporter import SnmpMetricsExporter
from collectors.sample import Sample, SampleKind, labels_of


def _if_labels(index: int, name: str, alias: str = "") -> tuple[tuple[str, str], ...]:
    return labels_of(ifIndex=str(index), ifName=name, ifDescr=name, ifAlias=alias)


def _samples(element: str, octets: int, alias: str = "") -> list[Sample]:
    labels = _if_labels(1, "ge-0/0/1", alias)
    return [
        Sample(element, "ifHCInOctets", labels, octets, 10.0, SampleKind.COUNTER),
        Sample(element, "ifOperStatus", labels, 1, 10.0, SampleKind.GAUGE),
        Sample(element, "sysUpTime", (), 123456, 10.0, SampleKind.GAUGE),
        Sample(
            element, "if_in_bps", labels_of(ifIndex="1", ifName="x"), 8e6, 10.0, SampleKind.RATE
        ),
    ]


def _parse(text: str) -> dict[str, tuple[str, list[tuple[dict[str, str], float]]]]:
    return {
        family.name: (family.type, [(dict(s.labels), s.value) for s in family.samples])
        for family in text_string_to_metric_families(text)
    }


def test_render_keeps_bare_names_types_and_labels() -> None:
    exporter = SnmpMetricsExporter()
    exporter.update("olt-1", "north", _samples("olt-1", 1000))
    exporter.update("core-1", None, _samples("core-1", 2**63 + 7))
    text = exporter.render()

    assert "ifHCInOctets{" in text
    assert "ifHCInOctets_total" not in text
    assert "# TYPE ifHCInOctets counter" in text
    assert "# TYPE ifOperStatus gauge" in text
    assert "# HELP ifHCInOctets " in text
    assert "if_in_bps" not in text  # derived rates are not exported
    assert f" {2**63 + 7}\n" in text  # 64-bit counters are written exactly

    # The parser may rename counters (adds _total on read); families are keyed by base name.
    families = _parse(text)
    kind, samples = families["ifHCInOctets"]
    assert kind == "counter"
    by_element = {labels["element"]: (labels, value) for labels, value in samples}
    assert set(by_element) == {"olt-1", "core-1"}
    labels, value = by_element["olt-1"]
    assert value == 1000
    assert labels == {
        "element": "olt-1",
        "area": "north",
        "ifIndex": "1",
        "ifName": "ge-0/0/1",
        "ifDescr": "ge-0/0/1",
        "ifAlias": "",
    }
    assert by_element["core-1"][0]["area"] == ""
    assert families["sysUpTime"][0] == "gauge"
    assert {labels["element"]: v for labels, v in families["sysUpTime"][1]} == {
        "olt-1": 123456,
        "core-1": 123456,
    }


def test_label_values_are_escaped() -> None:
    exporter = SnmpMetricsExporter()
    alias = 'to "PoP" C:\\path\nline 2'
    exporter.update("e", None, _samples("e", 5, alias=alias))
    text = exporter.render()
    assert 'ifAlias="to \\"PoP\\" C:\\\\path\\nline 2"' in text
    _, samples = _parse(text)["ifHCInOctets"]
    assert samples[0][0]["ifAlias"] == alias


def test_update_replaces_and_forget_removes() -> None:
    exporter = SnmpMetricsExporter()
    exporter.update("e", "a", _samples("e", 5))
    exporter.update("e", "a", _samples("e", 9)[:1])
    families = _parse(exporter.render())
    assert set(families) == {"ifHCInOctets"}
    assert [v for _, v in families["ifHCInOctets"][1]] == [9]

    exporter.forget("e")
    assert exporter.render() == ""
    exporter.forget("never-seen")  # no error
