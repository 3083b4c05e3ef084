"""Share Gong's daily quota: a call budget per run and per day, passes that span runs (issue 14)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.conftest import (
    TapRun,
    assert_refused_config,
    expected_rows,
    owners_of,
    run_tap,
    tap_config,
)
from tests.gong_standin import Fault, make_world


def keys(run: TapRun) -> list[tuple[str, str]]:
    return [(r["flow_owner_email"], r["id"]) for r in run.records()]


def one_page_world(owners: int):
    return make_world(owners=owners, company_flows=2, personal_per_owner=1, shared_per_owner=0)


def test_a_run_budget_spreads_one_pass_over_runs_with_one_version(gong_factory, tmp_path):
    world = one_page_world(30)
    gong = gong_factory(world)
    owners = owners_of(world)
    config = tap_config(gong, max_requests_per_run=10, emit_activate_version_messages=True)
    runs, state = [], None
    for _ in range(3):
        gong.reset_log()
        run = run_tap(config, tmp_path, state=state)
        assert run.code == 0, run.stderr
        assert "Traceback" not in run.stderr
        assert len(gong.requests) <= 10
        runs.append(run)
        state = run.states[-1]
    first, second, third = runs
    assert first.of_type("ACTIVATE_VERSION") == second.of_type("ACTIVATE_VERSION") == []
    version = first.states[-1]["bookmarks"]["flows"]["version"]
    assert third.of_type("ACTIVATE_VERSION") == [
        {"type": "ACTIVATE_VERSION", "stream": "flows", "version": version}
    ]
    assert {m["version"] for r in runs for m in r.of_type("RECORD")} == {version}
    union = [k for r in runs for k in keys(r)]
    assert sorted(union) == sorted(expected_rows(world, owners)), "a row lost or repeated"
    (line,) = [x for x in first.stderr.splitlines() if "Stopping at the call budget" in x]
    assert "10 requests" in line
    assert "owners 1 to 10 of 30" in line
    assert "the next run starts after owner0010@example.com" in line
    assert "pass started" in first.stderr
    assert max(len(json.dumps(s)) for r in runs for s in r.states) < 1024
    unbudgeted = run_tap(tap_config(gong), tmp_path)
    assert sorted(keys(unbudgeted)) == sorted(union)


def test_a_spent_daily_budget_makes_the_next_run_that_day_send_nothing(gong_factory, tmp_path):
    world = one_page_world(12)
    gong = gong_factory(world)
    config = tap_config(gong, max_requests_per_day=5)
    first = run_tap(config, tmp_path)
    assert first.code == 0, first.stderr
    assert len(gong.requests) == 5
    bookmark = first.states[-1]["bookmarks"]["flows"]
    assert bookmark["day"] == dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert bookmark["day_requests"] == 5

    gong.reset_log()
    second = run_tap(config, tmp_path, state=first.states[-1])
    assert second.code == 0, second.stderr
    assert gong.requests == [], "a spent daily budget sent a request"
    assert second.records() == []
    assert "daily call budget" in second.stderr
    assert "renews at" in second.stderr
    assert "00:00 UTC" in second.stderr


def test_yesterdays_count_does_not_hold_back_today(gong_factory, tmp_path):
    world = one_page_world(4)
    gong = gong_factory(world)
    config = tap_config(gong, max_requests_per_day=5)
    state = {
        "bookmarks": {
            "flows": {"version": 1, "last_owner": None, "day": "2000-01-01", "day_requests": 5}
        }
    }
    run = run_tap(config, tmp_path, state=state)
    assert run.code == 0, run.stderr
    assert len(gong.requests) == 4
    assert run.states[-1]["bookmarks"]["flows"]["day_requests"] == 4


def test_retries_count_against_the_budget(gong_factory, tmp_path):
    world = one_page_world(10)
    gong = gong_factory(world)
    gong.add_fault(Fault(owner="owner0002@example.com", status=500, times=2))
    run = run_tap(tap_config(gong, max_requests_per_run=6), tmp_path)
    assert run.code == 0, run.stderr
    assert len(gong.requests) == 6
    done = {r["flow_owner_email"] for r in run.records()}
    assert done == {f"owner000{i}@example.com" for i in range(1, 5)}


def test_a_budget_smaller_than_one_owner_still_makes_progress(gong_factory, tmp_path):
    world = make_world(owners=3, company_flows=5)
    gong = gong_factory(world, page_size=2)  # 3 pages or more an owner
    config = tap_config(gong, max_requests_per_run=1)
    run = run_tap(config, tmp_path)
    assert run.code == 0, run.stderr
    assert {r["flow_owner_email"] for r in run.records()} == {"owner0001@example.com"}
    assert "smaller than the calls one owner needs" in run.stderr
    resumed = run_tap(config, tmp_path, state=run.states[-1])
    assert {r["flow_owner_email"] for r in resumed.records()} == {"owner0002@example.com"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_requests_per_run": 0}, "max_requests_per_run must be a whole number from 1"),
        ({"max_requests_per_run": -5}, "max_requests_per_run must be a whole number from 1"),
        ({"max_requests_per_day": 2.5}, "max_requests_per_day must be a whole number from 1"),
        ({"max_requests_per_day": "lots"}, "max_requests_per_day must be a whole number from 1"),
    ],
)
def test_bad_budgets_are_config_errors(gong_factory, tmp_path, change, message):
    assert_refused_config(gong_factory(make_world(owners=1)), tmp_path, change, message)


def test_a_run_budget_above_the_daily_one_is_fine(gong_factory, tmp_path):
    gong = gong_factory(one_page_world(3))
    run = run_tap(tap_config(gong, max_requests_per_run=50, max_requests_per_day=10), tmp_path)
    assert run.code == 0, run.stderr


def test_a_day_count_of_another_shape_is_a_bad_state(gong_factory, tmp_path):
    gong = gong_factory(one_page_world(2))
    state = {"bookmarks": {"flows": {"version": 1, "last_owner": None, "day_requests": "many"}}}
    run = run_tap(tap_config(gong, max_requests_per_day=10), tmp_path, state=state)
    assert run.code == 1
    assert "not of this tap's shape" in run.stderr
    assert gong.requests == []


def test_a_budgeted_pass_with_steps_moves_on_every_run(gong_factory, tmp_path):
    # 30 one-page owners who see 12 distinct flows in 10 owners: never a full batch of 20 in a
    # run. Each run that stops at the budget still sends the steps call its flows wait for,
    # inside the budget, so its bookmark moves on and the pass ends.
    from tests.test_flow_steps import ALL, distinct_flow_ids, expected_steps, steps_calls, steps_of

    world = one_page_world(30)
    gong = gong_factory(world)
    owners = owners_of(world)
    config = tap_config(gong, max_requests_per_run=10, emit_activate_version_messages=True)
    runs, state, last_owners = [], None, []
    for _ in range(6):
        gong.reset_log()
        run = run_tap(config, tmp_path, state=state, catalog=ALL)
        assert run.code == 0, run.stderr
        assert len(gong.requests) <= 10, "a run went past its budget"
        calls = steps_calls(gong)
        assert len(calls) == 1, calls
        assert len(calls[0]) == len(set(calls[0])) <= 20
        runs.append(run)
        state = run.states[-1]
        last_owners.append(state["bookmarks"]["flows"]["last_owner"])
        if run.of_type("ACTIVATE_VERSION"):
            break
    assert last_owners == [
        "owner0009@example.com", "owner0018@example.com", "owner0027@example.com", None,
    ]  # fmt: skip
    version = runs[0].states[-1]["bookmarks"]["flows"]["version"]
    assert runs[-1].of_type("ACTIVATE_VERSION") == [
        {"type": "ACTIVATE_VERSION", "stream": name, "version": version}
        for name in ("flows", "flow_steps", "flow_definitions")
    ]
    assert sorted(k for r in runs for k in keys(r)) == sorted(expected_rows(world, owners))
    # Every step of every flow; a Company flow seen again in a later run is fetched again.
    assert {k for r in runs for k in steps_of(r)} == set(
        expected_steps(world, distinct_flow_ids(world, owners))
    )
    (line,) = [x for x in runs[0].stderr.splitlines() if "Stopping at the call budget" in x]
    assert "10 requests of max_requests_per_run 10" in line
    assert "the next run starts after owner0009@example.com" in line


def test_the_calls_of_a_failed_run_count_against_the_day(gong_factory, tmp_path):
    # Owner 3 always answers 500: each run fails on it after its retries. Its calls still go
    # into the day's count, so failing runs stop at the daily budget like any other.
    world = one_page_world(6)
    gong = gong_factory(world)
    gong.add_fault(Fault(owner="owner0003@example.com", status=500, times=-1))
    config = tap_config(gong, max_requests_per_day=10, max_retries=3)
    sent, state = [], None
    for _ in range(3):
        gong.reset_log()
        run = run_tap(config, tmp_path, state=state)
        assert "Traceback" not in run.stderr
        sent.append(len(gong.requests))
        state = run.states[-1]
        assert state["bookmarks"]["flows"]["day_requests"] == sum(sent)
    assert sent == [6, 4, 0]  # owners 1-2 and owner 3 tried 4 times; owner 3 again; nothing
    assert run.code == 0
    assert "The daily call budget is spent: 10 requests today" in run.stderr


def test_with_steps_selected_a_run_keeps_room_for_the_steps_call(gong_factory, tmp_path):
    # Owner 1's 20 flows fill a batch (its call goes out with it); owner 2 leaves one flow
    # waiting. The budget check before owner 2 kept room for that flow's steps call.
    from tests.test_flow_steps import ALL, steps_calls

    world = make_world(owners=6, company_flows=19, personal_per_owner=1, shared_per_owner=0)
    gong = gong_factory(world)
    for budget in (3, 4):
        gong.reset_log()
        run = run_tap(tap_config(gong, max_requests_per_run=budget), tmp_path, catalog=ALL)
        assert run.code == 0, run.stderr
        assert len(gong.requests) <= budget
        assert [len(ids) for ids in steps_calls(gong)] == [20, 1][: budget - 2]


def test_a_pass_whose_first_run_sent_no_versions_is_not_activated(gong_factory, tmp_path):
    # emit_activate_version_messages turned on while a budgeted pass spans runs: the first
    # run's records carry no version, so activating the pass would delete them.
    world = one_page_world(12)
    gong = gong_factory(world)
    first = run_tap(tap_config(gong, max_requests_per_run=5), tmp_path)
    assert first.code == 0, first.stderr
    assert first.states[-1]["bookmarks"]["flows"]["streams"] == []
    config = tap_config(gong, max_requests_per_run=5, emit_activate_version_messages=True)
    runs, state = [], first.states[-1]
    while not runs or runs[-1].states[-1]["bookmarks"]["flows"]["last_owner"] is not None:
        assert len(runs) < 4, "the pass did not end"
        runs.append(run_tap(config, tmp_path, state=state))
        assert runs[-1].code == 0, runs[-1].stderr
        state = runs[-1].states[-1]
    assert [m for r in runs for m in r.of_type("ACTIVATE_VERSION")] == []
    assert "No ACTIVATE_VERSION for flows at the end of this pass" in runs[0].stderr
    following = run_tap(tap_config(gong, emit_activate_version_messages=True), tmp_path)
    assert [m["stream"] for m in following.of_type("ACTIVATE_VERSION")] == ["flows"]


def test_a_spent_day_with_discovered_owners_sends_not_even_the_users_call(gong_factory, tmp_path):
    # Found in review: the owners were looked up in /v2/users before the spent day was seen.
    gong = gong_factory(one_page_world(3))
    config = tap_config(gong, max_requests_per_day=5, flow_owner_emails=None)
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    state = {"bookmarks": {"flows": {"day": today, "day_requests": 5}}}
    run = run_tap(config, tmp_path, state=state)
    assert run.code == 0, run.stderr
    assert gong.requests == []
    assert "The daily call budget is spent: 5 requests today" in run.stderr


def test_a_run_that_fails_finding_its_owners_counts_its_calls_against_the_day(
    gong_factory, tmp_path
):
    # Found in review: no pass had started, so the failed run's calls went uncounted.
    gong = gong_factory(one_page_world(3))
    gong.add_fault(Fault(path="/v2/users", status=500, times=-1))
    config = tap_config(gong, max_requests_per_day=50, max_retries=2, flow_owner_emails=None)
    run = run_tap(config, tmp_path)
    assert run.code == 1
    assert "Traceback" not in run.stderr
    assert len(gong.requests) == 3
    assert run.states[-1]["bookmarks"]["flows"]["day_requests"] == 3
