"""KeyPass in-process: a pass over owners with a fake Gong, fake streams and no sockets.

The everyday tier of the pass logic (budget stops, steps flush points, refusals, activation):
each case runs in milliseconds. The subprocess tests under tests/ keep the CLI's contract.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import typing as t

import pytest

from tap_gong_flows.budget import CallBudget
from tap_gong_flows.errors import AllOwnersRefusedError, OwnerRejectedError, QuotaSpentError
from tap_gong_flows.key_pass import KeyPass, PassParts, PassRules
from tap_gong_flows.progress import RunProgress
from tap_gong_flows.services import RunServices
from tap_gong_flows.state import OwnerPass
from tap_gong_flows.steps import FlowNotFoundError
from tap_gong_flows.steps_calls import StepsCalls
from tap_gong_flows.stopping import StopSwitch
from tests.unit.fakes import response

TODAY = dt.date(2026, 12, 1)
OWNERS = [f"o{i:02d}@x.com" for i in range(1, 7)]


class FakeLimiter:
    rate = 3.0
    waited = 0.0

    def __init__(self) -> None:
        self.requests = 0


@dataclasses.dataclass
class FakeGong:
    """Owners' pages of flow ids, owners it refuses, flows gone from the steps endpoint."""

    pages: dict[str, list[list[str]]]
    refused: set[str] = dataclasses.field(default_factory=set)
    vanished: set[str] = dataclasses.field(default_factory=set)
    quota: int | None = None  # calls it answers before the quota is spent
    limiter: FakeLimiter = dataclasses.field(default_factory=FakeLimiter)
    steps_calls: list[list[str]] = dataclasses.field(default_factory=list)

    def _call(self) -> None:
        if self.quota is not None and self.limiter.requests >= self.quota:
            raise QuotaSpentError(response(429, {"errors": ["quota"]}), 36000)
        self.limiter.requests += 1

    def fetch(self, owner: str) -> t.Iterator[list[dict]]:
        for number, page in enumerate(self.pages[owner]):
            self._call()
            if owner in self.refused and number == 0:
                answer = response(404, {"errors": ["No user found"]}, url="http://g/v2/flows")
                raise OwnerRejectedError(answer, owner)
            yield [{"id": flow_id, "visibility": "Company"} for flow_id in page]

    def post(self, flow_ids: list[str]) -> list[dict]:
        self._call()
        self.steps_calls.append(flow_ids)
        if set(flow_ids) & self.vanished:
            raise FlowNotFoundError
        return [{"id": i, "steps": [{"id": f"{i}-s1"}]} for i in flow_ids]


class Run:
    """One run of the tap, as the SDK drives the flows stream: a partition per owner left."""

    def __init__(
        self,
        gong: FakeGong,
        bookmark: dict | None = None,
        *,
        steps: bool = False,
        activates: bool = True,
        per_run: int | None = None,
        per_day: int | None = None,
        company_only: bool = False,
        max_refused_share: float = 0.5,
    ) -> None:
        self.gong = gong
        self.found = dict(bookmark or {})
        self.states: list[dict] = []
        self.activated: list[tuple[str, int]] = []
        self.stamped: list[int] = []
        self.step_rows: list[tuple[str, str]] = []
        self.rows: list[tuple[str, str]] = []  # (owner, flow id) of every record emitted
        self.logger = logging.getLogger("test-key-pass")
        limiter = gong.limiter
        limiter.requests = 0
        budget = CallBudget.from_bookmark(
            self.found, per_run, per_day, lambda: limiter.requests, TODAY
        )
        self.services = RunServices(
            stop=StopSwitch(),
            limiter=limiter,  # type: ignore[arg-type]
            session=None,  # type: ignore[arg-type]
            progress=RunProgress(limiter, self.logger),  # type: ignore[arg-type]
            make_budget=lambda: budget,
            logger=self.logger,
            started_ms=1,
        )
        names = ["flows", "flow_steps"] if steps else ["flows"]
        parts = PassParts(
            name="flows",
            fetch=gong.fetch,
            write_state=self.states.append,
            streams=names,
            stamp=self.stamped.append,
            activate=lambda name, version: self.activated.append((name, version)),
            make_steps=self._steps if steps else lambda done: None,
        )
        rules = PassRules(
            workers=1,
            activates=activates,
            max_refused_share=max_refused_share,
            first_accepted_ends=company_only,
        )
        owners = sorted(gong.pages)
        self.key_pass = KeyPass(
            owners, OwnerPass.from_bookmark(self.found), self.found, parts, rules, self.services
        )

    def _steps(self, done: OwnerPass) -> StepsCalls:
        def sync(flow_ids: list[str]) -> None:  # what the SDK's child sync does
            assert self.key_pass.steps is not None
            for flow in self.key_pass.steps.flows_for(flow_ids):
                for step in flow["steps"]:
                    self.step_rows.append((flow["id"], step["id"]))
                    done.note_emitted("flow_steps")

        return StepsCalls(
            done,
            names=["flow_steps"],
            sync=sync,
            post=self.gong.post,
            may_send=lambda: self.services.budget.spent() is None,
            activates=True,
            logger=self.logger,
        )

    def records(self) -> list[tuple[str, str]]:
        """Every record this run emits, as (owner, flow id)."""
        rows = self.rows

        def owner_rows(owner: str, pages: t.Iterable[list[dict]]) -> t.Iterator[dict]:
            for page in pages:
                for record in page:
                    rows.append((owner, record["id"]))
                    yield record

        for owner in self.key_pass.remaining or [None]:
            for _ in self.key_pass.records(owner, owner_rows):
                pass
        return rows

    @property
    def last(self) -> dict:
        return self.states[-1]


