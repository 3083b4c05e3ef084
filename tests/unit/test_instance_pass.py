"""The instance pass (instance_pass.py) over fakes: no sockets, no SDK."""

from __future__ import annotations

import logging

from tap_gong_flows.id_batches import BatchRefusedError, IdBatches
from tap_gong_flows.instance_pass import InstancePass
from tap_gong_flows.instance_state import InstanceBookmark
from tests.unit.fakes import response

LOGGER = logging.getLogger("test")
OPEN = {"Pending", "Running", "Paused"}


class FakeGong:
    """Instances by id: {instance id: (crm id, status)}; asked by CRM id it answers open ones."""

    def __init__(self, instances: dict[str, tuple[str, str]]) -> None:
        self.instances = instances
        self.calls: list[tuple[str, list[str]]] = []

    def record(self, instance_id: str) -> dict:
        crm_id, status = self.instances[instance_id]
        return {
            "flowInstanceId": instance_id,
            "crmProspectId": crm_id,
            "flowId": "f1",
            "flowInstanceStatus": status,
        }

    def by_crm(self, ids: list[str]) -> list[dict]:
        self.calls.append(("crm", list(ids)))
        return [
            self.record(i)
            for i, (crm, status) in sorted(self.instances.items())
            if crm in ids and status in OPEN
        ]

    def by_instance(self, ids: list[str]) -> list[dict]:
        self.calls.append(("instance", list(ids)))
        return [self.record(i) for i in ids if i in self.instances]


def world(n: int) -> dict[str, tuple[str, str]]:
    return {f"i{k:04d}": (f"c{k:04d}", "Running") for k in range(n)}


def run(gong: FakeGong, crm_ids: list[str], bookmark: InstanceBookmark, budget: int | None = None):
    """One run of the pass: (its records, its change rows, the pass)."""
    sent = [0]

    def may_send() -> bool:
        return budget is None or len(gong.calls) < budget

    instance_pass = InstancePass(
        crm_ids,
        bookmark,
        IdBatches("crmProspectsIds", gong.by_crm, LOGGER, size=10),
        IdBatches("flowInstanceIds", gong.by_instance, LOGGER, size=10),
        may_send=may_send,
        seen_at="2026-12-01T00:00:00+00:00",
        logger=LOGGER,
    )
    records, changes = [], []
    while (batch := instance_pass.next_batch()) is not None:
        records += batch.instances
        changes += batch.changes
        instance_pass.commit(batch)
        sent[0] += 1
    return records, changes, instance_pass


def test_a_first_pass_emits_every_open_instance_once_with_a_new_change_row_each() -> None:
    gong = FakeGong(world(25))
    records, changes, done = run(gong, [f"c{k:04d}" for k in range(25)], InstanceBookmark())
    assert sorted(r["flowInstanceId"] for r in records) == sorted(gong.instances)
    assert {c["previous_status"] for c in changes} == {None}
    assert len(changes) == 25
    assert done.complete
    assert done.bookmark.open == dict.fromkeys(gong.instances, "Running")
    assert [kind for kind, _ in gong.calls] == ["crm", "crm", "crm"]


def test_instances_finished_between_passes_get_their_final_status_and_one_change_row() -> None:
    gong = FakeGong(world(25))
    crm_ids = [f"c{k:04d}" for k in range(25)]
    _, _, first = run(gong, crm_ids, InstanceBookmark())
    gong.instances["i0003"] = ("c0003", "FinishedResponse")
    gong.instances["i0007"] = ("c0007", "Paused")
    del gong.instances["i0011"]  # Gong no longer knows it
    gong.calls.clear()
    records, changes, second = run(gong, crm_ids, first.bookmark)
    by_id = {r["flowInstanceId"]: r["flowInstanceStatus"] for r in records}
    assert by_id["i0003"] == "FinishedResponse"
    assert "i0011" not in by_id
    assert {(c["flowInstanceId"], c["previous_status"], c["status"]) for c in changes} == {
        ("i0003", "Running", "FinishedResponse"),
        ("i0007", "Running", "Paused"),
    }
    assert gong.calls[-1] == ("instance", ["i0003", "i0011"])
    assert second.counts.dropped == 1
    assert second.counts.finished == 1
    assert set(second.bookmark.open) == set(gong.instances) - {"i0003"}
    # A third pass: nothing changed, no change row, no recheck call.
    gong.calls.clear()
    _, changes, _ = run(gong, crm_ids, second.bookmark)
    assert changes == []
    assert [kind for kind, _ in gong.calls] == ["crm", "crm", "crm"]


