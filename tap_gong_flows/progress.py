"""What users see while a sync runs: a line per owner and a final summary."""

from __future__ import annotations

import collections
import logging
import threading
import time
import typing as t

if t.TYPE_CHECKING:
    from tap_gong_flows.rate_limit import RateLimiter


class RunProgress:
    """Counters of one run, shared by every stream and worker thread."""

    def __init__(self, limiter: RateLimiter, logger: logging.Logger) -> None:
        self.limiter = limiter
        self.logger = logger
        self.started = time.monotonic()
        self.owners_total = 0
        self.pass_started = ""
        self.owners_done = 0
        self.owners_skipped = 0
        self.records = 0
        self.retries = 0
        self._owner_retries: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._pass_started = self.started
        self._pass_done = 0
        self.latency: float | None = None  # moving average of Gong's answer time, seconds

    def answered(self, seconds: float) -> None:
        """Count one answer's latency into the moving average (from any thread)."""
        self.latency = seconds if self.latency is None else 0.8 * self.latency + 0.2 * seconds

    def retried(self, owner: str | None) -> None:
        with self._lock:
            self.retries += 1
            if owner:
                self._owner_retries[owner] += 1

    def start_pass(self, total: int, already_done: int, started: str = "") -> None:
        """A pass over `total` owners, `already_done` of them by earlier runs, begun on
        `started` (a UTC date): a pass can span runs."""
        self.pass_started = started
        self.owners_total = total
        self._pass_started = time.monotonic()
        self._pass_done = 0
        self.owners_done = already_done

    def owner_finished(self, owner: str, records: int, pages: int, *, skipped: bool) -> None:
        """Log one owner's line: position, records, requests, retries, waits, time left."""
        self.owners_done += 1
        self._pass_done += 1
        self.records += records
        if skipped:
            self.owners_skipped += 1
        with self._lock:
            retries = self._owner_retries.pop(owner, 0)
        elapsed = time.monotonic() - self._pass_started
        left = (self.owners_total - self.owners_done) * elapsed / max(1, self._pass_done)
        self.logger.info(
            "Owner %s of %s %s: %s, %d records, %d pages, %d retries; run so far: %d requests, "
            "%.1f s waited on the rate limit, about %s left; pass started %s",
            f"{self.owners_done:,}",
            f"{self.owners_total:,}",
            owner,
            "skipped" if skipped else "done",
            records,
            pages,
            retries,
            self.limiter.requests,
            self.limiter.waited,
            _duration(left),
            self.pass_started or "in this run",
        )

    def summary(self, outcome: str) -> str:
        return (
            f"Sync {outcome}: {self.owners_done - self.owners_skipped} owners done, "
            f"{self.owners_skipped} skipped, of {self.owners_total}; {self.records} flow records; "
            f"{self.limiter.requests} requests, {self.retries} retries, "
            f"{self.limiter.waited:.1f} s waited on rate limits; "
            f"{time.monotonic() - self.started:.1f} s elapsed."
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
