"""`meltano run tap-gong-flows target-postgres` into a real PostgreSQL, as users run it.

Every assertion is on the warehouse's rows, on what Gong was asked, or on Meltano's state.
"""

from __future__ import annotations

import itertools
import json
import typing as t
from datetime import datetime, timezone

import pytest

from tap_gong_flows.instance_state import decode
from tests.conftest import ROOT, discover, expected_rows, owners_of, start_gong
from tests.gong_standin import GREETING_HTML, Flow, GongStandIn, World, add_engage, make_world

if t.TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import Pipeline

FLOW_FIELDS = tuple(json.loads((ROOT / "schemas" / "flows.json").read_text())["properties"])
INSTANCE_FIELDS = tuple(
    json.loads((ROOT / "schemas" / "flow_instances.json").read_text())["properties"]
)
OPEN_STATUSES = ("Pending", "Running", "Paused")
PROSPECTS = "/v2/flows/prospects"


def instant(value: str | None) -> datetime | None:
    """A timestamp from Gong ("...Z") or PostgreSQL (no zone: the target stores UTC)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def comparable(row: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Every field of the flows schema, timestamps as instants."""
    return {f: instant(row[f]) if f == "creationDate" else row[f] for f in FLOW_FIELDS}


def loaded(rows: t.Iterable[t.Mapping[str, t.Any]]) -> dict[tuple[str, str], dict[str, t.Any]]:
    return {(r["flow_owner_email"], r["id"]): comparable(r) for r in rows}


def served(world: World) -> dict[tuple[str, str], dict[str, t.Any]]:
    """What Gong lists for every active owner: the rows an uninterrupted run must leave."""
    return {key: comparable(row) for key, row in expected_rows(world, owners_of(world)).items()}


def owners_requested(gong: GongStandIn) -> list[str]:
    return [r.owner for r in gong.requests if r.path == "/v2/flows" and r.owner]


def resumed_from_owner_3(flows: Pipeline, gong: GongStandIn) -> dict[str, t.Any]:
    """On a new day, the pipeline again: it fetches owners 3 and 4 only and exits 0. Returns
    the bookmark Meltano keeps after it."""
    gong.daily_quota = None
    gong.reset_log()
    resumed = flows.run()
    assert resumed.code == 0, resumed.explain()
    owners = owners_of(gong.world)
    assert sorted(set(owners_requested(gong))) == owners[2:], "owners 1 and 2 are not refetched"
    return flows.state()["singer_state"]["bookmarks"]["flows"]


def stopped_within_owner_3(flows: Pipeline, gong: GongStandIn) -> dict[str, t.Any]:
    """Run the pipeline into a quota that runs out within owner 3: it fails, and Meltano's
    state names owner 2 as the last complete one. Returns that bookmark."""
    interrupted = flows.run()
    assert interrupted.code != 0
    assert "quota is spent" in interrupted.stderr
    assert owners_requested(gong)[-1] == owners_of(gong.world)[2], "stopped within owner 3"
    bookmark = flows.state()["singer_state"]["bookmarks"]["flows"]
    assert bookmark["last_owner"] == owners_of(gong.world)[1]
    return bookmark


@pytest.fixture
def gong() -> t.Iterator[GongStandIn]:
    # 4 owners, 9 flows each over 2 pages of 5: paging, shared and personal flows all show up.
    standin = start_gong(make_world(owners=4), page_size=5)
    yield standin
    standin.stop()


def test_first_run_loads_every_owner_flow_pair_with_every_field(
    gong: GongStandIn, pipeline: t.Callable[..., Pipeline]
) -> None:
    flows = pipeline(gong)

    run = flows.run()

    assert run.code == 0, run.explain()
    rows = flows.rows()
    assert loaded(rows) == served(gong.world)
    assert flows.key_count() == (len(rows), len(rows))
    assert all(row["_sdc_deleted_at"] is None for row in rows)
    flows_requests = [r for r in gong.requests if r.path == "/v2/flows"]
    assert len(flows_requests) == 4 * 2, "one request per page of each owner, no more"
    flows.record_rows(len(rows))