def one_page_gong(owners: int = 4, flows: int = 2) -> FakeGong:
    return FakeGong({OWNERS[i]: [[f"f{i}-{j}" for j in range(flows)]] for i in range(owners)})


# --- a pass, resumed ------------------------------------------------------------------------


def test_a_pass_emits_every_owner_writes_state_after_each_and_activates_at_the_end() -> None:
    gong = one_page_gong(3)
    run = Run(gong)
    assert len(run.records()) == 6
    assert [s["last_owner"] for s in run.states] == [OWNERS[0], OWNERS[1], None]
    version = run.last["version"]
    assert run.stamped == [version]
    assert run.activated == [("flows", version)]
    assert run.last["accepted"] == 3
    assert run.last["emitted"] == ["flows"]


def test_a_resumed_pass_fetches_only_the_owners_after_the_bookmark_under_its_version() -> None:
    gong = one_page_gong(4)
    bookmark = {"version": 77, "last_owner": OWNERS[1], "accepted": 2, "records": 4}
    run = Run(gong, bookmark)
    assert {owner for owner, _ in run.records()} == set(OWNERS[2:4])
    assert run.activated == [("flows", 77)]
    assert run.last["accepted"] == 4


def test_a_pass_that_listed_no_flow_activates_nothing() -> None:
    gong = FakeGong({OWNERS[0]: [[]], OWNERS[1]: [[]]})
    run = Run(gong)
    run.records()
    assert run.activated == []


# --- refusals -------------------------------------------------------------------------------


def test_every_owner_refused_fails_the_pass_and_activates_nothing() -> None:
    gong = one_page_gong(3)
    gong.refused = set(gong.pages)
    run = Run(gong)
    with pytest.raises(AllOwnersRefusedError, match=r"Gong refused every owner .*\(3 of 3\)"):
        run.records()
    assert run.activated == []
    assert run.last["last_owner"] is None  # the STATE before says the pass is over


def test_more_than_the_refused_share_emits_but_does_not_activate() -> None:
    gong = one_page_gong(4)
    gong.refused = set(OWNERS[1:4])
    run = Run(gong)
    assert len(run.records()) == 2
    assert run.activated == []
    assert (run.last["accepted"], run.last["refused"]) == (1, 3)


def test_refusals_are_counted_across_the_runs_of_a_pass() -> None:
    gong = one_page_gong(4)
    gong.refused = set(OWNERS[:3])
    first = Run(gong, per_run=2)
    first.records()
    assert first.last["last_owner"] == OWNERS[1]
    second = Run(gong, first.last)
    second.records()
    assert (second.last["accepted"], second.last["refused"]) == (1, 3)
    assert second.activated == []


def test_company_only_ends_at_the_first_accepted_owner() -> None:
    gong = one_page_gong(4)
    gong.refused = {OWNERS[0]}
    run = Run(gong, company_only=True)
    assert {owner for owner, _ in run.records()} == {OWNERS[1]}
    assert gong.limiter.requests == 2
    assert run.activated == [("flows", run.last["version"])]


# --- the call budget ------------------------------------------------------------------------


