"""Concurrent owners change nothing users see (issue 5): same records, order, STATE, resume."""

from __future__ import annotations

import pytest

from tests.conftest import run_tap, tap_config
from tests.gong_standin import Fault, make_world


def faulty_gong(gong_factory, *, permanent: str | None = None):
    world = make_world(owners=12, company_flows=6)
    world.rejected_owners["owner0009@example.com"] = (404, "No flows found")
    gong = gong_factory(world, page_size=3)
    gong.add_fault(Fault(owner="owner0003@example.com", page=1, status=500))
    gong.add_fault(
        Fault(owner="owner0005@example.com", page=0, status=429, headers={"Retry-After": "1"})
    )
    gong.add_fault(Fault(owner="owner0007@example.com", page=2, kind="reset"))
    gong.add_fault(Fault(owner="owner0010@example.com", page=1, kind="badjson"))
    if permanent:
        gong.add_fault(Fault(owner=permanent, page=1, status=503, times=-1))
    return gong


def seen(run) -> tuple[list, list]:
    """Everything a target sees, but the pass version (a timestamp) in STATE."""
    messages = [m for m in run.messages if m["type"] in ("RECORD", "STATE")]
    records = [m["record"] for m in messages if m["type"] == "RECORD"]
    states = [
        m["value"]["bookmarks"]["flows"]["last_owner"] for m in messages if m["type"] == "STATE"
    ]
    return records, states


@pytest.fixture
def runs(gong_factory, tmp_path):
    def run_both(*, permanent: str | None = None, state: dict | None = None):
        results = {}
        for workers in (1, 4):
            gong = faulty_gong(gong_factory, permanent=permanent)
            config = tap_config(gong, max_concurrent_requests=workers, max_retries=2)
            results[workers] = run_tap(config, tmp_path, state=state)
        return results

    return run_both


def test_concurrency_changes_no_record_and_no_state(runs):
    results = runs()
    assert results[1].code == results[4].code == 0
    sequential, concurrent = seen(results[1]), seen(results[4])
    assert concurrent == sequential
    records = sequential[0]
    assert len(records) == len({(r["flow_owner_email"], r["id"]) for r in records})
    assert "owner0009@example.com" not in {r["flow_owner_email"] for r in records}


def test_concurrency_keeps_the_interruption_and_the_resume(runs):
    results = runs(permanent="owner0008@example.com")
    assert results[1].code == results[4].code == 1
    assert seen(results[4]) == seen(results[1])
    last = results[4].states[-1]
    assert last["bookmarks"]["flows"]["last_owner"] == "owner0007@example.com"

    resumed = runs(state=last)
    assert resumed[1].code == resumed[4].code == 0
    assert seen(resumed[4]) == seen(resumed[1])
    owners = {r["flow_owner_email"] for r in resumed[4].records()}
    assert min(owners) == "owner0008@example.com"
