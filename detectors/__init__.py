"""detectors: samples in, alert state-change events out.

Estimators follow scikit-learn's API and are vectorised over series: :class:`EwmaBaseline`,
``seasonal.SeasonalBaseline``, :class:`TrendForecaster` (ETA to a service threshold),
:class:`ElementOutlierDetector` (IsolationForest per element), :class:`CollectiveDetector`
(children of one parent shifting together) and ``composite.CompositeDetector`` (the NAB-scored
univariate default). :class:`ConditionTracker` turns conditions into events (pending -> firing ->
resolved, hysteresis, flap damping); :class:`DetectionEngine` wires them to ``collectors.Sample``
and ``detectors.Event``. :class:`ReachabilityRule` and :class:`TrapRules` turn failed polls and
SNMP traps into events.
"""

from detectors.baseline import EwmaBaseline
from detectors.collective import CollectiveDetector
from detectors.engine import (
    COLLECTIVE_DEGRADATION,
    DETECTOR_EWMA,
    DETECTOR_FORECAST,
    DETECTOR_STATIC,
    ELEMENT_ANOMALOUS,
    ERRORS_RISING,
    PREDICTED_BREACH,
    SERVICE_THRESHOLDS,
    UTILIZATION_HIGH,
    DetectionEngine,
    ServiceThreshold,
    StateVersionError,
)
from detectors.event import Event, EventState, Severity, fingerprint_labels
from detectors.forecast import TrendForecaster
from detectors.outlier import ElementOutlierDetector
from detectors.reachability import ELEMENT_UNREACHABLE, ReachabilityRule
from detectors.state import ConditionStatus, ConditionTracker, FlapDamping, Transition
from detectors.traps import DEVICE_RESTARTED, INTERFACE_DOWN, TrapRules

__all__ = [
    "COLLECTIVE_DEGRADATION",
    "DETECTOR_EWMA",
    "DETECTOR_FORECAST",
    "DETECTOR_STATIC",
    "DEVICE_RESTARTED",
    "ELEMENT_ANOMALOUS",
    "ELEMENT_UNREACHABLE",
    "ERRORS_RISING",
    "INTERFACE_DOWN",
    "PREDICTED_BREACH",
    "SERVICE_THRESHOLDS",
    "UTILIZATION_HIGH",
    "CollectiveDetector",
    "ConditionStatus",
    "ConditionTracker",
    "DetectionEngine",
    "ElementOutlierDetector",
    "Event",
    "EventState",
    "EwmaBaseline",
    "FlapDamping",
    "ReachabilityRule",
    "ServiceThreshold",
    "Severity",
    "StateVersionError",
    "Transition",
    "TrapRules",
    "TrendForecaster",
    "fingerprint_labels",
]
