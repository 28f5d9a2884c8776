"""Detection engine: rate and gauge samples in, alert state-change events out.

One engine holds every series (one column per ``Sample.series_key``) in numpy arrays and runs,
per :meth:`DetectionEngine.update` (one time step of any subset of series):

1. the robust :class:`~detectors.baseline.EwmaBaseline` (deviation ``z`` of each new value);
2. the per-series rules below, with hysteresis (enter at the threshold, leave only below a
   lower one) and Cisco-style flap damping, through one :class:`ConditionTracker`;
3. the :class:`~detectors.forecast.TrendForecaster` on every metric with a service threshold
   (:data:`SERVICE_THRESHOLDS`): a "predicted breach" event with ``eta`` *before* the crossing;
4. the :class:`~detectors.outlier.ElementOutlierDetector` on each element's feature vector;
5. the :class:`~detectors.collective.CollectiveDetector` twice: ports of one element, and
   elements of one parent (``parents``: element -> parent element or area, from the topology);
6. the composite score (:class:`SeriesScorer` hook): :meth:`DetectionEngine.from_config`, i.e.
   ``vigil run``, plugs in the shipped :class:`~detectors.composite.CompositeDetector`
   (``DEFAULTS``, ``DEFAULT_THRESHOLD``: what ``benchmarks/nab.py`` scores) unless the site
   sets ``detectors.composite: false``. Its per-series score in [0, 1] raises ``Event.score``,
   is the ``composite_score`` annotation of the series' events, and, when it is
   ``>= composite_threshold`` at ``composite_sustain`` (2) evaluations of a series in a row,
   marks the series' port and element anomalous for (5). **It emits no alert of its own**: a
   NAB-tuned threshold over thousands of series would page the NOC all day.

Rules per series (alertname, severity):

``InterfaceErrorsRising`` (warning)
    ``if_in_errors_per_s``, ``if_out_errors_per_s``, ``if_in_discards_per_s``: ``z > threshold``
    and the rate averaged over ``error_window`` (5 min, exponentially) ``>= error_rate_min``;
    held while ``z > hysteresis * threshold``. A burst of a few polls does not qualify.
``InterfaceUtilizationHigh`` (critical)
    ``if_in_utilization``, ``if_out_utilization``: ``value >= utilization_threshold`` (held
    while above the clear level), or early warning ``z > threshold`` and
    ``value >= 0.8 * utilization_threshold``.
``OpticalRxPowerLow`` (critical), ``DslSnrMarginLow`` (warning), ``CpuUtilizationHigh`` (warning)
    ``optical_rx_dbm``, ``dsl_snr_margin_db``, ``cpu_utilization``: beyond the service threshold.
``<Kind>BreachPredicted`` (the kind's severity), detector ``trend_forecast``
    the forecaster's ETA to the service threshold is within its horizon; held while the value
    is beyond the threshold (the prediction came true), then resolved. Once a series' time-of-
    day profile (:class:`~detectors.forecast.SeasonalProfile`) knows a whole day, the trend is
    that of the deviation from the profile and the forecast is ``profile(t + h) + deviation
    trend``: a busy link's evening climb, which happens every day, predicts nothing; a creep
    beyond the usual evening does. Before that (the first day) the plain trend is used.
    CPU also has a *sustained climb*: a 1-min half-life fit whose slope stays at
    ``forecast_climb_rate`` (0.3 per hour, i.e. 30 points of CPU per hour) or steeper, pointing
    at a crossing within the horizon, for ``forecast_climb_for`` (16 min; then the 2-min
    ``for``) is a prediction with that fit's ETA: a runaway climbs for tens of minutes, an
    ordinary spike for at most about ten, and the 30-min trend still holds the flat hour
    before the runaway (``benchmarks/lead_time.py``: CPU lead 15 min instead of -2).
``ElementBehaviourAnomalous`` (info), detector ``isolation_forest``
    the element's feature vector is an outlier against its own recent history.
``CollectiveDegradation`` (warning), detector ``collective``
    at least ``collective_min_count`` and ``collective_min_fraction`` of a parent's children are
    anomalous (any rule condition or prediction active, or a sustained high composite score)
    within ``collective_window`` seconds; the event names the children in its annotations, and the
    children's own events carry a ``collective`` annotation naming the parent.

Service thresholds (:data:`SERVICE_THRESHOLDS`, override with ``service_thresholds=``):

=====================  =========  =========  ===========================================
metric                 threshold  clear at   direction
=====================  =========  =========  ===========================================
if_*_utilization       0.90       0.85       upper (``utilization_threshold`` overrides)
if_*_errors_per_s      50 /s      40 /s      upper (forecast only; the rule is ``z``-based)
if_in_discards_per_s   100 /s     80 /s      upper (forecast only)
optical_rx_dbm         -27 dBm    -26 dBm    lower
dsl_snr_margin_db      6 dB       7 dB       lower
cpu_utilization        0.90       0.85       upper (0..1)
=====================  =========  =========  ===========================================

Warm-up (documented contract): a series raises nothing before it has ``warmup`` observations
(20 polls by default) -- neither rules nor forecasts; its forecasts become seasonal after a
day (and three hours of deviation trend: no forecast in those hours); an element is not scored as an outlier
before ``outlier_min_history`` feature vectors (30) *and* the next forest refit (every
``outlier_refit_interval`` s, 30 min). A restarted engine that :meth:`load`\\ s its state keeps
its warm-up.

Each call scores the new values against the baseline *before* learning them, and does not
learn the points whose rule is active, so a lasting fault is not absorbed as "normal".
``Event.score`` is ``q / (1 + q)`` with ``q`` the distance to firing in units of the threshold;
0.5 means "exactly at the threshold".

State: :meth:`save` / :meth:`load` write one ``.npz`` (arrays only, ``allow_pickle=False``) whose
``header`` entry is JSON with ``format`` / ``version`` (:data:`STATE_VERSION`, 3), parameters,
series index, tracker states, active events and the composite's ``state_dict()`` (its arrays as
``composite.*`` entries, its version and settings in the header). A composite state that
``load_state_dict`` refuses (another composite version, other settings) means a fresh composite
and a warning, not a failed load; a version-2 file (before the composite ran in production) is
read with a fresh composite; any other version is refused with :class:`StateVersionError`.
Memory: :meth:`nbytes_per_series`, the composite's state included: about 710 bytes of engine
arrays per series (element and port arrays amortised; 98 of them the sustained-climb fit) plus
the composite's 1,376, i.e. 2,087 in ``benchmarks/detectors.py``; up to about 3.5 KB just after
the composite doubles its capacity.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, clone

from collectors.sample import Sample, SampleKind
from config.models import DetectorsConfig
from detectors.baseline import EwmaBaseline
from detectors.collective import CollectiveDetector
from detectors.composite import DEFAULT_THRESHOLD as COMPOSITE_THRESHOLD
from detectors.composite import CompositeDetector
from detectors.event import Event, EventState, Severity
from detectors.forecast import SeasonalProfile, TrendForecaster
from detectors.outlier import ElementOutlierDetector
from detectors.state import ConditionStatus, ConditionTracker, FlapDamping

__all__ = [
    "COLLECTIVE_DEGRADATION",
    "DETECTOR_COLLECTIVE",
    "DETECTOR_EWMA",
    "DETECTOR_FORECAST",
    "DETECTOR_OUTLIER",
    "DETECTOR_STATIC",
    "ELEMENT_ANOMALOUS",
    "ERRORS_RISING",
    "PREDICTED_BREACH",
    "SERVICE_THRESHOLDS",
    "STATE_VERSION",
    "UTILIZATION_HIGH",
    "DetectionEngine",
    "SeriesScorer",
    "ServiceThreshold",
    "StateVersionError",
]

ERRORS_RISING = "InterfaceErrorsRising"
UTILIZATION_HIGH = "InterfaceUtilizationHigh"
OPTICAL_RX_LOW = "OpticalRxPowerLow"
DSL_SNR_LOW = "DslSnrMarginLow"
CPU_HIGH = "CpuUtilizationHigh"
ELEMENT_ANOMALOUS = "ElementBehaviourAnomalous"
COLLECTIVE_DEGRADATION = "CollectiveDegradation"
DETECTOR_EWMA = "ewma_baseline"
DETECTOR_STATIC = "static_threshold"
DETECTOR_FORECAST = "trend_forecast"
DETECTOR_OUTLIER = "isolation_forest"
DETECTOR_COLLECTIVE = "collective"

STATE_FORMAT = "vigil-detection-engine"
STATE_VERSION = 3  # 3: the composite's state (``composite.*`` arrays, header ``composite``)
_READABLE_VERSIONS = (2, 3)  # a version-2 state is read with a fresh composite
_COMPOSITE_PREFIX = "composite."

log = logging.getLogger(__name__)

_SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]
_RATE = SampleKind.RATE
_GAUGE = SampleKind.GAUGE


class StateVersionError(ValueError):
    """A saved engine state has another format version than this code reads."""


class SeriesScorer(Protocol):
    """Hook for a per-series score in [0, 1] (the composite detector plugs in here)."""

    def score_update(
        self, columns: NDArray[np.intp], values: NDArray[np.float64], times: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Score then learn one step of the series ``columns``; NaN = no score yet."""
        ...