def change_the_world(world: World) -> dict[str, str]:
    """Rename a Company flow, delete another, add a Personal one; say which is which."""
    renamed, deleted = world.flows[0], world.flows[1]
    renamed.name = "Company flow 1 (renamed)"
    world.flows.remove(deleted)
    added = Flow(
        id="9000000000000000001",
        name="Brand-new personal flow",
        folder_id=renamed.folder_id,
        folder_name=renamed.folder_name,
        creation_date="2025-06-01T08:30:00Z",
        exclusive=True,
        owner="owner0002@example.com",
    )
    world.flows.append(added)
    return {"renamed": renamed.id, "deleted": deleted.id, "added": added.id}


@pytest.mark.parametrize("hard_delete", [True, False], ids=["hard-delete", "soft-delete"])
def test_second_run_over_changed_flows_leaves_exactly_the_new_set(
    gong: GongStandIn, pipeline: t.Callable[..., Pipeline], hard_delete: bool
) -> None:
    flows = pipeline(
        gong,
        tap={"emit_activate_version_messages": True},
        target={"hard_delete": hard_delete},
    )
    first = flows.run()
    assert first.code == 0, first.explain()
    before = loaded(flows.rows())
    changed = change_the_world(gong.world)

    second = flows.run()

    assert second.code == 0, second.explain()
    rows = flows.rows()
    assert flows.key_count() == (len(rows), len(rows)), "a key is duplicated"
    live = [r for r in rows if r["_sdc_deleted_at"] is None]
    gone = [r for r in rows if r["_sdc_deleted_at"] is not None]
    assert loaded(live) == served(gong.world)
    owners = owners_of(gong.world)
    assert {r["name"] for r in live if r["id"] == changed["renamed"]} == {
        "Company flow 1 (renamed)"
    }
    assert [r["flow_owner_email"] for r in live if r["id"] == changed["added"]] == [
        "owner0002@example.com"
    ]
    deleted_before = {k: v for k, v in before.items() if k[1] == changed["deleted"]}
    assert sorted(owner for owner, _ in deleted_before) == owners  # a Company flow: every owner
    if hard_delete:
        assert gone == []
        assert not any(r["id"] == changed["deleted"] for r in rows)
    else:
        assert loaded(gone) == deleted_before, "the deleted flow is kept, marked deleted"


def test_without_activate_version_a_deleted_flow_stays(
    gong: GongStandIn, pipeline: t.Callable[..., Pipeline]
) -> None:
    """meltano.yml's default (the tap emits no ACTIVATE_VERSION): upserts only, no deletes."""
    flows = pipeline(gong, target={"hard_delete": True})
    assert flows.run().code == 0
    changed = change_the_world(gong.world)

    run = flows.run()

    assert run.code == 0, run.explain()
    rows = flows.rows()
    stale = {k for k in loaded(rows) if k[1] == changed["deleted"]}
    assert loaded(r for r in rows if r["id"] != changed["deleted"]) == served(gong.world)
    assert len(stale) == len(owners_of(gong.world))


def test_a_run_whose_owners_are_all_refused_leaves_the_table_as_it_was(
    gong: GongStandIn, pipeline: t.Callable[..., Pipeline]
) -> None:
    """Issue 10: hard delete on, and a second run in which Gong refuses every owner (a typo'd
    list, or a token of another company) must not empty the table."""
    flows = pipeline(
        gong, tap={"emit_activate_version_messages": True}, target={"hard_delete": True}
    )
    assert flows.run().code == 0
    before = loaded(flows.rows())
    assert before == served(gong.world)
    for owner in owners_of(gong.world):
        gong.world.rejected_owners[owner] = (404, "No user found corresponding to the filters")

    refused = flows.run()

    assert refused.code != 0
    assert "Gong refused every owner of this pass" in refused.stderr
    assert loaded(flows.rows()) == before, "the table lost rows"


