"""The retry policy, top to bottom: what is retried, how long to wait, when to give up.

- Retried: 408, 425, 429 and every 5xx, dropped connections, timeouts, truncated bodies and a
  200 whose body is not JSON (client.py raises those as retriable).
- The wait: Gong's `Retry-After` when it sends one (on any retried status; a 429 without one
  waits DEFAULT_RETRY_AFTER), held for every request of the tap by the rate limiter, plus a
  little jitter; otherwise exponential backoff with jitter.
- Giving up: after `max_retries` retries the sync stops naming owner, page and requestId. A
  `Retry-After` longer than `max_retry_wait_seconds` (a spent daily quota), or one that is
  infinite, is not slept through: the sync stops at once with a resumable STATE.
- A `Retry-After` that cannot be read (text, negative, not a number) counts as absent.

client.py wires this in: `validate_response` asks `is_retried` and `after_answer`, holds the rate
limiter for the wait, and hands `wait_generator` to singer-sdk's backoff; the rate limiter
(rate_limit.py) does every wait that holds all requests.

A test hook, not a setting: the environment variable TEST_BACKOFF_BASE_VARIABLE, read once on
import, shortens the exponential backoff (its first wait, in seconds) so that the tests' runs of
the tap do not sleep 1+2+4 s on a persistent 5xx. Only tests set it; it is in no config schema,
`--about`, meltano.yml or README, and it does not touch a wait Gong asks for (Retry-After).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import os
import random
import typing as t
from urllib.parse import urlsplit

import backoff
import requests
from singer_sdk.exceptions import RetriableAPIError

MIN_JITTER = 0.05
MAX_JITTER = 0.5
DEFAULT_RETRY_AFTER = 1.0  # a 429 without a readable Retry-After
RETRIED_STATUSES = frozenset({408, 425, 429, *range(500, 600)})
# The failures that are retried: an answer retried by status (or a body that is not JSON), a
# dropped or refused connection, a timeout, a body cut short. singer-sdk retries the same ones.
RETRIED_ERRORS: tuple[type[Exception], ...] = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
DEFAULT_BACKOFF_BASE = 1.0  # the first exponential wait, in seconds
# Deliberately outside the TAP_GONG_FLOWS_ prefix, from which `--config ENV` reads settings.
TEST_BACKOFF_BASE_VARIABLE = "GONG_FLOWS_TEST_BACKOFF_BASE"


def backoff_base(environ: t.Mapping[str, str]) -> float:
    """The backoff base a test put in the environment; the default when unset or unreadable."""
    try:
        base = float(environ.get(TEST_BACKOFF_BASE_VARIABLE, DEFAULT_BACKOFF_BASE))
    except ValueError:
        return DEFAULT_BACKOFF_BASE
    return base if 0 < base <= DEFAULT_BACKOFF_BASE else DEFAULT_BACKOFF_BASE


BACKOFF_BASE = backoff_base(os.environ)


def is_retried(status: int) -> bool:
    return status in RETRIED_STATUSES


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Parse a Retry-After header: delta-seconds or an HTTP-date; math.inf for an infinite one.

    None when absent or unreadable: text, a negative number, NaN.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None  # NaN fails the comparison too
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def requested_wait(status: int, header: str | None, now: dt.datetime | None = None) -> float | None:
    """How long Gong asked us to wait before retrying; None when it did not say."""
    wait = retry_after_seconds(header, now)
    if wait is None and status == 429:
        return DEFAULT_RETRY_AFTER
    return wait


class Wait(t.NamedTuple):
    """What to do after a retried answer: hold every request `seconds` (None: back off
    exponentially instead), or, when `stop`, end the sync: Gong asked for longer than a run
    waits."""

    seconds: float | None
    stop: bool = False


def after_answer(
    status: int, header: str | None, max_wait: float, now: dt.datetime | None = None
) -> Wait:
    """The wait after a retried status and its Retry-After header."""
    asked = requested_wait(status, header, now)
    if asked is None:
        return Wait(None)
    if asked > max_wait:
        return Wait(asked, stop=True)
    return Wait(asked + jitter(asked))


def wait_generator(base: float = BACKOFF_BASE) -> t.Generator[float, BaseException | None, None]:
    """backoff's wait generator: the wait the failure carries (Gong's Retry-After, already held
    for every request), else exponential backoff with jitter from `base` seconds."""
    attempt = 0
    failure = yield  # type: ignore[misc]  # backoff primes the generator with next()
    while True:
        attempt += 1
        carried = getattr(failure, "wait", None)
        failure = yield carried if carried is not None else exponential_wait(attempt, base)


def resume_time(wait: float, now: dt.datetime | None = None) -> dt.datetime | None:
    """When a wait of `wait` seconds ends, or None if that is past any calendar."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if not math.isfinite(wait):
        return None
    try:
        return now + dt.timedelta(seconds=wait)
    except OverflowError:
        return None


def jitter(seconds: float) -> float:
    """A small random extra wait, never negative, so retries of many taps do not align."""
    return random.uniform(MIN_JITTER, min(MAX_JITTER, MIN_JITTER + seconds * 0.1))


def exponential_wait(attempt: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter over the upper half: attempt 1 waits ~base."""
    ceiling = min(cap, base * 2 ** min(attempt - 1, 32))
    return random.uniform(ceiling / 2, ceiling)


def failure(exc: BaseException | None) -> str:
    """A retried failure in a few words: Gong's answer, or the error and the host it was for."""
    if isinstance(exc, RetriableAPIError):
        return str(exc)
    if isinstance(exc, requests.RequestException):
        return f"{type(exc).__name__} from {host(exc)}"
    return type(exc).__name__


def host(exc: requests.RequestException) -> str:
    """The host (and port) a failed request was for, as api_url names it."""
    url = exc.request.url if exc.request is not None else None
    return urlsplit(url).netloc if url else "the API"


def decorate(
    func: t.Callable,
    *,
    wait: t.Callable,
    tries: t.Callable,
    on_retry: t.Callable,
    jitter: t.Callable,
) -> t.Callable:
    """singer-sdk's retry decorator, with `on_retry` the only line a retry says (backoff's own
    "Backing off" and "Giving up" lines repeated each one)."""
    return backoff.on_exception(
        wait, RETRIED_ERRORS, max_tries=tries, on_backoff=on_retry, jitter=jitter, logger=None
    )(func)
