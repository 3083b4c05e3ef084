"""flow_instances and flow_instance_changes from POST /v2/flows/prospects (issue 20)."""

from __future__ import annotations

import json
import signal

import jsonschema
import pytest

from tests.conftest import ROOT, run_tap, selecting, tap_config
from tests.engage import INSTANCES, bodies, engage, open_instances, sets_in
from tests.gong_standin import PROSPECTS, Fault
from tests.test_stop import TapProcess


def config(gong, **overrides):
    """Only the instance streams' settings: no owner is asked about (flows not selected)."""
    return tap_config(gong, **overrides)


def prospects_calls(gong) -> list[dict]:
    return bodies(gong, PROSPECTS)


def schema(name: str) -> dict:
    return json.loads((ROOT / "schemas" / f"{name}.json").read_text())


def test_every_open_instance_of_the_listed_ids_once_and_a_new_change_row_each(
    gong_factory, tmp_path, catalog
):
    world = engage(30)
    gong = gong_factory(world)
    ids = world.crm_ids()[:25]
    run = run_tap(
        config(gong, crm_prospect_ids=[*reversed(ids), ids[0]]),
        tmp_path,
        catalog=selecting(catalog, *INSTANCES),
    )
    assert run.code == 0, run.stderr
    records = run.records("flow_instances")
    expected = open_instances(world, ids)
    assert sorted(r["flowInstanceId"] for r in records) == sorted(expected)
    assert {r["flowInstanceId"]: r for r in records} == expected  # fields as Gong sends them
    for record in records:
        jsonschema.validate(record, schema("flow_instances"))
    changes = run.records("flow_instance_changes")
    assert sorted(c["flowInstanceId"] for c in changes) == sorted(expected)
    assert {c["previous_status"] for c in changes} == {None}
    for change in changes:
        jsonschema.validate(change, schema("flow_instance_changes"))
        assert change["status"] == expected[change["flowInstanceId"]]["flowInstanceStatus"]
        assert change["flowId"] == expected[change["flowInstanceId"]]["flowId"]
    # One call, the ids sorted and de-duplicated; no owner, user or flows request.
    assert prospects_calls(gong) == [{"crmProspectsIds": ids}]
    assert [r.path for r in gong.requests] == [PROSPECTS]
    assert "asked about 25 CRM ids" in run.stderr
    assert "found 25 instances" in run.stderr


def test_the_ids_can_come_from_a_file_of_one_id_a_line(gong_factory, tmp_path, catalog):
    world = engage(12)
    gong = gong_factory(world)
    ids = world.crm_ids()
    path = tmp_path / "ids.txt"
    path.write_text("# exported from the warehouse\n\n" + "\n".join(f"  {i}" for i in ids) + "\n")
    run = run_tap(
        config(gong, crm_prospect_ids_file=str(path), crm_prospect_ids=ids[:2]),
        tmp_path,
        catalog=selecting(catalog, "flow_instances"),
    )
    assert run.code == 0, run.stderr
    assert sorted(r["flowInstanceId"] for r in run.records("flow_instances")) == sorted(
        open_instances(world, ids)
    )
    assert prospects_calls(gong) == [{"crmProspectsIds": ids}]


