"""Poll many SNMP targets concurrently; one target's failure is counted and logged, never fatal."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from collectors.exporter import SnmpMetricsExporter
from collectors.ifmib import IfMibCollector
from collectors.sample import Sample
from collectors.snmp import SnmpClient, SnmpError, Target

__all__ = ["Poller"]

log = logging.getLogger(__name__)


class Poller:
    """Poll every target's IF-MIB, export raw samples and hand all samples on."""

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
        self.concurrency = concurrency
        self.collectors = {t.element: IfMibCollector(client, t, clock) for t in targets}
        self._polls = Counter(
            "vigil_polls",
            "SNMP polls by element and result.",
            ["element", "result"],
            registry=registry,
        )
        self._duration = Histogram(
            "vigil_poll_duration_seconds",
            "Duration of one element's SNMP poll.",
            ["element"],
            registry=registry,
        )
        self._up = Gauge(
            "vigil_target_up",
            "1 if the element's last poll succeeded, else 0.",
            ["element"],
            registry=registry,
        )
        self._series = Gauge(
            "vigil_series",
            "Number of samples produced by the element's last poll.",
            ["element"],
            registry=registry,
        )

    async def poll(self, element: str) -> None:
        """Poll ``element`` once; failures are counted and logged, never raised."""
        collector = self.collectors.get(element)
        if collector is None:
            log.error("poll of unknown element %s", element)
            return
        started = time.perf_counter()
        try:
            samples = await collector.collect()
        except SnmpError as err:
            self._failed(element, started, f"{type(err).__name__}: {err}")
            return
        except Exception as err:  # a bug or an unexpected library error: still only this target
            log.exception("poll element=%s crashed", element)
            self._failed(element, started, repr(err))
            return
        self._duration.labels(element).observe(time.perf_counter() - started)
        self._polls.labels(element, "ok").inc()
        self._up.labels(element).set(1)
        self._series.labels(element).set(len(samples))
        self.exporter.update(element, self.areas.get(element), samples)
        try:
            self.on_samples(samples)
        except Exception:
            log.exception("on_samples failed for element=%s", element)

    def _failed(self, element: str, started: float, reason: str) -> None:
        self._duration.labels(element).observe(time.perf_counter() - started)
        self._polls.labels(element, "failed").inc()
        self._up.labels(element).set(0)
        self._series.labels(element).set(0)
        self.exporter.forget(element)  # export no stale values, like snmp_exporter
        log.warning("poll failed element=%s: %s", element, reason)

    async def poll_all(self) -> None:
        """Poll every element concurrently, at most ``concurrency`` at a time."""
        semaphore = asyncio.Semaphore(self.concurrency)

        async def bounded(element: str) -> None:
            async with semaphore:
                await self.poll(element)

        await asyncio.gather(*(bounded(element) for element in self.collectors))
