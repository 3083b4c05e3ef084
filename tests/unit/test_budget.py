"""CallBudget: the calls a run may still send, per run and per UTC day (issue 14)."""

from __future__ import annotations

import datetime as dt

import pytest

from tap_gong_flows.budget import CallBudget
from tap_gong_flows.state import StateShapeError

DAY = dt.date(2026, 12, 1)


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        return self.calls


def budget(bookmark: dict, per_run: int | None, per_day: int | None) -> tuple[CallBudget, Counter]:
    used = Counter()
    return CallBudget.from_bookmark(bookmark, per_run, per_day, used, day=DAY), used


def test_no_budget_is_never_spent() -> None:
    calls, used = budget({}, None, None)
    used.calls = 10**6
    assert not calls.limited
    assert calls.spent() is None


def test_the_run_budget_is_spent_at_its_count_and_keeps_room_for_what_is_owed() -> None:
    calls, used = budget({}, 10, None)
    used.calls = 9
    assert calls.spent() is None
    assert calls.spent(owed=1) == "9 requests of max_requests_per_run 10"
    used.calls = 10
    assert calls.spent() == "10 requests of max_requests_per_run 10"


def test_the_day_budget_counts_earlier_runs_of_the_same_day_only() -> None:
    same_day, used = budget({"day": "2026-12-01", "day_requests": 7}, None, 10)
    used.calls = 2
    assert same_day.spent() is None
    assert same_day.spent(owed=1) is not None
    used.calls = 3
    assert same_day.spent() == (
        "10 requests today (UTC) of max_requests_per_day 10, 3 of them in this run"
    )
    assert same_day.bookmark() == {"day": "2026-12-01", "day_requests": 10}
    yesterday, used = budget({"day": "2026-11-30", "day_requests": 10}, None, 10)
    assert yesterday.spent() is None
    assert yesterday.bookmark() == {"day": "2026-12-01", "day_requests": 0}
    assert yesterday.renews_at == "2026-12-02 00:00 UTC"


@pytest.mark.parametrize(
    "bookmark",
    [
        {"day": "yesterday", "day_requests": 1},
        {"day": 20261201, "day_requests": 1},
        {"day": "2026-12-01", "day_requests": -1},
        {"day": "2026-12-01", "day_requests": True},
        {"day": "2026-12-01", "day_requests": "5"},
    ],
)
def test_a_day_count_of_another_shape_is_refused(bookmark: dict) -> None:
    with pytest.raises(StateShapeError, match="day count"):
        budget(bookmark, None, 10)
