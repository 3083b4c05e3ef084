"""The tasks stream from POST /v2/tasks, once per owner of the flows pass (issue 20)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.conftest import ROOT, TOKEN, owners_of, run_tap, selecting, tap_config
from tests.engage import bodies, engage, user_ids
from tests.gong_standin import PROSPECTS, TASKS, Fault


def tasks_calls(gong) -> list[dict]:
    return bodies(gong, TASKS)


def test_one_call_per_owner_every_id_a_string_and_the_owners_email(gong_factory, tmp_path, catalog):
    world = engage(12)
    gong = gong_factory(world)
    run = run_tap(tap_config(gong), tmp_path, catalog=selecting(catalog, "tasks"))
    assert run.code == 0, run.stderr
    ids = user_ids(world)
    owners = owners_of(world)
    assert tasks_calls(gong) == [
        {"filter": {"userId": ids[o], "types": ["FLOW", "MANUAL"], "taskAction": ["CALL"],
                    "status": ["OPEN"]}}
        for o in owners
    ]  # fmt: skip
    # /v2/users once for the user ids (flow_owner_emails is set), no flows page: tasks alone.
    assert [r.path for r in gong.requests] == ["/v2/users", *[TASKS] * len(owners)]
    tasks = run.records("tasks")
    expected = {str(t["id"]): (email, t) for email in owners for t in world.tasks[ids[email]]}
    assert sorted(t["id"] for t in tasks) == sorted(expected)
    schema = json.loads((ROOT / "schemas" / "tasks.json").read_text())
    for task in tasks:
        jsonschema.validate(task, schema)
        email, sent = expected[task["id"]]
        assert task["owner_email"] == email
        assert task["userId"] == str(sent["userId"])
        if task["type"] == "FLOW":
            assert task["flow"]["id"] == str(sent["flow"]["id"])
            assert task["flow"]["step"]["id"] == str(sent["flow"]["step"]["id"])
        assert task["priority"]["id"] == str(sent["priority"]["id"])
        assert task["contact"] == sent["contact"]


def test_the_contacts_of_flow_tasks_feed_flow_instances(gong_factory, tmp_path, catalog):
    world = engage(12)
    gong = gong_factory(world)
    run = run_tap(
        tap_config(gong),
        tmp_path,
        catalog=selecting(catalog, "tasks", "flow_instances"),
    )
    assert run.code == 0, run.stderr
    contacts = set()
    for task in run.records("tasks"):
        if task["type"] == "FLOW":
            contacts.add(task["contact"]["crmId"])
            contacts |= {c["crmId"] for c in task.get("additionalContacts") or []}
    asked = [r.json()["crmProspectsIds"] for r in gong.requests if r.path == PROSPECTS]
    assert asked == [sorted(contacts)]
    # The instance pass goes after the owner pass.
    paths = [r.path for r in gong.requests]
    assert paths.index(PROSPECTS) > max(i for i, p in enumerate(paths) if p == TASKS)
    assert {r["crmProspectId"] for r in run.records("flow_instances")} == contacts


def test_a_token_without_the_tasks_scope_skips_tasks_with_one_warning(
    gong_factory, tmp_path, catalog
):
    world = engage(12)
    gong = gong_factory(world, token_scopes={"api:flows:read", "api:users:read"})
    config = tap_config(
        gong, access_key=None, access_key_secret=None, access_token=TOKEN,
        emit_activate_version_messages=True,
    )  # fmt: skip
    run = run_tap(config, tmp_path, catalog=selecting(catalog, "flows", "tasks"))
    assert run.code == 0, run.stderr
    assert run.stderr.count("Skipping the tasks stream for the rest of this run") == 1
    assert "api:tasks:read" in run.stderr
    assert len(tasks_calls(gong)) == 1
    assert run.records("tasks") == []
    assert len(run.records("flows")) > 0
    assert {m["stream"] for m in run.of_type("ACTIVATE_VERSION")} == {"flows"}


def test_an_owner_whose_tasks_gong_refuses_is_skipped_and_counted_apart_from_flows(
    gong_factory, tmp_path, catalog
):
    world = engage(12, owners=4)
    gong = gong_factory(world)
    owners = owners_of(world)
    ids = user_ids(world)
    world.rejected_task_users = {ids[owners[1]]: (404, "No user found for this userId")}
    world.rejected_owners["stranger@example.com"] = (404, "No flows found for the provided filters")
    config = tap_config(
        gong, flow_owner_emails=[*owners, "stranger@example.com"],
        emit_activate_version_messages=True, max_refused_owner_share=0.2,
    )  # fmt: skip
    run = run_tap(config, tmp_path, catalog=selecting(catalog, "flows", "tasks"))
    assert run.code == 0, run.stderr
    assert f"Skipping the tasks of owner {owners[1]}" in run.stderr
    assert "Skipping owner stranger@example.com" in run.stderr  # its flows: no tasks call
    assert len(tasks_calls(gong)) == 4
    assert {t["owner_email"] for t in run.records("tasks")} == set(owners) - {owners[1]}
    assert {r["flow_owner_email"] for r in run.records("flows")} == set(owners)
    # Flows: 1 of 5 owners refused, within 0.2. Tasks: 1 of the 4 others, over it.
    assert {m["stream"] for m in run.of_type("ACTIVATE_VERSION")} == {"flows"}
    assert "No ACTIVATE_VERSION for tasks: Gong refused the tasks of 1 of 4 owners" in run.stderr
    assert run.states[-1]["bookmarks"]["flows"]["tasks_refused"] == 1


def test_with_tasks_alone_an_owner_users_does_not_list_is_a_skipped_owner(
    gong_factory, tmp_path, catalog
):
    world = engage(12, owners=3)
    gong = gong_factory(world)
    owners = owners_of(world)
    config = tap_config(gong, flow_owner_emails=[*owners, "stranger@example.com"])
    run = run_tap(config, tmp_path, catalog=selecting(catalog, "tasks"))
    assert run.code == 0, run.stderr
    assert "Skipping owner stranger@example.com: GET /v2/users lists no user" in run.stderr
    assert len(tasks_calls(gong)) == 3
    assert "this run did 3 owners, 1 skipped" in run.stderr


def test_tasks_are_activated_after_a_complete_trusted_pass(gong_factory, tmp_path, catalog):
    gong = gong_factory(engage(12))
    config = tap_config(gong, emit_activate_version_messages=True)
    run = run_tap(config, tmp_path, catalog=selecting(catalog, "tasks"))
    assert run.code == 0, run.stderr
    activations = run.of_type("ACTIVATE_VERSION")
    assert [m["stream"] for m in activations] == ["tasks"]
    versions = {m["version"] for m in run.of_type("RECORD") if m["stream"] == "tasks"}
    assert versions == {activations[0]["version"]}
    last = max(i for i, m in enumerate(run.messages) if m["type"] == "RECORD")
    assert run.messages.index(activations[0]) > last


def test_a_paged_tasks_answer_is_followed_with_the_cursor_in_the_body(
    gong_factory, tmp_path, catalog
):
    world = engage(24, owners=2)
    gong = gong_factory(world, tasks_page_size=3)
    run = run_tap(tap_config(gong), tmp_path, catalog=selecting(catalog, "tasks"))
    assert run.code == 0, run.stderr
    ids = user_ids(world)
    expected = {str(t["id"]) for o in owners_of(world) for t in world.tasks[ids[o]]}
    assert sorted(t["id"] for t in run.records("tasks")) == sorted(expected)
    cursors = [body.get("cursor") for body in tasks_calls(gong)]
    assert any(cursors)
    assert all(not r.params for r in gong.requests if r.path == TASKS)


def test_tasks_with_company_flows_only_are_skipped_with_one_warning(
    gong_factory, tmp_path, catalog
):
    # Meltano selects every stream: an upgraded company_flows_only project must go on.
    gong = gong_factory(engage(12))
    run = run_tap(
        tap_config(gong, company_flows_only=True),
        tmp_path,
        catalog=selecting(catalog, "flows", "tasks"),
    )
    assert run.code == 0, run.stderr
    assert run.stderr.count("Skipping the tasks stream for the rest of this run") == 1
    assert "company_flows_only fetches one owner a pass" in run.stderr
    assert tasks_calls(gong) == []
    assert run.records("flows")


def test_a_retried_tasks_call_names_its_owner(gong_factory, tmp_path, catalog):
    world = engage(12)
    gong = gong_factory(world)
    owner = owners_of(world)[0]
    gong.add_fault(Fault(path=TASKS, status=500, user_id=user_ids(world)[owner]))
    run = run_tap(tap_config(gong), tmp_path, catalog=selecting(catalog, "tasks"))
    assert run.code == 0, run.stderr
    assert f"Retrying /v2/tasks for owner {owner}" in run.stderr


@pytest.mark.parametrize(
    "message",
    [
        "No tasks found corresponding to the provided filters",
        "No tasks found for userId 234599484848423",  # "userId" is no refusal of the user
    ],
)
def test_a_404_no_tasks_found_is_an_owner_without_open_tasks(
    gong_factory, tmp_path, catalog, message
):
    # gong-api.md: Gong answers some "nothing matched" cases with 404 "No ... found".
    world = engage(12)
    gong = gong_factory(world)
    owners = owners_of(world)
    nothing = {"errors": [message]}
    gong.add_fault(Fault(path=TASKS, status=404, body=nothing, user_id=user_ids(world)[owners[0]]))
    config = tap_config(gong, emit_activate_version_messages=True)
    run = run_tap(config, tmp_path, catalog=selecting(catalog, "tasks"))
    assert run.code == 0, run.stderr
    assert "Skipping owner" not in run.stderr
    assert {t["owner_email"] for t in run.records("tasks")} == set(owners[1:])
    assert [m["stream"] for m in run.of_type("ACTIVATE_VERSION")] == ["tasks"]


def test_each_stream_sends_its_schema_once_a_run(gong_factory, tmp_path, catalog):
    world = engage(12, owners=5)
    gong = gong_factory(world)
    run = run_tap(
        tap_config(gong, crm_prospect_ids=world.crm_ids()),
        tmp_path,
        catalog=selecting(
            catalog, "flows", "flow_steps", "tasks", "flow_instances", "flow_instance_changes"
        ),
    )
    assert run.code == 0, run.stderr
    schemas = [m["stream"] for m in run.of_type("SCHEMA")]
    assert sorted(schemas) == sorted(set(schemas))
    first = {}
    for message in run.messages:
        if message["type"] in ("SCHEMA", "RECORD"):
            first.setdefault(message["stream"], message["type"])
    assert set(first.values()) == {"SCHEMA"}  # each stream's SCHEMA before its records
    # One "Beginning sync" line a stream a run, not one for each owner's tasks or each batch.
    for stream in ("flows", "flow_instances"):
        assert run.stderr.count(f"Beginning sync of '{stream}'") == 1
    for stream in ("tasks", "flow_steps", "flow_instance_changes"):
        assert f"Beginning sync of '{stream}'" not in run.stderr


def test_a_contact_id_with_a_space_is_not_asked_about_and_the_state_stays_readable(
    gong_factory, tmp_path, catalog
):
    world = engage(6)
    flow_task = next(t for ts in world.tasks.values() for t in ts if t["type"] == "FLOW")
    flow_task["contact"]["crmId"] = "00Q 123"
    gong = gong_factory(world)
    chosen = selecting(catalog, "tasks", "flow_instances")
    first = run_tap(tap_config(gong), tmp_path, catalog=chosen)
    assert first.code == 0, first.stderr
    assert "Not asking about 1 task contact ids that are not one CRM id" in first.stderr
    asked = [r.json()["crmProspectsIds"] for r in gong.requests if r.path == PROSPECTS]
    assert all("00Q 123" not in ids for ids in asked)
    second = run_tap(tap_config(gong), tmp_path, catalog=chosen, state=first.states[-1])
    assert second.code == 0, second.stderr


def test_task_contacts_survive_a_new_instance_pass_that_failed_before_its_first_batch(
    gong_factory, tmp_path, catalog
):
    world = engage(30, owners=4)
    gong = gong_factory(world)
    owners = owners_of(world)
    ids = user_ids(world)
    early = {  # the contacts of the first two owners' flow tasks
        c["crmId"]
        for o in owners[:2]
        for t in world.tasks[ids[o]]
        if t["type"] == "FLOW"
        for c in [t["contact"], *t["additionalContacts"]]
    }
    cfg = tap_config(gong, max_requests_per_run=3)
    chosen = selecting(catalog, "tasks", "flow_instances")
    first = run_tap(cfg, tmp_path, catalog=chosen)  # owners 1 and 2, then the budget
    assert first.code == 0, first.stderr
    gong.add_fault(Fault(path=PROSPECTS, status=401))
    second = run_tap(cfg, tmp_path, catalog=chosen, state=first.states[-1])  # owners 3 and 4
    assert second.code == 1  # the instance pass's first call refused: no batch done
    for owner in owners[:2]:  # their tasks are done: later owner passes no longer see them
        world.tasks[ids[owner]] = []
    gong.reset_log()
    state = second.states[-1]
    for _ in range(2):  # a new owner pass over two runs, then the instance pass
        run = run_tap(cfg, tmp_path, catalog=chosen, state=state)
        assert run.code == 0, run.stderr
        state = run.states[-1]
    asked = {i for r in gong.requests if r.path == PROSPECTS for i in r.json()["crmProspectsIds"]}
    assert early <= asked
