"""Contingency at an operator's scale: one fault above N customers.

    python benchmarks/contingency.py                       # N = 10,000 and 100,000, SQLite
    python benchmarks/contingency.py --customers 200000 --db postgresql+psycopg://...

A core-side element (an aggregation switch above 50 OLTs in 5 areas) fails with N customers below
it. Measured, on the production ``ContingencyManager`` with a real database and the file SMS sink:

* ``open_s``: ``handle()`` of the FIRING event (plan snapshot, ticket, banners, N queued texts);
* ``lookup_ms``: a hotline agent's caller lookup (``impact(phone)``), median of 200 random callers;
* ``sms_per_s``: texts sent per second by ``tick()`` (claim, send, record: at most once each);
* ``longest_tick_s``: the longest single ``tick()`` (it holds the manager's lock only to follow
  maintenance windows, never while sending, so ``handle()`` no longer waits for it);
* ``resolve_s``: ``handle()`` of the RESOLVED event (cancel, N "restored" texts queued, close);
* ``list_ms``: ``list_incidents()`` (the agent page's poll) with that incident and nine more like
  it in the history, median of 5.

Last line: a JSON object with the figures per N.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry  # noqa: E402
from sqlalchemy import create_engine, inspect, text  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from config.models import Area, ContingencyConfig, Customer, Element, SmsConfig  # noqa: E402
from contingency import ContingencyBase, ContingencyManager, FileSmsSink, Topology  # noqa: E402
from detectors.event import Event, EventState  # noqa: E402

T0 = 1_795_400_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def network(n: int) -> tuple[list[Element], list[Area], list[Customer]]:
    def el(name: str, parent: str | None = None, area: str | None = None) -> Element:
        return Element(name=name, address="udp://127.0.0.1:1161", credential="lab", parent=parent, area=area)

    elements = [el("core"), el("agg", "core")] + [el(f"olt{i}", "agg", f"a{i % 5}") for i in range(50)]
    areas = [Area(id=f"a{i}", name=f"Area {i}", name_zh=f"区{i}") for i in range(5)]
    customers = [
        Customer(account=f"C{k:08d}", phone=f"86138{k:08d}", area=f"a{k % 50 % 5}", element=f"olt{k % 50}",
                 language="en" if k % 7 == 0 else "zh-CN")
        for k in range(n)
    ]
    return elements, areas, customers


def event(state: EventState) -> Event:
    return Event(name="ElementUnreachable", element="agg", state=state,
                 labels=(("alertname", "ElementUnreachable"), ("element", "agg")), detector="reachability",
                 series="agg", value=0.0, expected=1.0, band=(1.0, 1.0), score=1.0, active_at=T0)


def measure(n: int, db: str | None, workdir: Path) -> dict[str, float]:
    url = db or f"sqlite:///{workdir / f'bench-{n}.db'}"
    engine = create_engine(url)
    ContingencyBase.metadata.drop_all(engine)
    ContingencyBase.metadata.create_all(engine)
    clock = Clock()
    elements, areas, customers = network(n)
    sink = FileSmsSink(workdir / f"sms-{n}.jsonl", clock=clock)
    manager = ContingencyManager(
        sessionmaker(engine, expire_on_commit=False), Topology(elements, areas, customers),
        ContingencyConfig(hold_down=60, sms=SmsConfig(sink="file", path="sms.jsonl")), sink, clock=clock,
        registry=CollectorRegistry(),  # as in production: the gauges are refreshed too
    )
    out: dict[str, float] = {"customers": n}
    t = time.perf_counter()
    manager.handle([event(EventState.FIRING)])
    out["open_s"] = round(time.perf_counter() - t, 3)

    rng = random.Random(7)
    times = []
    for _ in range(200):
        phone = customers[rng.randrange(n)].phone
        t = time.perf_counter()
        hit = manager.impact(phone)
        times.append(time.perf_counter() - t)
        assert hit["affected"], phone
    out["lookup_ms"] = round(statistics.median(times) * 1000, 2)

    clock.t += 60
    sent, longest, t_all = 0, 0.0, time.perf_counter()
    while sent < n:
        t = time.perf_counter()
        k = manager.tick()
        longest = max(longest, time.perf_counter() - t)
        if k == 0:
            raise SystemExit(f"tick sent nothing with {n - sent} texts left")
        sent += k
    out["sms_per_s"] = round(sent / (time.perf_counter() - t_all))
    out["longest_tick_s"] = round(longest, 3)
    assert len(sink.read()) == n, "every customer exactly once"

    clock.t += 600
    t = time.perf_counter()
    manager.handle([event(EventState.RESOLVED)])
    out["resolve_s"] = round(time.perf_counter() - t, 3)

    columns = [c["name"] for c in inspect(engine).get_columns("incidents") if c["name"] not in ("id", "open_key")]
    with engine.begin() as conn:  # nine past faults like it, days before
        for _ in range(9):
            conn.execute(text(
                f"INSERT INTO incidents ({', '.join(columns)}) SELECT {', '.join(columns)} FROM incidents"
                " WHERE id = 1"))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        assert len(manager.list_incidents()) == 10
        times.append(time.perf_counter() - t)
    out["list_ms"] = round(statistics.median(times) * 1000, 1)
    engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--db", help="SQLAlchemy URL (default: a fresh SQLite file per run)")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.customers:
            r = measure(n, args.db, Path(tmp))
            results.append(r)
            print("  ".join(f"{k} {v:g}" for k, v in r.items()), flush=True)
    print(json.dumps({"runs": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
