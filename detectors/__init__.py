"""Detectors: interface rate samples in, alert state-change events out.

:class:`EwmaBaseline` scores (scikit-learn estimator, vectorised over series),
:class:`ConditionTracker` fires (pending -> firing -> resolved), :class:`DetectionEngine`
wires both to ``collectors.Sample`` and ``detectors.Event``.
"""

from detectors.baseline import EwmaBaseline
from detectors.engine import (
    DETECTOR_EWMA,
    DETECTOR_STATIC,
    ERRORS_RISING,
    UTILIZATION_HIGH,
    DetectionEngine,
)
from detectors.event import Event, EventState, Severity, fingerprint_labels
from detectors.state import ConditionStatus, ConditionTracker, Transition

__all__ = [
    "DETECTOR_EWMA",
    "DETECTOR_STATIC",
    "ERRORS_RISING",
    "UTILIZATION_HIGH",
    "ConditionStatus",
    "ConditionTracker",
    "DetectionEngine",
    "Event",
    "EventState",
    "EwmaBaseline",
    "Severity",
    "Transition",
    "fingerprint_labels",
]
