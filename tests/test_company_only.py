"""company_flows_only: one owner's pages a sync, Company flows only (issue 4)."""

from __future__ import annotations

from tests.conftest import run_tap, tap_config
from tests.gong_standin import Fault, make_world

OWNER_1, OWNER_2 = "owner0001@example.com", "owner0002@example.com"


def company_config(gong, **overrides):
    return tap_config(gong, company_flows_only=True, max_requests_per_second=50, **overrides)


def company_flow_ids(world) -> list[str]:
    return sorted(f.id for f in world.flows if f.owner is None)


def pages_of(world, owner: str, page_size: int) -> int:
    return -(-len(world.flows_for(owner, None)) // page_size)


def test_company_only_costs_one_owners_pages_and_emits_company_flows_once(gong_factory, tmp_path):
    world = make_world(owners=4, company_flows=5, personal_per_owner=2, shared_per_owner=1)
    gong = gong_factory(world, page_size=2)
    run = run_tap(company_config(gong, emit_activate_version_messages=True), tmp_path)
    assert run.code == 0, run.stderr

    assert pages_of(world, OWNER_1, 2) == 5  # 5 Company + 2 Personal + 2 Shared flows
    assert len(gong.requests) == 5
    assert [(r.owner, r.page) for r in gong.requests] == [(OWNER_1, p) for p in range(5)]
    records = run.records()
    assert sorted(r["id"] for r in records) == company_flow_ids(world)
    assert {r["visibility"] for r in records} == {"Company"}
    assert {r["flow_owner_email"] for r in records} == {OWNER_1}
    # a complete pass: the bookmark starts the next run afresh, the version is activated once
    assert run.states[-1]["bookmarks"]["flows"]["last_owner"] is None
    (activate,) = run.of_type("ACTIVATE_VERSION")
    assert run.messages.index(activate) > max(
        i for i, m in enumerate(run.messages) if m["type"] == "RECORD"
    )
    assert {m["version"] for m in run.of_type("RECORD")} == {activate["version"]}


def test_a_refused_first_owner_costs_exactly_one_request(gong_factory, tmp_path):
    world = make_world(owners=3, company_flows=3)
    world.rejected_owners[OWNER_1] = (404, "No user found corresponding to the provided filters")
    gong = gong_factory(world, page_size=2)
    run = run_tap(company_config(gong), tmp_path)
    assert run.code == 0, run.stderr

    owner_2_pages = pages_of(world, OWNER_2, 2)
    assert len(gong.requests) == 1 + owner_2_pages
    assert [r.owner for r in gong.requests] == [OWNER_1] + [OWNER_2] * owner_2_pages
    records = run.records()
    assert sorted(r["id"] for r in records) == company_flow_ids(world)
    assert {r["flow_owner_email"] for r in records} == {OWNER_2}
    assert f"Skipping owner {OWNER_1}" in run.stderr
    bookmarks = [s["bookmarks"]["flows"]["last_owner"] for s in run.states if s["bookmarks"]]
    assert bookmarks[-2:] == [OWNER_1, None]


def test_company_only_with_discovered_owners_adds_only_the_users_pages(gong_factory, tmp_path):
    world = make_world(owners=3, company_flows=3, inactive_users=1, users_without_email=1)
    gong = gong_factory(world, page_size=2)  # 5 users: 3 pages
    run = run_tap(company_config(gong, flow_owner_emails=None), tmp_path)
    assert run.code == 0, run.stderr

    flows_pages = pages_of(world, OWNER_1, 2)
    assert [(r.path, r.owner) for r in gong.requests] == [("/v2/users", None)] * 3 + [
        ("/v2/flows", OWNER_1)
    ] * flows_pages
    assert sorted(r["id"] for r in run.records()) == company_flow_ids(world)


def test_interrupted_company_only_sync_resumes_at_the_owner_it_stopped_at(gong_factory, tmp_path):
    world = make_world(owners=3, company_flows=3)
    world.rejected_owners[OWNER_1] = (404, "No user found corresponding to the provided filters")
    gong = gong_factory(world, page_size=2)
    gong.add_fault(Fault(owner=OWNER_2, page=1, status=500, times=-1))
    first = run_tap(company_config(gong, max_retries=0), tmp_path)
    assert first.code == 1
    assert OWNER_2 in first.stderr
    assert first.states[-1]["bookmarks"]["flows"]["last_owner"] == OWNER_1

    gong.faults.clear()
    gong.reset_log()
    second = run_tap(company_config(gong), tmp_path, state=first.states[-1])
    assert second.code == 0, second.stderr
    assert {r.owner for r in gong.requests} == {OWNER_2}
    assert len(gong.requests) == pages_of(world, OWNER_2, 2)
    assert sorted(r["id"] for r in second.records()) == company_flow_ids(world)
    assert second.states[-1]["bookmarks"]["flows"]["last_owner"] is None