def test_an_id_limit_below_100_costs_a_few_extra_calls(gong_factory, tmp_path, catalog):
    world = engage(250)
    gong = gong_factory(world, prospects_id_limit=60)
    run = run_tap(
        config(gong, crm_prospect_ids=world.crm_ids()),
        tmp_path,
        catalog=selecting(catalog, "flow_instances"),
    )
    assert run.code == 0, run.stderr
    assert len(run.records("flow_instances")) == 250
    calls = [r for r in gong.requests if r.path == PROSPECTS]
    answered = [len(r.json()["crmProspectsIds"]) for r in calls if r.status == 200]
    assert sum(answered) == 250
    assert len(calls) <= -(-250 // 50) + 2  # 1 refused call of 100, then 50 a call
    assert "the rest of this run asks 50 ids a call" in run.stderr


def test_a_400_about_one_id_skips_only_it(gong_factory, tmp_path, catalog):
    world = engage(40)
    gong = gong_factory(world)
    gong.refused_prospect_ids = {"crm000017"}
    run = run_tap(
        config(gong, crm_prospect_ids=world.crm_ids()),
        tmp_path,
        catalog=selecting(catalog, "flow_instances"),
    )
    assert run.code == 0, run.stderr
    expected = open_instances(world, [i for i in world.crm_ids() if i != "crm000017"])
    assert sorted(r["flowInstanceId"] for r in run.records("flow_instances")) == sorted(expected)
    assert "Skipping crmProspectsIds crm000017" in run.stderr
    assert len([r for r in gong.requests if r.path == PROSPECTS]) <= 1 + 2 * 6


def first_pass(gong_factory, tmp_path, catalog, prospects: int):
    """A world of `prospects`, its stand-in, the config and catalog, and a first complete pass."""
    world = engage(prospects)
    gong = gong_factory(world)
    cfg = config(gong, crm_prospect_ids=world.crm_ids())
    chosen = selecting(catalog, *INSTANCES)
    first = run_tap(cfg, tmp_path, catalog=chosen)
    assert first.code == 0, first.stderr
    return world, gong, cfg, chosen, first


def test_finished_instances_get_their_final_status_and_one_change_row_each(
    gong_factory, tmp_path, catalog
):
    world, gong, cfg, chosen, first = first_pass(gong_factory, tmp_path, catalog, 30)
    opened = open_instances(world, world.crm_ids())
    before = {i: r["flowInstanceStatus"] for i, r in opened.items()}  # the world's own dicts
    finished, paused, gone = sorted(opened)[:3]
    world.set_status(finished, "FinishedResponse")
    world.set_status(
        paused, "Paused" if opened[paused]["flowInstanceStatus"] != "Paused" else "Running"
    )
    world.instances = [i for i in world.instances if i["flowInstanceId"] != gone]
    gong.reset_log()
    second = run_tap(cfg, tmp_path, catalog=chosen, state=first.states[-1])
    assert second.code == 0, second.stderr
    by_id = {r["flowInstanceId"]: r for r in second.records("flow_instances")}
    assert by_id[finished]["flowInstanceStatus"] == "FinishedResponse"
    assert gone not in by_id
    changes = {c["flowInstanceId"]: c for c in second.records("flow_instance_changes")}
    assert set(changes) == {finished, paused}
    assert changes[finished]["previous_status"] == before[finished]
    assert changes[finished]["status"] == "FinishedResponse"
    # The two that left the open set are asked for by id, once.
    assert prospects_calls(gong)[-1] == {"flowInstanceIds": sorted([finished, gone])}
    assert "1 no longer answered for" in second.stderr
    # A third pass: the finished one is no longer tracked, nothing changed, no recheck call.
    gong.reset_log()
    third = run_tap(cfg, tmp_path, catalog=chosen, state=second.states[-1])
    assert third.records("flow_instance_changes") == []
    assert all("crmProspectsIds" in call for call in prospects_calls(gong))


def test_no_activate_version_for_either_instance_stream(gong_factory, tmp_path, catalog):
    world = engage(10)
    gong = gong_factory(world)
    run = run_tap(
        config(gong, crm_prospect_ids=world.crm_ids(), emit_activate_version_messages=True),
        tmp_path,
        catalog=selecting(catalog, "flows", *INSTANCES),
    )
    assert run.code == 0, run.stderr
    assert run.records("flow_instances")
    assert {m["stream"] for m in run.of_type("ACTIVATE_VERSION")} == {"flows"}
    assert all("version" not in m for m in run.of_type("RECORD") if m["stream"] in INSTANCES)


def test_the_sets_go_out_in_at_most_two_states_and_the_last_one_holds_them(
    gong_factory, tmp_path, catalog
):
    world = engage(20, owners=6)
    gong = gong_factory(world)
    run = run_tap(
        config(gong, crm_prospect_ids=world.crm_ids()),
        tmp_path,
        catalog=selecting(catalog, "flows", *INSTANCES),
    )
    assert run.code == 0, run.stderr
    with_sets = [s for s in run.states if sets_in(s)]
    assert 1 <= len(with_sets) <= 2
    assert len(run.states) > 6  # a STATE after each owner, carrying the small part only
    assert sets_in(run.states[-1])
    assert all(
        set(s["bookmarks"].get("flow_instances", {}))
        <= {"last_id", "crm_done", "started", "sizes", "sets"}
        for s in run.states
    )


@pytest.mark.parametrize("stop", ["quota", "fatal"])
def test_an_interrupted_instance_pass_keeps_its_sets_and_resumes(
    gong_factory, tmp_path, catalog, stop
):
    world, gong, cfg, chosen, first = first_pass(gong_factory, tmp_path, catalog, 250)
    world.set_status(sorted(open_instances(world, world.crm_ids()))[0], "Finished")
    status, headers = (429, {"Retry-After": "36000"}) if stop == "quota" else (401, {})
    gong.add_fault(Fault(path=PROSPECTS, status=status, headers=headers, prospect_id="crm000150"))
    gong.reset_log()
    second = run_tap(cfg, tmp_path, catalog=chosen, state=first.states[-1])
    assert second.code == 1
    assert "Traceback" not in second.stderr
    last = second.states[-1]
    assert sets_in(last)
    assert last["bookmarks"]["flow_instances"]["last_id"] == "crm000100"
    third = run_tap(cfg, tmp_path, catalog=chosen, state=last)
    assert third.code == 0, third.stderr
    asked = [c.get("crmProspectsIds", [None])[0] for c in prospects_calls(gong)]
    assert asked.count("crm000001") == 1  # the third run resumed after crm000100
    changes = second.records("flow_instance_changes") + third.records("flow_instance_changes")
    assert len(changes) == 1


def test_under_a_run_budget_the_pass_spans_runs_and_together_they_have_every_instance(
    gong_factory, tmp_path, catalog
):
    world = engage(450)
    gong = gong_factory(world)
    cfg = config(gong, crm_prospect_ids=world.crm_ids(), max_requests_per_run=2)
    chosen = selecting(catalog, *INSTANCES)
    seen: dict[str, dict] = {}
    state = None
    for runs in range(1, 10):  # noqa: B007 - counted after the loop
        gong.reset_log()
        run = run_tap(cfg, tmp_path, catalog=chosen, state=state)
        assert run.code == 0, run.stderr
        assert len(gong.requests) <= 2
        seen.update({r["flowInstanceId"]: r for r in run.records("flow_instances")})
        state = run.states[-1]
        if "the pass is complete" in run.stderr:
            break
    assert runs == 3  # 5 calls of 100 ids, 2 a run
    assert seen == open_instances(world, world.crm_ids())


def test_nothing_to_ask_sends_no_request(gong_factory, tmp_path, catalog):
    gong = gong_factory(engage(5))
    run = run_tap(config(gong), tmp_path, catalog=selecting(catalog, *INSTANCES))
    assert run.code == 0, run.stderr
    assert gong.requests == []
    assert "No CRM id to ask about" in run.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"crm_prospect_ids": ["crm1", ""]}, "crm_prospect_ids has entries that are not non-empty"),
        ({"crm_prospect_ids": ["crm1", 7]}, "crm_prospect_ids has entries that are not non-empty"),
        ({"crm_prospect_ids_file": "/nonexistent/ids.txt"}, "Cannot read crm_prospect_ids_file"),
        ({"crm_prospect_id": ["x"]}, "did you mean crm_prospect_ids?"),
    ],
)
def test_bad_ids_are_one_line_before_any_request(gong_factory, tmp_path, catalog, change, message):
    gong = gong_factory(engage(5))
    run = run_tap({**config(gong), **change}, tmp_path, catalog=selecting(catalog, *INSTANCES))
    assert run.code == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert gong.requests == []


