"""Poll many SNMP targets concurrently; one target's failure is counted and logged, never fatal.

Every poll, wherever it comes from (the scheduler's per-element job or :meth:`Poller.poll_all`),
waits for one slot of a global concurrency limit, so a burst never opens more than
``concurrency`` exchanges at once; a dead element holds its slot only for its own timeout
budget (``timeout * (retries + 1)`` per request), and the others go on. A poll of an element
whose previous poll is still running, or a poll that took longer than the element's interval,
is an *overrun*: counted in ``vigil_poll_overruns_total{element}`` and logged, never silent.

Each poll also hands reachability samples to ``on_status``: ``up`` (1/0) and
``vigil_consecutive_failures``, both with the element and no other label, which
``detectors.reachability.ReachabilityRule`` turns into "element unreachable" events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from collectors.exporter import SnmpMetricsExporter
from collectors.ifmib import IfMibCollector
from collectors.profiles import Profile, ProfileCollector
from collectors.sample import Sample, SampleKind
from collectors.snmp import SnmpClient, SnmpError, Target

__all__ = ["CONSECUTIVE_FAILURES", "UP", "Collector", "Poller"]

log = logging.getLogger(__name__)

UP = "up"
CONSECUTIVE_FAILURES = "vigil_consecutive_failures"


class Collector(Protocol):
    """What the poller drives: one poll of one target, and the varbinds it received."""

    varbinds: int

    async def collect(self) -> list[Sample]:
        """Poll once."""
        ...


class Poller:
    """Poll every target (IF-MIB, or the matching ``profiles``), export and hand samples on."""

    def __init__(
        self,
        client: SnmpClient,
        targets: Sequence[Target],
        *,
        areas: Mapping[str, str | None],
        exporter: SnmpMetricsExporter,
        registry: CollectorRegistry,
        on_samples: Callable[[list[Sample]], None],
        clock: Callable[[], float] = time.time,
        concurrency: int = 64,
        intervals: Mapping[str, float] | None = None,
        profiles: Sequence[Profile] | None = None,
        on_status: Callable[[list[Sample]], None] | None = None,
        label_refresh: float = 3600.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        names = [t.element for t in targets]
        if len(set(names)) != len(names):
            raise ValueError("duplicate element names among targets")
        self.client = client
        self.areas = areas
        self.exporter = exporter
        self.on_samples = on_samples
        self.on_status = on_status
        self.clock = clock
        self.concurrency = concurrency
        self.intervals = dict(intervals or {})
        self.collectors: dict[str, Collector] = {
            t.element: (
                IfMibCollector(client, t, clock, label_refresh)
                if profiles is None
                else ProfileCollector(client, t, profiles, clock, label_refresh)
            )
            for t in targets
        }
        self.failures: dict[str, int] = dict.fromkeys(names, 0)
        self._inflight: dict[str, float] = {}  # element -> perf_counter() when its poll was asked
        self._semaphore: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._polls = Counter(
            "vigil_polls", "SNMP polls by element and result.", ["element", "result"],
            registry=registry,
        )
        self._duration = Histogram(
            "vigil_poll_duration_seconds", "Duration of one element's SNMP poll.", ["element"],
            registry=registry,
        )
        self._up = Gauge(
            "vigil_target_up", "1 if the element's last poll succeeded, else 0.", ["element"],
            registry=registry,
        )
        self._series = Gauge(
            "vigil_series", "Number of samples produced by the element's last poll.", ["element"],
            registry=registry,
        )
        self._varbinds = Counter(
            "vigil_varbinds", "SNMP varbinds received from the element.", ["element"],
            registry=registry,
        )
        self._overruns = Counter(
            "vigil_poll_overruns",
            "Polls still running when the next was due, or longer than the element's interval.",
            ["element"],
            registry=registry,
        )
        self._consecutive = Gauge(
            "vigil_consecutive_failures", "Failed polls of the element in a row.", ["element"],
            registry=registry,
        )

    def interface_type(self, element: str, if_index: str) -> int | None:
        """The IANAifType of an interface, from the element's cached lookups (None: not known)."""
        collector = self.collectors.get(element)
        for row in getattr(collector, "rows", {}).get("interfaces", ()):
            if row.index == if_index:
                value = row.values.get("ifType")
                return value if isinstance(value, int) else None
        return None

    def _slots(self) -> asyncio.Semaphore:
        """The global concurrency limit, bound to the running loop."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore[0] is not loop:
            self._semaphore = (loop, asyncio.Semaphore(self.concurrency))
        return self._semaphore[1]

    async def poll(self, element: str) -> None:
        """Poll ``element`` once; failures and overruns are counted and logged, never raised."""
        collector = self.collectors.get(element)
        if collector is None:
            log.error("poll of unknown element %s", element)
            return
        asked = time.perf_counter()
        running_since = self._inflight.get(element)
        if running_since is not None:
            self._overruns.labels(element).inc()
            log.warning(
                "poll overrun element=%s: previous poll still running after %.3fs "
                "(interval %s); this poll is not started",
                element, asked - running_since, self._interval_text(element),
            )
            return
        self._inflight[element] = asked
        try:
            async with self._slots():
                started = time.perf_counter()
                ok = await self._poll_once(element, collector, started)
        finally:
            del self._inflight[element]
        ended = time.perf_counter()
        interval = self.intervals.get(element)
        if interval is not None and ended - asked > interval:
            self._overruns.labels(element).inc()
            log.warning(
                "poll overrun element=%s: took %.3fs (%.3fs waiting for a slot, %.3fs polling, "
                "%s) > interval %.3fs",
                element, ended - asked, started - asked, ended - started,
                "ok" if ok else "failed", interval,
            )

    async def _poll_once(self, element: str, collector: Collector, started: float) -> bool:
        try:
            samples = await collector.collect()
        except SnmpError as err:
            self._failed(element, started, f"{type(err).__name__}: {err}")
            return False
        except Exception as err:  # a bug or an unexpected library error: still only this target
            log.exception("poll element=%s crashed", element)
            self._failed(element, started, repr(err))
            return False
        self._duration.labels(element).observe(time.perf_counter() - started)
        self._polls.labels(element, "ok").inc()
        self._up.labels(element).set(1)
        self._series.labels(element).set(len(samples))
        self._varbinds.labels(element).inc(collector.varbinds)
        self.failures[element] = 0
        self._consecutive.labels(element).set(0)
        self.exporter.update(element, self.areas.get(element), samples)
        self._status(element, up=True)
        try:
            self.on_samples(samples)
        except Exception:
            log.exception("on_samples failed for element=%s", element)
        return True

    def _failed(self, element: str, started: float, reason: str) -> None:
        self._duration.labels(element).observe(time.perf_counter() - started)
        self._polls.labels(element, "failed").inc()
        self._up.labels(element).set(0)
        self._series.labels(element).set(0)
        self.failures[element] += 1
        self._consecutive.labels(element).set(self.failures[element])
        self.exporter.forget(element)  # export no stale values, like snmp_exporter
        log.warning(
            "poll failed element=%s (%d in a row): %s", element, self.failures[element], reason
        )
        self._status(element, up=False)

    def _status(self, element: str, *, up: bool) -> None:
        if self.on_status is None:
            return
        now = self.clock()
        samples = [
            Sample(element, UP, (), 1 if up else 0, now, SampleKind.GAUGE),
            Sample(element, CONSECUTIVE_FAILURES, (), self.failures[element], now, SampleKind.GAUGE),
        ]
        try:
            self.on_status(samples)
        except Exception:
            log.exception("on_status failed for element=%s", element)

    def _interval_text(self, element: str) -> str:
        interval = self.intervals.get(element)
        return "unknown" if interval is None else f"{interval:.3f}s"

    async def poll_all(self) -> None:
        """Poll every element concurrently, at most ``concurrency`` at a time."""
        await asyncio.gather(*(self.poll(element) for element in self.collectors))