def test_a_prospect_no_longer_asked_about_is_rechecked_by_its_instance_once() -> None:
    gong = FakeGong(world(5))
    _, _, first = run(gong, [f"c{k:04d}" for k in range(5)], InstanceBookmark())
    gong.calls.clear()
    records, changes, second = run(gong, ["c0000"], first.bookmark)
    assert gong.calls == [("crm", ["c0000"]), ("instance", ["i0001", "i0002", "i0003", "i0004"])]
    assert changes == []  # still Running
    assert len(records) == 5
    assert set(second.bookmark.open) == set(gong.instances)


def test_a_pass_over_budgeted_runs_resumes_and_together_they_have_every_instance() -> None:
    gong = FakeGong(world(95))
    crm_ids = [f"c{k:04d}" for k in range(95)]
    _, _, first = run(gong, crm_ids, InstanceBookmark())
    for k in range(0, 95, 4):  # a quarter finish
        gong.instances[f"i{k:04d}"] = (f"c{k:04d}", "FinishedNoReply")
    bookmark, seen, changes, runs = first.bookmark, {}, [], 0
    while True:
        gong.calls.clear()
        records, run_changes, done = run(gong, crm_ids, bookmark, budget=3)
        runs += 1
        assert len(gong.calls) <= 3
        seen.update({r["flowInstanceId"]: r["flowInstanceStatus"] for r in records})
        changes += run_changes
        bookmark = done.bookmark
        if done.complete:
            break
        assert done.stopped_at_budget
    assert runs == 5  # 10 crm calls and 3 recheck calls, 3 a run
    assert seen == {i: status for i, (_, status) in gong.instances.items()}
    assert sorted(c["flowInstanceId"] for c in changes) == [f"i{k:04d}" for k in range(0, 95, 4)]
    assert len(bookmark.open) == 95 - 24


def test_a_resumed_bookmark_without_its_sets_starts_the_pass_over(caplog) -> None:
    gong = FakeGong(world(5))
    records, changes, _done = run(
        gong, [f"c{k:04d}" for k in range(5)], InstanceBookmark(last_id="c0002", sets_carried=False)
    )
    assert len(records) == 5
    assert len(changes) == 5
    assert "starts over" in caplog.text


def test_a_repeated_instance_is_emitted_once_a_run() -> None:
    gong = FakeGong(world(3))
    original = gong.by_crm
    gong.by_crm = lambda ids: original(ids) * 2  # type: ignore[method-assign]
    records, changes, _ = run(gong, ["c0000", "c0001", "c0002"], InstanceBookmark())
    assert len(records) == 3
    assert len(changes) == 3


def test_a_bookmark_that_lost_its_sets_warns_even_between_passes(caplog) -> None:
    gong = FakeGong(world(3))
    _, changes, _ = run(gong, ["c0000", "c0001", "c0002"], InstanceBookmark(sets_carried=False))
    assert len(changes) == 3
    assert "lacks its instance sets" in caplog.text


def test_a_missing_or_odd_status_makes_no_change_row_and_keeps_the_bookmark_readable() -> None:
    gong = FakeGong(world(3))
    _, _, first = run(gong, ["c0000", "c0001", "c0002"], InstanceBookmark())
    gong.instances["i0000"] = ("c0000", "")  # Gong left the status out
    gong.instances["i0001"] = ("c0001", "Waiting\tfor reply")  # a new status, not one word
    _, changes, second = run(gong, ["c0000", "c0001", "c0002"], first.bookmark)
    assert [(c["flowInstanceId"], c["status"]) for c in changes] == [("i0001", "unknown")]
    # i0001 came back only when rechecked by id: not open for Gong, so it left the open set
    assert second.bookmark.open == {"i0000": "Running", "i0002": "Running"}
    again = InstanceBookmark.from_bookmark(second.bookmark.whole(), second.bookmark.whole()["sets"])
    assert again.open == second.bookmark.open


