"""The users and workspaces streams, and flows owners discovered from /v2/users (issue 4)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import ROOT, discover, expected_rows, run_tap, selecting, tap_config
from tests.gong_standin import Fault, make_world

USERS_SCHEMA = json.loads((ROOT / "schemas" / "users.json").read_text())
WORKSPACES_SCHEMA = json.loads((ROOT / "schemas" / "workspaces.json").read_text())
# Gong's published UserMetadata, WorkspaceMetadata and what they refer to, copied verbatim from
# its OpenAPI description (gong-openapi.json, not in the repo; the project's shared folder beside
# the repository holds it).
EXCERPT = json.loads((Path(__file__).parent / "gong_openapi_excerpt.json").read_text())
GONG_OPENAPI = ROOT.parent / "shared" / "gong-openapi.json"


def discovered_config(gong, **overrides):
    """Owners left to discovery; a rate limit high enough not to slow the tests."""
    return tap_config(gong, flow_owner_emails=None, max_requests_per_second=50, **overrides)


@pytest.fixture(scope="module")
def discovered_catalog() -> dict:
    return discover()


def active_emails(world) -> list[str]:
    return sorted(u["emailAddress"] for u in world.users if u["emailAddress"] and u["active"])


def paths(gong) -> list[str]:
    return [r.path for r in gong.requests]


def flows_requests(gong) -> list[tuple[str, int]]:
    return [(r.owner, r.page) for r in gong.requests if r.path == "/v2/flows"]


def users_pages(gong) -> list[int]:
    return [r.page for r in gong.requests if r.path == "/v2/users"]


def last_owners(run) -> list[str | None]:
    """The flows bookmark's last_owner in each STATE, repeats of the same value once."""
    values = [
        s["bookmarks"]["flows"]["last_owner"] for s in run.states if "flows" in s["bookmarks"]
    ]
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def validate(records: list[dict], schema: dict) -> None:
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    for record in records:
        validator.validate(record)


# Owner discovery


def test_flows_without_owner_emails_fetch_the_active_users_in_order(gong_factory, tmp_path):
    world = make_world(owners=4, inactive_users=2, users_without_email=2)
    gong = gong_factory(world, page_size=2)  # 8 users: 4 pages
    run = run_tap(discovered_config(gong), tmp_path)
    assert run.code == 0, run.stderr

    owners = active_emails(world)
    assert owners == [f"owner{i:04d}@example.com" for i in range(1, 5)]
    assert users_pages(gong) == [0, 1, 2, 3], "each users page once, before any flow"
    assert paths(gong)[:4] == ["/v2/users"] * 4
    asked = flows_requests(gong)
    assert len(asked) == len(set(asked)), "an owner's page was requested twice"
    assert {owner for owner, page in asked if page == 0} == set(owners)
    # the records and STATE follow the sorted owners
    records = run.records()
    assert [r["flow_owner_email"] for r in records] == sorted(
        r["flow_owner_email"] for r in records
    )
    assert {(r["flow_owner_email"], r["id"]): r for r in records} == expected_rows(world, owners)
    assert len(records) == len(expected_rows(world, owners))
    assert last_owners(run) == [*owners[:3], None]
    # users were read, not emitted: flows alone is selected by default
    assert run.records("users") == []
    assert {m["stream"] for m in run.of_type("SCHEMA")} == {"flows"}
    # one warning names the users without an email
    no_email = [u["id"] for u in world.users if not u["emailAddress"]]
    (warning,) = [line for line in run.stderr.splitlines() if "without an email" in line]
    assert "2 Gong users" in warning
    assert all(user_id in warning for user_id in no_email)


def test_include_inactive_users_fetches_every_user_with_an_email(gong_factory, tmp_path):
    world = make_world(owners=2, inactive_users=2, users_without_email=1)
    gong = gong_factory(world, page_size=2)
    run = run_tap(discovered_config(gong, include_inactive_users=True), tmp_path)
    assert run.code == 0, run.stderr

    everyone = sorted(u["emailAddress"] for u in world.users if u["emailAddress"])
    assert everyone == [
        "inactive0001@example.com",
        "inactive0002@example.com",
        "owner0001@example.com",
        "owner0002@example.com",
    ]
    asked = flows_requests(gong)
    assert len(asked) == len(set(asked))
    assert {owner for owner, page in asked if page == 0} == set(everyone)
    records = run.records()
    assert {(r["flow_owner_email"], r["id"]): r for r in records} == expected_rows(world, everyone)
    assert [r["flow_owner_email"] for r in records] == sorted(
        r["flow_owner_email"] for r in records
    )