def test_a_file_that_is_no_id_list_is_refused(gong_factory, tmp_path, catalog):
    # More than 1,000,000 ids: tests/test_hostile_engage.py (slow, a file of a million lines).
    gong = gong_factory(engage(5))
    csv = tmp_path / "contacts.csv"
    csv.write_text("id,name\n0031,Ada\n")
    run = run_tap(config(gong, crm_prospect_ids_file=str(csv)), tmp_path)
    assert run.code == 1
    assert "Line 1 of crm_prospect_ids_file" in run.stderr
    assert gong.requests == []


def test_a_state_whose_instance_sets_are_damaged_is_refused(gong_factory, tmp_path, catalog):
    gong = gong_factory(engage(5))
    state = {"bookmarks": {"flow_instances": {"last_id": None, "crm_done": False, "sets": "x!"}}}
    run = run_tap(config(gong), tmp_path, catalog=selecting(catalog, *INSTANCES), state=state)
    assert run.code == 1
    assert "bookmarks.flow_instances is not of this tap's shape" in run.stderr
    assert gong.requests == []


@pytest.mark.slow  # a few seconds: it waits for the pass to be under way
def test_a_signal_during_the_instance_pass_keeps_the_sets_and_the_next_run_carries_on(
    gong_factory, tmp_path, catalog
):
    world = engage(500)
    gong = gong_factory(world, latency=0.3)
    cfg = config(gong, crm_prospect_ids=world.crm_ids())
    chosen = selecting(catalog, *INSTANCES)
    tap = TapProcess(cfg, tmp_path, catalog=chosen)
    tap.wait_for_log("through crm000200")
    tap.process.send_signal(signal.SIGTERM)
    stopped = tap.finish()
    assert stopped.code == 128 + signal.SIGTERM
    assert "Traceback" not in stopped.stderr
    last = stopped.states[-1]
    assert sets_in(last)
    done = last["bookmarks"]["flow_instances"]["last_id"]
    assert done >= "crm000200"
    resumed = run_tap(cfg, tmp_path, catalog=chosen, state=last)
    assert resumed.code == 0, resumed.stderr
    emitted = {r["flowInstanceId"] for r in stopped.records("flow_instances")}
    emitted |= {r["flowInstanceId"] for r in resumed.records("flow_instances")}
    assert emitted == set(open_instances(world, world.crm_ids()))
    assert all(r["crmProspectId"] > done for r in resumed.records("flow_instances"))
    # Each instance's change row once over the two runs: the resumed run knows what was seen.
    changes = stopped.records("flow_instance_changes") + resumed.records("flow_instance_changes")
    assert len({c["flowInstanceId"] for c in changes}) == len(changes) == len(emitted)


