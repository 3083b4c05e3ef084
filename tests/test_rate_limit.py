"""The rate limiter's own departures and holds, measured in-process without a network."""

from __future__ import annotations

import threading
import time

import pytest

from tap_gong_flows.rate_limit import RateLimiter


def departures(limiter: RateLimiter, threads: int, each: int) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(each):
            limiter.acquire()
            with lock:
                times.append(time.monotonic())

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sorted(times)


@pytest.mark.slow
@pytest.mark.parametrize(("rate", "burst", "window"), [(3, 3, 1.0), (2.5, 2, 0.8), (1.5, 1, 0.66)])
def test_no_window_holds_more_than_the_rate(rate, burst, window):
    times = departures(RateLimiter(rate), threads=4, each=1 + burst)
    assert len(times) == 4 * (1 + burst)
    crowded = [i for i in range(len(times) - burst) if times[i + burst] - times[i] < window]
    assert crowded == []


def test_a_hold_stops_every_thread_until_it_ends():
    limiter = RateLimiter(100)
    limiter.hold(0.5)
    start = time.monotonic()
    times = departures(limiter, threads=3, each=1)
    assert min(times) - start >= 0.5
    assert limiter.waited > 0.4  # part of the hold passed before the threads asked
    assert limiter.requests == 3