@dataclass(frozen=True, slots=True)
class ServiceThreshold:
    """Where a metric breaches its service level: ``direction`` +1 upper, -1 lower limit."""

    value: float
    clear: float
    direction: int


SERVICE_THRESHOLDS: dict[str, ServiceThreshold] = {
    "if_in_utilization": ServiceThreshold(0.90, 0.85, +1),
    "if_out_utilization": ServiceThreshold(0.90, 0.85, +1),
    "if_in_errors_per_s": ServiceThreshold(50.0, 40.0, +1),
    "if_out_errors_per_s": ServiceThreshold(50.0, 40.0, +1),
    "if_in_discards_per_s": ServiceThreshold(100.0, 80.0, +1),
    "optical_rx_dbm": ServiceThreshold(-27.0, -26.0, -1),
    "dsl_snr_margin_db": ServiceThreshold(6.0, 7.0, -1),
    "cpu_utilization": ServiceThreshold(0.90, 0.85, +1),
}


DEFAULT_DAMPING = FlapDamping()
"""Cisco's defaults: penalty 1000 per flap, suppress 2000, reuse 750, half-life 15 min."""


class _Kind(Enum):
    ERRORS = 0
    UTILIZATION = 1
    OPTICAL = 2
    DSL_SNR = 3
    CPU = 4


# metric -> (kind, what it is in a summary, unit, sample kinds accepted)
_METRICS: dict[str, tuple[_Kind, str, str]] = {
    "if_in_utilization": (_Kind.UTILIZATION, "Inbound utilisation", "%"),
    "if_out_utilization": (_Kind.UTILIZATION, "Outbound utilisation", "%"),
    "if_in_errors_per_s": (_Kind.ERRORS, "CRC/input errors", "/s"),
    "if_out_errors_per_s": (_Kind.ERRORS, "Output errors", "/s"),
    "if_in_discards_per_s": (_Kind.ERRORS, "Input discards", "/s"),
    "optical_rx_dbm": (_Kind.OPTICAL, "Optical RX power", " dBm"),
    "dsl_snr_margin_db": (_Kind.DSL_SNR, "DSL SNR margin", " dB"),
    "cpu_utilization": (_Kind.CPU, "CPU", "%"),
}
# Interface rates come as RATE samples (today's collectors); the new gauges may come as either.
_ACCEPT: dict[str, frozenset[SampleKind]] = {
    m: frozenset({_RATE}) if k in (_Kind.ERRORS, _Kind.UTILIZATION) else frozenset({_RATE, _GAUGE})
    for m, (k, _w, _u) in _METRICS.items()
}

_RULES: dict[_Kind, tuple[str, Severity]] = {
    _Kind.ERRORS: (ERRORS_RISING, Severity.WARNING),
    _Kind.UTILIZATION: (UTILIZATION_HIGH, Severity.CRITICAL),
    _Kind.OPTICAL: (OPTICAL_RX_LOW, Severity.CRITICAL),
    _Kind.DSL_SNR: (DSL_SNR_LOW, Severity.WARNING),
    _Kind.CPU: (CPU_HIGH, Severity.WARNING),
}
PREDICTED_BREACH: dict[str, str] = {
    ERRORS_RISING: "InterfaceErrorsBreachPredicted",
    UTILIZATION_HIGH: "InterfaceUtilizationBreachPredicted",
    OPTICAL_RX_LOW: "OpticalRxPowerBreachPredicted",
    DSL_SNR_LOW: "DslSnrMarginBreachPredicted",
    CPU_HIGH: "CpuUtilizationBreachPredicted",
}
"""Rule alertname -> alertname of its predicted-breach event."""

# Element feature vector of the outlier detector: metric -> (feature, aggregate over ports).
_FEATURES: dict[str, tuple[int, str]] = {
    "if_in_utilization": (0, "max"),
    "if_out_utilization": (1, "max"),
    "if_in_errors_per_s": (2, "sum"),
    "if_out_errors_per_s": (2, "sum"),
    "if_in_discards_per_s": (3, "sum"),
    "cpu_utilization": (4, "max"),
    "optical_rx_dbm": (5, "min"),
    "dsl_snr_margin_db": (6, "min"),
}
_N_FEATURES = 7
_FEATURE_FLOOR = (0.05, 0.05, 0.5, 0.5, 0.05, 1.0, 1.0)  # util, log1p(rate), dB
_AGG_CODE = {"max": 0, "sum": 1, "min": 2}

_FORECAST_STEPS = 24  # the seasonal forecast's path is checked every horizon / 24 (5 min)
# Half-lives of deviation history before the seasonal forecast speaks (3 h at 30 min): with 2,
# the start-up transient on top of a spike the first day's profile had learnt still gave ~1
# false prediction per 1,000 element-days in the hour after (benchmarks/lead_time.py).
_SEASONAL_SETTLE = 6.0

# Tracker families (keys of ``_trackers``) and what their integer keys index.
_T_RULE, _T_FORECAST, _T_OUTLIER, _T_PORTS, _T_PARENTS = "rule", "forecast", "outlier", "ports", "parents"


@dataclass(frozen=True, slots=True)
class _Series:
    """What the engine knows about one column."""

    element: str
    metric: str
    kind: _Kind
    what: str
    interface: str
    labels: tuple[tuple[str, str], ...]  # the rule event's labels, alertname and element first


