"""A broken or hostile Gong, or odd config: never wrong data, a hang, a traceback or a false
success (issue 11)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, expected_rows, run_tap, tap_config
from tests.gong_standin import Fault, make_world
from tests.test_stop import TapProcess

OWNER1 = "owner0001@example.com"
OWNER2 = "owner0002@example.com"


def keys(run) -> list[tuple[str, str]]:
    return [(r["flow_owner_email"], r["id"]) for r in run.records()]


def no_traceback(run) -> None:
    assert "Traceback" not in run.stderr
    assert "Traceback" not in run.stdout


# 1. A refusal is a first-page answer about the user


@pytest.mark.parametrize(
    ("status", "message"),
    [(404, "No flows found corresponding to the provided filters"), (400, "cursor not found")],
)
def test_an_error_on_a_later_page_is_an_error_never_a_skip(gong_factory, tmp_path, status, message):
    world = make_world(owners=3, company_flows=8)
    gong = gong_factory(world, page_size=3)
    body = {"requestId": "r-late", "errors": [message]}
    gong.add_fault(Fault(owner=OWNER2, page=2, status=status, body=body, times=-1))
    config = tap_config(gong, emit_activate_version_messages=True, max_concurrent_requests=1)
    run = run_tap(config, tmp_path)
    assert run.code == 1
    assert "Skipping owner" not in run.stderr
    assert f"owner {OWNER2}, page 3" in run.stderr
    assert "r-late" in run.stderr
    no_traceback(run)
    assert run.of_type("ACTIVATE_VERSION") == []
    assert run.states[-1]["bookmarks"]["flows"]["last_owner"] == OWNER1
    assert len([r for r in gong.requests if r.owner == OWNER2 and r.page == 2]) == 1


# 2. Bounded paging


def test_empty_pages_with_fresh_cursors_stop_after_a_handful_of_calls(gong_factory, tmp_path):
    world = make_world(owners=2)
    gong = gong_factory(world, page_size=3)
    gong.add_fault(Fault(owner=OWNER2, page=1, kind="empty", times=-1))
    gong.add_fault(Fault(owner=OWNER2, page=2, kind="empty", times=-1))
    gong.add_fault(Fault(owner=OWNER2, page=3, kind="empty", times=-1))
    gong.add_fault(Fault(owner=OWNER2, page=4, kind="empty", times=-1))
    gong.add_fault(Fault(owner=OWNER2, page=5, kind="empty", times=-1))
    run = run_tap(tap_config(gong, max_concurrent_requests=1), tmp_path)
    assert run.code == 1
    assert f"owner {OWNER2}" in run.stderr
    assert "empty pages in a row" in run.stderr
    no_traceback(run)
    assert len([r for r in gong.requests if r.owner == OWNER2]) <= 4


def test_pages_stop_once_every_record_gong_counted_is_there(gong_factory, tmp_path):
    world = make_world(owners=1, company_flows=4, personal_per_owner=0, shared_per_owner=0)
    gong = gong_factory(world, page_size=2)
    # the last page still hands out a cursor; totalRecords says the list is whole
    gong.add_fault(Fault(owner=OWNER1, page=1, kind="cycle", cycle_to=0, times=-1))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    assert len(gong.requests) == 2
    assert set(keys(run)) == set(expected_rows(world, [OWNER1]))


# 3. request_timeout is a deadline for the whole request


def test_a_trickling_body_times_out_at_request_timeout(gong_factory, tmp_path):
    world = make_world(owners=1)
    gong = gong_factory(world)
    gong.add_fault(Fault(owner=OWNER1, kind="trickle", delay=0.5, times=1))
    started = time.monotonic()
    run = run_tap(tap_config(gong, request_timeout=2, max_retries=2), tmp_path)
    took = time.monotonic() - started
    assert run.code == 0, run.stderr
    assert "Retrying /v2/flows for owner owner0001@example.com" in run.stderr
    assert "ReadTimeout" in run.stderr
    assert took < 12, f"the run took {took:.1f} s"
    assert set(keys(run)) == set(expected_rows(world, [OWNER1]))


# 4. Retries are what HTTP says


@pytest.mark.parametrize("status", [408, 425])
def test_408_and_425_are_retried(gong_factory, tmp_path, status):
    world = make_world(owners=2)
    gong = gong_factory(world)
    gong.add_fault(Fault(owner=OWNER2, status=status, times=1))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    assert set(keys(run)) == set(expected_rows(world, [OWNER1, OWNER2]))
    assert len([r for r in gong.requests if r.owner == OWNER2]) == 2


def test_retry_after_on_a_503_is_honoured(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    gong.add_fault(Fault(status=503, headers={"Retry-After": "3"}, times=1))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    first, second = gong.requests[:2]
    assert first.status == 503
    assert second.time - first.time >= 3.0


@pytest.mark.parametrize("value", ["1e12", "inf", "Infinity"])
def test_an_endless_retry_after_is_a_clean_quota_stop(gong_factory, tmp_path, value):
    world = make_world(owners=3)
    gong = gong_factory(world)
    gong.add_fault(Fault(owner=OWNER2, status=429, headers={"Retry-After": value}, times=-1))
    run = run_tap(tap_config(gong, max_concurrent_requests=1), tmp_path)
    assert run.code == 1
    assert "quota is spent" in run.stderr
    no_traceback(run)
    assert run.states[-1]["bookmarks"]["flows"]["last_owner"] == OWNER1
    assert len([r for r in gong.requests if r.status == 429]) == 1


@pytest.mark.parametrize("value", ["-5", "soon", "nan"])
def test_an_unreadable_retry_after_is_a_short_default_wait(gong_factory, tmp_path, value):
    gong = gong_factory(make_world(owners=1))
    gong.add_fault(Fault(status=429, headers={"Retry-After": value}, times=1))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    first, second = gong.requests[:2]
    assert 1.0 <= second.time - first.time < 3.0


@pytest.mark.slow  # real backoff waits and a 1.5 s watch after the signal: 4.2-5.7 s
def test_a_signal_while_a_request_is_retried_stops_at_once(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=2), latency=0.05)
    gong.add_fault(Fault(owner=OWNER1, status=500, times=-1))
    tap = TapProcess(tap_config(gong, max_retries=8, max_concurrent_requests=1), tmp_path)
    deadline = time.monotonic() + 20
    while len(gong.requests) < 3:  # two retries in: it is sleeping before the third
        assert time.monotonic() < deadline
        time.sleep(0.05)
    tap.process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    run = tap.finish()
    asked = len(gong.requests)
    assert run.code == 128 + signal.SIGTERM
    assert time.monotonic() - sent < 5
    assert "Stopped by SIGTERM" in run.stderr
    no_traceback(run)
    time.sleep(1.5)
    assert len(gong.requests) == asked, "it retried after the signal"


# 5. Config is typed once, from every source


def test_config_from_the_environment_arrives_as_strings_and_works(gong_factory, tmp_path):
    world = make_world(owners=2)
    gong = gong_factory(world)
    config = tap_config(gong)
    env = {
        **os.environ,
        "TAP_GONG_FLOWS_ACCESS_KEY": config["access_key"],
        "TAP_GONG_FLOWS_ACCESS_KEY_SECRET": config["access_key_secret"],
        "TAP_GONG_FLOWS_API_URL": gong.url,
        "TAP_GONG_FLOWS_FLOW_OWNER_EMAILS": '["owner0001@example.com","owner0002@example.com"]',
        "TAP_GONG_FLOWS_REQUEST_TIMEOUT": "5",
        "TAP_GONG_FLOWS_MAX_REQUESTS_PER_SECOND": "20",
        "TAP_GONG_FLOWS_MAX_RETRY_WAIT_SECONDS": "30.5",
        "TAP_GONG_FLOWS_MAX_REFUSED_OWNER_SHARE": "0.25",
        "TAP_GONG_FLOWS_EMIT_ACTIVATE_VERSION_MESSAGES": "true",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tap_gong_flows", "--config", "ENV"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert '"type":"ACTIVATE_VERSION"' in done.stdout
    assert config["access_key_secret"] not in done.stdout + done.stderr


def test_null_means_the_default(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    config = tap_config(gong)
    config.update(request_timeout=None, max_retry_wait_seconds=None, max_retries=None)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))  # tap_config drops None: write the nulls
    done = subprocess.run(
        [sys.executable, "-m", "tap_gong_flows", "--config", str(config_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_requests_per_second": 1e300}, "max_requests_per_second must be a positive number"),
        ({"max_concurrent_requests": 1e9}, "max_concurrent_requests must be a whole number"),
        ({"max_concurrent_requests": 2.5}, "max_concurrent_requests must be a whole number"),
        ({"request_timeout": "soon"}, "request_timeout must be a positive number"),
        ({"max_retries": -1}, "max_retries must be a whole number from 0 to 100"),
        ({"max_retry_wait_seconds": 1e12}, "max_retry_wait_seconds must be a number from 0"),
        ({"max_refused_owner_share": 1.5}, "max_refused_owner_share must be a number from 0 to 1"),
        ({"emit_activate_version_messages": "maybe"}, "must be true or false"),
        ({"api_url": "https://api.gong.io/v2"}, "api_url must be an http(s) URL"),
    ],
)
def test_out_of_bounds_config_is_one_clear_error(gong_factory, tmp_path, change, message):
    gong = gong_factory(make_world(owners=1))
    run = run_tap({**tap_config(gong), **change}, tmp_path, timeout=30)
    assert run.code == 1
    assert message in run.stderr
    no_traceback(run)
    assert gong.requests == []


def test_meltanos_state_wrapper_is_a_clear_error_with_a_hint(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    state = {"singer_state": {"bookmarks": {"flows": {"version": 1, "last_owner": OWNER1}}}}
    run = run_tap(tap_config(gong), tmp_path, state=state)
    assert run.code == 1
    assert "singer_state" in run.stderr
    assert "meltano state get" in run.stderr
    no_traceback(run)
    assert gong.requests == []


# 6. Records are checked at the door


@pytest.mark.parametrize(
    "bad",
    [["1", "2"], {"id": "1"}, False, None, ""],
    ids=["list", "object", "false", "null", "empty"],
)
def test_an_id_that_is_not_a_string_or_number_is_a_clean_error(gong_factory, tmp_path, bad):
    gong = gong_factory(make_world(owners=1))
    body = {"requestId": "r-id", "records": {"totalRecords": 1}, "flows": [{"id": bad}]}
    gong.add_fault(Fault(kind="shape", body=body))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 1
    assert "wrong shape" in run.stderr
    assert "r-id" in run.stderr
    no_traceback(run)
    assert run.records() == []


def test_ids_are_strings_and_compared_as_strings(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    flows = [{"id": 0, "name": "zero"}, {"id": "0", "name": "zero again"}, {"id": 7.0}, {"id": "8"}]
    body = {"requestId": "r-num", "records": {"totalRecords": 4}, "flows": flows}
    gong.add_fault(Fault(kind="shape", body=body))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    assert [r["id"] for r in run.records()] == ["0", "7", "8"]


def test_a_cursor_that_is_not_a_string_is_a_clean_error(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    body = {"requestId": "r-cur", "records": {"totalRecords": 9, "cursor": {"next": 2}}}
    gong.add_fault(Fault(kind="shape", body={**body, "flows": [{"id": "1"}]}))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 1
    assert "cursor that is not a string" in run.stderr
    no_traceback(run)