def test_a_pass_spans_two_runs_under_a_call_budget(
    gong: GongStandIn, pipeline: t.Callable[..., Pipeline]
) -> None:
    """Issue 14: a budget of 4 calls a run, 4 owners of 2 pages: two meltano runs, both exit 0;
    the table is complete and activated only after the second, with the first run's version."""
    settings = {"emit_activate_version_messages": True, "max_requests_per_run": 4}
    flows = pipeline(gong, tap=settings, target={"hard_delete": True}, select=["flows.*"])

    first = flows.run()

    assert first.code == 0, first.explain()
    assert "Stopping at the call budget" in first.stderr
    bookmark = flows.state()["singer_state"]["bookmarks"]["flows"]
    assert bookmark["last_owner"] == owners_of(gong.world)[1]
    assert len({r["flow_owner_email"] for r in flows.rows()}) == 2

    second = flows.run()

    assert second.code == 0, second.explain()
    finished = flows.state()["singer_state"]["bookmarks"]["flows"]
    assert (finished["version"], finished["last_owner"]) == (bookmark["version"], None)
    rows = flows.rows()
    assert loaded(rows) == served(gong.world)
    assert {r["_sdc_table_version"] for r in rows} == {bookmark["version"]}


def test_run_stopped_by_the_daily_quota_resumes_from_meltano_state(
    gong: GongStandIn, pipeline: t.Callable[..., Pipeline]
) -> None:
    # Only flows selected and one owner at a time, so the quota runs out at a known place:
    # after owners 1 and 2 and the first page of owner 3. Hard delete: a resumed pass that
    # lost its version would delete owners 1 and 2 when it is activated.
    settings = {
        "emit_activate_version_messages": True,
        "max_concurrent_requests": 1,
    }
    flows = pipeline(gong, tap=settings, target={"hard_delete": True}, select=["flows.*"])
    assert flows.run().code == 0
    changed = change_the_world(gong.world)
    owners = owners_of(gong.world)
    already_admitted = sum(1 for r in gong.requests if r.status == 200)
    gong.daily_quota = already_admitted + 2 + 2 + 1
    gong.reset_log()

    bookmark = stopped_within_owner_3(flows, gong)
    rows = flows.rows()
    assert any(r["id"] == changed["deleted"] for r in rows), "an unfinished pass deletes nothing"

    finished = resumed_from_owner_3(flows, gong)
    assert (finished["version"], finished["last_owner"]) == (bookmark["version"], None)
    assert finished["accepted"] == len(owners), "the pass counts the owners of both runs"
    rows = flows.rows()
    assert flows.key_count() == (len(rows), len(rows))
    # The rows an uninterrupted run leaves (the first test): every pair Gong serves, no other.
    assert loaded(rows) == served(gong.world)