def test_a_run_budget_stops_before_the_next_owner_and_the_next_run_carries_on() -> None:
    gong = one_page_gong(5)
    first = Run(gong, per_run=2)
    assert {owner for owner, _ in first.records()} == set(OWNERS[:2])
    assert first.key_pass.stopped_at_budget
    assert first.last["last_owner"] == OWNERS[1]
    assert first.activated == []
    runs = [first]
    while runs[-1].last["last_owner"] is not None:
        assert len(runs) < 5
        runs.append(Run(gong, runs[-1].last, per_run=2))
        runs[-1].records()
    assert len(runs) == 3
    assert runs[-1].activated == [("flows", first.last["version"])]


def test_a_budget_smaller_than_one_owner_still_does_one_owner_a_run() -> None:
    gong = FakeGong({OWNERS[0]: [["a"], ["b"], ["c"]], OWNERS[1]: [["d"]]})
    run = Run(gong, per_run=1)
    assert run.records() == [(OWNERS[0], "a"), (OWNERS[0], "b"), (OWNERS[0], "c")]
    assert run.last["last_owner"] == OWNERS[0]


def test_a_spent_daily_budget_sends_nothing() -> None:
    gong = one_page_gong(2)
    bookmark = {"day": TODAY.isoformat(), "day_requests": 10}
    run = Run(gong, bookmark, per_day=10)
    assert run.records() == []
    assert gong.limiter.requests == 0
    assert run.states == []


def test_the_day_count_goes_into_every_state() -> None:
    gong = one_page_gong(3)
    bookmark = {"day": TODAY.isoformat(), "day_requests": 4}
    run = Run(gong, bookmark, per_day=100)
    run.records()
    assert [s["day_requests"] for s in run.states] == [5, 6, 7]


def test_a_failed_run_saves_its_day_count_with_the_last_bookmark() -> None:
    gong = one_page_gong(3)
    gong.quota = 2
    run = Run(gong, per_day=100)
    with pytest.raises(QuotaSpentError):
        run.records()
    run.key_pass.write_last_state()
    assert (run.last["last_owner"], run.last["day_requests"]) == (OWNERS[1], 2)


# --- the steps calls ------------------------------------------------------------------------


def many_flows_gong(owners: int, new_per_owner: int) -> FakeGong:
    return FakeGong(
        {
            OWNERS[i]: [["c1", "c2", *(f"p{i}-{j}" for j in range(new_per_owner))]]
            for i in range(owners)
        }
    )


def test_steps_go_out_20_distinct_ids_a_call_and_the_bookmark_carries_the_rest() -> None:
    gong = many_flows_gong(4, 8)  # 2 + 4 x 8 = 34 distinct flows
    run = Run(gong, steps=True)
    run.records()
    assert [len(call) for call in gong.steps_calls] == [20, 14]
    assert [len(s["waiting"]) for s in run.states] == [10, 18, 6, 0]
    assert [s["last_owner"] for s in run.states] == [*OWNERS[:3], None]
    assert len(run.step_rows) == len(set(run.step_rows)) == 34
    version = run.last["version"]
    assert run.activated == [("flows", version), ("flow_steps", version)]


def test_a_run_resumes_with_the_ids_the_last_one_left_waiting() -> None:
    gong = many_flows_gong(3, 1)
    first = Run(gong, steps=True, per_run=1)
    first.records()
    assert gong.steps_calls == [["c1", "c2", "p0-0"]]  # the owed call at the budget stop
    assert first.last["waiting"] == []
    bookmark = {**first.last, "waiting": ["w1", "w2"]}
    gong.steps_calls.clear()
    second = Run(gong, bookmark, steps=True)
    second.records()
    assert gong.steps_calls[0][:2] == ["w1", "w2"]  # asked for first


def test_a_quota_stop_on_a_full_batch_names_the_owner_and_carries_its_ids() -> None:
    gong = many_flows_gong(3, 9)  # owner 2 fills the first batch
    gong.quota = 2  # owner 1's page, owner 2's page; the steps call is refused
    run = Run(gong, steps=True)
    with pytest.raises(QuotaSpentError):
        run.records()
    assert run.last["last_owner"] == OWNERS[1]
    assert len(run.last["waiting"]) == 20
    assert run.activated == []


def test_a_pass_whose_flows_all_vanished_does_not_activate_the_steps_stream(caplog) -> None:
    gong = many_flows_gong(2, 3)
    gong.vanished = {i for pages in gong.pages.values() for page in pages for i in page}
    run = Run(gong, steps=True)
    with caplog.at_level(logging.WARNING):
        run.records()
    assert run.step_rows == []
    assert run.activated == [("flows", run.last["version"])]
    assert "Gong no longer knows any of the 8 flows" in caplog.text
    assert "No ACTIVATE_VERSION for flow_steps: this pass emitted no row for it" in caplog.text


