"""One clock for the whole run: wall time, or simulated time running ``speedup`` times faster."""

from __future__ import annotations

import time

__all__ = ["Clock"]


class Clock:
    """Seconds since the epoch, optionally accelerated.

    Simulated time starts at ``start`` (default: now) and advances ``speedup`` times faster
    than wall time. Every room takes ``clock.now`` as a ``Callable[[], float]`` so that
    agents, pollers, detectors and hold-downs follow the same time.
    """

    def __init__(self, speedup: float = 1.0, start: float | None = None) -> None:
        if speedup <= 0:
            raise ValueError(f"speedup must be > 0, got {speedup}")
        self.speedup = float(speedup)
        self._wall0 = time.monotonic()
        self._sim0 = time.time() if start is None else float(start)

    def now(self) -> float:
        return self._sim0 + (time.monotonic() - self._wall0) * self.speedup

    def wall_seconds(self, sim_seconds: float) -> float:
        """How many wall seconds ``sim_seconds`` of simulated time take."""
        return sim_seconds / self.speedup
