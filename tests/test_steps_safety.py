"""The steps streams never delete what Gong still has, and a pass always moves forward (issue 17).

One test per way a broken Gong or a short quota met the steps streams, each asserting on the
records, the ACTIVATE_VERSION messages, the steps calls, the STATE and the exit code.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import math

import pytest

from tests.conftest import TapRun, expected_rows, owners_of, run_tap, tap_config
from tests.gong_standin import FLOWS, STEPS, make_world
from tests.test_flow_steps import (
    ALL,
    distinct_flow_ids,
    expected_steps,
    steps_calls,
    steps_of,
)


def activating(gong, **overrides):
    return tap_config(
        gong, emit_activate_version_messages=True, max_concurrent_requests=1, **overrides
    )


def activated(run: TapRun) -> list[str]:
    return [m["stream"] for m in run.of_type("ACTIVATE_VERSION")]


def all_steps_calls(gong) -> list:
    return [r for r in gong.requests if r.path == STEPS]


def warnings(run: TapRun, text: str) -> list[str]:
    return [line for line in run.stderr.splitlines() if "WARNING" in line and text in line]


def bookmark(run: TapRun) -> dict:
    return run.states[-1]["bookmarks"]["flows"]


def run_with_quirk(gong_factory, tmp_path, quirk: str, **world_size: int) -> tuple:
    """A sync of every stream, activating, against a stand-in whose steps answers have `quirk`;
    it must exit 0. Returns the world and the run."""
    world = make_world(**{"personal_per_owner": 1, "shared_per_owner": 0, **world_size})
    gong = gong_factory(world)
    gong.steps_quirk = quirk
    run = run_tap(activating(gong), tmp_path, catalog=ALL)
    assert run.code == 0, run.stderr
    return world, run


# --- Point 1: no stream is activated by a pass that emitted nothing for it ------------------


def test_every_flow_vanished_activates_neither_steps_stream_and_costs_n_plus_3(
    gong_factory, tmp_path
):
    world = make_world(owners=4, company_flows=23, personal_per_owner=6, shared_per_owner=0)
    gong = gong_factory(world)
    owners = owners_of(world)
    flow_ids = distinct_flow_ids(world, owners)
    assert len(flow_ids) == 47
    for flow_id in flow_ids:
        world.vanish(flow_id)
    run = run_tap(activating(gong), tmp_path, catalog=ALL)
    assert run.code == 0, run.stderr
    assert run.records("flow_steps") == run.records("flow_definitions") == []
    assert activated(run) == ["flows"]
    assert len(warnings(run, "Skipping the steps of flow")) == 47  # each vanished flow named
    (once,) = warnings(run, "Gong no longer knows any of the")
    assert "any of the 47 flows this run asked steps for" in once
    (silent,) = warnings(run, "this pass emitted no row")
    assert "No ACTIVATE_VERSION for flow_steps, flow_definitions" in silent
    batches = [20, 20, 7]
    assert len(all_steps_calls(gong)) == sum(n + 3 for n in batches) == 56  # was 91


@pytest.mark.parametrize("quirk", ["no_steps", "null_steps"])
def test_flows_without_a_steps_list_hold_back_flow_steps_only(gong_factory, tmp_path, quirk):
    world, run = run_with_quirk(gong_factory, tmp_path, quirk, owners=2, company_flows=3)
    assert run.records("flow_steps") == []
    flow_ids = distinct_flow_ids(world, owners_of(world))
    assert sorted(r["id"] for r in run.records("flow_definitions")) == sorted(flow_ids)
    assert activated(run) == ["flows", "flow_definitions"]
    (warning,) = warnings(run, "has no steps list for")
    assert f"no steps list for {len(flow_ids)} flows" in warning
    assert all(flow_id in warning for flow_id in flow_ids)
    assert "this pass sends no ACTIVATE_VERSION for flow_steps." in warning
    assert "Gong's schema does not mark steps as required" in warning
    assert "Traceback" not in run.stderr


# --- Point 2: one row per key per run -----------------------------------------------------


@pytest.mark.parametrize("quirk", ["repeat_flows", "repeat_steps"])
def test_repeats_in_steps_answers_become_one_row_each(gong_factory, tmp_path, quirk):
    world, run = run_with_quirk(
        gong_factory, tmp_path, quirk, owners=3, company_flows=20, shared_per_owner=1
    )
    flow_ids = distinct_flow_ids(world, owners_of(world))
    definitions = [r["id"] for r in run.records("flow_definitions")]
    assert sorted(definitions) == sorted(flow_ids)  # once each, not twice
    found = steps_of(run)
    assert len(found) == len(set(found))
    assert set(found) == set(expected_steps(world, flow_ids))
    assert warnings(run, "different content") == []  # the copies were identical
    assert activated(run) == ["flows", "flow_steps", "flow_definitions"]


def test_differing_copies_of_a_step_are_one_row_and_a_warning_with_the_count(
    gong_factory, tmp_path
):
    world, run = run_with_quirk(
        gong_factory, tmp_path, "differing_steps", owners=1, company_flows=2, personal_per_owner=0
    )
    expected = expected_steps(world, distinct_flow_ids(world, owners_of(world)))
    assert {(r["flow_id"], r["id"]): r for r in run.records("flow_steps")} == expected
    (warning,) = warnings(run, "different content")
    assert f"repeated {len(expected)} flows or steps" in warning


# --- Point 3: only what was asked for ----------------------------------------------------


@pytest.mark.parametrize("company_only", [False, True], ids=["all-flows", "company-only"])
def test_flows_the_call_did_not_ask_for_are_not_emitted(gong_factory, tmp_path, company_only):
    # 22 flows in all: two steps calls, so each has flows of the other to be answered with
    world = make_world(owners=3, company_flows=4, personal_per_owner=6, shared_per_owner=0)
    gong = gong_factory(world)
    gong.steps_quirk = "extra_flows"
    config = activating(gong, company_flows_only=company_only)
    run = run_tap(config, tmp_path, catalog=ALL)
    assert run.code == 0, run.stderr
    asked = {i for call in steps_calls(gong) for i in call}
    assert {r["id"] for r in run.records("flow_definitions")} == asked
    assert {r["flow_id"] for r in run.records("flow_steps")} == asked
    if company_only:  # no Personal flow's definition or steps come out
        company = {f.id for f in world.flows if f.owner is None}
        assert asked == company
    said = warnings(run, "did not ask for")
    assert len(said) == len(steps_calls(gong))  # one line a call
    assert all("carried 2 flows the call did not ask for" in line for line in said)
    first_call = steps_calls(gong)[0]
    personal = sorted(f.id for f in world.flows if f.owner is not None and f.id not in first_call)
    assert personal[0] in said[0]


# --- Point 4: finding vanished flows costs at most n + 3 calls ------------------------------


@pytest.mark.parametrize("k", [2, 3, 10, 20])
def test_k_vanished_of_a_batch_cost_at_most_n_plus_3_and_survivors_are_emitted(
    gong_factory, tmp_path, k
):
    world = make_world(owners=1, company_flows=20, personal_per_owner=0, shared_per_owner=0)
    gong = gong_factory(world)
    flow_ids = sorted(distinct_flow_ids(world, owners_of(world)))
    gone = set(flow_ids[::2][:k] if k <= 10 else flow_ids[:k])
    for flow_id in gone:
        world.vanish(flow_id)
    run = run_tap(activating(gong), tmp_path, catalog=ALL)
    assert run.code == 0, run.stderr
    assert len(all_steps_calls(gong)) <= 20 + 3  # was 17, 21, 29, 39
    assert {r["id"] for r in run.records("flow_definitions")} == set(flow_ids) - gone
    assert set(steps_of(run)) == set(expected_steps(world, set(flow_ids) - gone))
    assert {line.split("flow ")[1].split(":")[0] for line in warnings(run, "Skipping the")} == gone


@pytest.mark.slow  # 10 to 20 runs of the tap; tests/unit/test_key_pass.py has it in-process
def test_a_search_past_the_run_budget_waits_for_the_next_run_and_the_pass_ends(
    gong_factory, tmp_path
):
    # 20 Company flows, 11 of them gone before their steps call, a budget of 2 calls a run:
    # each run does one owner, its steps call and what its search needs to resolve one id;
    # what is left waits in the bookmark, and the pass ends with every survivor's steps.
    world = make_world(owners=3, company_flows=20, personal_per_owner=0, shared_per_owner=0)
    gong = gong_factory(world)
    owners = owners_of(world)
    flow_ids = sorted(distinct_flow_ids(world, owners))
    gone = set(flow_ids[1::2][:10]) | {flow_ids[0]}
    for flow_id in gone:
        world.vanish(flow_id)
    config = activating(gong, max_requests_per_run=2)
    runs, state = [], None
    while not runs or bookmark(runs[-1])["last_owner"] is not None:
        assert len(runs) < 25, "the pass did not end"
        gong.reset_log()
        run = run_tap(config, tmp_path, state=state, catalog=ALL)
        assert run.code == 0, run.stderr
        assert len(gong.requests) <= 2 + 2 * math.ceil(math.log2(20)), "was 25 in one run"
        assert len(bookmark(run)["waiting"]) <= 39
        runs.append(run)
        state = run.states[-1]
    survivors = set(flow_ids) - gone
    assert {r["id"] for run in runs for r in run.records("flow_definitions")} == survivors
    assert {k for run in runs for k in steps_of(run)} == set(expected_steps(world, survivors))
    version = bookmark(runs[0])["version"]
    assert runs[-1].of_type("ACTIVATE_VERSION") == [
        {"type": "ACTIVATE_VERSION", "stream": name, "version": version}
        for name in ("flows", "flow_steps", "flow_definitions")
    ]
    assert all(not r.of_type("ACTIVATE_VERSION") for r in runs[:-1])


# --- Point 5: a pass always moves forward -------------------------------------------------


def flows_pages_by_owner(gong) -> collections.Counter:
    return collections.Counter(
        r.owner for r in gong.requests if r.path == FLOWS and r.status == 200
    )


def test_a_quota_stop_with_steps_selected_keeps_every_completed_owner(gong_factory, tmp_path):
    # 40 one-page owners who list 5 distinct flows: never a full batch. The quota runs out at
    # owner 31; the STATE names owner 30 and carries the 5 ids, so the next day starts there.
    world = make_world(owners=40, company_flows=5, personal_per_owner=0, shared_per_owner=0)
    gong = gong_factory(world, daily_quota=30)
    owners = owners_of(world)
    config = activating(gong)
    first = run_tap(config, tmp_path, catalog=ALL)
    assert first.code == 1
    assert "quota is spent" in first.stderr
    assert "Traceback" not in first.stderr
    assert bookmark(first)["last_owner"] == owners[29]  # was null
    assert sorted(bookmark(first)["waiting"]) == sorted(distinct_flow_ids(world, owners))
    assert first.of_type("ACTIVATE_VERSION") == []
    assert len(json.dumps(first.states[-1])) < 2048

    gong.new_day()
    gong.reset_log()
    second = run_tap(config, tmp_path, state=first.states[-1], catalog=ALL)
    assert second.code == 0, second.stderr
    assert set(flows_pages_by_owner(gong)) == set(owners[30:]), "a done owner was refetched"
    assert len(all_steps_calls(gong)) == 1
    flow_ids = distinct_flow_ids(world, owners)
    assert {r["id"] for r in second.records("flow_definitions")} == flow_ids
    assert set(steps_of(second)) == set(expected_steps(world, flow_ids))
    assert activated(second) == ["flows", "flow_steps", "flow_definitions"]
    union = [(r["flow_owner_email"], r["id"]) for run in (first, second) for r in run.records()]
    assert sorted(union) == sorted(expected_rows(world, owners))


def test_a_pass_larger_than_a_day_completes_over_the_days_it_needs(gong_factory, tmp_path):
    # The quota covers 12 calls a "day" (a few owners' pages and a steps call), and runs out
    # at the same point of every run. No call budget is set. The pass completes in a bounded
    # number of runs; no owner's pages are fetched on two days, and nothing is lost.
    world = make_world(owners=40, company_flows=5, personal_per_owner=1, shared_per_owner=0)
    gong = gong_factory(world, daily_quota=12)
    owners = owners_of(world)
    config = activating(gong)
    runs, state, fetched = [], None, collections.Counter()
    while not runs or runs[-1].code != 0:
        assert len(runs) < 6, "the pass did not complete within 6 days"
        gong.new_day()
        gong.reset_log()
        run = run_tap(config, tmp_path, state=state, catalog=ALL)
        assert run.code in (0, 1), run.stderr
        assert "Traceback" not in run.stderr
        assert len(json.dumps(run.states[-1])) < 2048
        fetched.update(flows_pages_by_owner(gong))
        runs.append(run)
        state = run.states[-1]
    assert len(runs) >= 4  # 40 owners and 3 steps calls do not fit in fewer 12-call days
    assert sorted(fetched) == owners
    assert set(fetched.values()) == {1}, "an owner completed on one day was fetched again"
    flow_ids = distinct_flow_ids(world, owners)
    assert {r["id"] for run in runs for r in run.records("flow_definitions")} == flow_ids
    assert {k for run in runs for k in steps_of(run)} == set(expected_steps(world, flow_ids))
    assert activated(runs[-1]) == ["flows", "flow_steps", "flow_definitions"]


def test_every_state_of_a_pass_with_steps_names_the_version_its_rows_carry(gong_factory, tmp_path):
    world = make_world(owners=5, company_flows=3, personal_per_owner=2, shared_per_owner=0)
    gong = gong_factory(world)
    run = run_tap(activating(gong), tmp_path, catalog=ALL)
    assert run.code == 0, run.stderr
    versions = {m["version"] for m in run.of_type("RECORD")}
    assert len(versions) == 1
    flows_states = [s["bookmarks"]["flows"] for s in run.states if "flows" in s["bookmarks"]]
    assert {s["version"] for s in flows_states} == versions  # none with a fresh version
    assert flows_states[0]["last_owner"] == owners_of(world)[0]  # the first says owner 1 done
    assert bookmark(run)["waiting"] == []


def test_the_bookmark_stays_small_with_steps_and_flows_alone(gong_factory, tmp_path):
    world = make_world(owners=30, company_flows=3, personal_per_owner=1, shared_per_owner=0)
    gong = gong_factory(world)
    with_steps = run_tap(tap_config(gong, max_requests_per_run=8), tmp_path, catalog=ALL)
    alone = run_tap(tap_config(gong, max_requests_per_run=8), tmp_path)
    assert with_steps.code == alone.code == 0
    assert max(len(json.dumps(s)) for s in with_steps.states) < 2048
    assert max(len(json.dumps(s)) for s in alone.states) < 250


# --- Point 7: impossible STATE values are refused ------------------------------------------


def bad_state(**flows: object) -> dict:
    return {"bookmarks": {"flows": {"version": 1764497200000, "last_owner": None, **flows}}}


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (bad_state(day="2026-13-45", day_requests=3), "'2026-13-45', which is not a date"),
        (
            bad_state(
                day=(dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=3)).isoformat(),
                day_requests=10,
            ),
            "which lies ahead of today",
        ),
        (
            {"bookmarks": {"flows": {"version": -1, "last_owner": "owner0001@example.com"}}},
            "its version must be a positive integer",
        ),
        (
            {"bookmarks": {"flows": {"version": 0, "last_owner": None}}},
            "its version must be a positive integer",
        ),
    ],
    ids=["day-not-a-date", "day-three-days-ahead", "version-minus-one", "version-zero"],
)
def test_impossible_state_values_are_one_line_before_any_request(
    gong_factory, tmp_path, state, message
):
    gong = gong_factory(make_world(owners=2))
    run = run_tap(activating(gong, max_requests_per_day=10), tmp_path, state=state)
    assert run.code == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert gong.requests == []
    assert run.messages == []