def test_the_change_rows_of_one_pass_carry_its_start_across_runs() -> None:
    gong = FakeGong(world(30))
    crm_ids = [f"c{k:04d}" for k in range(30)]
    _, first_changes, first = run(gong, crm_ids, InstanceBookmark(), budget=1)
    assert not first.complete
    instance_pass = InstancePass(
        crm_ids,
        first.bookmark,
        IdBatches("crmProspectsIds", gong.by_crm, LOGGER, size=10),
        IdBatches("flowInstanceIds", gong.by_instance, LOGGER, size=10),
        may_send=lambda: True,
        seen_at="2026-12-02T00:00:00+00:00",
        logger=LOGGER,
    )
    changes = []
    while (batch := instance_pass.next_batch()) is not None:
        changes += batch.changes
        instance_pass.commit(batch)
    assert {c["pass_started"] for c in first_changes + changes} == {"2026-12-01T00:00:00+00:00"}
    assert {c["seen_at"] for c in changes} == {"2026-12-02T00:00:00+00:00"}


def test_a_recheck_of_one_refused_id_after_answered_crm_calls_skips_it() -> None:
    gong = FakeGong(world(3))
    _, _, first = run(gong, ["c0000", "c0001", "c0002"], InstanceBookmark())
    del gong.instances["i0001"]
    refused = gong.by_instance

    def by_instance(ids: list[str]) -> list[dict]:
        if "i0001" in ids:
            raise BatchRefusedError(response(400, {"errors": ["Malformed request"]}), hint="")
        return refused(ids)

    gong.by_instance = by_instance  # type: ignore[method-assign]
    _, _, second = run(gong, ["c0000", "c0002"], first.bookmark)
    assert second.complete
    assert set(second.bookmark.open) == {"i0000", "i0002"}


def test_a_resumed_pass_whose_first_call_is_one_refused_id_skips_it() -> None:
    gong = FakeGong(world(3))

    def by_crm(ids: list[str]) -> list[dict]:
        raise BatchRefusedError(response(400, {"errors": ["Malformed request"]}), hint="")

    gong.by_crm = by_crm  # type: ignore[method-assign]
    resumed = InstanceBookmark(last_id="c0001", started="2026-11-30T00:00:00+00:00")
    _, _, done = run(gong, ["c0000", "c0001", "c0002"], resumed)
    assert done.complete  # c0002 skipped: earlier runs of this pass were answered


def test_an_odd_status_keeps_gongs_word_and_a_missing_one_on_a_new_instance_is_no_row() -> None:
    gong = FakeGong(world(2))
    gong.instances["i0000"] = ("c0000", "Opted-Out")
    gong.instances["i0001"] = ("c0001", "")
    gong.by_crm = lambda ids: [  # type: ignore[method-assign] - a status Gong counts as open
        gong.record(i) for i, (crm, _) in sorted(gong.instances.items()) if crm in ids
    ]
    _, changes, done = run(gong, ["c0000", "c0001"], InstanceBookmark())
    assert [(c["flowInstanceId"], c["status"]) for c in changes] == [("i0000", "Opted-Out")]
    assert done.bookmark.open == {"i0000": "Opted-Out"}


def test_a_pass_resumed_from_a_bookmark_without_its_start_gets_one() -> None:
    gong = FakeGong(world(3))
    _, changes, done = run(gong, ["c0000", "c0001", "c0002"], InstanceBookmark(last_id="c0000"))
    assert {c["pass_started"] for c in changes} == {"2026-12-01T00:00:00+00:00"}
    assert done.complete


def test_a_new_status_that_gong_no_longer_answers_by_crm_id_leaves_the_open_set() -> None:
    gong = FakeGong(world(2))
    _, _, first = run(gong, ["c0000", "c0001"], InstanceBookmark())
    gong.instances["i0000"] = ("c0000", "Opted-Out")  # not open: the CRM-id answer leaves it out
    gong.calls.clear()
    _, changes, second = run(gong, ["c0000", "c0001"], first.bookmark)
    assert [(c["flowInstanceId"], c["status"]) for c in changes] == [("i0000", "Opted-Out")]
    assert second.bookmark.open == {"i0001": "Running"}
    gong.calls.clear()
    run(gong, ["c0000", "c0001"], second.bookmark)
    assert [kind for kind, _ in gong.calls] == ["crm"]  # no recheck, pass after pass