class DetectionEngine:
    """Score samples against per-series baselines, trends, element and parent groups; emit events.

    Parameters are the shipped defaults (``DetectorsConfig`` holds the site's own); the new
    ones have no config field yet and keep these values in production.
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
        hysteresis: float = 0.5,
        damping: FlapDamping | None = DEFAULT_DAMPING,
        forecast_half_life: float = 1800.0,
        forecast_horizon: float = 7200.0,
        forecast_min_t: float = 4.0,
        forecast_fast_half_life: float = 1800.0,
        forecast_fast_for: float | None = 600.0,
        forecast_climb_for: float | None = 960.0,
        forecast_climb_rate: float = 0.3,
        forecast_climb_half_life: float = 60.0,
        forecast_seasonal: bool = True,
        error_window: float = 300.0,
        service_thresholds: Mapping[str, ServiceThreshold] | None = None,
        outlier_threshold: float = 0.6,
        outlier_window: int = 60,
        outlier_min_history: int = 30,
        outlier_refit_interval: float = 1800.0,
        outlier_events: bool = True,
        collective_min_fraction: float = 0.5,
        collective_min_count: int = 3,
        collective_window: float = 300.0,
        composite_threshold: float = COMPOSITE_THRESHOLD,
        composite_sustain: int = 2,
        parents: Mapping[str, str] | None = None,
        composite: SeriesScorer | None = None,
    ) -> None:
        if not 0.0 < hysteresis <= 1.0:
            raise ValueError(f"hysteresis must be in (0, 1], got {hysteresis!r}")
        self.threshold = threshold
        self.utilization_threshold = utilization_threshold
        self.error_rate_min = error_rate_min
        self.hysteresis = hysteresis
        self.outlier_refit_interval = outlier_refit_interval
        self.outlier_events = outlier_events
        if composite_sustain < 1:
            raise ValueError(f"composite_sustain must be >= 1, got {composite_sustain!r}")
        self.composite_threshold = composite_threshold
        self.composite_sustain = composite_sustain
        self.composite = composite
        self._params: dict[str, Any] = {
            "alpha": alpha, "threshold": threshold, "warmup": warmup, "for_": for_,
            "keep_firing_for": keep_firing_for, "utilization_threshold": utilization_threshold,
            "error_rate_min": error_rate_min, "hysteresis": hysteresis,
            "damping": None if damping is None else [damping.penalty, damping.suppress,
                                                     damping.reuse, damping.half_life,
                                                     damping.max_suppress],
            "forecast_half_life": forecast_half_life, "forecast_horizon": forecast_horizon,
            "forecast_min_t": forecast_min_t, "forecast_fast_half_life": forecast_fast_half_life,
            "forecast_fast_for": forecast_fast_for,
            "forecast_climb_for": forecast_climb_for, "forecast_climb_rate": forecast_climb_rate,
            "forecast_climb_half_life": forecast_climb_half_life,
            "forecast_seasonal": forecast_seasonal, 
            "error_window": error_window,
            "outlier_threshold": outlier_threshold,
            "outlier_window": outlier_window, "outlier_min_history": outlier_min_history,
            "outlier_refit_interval": outlier_refit_interval, "outlier_events": outlier_events,
            "collective_min_fraction": collective_min_fraction,
            "collective_min_count": collective_min_count, "collective_window": collective_window,
            "composite": composite is not None, "composite_threshold": composite_threshold,
            "composite_sustain": composite_sustain,
            "service_thresholds": None if service_thresholds is None else {
                m: [s.value, s.clear, s.direction] for m, s in service_thresholds.items()
            },
        }  # fmt: skip
        thresholds = dict(SERVICE_THRESHOLDS)
        for metric in ("if_in_utilization", "if_out_utilization"):
            clear = utilization_threshold - (0.90 - 0.85)
            thresholds[metric] = ServiceThreshold(utilization_threshold, clear, +1)
        thresholds.update(service_thresholds or {})
        self.service_thresholds: Mapping[str, ServiceThreshold] = thresholds
        self._metric_code = {m: i for i, m in enumerate(_METRICS)}
        self._thr = np.array([thresholds[m].value for m in _METRICS])
        self._clear = np.array([thresholds[m].clear for m in _METRICS])
        self._sign = np.array([float(thresholds[m].direction) for m in _METRICS])
        kinds = [k for k, _w, _u in _METRICS.values()]
        self._m_errors = np.array([k is _Kind.ERRORS for k in kinds])
        self._m_util = np.array([k is _Kind.UTILIZATION for k in kinds])
        self._m_static = np.array([k is not _Kind.ERRORS for k in kinds])
        self._m_feature = np.array([_FEATURES[m][0] for m in _METRICS], dtype=np.int8)
        self._m_agg = np.array([_AGG_CODE[_FEATURES[m][1]] for m in _METRICS], dtype=np.int8)

        self._baseline = EwmaBaseline(alpha=alpha, warmup=warmup, threshold=threshold).resize(0)
        self._forecaster = TrendForecaster(
            half_life=forecast_half_life, horizon=forecast_horizon, min_t=forecast_min_t
        ).resize(0)
        # The same trend on the deviation from each series' time-of-day profile (used once the
        # profile knows a whole day), and the profile itself.
        self._seasonal_forecaster = TrendForecaster(
            half_life=forecast_half_life, horizon=forecast_horizon, min_t=forecast_min_t
        ).resize(0)
        self._profile = SeasonalProfile().resize(0)
        self.forecast_seasonal = forecast_seasonal
        self.error_window = error_window
        # Per metric: the forecaster's memory and shortest span (``forecast_fast_half_life`` for
        # CPU). It defaults to the slow kinds' 30 min: a 10-min memory would catch 20-60 min
        # runaways earlier but also predicts a breach on every 5-10 min climb of an ordinary
        # CPU spike to 70-85 % (benchmarks/lead_time.py, hot-but-healthy population). A CPU
        # prediction must also hold ``forecast_fast_for`` (10 min; None = ``for_``), longer than
        # such a climb: with the 2-min ``for`` the spikes gave ~1.5 false predictions per 1,000
        # element-days over 28 days.
        fast = np.array([k is _Kind.CPU for k, _w, _u in _METRICS.values()])
        self._fc_half_life = np.where(fast, forecast_fast_half_life, forecast_half_life)
        self._fc_min_span = np.where(fast, forecast_fast_half_life, self._forecaster.min_span)
        # A trend learnt over a few half-lives is not extrapolated much further than that.
        self._fc_horizon = forecast_horizon * self._fc_half_life / forecast_half_life
        self._fc_for = np.where(fast, for_ if forecast_fast_for is None else forecast_fast_for, for_)
        # A sustained climb of the fast kinds (CPU): a runaway climbs for tens of minutes from
        # its usual level, too fast for the 30-min trend (its fit still holds the flat hour
        # before) and too long for an ordinary spike (up in 1-10 min, then flat). The slope of
        # a 1-min half-life fit staying at ``forecast_climb_rate`` (per hour) or steeper, with
        # the crossing it points at within the horizon, for ``forecast_climb_for`` seconds
        # (16 min, plus the 2-min ``for``) is a predicted breach (benchmarks/lead_time.py).
        if forecast_climb_for is not None and not (forecast_climb_for > 0 and forecast_climb_rate > 0):
            raise ValueError("forecast_climb_for and forecast_climb_rate must be > 0")
        self.forecast_climb_for = forecast_climb_for
        self._for = for_
        self._climb_rate = forecast_climb_rate / 3600.0
        self._m_climb = fast & (forecast_climb_for is not None)
        self._climber = TrendForecaster(
            half_life=forecast_climb_half_life, horizon=forecast_horizon, min_t=forecast_min_t,
            min_points=3, min_span=0.0, huber=math.inf,
        ).resize(0)
        self._climb_since = np.zeros(0)  # start of the series' current climb (NaN: not climbing)
        self._outlier = ElementOutlierDetector(
            window=outlier_window,
            min_history=outlier_min_history,
            refit_every=2**62,  # refitted by time in update(), not by call count
            min_scale=_FEATURE_FLOOR,
            threshold=outlier_threshold,
        ).resize(0, _N_FEATURES)
        self._port_collective = CollectiveDetector(
            min_fraction=collective_min_fraction, min_count=collective_min_count, window=collective_window
        ).fit(np.zeros(0, dtype=np.intp), 0)
        self._parent_collective = CollectiveDetector(
            min_fraction=collective_min_fraction, min_count=collective_min_count, window=collective_window
        ).fit(np.zeros(0, dtype=np.intp), 0)
        self._trackers: dict[str, ConditionTracker[int]] = {
            _T_RULE: ConditionTracker(for_=for_, keep_firing_for=keep_firing_for, damping=damping),
            _T_FORECAST: ConditionTracker(for_=for_, keep_firing_for=keep_firing_for),
            _T_OUTLIER: ConditionTracker(for_=for_, keep_firing_for=keep_firing_for),
            _T_PORTS: ConditionTracker(for_=for_, keep_firing_for=keep_firing_for),
            _T_PARENTS: ConditionTracker(for_=for_, keep_firing_for=keep_firing_for),
        }
        # series
        self._index: dict[_SeriesKey, int] = {}
        self._series: list[_Series] = []
        self._metric = np.zeros(0, dtype=np.int8)  # index into _METRICS
        self._elem = np.zeros(0, dtype=np.int32)
        self._port = np.zeros(0, dtype=np.int32)
        self._held = np.zeros(0, dtype=bool)  # rule condition at the last evaluation
        self._windowed = np.zeros(0)  # rate averaged over ``error_window`` (NaN before the first)
        self._score = np.zeros(0, dtype=np.float32)  # composite score, NaN = none
        self._composite_run = np.zeros(0, dtype=np.int8)  # high composite scores in a row
        # elements, ports, parents
        self._elements: list[str] = []
        self._element_index: dict[str, int] = {}
        self._ports: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._port_elem = np.zeros(0, dtype=np.int32)
        self._port_keys: list[tuple[str, tuple[tuple[str, str], ...]]] = []  # port -> key, lazily
        self._parents: dict[str, str] = dict(parents or {})
        self._parent_names: list[str] = []
        self._last_refit = -math.inf
        self._last_trees = -math.inf
        self._active: dict[tuple[str, int], Event] = {}
        self._collective_parents: set[str] = set()  # parents whose collective event is active

    @classmethod
    def from_config(cls, cfg: DetectorsConfig, *, parents: Mapping[str, str] | None = None) -> Self:
        """An engine with the site's detector settings (and the topology's parents).

        This is what ``vigil run`` runs: the shipped :class:`~detectors.composite.CompositeDetector`
        (``DEFAULTS``, threshold ``DEFAULT_THRESHOLD``, the objects ``benchmarks/nab.py`` scores)
        is plugged in unless the site sets ``detectors.composite: false``.
        """
        return cls(
            alpha=cfg.alpha,
            threshold=cfg.threshold,
            warmup=cfg.warmup,
            for_=cfg.for_,
            keep_firing_for=cfg.keep_firing_for,
            utilization_threshold=cfg.utilization_threshold,
            error_rate_min=cfg.error_rate_min,
            parents=parents,
            composite=CompositeDetector() if cfg.composite else None,
            composite_threshold=COMPOSITE_THRESHOLD,
        )

    # -- read-only views ------------------------------------------------------------------

    @property
    def series_count(self) -> int:
        """Number of series seen so far."""
        return len(self._series)

    @property
    def baseline(self) -> EwmaBaseline:
        """The shared baseline (read it, do not fit it)."""
        return self._baseline

    @property
    def forecaster(self) -> TrendForecaster:
        """The shared trend forecaster (read it, do not fit it)."""
        return self._forecaster

    @property
    def outlier(self) -> ElementOutlierDetector:
        """The per-element outlier detector (read it, do not fit it)."""
        return self._outlier

    def active(self) -> list[Event]:
        """Conditions currently pending or firing, as of their latest evaluation."""
        return list(self._active.values())

    def composite_scores(self) -> NDArray[np.float32]:
        """The latest composite score of every series column (a copy; NaN = none yet or no composite)."""
        return self._score.copy()

    def get_params(self) -> dict[str, Any]:
        """The settings this engine was built with (JSON-ready; saved with its state)."""
        return json.loads(json.dumps(self._params))

    def set_parents(self, parents: Mapping[str, str]) -> None:
        """Replace the element -> parent map (topology reload); collective state is kept."""
        self._parents = dict(parents)
        self._regroup_parents()

    def collective_members(self, parent: str, now: float) -> list[str]:
        """Children (elements) of ``parent`` that count as anomalous at ``now``."""
        if parent not in self._parent_names:
            return []
        members = self._parent_collective.members(self._parent_names.index(parent), now)
        return [self._elements[i] for i in members]

    def nbytes_per_series(self) -> float:
        """Bytes of numpy state per series (series, port and element arrays amortised).

        The composite's state is included (all of its capacity: it grows by doubling, so up to
        twice its own bytes per series).
        """
        arrays = [
            self._baseline.mean_, self._baseline.scale_, self._baseline.n_seen_,
            self._forecaster.stats_, self._forecaster.t_last_, self._forecaster.n_seen_,
            self._forecaster.errors_, self._seasonal_forecaster.errors_,
            self._forecaster.run_, self._seasonal_forecaster.run_,
            self._seasonal_forecaster.stats_, self._seasonal_forecaster.t_last_,
            self._seasonal_forecaster.n_seen_, self._profile.profile_, self._profile.first_,
            self._climber.stats_, self._climber.t_last_, self._climber.n_seen_, self._climber.errors_,
            self._climber.run_, self._climb_since,
            self._windowed, self._metric, self._elem, self._port, self._held, self._score,
            self._composite_run, self._port_elem,
            self._port_collective.parent_, self._port_collective.last_anomalous_,
            self._parent_collective.parent_, self._parent_collective.last_anomalous_,
            self._outlier.buffer_, self._outlier.pos_, self._outlier.count_,
            self._outlier.center_, self._outlier.scale_,
        ]  # fmt: skip
        return (sum(a.nbytes for a in arrays) + self._composite_nbytes()) / max(self.series_count, 1)

    def _composite_nbytes(self) -> float:
        """Total bytes of the composite's state (0 without one or before its first update)."""
        per_series = getattr(self.composite, "nbytes_per_series", None)
        width = getattr(self.composite, "n_features_in_", 0)
        return float(per_series()) * width if per_series is not None and width else 0.0

    # -- the step -------------------------------------------------------------------------

    def update(self, samples: Sequence[Sample]) -> list[Event]:
        """Consume one time step of samples; return the events whose state changed.

        Only the metrics above are used (interface metrics as RATE samples). All samples of a
        call are one time step (the latest sample of a series wins); ``now`` is their largest
        timestamp. Series absent from a call keep their state: missing data is not a recovery.
        """
        return self.update_columns(*self._columns(samples))

    def columns_of(self, keys: Sequence[_SeriesKey]) -> NDArray[np.intp]:
        """Column of each ``(element, metric, labels)`` series key, adding new series; -1 = not scored.

        With :meth:`update_columns`, the array path for callers that produce many series per
        step (a simulator, a bulk importer): the caller vouches that interface metrics are
        per-second rates, as :meth:`update` checks from ``Sample.kind``.
        """
        out = np.full(len(keys), -1, dtype=np.intp)
        for i, key in enumerate(keys):
            col = self._index.get(key)
            if col is None and key[1] in _METRICS:
                col = self._add_series(Sample(key[0], key[1], key[2], 0.0, 0.0, _RATE))
            if col is not None:
                out[i] = col
        return out

    def update_columns(
        self, columns: NDArray[np.intp], values: NDArray[np.float64], times: NDArray[np.float64]
    ) -> list[Event]:
        """:meth:`update` on arrays: one time step of the series ``columns`` (from :meth:`columns_of`).

        Same code path as :meth:`update` after its sample-to-column lookup.

        Entries with a negative column or a NaN value are skipped; of a column given twice the
        latest time (then the last entry) wins.
        """
        cols = np.asarray(columns, dtype=np.intp)
        x = np.asarray(values, dtype=np.float64)
        times = np.broadcast_to(np.asarray(times, dtype=np.float64), x.shape)
        keep = (cols >= 0) & ~np.isnan(x)
        cols, x, times = _last_per_column(cols[keep], x[keep], times[keep])
        if not len(cols):
            return []
        if int(cols.max()) >= self.series_count:
            raise ValueError(f"column {int(cols.max())} is not a series of this engine")
        self._grow()
        now = float(times.max())
        codes = self._metric[cols]
        thr, clear, sign = self._thr[codes], self._clear[codes], self._sign[codes]
        base = self._baseline
        mean = base.mean_[cols]
        scale = np.maximum(base.scale_[cols], base.min_scale)
        warmed = base.n_seen_[cols] >= base.warmup
        z = base.deviation_columns(cols, x)  # scored before learning x; NaN if un-warmed

        # Rules, with hysteresis: a held condition stays until below the clear level.
        held = self._held[cols]
        above = (z > self.threshold) | (held & (z > self.hysteresis * self.threshold))
        beyond = warmed & (sign * (x - thr) >= 0)
        static = self._m_static[codes] & (beyond | (held & warmed & (sign * (x - clear) > 0)))
        is_util = self._m_util[codes]
        # Error rates count over a window (as a rule on rate(x[5m]) does): a burst of a few
        # polls is noise, a growth is sustained.
        fc = self._forecaster
        dt = times - fc.t_last_[cols]
        dt = np.where(np.isfinite(dt) & (dt > 0), dt, 0.0)
        previous = self._windowed[cols]
        windowed = np.where(
            np.isnan(previous), x, previous - np.expm1(-dt / self.error_window) * (x - previous)
        )
        self._windowed[cols] = windowed
        active = (
            (self._m_errors[codes] & above & (windowed >= self.error_rate_min))
            | static
            | (is_util & above & (x >= 0.8 * thr))
        )
        base.partial_fit_columns(cols, np.where(active, np.nan, x))  # never learn the fault
        self._held[cols] = active

        # Trend to the service threshold (learns every point: the ramp is the signal).
        half_life, min_span = self._fc_half_life[codes], self._fc_min_span[codes]
        horizon = self._fc_horizon[codes]
        fc.partial_fit(x[None, :], times[None, :], columns=cols, half_life=half_life)
        eta = fc.predict_eta(x, times, thr, sign, columns=cols, min_span=min_span, horizon=horizon)
        usual = np.full(len(cols), np.nan)
        if self.forecast_seasonal:
            usual = self._profile.value(times, columns=cols)
            eta = self._seasonal_eta(cols, x, usual, times, thr, sign, half_life, min_span, horizon, eta)
        eta, climbing = self._climb(cols, codes, x, times, thr, sign, horizon, eta)
        # A breach under way (rule pending, firing or in keep_firing_for) needs no forecast.
        ruled = np.fromiter(self._trackers[_T_RULE], dtype=np.intp)
        predicted = ~np.isnan(eta) & warmed & ~active & ~np.isin(cols, ruled)
        level = fc.trend(cols)[0]
        if self.forecast_seasonal:  # the usual day, without the faults (once it is known)
            tracked = np.fromiter(self._trackers[_T_FORECAST], dtype=np.intp)
            normal = ~active & (np.isnan(usual) | (~predicted & ~np.isin(cols, tracked)))
            step = np.where(dt > 0, dt, self._profile.period / self._profile.bins)
            self._profile.partial_fit(np.where(normal, x, np.nan), times, columns=cols, dt=step)

        composite = np.full(len(cols), np.nan)
        if self.composite is not None:
            composite = np.asarray(self.composite.score_update(cols, x, times), dtype=np.float64)
            self._score[cols] = composite

        events: list[Event] = []
        ctx = _Step(cols, x, mean, scale, z, static, thr, eta, level, composite, now)
        events += self._rule_events(ctx, active)
        events += self._forecast_events(ctx, predicted, beyond, climbing)
        anomalous = active | predicted
        if self.composite is not None:
            anomalous |= self._composite_evidence(cols, composite)
        outliers = self._outlier_step(cols, x, now, events)
        events += self._collective_events(cols, anomalous, outliers, now)
        return events

    def _composite_evidence(self, cols: NDArray[np.intp], composite: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Series the composite marks anomalous for the collective detector: a sustained high score.

        ``composite >= composite_threshold`` at ``composite_sustain`` evaluations of the series
        in a row. The composite reports an episode's first detection and suppresses its echoes
        (a score must beat the series' recent record by 20 %), so two high scores in a row mean
        the deviation is still growing. One high score is not enough: at the NAB-tuned threshold
        some series of most elements score high every few minutes (an error or discard burst, a
        CPU spike), and a parent's children then "degrade together" by chance
        (``benchmarks/lead_time.py``: 535 false CollectiveDegradation per 1,000 element-days
        with a single high score corroborated by a 3-sigma deviation, 0 with two in a row).
        """
        with np.errstate(invalid="ignore"):
            high = composite >= self.composite_threshold  # NaN (no score yet) is not high
        run = np.where(high, np.minimum(self._composite_run[cols].astype(np.int16) + 1, 127), 0)
        self._composite_run[cols] = run
        return run >= self.composite_sustain

    def _climb(
        self,
        cols: NDArray[np.intp],
        codes: NDArray[np.intp],
        x: NDArray[np.float64],
        times: NDArray[np.float64],
        thr: NDArray[np.float64],
        sign: NDArray[np.float64],
        horizon: NDArray[np.float64],
        eta: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """The ETA with sustained climbs of the fast kinds folded in, and which series climb."""
        climbing = np.zeros(len(cols), dtype=bool)
        m = np.flatnonzero(self._m_climb[codes])
        if not len(m) or self.forecast_climb_for is None:
            return eta, climbing
        c = cols[m]
        climber = self._climber
        gap = times[m] - climber.t_last_[c]  # NaN for a new series
        climber.partial_fit(x[m][None, :], times[m][None, :], columns=c)
        slope = climber.trend(c)[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            eta_c = (thr[m] - x[m]) / slope
            steep = (sign[m] * slope >= self._climb_rate) & (eta_c > 0) & (eta_c <= horizon[m])
            steep &= ~(gap > 5 * climber.half_life)  # polls missed: a climb is seen, not inferred
        since = self._climb_since[c]
        since = np.where(steep, np.where(np.isnan(since), times[m], since), np.nan)
        self._climb_since[c] = since
        held = steep & (times[m] - since >= self.forecast_climb_for)
        climbing[m] = held
        out = eta.copy()
        out[m] = np.where(held, np.fmin(eta[m], eta_c), eta[m])
        return out, climbing

    def _seasonal_eta(
        self,
        cols: NDArray[np.intp],
        x: NDArray[np.float64],
        usual: NDArray[np.float64],
        times: NDArray[np.float64],
        thr: NDArray[np.float64],
        sign: NDArray[np.float64],
        half_life: NDArray[np.float64],
        min_span: NDArray[np.float64],
        horizon: NDArray[np.float64],
        eta: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """ETA from the trend of the deviation from the usual day, where the profile knows it.

        A busy link climbs every evening; its level *against the usual evening* does not. The
        forecast is ``profile(t + h) + deviation level + deviation slope x h``.
        """
        deviation = x - usual
        sfc = self._seasonal_forecaster
        sfc.partial_fit(deviation[None, :], times[None, :], columns=cols, half_life=half_life)
        known = np.flatnonzero(~np.isnan(usual))
        if not len(known):
            return eta
        out = eta.copy()
        # The deviation's fit starts the day the profile becomes known: until it has
        # _SEASONAL_SETTLE half-lives of history its slope is a transient (of the fit, and of
        # the one-day profile's bumps), and the plain trend is not wanted either (it
        # extrapolates the daily climb) -- no forecast for those three hours.
        age = times[known] - self._profile.first_[cols[known]] - self._profile.period
        young = age < _SEASONAL_SETTLE * half_life[known]
        out[known[young]] = np.nan
        known = known[~young]
        if not len(known):
            return out
        steps = np.arange(1, _FORECAST_STEPS + 1)[:, None] / _FORECAST_STEPS
        kc = cols[known]
        offsets = self._profile.path(times[known], steps * horizon[known], columns=kc)
        out[known] = sfc.predict_eta(
            deviation[known], times[known], thr[known] - usual[known], sign[known], columns=kc,
            min_span=min_span[known], horizon=horizon[known], offsets=offsets,
        )  # fmt: skip
        return out

    # -- rule families --------------------------------------------------------------------

    def _rule_events(self, s: _Step, active: NDArray[np.bool_]) -> list[Event]:
        tracker = self._trackers[_T_RULE]
        events: list[Event] = []
        for col, i in _candidates(s.cols, active, tracker):
            transition = tracker.update(col, bool(active[i]), s.now)
            status = tracker.status(col)
            if self._settle((_T_RULE, col), status, s.now, events) is None:
                continue
            assert status is not None
            event = self._rule_event(col, i, status, s)
            self._keep((_T_RULE, col), status, event, transition, events)
        tracker.pop_dropped()
        return events

    def _forecast_events(
        self, s: _Step, predicted: NDArray[np.bool_], beyond: NDArray[np.bool_], climbing: NDArray[np.bool_]
    ) -> list[Event]:
        tracker = self._trackers[_T_FORECAST]
        events: list[Event] = []
        for col, i in _candidates(s.cols, predicted, tracker):
            # A FIRING prediction that came true is held while the value stays beyond the
            # threshold; a pending one is dropped (firing after the crossing predicts nothing).
            was = tracker.status(col)
            fulfilled = bool(beyond[i]) and was is not None and was.state is EventState.FIRING
            # a sustained climb has already lasted longer than the fast kinds' hold
            hold = self._for if climbing[i] else float(self._fc_for[self._metric[col]])
            transition = tracker.update(col, bool(predicted[i]) or fulfilled, s.now, for_=hold)
            status = tracker.status(col)
            if self._settle((_T_FORECAST, col), status, s.now, events) is None:
                continue
            assert status is not None
            event = self._forecast_event(col, i, status, s, fulfilled)
            self._keep((_T_FORECAST, col), status, event, transition, events)
        tracker.pop_dropped()
        return events

    def _outlier_step(
        self, cols: NDArray[np.intp], x: NDArray[np.float64], now: float, events: list[Event]
    ) -> NDArray[np.bool_]:
        """Score and learn this step's element vectors; return which elements are outliers."""
        elems, feats = self._element_features(cols, x)
        det = self._outlier
        scores = det.score_samples(feats, elements=elems)
        outlier = scores < -det.threshold  # NaN compares False
        # Like the baseline, the element's history does not learn a fault (a rule holding on one
        # of its series): learnt, the fault became "normal" (back to normal mid-fault) and the
        # healthy element an outlier once it cleared.
        faulty = np.unique(self._elem[cols][self._held[cols]])
        learn = ~np.isin(elems, faulty)
        det.partial_fit(feats[learn], elements=elems[learn])
        if now - self._last_refit >= self.outlier_refit_interval:
            # centres every interval; trees when there are none yet, then every 12 intervals
            stale = not det.trees_ or now - self._last_trees >= 12 * self.outlier_refit_interval
            det.refit(trees=stale)
            self._last_refit = now
            if stale and det.trees_:
                self._last_trees = now
        flags = np.zeros(len(self._elements), dtype=bool)
        flags[elems[outlier]] = True
        if not self.outlier_events:
            return flags
        tracker = self._trackers[_T_OUTLIER]
        for e, i in _candidates(elems, outlier, tracker):
            transition = tracker.update(e, bool(outlier[i]), now)
            status = tracker.status(e)
            if self._settle((_T_OUTLIER, e), status, now, events) is None:
                continue
            assert status is not None
            event = self._outlier_event(e, status, float(-scores[i]) if np.isfinite(scores[i]) else 0.0)
            self._keep((_T_OUTLIER, e), status, event, transition, events)
        tracker.pop_dropped()
        return flags

    def _collective_events(
        self,
        cols: NDArray[np.intp],
        anomalous: NDArray[np.bool_],
        element_outliers: NDArray[np.bool_],
        now: float,
    ) -> list[Event]:
        ports = self._port[cols]
        hot_ports = np.unique(ports[anomalous])
        self._port_collective.partial_fit(np.ones(len(hot_ports), dtype=bool), now, children=hot_ports)
        hot_elems = np.union1d(self._elem[cols][anomalous], np.flatnonzero(element_outliers))
        self._parent_collective.partial_fit(np.ones(len(hot_elems), dtype=bool), now, children=hot_elems)
        events: list[Event] = []
        touched = np.unique(self._elem[cols])
        # ports of an element -> the element
        firing = self._port_collective.predict(now)
        self._collective_family(_T_PORTS, firing, touched, now, events)
        # elements of a parent -> the parent
        if self._parent_names:
            firing = self._parent_collective.predict(now)
            parents = self._parent_collective.parent_[touched]
            self._collective_family(_T_PARENTS, firing, np.unique(parents[parents >= 0]), now, events)
        return events

    def _collective_family(
        self, family: str, firing: NDArray[np.bool_], touched: NDArray[Any], now: float, out: list[Event]
    ) -> None:
        tracker = self._trackers[family]
        candidates = {int(p) for p in np.flatnonzero(firing)}
        touched_set = {int(p) for p in touched}
        candidates.update(k for k in tracker if k in touched_set)
        for p in sorted(candidates):
            transition = tracker.update(p, bool(firing[p]), now)
            status = tracker.status(p)
            if self._settle((family, p), status, now, out) is None:
                continue
            assert status is not None
            event = self._collective_event(family, p, status, now)
            self._keep((family, p), status, event, transition, out)
        tracker.pop_dropped()

    def _settle(
        self, key: tuple[str, int], status: ConditionStatus | None, now: float, out: list[Event]
    ) -> ConditionStatus | None:
        """Forget a dropped or purged condition's event; pass the status through.

        A pending condition that clears before ``for`` never fired, so nobody was notified; it
        still ends with a RESOLVED event (``fired_at`` None) so that stores listing pending
        conditions (the alerts API, /agent) do not keep it pending forever.
        """
        if status is None:
            old = self._active.pop(key, None)
            if old is not None and key[0] == _T_PARENTS:
                self._collective_parents.discard(old.element)
            if old is not None and old.state is EventState.PENDING:
                out.append(replace(old, state=EventState.RESOLVED, resolved_at=now))
        return status

    def _keep(
        self,
        key: tuple[str, int],
        status: ConditionStatus,
        event: Event,
        transition: EventState | None,
        out: list[Event],
    ) -> None:
        if status.state is EventState.RESOLVED:
            self._active.pop(key, None)
            if key[0] == _T_PARENTS:
                self._collective_parents.discard(event.element)
        else:
            self._active[key] = event
            if key[0] == _T_PARENTS:
                self._collective_parents.add(event.element)
        if transition is not None:
            out.append(event)

    # -- events ---------------------------------------------------------------------------

    def _annotations(
        self, series: _Series, status: ConditionStatus, composite: float
    ) -> tuple[tuple[str, str], ...]:
        notes: list[tuple[str, str]] = []
        if np.isfinite(composite):  # the series' composite score at this evaluation
            notes.append(("composite_score", f"{composite:.3f}"))
        parent = self._parents.get(series.element)
        if parent is not None and parent in self._collective_parents:
            notes.append(("collective", parent))
        if status.flapping:
            notes.append(("flapping", "true"))
        return tuple(notes)

    def _rule_event(self, col: int, i: int, status: ConditionStatus, s: _Step) -> Event:
        series = self._series[col]
        value, mean, scale, z = float(s.x[i]), float(s.mean[i]), float(s.scale[i]), float(s.z[i])
        static, thr = bool(s.static[i]), float(s.thr[i])
        alertname, severity = _RULES[series.kind]
        q = max(z, 0.0) / self.threshold if np.isfinite(z) else 0.0
        if series.kind is not _Kind.ERRORS:
            sign = self._sign[self._metric[col]]
            q = max(q, _ratio(value, thr, sign))
        previous = self._active.get((_T_RULE, col))
        if static:
            detector = DETECTOR_STATIC
        elif status.state is EventState.RESOLVED and previous is not None:
            detector = previous.detector  # resolve under the detector that raised it
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
            score=self._blend(q, s.composite[i]),
            active_at=status.active_at,
            severity=severity,
            fired_at=status.fired_at,
            resolved_at=status.resolved_at,
            summary=self._summary(series, status.state, value, mean, static, thr),
            annotations=self._annotations(series, status, float(s.composite[i])),
        )

    def _forecast_event(
        self, col: int, i: int, status: ConditionStatus, s: _Step, fulfilled: bool
    ) -> Event:
        series = self._series[col]
        value, mean, scale, thr = float(s.x[i]), float(s.mean[i]), float(s.scale[i]), float(s.thr[i])
        rule, severity = _RULES[series.kind]
        name = PREDICTED_BREACH[rule]
        eta = float(s.eta[i])
        horizon = self._forecaster.horizon
        # 0.5 at the horizon's edge, 1 at the crossing (and once the prediction came true)
        score = 1.0 if fulfilled or not np.isfinite(eta) else 1.0 - 0.5 * eta / horizon
        where = f"{series.what} on {series.element} {series.interface}".rstrip()
        unit = _METRICS[series.metric][2]
        if status.state is EventState.RESOLVED:
            summary = f"{where} no longer heading for {_fmt(thr, unit)}: {_fmt(value, unit)}"
        elif fulfilled:
            summary = f"{where} crossed {_fmt(thr, unit)} as predicted: {_fmt(value, unit)}"
        elif np.isfinite(eta):
            summary = (
                f"{where} heading for {_fmt(thr, unit)}: {_fmt(value, unit)} now, "
                f"breach in ~{eta / 60:.0f} min"
            )
        else:  # inside keep_firing_for: the trend eased, not yet long enough to resolve
            summary = f"{where} was heading for {_fmt(thr, unit)}: {_fmt(value, unit)} now"
        labels = _relabel(series.labels, name, severity)
        previous = self._active.get((_T_FORECAST, col))
        eta_at = s.now + eta if np.isfinite(eta) else (previous.eta if previous is not None else None)
        return Event(
            name=name,
            element=series.element,
            state=status.state,
            labels=labels,
            detector=DETECTOR_FORECAST,
            series=series.metric,
            value=value,
            expected=mean,
            band=(mean - self.threshold * scale, mean + self.threshold * scale),
            score=self._blend(score / (1.0 - score) if score < 1.0 else math.inf, s.composite[i]),
            active_at=status.active_at,
            severity=severity,
            fired_at=status.fired_at,
            resolved_at=status.resolved_at,
            eta=eta_at,
            summary=summary,
            annotations=(
                ("threshold", f"{thr:g}"),
                ("level", f"{float(s.level[i]):.6g}"),
                *self._annotations(series, status, float(s.composite[i])),
            ),
        )

    def _outlier_event(self, e: int, status: ConditionStatus, anomaly: float) -> Event:
        element = self._elements[e]
        labels = (
            ("alertname", ELEMENT_ANOMALOUS),
            ("element", element),
            ("metric", "element_features"),
            ("severity", str(Severity.INFO)),
        )
        verdict = "back to normal" if status.state is EventState.RESOLVED else "unusual"
        return Event(
            name=ELEMENT_ANOMALOUS,
            element=element,
            state=status.state,
            labels=labels,
            detector=DETECTOR_OUTLIER,
            series="element_features",
            value=anomaly,
            expected=0.5,
            band=(0.0, self._outlier.threshold),
            score=anomaly,
            active_at=status.active_at,
            severity=Severity.INFO,
            fired_at=status.fired_at,
            resolved_at=status.resolved_at,
            summary=f"Behaviour of {element} {verdict} (isolation score {anomaly:.2f})",
        )

    def _collective_event(self, family: str, p: int, status: ConditionStatus, now: float) -> Event:
        if family == _T_PORTS:  # p is the element, its children are its ports
            element = self._elements[p]
            det = self._port_collective
            members = [self._port_name(int(c)) for c in det.members(p, now)]
            scope, what = "ports", "ports"
        else:
            element = self._parent_names[p]
            det = self._parent_collective
            members = [self._elements[int(c)] for c in det.members(p, now)]
            scope, what = "children", "elements"
        bad, total = det.counts(now)
        n_bad, n_total = int(bad[p]), int(total[p])
        share = n_bad / n_total if n_total else 0.0
        labels = (
            ("alertname", COLLECTIVE_DEGRADATION),
            ("element", element),
            ("metric", "collective"),
            ("scope", scope),
            ("severity", str(Severity.WARNING)),
        )
        if status.state is EventState.RESOLVED:
            summary = f"{what.capitalize()} under {element} back to normal"
        else:
            summary = f"{n_bad} of {n_total} {what} under {element} degraded together"
        # the episode's degraded children, not just those still marked at this moment: the
        # RESOLVED notification the NOC closes the case with names what degraded
        previous = self._active.get((family, p))
        seen = dict(previous.annotations).get("children", "").split(",") if previous is not None else []
        seen = [c for c in seen if c]
        children = ",".join(seen + [m for m in members if m not in set(seen)])
        return Event(
            name=COLLECTIVE_DEGRADATION,
            element=element,
            state=status.state,
            labels=labels,
            detector=DETECTOR_COLLECTIVE,
            series="collective",
            value=share,
            expected=0.0,
            band=(0.0, self._port_collective.min_fraction),
            score=share,
            active_at=status.active_at,
            severity=Severity.WARNING,
            fired_at=status.fired_at,
            resolved_at=status.resolved_at,
            summary=summary,
            annotations=(("children", children),),
        )

    def _blend(self, q: float, composite: float) -> float:
        """``q / (1 + q)``, raised to the composite score when one is plugged in."""
        score = 1.0 if math.isinf(q) else q / (1.0 + q)
        return max(score, float(composite)) if np.isfinite(composite) else score

    def _summary(
        self, series: _Series, state: EventState, value: float, mean: float, static: bool, thr: float
    ) -> str:
        where = f"{series.what} on {series.element} {series.interface}".rstrip()
        if series.kind is _Kind.ERRORS:
            verdict = "back to normal" if state is EventState.RESOLVED else "rising"
            return f"{where} {verdict}: {_num(value)}/s vs {_num(mean)}/s expected"
        unit = _METRICS[series.metric][2]
        limit = _fmt(thr, unit)
        if state is EventState.RESOLVED:
            return f"{where} back to normal: {_fmt(value, unit)} (threshold {limit})"
        high = "low" if self._sign[self._metric_code[series.metric]] < 0 else "high"
        if static:
            return f"{where} {high}: {_fmt(value, unit)} (threshold {limit}, {_fmt(mean, unit)} expected)"
        return f"{where} rising fast: {_fmt(value, unit)} vs {_fmt(mean, unit)} expected (threshold {limit})"

    # -- the series index -----------------------------------------------------------------

    def _columns(
        self, samples: Sequence[Sample]
    ) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
        """Columns, values and times of the usable samples; one per column, sorted by column."""
        accept = _ACCEPT
        usable = [s for s in samples if s.kind in accept.get(s.metric, ())]
        if not usable:
            return np.zeros(0, dtype=np.intp), np.zeros(0), np.zeros(0)
        get = self._index.get
        found = [get((s.element, s.metric, s.labels)) for s in usable]
        if None in found:
            found = [c if c is not None else self._col(s) for c, s in zip(found, usable, strict=True)]
        cols = np.array(found, dtype=np.intp)
        x = np.fromiter((s.value for s in usable), dtype=np.float64, count=len(usable))
        t = np.fromiter((s.timestamp for s in usable), dtype=np.float64, count=len(usable))
        return cols, x, t

    def _col(self, sample: Sample) -> int:
        col = self._index.get(sample.series_key)
        return self._add_series(sample) if col is None else col

    def _add_series(self, sample: Sample) -> int:
        kind, what, _unit = _METRICS[sample.metric]
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

    def _element(self, name: str) -> int:
        e = self._element_index.get(name)
        if e is None:
            e = self._element_index[name] = len(self._elements)
            self._elements.append(name)
        return e

    def _port_name(self, port: int) -> str:
        if len(self._port_keys) != len(self._ports):
            self._port_keys = list(self._ports)
        element, labels = self._port_keys[port]
        d = dict(labels)
        return d.get("ifName") or d.get("ifDescr") or d.get("ifIndex") or element

    def _grow(self) -> None:
        n = self.series_count
        old = len(self._metric)
        if n == old:
            return
        new = self._series[old:]
        metric, elem, port = [], [], []
        port_elem = list(self._port_elem)
        for series in new:
            e = self._element(series.element)
            key = (series.element, tuple(kv for kv in series.labels[2:] if kv[0] not in ("metric", "severity")))
            p = self._ports.get(key)
            if p is None:
                p = self._ports[key] = len(self._ports)
                port_elem.append(e)
            metric.append(self._metric_code[series.metric])
            elem.append(e)
            port.append(p)
        self._metric = np.concatenate([self._metric, np.array(metric, dtype=np.int8)])
        self._elem = np.concatenate([self._elem, np.array(elem, dtype=np.int32)])
        self._port = np.concatenate([self._port, np.array(port, dtype=np.int32)])
        self._held = np.concatenate([self._held, np.zeros(len(new), dtype=bool)])
        self._windowed = np.concatenate([self._windowed, np.full(len(new), np.nan)])
        self._score = np.concatenate([self._score, np.full(len(new), np.nan, dtype=np.float32)])
        self._composite_run = np.concatenate([self._composite_run, np.zeros(len(new), dtype=np.int8)])
        self._port_elem = np.array(port_elem, dtype=np.int32)
        self._baseline.resize(n)
        self._forecaster.resize(n)
        self._seasonal_forecaster.resize(n)
        self._climber.resize(n)
        self._climb_since = np.concatenate([self._climb_since, np.full(len(new), np.nan)])
        self._profile.resize(n)
        self._outlier.resize(len(self._elements), _N_FEATURES)
        self._port_collective.regroup(self._port_elem, len(self._elements))
        self._regroup_parents()

    def _regroup_parents(self) -> None:
        names = self._parent_names
        index = {p: i for i, p in enumerate(names)}
        parent = np.full(len(self._elements), -1, dtype=np.intp)
        for e, element in enumerate(self._elements):
            p = self._parents.get(element)
            if p is not None:
                if p not in index:
                    index[p] = len(names)
                    names.append(p)
                parent[e] = index[p]
        self._parent_collective.regroup(parent, len(names))

    def _element_features(
        self, cols: NDArray[np.intp], x: NDArray[np.float64]
    ) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """This step's feature vector of every element with samples in it."""
        codes = self._metric[cols]
        elems, inv = np.unique(self._elem[cols], return_inverse=True)
        feat = self._m_feature[codes]
        agg = self._m_agg[codes]
        out = np.full((len(elems), _N_FEATURES), np.nan)
        ok = ~np.isnan(x)
        for code, ufunc in ((0, np.fmax), (2, np.fmin)):
            m = ok & (agg == code)
            if m.any():
                ufunc.at(out, (inv[m], feat[m]), x[m])
        m = ok & (agg == 1)
        if m.any():
            sums = np.zeros_like(out)
            seen = np.zeros(out.shape, dtype=bool)
            np.add.at(sums, (inv[m], feat[m]), np.maximum(x[m], 0.0))
            seen[inv[m], feat[m]] = True
            out = np.where(seen, np.log1p(sums), out)
        return elems.astype(np.intp), out

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the whole detector state to ``path`` (npz, arrays only; atomic replace)."""
        header = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "params": self._params,
            "series": [[s.element, s.metric, [list(kv) for kv in k[2]]]
                       for s, k in zip(self._series, self._index, strict=True)],
            "elements": self._elements,
            "ports": [[e, [list(kv) for kv in labels], p] for (e, labels), p in self._ports.items()],
            "parents": self._parents,
            "parent_names": self._parent_names,
            "last_refit": None if math.isinf(self._last_refit) else self._last_refit,
            "last_trees": None if math.isinf(self._last_trees) else self._last_trees,
            "outlier": {"seed": self._outlier.seed_, "steps": self._outlier.steps_},
            "trackers": {name: t.state_dict() for name, t in self._trackers.items()},
            "active": [[fam, key, _event_json(ev)] for (fam, key), ev in self._active.items()],
            "collective_parents": sorted(self._collective_parents),
        }  # fmt: skip
        composite_arrays = self._composite_state(header)
        out = self._outlier
        arrays = {
            "header": np.array(json.dumps(header)),
            "baseline_mean": self._baseline.mean_, "baseline_scale": self._baseline.scale_,
            "baseline_n_seen": self._baseline.n_seen_,
            "forecast_stats": self._forecaster.stats_, "forecast_t_last": self._forecaster.t_last_,
            "forecast_n_seen": self._forecaster.n_seen_, "forecast_errors": self._forecaster.errors_,
            "seasonal_errors": self._seasonal_forecaster.errors_,
            "forecast_run": self._forecaster.run_, "seasonal_run": self._seasonal_forecaster.run_,
            "seasonal_stats": self._seasonal_forecaster.stats_,
            "seasonal_t_last": self._seasonal_forecaster.t_last_,
            "seasonal_n_seen": self._seasonal_forecaster.n_seen_,
            "climb_stats": self._climber.stats_, "climb_t_last": self._climber.t_last_,
            "climb_n_seen": self._climber.n_seen_, "climb_since": self._climb_since,
            "profile": self._profile.profile_, "profile_first": self._profile.first_,
            "windowed": self._windowed,
            "held": self._held, "score": self._score, "composite_run": self._composite_run,
            "port_last": self._port_collective.last_anomalous_,
            "parent_last": self._parent_collective.last_anomalous_,
            "outlier_buffer": out.buffer_, "outlier_pos": out.pos_, "outlier_count": out.count_,
            "outlier_center": out.center_, "outlier_scale": out.scale_,
            **{f"outlier_tree_{k}": v for k, v in out.trees_.items()},
            **composite_arrays,
        }  # fmt: skip
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, target)

    def _composite_state(self, header: dict[str, Any]) -> dict[str, NDArray[Any]]:
        """The composite's ``state_dict()``: its arrays (returned, prefixed) and JSON values (to ``header``).

        Nothing without a composite, one without ``state_dict``, or before its first update.
        """
        state_dict = getattr(self.composite, "state_dict", None)
        if state_dict is None or not getattr(self.composite, "n_features_in_", 0):
            return {}
        state = state_dict()
        header["composite"] = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
        return {_COMPOSITE_PREFIX + k: v for k, v in state.items() if isinstance(v, np.ndarray)}

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        parents: Mapping[str, str] | None = None,
        composite: SeriesScorer | None = None,
    ) -> Self:
        """An engine restored from :meth:`save` (same scores as before the restart).

        ``composite`` is the scorer to plug in; by default the shipped
        :class:`~detectors.composite.CompositeDetector` when the saved engine had one. Its saved
        state is restored with ``load_state_dict``; when that refuses it (another composite
        state version or other settings) the composite alone starts fresh, with a warning. A
        version-2 file (before the composite ran in production) is read with a fresh composite
        at :data:`~detectors.composite.DEFAULT_THRESHOLD`, as :meth:`from_config` builds it.

        Raises
        ------
        StateVersionError
            The file was written by another state format version.
        ValueError
            The file is not a detection engine state or is damaged.
        """
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            header = json.loads(str(arrays.pop("header")))
        except (OSError, ValueError, KeyError, EOFError) as err:
            raise ValueError(f"{path}: not a readable detector state: {err!r}") from err
        if header.get("format") != STATE_FORMAT:
            raise ValueError(f"{path}: not a detector state (format {header.get('format')!r})")
        if header.get("version") not in _READABLE_VERSIONS:
            raise StateVersionError(
                f"{path}: detector state version {header.get('version')!r}, this vigil reads "
                f"version {STATE_VERSION}; delete the file to start a fresh warm-up"
            )
        try:
            return cls._restore(header, arrays, parents, composite)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise ValueError(f"{path}: damaged detector state: {err}") from err

    @classmethod
    def _restore(
        cls,
        header: dict[str, Any],
        a: dict[str, NDArray[Any]],
        parents: Mapping[str, str] | None,
        composite: SeriesScorer | None,
    ) -> Self:
        p = dict(header["params"])
        damping = p.pop("damping")
        thresholds = p.pop("service_thresholds")
        if header["version"] == 2:  # no composite ran in production then: plug in today's default
            p["composite"], p["composite_threshold"] = True, COMPOSITE_THRESHOLD
        had_composite = p.pop("composite")
        if composite is None and had_composite:
            composite = CompositeDetector()
        engine = cls(
            **p,
            damping=None if damping is None else FlapDamping(*damping),
            service_thresholds=None if thresholds is None else {
                m: ServiceThreshold(v, c, int(d)) for m, (v, c, d) in thresholds.items()
            },
            parents=header["parents"] if parents is None else parents,
            composite=composite,
        )  # fmt: skip
        for element in header["elements"]:
            engine._element(element)
        for element, metric, labels in header["series"]:
            lab = tuple((k, v) for k, v in labels)
            engine._add_series(Sample(element, metric, lab, 0.0, 0.0, _RATE))
        engine._parent_names = list(header["parent_names"])
        engine._grow()
        ports = {(e, tuple((k, v) for k, v in labels)): int(i) for e, labels, i in header["ports"]}
        if ports != engine._ports:
            raise ValueError("port index does not match the series")
        n = engine.series_count
        base, fc, out = engine._baseline, engine._forecaster, engine._outlier
        base.mean_, base.scale_, base.n_seen_ = a["baseline_mean"], a["baseline_scale"], a["baseline_n_seen"]
        fc.stats_, fc.t_last_, fc.n_seen_ = a["forecast_stats"], a["forecast_t_last"], a["forecast_n_seen"]
        sfc, prof = engine._seasonal_forecaster, engine._profile
        sfc.stats_, sfc.t_last_, sfc.n_seen_ = a["seasonal_stats"], a["seasonal_t_last"], a["seasonal_n_seen"]
        fc.errors_, sfc.errors_ = a["forecast_errors"], a["seasonal_errors"]
        fc.run_, sfc.run_ = a["forecast_run"], a["seasonal_run"]
        prof.profile_, prof.first_ = a["profile"], a["profile_first"]
        engine._windowed = a["windowed"]
        if base.mean_.shape != (n,) or fc.stats_.shape[1] != n or sfc.stats_.shape[1] != n:
            raise ValueError(f"arrays do not match the {n} series")
        engine._held, engine._score = a["held"], a["score"]
        if "composite_run" in a:  # version 3
            engine._composite_run = a["composite_run"]
        if "climb_stats" in a:  # saved before sustained climbs: they start afresh
            climber = engine._climber
            climber.stats_, climber.t_last_, climber.n_seen_ = a["climb_stats"], a["climb_t_last"], a["climb_n_seen"]
            engine._climb_since = a["climb_since"]
            if climber.stats_.shape[1] != n or engine._climb_since.shape != (n,):
                raise ValueError(f"climb arrays do not match the {n} series")
        if engine._score.shape != (n,) or engine._composite_run.shape != (n,):
            raise ValueError(f"composite arrays do not match the {n} series")
        engine._port_collective.last_anomalous_ = a["port_last"]
        engine._parent_collective.last_anomalous_ = a["parent_last"]
        out.buffer_, out.pos_, out.count_ = a["outlier_buffer"], a["outlier_pos"], a["outlier_count"]
        out.center_, out.scale_ = a["outlier_center"], a["outlier_scale"]
        out.steps_ = int(header["outlier"]["steps"])
        out.seed_ = int(header["outlier"]["seed"])
        out.trees_ = {k[len("outlier_tree_") :]: v for k, v in a.items() if k.startswith("outlier_tree_")}
        last = header["last_refit"]
        engine._last_refit = -math.inf if last is None else float(last)
        last = header["last_trees"]
        engine._last_trees = -math.inf if last is None else float(last)
        for name, state in header["trackers"].items():
            engine._trackers[name].load_state_dict(state)
        engine._active = {(fam, int(key)): _event_from_json(ev) for fam, key, ev in header["active"]}
        engine._collective_parents = set(header["collective_parents"])
        engine._restore_composite(header.get("composite"), a)
        return engine

    def _restore_composite(self, saved: dict[str, Any] | None, a: dict[str, NDArray[Any]]) -> None:
        """Load the composite's saved state; a refused one means a fresh composite, not a failed load."""
        load_state_dict = getattr(self.composite, "load_state_dict", None)
        if saved is None or load_state_dict is None:
            self._forget_composite_scores()
            if self.composite is not None:
                log.info("composite detector starts a fresh warm-up (no saved composite state)")
            return
        n = len(_COMPOSITE_PREFIX)
        state = {**saved, **{k[n:]: v for k, v in a.items() if k.startswith(_COMPOSITE_PREFIX)}}
        try:
            load_state_dict(state)
        except (ValueError, KeyError, TypeError, IndexError) as err:
            log.warning("composite detector state not restored, it starts a fresh warm-up: %s", err)
            if isinstance(self.composite, BaseEstimator):
                self.composite = clone(self.composite)  # load_state_dict may have half-written it
            self._forget_composite_scores()

    def _forget_composite_scores(self) -> None:
        self._score[:] = np.nan
        self._composite_run[:] = 0


@dataclass(frozen=True, slots=True)
class _Step:
    """The arrays of one update, aligned with ``cols``."""

    cols: NDArray[np.intp]
    x: NDArray[np.float64]
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    z: NDArray[np.float64]
    static: NDArray[np.bool_]
    thr: NDArray[np.float64]
    eta: NDArray[np.float64]
    level: NDArray[np.float64]
    composite: NDArray[np.float64]
    now: float


def _last_per_column(
    cols: NDArray[np.intp], x: NDArray[np.float64], t: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """One value per column, sorted by column: the latest time, then the last arrival, wins."""
    order = np.lexsort((np.arange(len(cols)), t, cols))
    cols, x, t = cols[order], x[order], t[order]
    last = np.ones(len(cols), dtype=bool)
    last[:-1] = cols[1:] != cols[:-1]
    return cols[last], x[last], t[last]


def _candidates(
    keys: NDArray[np.intp], flags: NDArray[np.bool_], tracker: ConditionTracker[int]
) -> list[tuple[int, int]]:
    """(key, position in ``keys``) to feed: flagged keys and tracked ones present; sorted keys."""
    tracked = np.fromiter(tracker, dtype=np.intp)
    chosen = np.union1d(keys[flags], tracked[np.isin(tracked, keys)])
    return list(zip(chosen.tolist(), np.searchsorted(keys, chosen).tolist(), strict=True))


def _relabel(
    labels: tuple[tuple[str, str], ...], alertname: str, severity: Severity
) -> tuple[tuple[str, str], ...]:
    rest = tuple((k, str(severity) if k == "severity" else v) for k, v in labels[1:])
    return (("alertname", alertname), *rest)


def _ratio(value: float, thr: float, sign: float) -> float:
    """How far towards the threshold, 1 = at it (lower thresholds: thr / value in linear terms)."""
    if sign > 0:
        return value / thr if thr else 0.0
    return max(0.0, 1.0 + (thr - value) / max(abs(thr), 1.0))


def _event_json(event: Event) -> dict[str, Any]:
    return {
        "name": event.name, "element": event.element, "state": event.state.value,
        "labels": [list(kv) for kv in event.labels], "detector": event.detector,
        "series": event.series, "value": event.value, "expected": event.expected,
        "band": list(event.band), "score": event.score, "active_at": event.active_at,
        "severity": event.severity.value, "fired_at": event.fired_at,
        "resolved_at": event.resolved_at, "eta": event.eta, "summary": event.summary,
        "annotations": [list(kv) for kv in event.annotations],
    }  # fmt: skip


def _event_from_json(d: dict[str, Any]) -> Event:
    return Event(
        name=d["name"], element=d["element"], state=EventState(d["state"]),
        labels=tuple((k, v) for k, v in d["labels"]), detector=d["detector"], series=d["series"],
        value=d["value"], expected=d["expected"], band=(d["band"][0], d["band"][1]),
        score=d["score"], active_at=d["active_at"], severity=Severity(d["severity"]),
        fired_at=d["fired_at"], resolved_at=d["resolved_at"], eta=d["eta"], summary=d["summary"],
        annotations=tuple((k, v) for k, v in d["annotations"]),
    )  # fmt: skip


def _num(value: float) -> str:
    """412.0 -> '412', 0.1234 -> '0.123', 12345.6 -> '12,346'."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.0f}%"


def _fmt(value: float, unit: str) -> str:
    """A value in its metric's unit: ratios as percent, dB/dBm with one decimal."""
    if unit == "%":
        return _pct(value)
    if unit.strip() in ("dB", "dBm"):
        return f"{value:.1f}{unit}"
    return f"{_num(value)}{unit}"