def test_a_quota_stop_with_every_stream_selected_resumes_after_the_owners_done(
    gong: GongStandIn, pipeline: t.Callable[..., Pipeline]
) -> None:
    """Issue 17: Meltano's default selection (every stream, the steps streams included). The
    quota runs out within owner 3; the STATE names owner 2 and carries the flow ids still
    waiting for their steps call, and the next `meltano run` fetches only owners 3 and 4."""
    settings = {"emit_activate_version_messages": True, "max_concurrent_requests": 1}
    flows = pipeline(gong, tap=settings, target={"hard_delete": True})
    # The calls Gong admits, in the order the tap sends them (one owner at a time): workspaces,
    # one users page (it also gives the owners' user ids for tasks), then owners 1 and 2 with 2
    # flows pages and 1 POST /v2/tasks each (Meltano's default selection, every stream, now
    # includes tasks), then owner 3's first flows page; its second page meets the spent quota.
    # The steps call comes after the owner pass and is never reached. No POST
    # /v2/flows/prospects either: this world has no tasks and no CRM ids are configured, so the
    # instance pass has no id to ask about (and in the stopped run it waits for the owner pass).
    gong.daily_quota = 1 + 1 + (2 + 1) + (2 + 1) + 1

    bookmark = stopped_within_owner_3(flows, gong)  # its last_owner was null: all refetched
    assert bookmark["waiting"], "the flows of owners 1 and 2 wait for their steps call"

    finished = resumed_from_owner_3(flows, gong)
    assert (finished["version"], finished["last_owner"], finished["waiting"]) == (
        bookmark["version"],
        None,
        [],
    )
    assert loaded(flows.rows()) == served(gong.world)
    flow_ids = {flow_id for _, flow_id in served(gong.world)}
    assert {r["id"] for r in flows.rows("flow_definitions")} == flow_ids
    expected_steps = {
        (flow_id, step["id"])
        for flow_id in flow_ids
        for step in (gong.world.flow_with_steps(flow_id) or {"steps": []})["steps"]
    }
    steps = flows.rows("flow_steps")
    assert {(r["flow_id"], r["id"]) for r in steps} == expected_steps
    assert len(steps) == len(expected_steps)
    assert {r["_sdc_table_version"] for r in steps} == {bookmark["version"]}


def discovered_streams() -> set[str]:
    return {s["tap_stream_id"] for s in discover()["streams"]}


def test_users_and_workspaces_tables_equal_what_gong_serves(
    pipeline: t.Callable[..., Pipeline],
) -> None:
    if "users" not in discovered_streams():
        pytest.skip("tap-gong-flows --discover has no `users` stream yet (issue 4)")
    world = make_world(owners=3, inactive_users=2, users_without_email=1)
    gong = start_gong(world, page_size=2)
    try:
        flows = pipeline(gong)
        run = flows.run()
        assert run.code == 0, run.explain()
        users = {r["id"]: r for r in flows.rows("users")}
        assert set(users) == {u["id"] for u in world.users}
        for user in world.users:
            for name, value in user.items():
                loaded_value = users[user["id"]][name]
                if name == "created":
                    assert instant(loaded_value) == instant(value)
                else:
                    assert loaded_value == value, (user["id"], name)
        workspaces = flows.rows("workspaces")
        assert sorted(
            ({k: w[k] for k in ("id", "name", "description")} for w in workspaces),
            key=lambda w: w["id"],
        ) == sorted(world.workspaces, key=lambda w: w["id"])
    finally:
        gong.stop()


