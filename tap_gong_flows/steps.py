"""What is inside each flow: which flow ids go into which POST /v2/flows/steps call.

Pure bookkeeping, no I/O: `StepsQueue` turns the owners of a pass, as they complete, into
batches of at most 20 distinct flow ids, and says up to which owner every flow's steps have been
handed out, so the bookmark never runs ahead of the steps. `fetch_steps` finds a flow that
vanished between the list and the steps call by splitting its batch.
"""

from __future__ import annotations

import collections
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

BATCH = 20  # Gong takes at most 20 flow ids a call


Mark = t.TypeVar("Mark")


class StepsQueue(t.Generic[Mark]):
    """Distinct flow ids in the order they were first seen, handed out `batch` at a time.

    Each owner comes with a mark (the flows bookmark after it); `covered` is the mark of the last
    owner every one of whose flows is in a batch handed out.
    """

    def __init__(self, batch: int = BATCH) -> None:
        self.batch = batch
        self._seen: set[str] = set()
        self._pending: collections.deque[str] = collections.deque()
        self._added = 0  # ids queued so far
        self._handed_out = 0  # ids handed out in batches so far
        # (mark, ids queued up to and including that owner), oldest first
        self._owners: collections.deque[tuple[Mark, int]] = collections.deque()
        self.covered: Mark | None = None

    def add_owner(self, mark: Mark, flow_ids: Iterable[str]) -> None:
        """Queue the ids of a completed owner that no earlier owner of this run had."""
        for flow_id in flow_ids:
            if flow_id not in self._seen:
                self._seen.add(flow_id)
                self._pending.append(flow_id)
                self._added += 1
        self._owners.append((mark, self._added))
        self._advance()

    def full_batches(self) -> Iterator[list[str]]:
        """Every full batch queued so far."""
        while len(self._pending) >= self.batch:
            yield self._take(self.batch)

    def rest(self) -> list[str] | None:
        """The last, partial batch at the end of the pass; None when nothing is left."""
        if not self._pending:
            self._advance()
            return None
        return self._take(len(self._pending))

    def _take(self, size: int) -> list[str]:
        ids = [self._pending.popleft() for _ in range(size)]
        self._handed_out += size
        self._advance()
        return ids

    def _advance(self) -> None:
        while self._owners and self._owners[0][1] <= self._handed_out:
            self.covered = self._owners.popleft()[0]

    @property
    def waiting(self) -> bool:
        """Whether ids wait for a batch: the pass, or a run that stops, owes one more call."""
        return bool(self._pending)

    @property
    def distinct(self) -> int:
        return len(self._seen)


class FlowNotFoundError(Exception):
    """Gong answered a steps call 404 "Flow not found": some id of the batch is gone."""


def fetch_steps(
    flow_ids: list[str],
    post: Callable[[list[str]], list[dict]],
    vanished: Callable[[str], None],
) -> Iterator[dict]:
    """The flows with steps of `flow_ids`; a flow Gong no longer knows is reported to
    `vanished` and left out. A batch that fails on a vanished flow is split in halves until the
    flow is alone: one vanished flow in 20 costs at most 2 x 5 more calls."""
    try:
        flows = post(flow_ids)
    except FlowNotFoundError:
        if len(flow_ids) == 1:
            vanished(flow_ids[0])
            return
        middle = len(flow_ids) // 2
        yield from fetch_steps(flow_ids[:middle], post, vanished)
        yield from fetch_steps(flow_ids[middle:], post, vanished)
        return
    yield from flows
