"""Resumable, compact state and bad input (issue 3)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import assert_refused_config, expected_rows, run_tap, tap_config
from tests.gong_standin import Fault, make_world


def keys(run) -> set[tuple[str, str]]:
    return {(r["flow_owner_email"], r["id"]) for r in run.records()}


def test_state_after_each_owner_and_final_state(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=4), page_size=3)
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    progress = [s["bookmarks"]["flows"]["last_owner"] for s in run.states]
    assert progress == [
        "owner0001@example.com",
        "owner0002@example.com",
        "owner0003@example.com",
        None,
    ]
    # each STATE comes after the last record of the owner it names
    last_record_of = {}
    for index, message in enumerate(run.messages):
        if message["type"] == "RECORD":
            last_record_of[message["record"]["flow_owner_email"]] = index
    state_positions = [i for i, m in enumerate(run.messages) if m["type"] == "STATE"]
    for owner, position in zip(progress[:3], state_positions[:3], strict=True):
        assert last_record_of[owner] < position


def test_state_size_does_not_grow_with_owners(gong_factory, tmp_path):
    sizes = {}
    for owners in (10, 1000):
        world = make_world(owners=owners, company_flows=1, personal_per_owner=0, shared_per_owner=0)
        gong = gong_factory(world)
        run = run_tap(tap_config(gong, max_requests_per_second=1000), tmp_path)
        assert run.code == 0, run.stderr
        assert len(run.states) == owners
        sizes[owners] = max(len(json.dumps(s)) for s in run.states)
    # the bookmark names one owner (owner0010 and owner1000 have the same length) and counts
    # the pass's owners and records: only those counts' digits grow
    assert sizes[1000] <= sizes[10] + 6
    assert sizes[1000] < 200


def test_interrupted_sync_resumes_at_the_failed_owner(gong_factory, tmp_path):
    world = make_world(owners=5)
    gong = gong_factory(world, page_size=3)
    # One owner at a time: owners 1 and 2 are complete before owner 3 fails. (Fetched ahead, a
    # failure stops every other owner's requests at once: test_stop.py.)
    config = tap_config(gong, max_retries=0, max_concurrent_requests=1)
    gong.add_fault(Fault(owner="owner0003@example.com", page=1, status=500, times=-1))
    first = run_tap(config, tmp_path)
    assert first.code == 1
    assert first.states[-1]["bookmarks"]["flows"]["last_owner"] == "owner0002@example.com"

    gong.faults.clear()
    gong.reset_log()
    second = run_tap(config, tmp_path, state=first.states[-1])
    assert second.code == 0, second.stderr
    asked = sorted({r.owner for r in gong.requests})
    assert asked == ["owner0003@example.com", "owner0004@example.com", "owner0005@example.com"]
    assert len(second.records()) == len(keys(second)), "the resumed run repeated a row"
    assert keys(first) | keys(second) == set(expected_rows(world, config["flow_owner_emails"]))
    assert second.states[-1]["bookmarks"]["flows"]["last_owner"] is None


def test_final_state_of_a_complete_sync_starts_a_full_pass(gong_factory, tmp_path):
    world = make_world(owners=3)
    gong = gong_factory(world)
    config = tap_config(gong)
    first = run_tap(config, tmp_path)
    assert first.code == 0, first.stderr
    gong.reset_log()
    second = run_tap(config, tmp_path, state=first.states[-1])
    assert second.code == 0, second.stderr
    assert sorted({r.owner for r in gong.requests}) == config["flow_owner_emails"]
    assert keys(second) == keys(first)


def test_activate_version_once_after_a_resumed_pass(gong_factory, tmp_path):
    world = make_world(owners=4)
    gong = gong_factory(world, page_size=3)
    # one owner at a time: owners 1 and 2 complete before owner 3 fails (fetched ahead, the
    # failure would stop them at once, and the first run might emit no STATE at all)
    config = tap_config(
        gong, max_retries=0, emit_activate_version_messages=True, max_concurrent_requests=1
    )
    gong.add_fault(Fault(owner="owner0003@example.com", status=500, times=-1))
    first = run_tap(config, tmp_path)
    assert first.code == 1
    assert first.of_type("ACTIVATE_VERSION") == [], "an incomplete pass must not be activated"
    version = first.states[-1]["bookmarks"]["flows"]["version"]
    assert {m["version"] for m in first.of_type("RECORD")} == {version}

    gong.faults.clear()
    second = run_tap(config, tmp_path, state=first.states[-1])
    assert second.code == 0, second.stderr
    assert {m["version"] for m in second.of_type("RECORD")} == {version}
    assert second.of_type("ACTIVATE_VERSION") == [
        {"type": "ACTIVATE_VERSION", "stream": "flows", "version": version}
    ]
    kinds = [m["type"] for m in second.messages]
    activate = kinds.index("ACTIVATE_VERSION")
    assert "RECORD" not in kinds[activate:], "ACTIVATE_VERSION must follow the last record"

    third = run_tap(config, tmp_path, state=second.states[-1])
    assert third.code == 0, third.stderr
    (activated,) = third.of_type("ACTIVATE_VERSION")
    assert activated["version"] > version, "a new pass gets a new version"


BAD_CONFIGS = {
    "no auth": ({"access_key": None, "access_key_secret": None}, "No credentials"),
    "both auths": ({"access_token": "TOKEN-9e8d7c6b5a4f3e2d1c"}, "one auth method, not both"),
    "key without secret": ({"access_key_secret": None}, "go together"),
    "api_url not http": ({"api_url": "ftp://gong.example.com"}, "api_url must be an http(s) URL"),
    "owner not an email": ({"flow_owner_emails": ["ana@example.com", "bob"]}, "not emails"),
    "no owners": ({"flow_owner_emails": []}, "flow_owner_emails is empty"),
    "rate zero": ({"max_requests_per_second": 0}, "max_requests_per_second must be a positive"),
    "rate negative": ({"max_requests_per_second": -1}, "must be a positive number, got -1"),
}


@pytest.mark.parametrize(("change", "message"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_is_one_clear_error_before_any_request(gong_factory, tmp_path, change, message):
    assert_refused_config(gong_factory(make_world(owners=1)), tmp_path, change, message)


BAD_STATES = {
    "not json": ("{not json", "not valid JSON"),
    "bookmarks not an object": ({"bookmarks": []}, "not of this tap's shape"),
    "version not a number": (
        {"bookmarks": {"flows": {"version": "x", "last_owner": "a@b.co"}}},
        "not of this tap's shape",
    ),
    "unknown key": ({"bookmarks": {"flows": {"partitions": []}}}, "not of this tap's shape"),
    "another tap's": (  # issue 19: its bookmark was carried into every STATE
        {"bookmarks": {"issues": {"replication_key_value": "2026-11-30"}}},
        "bookmarks for streams this tap does not have (issues): it was written by another tap",
    ),
}


@pytest.mark.parametrize(("state", "message"), BAD_STATES.values(), ids=BAD_STATES.keys())
def test_bad_state_is_one_clear_error_before_any_request(gong_factory, tmp_path, state, message):
    gong = gong_factory(make_world(owners=1))
    run = run_tap(tap_config(gong), tmp_path, state=state)
    assert run.code == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert gong.requests == []
