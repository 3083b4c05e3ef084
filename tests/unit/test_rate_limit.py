"""RateLimiter on a fake clock: its sleeps move time instead of spending it."""

from __future__ import annotations

import itertools
import math
import typing as t

import pytest

from tap_gong_flows.rate_limit import WINDOW_SLACK, RateLimiter
from tests.unit.fakes import FakeClock, FakeSleepSwitch

START = 1000.0


class StopError(Exception):
    pass


def limiter(
    rate: float, on_sleep: t.Callable[[FakeSleepSwitch], None] | None = None
) -> tuple[RateLimiter, FakeClock, FakeSleepSwitch]:
    clock = FakeClock(START)
    switch = FakeSleepSwitch(clock, on_sleep)
    return RateLimiter(rate, switch, clock), clock, switch


def starts(rate: float, count: int) -> list[float]:
    """The fake times at which `count` back-to-back acquisitions start."""
    limit, clock, _ = limiter(rate)
    times = []
    for _ in range(count):
        limit.acquire()
        times.append(clock.now)
    return times


def most_in_a_window(times: list[float], width: float) -> int:
    """The most starts in any half-open window [t, t + width)."""
    return max(sum(1 for u in times if s <= u < s + width) for s in times)


@pytest.mark.parametrize("rate", [1, 2, 3, 4, 10, 100])
def test_whole_rates_start_a_burst_then_wait_a_second_and_the_slack(rate: int) -> None:
    times = starts(rate, rate * 4)
    assert times[:rate] == [START] * rate  # a fresh limiter does not make the first ones wait
    for i in range(len(times) - rate):
        assert times[i + rate] - times[i] >= 1 + WINDOW_SLACK - 1e-9
    assert most_in_a_window(times, 1 + WINDOW_SLACK) <= rate
    # and no slower than that: the fourth burst starts three windows after the first
    assert times[-1] == pytest.approx(START + 3 * (1 + WINDOW_SLACK))


@pytest.mark.parametrize("rate", [0.5, 0.25, 0.1])
def test_rates_below_one_start_one_request_every_one_over_rate_seconds(rate: float) -> None:
    times = starts(rate, 5)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([1 / rate + WINDOW_SLACK] * 4)
    assert most_in_a_window(times, 1 / rate) == 1


def test_half_a_request_a_second_is_one_every_two_seconds() -> None:
    times = starts(0.5, 3)
    assert times == pytest.approx([START, START + 2 + WINDOW_SLACK, START + 4 + 2 * WINDOW_SLACK])


@pytest.mark.parametrize(
    "rate",
    [
        1,
        2,
        3,
        10,
        0.5,
        1.2,
        1.5,
        2.5,
        3.5,
    ],
)
def test_no_more_than_the_rate_rounded_up_start_in_any_second(rate: float) -> None:
    times = starts(rate, 40)
    assert most_in_a_window(times, 1.0) <= max(1, math.ceil(rate))


@pytest.mark.parametrize("rate", [0.5, 1, 1.5, 2.5, 3, 3.5, 10])
def test_the_long_run_rate_is_at_most_the_setting(rate: float) -> None:
    times = starts(rate, 60)
    first_burst = max(1, math.floor(rate))  # they start together, before any time has passed
    assert (len(times) - first_burst) / (times[-1] - times[0]) <= rate


def test_hold_delays_every_acquisition_until_it_passes() -> None:
    limit, clock, _ = limiter(3)
    limit.acquire()
    limit.hold(30)
    for _ in range(3):
        limit.acquire()
        assert clock.now >= START + 30
    assert clock.now == pytest.approx(START + 30)  # the held burst then goes at once
    assert limit.waited == pytest.approx(30)


def test_a_shorter_hold_does_not_shorten_a_longer_one() -> None:
    limit, clock, _ = limiter(3)
    limit.hold(10)
    limit.hold(2)
    limit.acquire()
    assert clock.now == pytest.approx(START + 10)


def test_a_hold_that_has_passed_costs_nothing() -> None:
    limit, clock, _ = limiter(3)
    limit.hold(5)
    clock.now += 6
    limit.acquire()
    assert limit.waited == 0
    assert clock.sleeps == []


def test_a_hold_does_not_let_the_window_be_skipped() -> None:
    limit, clock, _ = limiter(3)
    for _ in range(3):
        limit.acquire()
    limit.hold(0.1)  # shorter than what the window asks anyway
    limit.acquire()
    assert clock.now == pytest.approx(START + 1 + WINDOW_SLACK)


def test_counters() -> None:
    limit, clock, _ = limiter(2)
    assert (limit.requests, limit.waited) == (0, 0)
    for _ in range(6):
        limit.acquire()
    assert limit.requests == 6
    assert limit.waited == pytest.approx(clock.now - START)
    assert limit.waited == pytest.approx(2 * (1 + WINDOW_SLACK))
    assert sum(clock.sleeps) == pytest.approx(limit.waited)


def test_a_tripped_switch_raises_its_reason_without_counting() -> None:
    limit, clock, switch = limiter(3)
    limit.acquire()
    reason = StopError("fatal elsewhere")
    switch.trip(reason)
    with pytest.raises(StopError) as raised:
        limit.acquire()
    assert raised.value is reason
    assert limit.requests == 1
    assert clock.now == START  # no wait before raising


def test_a_switch_tripped_while_waiting_raises_without_counting() -> None:
    def trip(switch: FakeSleepSwitch) -> None:
        switch.trip(StopError("cancelled mid-wait"))

    limit, clock, _ = limiter(1, on_sleep=trip)
    limit.acquire()
    with pytest.raises(StopError, match="mid-wait"):
        limit.acquire()
    assert limit.requests == 1
    assert len(clock.sleeps) == 1


def test_a_switch_tripped_during_a_hold_raises() -> None:
    def trip(switch: FakeSleepSwitch) -> None:
        switch.trip(StopError("stop"))

    limit, _, _ = limiter(3, on_sleep=trip)
    limit.hold(600)
    with pytest.raises(StopError):
        limit.acquire()
    assert limit.requests == 0


def test_burst_and_window() -> None:
    limit, _, _ = limiter(3)
    assert limit.burst == 3
    assert limit.window == pytest.approx(1 + WINDOW_SLACK)
    slow, _, _ = limiter(0.5)
    assert slow.burst == 1
    assert slow.window == pytest.approx(2 + WINDOW_SLACK)


def test_a_limiter_without_a_switch_gets_its_own() -> None:
    clock = FakeClock(START)
    limit = RateLimiter(3, clock=clock)
    for _ in range(3):
        limit.acquire()  # within the burst: no real sleep
    assert limit.requests == 3
