"""One pass over the CRM ids, and then over the instances it did not see open: the driver of
the flow_instances and flow_instance_changes streams, with no SDK base class.

Asked by CRM ids, Gong answers only the open instances (Pending, Running, Paused). So the pass
first asks for every CRM id in sorted order, resuming after the bookmark's `last_id`; then it
asks by instance id for each instance that was open in the last complete pass and that this
pass did not see: Gong's answer gives its final status, or no answer drops it. A change row
goes out each time a pass sees an instance's status differ from the last complete pass (a new
instance: previous status null). Gong's calls, the budget and the log are injected, so the
pass is tested in-process with fakes.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import re
import typing as t

from tap_gong_flows.id_batches import FIRST_SIZE
from tap_gong_flows.instance_state import FINISHED, GONE, OPEN, InstanceBookmark, is_open

UNKNOWN = "unknown"  # a status with white space inside, which the bookmark cannot keep
_STATUS = re.compile(r"\S+")

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from tap_gong_flows.id_batches import IdBatches


@dataclasses.dataclass
class Batch:
    """One batch's answer: the records to emit, and what `commit` adds to the bookmark."""

    instances: list[dict]
    changes: list[dict]
    seen: dict[str, str]
    last_crm_id: str | None  # None: a batch of instance ids


@dataclasses.dataclass
class PassCounts:
    """What this run of the pass did, for its summary line."""

    asked: int = 0  # CRM ids asked about
    rechecked: int = 0  # instances asked for by id (open last pass, not seen open this one)
    found: int = 0  # instances emitted
    finished: int = 0  # of them, with a finished status
    changed: int = 0  # change rows
    dropped: int = 0  # open last pass, Gong no longer answers for them


