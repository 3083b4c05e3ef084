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


# --- the stop before the next owner, its wording, and a state's day ----------------------


def test_never_a_stop_before_the_runs_first_owner() -> None:
    calls, used = budget({}, 2, None)
    used.calls = 5
    assert calls.stop_reason(0, steps_selected=False) is None
    assert calls.stop_reason(1, steps_selected=False) == "5 requests of max_requests_per_run 2"


def test_the_stop_keeps_room_for_the_steps_call_it_owes() -> None:
    calls, used = budget({}, 4, None)
    used.calls = 3
    assert calls.stop_reason(1, steps_selected=False) is None
    assert calls.stop_reason(1, steps_selected=True) == "3 requests of max_requests_per_run 4"


def test_the_stop_line_says_how_far_the_run_and_the_pass_got() -> None:
    calls, used = budget({}, 1, None)
    used.calls = 3
    line = calls.stop_line(
        "3 requests of max_requests_per_run 1",
        done=7,
        this_run=1,
        total=30,
        pass_started="2026-11-30",
        after="g@x.com",
    )
    assert line == (
        "Stopping at the call budget: 3 requests of max_requests_per_run 1. This run did owners "
        "7 to 7 of 30 (the pass, started 2026-11-30, has done 7 of them); the next run starts "
        "after g@x.com. The budget is smaller than the calls one owner needs: each run does one "
        "owner."
    )


def test_the_spent_at_start_line_says_when_it_renews() -> None:
    calls, _ = budget({"day": DAY.isoformat(), "day_requests": 12}, None, 10)
    assert calls.spent_before_run
    assert calls.spent_at_start_line() == (
        "The daily call budget is spent: 12 requests today (UTC) of max_requests_per_day 10. "
        "No request was sent; it renews at 2026-12-02 00:00 UTC."
    )


@pytest.mark.parametrize(
    ("day", "why"),
    [
        ("2026-13-45", "which is not a date"),
        ("2026-02-30", "which is not a date"),
        ("2026-12-03", "which lies ahead of today (2026-12-01, UTC)"),
    ],
)
def test_a_day_that_is_no_date_or_lies_ahead_is_a_bad_state(day: str, why: str) -> None:
    with pytest.raises(StateShapeError, match=r"not of this tap's shape") as raised:
        budget({"day": day, "day_requests": 1}, None, 10)
    assert why in str(raised.value)


def test_tomorrow_is_accepted_for_a_clock_a_little_ahead() -> None:
    calls, _ = budget({"day": "2026-12-02", "day_requests": 99}, None, 10)
    assert calls.used_today_before == 0
