"""Gong's quotas and faults (issue 3): every fault class against the loopback stand-in."""

from __future__ import annotations

import email.utils
import time

import pytest

from tests.conftest import expected_rows, run_tap, tap_config
from tests.gong_standin import Fault, make_world

OWNER2 = "owner0002@example.com"


def keys(run) -> list[tuple[str, str]]:
    return [(r["flow_owner_email"], r["id"]) for r in run.records()]


def assert_complete_and_unique(run, world, owners) -> None:
    found = keys(run)
    assert len(found) == len(set(found)), "a row was emitted twice"
    assert set(found) == set(expected_rows(world, owners)), "rows were lost"


def windows_over(times: list[float], limit: int, window: float = 1.0) -> list[float]:
    """Start times of every run of limit+1 requests that fit into one window."""
    times = sorted(times)
    return [times[i] for i in range(len(times) - limit) if times[i + limit] - times[i] < window]


# Arrival times at the stand-in carry the scheduling jitter of a loaded 2-core machine (tens
# of ms); the limiter's own departures are checked exactly in test_rate_limit.py.
JITTER = 0.1


@pytest.mark.slow
def test_rate_limiter_keeps_a_normal_sync_free_of_429s(gong_factory, tmp_path):
    world = make_world(owners=12)
    gong = gong_factory(world, page_size=4, rate_limit=3, rate_window=1.0 - JITTER)
    config = tap_config(gong, max_requests_per_second=3)
    run = run_tap(config, tmp_path)
    assert run.code == 0, run.stderr
    assert [r.status for r in gong.requests if r.status != 200] == []
    assert windows_over([r.time for r in gong.requests], 3, 1.0 - JITTER) == []
    assert_complete_and_unique(run, world, config["flow_owner_emails"])


@pytest.mark.slow
def test_configured_rate_is_never_exceeded(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=8), page_size=4)
    run = run_tap(tap_config(gong, max_requests_per_second=2), tmp_path)
    assert run.code == 0, run.stderr
    times = [r.time for r in gong.requests]
    assert len(times) >= 16
    assert windows_over(times, 2, 1.0 - JITTER) == []


@pytest.mark.parametrize("header", ["delta", "http-date"])
def test_429_holds_back_every_request_for_retry_after(gong_factory, tmp_path, header):
    world = make_world(owners=6)
    gong = gong_factory(world, page_size=4)
    come_back = int(time.time()) + 4  # an HTTP-date has whole seconds
    retry_after = "3" if header == "delta" else email.utils.formatdate(come_back, usegmt=True)
    gong.add_fault(Fault(owner=OWNER2, page=0, status=429, headers={"Retry-After": retry_after}))
    config = tap_config(gong, max_concurrent_requests=4, max_requests_per_second=50)
    run = run_tap(config, tmp_path)
    assert run.code == 0, run.stderr
    (refused,) = [r for r in gong.requests if r.status == 429]
    later = [r.time - refused.time for r in gong.requests if r.time > refused.time]
    # Requests other workers sent before the tap had read the 429 arrive within a few ms of
    # it; every request sent after that must wait. Without the shared hold, the other workers
    # would go on at 50 requests a second.
    held = [t for t in later if t >= 0.05]
    if header == "delta":
        wait = 3.0
    else:  # the stand-in runs in this process: its monotonic clock is ours
        refused_at = refused.time + (time.time() - time.monotonic())
        wait = come_back - refused_at - 0.01
    assert held, "nothing was requested after the 429"
    assert min(held) >= wait, "a request went out before Retry-After had passed"
    assert_complete_and_unique(run, world, config["flow_owner_emails"])


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500, "times": 2},
        {"status": 502, "times": 1},
        {"status": 503, "times": 2, "body": b"<html>busy</html>"},
        {"kind": "reset", "times": 2},
        {"kind": "truncate", "times": 2},
        {"kind": "badjson", "times": 2},
        {"kind": "slow", "delay": 3.0, "times": 1},
    ],
    ids=["500", "502", "503-html", "reset", "truncated", "not-json", "timeout"],
)
def test_transient_faults_are_retried_without_losing_or_duplicating_rows(
    gong_factory, tmp_path, fault
):
    world = make_world(owners=3)
    gong = gong_factory(world, page_size=3)
    gong.add_fault(Fault(owner=OWNER2, page=1, **fault))
    config = tap_config(gong, request_timeout=1, max_retries=3)
    run = run_tap(config, tmp_path)
    assert run.code == 0, run.stderr
    assert_complete_and_unique(run, world, config["flow_owner_emails"])
    asked = [r for r in gong.requests if r.owner == OWNER2 and r.page == 1]
    assert len(asked) == fault["times"] + 1
    assert "Retrying /v2/flows for owner owner0002@example.com" in run.stderr
    assert "1 retry" in run.stderr or "2 retries" in run.stderr


@pytest.mark.parametrize(("real_backoff", "low", "high"), [(False, 0.0, 0.5), (True, 0.5, 1.5)])
def test_a_5xx_backs_off_a_second_and_only_tests_shorten_it(
    gong_factory, tmp_path, real_backoff, low, high
):
    gong = gong_factory(make_world(owners=1))
    gong.add_fault(Fault(status=503, times=1))
    run = run_tap(tap_config(gong), tmp_path, real_backoff=real_backoff)
    assert run.code == 0, run.stderr
    first, second = gong.requests[:2]
    assert (first.status, second.status) == (503, 200)
    assert low <= second.time - first.time < high  # the first backoff: base/2 to base


