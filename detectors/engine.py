"""Detection engine: interface rate samples in, alert state-change events out.

One :class:`~detectors.baseline.EwmaBaseline` holds every series (one column per
``Sample.series_key``); one :class:`~detectors.state.ConditionTracker` turns the per-series
conditions of two rules into PENDING / FIRING / RESOLVED events:

``InterfaceErrorsRising`` (warning)
    ``if_in_errors_per_s``, ``if_out_errors_per_s``, ``if_in_discards_per_s``: deviation above
    the baseline ``z > threshold`` and ``value >= error_rate_min``.
``InterfaceUtilizationHigh`` (critical)
    ``if_in_utilization``, ``if_out_utilization``: ``value >= utilization_threshold`` (static
    service threshold), or early warning ``z > threshold`` and
    ``value >= 0.8 * utilization_threshold``.

Each call scores the new values against the baseline *before* learning them, and does not
learn the points whose condition is active, so a lasting fault is not absorbed as "normal".

``Event.score`` is ``q / (1 + q)`` with ``q`` the distance to firing in units of the
threshold: ``q = max(z, 0) / threshold``, and for utilisation also
``value / utilization_threshold``. 0.5 means "exactly at the threshold", 1 is the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Self

import numpy as np

from collectors.sample import Sample, SampleKind
from config.models import DetectorsConfig
from detectors.baseline import EwmaBaseline
from detectors.event import Event, EventState, Severity
from detectors.state import ConditionStatus, ConditionTracker

__all__ = [
    "DETECTOR_EWMA",
    "DETECTOR_STATIC",
    "ERRORS_RISING",
    "UTILIZATION_HIGH",
    "DetectionEngine",
]

ERRORS_RISING = "InterfaceErrorsRising"
UTILIZATION_HIGH = "InterfaceUtilizationHigh"
DETECTOR_EWMA = "ewma_baseline"
DETECTOR_STATIC = "static_threshold"

_SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]


class _Kind(Enum):
    ERRORS = "errors"
    UTILIZATION = "utilization"


# metric -> (rule family, what it is in a summary)
_METRICS: dict[str, tuple[_Kind, str]] = {
    "if_in_utilization": (_Kind.UTILIZATION, "Inbound utilisation"),
    "if_out_utilization": (_Kind.UTILIZATION, "Outbound utilisation"),
    "if_in_errors_per_s": (_Kind.ERRORS, "CRC/input errors"),
    "if_out_errors_per_s": (_Kind.ERRORS, "Output errors"),
    "if_in_discards_per_s": (_Kind.ERRORS, "Input discards"),
}

_RULES: dict[_Kind, tuple[str, Severity]] = {
    _Kind.ERRORS: (ERRORS_RISING, Severity.WARNING),
    _Kind.UTILIZATION: (UTILIZATION_HIGH, Severity.CRITICAL),
}


@dataclass(frozen=True, slots=True)
class _Series:
    """What the engine knows about one column."""

    element: str
    metric: str
    kind: _Kind
    what: str
    interface: str
    labels: tuple[tuple[str, str], ...]  # the event's labels, alertname and element first


class DetectionEngine:
    """Score interface rate samples against per-series baselines and emit state changes.

    Parameters mirror :class:`config.models.DetectorsConfig`; durations are seconds on the
    samples' clock. A series emits nothing until it has ``warmup`` observations.
    """

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        threshold: float = 6.0,
        warmup: int = 20,
        for_: float = 120.0,
        keep_firing_for: float = 300.0,
        utilization_threshold: float = 0.9,
        error_rate_min: float = 1.0,
    ) -> None:
        self.threshold = threshold
        self.utilization_threshold = utilization_threshold
        self.error_rate_min = error_rate_min
        self._baseline = EwmaBaseline(alpha=alpha, warmup=warmup, threshold=threshold)
        self._baseline.resize(0)
        self._tracker: ConditionTracker[int] = ConditionTracker(
            for_=for_, keep_firing_for=keep_firing_for
        )
        self._index: dict[_SeriesKey, int] = {}
        self._series: list[_Series] = []
        self._is_errors = np.zeros(0, dtype=bool)
        self._is_util = np.zeros(0, dtype=bool)
        self._active: dict[int, Event] = {}

    @classmethod
    def from_config(cls, cfg: DetectorsConfig) -> Self:
        """An engine with the site's detector settings."""
        return cls(
            alpha=cfg.alpha,
            threshold=cfg.threshold,
            warmup=cfg.warmup,
            for_=cfg.for_,
            keep_firing_for=cfg.keep_firing_for,
            utilization_threshold=cfg.utilization_threshold,
            error_rate_min=cfg.error_rate_min,
        )

    @property
    def series_count(self) -> int:
        """Number of series seen so far."""
        return len(self._series)

    @property
    def baseline(self) -> EwmaBaseline:
        """The shared baseline (read it, do not fit it)."""
        return self._baseline

    def active(self) -> list[Event]:
        """Conditions currently pending or firing, as of their latest evaluation."""
        return list(self._active.values())

    def update(self, samples: Sequence[Sample]) -> list[Event]:
        """Consume one time step of samples; return the events whose state changed.

        Only RATE samples of the interface metrics above are used. All samples of a call are
        one time step (the latest sample of a series wins); ``now`` is their largest timestamp.
        Series absent from a call keep their state: missing data is not a recovery.
        """
        latest: dict[int, Sample] = {}
        for sample in samples:
            if sample.kind is not SampleKind.RATE or sample.metric not in _METRICS:
                continue
            col = self._index.get(sample.series_key)
            if col is None:
                col = self._add_series(sample)
            prev = latest.get(col)
            if prev is None or sample.timestamp >= prev.timestamp:
                latest[col] = sample
        if not latest:
            return []
        self._grow()

        now = max(s.timestamp for s in latest.values())
        x = np.full(self.series_count, np.nan)
        x[np.fromiter(latest, dtype=np.intp, count=len(latest))] = [
            s.value for s in latest.values()
        ]

        baseline = self._baseline
        mean = baseline.mean_.copy()
        scale = baseline.effective_scale()
        z = baseline.deviation(x)  # scored before learning x; NaN if missing or un-warmed
        above = z > self.threshold  # NaN compares False
        static = self._is_util & baseline.warmed_up() & (x >= self.utilization_threshold)
        active = (
            (self._is_errors & above & (x >= self.error_rate_min))
            | static
            | (self._is_util & above & (x >= 0.8 * self.utilization_threshold))
        )
        # Do not learn anomalous points: the baseline must not absorb the fault it reports.
        baseline.partial_fit(np.where(active, np.nan, x))

        present = ~np.isnan(x)
        candidates = set(np.flatnonzero(active).tolist())
        candidates.update(k for k in self._tracker if present[k])
        events: list[Event] = []
        for col in sorted(candidates):
            transition = self._tracker.update(col, bool(active[col]), now)
            status = self._tracker.status(col)
            if status is None:  # a pending condition dropped, or a resolved one purged
                self._active.pop(col, None)
                continue
            event = self._event(
                col,
                status,
                float(x[col]),
                float(mean[col]),
                float(scale[col]),
                float(z[col]),
                bool(static[col]),
            )
            if status.state is EventState.RESOLVED:
                self._active.pop(col, None)
            else:
                self._active[col] = event
            if transition is not None:
                events.append(event)
        self._tracker.pop_dropped()
        return events

    # -- internals ------------------------------------------------------------------------

    def _add_series(self, sample: Sample) -> int:
        kind, what = _METRICS[sample.metric]
        alertname, severity = _RULES[kind]
        extra = {k: v for k, v in sample.labels if k not in ("alertname", "element")}
        extra["metric"] = sample.metric  # in and out series of one interface are two alerts
        extra["severity"] = str(severity)  # a label, as in Prometheus rules, so routes can match it
        labels = (("alertname", alertname), ("element", sample.element), *sorted(extra.items()))
        interface = (
            sample.label("ifName")
            or sample.label("ifDescr")
            or (f"ifIndex {sample.label('ifIndex')}" if sample.label("ifIndex") else "")
        )
        col = len(self._series)
        self._series.append(_Series(sample.element, sample.metric, kind, what, interface, labels))
        self._index[sample.series_key] = col
        return col

    def _grow(self) -> None:
        n = self.series_count
        if n == self._baseline.n_features_in_:
            return
        self._baseline.resize(n)
        kinds = [s.kind for s in self._series[len(self._is_util) :]]
        self._is_errors = np.concatenate(
            [self._is_errors, np.array([k is _Kind.ERRORS for k in kinds], dtype=bool)]
        )
        self._is_util = np.concatenate(
            [self._is_util, np.array([k is _Kind.UTILIZATION for k in kinds], dtype=bool)]
        )

    def _event(
        self,
        col: int,
        status: ConditionStatus,
        value: float,
        mean: float,
        scale: float,
        z: float,
        static: bool,
    ) -> Event:
        series = self._series[col]
        alertname, severity = _RULES[series.kind]
        q = max(z, 0.0) / self.threshold if np.isfinite(z) else 0.0
        if series.kind is _Kind.UTILIZATION:
            q = max(q, value / self.utilization_threshold)
            previous = self._active.get(col)
            if static:
                detector = DETECTOR_STATIC
            elif status.state is EventState.RESOLVED and previous is not None:
                detector = previous.detector  # resolve under the detector that raised it
            else:
                detector = DETECTOR_EWMA
        else:
            detector = DETECTOR_EWMA
        return Event(
            name=alertname,
            element=series.element,
            state=status.state,
            labels=series.labels,
            detector=detector,
            series=series.metric,
            value=value,
            expected=mean,
            band=(mean - self.threshold * scale, mean + self.threshold * scale),
            score=q / (1.0 + q),
            active_at=status.active_at,
            severity=severity,
            fired_at=status.fired_at,
            resolved_at=status.resolved_at,
            summary=self._summary(series, status.state, value, mean, static),
        )

    def _summary(
        self, series: _Series, state: EventState, value: float, mean: float, static: bool
    ) -> str:
        where = f"{series.what} on {series.element} {series.interface}".rstrip()
        if series.kind is _Kind.ERRORS:
            verdict = "back to normal" if state is EventState.RESOLVED else "rising"
            return f"{where} {verdict}: {_num(value)}/s vs {_num(mean)}/s expected"
        limit = _pct(self.utilization_threshold)
        if state is EventState.RESOLVED:
            return f"{where} back to normal: {_pct(value)} (threshold {limit})"
        if static:
            return f"{where} high: {_pct(value)} (threshold {limit}, {_pct(mean)} expected)"
        return f"{where} rising fast: {_pct(value)} vs {_pct(mean)} expected (threshold {limit})"


def _num(value: float) -> str:
    """412.0 -> '412', 0.1234 -> '0.123', 12345.6 -> '12,346'."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.0f}%"
