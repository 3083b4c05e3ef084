"""retry: what is retried, Retry-After in both forms, and the bounds of every random wait."""

from __future__ import annotations

import datetime as dt
import math
import random
import typing as t
from pathlib import Path

import pytest

from tap_gong_flows import retry
from tap_gong_flows.retry import (
    DEFAULT_RETRY_AFTER,
    MAX_JITTER,
    MIN_JITTER,
    exponential_wait,
    is_retried,
    jitter,
    requested_wait,
    resume_time,
    retry_after_seconds,
)

NOW = dt.datetime(2015, 10, 21, 7, 28, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def _keep_random_state() -> t.Iterator[None]:
    """The tests seed the shared generator; leave it as they found it."""
    state = random.getstate()
    yield
    random.setstate(state)


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_retried_statuses(status: int) -> None:
    assert is_retried(status)


@pytest.mark.parametrize("status", [200, 204, 301, 400, 401, 403, 404, 409, 422, 499, 600])
def test_statuses_not_retried(status: int) -> None:
    assert not is_retried(status)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0", 0.0),
        ("1", 1.0),
        ("120", 120.0),
        (" 30 ", 30.0),
        ("2.5", 2.5),
        ("1e12", 1e12),
        ("86400", 86400.0),
    ],
)
def test_delta_seconds(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, NOW) == seconds


@pytest.mark.parametrize("header", ["inf", "Infinity", "1e400"])
def test_infinite_delta_is_inf(header: str) -> None:
    assert retry_after_seconds(header, NOW) == math.inf


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "soon", "in a minute", "-1", "-0.5", "-inf", "nan", "NaN", "12 s", "0x10"],
)
def test_unreadable_retry_after_is_none(header: str | None) -> None:
    assert retry_after_seconds(header, NOW) is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("Wed, 21 Oct 2015 07:29:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 08:28:00 GMT", 3600.0),
        ("Wed, 21 Oct 2015 09:28:00 +0200", 0.0),  # the same instant as NOW
        ("Wed, 21 Oct 2015 07:28:30 -0000", 30.0),  # no zone: read as UTC
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # in the past: no wait, never negative
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
    ],
)
def test_http_date_against_an_injected_now(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, NOW) == seconds


@pytest.mark.parametrize(
    "header",
    ["Wed, 32 Oct 2015 07:29:00 GMT", "Wed, 21 Foo 2015 07:29:00 GMT", "Wed, 21 Oct 99999 GMT"],
)
def test_garbled_http_date_is_none(header: str) -> None:
    assert retry_after_seconds(header, NOW) is None


def test_http_date_without_now_uses_the_clock() -> None:
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    wait = retry_after_seconds(later.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert wait is not None
    assert 3500 < wait <= 3600


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_requested_wait_uses_the_header(status: int) -> None:
    assert requested_wait(status, "7", NOW) == 7.0
    assert requested_wait(status, "Wed, 21 Oct 2015 07:29:00 GMT", NOW) == 60.0


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "nan"])
def test_429_without_a_readable_header_waits_the_default(header: str | None) -> None:
    assert requested_wait(429, header, NOW) == DEFAULT_RETRY_AFTER


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
@pytest.mark.parametrize("header", [None, "", "soon"])
def test_other_statuses_without_a_header_did_not_say(status: int, header: str | None) -> None:
    assert requested_wait(status, header, NOW) is None


def test_requested_wait_passes_infinity_on() -> None:
    assert requested_wait(429, "inf", NOW) == math.inf


def test_resume_time() -> None:
    assert resume_time(60, NOW) == NOW + dt.timedelta(minutes=1)
    assert resume_time(0, NOW) == NOW


@pytest.mark.parametrize("wait", [math.inf, math.nan, 1e12, 1e15, 1e300])
def test_resume_time_past_any_calendar_is_none(wait: float) -> None:
    assert resume_time(wait, NOW) is None


def test_resume_time_without_now_uses_the_clock() -> None:
    when = resume_time(10)
    assert when is not None
    assert when.tzinfo is not None
    assert abs((when - dt.datetime.now(dt.timezone.utc)).total_seconds() - 10) < 5


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("seconds", "high"),
    [(0, MIN_JITTER), (1, MIN_JITTER + 0.1), (4.5, MAX_JITTER), (3600, MAX_JITTER)],
)
def test_jitter_bounds(seed: int, seconds: float, high: float) -> None:
    random.seed(seed)
    for _ in range(200):
        extra = jitter(seconds)
        assert MIN_JITTER <= extra <= high + 1e-12


def test_jitter_of_infinity_is_bounded() -> None:
    assert MIN_JITTER <= jitter(math.inf) <= MAX_JITTER


