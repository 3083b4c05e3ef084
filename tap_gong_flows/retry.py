"""Retry policy: how long to wait before a request is sent again."""

from __future__ import annotations

import datetime as dt
import email.utils
import random

MIN_JITTER = 0.05
MAX_JITTER = 0.5


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Parse a Retry-After header: delta-seconds or an HTTP-date. None when absent or garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def jitter(seconds: float) -> float:
    """A small random extra wait, never negative, so retries of many taps do not align."""
    return random.uniform(MIN_JITTER, min(MAX_JITTER, MIN_JITTER + seconds * 0.1))


def exponential_wait(attempt: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter over the upper half: attempt 1 waits ~base."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)