def test_the_instance_passs_calls_count_against_the_daily_budget(gong_factory, tmp_path, catalog):
    world = engage(500)
    gong = gong_factory(world)
    cfg = config(gong, crm_prospect_ids=world.crm_ids(), max_requests_per_day=3)
    chosen = selecting(catalog, *INSTANCES)
    first = run_tap(cfg, tmp_path, catalog=chosen)
    assert first.code == 0, first.stderr
    assert len(gong.requests) == 3
    assert "Sync stopped at the call budget" in first.stderr
    day = first.states[-1]["bookmarks"]["flows"]
    assert day["day_requests"] == 3
    gong.reset_log()
    second = run_tap(cfg, tmp_path, catalog=chosen, state=first.states[-1])
    assert second.code == 0, second.stderr
    assert gong.requests == []
    assert "The daily call budget is spent: 3 requests today" in second.stderr
    assert sets_in(second.states[-1])


def test_a_404_no_instance_found_is_an_empty_answer(gong_factory, tmp_path, catalog):
    world = engage(150)
    gong = gong_factory(world)
    nothing = {"errors": ["No flows found corresponding to the provided filters"]}
    gong.add_fault(Fault(path=PROSPECTS, status=404, body=nothing, prospect_id="crm000001"))
    run = run_tap(
        config(gong, crm_prospect_ids=world.crm_ids()),
        tmp_path,
        catalog=selecting(catalog, "flow_instances"),
    )
    assert run.code == 0, run.stderr
    assert {r["crmProspectId"] for r in run.records("flow_instances")} == set(world.crm_ids()[100:])


def test_a_404_about_something_else_is_still_an_error(gong_factory, tmp_path, catalog):
    world = engage(5)
    gong = gong_factory(world)
    gong.add_fault(
        Fault(path=PROSPECTS, status=404, body={"errors": ["No workspace found for this key"]})
    )
    run = run_tap(
        config(gong, crm_prospect_ids=world.crm_ids()),
        tmp_path,
        catalog=selecting(catalog, "flow_instances"),
    )
    assert run.code == 1
    assert "No workspace found for this key" in run.stderr
    assert "Traceback" not in run.stderr
