"""flow_steps and flow_definitions from POST /v2/flows/steps (issue 13)."""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import (
    TapRun,
    discover,
    expected_rows,
    owners_of,
    run_tap,
    selecting,
    tap_config,
)
from tests.gong_standin import GREETING_HTML, STEPS, Fault, World, make_world

DEFINITION_FIELDS = (
    "id", "name", "folderId", "visibility", "creationDate", "exclusive", "description",
)  # fmt: skip


def catalog_selecting(*names: str) -> dict:
    return selecting(discover(), *names)


ALL = catalog_selecting("flows", "flow_steps", "flow_definitions")


def distinct_flow_ids(world: World, owners: list[str], company_only: bool = False) -> set[str]:
    rows = expected_rows(world, owners)
    return {
        flow_id
        for (_, flow_id), row in rows.items()
        if not company_only or row["visibility"] == "Company"
    }


def expected_steps(world: World, flow_ids: set[str]) -> dict[tuple[str, str], dict]:
    steps = {}
    for flow_id in flow_ids:
        flow = world.flow_with_steps(flow_id)
        if flow is None:
            continue
        for step in flow["steps"]:
            steps[(flow_id, step["id"])] = {**step, "flow_id": flow_id}
    return steps


def steps_of(run: TapRun) -> list[tuple[str, str]]:
    return [(r["flow_id"], r["id"]) for r in run.records("flow_steps")]


def steps_calls(gong) -> list[list[str]]:
    return [r.flow_ids for r in gong.requests if r.path == STEPS and r.status == 200]


def test_every_step_of_every_flow_once_in_the_fewest_calls(gong_factory, tmp_path):
    world = make_world(owners=6, company_flows=25, personal_per_owner=3, shared_per_owner=1)
    gong = gong_factory(world, page_size=10)
    owners = owners_of(world)
    run = run_tap(tap_config(gong), tmp_path, catalog=ALL)
    assert run.code == 0, run.stderr
    flow_ids = distinct_flow_ids(world, owners)
    expected = expected_steps(world, flow_ids)
    found = steps_of(run)
    assert len(found) == len(set(found)), "a step was emitted twice"
    assert {(r["flow_id"], r["id"]): r for r in run.records("flow_steps")} == expected
    definitions = run.records("flow_definitions")
    assert sorted(d["id"] for d in definitions) == sorted(flow_ids)
    for definition in definitions:
        published = world.flow_with_steps(definition["id"])
        assert definition == {field: published[field] for field in DEFINITION_FIELDS}
    calls = steps_calls(gong)
    assert len(calls) == math.ceil(len(flow_ids) / 20)
    sent = [i for call in calls for i in call]
    assert len(sent) == len(set(sent)) == len(flow_ids), "an id was asked for twice"
    assert all(len(call) <= 20 for call in calls)
    assert set(expected_rows(world, owners)) == {
        (r["flow_owner_email"], r["id"]) for r in run.records()
    }


def test_html_and_non_ascii_step_bodies_arrive_byte_for_byte(gong_factory, tmp_path):
    world = make_world(owners=1, company_flows=2)
    gong = gong_factory(world)
    run = run_tap(tap_config(gong), tmp_path, catalog=ALL)
    assert run.code == 0, run.stderr
    bodies = [r["body"] for r in run.records("flow_steps") if r["body"]]
    assert any(body.endswith(GREETING_HTML) for body in bodies)


def test_steps_without_flows_selected_cost_only_the_owner_pages(gong_factory, tmp_path):
    world = make_world(owners=3)
    gong = gong_factory(world, page_size=4)
    owners = owners_of(world)
    plain = run_tap(tap_config(gong), tmp_path)
    flows_calls = len([r for r in gong.requests if r.path == "/v2/flows"])
    gong.reset_log()
    run = run_tap(tap_config(gong), tmp_path, catalog=catalog_selecting("flow_steps"))
    assert plain.code == run.code == 0, run.stderr
    assert run.records("flows") == []
    assert run.records("flow_definitions") == []
    assert len([r for r in gong.requests if r.path == "/v2/flows"]) == flows_calls
    assert set(steps_of(run)) == set(expected_steps(world, distinct_flow_ids(world, owners)))