def test_persistent_5xx_stops_naming_owner_page_status_and_request_id(gong_factory, tmp_path):
    world = make_world(owners=3)
    gong = gong_factory(world, page_size=3)
    gong.add_fault(Fault(owner=OWNER2, page=1, status=503, times=-1))
    run = run_tap(tap_config(gong, max_retries=2), tmp_path)
    assert run.code == 1
    failed = [r for r in gong.requests if r.owner == OWNER2 and r.page == 1]
    assert len(failed) == 3
    message = run.stderr
    assert "owner owner0002@example.com, page 2" in message
    assert "HTTP 503" in message
    assert failed[-1].request_id in message
    assert "gave up after 3 tries" in message
    assert "Traceback" not in message
    # owner 1 was complete and its rows emitted; the last STATE names it
    assert {r["flow_owner_email"] for r in run.records()} >= {"owner0001@example.com"}
    assert run.states[-1]["bookmarks"]["flows"]["last_owner"] == "owner0001@example.com"


def test_spent_quota_stops_cleanly_with_resumable_state(gong_factory, tmp_path):
    world = make_world(owners=4)
    gong = gong_factory(world, page_size=3, daily_quota=7, quota_retry_after="36000")
    config = tap_config(gong, max_concurrent_requests=1)
    run = run_tap(config, tmp_path)
    assert run.code == 1
    assert "quota is spent" in run.stderr
    assert "UTC" in run.stderr
    assert "Traceback" not in run.stderr
    assert len([r for r in gong.requests if r.status == 429]) == 1, "it must not sleep or retry"
    # 7 accepted requests = owners 1 and 2 (3 pages each) + one page of owner 3
    last = run.states[-1]["bookmarks"]["flows"]
    assert last["last_owner"] == OWNER2
    owners_emitted = {r["flow_owner_email"] for r in run.records()}
    assert {"owner0001@example.com", OWNER2} <= owners_emitted

    gong.daily_quota = None
    gong.reset_log()
    resumed = run_tap(config, tmp_path, state=run.states[-1])
    assert resumed.code == 0, resumed.stderr
    assert {r.owner for r in gong.requests} == {"owner0003@example.com", "owner0004@example.com"}
    union = set(keys(run)) | set(keys(resumed))
    assert union == set(expected_rows(world, config["flow_owner_emails"]))
    assert len(keys(resumed)) == len(set(keys(resumed)))


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "No flows found corresponding to the provided filters"),
        (400, "User owner0002@example.com is deactivated"),
        (400, "User has no Engage license"),
    ],
)
def test_owner_gong_rejects_is_skipped_with_a_warning(gong_factory, tmp_path, status, message):
    world = make_world(owners=3)
    world.rejected_owners[OWNER2] = (status, message)
    gong = gong_factory(world, page_size=3)
    config = tap_config(gong)
    run = run_tap(config, tmp_path)
    assert run.code == 0, run.stderr
    assert f"Skipping owner {OWNER2}" in run.stderr
    assert message in run.stderr
    assert "this run did 2 owners, 1 skipped; the pass has done 3 of 3 owners" in run.stderr
    others = [o for o in config["flow_owner_emails"] if o != OWNER2]
    assert_complete_and_unique(run, world, others)
    assert len([r for r in gong.requests if r.owner == OWNER2]) == 1


def test_other_4xx_stops_the_sync(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=3))
    gong.add_fault(Fault(owner=OWNER2, status=400, body={"requestId": "r-1", "errors": ["Bad"]}))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 1
    assert "HTTP 400" in run.stderr
    assert "r-1" in run.stderr


@pytest.mark.parametrize(
    "body",
    [
        {"requestId": "r-shape", "records": {"totalRecords": 0}},
        {"requestId": "r-shape", "flows": [{"name": "no id"}]},
        {"requestId": "r-shape", "flows": {"id": "1"}},
    ],
    ids=["no-flows-list", "flow-without-id", "flows-not-a-list"],
)
def test_wrong_shape_is_a_clear_error_never_an_empty_sync(gong_factory, tmp_path, body):
    gong = gong_factory(make_world(owners=2))
    gong.add_fault(Fault(kind="shape", body=body, owner="owner0001@example.com"))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 1
    assert "wrong shape" in run.stderr
    assert "r-shape" in run.stderr
    assert "owner0001@example.com" in run.stderr
    assert run.records() == []


def test_summary_line_counts_the_run(gong_factory, tmp_path):
    world = make_world(owners=3)
    gong = gong_factory(world, page_size=3)
    gong.add_fault(Fault(status=500, times=1))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    (summary,) = [line for line in run.stderr.splitlines() if "Sync complete" in line]
    records = len(run.records())
    assert "this run did 3 owners, 0 skipped; the pass has done 3 of 3 owners, started " in (
        summary
    )
    assert f"; {records} records of flows; " in summary
    assert f"{len(gong.requests)} requests, 1 retry, " in summary
    assert "waited on rate limits" in summary
    assert "elapsed" in summary