def test_jitter_varies() -> None:
    random.seed(1)
    assert len({jitter(10) for _ in range(20)}) > 1


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [
        (1, 0.5, 1.0),
        (2, 1.0, 2.0),
        (3, 2.0, 4.0),
        (6, 16.0, 32.0),
        (7, 30.0, 60.0),  # capped
        (50, 30.0, 60.0),
        (10**6, 30.0, 60.0),  # the exponent is bounded, no OverflowError
    ],
)
def test_exponential_wait_bounds(attempt: int, low: float, high: float) -> None:
    random.seed(attempt)
    for _ in range(200):
        assert low <= exponential_wait(attempt) <= high


def test_exponential_wait_base_and_cap() -> None:
    random.seed(0)
    for _ in range(100):
        assert 1.0 <= exponential_wait(1, base=2.0) <= 2.0
        assert 5.0 <= exponential_wait(20, base=2.0, cap=10.0) <= 10.0


def test_exponential_wait_is_random_over_the_upper_half() -> None:
    random.seed(3)
    waits = [exponential_wait(4) for _ in range(500)]
    assert min(waits) < 4.5
    assert max(waits) > 7.5


def test_exponential_wait_is_reproducible_with_a_seed() -> None:
    random.seed(42)
    first = [exponential_wait(n) for n in range(1, 8)]
    random.seed(42)
    assert [exponential_wait(n) for n in range(1, 8)] == first


def test_the_policy_constants_hang_together() -> None:
    assert 0 < retry.MIN_JITTER < retry.MAX_JITTER < 1
    assert retry.DEFAULT_RETRY_AFTER > 0


# The decision after a retried answer, and backoff's wait generator


def test_after_answer_holds_for_retry_after_plus_jitter() -> None:
    wait = retry.after_answer(503, "3", max_wait=600)
    assert not wait.stop
    assert wait.seconds is not None
    assert 3.0 + retry.MIN_JITTER <= wait.seconds <= 3.0 + retry.MAX_JITTER


def test_after_answer_without_retry_after_backs_off_except_for_429() -> None:
    assert retry.after_answer(500, None, max_wait=600) == retry.Wait(None)
    wait = retry.after_answer(429, None, max_wait=600)
    assert wait.seconds is not None
    assert wait.seconds >= retry.DEFAULT_RETRY_AFTER


@pytest.mark.parametrize("header", ["601", "inf", "1e12"])
def test_after_answer_stops_for_a_wait_longer_than_a_run_waits(header: str) -> None:
    wait = retry.after_answer(429, header, max_wait=600)
    assert wait.stop
    assert wait.seconds is not None
    assert wait.seconds > 600


def test_wait_generator_takes_the_carried_wait_else_backs_off() -> None:
    class CarryingError(Exception):
        wait = 7.5

    waits = retry.wait_generator()
    next(waits)  # backoff primes it
    assert waits.send(CarryingError()) == 7.5
    backed_off = waits.send(ValueError())
    assert 1.0 <= backed_off <= 2.0  # attempt 2: ceiling 2 s, full jitter over its upper half
    assert waits.send(CarryingError()) == 7.5


def test_wait_generator_backs_off_from_an_injected_base() -> None:
    random.seed(0)
    waits = retry.wait_generator(base=0.01)
    next(waits)
    ceilings = [0.01, 0.02, 0.04, 0.08]
    for ceiling in ceilings:
        assert ceiling / 2 <= waits.send(ValueError()) <= ceiling


def test_the_injected_base_leaves_a_carried_wait_alone() -> None:
    class CarryingError(Exception):
        wait = 7.5

    waits = retry.wait_generator(base=0.01)
    next(waits)
    assert waits.send(CarryingError()) == 7.5


def test_the_backoff_base_is_one_second_unless_a_test_sets_it() -> None:
    assert retry.backoff_base({}) == retry.DEFAULT_BACKOFF_BASE == 1.0
    assert retry.backoff_base({retry.TEST_BACKOFF_BASE_VARIABLE: "0.01"}) == 0.01


@pytest.mark.parametrize("value", ["", "soon", "0", "-1", "nan", "inf", "5"])
def test_a_test_backoff_base_that_is_unreadable_or_longer_is_ignored(value: str) -> None:
    assert retry.backoff_base({retry.TEST_BACKOFF_BASE_VARIABLE: value}) == 1.0


def test_the_test_hook_is_no_setting() -> None:
    from tap_gong_flows.tap import TapGongFlows

    # `--config ENV` reads every TAP_GONG_FLOWS_ variable that names a setting
    assert not retry.TEST_BACKOFF_BASE_VARIABLE.startswith("TAP_GONG_FLOWS_")
    assert not [name for name in TapGongFlows.config_jsonschema["properties"] if "backoff" in name]
    root = Path(__file__).resolve().parents[2]
    for user_facing in ("README.md", "meltano.yml", "hub/tap-gong-flows.yml"):
        assert retry.TEST_BACKOFF_BASE_VARIABLE not in (root / user_facing).read_text()
