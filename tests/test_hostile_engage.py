"""Hostile Gong Engage answers, states and inputs for tasks and the flow instance streams."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, owners_of, run_tap, selecting, tap_config
from tests.engage import INSTANCES, asked, engage, open_instances, sets_in, user_ids
from tests.gong_standin import OPEN_STATUSES, PROSPECTS, TASKS, Fault, World
from tests.test_stop import TapProcess


def open_ids(world: World, crm_ids=None) -> set[str]:
    return set(open_instances(world, crm_ids))


def flat(lists: list[list[str]]) -> list[str]:
    return [item for each in lists for item in each]


# --- the CRM-id file -------------------------------------------------------------------------


def test_a_file_with_a_bom_asks_gong_for_the_first_id_without_the_bom(
    gong_factory, tmp_path, catalog
):
    world = engage(5)
    gong = gong_factory(world)
    ids = world.crm_ids()
    path = tmp_path / "ids.txt"
    path.write_bytes(("\r\n".join(ids) + "\r\n").encode("utf-8-sig"))  # Excel / PowerShell
    run = run_tap(
        tap_config(gong, crm_prospect_ids_file=str(path)),
        tmp_path,
        catalog=selecting(catalog, "flow_instances"),
    )
    assert run.code == 0, run.stderr
    assert asked(gong) == [ids]
    assert {r["flowInstanceId"] for r in run.records("flow_instances")} == open_ids(world)


@pytest.mark.slow  # reads a file of a million lines twice
def test_exactly_one_million_ids_is_accepted_and_more_is_not(gong_factory, tmp_path, catalog):
    gong = gong_factory(engage(3))
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"c{k}\r\n" for k in range(1_000_000)))
    # Nothing selected: the config is checked (the file read), no request is sent.
    run = run_tap(
        tap_config(gong, crm_prospect_ids_file=str(path)), tmp_path, catalog=selecting(catalog)
    )
    assert run.code == 0, run.stderr
    assert gong.requests == []
    run = run_tap(
        tap_config(gong, crm_prospect_ids_file=str(path), crm_prospect_ids=["another"]),
        tmp_path,
        catalog=selecting(catalog),
    )
    assert run.code == 1
    assert "More than 1,000,000 CRM ids are configured" in run.stderr


@pytest.mark.parametrize("source", ["empty file", "comments only", "empty list"])
def test_no_id_from_an_empty_source_sends_no_request(gong_factory, tmp_path, catalog, source):
    gong = gong_factory(engage(3))
    path = tmp_path / "ids.txt"
    path.write_text("" if source == "empty file" else "# none today\n\n   \n")
    change = (
        {"crm_prospect_ids": []} if source == "empty list" else {"crm_prospect_ids_file": str(path)}
    )
    run = run_tap(tap_config(gong, **change), tmp_path, catalog=selecting(catalog, *INSTANCES))
    assert run.code == 0, run.stderr
    assert gong.requests == []
    assert "No CRM id to ask about" in run.stderr


@pytest.mark.parametrize("option", ["--discover", "--about"])
def test_discovery_and_about_do_not_need_the_crm_file(gong_factory, tmp_path, option):
    # Meltano discovers before a job's export step has written the file.
    gong = gong_factory(engage(3))
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(tap_config(gong, crm_prospect_ids_file=str(tmp_path / "later.txt")))
    )
    done = subprocess.run(
        [sys.executable, "-m", "tap_gong_flows", "--config", str(config), option],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert gong.requests == []


# --- /v2/flows/prospects answers of the wrong shape -------------------------------------------


def instance_run(gong_factory, tmp_path, catalog, world, fault=None, **options):
    gong = gong_factory(world, **options)
    if fault is not None:
        gong.add_fault(fault)
    run = run_tap(
        tap_config(gong, crm_prospect_ids=world.crm_ids()),
        tmp_path,
        catalog=selecting(catalog, *INSTANCES),
    )
    return gong, run


@pytest.mark.parametrize(
    "body",
    [
        {"requestId": "r1"},
        {"requestId": "r1", "prospectsAssigned": None},
        {"requestId": "r1", "prospectsAssigned": [{"crmProspectId": "crm000001"}]},
        {"requestId": "r1", "prospectsAssigned": [{"flowInstanceId": "12 34"}]},
        {"requestId": "r1", "prospectsAssigned": [{"flowInstanceId": None}]},
    ],
    ids=["no list", "null list", "no instance id", "id with a space", "null id"],
)
def test_a_prospects_answer_of_the_wrong_shape_fails_the_run_clearly_and_keeps_the_state(
    gong_factory, tmp_path, catalog, body
):
    world = engage(5)
    _gong, run = instance_run(
        gong_factory, tmp_path, catalog, world, Fault(path=PROSPECTS, kind="shape", body=body)
    )
    assert run.code == 1
    assert "Traceback" not in run.stderr
    assert "Gong answered /v2/flows/prospects with a body of the wrong shape" in run.stderr
    assert "requestId r1" in run.stderr
    assert run.records("flow_instances") == []
    assert run.records("flow_instance_changes") == []


def test_number_ids_and_null_fields_are_emitted_as_strings_and_nulls(
    gong_factory, tmp_path, catalog
):
    world = engage(3)
    body = {
        "requestId": "r1",
        "prospectsAssigned": [
            {"flowInstanceId": 1234567890123, "crmProspectId": 77, "flowId": 8.0,
             "workspaceId": 5, "flowInstanceStatus": "Running", "flowName": None},
            {"flowInstanceId": "999", "crmProspectId": None, "flowId": None,
             "flowInstanceStatus": None},
        ],
    }  # fmt: skip
    _gong, run = instance_run(
        gong_factory, tmp_path, catalog, world, Fault(path=PROSPECTS, kind="shape", body=body)
    )
    assert run.code == 0, run.stderr
    by_id = {r["flowInstanceId"]: r for r in run.records("flow_instances")}
    assert set(by_id) == {"1234567890123", "999"}
    assert by_id["1234567890123"]["crmProspectId"] == "77"
    assert by_id["1234567890123"]["flowId"] == "8"
    assert by_id["1234567890123"]["workspaceId"] == "5"
    changes = {c["flowInstanceId"]: c for c in run.records("flow_instance_changes")}
    assert "999" not in changes  # no status: no change the tap saw (it keeps the previous one)
    assert changes["1234567890123"]["crmProspectId"] == "77"


def test_a_status_this_release_does_not_know_is_kept_and_compared_next_pass(
    gong_factory, tmp_path, catalog
):
    world = engage(6)
    target = sorted(open_ids(world))[0]
    for instance in world.instances:
        if instance["flowInstanceId"] == target:
            instance["flowInstanceStatus"] = "Snoozed"
    gong = gong_factory(world)
    # By CRM id Gong answers open instances; one in a status Gong added later must still come.
    gong_world_open = gong.world.prospects_assigned

    def with_snoozed(*, crm_ids=None, instance_ids=None):
        found = gong_world_open(crm_ids=crm_ids, instance_ids=instance_ids)
        if crm_ids is not None:
            found += [dict(i) for i in world.instances if i["flowInstanceStatus"] == "Snoozed"
                      and i["crmProspectId"] in crm_ids]  # fmt: skip
        return found

    world.prospects_assigned = with_snoozed  # type: ignore[method-assign]
    cfg = tap_config(gong, crm_prospect_ids=world.crm_ids())
    chosen = selecting(catalog, *INSTANCES)
    first = run_tap(cfg, tmp_path, catalog=chosen)
    assert first.code == 0, first.stderr
    changes = {c["flowInstanceId"]: c for c in first.records("flow_instance_changes")}
    assert changes[target]["status"] == "Snoozed"
    gong.reset_log()
    second = run_tap(cfg, tmp_path, catalog=chosen, state=first.states[-1])
    assert second.code == 0, second.stderr
    assert second.records("flow_instance_changes") == []
    assert asked(gong, "flowInstanceIds") == []  # seen again by CRM id: no recheck


def test_the_same_instance_twice_in_an_answer_and_across_batches_is_emitted_once(
    gong_factory, tmp_path, catalog
):
    world = engage(150)
    first_open = next(i for i in world.instances if i["crmProspectId"] == "crm000001")
    # Gong repeats it for a prospect of the second batch, and twice in the first answer.
    world.instances.append({**first_open, "crmProspectId": "crm000140"})
    world.instances.append(dict(first_open))
    gong, run = instance_run(gong_factory, tmp_path, catalog, world)
    assert run.code == 0, run.stderr
    assert len(asked(gong)) == 2
    ids = [r["flowInstanceId"] for r in run.records("flow_instances")]
    assert ids.count(first_open["flowInstanceId"]) == 1
    assert len(ids) == len(set(ids)) == len(open_ids(world))
    changes = [c["flowInstanceId"] for c in run.records("flow_instance_changes")]
    assert changes.count(first_open["flowInstanceId"]) == 1


def test_a_finished_instance_asked_by_crm_id_gets_a_row_and_leaves_the_open_set(
    gong_factory, tmp_path, catalog
):
    world = engage(6)
    gong = gong_factory(world)
    cfg = tap_config(gong, crm_prospect_ids=world.crm_ids())
    chosen = selecting(catalog, *INSTANCES)
    first = run_tap(cfg, tmp_path, catalog=chosen)
    assert first.code == 0, first.stderr
    target = sorted(open_ids(world))[0]
    finished = next(i for i in world.instances if i["flowInstanceId"] == target)
    body = {
        "requestId": "r2",
        "prospectsAssigned": [{**finished, "flowInstanceStatus": "Finished"}],
    }
    gong.add_fault(Fault(path=PROSPECTS, kind="shape", body=body))  # Gong breaks its rule once
    gong.reset_log()
    second = run_tap(cfg, tmp_path, catalog=chosen, state=first.states[-1])
    assert second.code == 0, second.stderr
    changes = {c["flowInstanceId"]: c for c in second.records("flow_instance_changes")}
    assert changes[target]["status"] == "Finished"
    # Every other instance was open last pass and not seen: rechecked by id, found unchanged.
    assert sorted(flat(asked(gong, "flowInstanceIds"))) == sorted(open_ids(world) - {target})
    assert set(changes) == {target}


# --- /v2/tasks answers of the wrong shape ------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [{"requestId": "t1"}, {"requestId": "t1", "tasks": [{"type": "FLOW"}]}],
    ids=["no tasks list", "a task without id"],
)
def test_a_tasks_answer_of_the_wrong_shape_fails_clearly(gong_factory, tmp_path, catalog, body):
    gong = gong_factory(engage())
    gong.add_fault(Fault(path=TASKS, kind="shape", body=body))
    run = run_tap(tap_config(gong), tmp_path, catalog=selecting(catalog, "tasks"))
    assert run.code == 1
    assert "Traceback" not in run.stderr
    assert "Gong answered /v2/tasks with a body of the wrong shape (requestId t1)" in run.stderr


def test_null_contacts_and_string_ids_are_taken_as_they_come(gong_factory, tmp_path, catalog):
    world = engage(12)
    ids = user_ids(world)
    owner = owners_of(world)[0]
    tasks = world.tasks[ids[owner]]
    flow_tasks = [t for t in tasks if t["type"] == "FLOW"]
    assert len(flow_tasks) >= 2
    flow_tasks[0]["contact"] = None
    flow_tasks[0]["additionalContacts"] = None
    flow_tasks[1]["id"] = str(flow_tasks[1]["id"])
    flow_tasks[1]["userId"] = str(flow_tasks[1]["userId"])
    flow_tasks[1]["additionalContacts"] = None
    flow_tasks[1]["flow"]["step"] = None
    gong = gong_factory(world)
    run = run_tap(tap_config(gong), tmp_path, catalog=selecting(catalog, "tasks", "flow_instances"))
    assert run.code == 0, run.stderr
    by_id = {t["id"]: t for t in run.records("tasks")}
    assert by_id[str(flow_tasks[0]["id"])]["contact"] is None
    assert by_id[flow_tasks[1]["id"]]["userId"] == flow_tasks[1]["userId"]
    assert flow_tasks[1]["contact"]["crmId"] in asked(gong)[0]


def test_a_contact_whose_crm_id_is_a_number_still_feeds_flow_instances(
    gong_factory, tmp_path, catalog
):
    # A CRM whose ids are numbers (HubSpot): Gong may send crmId as a JSON number.
    world = engage(3)
    owner_tasks = [t for ts in world.tasks.values() for t in ts if t["type"] == "FLOW"]
    for task in owner_tasks:
        task["contact"]["crmId"] = int(task["contact"]["crmId"].removeprefix("crm"))
        task["additionalContacts"] = []
    for instance in world.instances:
        instance["crmProspectId"] = str(int(instance["crmProspectId"].removeprefix("crm")))
    gong = gong_factory(world)
    run = run_tap(tap_config(gong), tmp_path, catalog=selecting(catalog, "tasks", "flow_instances"))
    assert run.code == 0, run.stderr
    assert asked(gong) == [sorted(str(t["contact"]["crmId"]) for t in owner_tasks)]


def test_a_tasks_cursor_that_cycles_ends_in_a_clear_error(gong_factory, tmp_path, catalog):
    world = engage(24, owners=2)
    gong = gong_factory(world, tasks_page_size=3)
    gong.add_fault(Fault(path=TASKS, kind="cycle", cycle_to=1, page=2, times=-1))
    run = run_tap(tap_config(gong), tmp_path, catalog=selecting(catalog, "tasks"), timeout=60)
    assert run.code == 1
    assert "Traceback" not in run.stderr
    assert len([r for r in gong.requests if r.path == TASKS]) < 20
    assert "/v2/tasks" in run.stderr


# --- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fault"),
    [
        (PROSPECTS, Fault(path=PROSPECTS, status=503)),
        pytest.param(  # slow: waits out the Retry-After for real
            PROSPECTS, Fault(path=PROSPECTS, status=429, headers={"Retry-After": "1"}),
            marks=pytest.mark.slow,
        ),
        (PROSPECTS, Fault(path=PROSPECTS, kind="reset")),
        (TASKS, Fault(path=TASKS, status=502)),
        pytest.param(
            TASKS, Fault(path=TASKS, status=429, headers={"Retry-After": "1"}),
            marks=pytest.mark.slow,
        ),
        (TASKS, Fault(path=TASKS, kind="reset")),
    ],
    ids=["prospects 503", "prospects 429", "prospects reset", "tasks 502", "tasks 429",
         "tasks reset"],
)  # fmt: skip
def test_a_transient_failure_on_either_post_is_retried_and_loses_nothing(
    gong_factory, tmp_path, catalog, path, fault
):
    world = engage(12)
    gong = gong_factory(world)
    gong.add_fault(fault)
    run = run_tap(tap_config(gong), tmp_path, catalog=selecting(catalog, "tasks", *INSTANCES))
    assert run.code == 0, run.stderr
    assert f"Retrying {path}" in run.stderr
    contacts = set(flat(asked(gong)))
    assert {r["flowInstanceId"] for r in run.records("flow_instances")} == open_ids(world, contacts)
    ids = user_ids(world)
    expected = {str(t["id"]) for o in owners_of(world) for t in world.tasks[ids[o]]}
    assert {t["id"] for t in run.records("tasks")} == expected
    if path == PROSPECTS:
        assert "Retrying /v2/flows/prospects for owner" not in run.stderr


# --- budgets, the daily quota and passes that span runs ---------------------------------------


def runs_until_quiet(cfg, tmp_path, chosen, *, state=None, most=12):
    """Runs until one completes both passes; every run's TapRun."""
    runs = []
    for _ in range(most):
        run = run_tap(cfg, tmp_path, catalog=chosen, state=state)
        assert run.code == 0, run.stderr
        runs.append(run)
        state = run.states[-1]
        if "the pass is complete" in run.stderr and "stopped at the call budget" not in run.stderr:
            break
    return runs