def test_flow_steps_and_definitions_load_byte_for_byte(
    gong: GongStandIn, pipeline: t.Callable[..., Pipeline]
) -> None:
    """Issue 13: both streams selected load into PostgreSQL; HTML and non-ASCII step bodies
    arrive exactly as Gong sent them."""
    flows = pipeline(
        gong,
        tap={"emit_activate_version_messages": True},
        target={"hard_delete": True},
        select=["flows.*", "flow_steps.*", "flow_definitions.*"],
    )
    run = flows.run()
    assert run.code == 0, run.explain()
    world = gong.world
    flow_ids = {flow_id for _, flow_id in served(world)}
    expected = {
        (flow_id, step["id"]): step
        for flow_id in flow_ids
        for step in (world.flow_with_steps(flow_id) or {"steps": []})["steps"]
    }
    steps = {(r["flow_id"], r["id"]): r for r in flows.rows("flow_steps")}
    assert set(steps) == set(expected)
    for key, step in expected.items():
        for name, value in step.items():
            assert steps[key][name] == value, (key, name)
    assert any(r["body"] and GREETING_HTML in r["body"] for r in steps.values())
    definitions = {r["id"]: r for r in flows.rows("flow_definitions")}
    assert set(definitions) == flow_ids
    for flow_id, row in definitions.items():
        published = world.flow_with_steps(flow_id)
        assert row["name"] == published["name"]
        assert row["description"] == published["description"]
    calls = [r for r in gong.requests if r.path == "/v2/flows/steps"]
    assert len(calls) == -(-len(flow_ids) // 20)


def test_fractions_and_seconds_from_environment_variables_take_effect(
    gong: GongStandIn, pipeline: t.Callable[..., Pipeline]
) -> None:
    """Issue 18: the settings that take a fraction are `kind: string`, so Meltano 4.4 hands
    their variables on as strings (a `kind: decimal` one failed: Decimal is not JSON
    serializable) and the tap reads each as the number it says."""
    owners = owners_of(gong.world)
    gong.world.rejected_owners[owners[-1]] = (404, "No user found corresponding to the filters")
    numbers = {
        "max_requests_per_second": "2.5",
        "max_refused_owner_share": "0.2",
        "request_timeout": "30",
        "max_retry_wait_seconds": "30.5",
    }
    flows = pipeline(
        gong, tap={**numbers, "emit_activate_version_messages": True}, select=["flows.*"]
    )

    run = flows.run()

    assert run.code == 0, run.explain()
    # 0.2, not the default 0.5: one refused owner of four holds the version back.
    assert "Gong refused 1 of 4 owners, more than max_refused_owner_share (0.2)" in run.stderr
    # 2.5 a second, not the default 3: one request every 0.4 s, never a burst.
    times = sorted(r.time for r in gong.requests)
    assert len(times) == 3 * 2 + 1
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) > 0.35
    expected = {key: row for key, row in served(gong.world).items() if key[0] != owners[-1]}
    assert loaded(flows.rows()) == expected


def owner_tasks(world: World, owners: t.Iterable[str]) -> dict[str, tuple[str, dict[str, t.Any]]]:
    """The tasks Gong holds for these owners: {task id as text: (owner's email, task)}."""
    user_ids = {u["emailAddress"].lower(): u["id"] for u in world.users if u["emailAddress"]}
    return {
        str(task["id"]): (owner, task) for owner in owners for task in world.tasks[user_ids[owner]]
    }


def flow_task_contacts(tasks: t.Iterable[dict[str, t.Any]]) -> tuple[set[str], set[str]]:
    """(The CRM ids of the FLOW tasks' contacts, those of their additional contacts.)"""
    flow_tasks = [task for task in tasks if task["type"] == "FLOW"]
    contacts = {task["contact"]["crmId"] for task in flow_tasks}
    more = {c["crmId"] for task in flow_tasks for c in task["additionalContacts"]}
    return contacts, more