def test_by_default_no_steps_call_is_made(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=2))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    assert [r for r in gong.requests if r.path == STEPS] == []


def test_a_flow_deleted_between_the_list_and_the_steps_call_is_skipped(gong_factory, tmp_path):
    world = make_world(owners=2, company_flows=18)
    gong = gong_factory(world)
    owners = owners_of(world)
    flow_ids = distinct_flow_ids(world, owners)
    gone = sorted(flow_ids)[7]
    world.vanish(gone)
    run = run_tap(tap_config(gong), tmp_path, catalog=ALL)
    assert run.code == 0, run.stderr
    assert f"flow {gone}" in run.stderr
    assert "WARNING" in next(line for line in run.stderr.splitlines() if f"flow {gone}" in line)
    assert set(steps_of(run)) == set(expected_steps(world, flow_ids - {gone}))
    batches = math.ceil(len(flow_ids) / 20)
    all_calls = [r for r in gong.requests if r.path == STEPS]
    assert len(all_calls) <= batches + 2 * math.ceil(math.log2(20))


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500, "times": 2},
        {"status": 429, "headers": {"Retry-After": "1"}, "times": 1},
        {"kind": "reset", "times": 1},
    ],
    ids=["500", "429", "reset"],
)
def test_faults_on_steps_calls_are_retried(gong_factory, tmp_path, fault):
    world = make_world(owners=2)
    gong = gong_factory(world)
    gong.add_fault(Fault(path=STEPS, **fault))
    run = run_tap(tap_config(gong), tmp_path, catalog=ALL)
    assert run.code == 0, run.stderr
    owners = owners_of(world)
    assert set(steps_of(run)) == set(expected_steps(world, distinct_flow_ids(world, owners)))
    assert "Retrying /v2/flows/steps" in run.stderr


def test_a_persistent_steps_failure_fails_the_sync_without_activating(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=2))
    gong.add_fault(Fault(path=STEPS, status=503, times=-1))
    config = tap_config(gong, emit_activate_version_messages=True, max_retries=1)
    run = run_tap(config, tmp_path, catalog=ALL)
    assert run.code == 1
    assert "/v2/flows/steps" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.of_type("ACTIVATE_VERSION") == []


def test_an_interrupted_run_resumes_and_both_runs_emit_every_step(gong_factory, tmp_path):
    world = make_world(owners=8, company_flows=12, personal_per_owner=4)
    gong = gong_factory(world, page_size=50)
    owners = owners_of(world)
    flow_ids = distinct_flow_ids(world, owners)
    # the quota runs out part-way: after 6 owners' lists and the steps calls between them
    gong.daily_quota = 7
    gong.quota_retry_after = "36000"
    config = tap_config(gong, max_concurrent_requests=1, emit_activate_version_messages=True)
    first = run_tap(config, tmp_path, catalog=ALL)
    assert first.code == 1
    assert "quota is spent" in first.stderr
    assert first.of_type("ACTIVATE_VERSION") == []
    first_calls = len(steps_calls(gong))

    gong.daily_quota = None
    gong.reset_log()
    second = run_tap(config, tmp_path, state=first.states[-1], catalog=ALL)
    assert second.code == 0, second.stderr
    union = set(steps_of(first)) | set(steps_of(second))
    assert union == set(expected_steps(world, flow_ids))
    one_pass = math.ceil(len(flow_ids) / 20)
    assert first_calls + len(steps_calls(gong)) <= 2 * one_pass
    version = first.states[-1]["bookmarks"]["flows"]["version"]
    activated = {(m["stream"], m["version"]) for m in second.of_type("ACTIVATE_VERSION")}
    assert activated == {(s, version) for s in ("flows", "flow_steps", "flow_definitions")}