def test_under_a_run_budget_the_contacts_of_every_owners_tasks_are_asked_about(
    gong_factory, tmp_path, catalog
):
    world = engage(30, owners=4)
    gong = gong_factory(world)
    cfg = tap_config(gong, max_requests_per_run=3)
    chosen = selecting(catalog, "tasks", *INSTANCES)
    runs = runs_until_quiet(cfg, tmp_path, chosen)
    assert "the pass is complete" in runs[-1].stderr
    contacts = set()
    for run in runs:
        for task in run.records("tasks"):
            if task["type"] == "FLOW":
                contacts.add(task["contact"]["crmId"])
                contacts |= {c["crmId"] for c in task.get("additionalContacts") or []}
    assert set(flat(asked(gong))) == contacts
    found = {r["flowInstanceId"] for run in runs for r in run.records("flow_instances")}
    assert found == open_ids(world, contacts)


def test_one_request_a_run_with_flows_tasks_and_instances_completes_every_stream(
    gong_factory, tmp_path, catalog
):
    world = engage(12, owners=2)
    gong = gong_factory(world)
    cfg = tap_config(gong, max_requests_per_run=1, crm_prospect_ids=world.crm_ids())
    chosen = selecting(catalog, "flows", "tasks", *INSTANCES)
    state = None
    instances: set[str] = set()
    tasks: set[str] = set()
    for _ in range(20):
        gong.reset_log()
        run = run_tap(cfg, tmp_path, catalog=chosen, state=state)
        assert run.code == 0, run.stderr
        assert len(gong.requests) <= 4, [r.path for r in gong.requests]  # + 1 instance batch
        instances |= {r["flowInstanceId"] for r in run.records("flow_instances")}
        tasks |= {t["id"] for t in run.records("tasks")}
        state = run.states[-1]
        if "Flow instances:" in run.stderr and "the pass is complete" in run.stderr:
            break
    assert instances == open_ids(world)
    ids = user_ids(world)
    assert tasks == {str(t["id"]) for o in owners_of(world) for t in world.tasks[ids[o]]}


