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

import functools
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


class Exposure:
    """The chains of a route walked in order: where each would have the technician, and what
    their overruns add up to. Feed it the route's legs, pauses and work as planned; ask
    `room` before a promised start.

    Every chain takes the same additions after it starts, so the walk keeps running totals
    and each chain only the totals at its start: a step costs the same however many chains
    are open, and only `room` looks at each of them."""

    __slots__ = (
        "_chains",
        "_common",
        "_excess",
        "_leg_mean",
        "_leg_var",
        "_mean",
        "_share",
        "_time",
        "_uncertain",
        "_var",
        "_z",
    )

    def __init__(self, protection: Protection, start_s: int) -> None:
        self._z, self._share, self._leg_mean, self._leg_var, self._excess = _constants(protection)
        # Running totals since the start of the day: planned time, the planned parts that
        # vary, their mean overrun, its independent variance and its common deviation.
        self._time = float(start_s)
        self._uncertain = self._mean = self._var = self._common = 0.0
        # Per chain: its planned start and the totals when it started.
        self._chains: list[tuple[float, float, float, float, float, float]] = [
            (float(start_s), self._time, 0.0, 0.0, 0.0, 0.0)
        ]

    def copy(self) -> Exposure:
        """The walk so far, to go on from twice (the chains' totals are immutable tuples)."""
        twin = Exposure.__new__(Exposure)
        for name in Exposure.__slots__:
            setattr(twin, name, getattr(self, name))
        twin._chains = list(self._chains)
        return twin

    def travel(self, leg_s: int) -> None:
        self._time += leg_s
        self._uncertain += leg_s
        self._mean += leg_s * self._leg_mean[0] + self._leg_mean[1]
        self._var += leg_s * leg_s * self._leg_var[0] + self._leg_var[1]

    def pause(self, seconds: int) -> None:
        """Time without spread: the lunch break."""
        self._time += seconds

    def work(self, seconds: int, planned_s: int, log_sd: float) -> None:
        """`seconds` on site, of which `planned_s` is work with the spread `log_sd`."""
        self._time += seconds
        if planned_s <= 0 or log_sd <= 0:
            return
        factors = self._excess.get(log_sd)
        if factors is None:
            s2 = log_sd * log_sd
            factors = self._excess[log_sd] = (math.exp(s2 / 2) - 1, math.expm1(s2) * math.exp(s2))
        var = planned_s * planned_s * factors[1]
        self._uncertain += planned_s
        self._mean += planned_s * factors[0]
        self._var += (1 - self._share) * var
        self._common += math.sqrt(self._share * var)

    def wait_until(self, time_s: int) -> None:
        """The technician waits until `time_s` as planned: a chain starts there."""
        self._chains.append(
            (float(time_s), self._time, self._uncertain, self._mean, self._var, self._common)
        )

    def room(self, window_end_s: int) -> float:
        """Seconds to spare before `window_end_s` at the target quantile (negative: short)."""
        z, tightest = self._z, math.inf
        for base, t0, u0, m0, v0, c0 in self._chains:
            uncertain = self._uncertain - u0
            common = self._common - c0
            end = (
                base
                + (self._time - t0 - uncertain)
                + _quantile(uncertain + self._mean - m0, self._var - v0 + common * common, z)
            )
            tightest = min(tightest, window_end_s - end)
        return tightest


@functools.cache
def _constants(
    protection: Protection,
) -> tuple[
    float, float, tuple[float, float], tuple[float, float], dict[float, tuple[float, float]]
]:
    """What every walk with this protection shares: z, the common share, a leg's overrun
    mean and variance as (per second, per leg), and each duration spread's factors."""
    s2 = protection.leg_log_sd**2
    p, m, sd = protection.holdup_rate, protection.holdup_mean_s, protection.holdup_sd_s
    leg_mean = (math.exp(s2 / 2) - 1, p * m)
    leg_var = (math.expm1(s2) * math.exp(s2), p * (m * m + sd * sd) - (p * m) ** 2)
    return protection.z, protection.common_share, leg_mean, leg_var, {}


def _quantile(mean: float, var: float, z: float) -> float:
    """The z-quantile of a positive sum with this mean and variance, taken as log-normal."""
    if mean <= 0:
        return 0.0
    if var <= 0:
        return mean
    s2 = math.log1p(var / (mean * mean))
    return math.exp(math.log(mean) - s2 / 2 + z * math.sqrt(s2))
