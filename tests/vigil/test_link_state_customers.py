"""Polled link state and the customer side: one subscriber's own line going down is no outage."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from collectors.sample import Sample, SampleKind, labels_of
from config.models import ContingencyConfig
from contingency import ContingencyBase, ContingencyManager, Topology
from contingency.sms import ConsoleSmsSink
from detectors.traps import TrapRules
from tests.contingency.conftest import AREAS, CUSTOMERS, ELEMENTS, HOLD_DOWN, T0, FakeClock


def line(oper: int, at: float) -> list[Sample]:
    """ifOperStatus of one VDSL2 subscriber line (ifType 251) of olt-a1, as the poller sends it."""
    labels = labels_of(ifIndex="1005", ifName="vdsl 0/1/5", ifDescr="VDSL2 line 0/1/5")
    return [Sample("olt-a1", "ifOperStatus", labels, float(oper), at, SampleKind.GAUGE),
            Sample("olt-a1", "ifAdminStatus", labels, 1.0, at, SampleKind.GAUGE)]


@pytest.mark.parametrize(("if_type", "texted"), [(251, 0), (6, 10)])
def test_a_customer_switching_off_their_modem_texts_nobody(tmp_path, if_type: int, texted: int) -> None:  # noqa: ANN001
    """The poller's ifType says it is a VDSL2 subscriber line (251): nothing; an Ethernet port (6)
    going down is an InterfaceDown, and the element's customers hear of it."""
    engine = create_engine(f"sqlite:///{tmp_path / 'v.db'}")
    ContingencyBase.metadata.create_all(engine)
    clock = FakeClock()
    sent: list[str] = []
    manager = ContingencyManager(sessionmaker(engine, expire_on_commit=False), Topology(ELEMENTS, AREAS, CUSTOMERS),
                                 ContingencyConfig(hold_down=HOLD_DOWN), ConsoleSmsSink(sent.append),
                                 clock=clock, registry=CollectorRegistry())
    rules = TrapRules(keep_firing_for=300.0, if_types=lambda element, index: if_type)
    rules.observe(line(1, T0))
    events = rules.observe(line(2, T0 + 60))  # the customer's modem is off for the night
    manager.handle(events)
    clock.advance(HOLD_DOWN + 120)
    manager.tick()
    engine.dispose()
    assert len(sent) == texted, f"{len(sent)} customers of olt-a1 texted"
