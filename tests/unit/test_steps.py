"""StepsQueue, fetch_steps and answered_flows: which flow ids go into which steps call, how a
vanished flow is found, and what of Gong's answer may be emitted (issues 13 and 17)."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from tap_gong_flows.steps import (
    BATCH,
    MAX_WAITING,
    FlowNotFoundError,
    StepsFetch,
    StepsQueue,
    answered_flows,
    fetch_steps,
)


def drain(queue: StepsQueue) -> list[list[str]]:
    return list(queue.full_batches())


# --- StepsQueue ----------------------------------------------------------------------------


def test_distinct_ids_in_batches_of_20_and_none_twice() -> None:
    queue = StepsQueue()
    company = [f"c{i}" for i in range(15)]
    batches = []
    for owner in range(10):
        queue.add(company + [f"p{owner}-{j}" for j in range(3)])
        batches += drain(queue)
        assert len(queue.waiting) < BATCH  # what a bookmark carries after each owner
    batches.append(queue.rest())
    ids = [i for batch in batches for i in batch]
    assert len(ids) == len(set(ids)) == 15 + 30
    assert all(len(b) == BATCH for b in batches[:-1])
    assert len(batches) == math.ceil(45 / BATCH)
    assert queue.waiting == []
    assert queue.rest() == []


def test_waiting_is_what_no_batch_has_handed_out() -> None:
    queue = StepsQueue(batch=4)
    queue.add(["1", "2", "3"])
    assert drain(queue) == []
    assert queue.waiting == ["1", "2", "3"]
    queue.add(["3", "4", "5"])
    assert drain(queue) == [["1", "2", "3", "4"]]
    assert queue.waiting == ["5"]
    queue.add(["1", "2"])  # nothing new
    assert queue.waiting == ["5"]
    assert queue.rest() == ["5"]
    assert queue.waiting == []


def test_a_run_starts_with_the_ids_the_last_one_left_waiting_ahead_of_its_own() -> None:
    queue = StepsQueue(["w1", "w2", "w3"], batch=4)
    assert queue.waiting == ["w1", "w2", "w3"]
    queue.add(["w2", "n1", "n2"])  # w2 is not asked twice
    assert drain(queue) == [["w1", "w2", "w3", "n1"]]
    assert queue.waiting == ["n2"]


# --- fetch_steps ---------------------------------------------------------------------------


class FakeGong:
    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.calls: list[list[str]] = []

    def post(self, ids: list[str]) -> list[dict]:
        self.calls.append(ids)
        if any(i not in self.known for i in ids):
            raise FlowNotFoundError
        return [{"id": i} for i in ids]


def ids_of(n: int) -> list[str]:
    return [str(i) for i in range(n)]


def test_a_batch_without_vanished_flows_is_one_call() -> None:
    ids = ids_of(20)
    gong = FakeGong(set(ids))
    fetched = fetch_steps(ids, gong.post)
    assert [f["id"] for f in fetched.flows] == ids
    assert gong.calls == [ids]
    assert (fetched.vanished, fetched.unresolved) == ([], [])


@pytest.mark.parametrize("position", [0, 7, 19])
def test_one_vanished_flow_costs_about_two_log2_n_calls(position: int) -> None:
    ids = ids_of(20)
    gong = FakeGong(set(ids) - {ids[position]})
    fetched = fetch_steps(ids, gong.post)
    assert sorted(f["id"] for f in fetched.flows) == sorted(i for i in ids if i != ids[position])
    assert fetched.vanished == [ids[position]]
    assert len(gong.calls) <= 1 + 2 * math.ceil(math.log2(20))
    assert all(len(c) <= 20 for c in gong.calls)


def test_every_flow_of_a_batch_vanished_costs_n_plus_3_calls() -> None:
    gong = FakeGong(set())
    fetched = fetch_steps(ids_of(20), gong.post)
    assert sorted(fetched.vanished, key=int) == ids_of(20)
    assert fetched.flows == []
    assert len(gong.calls) == 20 + 3


@pytest.mark.parametrize("n", range(1, 11))
def test_any_set_of_vanished_flows_costs_at_most_n_plus_3_calls(n: int) -> None:
    # Every subset of a batch of up to 10 ids, and the survivors' steps always come back.
    ids = ids_of(n)
    for size in range(1, n + 1):
        for gone in itertools.combinations(ids, size):
            gong = FakeGong(set(ids) - set(gone))
            fetched = fetch_steps(ids, gong.post)
            assert sorted(fetched.vanished) == sorted(gone)
            assert sorted(f["id"] for f in fetched.flows) == sorted(set(ids) - set(gone))
            assert len(gong.calls) <= n + 3, (gone, gong.calls)


def test_random_vanished_sets_of_a_full_batch_cost_at_most_23_calls() -> None:
    rng = random.Random(17)
    ids = ids_of(20)
    for _ in range(2000):
        gone = set(rng.sample(ids, rng.randint(1, 20)))
        gong = FakeGong(set(ids) - gone)
        fetched = fetch_steps(ids, gong.post)
        assert set(fetched.vanished) == gone
        assert {f["id"] for f in fetched.flows} == set(ids) - gone
        assert len(gong.calls) <= 23


def test_a_search_past_the_budget_leaves_its_ids_unresolved_after_some_progress() -> None:
    ids = ids_of(20)
    gong = FakeGong(set(ids) - {"3", "4", "5", "15"})
    fetched = fetch_steps(ids, gong.post, may_send=lambda: False)
    # The search goes on only until it has resolved some id: then the rest waits.
    resolved = {f["id"] for f in fetched.flows} | set(fetched.vanished)
    assert resolved
    assert resolved.isdisjoint(fetched.unresolved)
    assert resolved | set(fetched.unresolved) == set(ids)
    assert len(fetched.unresolved) <= MAX_WAITING
    assert len(gong.calls) <= 1 + 2 * math.ceil(math.log2(20))


def test_with_budget_left_a_search_resolves_every_id() -> None:
    ids = ids_of(20)
    gong = FakeGong(set(ids) - {"3", "15"})
    fetched = fetch_steps(ids, gong.post, may_send=lambda: True)
    assert sorted(fetched.vanished) == ["15", "3"]
    assert len(fetched.flows) == 18
    assert fetched.unresolved == []


# --- answered_flows ------------------------------------------------------------------------


def flow(flow_id: str, *steps: str, **fields: object) -> dict:
    return {"id": flow_id, "name": f"Flow {flow_id}", "steps": [{"id": s} for s in steps], **fields}


def test_only_the_flows_asked_for_and_each_once_a_run() -> None:
    emitted: set[str] = set()
    fetched = StepsFetch(flows=[flow("1", "a"), flow("9", "z"), flow("2", "b"), flow("1", "a")])
    answer = answered_flows(["1", "2"], fetched, emitted)
    assert [f["id"] for f in answer.flows] == ["1", "2"]
    assert answer.not_asked == ["9"]
    assert answer.differing_copies == 0  # the repeat of flow 1 was identical
    assert emitted == {"1", "2"}
    again = answered_flows(["1"], StepsFetch(flows=[flow("1", "a")]), emitted)
    assert again.flows == []  # emitted earlier in this run


def test_repeated_step_ids_become_one_step_and_differing_copies_are_counted() -> None:
    twice = {"id": "1", "steps": [{"id": "a", "n": 1}, {"id": "a", "n": 1}, {"id": "b"}]}
    differ = {"id": "2", "steps": [{"id": "c", "n": 1}, {"id": "c", "n": 2}]}
    answer = answered_flows(["1", "2"], StepsFetch(flows=[twice, differ]), set())
    assert [[s["id"] for s in f["steps"]] for f in answer.flows] == [["a", "b"], ["c"]]
    assert answer.flows[1]["steps"][0]["n"] == 1  # the first copy
    assert answer.differing_copies == 1


@pytest.mark.parametrize("missing", [{"steps": None}, {}])
def test_a_flow_without_a_steps_list_is_kept_and_named(missing: dict) -> None:
    bare = {"id": "1", "name": "Flow 1", **missing}
    answer = answered_flows(["1", "2"], StepsFetch(flows=[bare, flow("2", "x")]), set())
    assert answer.without_steps == ["1"]
    assert [f["id"] for f in answer.flows] == ["1", "2"]
    assert answer.flows[0]["steps"] == []


def test_left_out_is_what_was_neither_answered_nor_reported_gone() -> None:
    fetched = StepsFetch(flows=[flow("1")], vanished=["2"], unresolved=["4"])
    answer = answered_flows(["1", "2", "3", "4"], fetched, set())
    assert answer.left_out == ["3"]