def test_company_only_mode_fetches_only_company_flow_steps(gong_factory, tmp_path):
    world = make_world(owners=3, company_flows=5, personal_per_owner=2)
    gong = gong_factory(world)
    run = run_tap(tap_config(gong, company_flows_only=True), tmp_path, catalog=ALL)
    assert run.code == 0, run.stderr
    company = {f.id for f in world.flows if f.owner is None}
    assert {r["id"] for r in run.records("flow_definitions")} == company
    assert {i for call in steps_calls(gong) for i in call} == company


def test_state_stays_small_at_300_owners_with_steps(gong_factory, tmp_path):
    world = make_world(owners=300, company_flows=3, personal_per_owner=1, shared_per_owner=0)
    gong = gong_factory(world)
    run = run_tap(tap_config(gong, max_requests_per_second=1000), tmp_path, catalog=ALL)
    assert run.code == 0, run.stderr
    assert max(len(json.dumps(s)) for s in run.states) < 1024
    assert len(steps_calls(gong)) == math.ceil((3 + 300) / 20)


def test_a_stream_an_earlier_run_of_the_pass_did_not_sync_is_not_activated(gong_factory, tmp_path):
    # A pass spans runs under a call budget; its first run syncs flows only. The steps streams
    # lack that run's flows, so the pass's end must not activate them: a target would delete
    # the steps of flows still in Gong.
    world = make_world(owners=12, company_flows=3, personal_per_owner=2, shared_per_owner=1)
    gong = gong_factory(world)
    config = tap_config(gong, emit_activate_version_messages=True, max_requests_per_run=6)
    first = run_tap(config, tmp_path, catalog=catalog_selecting("flows"))
    assert first.code == 0, first.stderr
    assert first.states[-1]["bookmarks"]["flows"]["streams"] == ["flows"]
    runs, state = [], first.states[-1]
    while not runs or not runs[-1].of_type("ACTIVATE_VERSION"):
        assert len(runs) < 6, "the pass did not end"
        run = run_tap(config, tmp_path, state=state, catalog=ALL)
        assert run.code == 0, run.stderr
        runs.append(run)
        state = run.states[-1]
    version = first.states[-1]["bookmarks"]["flows"]["version"]
    assert runs[-1].of_type("ACTIVATE_VERSION") == [
        {"type": "ACTIVATE_VERSION", "stream": "flows", "version": version}
    ]
    assert "No ACTIVATE_VERSION for flow_steps, flow_definitions at the end of this pass" in (
        runs[0].stderr
    )
    # The next pass syncs all three in every run: it activates all three.
    unbudgeted = tap_config(gong, emit_activate_version_messages=True)
    following = run_tap(unbudgeted, tmp_path, catalog=ALL)
    assert following.code == 0, following.stderr
    assert [m["stream"] for m in following.of_type("ACTIVATE_VERSION")] == [
        "flows", "flow_steps", "flow_definitions",
    ]  # fmt: skip


def test_a_steps_answer_that_leaves_out_flows_holds_back_their_activation(gong_factory, tmp_path):
    world = make_world(owners=10, company_flows=5, personal_per_owner=3, shared_per_owner=1)
    gong = gong_factory(world)
    gong.add_fault(Fault(path=STEPS, kind="empty", times=1))  # 200 with no flow
    config = tap_config(gong, emit_activate_version_messages=True, max_concurrent_requests=1)
    run = run_tap(config, tmp_path, catalog=ALL)
    assert run.code == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert [m["stream"] for m in run.of_type("ACTIVATE_VERSION")] == ["flows"]
    first_call = steps_calls(gong)[0]
    assert len(first_call) == 20
    assert (
        f"left out 20 of the 20 flows asked for ({', '.join(first_call)}): their steps are not "
        "emitted, and this pass sends no ACTIVATE_VERSION for flow_steps, flow_definitions"
    ) in run.stderr
    owners = owners_of(world)
    assert sorted((r["flow_owner_email"], r["id"]) for r in run.records()) == sorted(
        expected_rows(world, owners)
    )
    emitted = {r["id"] for r in run.records("flow_definitions")}
    assert emitted == distinct_flow_ids(world, owners) - set(first_call)
