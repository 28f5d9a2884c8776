"""One clock for the whole run: wall time, or simulated time running ``speedup`` times faster."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path

__all__ = ["CLOCK_FILE", "Clock", "read_saved_time", "save_time"]

CLOCK_FILE = "clock.json"
"""Where a simulated run keeps its clock reading, in the data dir (so a restart continues from it)."""


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


def save_time(path: Path, now: float) -> None:
    """Write the clock reading ``now`` to ``path`` (write, then rename: never a half file)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps({"version": 1, "now": now}), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_saved_time(path: Path) -> float | None:
    """The clock reading :func:`save_time` left in ``path``; None if there is none or it is unreadable."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        now = float(saved["now"])
    except (OSError, ValueError, KeyError, TypeError):  # JSONDecodeError is a ValueError
        return None
    return now if math.isfinite(now) else None