class InstancePass:
    """The instance pass over `crm_ids` (sorted), resumed from `bookmark`.

    `by_crm` and `by_instance` make the calls; `may_send()` says whether the call budget has
    room for another batch (the first batch of a run always goes out, so a run whose budget the
    owner pass spent still moves the instance pass on); `seen_at` is the run's start (UTC, ISO).
    """

    def __init__(  # noqa: PLR0917 - the pass and its collaborators
        self,
        crm_ids: list[str],
        bookmark: InstanceBookmark,
        by_crm: IdBatches,
        by_instance: IdBatches,
        may_send: Callable[[], bool],
        seen_at: str,
        logger: logging.Logger,
    ) -> None:
        self.bookmark, self._by_crm, self._by_instance = bookmark, by_crm, by_instance
        self._may_send, self._seen_at, self._logger = may_send, seen_at, logger
        if not bookmark.sets_carried:
            logger.warning(
                "The state's flow_instances bookmark lacks its instance sets (the run that "
                "wrote it was killed before its last STATE): the instance pass starts over, and "
                "every open instance counts as new (a change row with previous_status null)."
            )
            bookmark.last_id, bookmark.crm_done, bookmark.seen = None, False, {}
        if not bookmark.in_pass or bookmark.started is None:  # its change rows carry its start
            bookmark.started = seen_at
        # The sizes an earlier run of the pass found Gong takes
        by_crm.size = min(by_crm.size, bookmark.sizes[0])
        by_instance.size = min(by_instance.size, bookmark.sizes[1])
        # Gong answered this pass before (an earlier run) or answers the other kind: a single
        # id refused is then an id, not the request (id_batches.py)
        resumed = bookmark.in_pass
        by_crm.vouched = lambda: resumed or by_instance.answered > 0
        by_instance.vouched = lambda: resumed or by_crm.answered > 0
        start = 0 if bookmark.last_id is None else bisect.bisect_right(crm_ids, bookmark.last_id)
        self._crm_ids = [] if bookmark.crm_done else crm_ids[start:]
        self.resumed = bookmark.in_pass
        self.counts = PassCounts()
        self.complete = False  # the pass ended in this run
        self.stopped_at_budget = False
        self._batches = 0  # batches of this run
        self._emitted: set[str] = set()  # instance ids this run emitted

    @property
    def ended(self) -> bool:
        """Complete, or stopped at the budget: nothing of it changes in this run any more."""
        return self.complete or self.stopped_at_budget

    def next_batch(self) -> Batch | None:
        """The next batch's answer, or None when the pass is complete or the budget spent."""
        if self.ended:
            return None
        if self._batches and not self._may_send():
            self.stopped_at_budget = True
            return None
        self._batches += 1
        if self._crm_ids:
            ids = self._crm_ids[: self._by_crm.size]
            self.counts.asked += len(ids)
            return self._answer(self._by_crm.ask(ids), [], ids[-1])
        self.bookmark.crm_done = True
        unseen = sorted(set(self.bookmark.open) - set(self.bookmark.seen))
        if not unseen:
            self._end()
            return None
        ids = unseen[: self._by_instance.size]
        self.counts.rechecked += len(ids)
        return self._answer(self._by_instance.ask(ids), ids, None)

    def _answer(self, records: list[dict], asked_ids: list[str], last_crm_id: str | None) -> Batch:
        batch = Batch([], [], {}, last_crm_id)
        for record in records:
            self._take(record, batch)
        if last_crm_id is None:  # rechecked by id: Gong's CRM-id answer no longer held them
            for instance_id, status in batch.seen.items():
                if status not in OPEN:  # finished, or a status Gong added: it left the set
                    batch.seen[instance_id] = GONE
        for instance_id in asked_ids:
            if instance_id not in batch.seen and instance_id not in self._emitted:
                batch.seen[instance_id] = GONE  # Gong no longer answers for it
                self.counts.dropped += 1
        return batch

    def _take(self, record: dict, batch: Batch) -> None:
        instance_id = record["flowInstanceId"]
        if instance_id in self._emitted:  # Gong repeated it: once a run
            return
        self._emitted.add(instance_id)
        batch.instances.append(record)
        self.counts.found += 1
        previous = self.bookmark.open.get(instance_id)
        status = record.get("flowInstanceStatus")
        if not isinstance(status, str) or not status:  # no status: nothing changed that we saw
            if (known := self.bookmark.seen.get(instance_id, previous)) is not None:
                batch.seen[instance_id] = known
            return
        status = status if _STATUS.fullmatch(status) else UNKNOWN  # one token in the bookmark
        self.counts.finished += status in FINISHED
        if instance_id not in self.bookmark.seen and previous != status:  # compared once a pass
            batch.changes.append(self._change(record, previous, status))
            self.counts.changed += 1
        batch.seen[instance_id] = status

    def _change(self, record: dict, previous: str | None, status: str) -> dict:
        return {
            "flowInstanceId": record["flowInstanceId"],
            "crmProspectId": record.get("crmProspectId"),
            "flowId": record.get("flowId"),
            "previous_status": previous,
            "status": status,
            "seen_at": self._seen_at,
            "pass_started": self.bookmark.started,
        }

    def commit(self, batch: Batch) -> str:
        """The batch's records are emitted: the bookmark moves past it. Returns the batch's
        progress line."""
        self.bookmark.seen.update(batch.seen)
        self.bookmark.sizes = [self._by_crm.size, self._by_instance.size]
        c = self.counts
        if batch.last_crm_id is None:
            return (
                f"Flow instances: rechecked {c.rechecked:,} of the instances open last pass "
                f"and not seen open now: {c.finished:,} finished, {c.dropped:,} no longer "
                "answered for."
            )
        self.bookmark.last_id = batch.last_crm_id
        del self._crm_ids[: bisect.bisect_right(self._crm_ids, batch.last_crm_id)]
        return (
            f"Flow instances: asked about {c.asked:,} CRM ids of this run (through "
            f"{batch.last_crm_id}, {len(self._crm_ids):,} left), {len(batch.instances):,} "
            f"instances in this batch, {c.found:,} in this run, {c.changed:,} changed."
        )

    def _end(self) -> None:
        """Every CRM id asked and every unseen instance rechecked: the seen open ones are the
        open set the next pass compares with."""
        bookmark = self.bookmark
        bookmark.open = {i: s for i, s in bookmark.seen.items() if is_open(s)}
        bookmark.seen, bookmark.last_id, bookmark.crm_done = {}, None, False
        bookmark.sizes = [FIRST_SIZE, FIRST_SIZE]  # Gong may take more by the next pass
        bookmark.contacts_asked = set()
        self.complete = True

    def summary(self) -> str:
        """The pass's line: what this run asked and found."""
        c = self.counts
        where = (
            "the pass is complete"
            if self.complete
            else "stopped at the call budget; the next run carries on"
            if self.stopped_at_budget
            else "the pass goes on in the next run"
        )
        skipped = len(self._by_crm.skipped) + len(self._by_instance.skipped)
        return (
            f"Flow instances: asked about {c.asked:,} CRM ids and rechecked {c.rechecked:,} "
            f"instances in {self._by_crm.calls + self._by_instance.calls:,} calls; found "
            f"{c.found:,} instances, {c.finished:,} of them finished; {c.changed:,} changed "
            f"status; {c.dropped:,} no longer answered for; {skipped:,} ids skipped; {where} "
            f"({len(self.bookmark.open):,} open instances tracked)."
        )