def as_instance(row: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Every field of the flow_instances schema, the creation date as an instant."""
    return {
        f: instant(row[f]) if f == "flowInstanceCreateDate" else row.get(f) for f in INSTANCE_FIELDS
    }


def instances_by_id(world: World, instance_ids: t.Iterable[str]) -> dict[str, dict[str, t.Any]]:
    """Gong's current view of these instances, whatever their status."""
    wanted = set(instance_ids)
    return {
        i["flowInstanceId"]: as_instance(i)
        for i in world.instances
        if i["flowInstanceId"] in wanted
    }


def open_instance_ids(world: World, crm_ids: t.Iterable[str]) -> set[str]:
    wanted = set(crm_ids)
    return {
        i["flowInstanceId"]
        for i in world.instances
        if i["crmProspectId"] in wanted and i["flowInstanceStatus"] in OPEN_STATUSES
    }


def instance_sets(flows: Pipeline) -> tuple[dict[str, str], dict[str, str]]:
    """The (open, seen) instance sets of the flow_instances bookmark Meltano keeps."""
    bookmark = flows.state()["singer_state"]["bookmarks"]["flow_instances"]
    assert "sets" in bookmark, f"Meltano's state lacks the instance sets: {bookmark}"
    assert (bookmark["last_id"], bookmark["crm_done"]) == (None, False), "the pass is complete"
    sets = decode(bookmark["sets"])
    assert (sets.waiting, sets.asked) == (set(), set()), "no task contact waits: each was asked"
    return sets.open, sets.seen


def changes_of(flows: Pipeline) -> dict[tuple[str, datetime], tuple[str | None, str]]:
    """{(instance id, seen_at): (previous status, status)} of the flow_instance_changes table."""
    return {
        (r["flowInstanceId"], instant(r["seen_at"])): (r["previous_status"], r["status"])
        for r in flows.rows("flow_instance_changes")
    }


def prospects_asked(gong: GongStandIn, key: str) -> list[list[str]]:
    """The ids of each POST /v2/flows/prospects of this kind since the log was reset."""
    bodies = [r.json() for r in gong.requests if r.path == PROSPECTS]
    return [body[key] for body in bodies if key in body]


def timed_run(flows: Pipeline) -> tuple[datetime, datetime]:
    """Run the pipeline and check it exits 0; the UTC second before it and the instant after."""
    before = datetime.now(timezone.utc).replace(microsecond=0)
    run = flows.run()
    assert run.code == 0, run.explain()
    return before, datetime.now(timezone.utc)


def test_tasks_instances_and_changes_load_and_no_instance_row_is_ever_deleted(
    pipeline: t.Callable[..., Pipeline], tmp_path: Path
) -> None:
    """Issue 20 end to end: tasks of the owners; the open instances of the file's CRM ids and
    the FLOW tasks' contacts; a change row per new instance, then one per status change; a
    finished instance keeps its row (with its final status) even with hard delete and
    ACTIVATE_VERSION on, as the instance streams are never activated."""
    world = add_engage(make_world(owners=3), prospects=20)
    # Two of the three owners: the third's tasks hold CRM ids no synced task has, so the file
    # brings some of them and one is left out of both.
    owners = owners_of(world)[:2]
    tasks = owner_tasks(world, owners)
    contacts, more = flow_task_contacts(task for _, task in tasks.values())
    from_tasks = contacts | more
    outside = sorted(set(world.crm_ids()) - from_tasks)
    assert len(outside) >= 2, "the world has CRM ids that only the file can bring"
    assert more - contacts, "a CRM id that only an additional contact brings"
    from_file = [*outside[:-1], *sorted(from_tasks)[:3]]  # some overlap the tasks' ids
    left_out = outside[-1]
    assert open_instance_ids(world, [left_out]), "the id left out has an open instance"
    ids_file = tmp_path / "crm_ids.txt"
    ids_file.write_text("# exported from the CRM\n" + "\n".join(from_file) + "\n")
    union = from_tasks | set(from_file)
    expected = open_instance_ids(world, union)

    gong = start_gong(world)
    try:
        flows = pipeline(
            gong,
            tap={
                "flow_owner_emails": owners,
                "crm_prospect_ids_file": str(ids_file),
                "emit_activate_version_messages": True,
            },
            target={"hard_delete": True},
            select=["flows.*", "tasks.*", "flow_instances.*", "flow_instance_changes.*"],
        )

        # The first run: every task of the owners, every open instance of the union, new.
        first_start, first_end = timed_run(flows)

        rows = flows.rows("tasks")
        assert sorted(r["id"] for r in rows) == sorted(tasks), "each task of the owners, once"
        assert all(isinstance(r["id"], str) for r in rows)
        for row in rows:
            owner, task = tasks[row["id"]]
            assert row["owner_email"] == owner
            assert row["userId"] == str(task["userId"])
            assert row["contact"]["crmId"] == task["contact"]["crmId"]
            if task["type"] == "FLOW":
                assert row["flow"]["id"] == str(task["flow"]["id"])
                assert row["flow"]["step"]["id"] == str(task["flow"]["step"]["id"])
        where = f"table_schema = '{flows.schema}' AND table_name = 'tasks' AND column_name = 'id'"
        column = f"SELECT data_type FROM information_schema.columns WHERE {where}"  # noqa: S608
        id_type = flows.warehouse.execute(column)
        assert id_type in {"text", "character varying"}, f"tasks.id is {id_type}"
        first_rows = flows.rows("flow_instances")
        instances = {r["flowInstanceId"]: as_instance(r) for r in first_rows}
        assert len(first_rows) == len(expected)
        assert instances == instances_by_id(world, expected)
        assert all(r["_sdc_deleted_at"] is None for r in first_rows)
        asked = [i for ids in prospects_asked(gong, "crmProspectsIds") for i in ids]
        assert asked == sorted(union), "the file's ids and the FLOW tasks' contacts, once each"
        assert left_out not in asked
        first_changes = changes_of(flows)
        assert sorted(i for i, _ in first_changes) == sorted(expected), "one row an instance"
        assert set(first_changes.values()) <= {(None, s) for s in OPEN_STATUSES}
        statuses = {i: instances[i]["flowInstanceStatus"] for i in expected}
        assert {i: new for (i, _), (_, new) in first_changes.items()} == statuses
        (first_seen,) = {seen for _, seen in first_changes}
        assert first_start <= first_seen <= first_end, "seen_at is the run's start, in UTC"
        assert instance_sets(flows) == (statuses, {})

        # A prospect of a task-only CRM id replies; one of a file-only id is paused or resumed.
        finished = min(i for i in expected if instances[i]["crmProspectId"] in from_tasks)
        toggled = min(
            i
            for i in expected
            if instances[i]["crmProspectId"] in outside
            and instances[i]["flowInstanceStatus"] in {"Running", "Paused"}
        )
        toggled_from = statuses[toggled]
        toggled_to = "Paused" if toggled_from == "Running" else "Running"
        world.set_status(finished, "FinishedResponse")
        world.set_status(toggled, toggled_to)
        gong.reset_log()

        second_start, second_end = timed_run(flows)

        second_rows = flows.rows("flow_instances")
        instances = {r["flowInstanceId"]: as_instance(r) for r in second_rows}
        assert len(second_rows) == len(expected)
        assert instances == instances_by_id(world, expected), "no row deleted, none added"
        assert instances[finished]["flowInstanceStatus"] == "FinishedResponse"
        assert instances[toggled]["flowInstanceStatus"] == toggled_to
        assert all(r["_sdc_deleted_at"] is None for r in second_rows)
        assert prospects_asked(gong, "flowInstanceIds") == [[finished]], "its final status"
        second_changes = changes_of(flows)
        new_changes = {k: v for k, v in second_changes.items() if k not in first_changes}
        assert len(second_changes) == len(first_changes) + 2, "exactly two new change rows"
        assert first_changes.items() <= second_changes.items(), "the first rows stay as they were"
        (second_seen,) = {seen for _, seen in new_changes}
        assert second_start <= second_seen <= second_end
        assert {i: v for (i, _), v in new_changes.items()} == {
            finished: (statuses[finished], "FinishedResponse"),
            toggled: (toggled_from, toggled_to),
        }
        statuses = {i: s for i, s in statuses.items() if i != finished} | {toggled: toggled_to}
        assert instance_sets(flows) == (statuses, {}), "the finished instance is not tracked"

        # A third run: the finished instance is asked about no more, and its row stays.
        gong.reset_log()
        timed_run(flows)

        third_rows = flows.rows("flow_instances")
        assert len(third_rows) == len(expected), "the finished instance's row is still there"
        assert {r["flowInstanceId"]: as_instance(r) for r in third_rows} == instances
        assert all(r["_sdc_deleted_at"] is None for r in third_rows)
        assert prospects_asked(gong, "flowInstanceIds") == []
        assert changes_of(flows) == second_changes, "nothing changed: no change row"
        assert instance_sets(flows) == (statuses, {})
        assert sorted(r["id"] for r in flows.rows("tasks")) == sorted(tasks)
    finally:
        gong.stop()
