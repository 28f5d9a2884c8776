"""Per-second rates from raw SNMP counters: wraps, agent resets and impossible jumps.

A counter that decreases either wrapped once past its width (32 or 64 bits) or was reset
(agent restart, interface re-created, counter cleared). ``sysUpTime`` going backwards proves
a reset; otherwise a single wrap is assumed when it is plausible: the rate does not exceed
``max_rate`` and, when there is no ``max_rate`` (or the counter is 64 bits wide), the wrapped
increase is at most half the counter's range. Anything else is reported as ``None`` and the new
value becomes the baseline.

32-bit octet counters (IF-MIB ``ifInOctets``: all an SNMPv1 agent can give) wrap often: every
34 s at 1 Gbit/s. With the interface's speed as ``max_rate`` (the profile's ``speed``: ifHighSpeed,
else ifSpeed) a wrap is accepted up to that speed, so one wrap within an interval gives the right
rate even when it advanced more than half the range; without a speed only the half-range rule
tells a wrap from a counter cleared to near zero. The speed-based guard has a limit: when
``max_rate`` x interval reaches 2**32, the counter may have wrapped twice, and two wraps look
like one (or none): the rate is then a lower bound, nothing can tell (the profile collector logs
it once per counter, with the longest interval that avoids it). A counter cleared to near zero on
such a fast link also reads as a wrap, unless sysUpTime or ifCounterDiscontinuityTime show it.

A change of the row's discontinuity marker (IF-MIB ``ifCounterDiscontinuityTime``: the counters
of that row were reset or re-created since) also yields ``None``: better no sample than a spike.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["RateCalculator"]

_WIDTHS = (32, 64)


@dataclass(frozen=True, slots=True)
class _Last:
    """The previous observation of one counter."""

    value: int
    timestamp: float
    uptime: float | None
    discontinuity: float | None


class RateCalculator:
    """Turn successive raw counter values into per-second rates, one baseline per key."""

    def __init__(self) -> None:
        self._last: dict[Hashable, _Last] = {}

    def __len__(self) -> int:
        return len(self._last)

    def update(
        self,
        key: Hashable,
        value: int,
        timestamp: float,
        width: int = 64,
        uptime: float | None = None,
        max_rate: float | None = None,
        discontinuity: float | None = None,
    ) -> float | None:
        """Record ``value`` of counter ``key``; its per-second rate since the last one, or None.

        None on the first sample, after an agent reset (``uptime`` went backwards), when time
        did not advance, when the counter decreased in a way a single wrap does not explain,
        when the rate exceeds ``max_rate``, or when ``discontinuity`` (the row's
        ifCounterDiscontinuityTime) changed. The new value is the baseline in every case.
        """
        if width not in _WIDTHS:
            raise ValueError(f"counter width must be 32 or 64, not {width}")
        if value < 0:
            raise ValueError(f"a counter cannot be negative: {value}")
        previous = self._last.get(key)
        self._last[key] = _Last(value, timestamp, uptime, discontinuity)
        if previous is None:
            return None
        if (
            discontinuity is not None
            and previous.discontinuity is not None
            and discontinuity != previous.discontinuity
        ):
            return None  # the agent says this row's counters were reset or re-created
        if uptime is not None and previous.uptime is not None and uptime < previous.uptime:
            return None  # the agent restarted: counters started again from zero
        elapsed = timestamp - previous.timestamp
        if elapsed <= 0:
            return None
        delta = value - previous.value
        if delta < 0:
            modulus = 1 << width
            if previous.value >= modulus:
                return None  # the old value did not fit the width: not a wrap
            delta += modulus
            if delta > modulus // 2 and (max_rate is None or width == 64):
                # It fell back to near zero: a reset (counter cleared, interface re-created)
                # explains that better than a wrap that advanced more than half the range. A
                # 32-bit counter bounded by its link's speed may well have advanced that far
                # (max_rate decides below); a 64-bit one never does.
                return None
        rate = delta / elapsed
        if max_rate is not None and rate > max_rate:
            return None
        return rate

    def forget(self, key: Hashable) -> None:
        """Drop the baseline of ``key`` (an interface that disappeared)."""
        self._last.pop(key, None)

    def retain(self, keys: set[Hashable]) -> None:
        """Keep only the baselines of ``keys``."""
        for key in self._last.keys() - keys:
            del self._last[key]