def test_a_search_cut_by_the_budget_keeps_the_pass_open_until_its_ids_are_settled() -> None:
    gong = many_flows_gong(1, 18)  # one owner, 20 flows, 11 gone
    ids = gong.pages[OWNERS[0]][0]
    gong.vanished = set(ids[:11])
    runs = [Run(gong, steps=True, per_run=2)]
    runs[0].records()
    while runs[-1].last["last_owner"] is not None:
        assert len(runs) < 25, "the search does not move forward"
        assert len(runs[-1].last["waiting"]) <= 39
        runs.append(Run(gong, runs[-1].last, steps=True, per_run=2))
        runs[-1].records()
    emitted = {flow_id for run in runs for flow_id, _ in run.step_rows}
    assert emitted == set(ids[11:])
    assert runs[-1].activated == [
        ("flows", runs[0].last["version"]),
        ("flow_steps", runs[0].last["version"]),
    ]


# --- found in review: the bookmark stays loadable, the pass ends, nothing is lost -----------


def run_until_the_pass_ends(gong: FakeGong, most: int = 30, **options: t.Any) -> list[Run]:
    """Runs of one pass, each from the last STATE of the one before, until the pass ends."""
    runs = [Run(gong, **options)]
    runs[0].records()
    while runs[-1].last["last_owner"] is not None:
        assert len(runs) < most, "the pass does not move forward"
        assert len(runs[-1].last["waiting"]) <= 39
        runs.append(Run(gong, runs[-1].last, **options))  # the state loads: a shape of ours
        runs[-1].records()
    return runs


def test_searches_cut_in_several_batches_of_one_owner_never_overflow_the_bookmark() -> None:
    ids = [f"f{j:02d}" for j in range(79)]
    gong = FakeGong({OWNERS[0]: [ids[:40], ids[40:]]})
    gong.vanished = {"f05", "f15", "f25", "f35", "f45", "f55"}  # in each half of 3 batches
    runs = run_until_the_pass_ends(gong, steps=True, per_run=3)
    assert all(len(s["waiting"]) <= 39 for run in runs for s in run.states)
    emitted = {flow_id for run in runs for flow_id, _ in run.step_rows}
    assert emitted == set(ids) - gong.vanished


def test_company_only_with_ids_owed_fetches_no_further_owner() -> None:
    ids = [f"c{j:02d}" for j in range(20)]
    gong = FakeGong({owner: [ids] for owner in OWNERS[:4]})
    gong.vanished = {"c03", "c17"}
    runs = run_until_the_pass_ends(gong, steps=True, per_run=2, company_only=True)
    fetched_owners = {owner for run in runs for owner, _ in run.rows}
    assert fetched_owners == {OWNERS[0]}
    emitted = {flow_id for run in runs for flow_id, _ in run.step_rows}
    assert emitted == set(ids) - gong.vanished


def test_a_quota_stop_at_the_final_steps_call_keeps_the_last_owner() -> None:
    gong = FakeGong({OWNERS[0]: [["a", "b"]], OWNERS[1]: [["c", "d"]]})
    gong.quota = 2  # both owners' pages answered; the final steps call is refused
    run = Run(gong, steps=True, per_day=1000)
    with pytest.raises(QuotaSpentError):
        run.records()
    run.key_pass.write_last_state()
    assert run.last["last_owner"] == OWNERS[1]
    assert run.last["waiting"] == ["a", "b", "c", "d"]
    gong.quota = None
    resumed = Run(gong, run.last, steps=True)
    assert resumed.records() == []  # no owner is fetched again
    assert len(resumed.step_rows) == 4
    assert resumed.last["last_owner"] is None


def test_a_run_whose_search_was_cut_says_the_pass_goes_on(caplog) -> None:
    ids = [f"f{j:02d}" for j in range(20)]
    gong = FakeGong({OWNERS[0]: [ids]})
    gong.vanished = {"f02", "f13"}
    run = Run(gong, steps=True, per_run=2)
    with caplog.at_level(logging.INFO):
        run.records()
    assert run.key_pass.stopped_at_budget
    assert run.last["last_owner"] == OWNERS[0]
    assert run.last["waiting"]
    assert "The call budget cut the search for flows deleted since the list" in caplog.text
    assert run.activated == []
