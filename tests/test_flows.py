"""The flows stream end to end against the loopback Gong stand-in (issue 2)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import jsonschema
import pytest

from tests.conftest import (
    KEY,
    ROOT,
    SECRET,
    TOKEN,
    discover,
    expected_rows,
    run_tap,
    tap_config,
)
from tests.gong_standin import Fault, make_world

SCHEMA = json.loads((ROOT / "schemas" / "flows.json").read_text())
SETTINGS = {
    "access_key",
    "access_key_secret",
    "access_token",
    "api_url",
    "flow_owner_emails",
    "workspace_id",
}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tap_gong_flows", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )


def test_about_lists_every_setting_and_marks_secrets():
    about = json.loads(cli("--about", "--format=json").stdout)
    properties = about["settings"]["properties"]
    assert set(properties) >= SETTINGS
    assert {name for name, p in properties.items() if p.get("secret")} == {
        "access_key",
        "access_key_secret",
        "access_token",
    }
    assert properties["api_url"]["default"] == "https://api.gong.io"
    assert "flow_owner_emails" not in about["settings"].get("required", [])  # discovered when unset


def test_discover_gives_flows_with_schema_file_and_key():
    catalog = discover()
    (entry,) = [s for s in catalog["streams"] if s["tap_stream_id"] == "flows"]
    assert entry["key_properties"] == ["flow_owner_email", "id"]
    assert entry["schema"]["properties"] == SCHEMA["properties"]


def test_sync_emits_each_owner_flow_pair_once_with_every_field(gong_factory, tmp_path):
    world = make_world(owners=4, company_flows=5, personal_per_owner=2, shared_per_owner=1)
    gong = gong_factory(world, page_size=3)
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr

    records = run.records()
    keys = [(r["flow_owner_email"], r["id"]) for r in records]
    assert len(keys) == len(set(keys)), "a key was emitted twice"
    owners = tap_config(gong)["flow_owner_emails"]
    assert {k: r for k, r in zip(keys, records, strict=True)} == expected_rows(world, owners)
    validator = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for record in records:
        validator.validate(record)
    # every owner needed several pages: 5 company + 2 personal + 1 own shared + 1 shared with
    pages = [r for r in gong.requests if r.path == "/v2/flows"]
    assert {r.page for r in pages} == {0, 1, 2}
    assert all(r.status == 200 for r in pages)
    visibilities = {r["visibility"] for r in records}
    assert visibilities == {"Company", "Personal", "Shared"}


def test_records_of_each_owner_come_together_in_owner_order(gong_factory, tmp_path):
    world = make_world(owners=5)
    gong = gong_factory(world, page_size=2)
    owners = ["owner0003@example.com", "OWNER0001@example.com", "owner0002@example.com"]
    run = run_tap(tap_config(gong, flow_owner_emails=owners), tmp_path)
    assert run.code == 0, run.stderr
    sequence = [r["flow_owner_email"] for r in run.records()]
    assert sequence == sorted(sequence)
    assert sorted(set(sequence)) == [o.lower() for o in sorted(owners, key=str.lower)]


def test_duplicate_owners_are_fetched_once(gong_factory, tmp_path):
    world = make_world(owners=2)
    gong = gong_factory(world, page_size=100)
    owners = ["owner0001@example.com", "Owner0001@Example.com", " owner0002@example.com"]
    run = run_tap(tap_config(gong, flow_owner_emails=owners), tmp_path)
    assert run.code == 0, run.stderr
    asked = sorted(r.params["flowOwnerEmail"] for r in gong.requests)
    assert asked == ["owner0001@example.com", "owner0002@example.com"]
    rows = expected_rows(world, ["owner0001@example.com", "owner0002@example.com"])
    assert len(run.records()) == len(rows)


def test_workspace_filter_is_sent_on_every_page_and_recorded(gong_factory, tmp_path):
    world = make_world(owners=2, company_flows=8, workspaces=2)
    gong = gong_factory(world, page_size=2)
    config = tap_config(gong, workspace_id="ws-2")
    run = run_tap(config, tmp_path)
    assert run.code == 0, run.stderr
    assert gong.requests, "no request was made"
    assert all(r.params.get("workspaceId") == "ws-2" for r in gong.requests)
    assert any("cursor" in r.params for r in gong.requests)
    rows = expected_rows(world, config["flow_owner_emails"], "ws-2")
    assert {(r["flow_owner_email"], r["id"]): r for r in run.records()} == rows
    assert all(r["workspace_id"] == "ws-2" for r in run.records())


def test_cursor_params_repeat_the_owner_and_filter(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1, company_flows=6), page_size=2)
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    later = [r for r in gong.requests if "cursor" in r.params]
    assert later
    assert all(r.params["flowOwnerEmail"] == "owner0001@example.com" for r in later)


def test_unknown_visibility_passes_through(gong_factory, tmp_path):
    world = make_world(owners=1)
    gong = gong_factory(world)
    original = world.flows_for

    def flows_for(owner, workspace_id):
        flows = original(owner, workspace_id)
        flows[0]["visibility"] = "Team"
        flows[0]["newGongField"] = {"x": 1}
        return flows

    world.flows_for = flows_for  # type: ignore[method-assign]
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    assert "Team" in {r["visibility"] for r in run.records()}


def test_basic_auth_header(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    assert run_tap(tap_config(gong), tmp_path).code == 0
    expected = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert {r.headers["Authorization"] for r in gong.requests} == {expected}


def test_bearer_token_header(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    config = tap_config(gong, access_key=None, access_key_secret=None, access_token=TOKEN)
    run = run_tap(config, tmp_path)
    assert run.code == 0, run.stderr
    assert {r.headers["Authorization"] for r in gong.requests} == {f"Bearer {TOKEN}"}
    assert run.records()


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (401, "check access_key and access_key_secret"),
        (403, "api:flows:read"),
        (400, "malformed"),
    ],
)
def test_error_status_stops_with_status_request_id_and_hint(gong_factory, tmp_path, status, hint):
    gong = gong_factory(make_world(owners=2))
    gong.add_fault(Fault(status=status, body={"requestId": "req-abc123", "errors": ["Nope"]}))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 1
    assert f"HTTP {status}" in run.stderr
    assert "req-abc123" in run.stderr
    assert "Nope" in run.stderr
    assert hint.lower() in run.stderr.lower()
    assert "Traceback" not in run.stderr
    assert len(gong.requests) <= 2, "a client error must not be retried"


def test_wrong_credentials_exit_non_zero_without_leaking(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1), access_key="other", access_key_secret="other")
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 1
    assert "HTTP 401" in run.stderr
    assert gong.requests[0].request_id in run.stderr
    assert "Traceback" not in run.stderr


def test_wrong_token_scope_is_403_with_scope_hint(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1), token_scopes={"api:users:read"})
    config = tap_config(gong, access_key=None, access_key_secret=None, access_token=TOKEN)
    run = run_tap(config, tmp_path)
    assert run.code == 1
    assert "HTTP 403" in run.stderr
    assert "api:flows:read" in run.stderr


def test_cursor_cycle_stops_naming_owner_and_page(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=2, company_flows=10), page_size=2)
    # owner 2's page 4 (0-based 3) points back at page 2: a cycle of length 2
    gong.add_fault(Fault(owner="owner0002@example.com", page=3, kind="cycle", cycle_to=2, times=-1))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 1
    assert "owner0002@example.com" in run.stderr
    assert "page 4" in run.stderr
    assert "cycling" in run.stderr
    assert len([r for r in gong.requests if r.owner == "owner0002@example.com"]) == 4
    # owner 1 was complete before the cycle and its rows were emitted
    assert {r["flow_owner_email"] for r in run.records()} >= {"owner0001@example.com"}


def test_429_is_retried_no_sooner_than_retry_after(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    gong.add_fault(Fault(status=429, headers={"Retry-After": "2"}))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    first, second = gong.requests[:2]
    assert first.status == 429
    assert second.status == 200
    assert second.time - first.time >= 2.0
    assert run.records()


def test_5xx_is_retried(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    gong.add_fault(Fault(status=503, times=2))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    assert [r.status for r in gong.requests] == [503, 503, 200]


def test_readme_settings_table_is_the_about_output():
    about = cli("--about", "--format=markdown").stdout
    table = [line for line in about.splitlines() if line.startswith("|")]
    readme = (ROOT / "README.md").read_text()
    assert "\n".join(table) in readme


def test_deselected_property_and_stream_maps_still_apply(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    catalog = discover()
    (flows,) = [s for s in catalog["streams"] if s["tap_stream_id"] == "flows"]
    for entry in flows["metadata"]:
        if entry["breadcrumb"] == []:
            entry["metadata"]["selected"] = True
        if entry["breadcrumb"] == ["properties", "folderName"]:
            entry["metadata"]["selected"] = False
    config = tap_config(gong, stream_maps={"flows": {"name_shout": "name + '!'"}})
    run = run_tap(config, tmp_path, catalog=catalog)
    assert run.code == 0, run.stderr
    records = run.records()
    assert records
    assert all("folderName" not in r for r in records)
    assert all(r["name_shout"] == r["name"] + "!" for r in records)


def test_a_typod_setting_is_refused_before_any_request(gong_factory, tmp_path):
    # Issue 19: flow_owner_email (singular) was ignored, and every user Gong lists was synced.
    gong = gong_factory(make_world(owners=2))
    config = tap_config(gong, flow_owner_emails=None, flow_owner_email=["owner0001@example.com"])
    run = run_tap(config, tmp_path)
    assert run.code == 1
    assert "flow_owner_email is not a setting of this tap: did you mean flow_owner_emails?" in (
        run.stderr
    )
    assert "Traceback" not in run.stderr
    assert gong.requests == []


def test_other_unknown_names_get_one_warning_and_discovery_says_where_owners_come_from(
    gong_factory, tmp_path
):
    gong = gong_factory(make_world(owners=2))
    config = tap_config(gong, flow_owner_emails=None, dbt_target="prod", target_schema="gong")
    run = run_tap(config, tmp_path)
    assert run.code == 0, run.stderr
    (warning,) = [line for line in run.stderr.splitlines() if "no setting of this tap" in line]
    assert "WARNING" in warning
    assert "dbt_target, target_schema" in warning
    assert (
        "The owners are the users Gong lists (GET /v2/users), because flow_owner_emails is unset"
        in run.stderr
    )
