"""The app shell's maintenance lookup: only silences announced ahead of their start are windows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from alerts.silence import SilenceStore
from alerts.store import AlertsBase
from vigil.runtime import maintenance_lookup

T0 = 1_795_400_000.0
LABELS = {"alertname": "InterfaceErrorsRising", "element": "agg-yuexiu-01", "ifName": "xe-0/0/0"}


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def store(tmp_path) -> Iterator[tuple[SilenceStore, Clock]]:  # noqa: ANN001
    engine = create_engine(f"sqlite:///{tmp_path / 'v.db'}")
    AlertsBase.metadata.create_all(engine)
    clock = Clock()
    yield SilenceStore(sessionmaker(engine, expire_on_commit=False), clock=clock), clock
    engine.dispose()


def body(start: float | None, end: float, element: str = "agg-yuexiu-01", **extra: str) -> dict:
    data = {"matchers": [{"name": "element", "value": element, "isRegex": False, "isEqual": True}],
            "endsAt": at(end), "createdBy": "noc-li", "comment": "CHG-1234 fibre splice", **extra}
    if start is not None:
        data["startsAt"] = at(start)
    return data


def test_a_window_announced_ahead_is_maintenance(store: tuple[SilenceStore, Clock]) -> None:
    silences, clock = store
    lookup = maintenance_lookup(silences)
    sid = silences.upsert(body(T0 + 600, T0 + 4200))
    assert lookup(LABELS) is None  # not started yet
    clock.t = T0 + 601
    window = lookup(LABELS)
    assert window is not None and window.id == sid
    assert window.ends_at == pytest.approx(T0 + 4200) and window.comment == "CHG-1234 fibre splice"
    assert window.created_by == "noc-li"
    assert lookup({**LABELS, "element": "agg-tianhe-01"}) is None
    # extended while it runs: still the planned window, with the new end
    silences.upsert({**body(T0 + 600, T0 + 7800), "id": sid})
    assert lookup(LABELS).ends_at == pytest.approx(T0 + 7800)  # type: ignore[union-attr]
    silences.expire(sid)
    assert lookup(LABELS) is None


def test_an_ad_hoc_silence_only_quiets_the_noc(store: tuple[SilenceStore, Clock]) -> None:
    silences, clock = store
    sid = silences.upsert(body(None, T0 + 3600))  # starts now: a mute, not a change window
    assert silences.matching(LABELS) is not None and silences.matching(LABELS).id == sid  # type: ignore[union-attr]
    assert silences.matching(LABELS, scheduled=True) is None
    assert maintenance_lookup(silences)(LABELS) is None
    clock.t += 60
    assert maintenance_lookup(silences)(LABELS) is None


def test_editing_an_ad_hoc_silence_does_not_make_it_a_window(store: tuple[SilenceStore, Clock]) -> None:
    silences, clock = store
    sid = silences.upsert(body(None, T0 + 3600))
    clock.t += 60
    silences.upsert({**body(None, T0 + 7200), "id": sid, "comment": "still muted, ticket 42"})  # extended
    assert silences.get(sid).starts_at.timestamp() > T0  # moved to the edit, as Alertmanager does
    assert maintenance_lookup(silences)(LABELS) is None


def test_a_client_clock_a_few_seconds_ahead_is_not_an_announcement(store: tuple[SilenceStore, Clock]) -> None:
    silences, clock = store
    silences.upsert(body(T0 + 2, T0 + 3600))  # amtool on a laptop 2 s ahead: "now" is the future
    clock.t += 5
    assert silences.matching(LABELS) is not None
    assert maintenance_lookup(silences)(LABELS) is None
