"""Promise protection: room between a promised job's planned start and its window's end.

A plan that starts a promised job five minutes before its window closes keeps the promise only
if nothing before it on the day runs five minutes long. Durations and legs vary, so the engine
asks of every promised job that its planned start leave room for what the work before it may
add, at a target share of days (`Protection.target`, 98 % by default).

What can make job k start late is a chain: from a point where the technician waits (for a
window or the lunch break to open, or the start of the day) every job and leg up to k passes its
overrun on, and the wait absorbs what came before it. The real start of k is the latest of these
chains, so each chain's planned end plus the target quantile of its summed overrun must lie
inside k's window. The overrun of a chain has the mean and variance of its parts: a job's
duration is its planned length times a log-normal factor (part of its log-variance common to
the technician-day, since a slow day is slow throughout: those parts add up as standard
deviations, the rest as variances), a leg's time likewise, plus a hold-up on a share of legs.
The quantile is that of a log-normal with the sum's mean and variance (Fenton and Wilkinson's
approximation: exact for one job, and right-skewed like the sums it stands for, where a normal
quantile would promise a single long job too much). Early jobs thus need little room and late
ones more, and a wait in the plan resets the chains that it absorbs.

The same `Exposure` is driven by the route simulation of the construction, the search and the
window offer, and by `check` from the visits of a plan, so the rule is stated once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True, slots=True)
class Protection:
    """The uncertainty the plan protects promises against, and how surely.

    Durations carry their own spread (`Job.duration_log_sd`); legs share `leg_log_sd` and a
    hold-up of `holdup_mean_s` (standard deviation `holdup_sd_s`) on `holdup_rate` of them."""

    target: float = 0.98
    leg_log_sd: float = 0.10
    holdup_rate: float = 0.02
    holdup_mean_s: float = 2_400.0
    holdup_sd_s: float = 690.0
    common_share: float = 0.25  # of a duration's log-variance, common to the technician-day
    pickup_log_sd: float = 0.25

    def __post_init__(self) -> None:
        if not 0.5 <= self.target < 1.0:
            raise ValueError(f"a promise target is a share in [0.5, 1): {self.target}")
        if not 0.0 <= self.common_share <= 1.0:
            raise ValueError(f"the common share is in [0, 1]: {self.common_share}")

    @property
    def z(self) -> float:
        return NormalDist().inv_cdf(self.target)

    def leg(self, seconds: int) -> tuple[float, float]:
        """Mean and variance of a leg's overrun."""
        mean, var = _lognormal_excess(seconds, self.leg_log_sd)
        p, m, s = self.holdup_rate, self.holdup_mean_s, self.holdup_sd_s
        return mean + p * m, var + p * (m * m + s * s) - (p * m) ** 2


def _lognormal_excess(length_s: float, log_sd: float) -> tuple[float, float]:
    """Mean and variance of length x (X - 1), X log-normal with median 1."""
    if length_s <= 0 or log_sd <= 0:
        return 0.0, 0.0
    s2 = log_sd * log_sd
    return length_s * (math.exp(s2 / 2) - 1), length_s * length_s * math.expm1(s2) * math.exp(s2)


class Exposure:
    """The chains of a route walked in order: where each would have the technician, and what
    their overruns add up to. Feed it the route's legs, pauses and work as planned; ask
    `room` before a promised start."""

    __slots__ = ("_common", "_mean", "_protection", "_time", "_uncertain", "_var", "_z")

    def __init__(self, protection: Protection, start_s: int) -> None:
        self._protection = protection
        self._z = protection.z
        self._time = [float(start_s)]  # planned end of each chain, no wait taken
        self._uncertain = [0.0]  # of which planned work and legs, the parts that vary
        self._mean = [0.0]  # their mean overrun
        self._var = [0.0]  # its variance from independent parts
        self._common = [0.0]  # its standard deviations common to the technician-day

    def travel(self, leg_s: int) -> None:
        mean, var = self._protection.leg(leg_s)
        for c in range(len(self._time)):
            self._time[c] += leg_s
            self._uncertain[c] += leg_s
            self._mean[c] += mean
            self._var[c] += var

    def pause(self, seconds: int) -> None:
        """Time without spread: the lunch break."""
        for c in range(len(self._time)):
            self._time[c] += seconds

    def work(self, seconds: int, planned_s: int, log_sd: float) -> None:
        """`seconds` on site, of which `planned_s` is work with the spread `log_sd`."""
        mean, var = _lognormal_excess(planned_s, log_sd)
        share = self._protection.common_share
        independent, common = (1 - share) * var, math.sqrt(share * var)
        for c in range(len(self._time)):
            self._time[c] += seconds
            self._uncertain[c] += planned_s
            self._mean[c] += mean
            self._var[c] += independent
            self._common[c] += common

    def wait_until(self, time_s: int) -> None:
        """The technician waits until `time_s` as planned: a chain starts there."""
        self._time.append(float(time_s))
        self._uncertain.append(0.0)
        self._mean.append(0.0)
        self._var.append(0.0)
        self._common.append(0.0)

    def room(self, window_end_s: int) -> float:
        """Seconds to spare before `window_end_s` at the target quantile (negative: short)."""
        z = self._z
        return min(
            window_end_s - (t - u + _quantile(u + m, v + c * c, z))
            for t, u, m, v, c in zip(
                self._time, self._uncertain, self._mean, self._var, self._common, strict=True
            )
        )


def _quantile(mean: float, var: float, z: float) -> float:
    """The z-quantile of a positive sum with this mean and variance, taken as log-normal."""
    if mean <= 0:
        return 0.0
    if var <= 0:
        return mean
    s2 = math.log1p(var / (mean * mean))
    return math.exp(math.log(mean) - s2 / 2 + z * math.sqrt(s2))