def test_interrupted_discovered_owners_sync_resumes_after_the_last_complete_owner(
    gong_factory, tmp_path
):
    world = make_world(owners=4, inactive_users=1, users_without_email=1)
    clean_gong = gong_factory(world, page_size=3)
    clean = run_tap(discovered_config(clean_gong), tmp_path)
    assert clean.code == 0, clean.stderr

    gong = gong_factory(world, page_size=3)
    gong.add_fault(Fault(owner="owner0002@example.com", status=500, times=-1))
    first = run_tap(discovered_config(gong, max_retries=0), tmp_path)
    assert first.code == 1
    assert "owner0002@example.com" in first.stderr
    assert first.states[-1]["bookmarks"]["flows"]["last_owner"] == "owner0001@example.com"

    gong.faults.clear()
    gong.reset_log()
    second = run_tap(discovered_config(gong), tmp_path, state=first.states[-1])
    assert second.code == 0, second.stderr
    asked = flows_requests(gong)
    assert len(asked) == len(set(asked))
    assert {owner for owner, page in asked if page == 0} == {
        "owner0002@example.com",
        "owner0003@example.com",
        "owner0004@example.com",
    }
    both = first.records() + second.records()
    keys = [(r["flow_owner_email"], r["id"]) for r in both]
    assert len(keys) == len(set(keys)), "a row was emitted twice across the two runs"
    assert {k: r for k, r in zip(keys, both, strict=True)} == {
        (r["flow_owner_email"], r["id"]): r for r in clean.records()
    }
    assert second.states[-1]["bookmarks"]["flows"]["last_owner"] is None


# Selection: an unselected stream costs no request unless a selected one needs it


def test_users_alone_never_calls_flows(gong_factory, tmp_path, discovered_catalog):
    world = make_world(owners=3, inactive_users=1, users_without_email=1)
    gong = gong_factory(world, page_size=2)
    catalog = selecting(discovered_catalog, "users")
    run = run_tap(discovered_config(gong), tmp_path, catalog=catalog)
    assert run.code == 0, run.stderr
    assert paths(gong) == ["/v2/users"] * 3
    assert users_pages(gong) == [0, 1, 2]
    assert run.records("users") == world.users
    assert run.records() == []
    validate(run.records("users"), USERS_SCHEMA)


def test_flows_alone_with_owner_emails_never_calls_users(
    gong_factory, tmp_path, discovered_catalog
):
    world = make_world(owners=2)
    gong = gong_factory(world, page_size=2)
    config = tap_config(gong, max_requests_per_second=50)
    run = run_tap(config, tmp_path, catalog=selecting(discovered_catalog, "flows"))
    assert run.code == 0, run.stderr
    assert set(paths(gong)) == {"/v2/flows"}
    assert len(run.records()) == len(expected_rows(world, config["flow_owner_emails"]))


def test_users_and_flows_read_the_users_pages_once(gong_factory, tmp_path, discovered_catalog):
    world = make_world(owners=3, inactive_users=2, users_without_email=1)
    gong = gong_factory(world, page_size=2)  # 6 users: 3 pages
    catalog = selecting(discovered_catalog, "users", "flows")
    run = run_tap(discovered_config(gong), tmp_path, catalog=catalog)
    assert run.code == 0, run.stderr
    assert users_pages(gong) == [0, 1, 2]
    assert "/v2/workspaces" not in paths(gong)
    assert run.records("users") == world.users
    owners = active_emails(world)
    records = run.records()
    assert {(r["flow_owner_email"], r["id"]): r for r in records} == expected_rows(world, owners)
    assert len(records) == len(expected_rows(world, owners))
    streams = [m["stream"] for m in run.messages if m["type"] == "RECORD"]
    assert streams == sorted(streams, key=["users", "flows"].index), "users come before flows"


def test_workspaces_records_are_what_gong_serves(gong_factory, tmp_path, discovered_catalog):
    world = make_world(owners=2, workspaces=3)
    gong = gong_factory(world)
    catalog = selecting(discovered_catalog, "workspaces")
    run = run_tap(discovered_config(gong), tmp_path, catalog=catalog)
    assert run.code == 0, run.stderr
    assert paths(gong) == ["/v2/workspaces"]
    assert gong.requests[0].params == {}
    assert run.records("workspaces") == world.workspaces
    assert len(world.workspaces) == 3
    validate(run.records("workspaces"), WORKSPACES_SCHEMA)


