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

    def __init__(
        self,
        limiter: RateLimiter,
        logger: logging.Logger,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.logger = logger
        self.clock = clock
        self.started = clock()
        self.owners_total = 0
        self.pass_started = ""
        self.owners_done = 0
        self.retries = 0
        self._owner_retries: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._pass_started = self.started
        self._pass_done = 0  # owners this run finished
        self._run_skipped = 0
        self._pass_requests = 0  # the limiter's count when the pass started in this run
        self._pages_done = 0  # pages of the owners this run finished
        self.rows: collections.Counter[str] = collections.Counter()  # records written, by stream
        self.latency: float | None = None  # moving average of Gong's answer time, seconds
        self.notes: list[str] = []  # a pass's own line, repeated in the summary

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
        self._pass_started = self.clock()
        self._pass_requests = self.limiter.requests
        self._pass_done = 0
        self.owners_done = already_done

    def emitted(self, stream: str, rows: int) -> None:
        """`rows` more records of `stream` are written (main thread only)."""
        if rows:
            self.rows[stream] += rows

    def time_left(self) -> float:
        """Seconds the owners left will take: the calls still to make (pages per owner as
        measured so far), at the pace this run's calls have gone (every call, those of owners
        fetched ahead included)."""
        calls = self.limiter.requests - self._pass_requests
        if not calls or not self._pass_done:
            return 0.0
        owners = self.owners_total - (self.owners_done - self._pass_done)  # this run's share
        pages = self._pages_done / self._pass_done
        pace = (self.clock() - self._pass_started) / calls
        return max(0.0, owners * max(pages, 1.0) - calls) * pace

    def owner_finished(self, owner: str, records: int, pages: int, *, skipped: bool) -> None:
        """Log one owner's line: position, records, requests, retries, waits, time left."""
        self.owners_done += 1
        self._pass_done += 1
        self._pages_done += pages
        if skipped:
            self._run_skipped += 1
        with self._lock:
            retries = self._owner_retries.pop(owner, 0)
        self.logger.info(
            "Owner %s of %s %s: %s, %s, %s, %s; run so far: %s, %.1f s waited on the rate "
            "limit, about %s left; pass started %s",
            f"{self.owners_done:,}",
            f"{self.owners_total:,}",
            owner,
            "skipped" if skipped else "done",
            count(records, "record"),
            count(pages, "page"),
            count(retries, "retry", "retries"),
            count(self.limiter.requests, "request"),
            self.limiter.waited,
            _duration(self.time_left()),
            self.pass_started or "in this run",
        )

    def summary(self, outcome: str) -> str:
        """The run's last line: this run's owners apart from the pass's, every stream's rows."""
        done = self._pass_done - self._run_skipped
        parts = [
            f"Sync {outcome}: this run did {count(done, 'owner')}, {self._run_skipped} skipped"
        ]
        if self.owners_total:
            started = f", started {self.pass_started}" if self.pass_started else ""
            parts.append(
                f"the pass has done {self.owners_done:,} of {count(self.owners_total, 'owner')}"
                f"{started}"
            )
        rows = ", ".join(f"{count(n, 'record')} of {name}" for name, n in self.rows.items())
        parts.append(rows or "no records")
        parts.append(
            f"{count(self.limiter.requests, 'request')}, {count(self.retries, 'retry', 'retries')}"
            f", {self.limiter.waited:.1f} s waited on rate limits"
        )
        parts.append(f"{self.clock() - self.started:.1f} s elapsed.")
        return " ".join(["; ".join(parts), *self.notes])


def count(number: int, one: str, many: str | None = None) -> str:
    """`number` and the noun that agrees with it: 1 owner, 2 owners, 1 retry, 0 retries."""
    return f"{number:,} {one if number == 1 else many or one + 's'}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