def test_a_day_budget_with_the_instance_streams_alone_holds_across_runs(
    gong_factory, tmp_path, catalog
):
    world = engage(450)
    gong = gong_factory(world)
    cfg = tap_config(gong, crm_prospect_ids=world.crm_ids(), max_requests_per_day=2)
    chosen = selecting(catalog, *INSTANCES)
    first = run_tap(cfg, tmp_path, catalog=chosen)
    assert first.code == 0, first.stderr
    assert len(gong.requests) == 2
    gong.reset_log()
    second = run_tap(cfg, tmp_path, catalog=chosen, state=first.states[-1])
    assert second.code == 0, second.stderr
    assert gong.requests == []  # the same UTC day: the budget is spent


@pytest.mark.parametrize("where", ["crm", "recheck"])
def test_the_quota_running_out_mid_pass_resumes_next_day_without_duplicate_changes(
    gong_factory, tmp_path, catalog, where
):
    world = engage(450)
    gong = gong_factory(world)
    cfg = tap_config(gong, crm_prospect_ids=world.crm_ids())
    chosen = selecting(catalog, *INSTANCES)
    first = run_tap(cfg, tmp_path, catalog=chosen)
    assert first.code == 0, first.stderr
    opened = sorted(open_ids(world))
    finished = opened[::2]  # 225 leave the open set: three recheck calls
    for instance_id in finished:
        world.set_status(instance_id, "FinishedNoReply")
    gong.reset_log()
    gong.daily_quota = 2 if where == "crm" else 6  # 5 CRM calls, then 3 rechecks
    day1 = run_tap(cfg, tmp_path, catalog=chosen, state=first.states[-1])
    assert day1.code == 1
    assert "Traceback" not in day1.stderr
    assert sets_in(day1.states[-1])
    gong.new_day()
    gong.daily_quota = None
    day2 = run_tap(cfg, tmp_path, catalog=chosen, state=day1.states[-1])
    assert day2.code == 0, day2.stderr
    assert "the pass is complete" in day2.stderr
    changes = day1.records("flow_instance_changes") + day2.records("flow_instance_changes")
    assert sorted(c["flowInstanceId"] for c in changes) == sorted(finished)
    final = {
        r["flowInstanceId"]: r["flowInstanceStatus"]
        for r in day1.records("flow_instances") + day2.records("flow_instances")
    }
    assert {final[i] for i in finished} == {"FinishedNoReply"}
    # a third pass: nothing to recheck, nothing changed
    gong.reset_log()
    day3 = run_tap(cfg, tmp_path, catalog=chosen, state=day2.states[-1])
    assert day3.records("flow_instance_changes") == []
    assert asked(gong, "flowInstanceIds") == []


