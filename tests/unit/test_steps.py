"""StepsQueue and fetch_steps: which flow ids go into which steps call (issue 13)."""

from __future__ import annotations

import math

import pytest

from tap_gong_flows.steps import BATCH, FlowNotFoundError, StepsQueue, fetch_steps


def drain(queue: StepsQueue) -> list[list[str]]:
    return list(queue.full_batches())


def test_distinct_ids_in_batches_of_20_and_none_twice() -> None:
    queue = StepsQueue[str]()
    company = [f"c{i}" for i in range(15)]
    batches = []
    for owner in range(10):
        personal = [f"p{owner}-{j}" for j in range(3)]
        queue.add_owner(f"owner{owner}", company + personal)
        batches += drain(queue)
    rest = queue.rest()
    assert rest is not None
    batches.append(rest)
    ids = [i for batch in batches for i in batch]
    assert len(ids) == len(set(ids)) == 15 + 30
    assert all(len(b) == BATCH for b in batches[:-1])
    assert len(batches) == math.ceil(45 / BATCH)
    assert queue.covered == "owner9"
    assert queue.distinct == 45


def test_the_covered_never_runs_ahead_of_the_steps_handed_out() -> None:
    queue = StepsQueue[str](batch=4)
    queue.add_owner("a", ["1", "2", "3"])
    assert drain(queue) == []
    assert queue.covered is None  # a's ids wait for a full batch
    queue.add_owner("b", ["3", "4", "5"])
    assert drain(queue) == [["1", "2", "3", "4"]]
    assert queue.covered == "a"  # b's "5" is still pending
    queue.add_owner("c", ["1", "2"])  # nothing new: covered as soon as b is
    assert queue.covered == "a"
    assert queue.rest() == ["5"]
    assert queue.covered == "c"
    assert queue.rest() is None


def test_owners_with_no_new_flow_are_covered_at_once() -> None:
    queue = StepsQueue[str](batch=2)
    queue.add_owner("a", [])
    assert queue.covered == "a"
    queue.add_owner("b", ["1", "2"])
    assert drain(queue) == [["1", "2"]]
    queue.add_owner("c", ["2"])
    assert queue.covered == "c"


class FakeGong:
    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.calls: list[list[str]] = []

    def post(self, ids: list[str]) -> list[dict]:
        self.calls.append(ids)
        if any(i not in self.known for i in ids):
            raise FlowNotFoundError
        return [{"id": i} for i in ids]


def test_a_batch_without_vanished_flows_is_one_call() -> None:
    ids = [str(i) for i in range(20)]
    gong, gone = FakeGong(set(ids)), []
    assert [f["id"] for f in fetch_steps(ids, gong.post, gone.append)] == ids
    assert gong.calls == [ids]
    assert gone == []


@pytest.mark.parametrize("position", [0, 7, 19])
def test_one_vanished_flow_is_found_by_splitting_and_only_it_is_skipped(position: int) -> None:
    ids = [str(i) for i in range(20)]
    gong, gone = FakeGong(set(ids) - {ids[position]}), []
    got = [f["id"] for f in fetch_steps(ids, gong.post, gone.append)]
    assert got == [i for i in ids if i != ids[position]]
    assert gone == [ids[position]]
    assert len(gong.calls) <= 1 + 2 * math.ceil(math.log2(20))
    assert all(len(c) <= 20 for c in gong.calls)


def test_two_vanished_flows_are_both_skipped() -> None:
    ids = [str(i) for i in range(20)]
    gong, gone = FakeGong(set(ids) - {"3", "15"}), []
    got = [f["id"] for f in fetch_steps(ids, gong.post, gone.append)]
    assert sorted(gone) == ["15", "3"]
    assert len(got) == 18


def test_waiting_says_whether_a_stop_owes_a_steps_call() -> None:
    queue = StepsQueue[str](batch=3)
    assert not queue.waiting
    queue.add_owner("a", ["1", "2"])
    assert queue.waiting
    assert queue.covered is None
    queue.add_owner("b", ["2", "3"])
    assert drain(queue) == [["1", "2", "3"]]
    assert not queue.waiting
    assert queue.covered == "b"
    queue.add_owner("c", ["4"])
    assert queue.waiting
    assert queue.rest() == ["4"]
    assert not queue.waiting
    assert queue.covered == "c"