def test_every_stream_selected_emits_each_once(gong_factory, tmp_path, discovered_catalog):
    world = make_world(owners=2, users_without_email=1)
    gong = gong_factory(world, page_size=2)
    catalog = selecting(discovered_catalog, "workspaces", "users", "flows")
    run = run_tap(
        discovered_config(gong, emit_activate_version_messages=True), tmp_path, catalog=catalog
    )
    assert run.code == 0, run.stderr
    assert paths(gong)[:3] == ["/v2/workspaces", "/v2/users", "/v2/users"]
    assert run.records("workspaces") == world.workspaces
    assert run.records("users") == world.users
    # each table's version is activated once, after its last record
    for stream in ("workspaces", "users", "flows"):
        of_stream = [m for m in run.messages if m.get("stream") == stream]
        kinds = [m["type"] for m in of_stream if m["type"] != "SCHEMA"]
        assert kinds[-1] == "ACTIVATE_VERSION"
        assert kinds.count("ACTIVATE_VERSION") == 1
        assert {m["version"] for m in of_stream if m["type"] == "RECORD"} == {
            of_stream[-1]["version"]
        }


# The schemas


def test_discover_gives_users_and_workspaces_with_schema_files_and_keys(discovered_catalog):
    entries = {s["tap_stream_id"]: s for s in discovered_catalog["streams"]}
    assert list(entries) == [
        "workspaces", "users", "flows", "flow_steps", "flow_definitions", "tasks",
        "flow_instances", "flow_instance_changes",
    ]  # fmt: skip
    assert entries["users"]["key_properties"] == ["id"]
    assert entries["workspaces"]["key_properties"] == ["id"]
    assert entries["users"]["schema"]["properties"] == USERS_SCHEMA["properties"]
    assert entries["workspaces"]["schema"]["properties"] == WORKSPACES_SCHEMA["properties"]


def test_schemas_carry_every_property_gong_publishes():
    gong = EXCERPT["components"]["schemas"]
    users = USERS_SCHEMA["properties"]
    assert set(gong["UserMetadata"]["properties"]) == set(users)
    assert set(gong["Settings"]["properties"]) == set(users["settings"]["properties"])
    languages = users["spokenLanguages"]["items"]["properties"]
    assert set(gong["spokenLanguage"]["properties"]) == set(languages)
    workspaces = WORKSPACES_SCHEMA["properties"]
    assert set(gong["WorkspaceMetadata"]["properties"]) == set(workspaces)
    # Gong may add fields: they must pass, not fail the sync
    assert USERS_SCHEMA["additionalProperties"] is True
    assert users["settings"]["additionalProperties"] is True
    assert WORKSPACES_SCHEMA["additionalProperties"] is True
    # and every field Gong may leave out or null validates
    validate([{"id": "1", **dict.fromkeys(set(users) - {"id"})}], USERS_SCHEMA)


def test_openapi_excerpt_is_verbatim_from_gong():
    if not GONG_OPENAPI.exists():
        pytest.skip(f"{GONG_OPENAPI} is not on this machine")
    published = json.loads(GONG_OPENAPI.read_text())["components"]["schemas"]
    for name, schema in EXCERPT["components"]["schemas"].items():
        assert published[name] == schema, name


# Config


@pytest.mark.parametrize(
    ("emails", "message"),
    [
        ([], "flow_owner_emails is empty"),
        (["not-an-email"], "not emails"),
    ],
)
def test_owner_emails_when_set_must_be_emails(gong_factory, tmp_path, emails, message):
    gong = gong_factory(make_world(owners=1))
    run = run_tap(tap_config(gong, flow_owner_emails=emails), tmp_path)
    assert run.code == 1
    assert message in run.stderr
    assert gong.requests == []


def test_users_failure_names_the_endpoint_and_page(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=2))
    gong.add_fault(Fault(path="/v2/users", status=503, times=-1))
    run = run_tap(discovered_config(gong, max_retries=0), tmp_path)
    assert run.code == 1
    assert "/v2/users, page 1: gave up after 1 tries" in run.stderr
    assert "HTTP 503" in run.stderr
    assert not [r for r in gong.requests if r.path == "/v2/flows"]
