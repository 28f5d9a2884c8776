"""Recurring alarms of many series at once: the same alarm at the same time every day is routine.

A NOC's most common false alarm is the scheduled job: a nightly backup, a log rotation, a batch
export drives a CPU or a link to the same unusual value at the same time every day. An anomaly
score sees an unusual value each time, and its repeat suppression (the composite's decaying
record) forgets within a day. :class:`RecurringAlarms` remembers each series' last ``slots``
alarms (value and time). A new alarm *repeats* a remembered one when it comes a whole number of
days later (``min_age`` to ``max_age``, e.g. 1 or 2 days, so one missed day is forgiven) within
``tolerance`` seconds of the same time of day, and its value is within ``ratio`` of the
remembered alarm's deviation from the series' level. The first ``repeats`` occurrences are still
reported (two days in a row can be a real fault); from the next one on, a repeat is suppressed
and refreshes the memory, so a daily job stays suppressed for as long as it keeps its schedule.
A different value at that time, or an alarm at another time, is reported as before.

Time of day is taken from POSIX seconds (UTC); a job that follows local time shifts by an hour
at a daylight-saving change and is then reported ``repeats`` times again.

Everything is per series, so :meth:`RecurringAlarms.check` / :meth:`RecurringAlarms.commit`
can work on any subset of the series and only ever touch the alarm candidates of a step.
Memory per series with the defaults: 8 slots x (float32 value + float64 time + int16 count)
= 112 bytes.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import NDArray

from detectors._growth import series_growth

__all__ = ["RecurringAlarms"]

DAY = 86_400.0


class RecurringAlarms:
    """Memory of each series' recent alarms; tells which new alarms repeat a daily one.

    Parameters
    ----------
    slots : int, default=8
        Alarms remembered per series; a new alarm replaces the one heard of longest ago (a
        daily job refreshed by its last repeat outlives older one-off alarms).
    tolerance : float, default=1800.0
        Seconds either side of the same time of day that still count as "the same time".
    ratio : float, default=0.3
        A repeat's value is within ``ratio * |remembered value - level|`` of the remembered value.
    repeats : int, default=2
        Occurrences reported before a repeat is suppressed (the third, with the default).
    min_age, max_age : float, default=3600.0, 180000.0
        A repeat comes this many seconds after the remembered alarm (1 h to 50 h: the next day
        or the one after).

    Attributes
    ----------
    value_ : ndarray of shape (slots, n_series), dtype float32
        Remembered alarm values.
    time_ : ndarray of shape (slots, n_series)
        Their POSIX times (NaN = empty slot).
    count_ : ndarray of shape (slots, n_series), dtype int16
        Repeats seen of each remembered alarm (saturating).
    n_features_in_ : int
        Number of series.
    """

    def __init__(
        self,
        *,
        slots: int = 8,
        tolerance: float = 1800.0,
        ratio: float = 0.3,
        repeats: int = 2,
        min_age: float = 3600.0,
        max_age: float = 180_000.0,
    ) -> None:
        if slots < 1:
            raise ValueError(f"RecurringAlarms.slots must be >= 1, got {slots!r}")
        if not 0.0 <= tolerance <= DAY / 2:
            raise ValueError(f"RecurringAlarms.tolerance must be in [0, 43200] s, got {tolerance!r}")
        if not ratio >= 0.0:
            raise ValueError(f"RecurringAlarms.ratio must be >= 0, got {ratio!r}")
        if repeats < 1:
            raise ValueError(f"RecurringAlarms.repeats must be >= 1, got {repeats!r}")
        if not 0.0 <= min_age <= max_age:
            raise ValueError(f"RecurringAlarms: need 0 <= min_age <= max_age, got {min_age!r}, {max_age!r}")
        self.slots = slots
        self.tolerance = tolerance
        self.ratio = ratio
        self.repeats = repeats
        self.min_age = min_age
        self.max_age = max_age

    def resize(self, n_series: int) -> Self:
        """Grow to ``n_series`` series (new ones remember nothing); also the first initialisation."""
        extra = series_growth(self, n_series)
        if extra:
            self.value_ = np.concatenate([self.value_, np.zeros((self.slots, extra), dtype=np.float32)], 1)
            self.time_ = np.concatenate([self.time_, np.full((self.slots, extra), np.nan)], 1)
            self.count_ = np.concatenate([self.count_, np.zeros((self.slots, extra), dtype=np.int16)], 1)
            self.n_features_in_ = n_series
        return self

    def _init_state(self, n_series: int) -> None:
        self.value_ = np.zeros((self.slots, n_series), dtype=np.float32)
        self.time_ = np.full((self.slots, n_series), np.nan)
        self.count_ = np.zeros((self.slots, n_series), dtype=np.int16)
        self.n_features_in_ = n_series

    def check(
        self,
        columns: NDArray[np.intp],
        x: NDArray[np.float64],
        t: NDArray[np.float64],
        level: NDArray[np.float64],
    ) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """Which remembered alarm each new alarm repeats, and whether it is suppressed.

        Parameters
        ----------
        columns : ndarray of int, shape (m,)
            Series of the alarm candidates (distinct).
        x, t, level : ndarray of shape (m,)
            Their values, POSIX times and the series' current level (running mean).

        Returns
        -------
        slot : ndarray of int, shape (m,)
            The matching slot (the most repeated one), -1 if the alarm repeats none.
        suppress : ndarray of bool, shape (m,)
            The alarm repeats one seen ``repeats`` times already: routine, not news.
        """
        value = self.value_[:, columns].astype(np.float64)
        age = t[None, :] - self.time_[:, columns]
        phase = np.abs((age + DAY / 2) % DAY - DAY / 2)  # distance to a whole number of days
        with np.errstate(invalid="ignore"):  # empty slots: NaN age, no match
            match = (
                (age >= self.min_age)
                & (age <= self.max_age)
                & (phase <= self.tolerance)
                & (np.abs(x[None, :] - value) <= self.ratio * np.abs(value - level[None, :]))
            )
        count = np.where(match, self.count_[:, columns], -1)
        slot = count.argmax(axis=0)
        best = np.take_along_axis(count, slot[None, :], axis=0)[0]
        slot = np.where(best >= 0, slot, -1)
        return slot, best >= self.repeats - 1

    def commit(
        self,
        columns: NDArray[np.intp],
        x: NDArray[np.float64],
        t: NDArray[np.float64],
        slot: NDArray[np.intp],
        reported: NDArray[np.bool_],
    ) -> None:
        """Learn the step's alarm candidates: a repeat refreshes its slot, a new reported alarm takes one.

        Parameters
        ----------
        columns, x, t : ndarray of shape (m,)
            As given to :meth:`check`.
        slot : ndarray of int, shape (m,)
            :meth:`check`'s answer.
        reported : ndarray of bool, shape (m,)
            The candidate was reported (it beat the score's record); only those are remembered
            as new alarms.
        """
        hit = slot >= 0
        if hit.any():
            c, j = columns[hit], slot[hit]
            self.value_[j, c] = x[hit]
            self.time_[j, c] = t[hit]
            count = self.count_[j, c].astype(np.int32) + 1  # int16 + 1 would wrap before the cap
            self.count_[j, c] = np.minimum(count, np.iinfo(np.int16).max).astype(np.int16)
        new = reported & ~hit
        if new.any():
            c = columns[new]
            j = np.nan_to_num(self.time_[:, c], nan=-np.inf).argmin(axis=0)  # empty, else heard of longest ago
            self.value_[j, c] = x[new]
            self.time_[j, c] = t[new]
            self.count_[j, c] = 0
