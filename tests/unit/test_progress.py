"""RunProgress: the time left and the summary a person reads (issue 19)."""

from __future__ import annotations

import logging

from tap_gong_flows.progress import RunProgress, count
from tests.unit.fakes import FakeClock


class FakeLimiter:
    waited = 0.0

    def __init__(self) -> None:
        self.requests = 0


def progress() -> tuple[RunProgress, FakeLimiter, FakeClock]:
    limiter, clock = FakeLimiter(), FakeClock()
    return RunProgress(limiter, logging.getLogger("test-progress"), clock), limiter, clock  # type: ignore[arg-type]


def test_time_left_is_the_calls_still_to_make_at_the_measured_pace() -> None:
    run, limiter, clock = progress()
    run.start_pass(10, 0)
    # 4 owners fetched ahead at once: 4 calls in 2 s, then the first owner (1 page) is done.
    limiter.requests, clock.now = 4, clock.now + 2.0
    run.owner_finished("a@x.com", 3, 1, skipped=False)
    # 10 owners of 1 page: 6 calls left at 0.5 s a call (the first owner alone said 18 s).
    assert run.time_left() == 3.0


def test_time_left_counts_the_pages_owners_need() -> None:
    run, limiter, clock = progress()
    run.start_pass(5, 3)  # 3 owners done by earlier runs: 2 left for this run
    limiter.requests, clock.now = 2, clock.now + 1.0
    run.owner_finished("a@x.com", 150, 2, skipped=False)
    assert run.time_left() == 1.0  # 2 owners x 2 pages, 2 calls made, 0.5 s a call


def test_the_summary_keeps_the_run_apart_from_the_pass_and_counts_every_stream() -> None:
    run, limiter, clock = progress()
    run.start_pass(12, 11, "2026-11-30")
    limiter.requests = 2
    run.owner_finished("l@x.com", 1, 1, skipped=False)
    run.emitted("flows", 1)
    run.emitted("flow_steps", 2)
    run.emitted("flow_steps", 1)
    run.emitted("users", 0)  # nothing: not named
    run.retried(None)
    clock.now += 1.5
    assert run.summary("complete") == (
        "Sync complete: this run did 1 owner, 0 skipped; the pass has done 12 of 12 owners, "
        "started 2026-11-30; 1 record of flows, 3 records of flow_steps; 2 requests, 1 retry, "
        "0.0 s waited on rate limits; 1.5 s elapsed."
    )


def test_numbers_agree_with_their_nouns() -> None:
    assert [count(n, "owner") for n in (0, 1, 2, 1500)] == [
        "0 owners", "1 owner", "2 owners", "1,500 owners",
    ]  # fmt: skip
    assert [count(n, "retry", "retries") for n in (1, 2)] == ["1 retry", "2 retries"]
