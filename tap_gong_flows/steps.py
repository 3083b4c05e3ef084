"""What is inside each flow: which flow ids go into which POST /v2/flows/steps call.

Pure bookkeeping, no I/O: `StepsQueue` turns the owners of a pass, as they complete, into
batches of at most 20 distinct flow ids, and holds the few ids still waiting for a full batch,
which the bookmark carries so that it never waits for them. `fetch_steps` finds the flows that
vanished between the list and the steps call; `answered_flows` keeps of Gong's answer exactly
one copy of each flow asked for.
"""

from __future__ import annotations

import collections
import dataclasses
import typing as t

from tap_gong_flows.ids import record_id

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

BATCH = 20  # Gong takes at most 20 flow ids a call
# The most ids a bookmark carries: fewer than a batch after each owner, plus one full batch
# whose call the quota stopped.
MAX_WAITING = 2 * BATCH - 1


class StepsQueue:
    """Distinct flow ids in the order they were first seen, handed out `batch` at a time.

    `waiting` are the ids queued but not yet handed out: fewer than `batch` once the full
    batches are out. A run starts with the ids the previous run left waiting, ahead of its own.
    """

    def __init__(self, waiting: Iterable[str] = (), batch: int = BATCH) -> None:
        self.batch = batch
        self._pending: collections.deque[str] = collections.deque()
        self._seen: set[str] = set()
        self.add(waiting)

    def add(self, flow_ids: Iterable[str]) -> None:
        """Queue the ids that no earlier owner of this run had."""
        for flow_id in flow_ids:
            if flow_id not in self._seen:
                self._seen.add(flow_id)
                self._pending.append(flow_id)

    def full_batches(self) -> Iterator[list[str]]:
        """Every full batch queued so far, each taken off the queue as it is handed out."""
        while len(self._pending) >= self.batch:
            yield [self._pending.popleft() for _ in range(self.batch)]

    def rest(self) -> list[str]:
        """At the end of the pass or a run: the ids still waiting (at most two batches' worth,
        in calls of at most `batch`), taken off the queue."""
        waiting = list(self._pending)
        self._pending.clear()
        return waiting

    @property
    def waiting(self) -> list[str]:
        return list(self._pending)


class FlowNotFoundError(Exception):
    """Gong answered a steps call 404 "Flow not found": some id of the batch is gone."""


@dataclasses.dataclass
class StepsFetch:
    """What the calls for one batch gave: the flows Gong answered with, the ids it no longer
    knows, and the ids the budget left unasked (they wait for the next run)."""

    flows: list[dict] = dataclasses.field(default_factory=list)
    vanished: list[str] = dataclasses.field(default_factory=list)
    unresolved: list[str] = dataclasses.field(default_factory=list)


def fetch_steps(
    flow_ids: list[str],
    post: Callable[[list[str]], list[dict]],
    may_send: Callable[[], bool] = lambda: True,
) -> StepsFetch:
    """The flows with steps of `flow_ids`, in one call unless some flow vanished.

    Gong's 404 does not say which id is gone, so a failed batch is split in halves and both are
    asked; while exactly one half fails the search goes on inside it, and when both fail, every
    id of theirs is asked alone. One vanished flow in n costs about 1 + 2·log2(n) calls, any
    number of them at most n + 3. Once the search has resolved an id, a further call is sent
    only while `may_send()` (the budget): the ids it leaves unasked are `unresolved`, and the
    next run asks for them. Until then it goes on, so every run moves the search forward.
    """
    search = _VanishedSearch(post, may_send)
    if search.ask(flow_ids, first=True) is False and len(flow_ids) > 1:
        search.split(flow_ids)
    return search.result


class _VanishedSearch:
    def __init__(
        self, post: Callable[[list[str]], list[dict]], may_send: Callable[[], bool]
    ) -> None:
        self.post, self.may_send = post, may_send
        self.result = StepsFetch()
        self.progressed = False  # some id was answered or found gone

    def ask(self, flow_ids: list[str], *, first: bool = False) -> bool | None:
        """True if Gong answered, False if some id vanished, None if the budget kept it unsent."""
        if not first and self.progressed and not self.may_send():
            self.result.unresolved.extend(flow_ids)
            return None
        try:
            self.result.flows.extend(self.post(flow_ids))
        except FlowNotFoundError:
            if len(flow_ids) == 1:
                self.result.vanished.append(flow_ids[0])
                self.progressed = True
            return False
        self.progressed = True
        return True

    def split(self, flow_ids: list[str]) -> None:
        """`flow_ids` (two or more) failed: find which of them vanished."""
        middle = len(flow_ids) // 2
        halves = flow_ids[:middle], flow_ids[middle:]
        answers = [self.ask(half) for half in halves]
        if answers == [False, False]:
            for half in halves:
                if len(half) > 1:  # a half of one id was asked alone already
                    for flow_id in half:
                        self.ask([flow_id])
            return
        for half, answer in zip(halves, answers, strict=True):
            if answer is False and len(half) > 1:
                self.split(half)


@dataclasses.dataclass
class AnsweredFlows:
    """Gong's steps answer for one batch, as the steps streams may emit it."""

    flows: list[dict]  # one copy of each flow asked for, each `steps` a list of distinct ids
    not_asked: list[str]  # ids Gong answered with that the call did not ask for
    left_out: list[str]  # ids asked for that Gong neither answered nor reported gone
    without_steps: list[str]  # flows whose answer has no `steps` list (absent or null)
    differing_copies: int  # repeated flows or steps whose copies were not identical


def answered_flows(asked: list[str], fetched: StepsFetch, emitted: set[str]) -> AnsweredFlows:
    """Keep what the steps streams may emit: only flows asked for, each once a run (`emitted`
    holds the ids this run already emitted, and is updated), each step id once a flow."""
    wanted = set(asked)
    first_copy: dict[str, dict] = {}
    not_asked: dict[str, None] = {}
    differing = 0
    for flow in fetched.flows:
        flow_id = flow["id"]
        if flow_id not in wanted:
            not_asked[flow_id] = None
        elif flow_id in first_copy:
            differing += flow != first_copy[flow_id]
        else:
            first_copy[flow_id] = flow
    gone = set(fetched.vanished) | set(fetched.unresolved)
    left_out = [i for i in asked if i not in first_copy and i not in gone]
    flows, without_steps = [], []
    for flow_id, flow in first_copy.items():
        if flow_id in emitted:
            continue
        emitted.add(flow_id)
        steps, repeats = distinct_steps(flow.get("steps"))
        differing += repeats
        if steps is None:
            without_steps.append(flow_id)
        flows.append({**flow, "steps": steps or []})
    return AnsweredFlows(flows, list(not_asked), left_out, without_steps, differing)


def distinct_steps(steps: list[dict] | None) -> tuple[list[dict] | None, int]:
    """One copy of each step id, in Gong's order, and how many repeats differed from it."""
    if steps is None:
        return None, 0
    first: dict[str, dict] = {}
    differing = 0
    for step in steps:
        key = record_id(step["id"])
        if key in first:
            differing += step != first[key]
        else:
            first[key] = step
    return list(first.values()), differing
