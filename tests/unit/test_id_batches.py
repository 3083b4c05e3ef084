"""The batch size search of POST /v2/flows/prospects (id_batches.py), against a fake Gong."""

from __future__ import annotations

import itertools
import logging

import pytest

from tap_gong_flows.errors import GongTapError
from tap_gong_flows.id_batches import BatchRefusedError, IdBatches
from tests.unit.fakes import response

LOGGER = logging.getLogger("test")


class FakeGong:
    """Refuses (400) a call of more than `limit` ids or naming a `refused` id."""

    def __init__(self, limit: int | None = None, refused: set[str] | None = None) -> None:
        self.limit, self.refused = limit, refused or set()
        self.calls: list[list[str]] = []

    def post(self, ids: list[str]) -> list[dict]:
        self.calls.append(list(ids))
        if (self.limit is not None and len(ids) > self.limit) or self.refused & set(ids):
            raise BatchRefusedError(response(400, {"errors": ["Malformed request"]}), hint="")
        return [{"flowInstanceId": f"i-{i}", "crmProspectId": i} for i in ids]


def ids(n: int) -> list[str]:
    return [f"c{k:04d}" for k in range(n)]


def ask_all(batches: IdBatches, every: list[str]) -> list[dict]:
    """The way the instance pass asks: the next `size` ids each time."""
    records, rest = [], list(every)
    while rest:
        take, rest = rest[: batches.size], rest[batches.size :]
        records += batches.ask(take)
    return records


@pytest.mark.parametrize("limit", [1, 7, 30, 50, 64, 99])
def test_a_limit_below_100_is_found_in_a_few_calls_and_kept(limit: int, caplog) -> None:
    gong = FakeGong(limit=limit)
    batches = IdBatches("crmProspectsIds", gong.post, LOGGER)
    with caplog.at_level(logging.INFO):
        records = ask_all(batches, ids(1000))
    assert [r["crmProspectId"] for r in records] == ids(1000)
    assert batches.size <= limit
    assert batches.size * 2 > limit or batches.size == limit  # halving overshoots by < 2x
    floor = -(-1000 // limit)
    # The first batch's search costs at most two calls for every batch of the size it finds.
    assert len(gong.calls) <= -(-1000 // batches.size) + 2 * -(-100 // batches.size)
    if limit >= 25:  # about ceil(ids / size) calls, plus a few to find the size
        assert len(gong.calls) <= -(-1000 // batches.size) + 4
    assert len(gong.calls) >= floor
    assert batches.skipped == []
    assert sum("ids a call" in r.message for r in caplog.records) <= 7


def test_no_limit_costs_one_call_a_hundred_ids() -> None:
    gong = FakeGong()
    batches = IdBatches("crmProspectsIds", gong.post, LOGGER)
    ask_all(batches, ids(1000))
    assert [len(c) for c in gong.calls] == [100] * 10


def test_one_refused_id_is_skipped_alone_and_the_size_stays(caplog) -> None:
    gong = FakeGong(refused={"c0042"})
    batches = IdBatches("crmProspectsIds", gong.post, LOGGER)
    records = ask_all(batches, ids(300))
    assert [r["crmProspectId"] for r in records] == [i for i in ids(300) if i != "c0042"]
    assert batches.skipped == ["c0042"]
    assert batches.size == 100
    assert len(gong.calls) <= 3 + 1 + 2 * 7  # the next batches are 100 again
    assert [len(c) for c in gong.calls[-2:]] == [100, 100]
    assert "Skipping crmProspectsIds c0042" in caplog.text


def test_any_two_refused_ids_of_a_batch_are_the_only_ones_skipped() -> None:
    every = ids(16)
    for pair in itertools.combinations(every, 2):
        gong = FakeGong(refused=set(pair))
        batches = IdBatches("flowInstanceIds", gong.post, LOGGER, size=16)
        records = batches.ask(every)
        assert {r["crmProspectId"] for r in records} == set(every) - set(pair)
        assert sorted(batches.skipped) == sorted(pair)


def test_a_run_whose_every_call_is_refused_fails_after_a_few_calls() -> None:
    gong = FakeGong(refused=set(ids(100)))
    batches = IdBatches("crmProspectsIds", gong.post, LOGGER)
    with pytest.raises(GongTapError, match="the request itself is refused"):
        batches.ask(ids(100))
    assert len(gong.calls) <= 1 + 2 * 7  # down one branch to a single id, not 2n - 1


def test_a_block_of_refused_ids_after_answered_calls_is_skipped_and_the_pass_moves_on() -> None:
    every = ids(300)
    gong = FakeGong(refused=set(every[100:200]))  # e.g. ids of another CRM object, sorted together
    batches = IdBatches("crmProspectsIds", gong.post, LOGGER)
    records = ask_all(batches, every)
    assert [r["crmProspectId"] for r in records] == every[:100] + every[200:]
    assert batches.skipped == every[100:200]


def test_a_single_id_refused_after_an_answered_call_is_skipped_not_fatal() -> None:
    gong = FakeGong(refused={"c0000"})
    batches = IdBatches("crmProspectsIds", gong.post, LOGGER)
    assert len(batches.ask(["c0001"])) == 1
    assert batches.ask(["c0000"]) == []
    assert batches.skipped == ["c0000"]