def test_a_lower_id_limit_costs_a_few_calls_a_pass_not_a_few_each_run(
    gong_factory, tmp_path, catalog
):
    world = engage(500)
    gong = gong_factory(world, prospects_id_limit=30)
    cfg = tap_config(gong, crm_prospect_ids=world.crm_ids(), max_requests_per_run=5)
    chosen = selecting(catalog, "flow_instances")
    runs = runs_until_quiet(cfg, tmp_path, chosen, most=20)
    assert "the pass is complete" in runs[-1].stderr
    calls = [r for r in gong.requests if r.path == PROSPECTS]
    assert sum(len(r.json()["crmProspectsIds"]) for r in calls if r.status == 200) == 500
    # README: "about ceil(CRM ids / 100) calls a pass, plus a few to find the size"
    assert len(calls) <= -(-500 // 25) + 4, len(calls)


# --- states ------------------------------------------------------------------------------------


def test_a_state_of_the_previous_release_starts_the_instance_pass_and_keeps_the_flows_pass(
    gong_factory, tmp_path, catalog
):
    world = engage(12, owners=3)
    gong = gong_factory(world)
    owners = owners_of(world)
    old = {
        "bookmarks": {
            "flows": {"version": 1700000000000, "last_owner": owners[0], "accepted": 1,
                      "refused": 0, "records": 3}
        }
    }  # fmt: skip
    cfg = tap_config(gong, crm_prospect_ids=world.crm_ids())
    run = run_tap(
        cfg, tmp_path, catalog=selecting(catalog, "flows", "tasks", *INSTANCES), state=old
    )
    assert run.code == 0, run.stderr
    assert {r.owner for r in gong.requests if r.path == "/v2/flows"} == set(owners[1:])
    assert {r["flowInstanceId"] for r in run.records("flow_instances")} == open_ids(world)
    last = run.states[-1]["bookmarks"]
    assert sets_in(run.states[-1])
    assert last["flows"].get("tasks_refused", 0) == 0


@pytest.mark.parametrize(
    "bookmark",
    [
        {"last_id": "crm000004"},  # hand-edited: the sets removed to "start over"
        {"crm_done": True},
        {},
    ],
    ids=["last id, no sets", "crm done, no sets", "empty"],
)
def test_a_hand_edited_instance_bookmark_without_sets_starts_the_pass_over(
    gong_factory, tmp_path, catalog, bookmark
):
    world = engage(8)
    gong = gong_factory(world)
    run = run_tap(
        tap_config(gong, crm_prospect_ids=world.crm_ids()),
        tmp_path,
        catalog=selecting(catalog, *INSTANCES),
        state={"bookmarks": {"flow_instances": bookmark}},
    )
    assert run.code == 0, run.stderr
    assert asked(gong) == [world.crm_ids()]
    assert {r["flowInstanceId"] for r in run.records("flow_instances")} == open_ids(world)
    assert len(run.records("flow_instance_changes")) == len(open_ids(world))


def test_a_bookmark_past_every_configured_id_rechecks_and_completes(
    gong_factory, tmp_path, catalog
):
    (world,) = [engage(8)]
    gong = gong_factory(world)
    cfg = tap_config(gong, crm_prospect_ids=world.crm_ids())
    chosen = selecting(catalog, *INSTANCES)
    first = run_tap(cfg, tmp_path, catalog=chosen)
    state = first.states[-1]
    state["bookmarks"]["flow_instances"]["last_id"] = "zzz"  # the ids file changed meanwhile
    gong.reset_log()
    run = run_tap(cfg, tmp_path, catalog=chosen, state=state)
    assert run.code == 0, run.stderr
    assert "the pass is complete" in run.stderr
    assert asked(gong) == []
    assert sorted(flat(asked(gong, "flowInstanceIds"))) == sorted(open_ids(world))
    assert run.records("flow_instance_changes") == []


@pytest.mark.slow
def test_a_sigint_during_the_rechecks_keeps_the_sets_and_the_next_run_finishes(
    gong_factory, tmp_path, catalog
):
    world = engage(500)
    gong = gong_factory(world)
    cfg = tap_config(gong, crm_prospect_ids=world.crm_ids())
    chosen = selecting(catalog, *INSTANCES)
    first = run_tap(cfg, tmp_path, catalog=chosen)
    assert first.code == 0, first.stderr
    finished = sorted(open_ids(world))
    for instance_id in finished:
        world.set_status(instance_id, "Finished")
    gong.reset_log()
    gong.latency = 0.3
    tap = TapProcess(cfg, tmp_path, state=first.states[-1], catalog=chosen)
    tap.wait_for_log("Flow instances: rechecked 200")
    tap.process.send_signal(signal.SIGINT)
    stopped = tap.finish()
    gong.latency = 0.0
    assert stopped.code == 128 + signal.SIGINT
    assert "Traceback" not in stopped.stderr
    last = stopped.states[-1]
    assert sets_in(last)
    assert last["bookmarks"]["flow_instances"]["crm_done"] is True
    resumed = run_tap(cfg, tmp_path, catalog=chosen, state=last)
    assert resumed.code == 0, resumed.stderr
    assert "the pass is complete" in resumed.stderr
    changes = stopped.records("flow_instance_changes") + resumed.records("flow_instance_changes")
    assert sorted(c["flowInstanceId"] for c in changes) == finished
    assert {c["status"] for c in changes} == {"Finished"}


def test_the_changes_stream_alone_still_runs_the_pass_and_emits_no_instance(
    gong_factory, tmp_path, catalog
):
    world = engage(6)
    gong = gong_factory(world)
    run = run_tap(
        tap_config(gong, crm_prospect_ids=world.crm_ids()),
        tmp_path,
        catalog=selecting(catalog, "flow_instance_changes"),
    )
    assert run.code == 0, run.stderr
    assert run.records("flow_instances") == []
    assert {c["flowInstanceId"] for c in run.records("flow_instance_changes")} == open_ids(world)
    assert sets_in(run.states[-1])


@pytest.mark.parametrize(
    "status",
    [
        "On hold",
        pytest.param("On\thold"),
        pytest.param("Waiting\n"),
    ],
)
def test_the_tap_reads_back_the_state_it_wrote_whatever_status_gong_sent(
    gong_factory, tmp_path, catalog, status
):
    world = engage(3)
    one = next(i for i in world.instances if i["flowInstanceStatus"] in OPEN_STATUSES)
    body = {"requestId": "r1", "prospectsAssigned": [{**one, "flowInstanceStatus": status}]}
    gong, first = instance_run(
        gong_factory, tmp_path, catalog, world, Fault(path=PROSPECTS, kind="shape", body=body)
    )
    assert first.code == 0, first.stderr
    second = run_tap(
        tap_config(gong, crm_prospect_ids=world.crm_ids()),
        tmp_path,
        catalog=selecting(catalog, *INSTANCES),
        state=first.states[-1],
    )
    assert second.code == 0, second.stderr
