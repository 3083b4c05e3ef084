"""The steps calls of one run: when ids go out, what Gong's answers give the steps streams, and
what an incomplete answer holds back.

`StepsQueue`, `fetch_steps` and `answered_flows` (steps.py) decide; this object carries their
decisions out over one run and says in the log what was not emitted and why.
"""

from __future__ import annotations

import logging
import typing as t

from tap_gong_flows import deletes
from tap_gong_flows.errors import QuotaSpentError
from tap_gong_flows.steps import (
    BATCH,
    MAX_WAITING,
    AnsweredFlows,
    StepsQueue,
    answered_flows,
    fetch_steps,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from tap_gong_flows.state import OwnerPass

PATH = "/v2/flows/steps"


class StepsCalls:
    """Steps calls for the flows of a pass, 20 distinct ids a call, each flow emitted once a run.

    `sync(ids)` has the steps streams sync one batch (they call `flows_for` for its flows);
    `post(ids)` is one steps call; `may_send()` says whether the budget has room for a call.
    """

    def __init__(
        self,
        done: OwnerPass,
        *,
        names: list[str],
        sync: Callable[[list[str]], None],
        post: Callable[[list[str]], list[dict]],
        may_send: Callable[[], bool],
        activates: bool,
        logger: logging.Logger,
    ) -> None:
        self.done, self.names = done, names
        self._sync, self._post, self._may_send = sync, post, may_send
        self._activates, self._logger = activates, logger
        self._queue = StepsQueue(done.waiting)
        self._unresolved: list[str] = []  # ids a search left unasked at the budget
        self._emitted: set[str] = set()  # flows whose steps and definition this run emitted
        self._batch: tuple[tuple[str, ...], list[dict]] | None = None
        self.asked = 0  # ids this run asked steps for
        self.vanished = 0  # ids Gong answered 404 "Flow not found" for
        # When Gong's quota stopped a batch's call: the ids the run still owes, if few enough
        # for the bookmark (MAX_WAITING); None otherwise.
        self.carry: list[str] | None = None

    @property
    def waiting(self) -> list[str]:
        """The ids whose steps call is still owed: the bookmark carries them."""
        return [*self._unresolved, *self._queue.waiting]

    def add(self, flow_ids: Iterable[str]) -> None:
        """Queue a completed owner's flows and send every batch they fill."""
        self._queue.add(flow_ids)
        for batch in self._queue.full_batches():
            self._send(batch)

    def flush(self) -> None:
        """Send the ids still waiting: first thing in a run that carries some, at the end of
        the pass, or at a stop at the budget (which kept room for that call)."""
        waiting = self._queue.rest()
        for start in range(0, len(waiting), BATCH):
            self._send(waiting[start : start + BATCH], waiting[start + BATCH :])

    def _send(self, batch: list[str], after: list[str] | None = None) -> None:
        """One batch's steps calls. When Gong's quota stops them, `carry` is what the run still
        owes, if few enough for the bookmark."""
        try:
            self._sync(batch)
        except QuotaSpentError:
            owed = [*self._unresolved, *batch, *(after or []), *self._queue.waiting]
            self.carry = owed if len(owed) <= MAX_WAITING else None
            raise

    def _may_search_on(self) -> bool:
        """The budget may cut one search a run: its unasked ids wait for the next run (at most
        19). A later search of the same run goes to its end, so the ids a bookmark carries stay
        fewer than 40 (a run's last owner may send a few calls past the budget)."""
        return bool(self._unresolved) or self._may_send()

    def flows_for(self, flow_ids: list[str]) -> list[dict]:
        """The flows with steps of one batch, as the steps streams may emit them: one call
        (more only to find a vanished flow), shared by both streams."""
        key = tuple(flow_ids)
        if self._batch is None or self._batch[0] != key:
            fetched = fetch_steps(flow_ids, self._post, self._may_search_on)
            self.asked += len(flow_ids)
            self.vanished += len(fetched.vanished)
            self._unresolved = [*self._unresolved, *fetched.unresolved]
            for flow_id in fetched.vanished:
                self._logger.warning(
                    "Skipping the steps of flow %s: Gong listed it but no longer knows it (404 "
                    "Flow not found from POST %s); it was deleted after the list.",
                    flow_id,
                    PATH,
                )
            answer = answered_flows(flow_ids, fetched, self._emitted)
            self._report(flow_ids, answer)
            self._batch = (key, answer.flows)
        return self._batch[1]

    @property
    def owed(self) -> bool:
        """Whether a search the budget cut left ids for the next run."""
        return bool(self._unresolved)

    def end_of_pass_line(self) -> str | None:
        """One line when every flow this run asked steps for had vanished."""
        if not self.asked or self.vanished != self.asked:
            return None
        return (
            f"Gong no longer knows any of the {self.asked} flows this run asked steps for (404 "
            f"Flow not found from POST {PATH} for every one): no step or definition was emitted."
        )

    def _report(self, asked: list[str], answer: AnsweredFlows) -> None:
        """Say what of an answer is not emitted; hold back what an incomplete answer makes
        unsafe to activate (a flow left out, or one without a steps list)."""
        if answer.not_asked:
            self._logger.warning(
                "Gong's answer to POST %s carried %d flows the call did not ask for (%s): they "
                "are not emitted.",
                PATH,
                len(answer.not_asked),
                first_ids(answer.not_asked),
            )
        if answer.differing_copies:
            self._logger.warning(
                "Gong's answer to POST %s repeated %d flows or steps with different content: "
                "the first copy of each is emitted.",
                PATH,
                answer.differing_copies,
            )
        if answer.left_out:
            self._hold_back(
                self.names,
                f"Gong's answer to POST {PATH} left out {len(answer.left_out)} of the "
                f"{len(asked)} flows asked for ({', '.join(answer.left_out)}): their steps are "
                "not emitted",
            )
        if answer.without_steps:
            self._hold_back(
                [name for name in self.names if name == "flow_steps"],
                f"Gong's answer to POST {PATH} has no steps list for {len(answer.without_steps)}"
                f" flows ({', '.join(answer.without_steps)}): their definitions are emitted, "
                "their steps are not",
                " Gong's schema does not mark steps as required; if Gong leaves it out for flows "
                "without steps, this keeps their rows rather than risk deleting them.",
            )

    def _hold_back(self, names: list[str], what: str, why: str = "") -> None:
        deletes.hold_back(self.done, names)
        held = (
            f", and this pass sends no ACTIVATE_VERSION for {', '.join(names)}"
            if self._activates and names
            else ""
        )
        self._logger.warning("%s%s.%s", what, held, why)


def first_ids(ids: list[str], most: int = 5) -> str:
    shown = ", ".join(ids[:most])
    return f"{shown}, ..." if len(ids) > most else shown
