"""Concurrent owners change nothing users see (issue 5): same records, order, STATE, resume."""

from __future__ import annotations

import pytest

from tests.conftest import run_tap, tap_config
from tests.gong_standin import Fault, make_world


def faulty_gong(gong_factory, *, permanent: str | None = None):
    world = make_world(owners=12, company_flows=6)
    world.rejected_owners["owner0009@example.com"] = (404, "No flows found")
    # 100 ms answers at 20 calls a second: worth fetching ahead (see _worth_fetching_ahead)
    gong = gong_factory(world, page_size=3, latency=0.1)
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
            config = tap_config(
                gong, max_concurrent_requests=workers, max_retries=2, max_requests_per_second=20
            )
            results[workers] = run_tap(config, tmp_path, state=state)
        return results

    return run_both


@pytest.mark.slow
def test_concurrency_changes_no_record_and_no_state(runs):
    results = runs()
    assert results[1].code == results[4].code == 0
    sequential, concurrent = seen(results[1]), seen(results[4])
    assert concurrent == sequential
    records = sequential[0]
    assert len(records) == len({(r["flow_owner_email"], r["id"]) for r in records})
    assert "owner0009@example.com" not in {r["flow_owner_email"] for r in records}


@pytest.mark.slow
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


def test_prefetcher_fetches_ahead_only_while_it_pays():
    import threading

    from tap_gong_flows.prefetch import OrderedPrefetcher
    from tap_gong_flows.stopping import StopSwitch

    owners = [f"owner{i:02d}" for i in range(12)]
    fetched_by: dict[str, str] = {}
    ahead = {"worth": True}

    def fetch(owner):
        fetched_by[owner] = threading.current_thread().name
        yield [{"id": f"{owner}-1"}]
        yield [{"id": f"{owner}-2"}]

    prefetcher = OrderedPrefetcher(
        fetch, owners, workers=3, stop=StopSwitch(), worth_ahead=lambda: ahead["worth"]
    )
    seen = []
    try:
        for index, owner in enumerate(owners):
            if index == 4:
                ahead["worth"] = False  # answers got fast: stop starting owners in the background
            if index == 9:
                ahead["worth"] = True
            seen += [r["id"] for page in prefetcher.pages(owner) for r in page]
    finally:
        prefetcher.close()
    assert seen == [f"{o}-{n}" for o in owners for n in (1, 2)]
    main = threading.current_thread().name
    in_main = [o for o in owners if fetched_by[o] == main]
    # 0-6 were started ahead by index 4; 7, 8 and 9 are fetched here (nothing was ahead of
    # them), and the end of 9 starts 10 and 11 ahead again
    assert in_main == ["owner07", "owner08", "owner09"]
