"""Gong's daily quota, shared: a call budget per run and per UTC day.

Gong gives a company 10,000 calls a day for every integration it runs. The tap counts every call
it sends (users pages, flows pages, steps calls, retries) through the one rate limiter, and
checks the budget before each owner starts: an owner that was started is finished, then the run
ends at the last complete owner with its STATE, exit 0. The day's count lives in the bookmark
(`day`, `day_requests`), so it holds across runs of the same UTC day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import typing as t

from tap_gong_flows.ids import is_whole
from tap_gong_flows.state import StateShapeError

if t.TYPE_CHECKING:
    from collections.abc import Callable

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def check_day(seen: str, today: dt.date) -> None:
    """Refuse a day count's date that is not a real date, or lies more than a day ahead: a
    hand-edited or corrupt state would otherwise lift a spent budget or mask the real count."""
    try:
        seen_day = dt.date.fromisoformat(seen)
    except ValueError:
        seen_day = None
    if seen_day is None or seen_day > today + dt.timedelta(days=1):
        why = "is not a date" if seen_day is None else f"lies ahead of today ({today}, UTC)"
        raise StateShapeError(
            "The state's bookmarks.flows is not of this tap's shape: its \"day\" (the UTC day "
            f"whose calls day_requests counts) is {seen!r}, which {why}. Pass a state written "
            "by tap-gong-flows, or none."
        )


@dataclasses.dataclass
class CallBudget:
    """The calls this run may still send; `used` reads the calls sent so far in this run."""

    per_run: int | None
    per_day: int | None
    used: Callable[[], int]
    day: dt.date
    used_today_before: int = 0  # calls earlier runs of the same UTC day sent

    @classmethod
    def from_bookmark(
        cls,
        bookmark: t.Mapping[str, t.Any],
        per_run: int | None,
        per_day: int | None,
        used: Callable[[], int],
        day: dt.date | None = None,
    ) -> CallBudget:
        day = day or today()
        seen_day, count = bookmark.get("day"), bookmark.get("day_requests", 0)
        if (seen_day is not None and not (isinstance(seen_day, str) and DAY.match(seen_day))) or (
            not is_whole(count) or count < 0
        ):
            raise StateShapeError(
                "The state's bookmarks.flows is not of this tap's shape: its day count must be "
                f'"day": "YYYY-MM-DD" and "day_requests": <count>, got day {seen_day!r} and '
                f"day_requests {count!r}. Pass a state written by tap-gong-flows, or none."
            )
        if seen_day is not None:
            check_day(seen_day, day)
        earlier = count if seen_day == day.isoformat() else 0
        return cls(per_run, per_day, used, day, earlier)

    @property
    def limited(self) -> bool:
        return self.per_run is not None or self.per_day is not None

    @property
    def spent_before_run(self) -> bool:
        """Whether earlier runs of today spent the daily budget: this run may send nothing."""
        return self.per_day is not None and self.used_today_before >= self.per_day

    def used_today(self) -> int:
        return self.used_today_before + self.used()

    def spent(self, owed: int = 0) -> str | None:
        """Why no further owner may start, or None while one may; `owed` calls must still go
        out before the run may end (a steps call for flows waiting for a full batch)."""
        if self.per_run is not None and self.used() + owed >= self.per_run:
            return f"{self.used()} requests of max_requests_per_run {self.per_run}"
        if self.per_day is not None and self.used_today() + owed >= self.per_day:
            return (
                f"{self.used_today()} requests today (UTC) of max_requests_per_day "
                f"{self.per_day}, {self.used()} of them in this run"
            )
        return None

    def stop_reason(self, owners_started: int, *, steps_selected: bool) -> str | None:
        """Why the run stops before the next owner, or None while it goes on. Never before the
        run's first owner: a budget smaller than one owner's calls still does one owner a run.
        With the steps streams selected, room is kept for the one steps call a stop owes the
        flows waiting for a full batch."""
        if not owners_started:
            return None
        return self.spent(owed=1 if steps_selected else 0)

    def stop_line(
        self, reason: str, *, done: int, this_run: int, total: int, pass_started: str, after: str
    ) -> str:
        """The INFO line of a stop at the budget: how far this run and the pass got."""
        smaller = ""
        if this_run == 1 and self.per_run is not None and self.per_run < self.used():
            smaller = (
                " The budget is smaller than the calls one owner needs: each run does one owner."
            )
        return (
            f"Stopping at the call budget: {reason}. This run did owners "
            f"{done - this_run + 1:,} to {done:,} of {total:,} (the pass, started "
            f"{pass_started}, has done {done:,} of them); the next run starts after "
            f"{after}.{smaller}"
        )

    def spent_at_start_line(self) -> str:
        """The INFO line of a run that starts with the day's budget spent."""
        return (
            f"The daily call budget is spent: {self.used_today_before} requests today (UTC) of "
            f"max_requests_per_day {self.per_day}. No request was sent; it renews at "
            f"{self.renews_at}."
        )

    @property
    def renews_at(self) -> str:
        tomorrow = self.day + dt.timedelta(days=1)
        return f"{tomorrow.isoformat()} 00:00 UTC"

    def bookmark(self) -> dict[str, t.Any]:
        return {"day": self.day.isoformat(), "day_requests": self.used_today()}
