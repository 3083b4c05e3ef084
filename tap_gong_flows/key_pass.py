"""One pass over a sorted list of keys (owners): the driver, with no SDK base class.

The pass goes through the keys in order, resuming after the bookmark's `last_owner`; fetches
keys ahead while that pays; stops before a key when the call budget is spent; counts the keys
Gong refused; hands each completed key's ids to the steps calls; writes the bookmark after each
key; and at the end of a complete pass gives the verdict: fail a pass Gong refused whole,
activate the streams the rules of deletes.py allow. Everything it acts on is injected
(`PassParts`, `PassRules`, the run's services), so it is tested in-process with fakes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

from tap_gong_flows import deletes
from tap_gong_flows.errors import AllOwnersRefusedError, OwnerRefusedError, QuotaSpentError
from tap_gong_flows.prefetch import OrderedPrefetcher

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from tap_gong_flows.services import RunServices
    from tap_gong_flows.state import OwnerPass
    from tap_gong_flows.steps_calls import StepsCalls

    Pages = Iterable[list[dict]]

# Below these, fetching keys ahead buys nothing: see KeyPass._worth_fetching_ahead.
FAST_ANSWER = 0.005  # seconds
KEEP_UP = 0.8  # latency x rate from which one request at a time falls short of the rate


@dataclasses.dataclass(frozen=True)
class PassRules:
    """How this pass goes, from the settings."""

    workers: int  # keys fetched at once
    activates: bool  # emit_activate_version_messages
    max_refused_share: float
    first_accepted_ends: bool = False  # company_flows_only: the first accepted key lists all


@dataclasses.dataclass(frozen=True)
class PassParts:
    """What the pass does through its stream.

    `name`: the stream whose records the pass emits; `fetch(key)`: the key's pages;
    `write_state(bookmark)`: the bookmark into the stream's state and a STATE message now;
    `streams`: the names the pass may activate (those this run syncs); `stamp(version)`: their
    records carry the version; `activate(name, version)`; `make_steps(done)`: the steps calls
    of this run, or None when no steps stream syncs.
    """

    name: str
    fetch: Callable[[str], Pages]
    write_state: Callable[[dict[str, t.Any]], None]
    streams: list[str]
    stamp: Callable[[int], None]
    activate: Callable[[str, int], None]
    make_steps: Callable[[OwnerPass], StepsCalls | None]


class KeyPass:
    """A pass over `keys` (sorted), resumed from `found`, the bookmark as the run found it."""

    def __init__(  # noqa: PLR0917 - the pass and its collaborators
        self,
        keys: list[str],
        done: OwnerPass,
        found: dict[str, t.Any],
        parts: PassParts,
        rules: PassRules,
        services: RunServices,
    ) -> None:
        self.keys, self.done, self.parts, self.rules = keys, done, parts, rules
        self.services = services
        self.remaining = done.remaining(keys)
        self._found = found
        self._written: dict[str, t.Any] | None = None  # what the last STATE of this run said
        self._prefetcher: OrderedPrefetcher | None = None
        self.steps: StepsCalls | None = None
        self.started = 0  # keys started in this run
        self.finished = False  # this run has nothing more to do
        self.stopped_at_budget = False
        self._first_refusal = ""  # the first key Gong refused this run, with its answer

    def records(
        self, key: str | None, rows: Callable[[str, Pages], Iterator[dict]]
    ) -> Iterator[dict]:
        """The records of one key (`rows` turns its pages into records); None: no key is left
        for this run, so the resumed pass ends here."""
        if self.finished or self.services.day_spent_at_start:
            return
        if self._prefetcher is None:
            self._prefetcher = self._start()
        if key is None:
            self._finish_key(None, [])
        elif not self._stops_at_budget():
            yield from self._key_records(key, rows)

    def _key_records(
        self, key: str, rows: Callable[[str, Pages], Iterator[dict]]
    ) -> Iterator[dict]:
        assert self._prefetcher is not None
        self.started += 1
        ids: list[str] = []
        pages = [0]

        def counted() -> Iterator[list[dict]]:
            for page in self._prefetcher.pages(key):  # type: ignore[union-attr]
                pages[0] += 1
                yield page

        accepted = False
        try:
            for record in rows(key, counted()):
                ids.append(record["id"])
                yield record
        except OwnerRefusedError as exc:
            self.services.logger.warning("Skipping owner %s: %s", key, exc)
            self.done.refused += 1
            self._first_refusal = self._first_refusal or str(exc)
        except GeneratorExit:  # the SDK stopped reading early: not a failure of the run
            self.close()
            raise
        except BaseException as exc:
            self.services.stop.trip(exc)  # no key fetched ahead sends another request
            self.close()
            raise
        else:
            accepted = True
            self.done.accepted += 1
            self.done.add_records(self.parts.name, len(ids))
        self.services.progress.owner_finished(key, len(ids), pages[0], skipped=not accepted)
        self._finish_key(key, ids, last=accepted and self.rules.first_accepted_ends)

    def _start(self) -> OrderedPrefetcher:
        started = dt.datetime.fromtimestamp(self.done.version / 1000, dt.timezone.utc)
        self.services.progress.start_pass(
            len(self.keys), len(self.keys) - len(self.remaining), started.date().isoformat()
        )
        if self.rules.activates:
            self.parts.stamp(self.done.version)
        syncing = self.parts.streams if self.rules.activates else []
        if late := deletes.streams_a_resumed_pass_lacks(self.done, syncing):
            self.services.logger.warning(deletes.lacking_line(late))
        self.steps = self.parts.make_steps(self.done)
        if self.steps is None:
            self.done.waiting = []  # no steps stream syncs: nothing is owed
        elif self.done.waiting:  # the ids the last run owes get their steps call first
            self.steps.flush()
        # First-accepted-ends would spend a request on a key fetched ahead for nothing; one
        # worker has nothing to overlap; under a call budget a key started is finished, so
        # keys fetched ahead would overshoot it. Then each key is fetched when asked for.
        one_at_a_time = (
            self.rules.first_accepted_ends
            or self.rules.workers == 1
            or self.services.budget.limited
        )
        return OrderedPrefetcher(
            self.parts.fetch,
            self.remaining,
            self.rules.workers,
            stop=self.services.stop,
            worth_ahead=(lambda: False) if one_at_a_time else self._worth_fetching_ahead,
        )

    def _worth_fetching_ahead(self) -> bool:
        """Fetch keys ahead only while one request at a time would not keep up: when Gong
        answers slower than the rate limit's interval (at 3 calls a second, above about
        0.27 s). Under 5 ms there is no wait for threads to overlap. Until the first answer,
        assume it pays."""
        latency = self.services.progress.latency
        if latency is None:
            return True
        return latency >= FAST_ANSWER and latency * self.services.limiter.rate >= KEEP_UP

    def _finish_key(self, key: str | None, ids: list[str], *, last: bool = False) -> None:
        """Record the key as complete, send the steps calls its flows fill, and emit STATE;
        after the last key, send the rest and judge the whole pass. The bookmark names the key
        whatever its flows wait for: the ids still owed go into it (`waiting`)."""
        last = last or key is None or key == self.remaining[-1]
        self.finished = last
        if key is not None:
            self.done.last_owner = key
        if self.steps is not None:
            self._send_steps(ids, last=last)
            self.done.waiting = self.steps.waiting
            if last and self.done.waiting:  # a search the budget cut: the pass ends next run
                self.done.last_owner = self.keys[-1]  # with no owner left to fetch
                self.stopped_at_budget = True
                self.services.logger.info(
                    "The call budget cut the search for flows deleted since the list: the steps "
                    "of %d flows are still owed. The next run asks for them first, then ends "
                    "the pass.",
                    len(self.done.waiting),
                )
                last = False
        if last:
            self.done.last_owner = None
        if self.finished:
            self.close()
        self._write(self.done.bookmark())
        if last:
            self._end()

    def _send_steps(self, ids: list[str], *, last: bool) -> None:
        """The steps calls a completed key's flows fill, and after the last key the rest.
        When Gong's quota stops one, the STATE names the key if the ids owed are few enough."""
        assert self.steps is not None
        try:
            self.steps.add(ids)
            if last:
                self.steps.flush()
        except QuotaSpentError:
            if self.steps.carry is not None:
                self._write({**self.done.bookmark(), "waiting": self.steps.carry})
            raise

    def _write(self, bookmark: dict[str, t.Any]) -> None:
        """The bookmark, with the day's call count when a daily budget is set, as a STATE."""
        budget = self.services.budget
        day = budget.bookmark() if budget.per_day else {}
        self._written = bookmark
        # The streams as judged now: a stream dropped since `bookmark` was taken stays dropped.
        self.parts.write_state({**bookmark, "streams": list(self.done.streams), **day})

    def _stops_at_budget(self) -> bool:
        """Whether the call budget ends the run before the next key. A stop sends the steps
        call its waiting flows are owed (the budget kept room for it), then its STATE."""
        if self.stopped_at_budget:
            return True
        budget = self.services.budget
        reason = budget.stop_reason(self.started, steps_selected=self.steps is not None)
        if reason is None:
            return False
        self.stopped_at_budget = self.finished = True
        self.close()
        bookmark = self._last_bookmark
        if self.steps is not None and self.steps.waiting:
            self.steps.flush()
            self.done.waiting = self.steps.waiting  # only what a search left unasked
            bookmark = self.done.bookmark()
            reason = budget.spent() or reason  # the count with that call
        progress = self.services.progress
        self.services.logger.info(
            budget.stop_line(
                reason,
                done=progress.owners_done,
                this_run=self.started,
                total=len(self.keys),
                pass_started=progress.pass_started,
                after=bookmark.get("last_owner") or "the first owner",
            )
        )
        self._write(bookmark)  # the day's count as it stands now
        return True

    @property
    def _last_bookmark(self) -> dict[str, t.Any]:
        """The bookmark the last STATE of this run said, or as the run found it."""
        return self._written if self._written is not None else self._found

    def write_last_state(self) -> None:
        """After a failed or cancelled run: the bookmark as the last STATE gave it (never ahead
        of the records) once more, as the run's last message, with the day's call count (the
        run's calls still count against the day's budget). A target that keeps only a STATE
        that follows the records (target-jsonl) then has one to print for the next run."""
        budget = self.services.budget
        if self._written is None and (budget.per_day is None or not budget.used()):
            return
        self._write(self._last_bookmark)

    def _end(self) -> None:
        """Fail a pass that saw nothing; activate what the rules of deletes.py allow.

        The STATE before this already says the pass is over, so the next run starts a new one.
        """
        done = self.done
        if not done.accepted:
            raise AllOwnersRefusedError.of_pass(done.refused, self._first_refusal)
        logger = self.services.logger
        if self.steps is not None and (line := self.steps.end_of_pass_line()):
            logger.warning(line)
        if deletes.why_not_enabled(self.rules.activates):
            return
        untrusted = deletes.why_pass_not_trusted(
            done, self.rules.max_refused_share, company_only=self.rules.first_accepted_ends
        )
        if untrusted:
            logger.warning(
                "No ACTIVATE_VERSION for %s: %s. This pass emitted %d records of %d owners and "
                "its STATE, but a target deletes nothing for it.",
                self.parts.name,
                untrusted,
                done.records,
                done.accepted,
            )
            return
        if "tasks" in done.streams and (
            why := deletes.why_tasks_not_trusted(done, self.rules.max_refused_share)
        ):
            logger.warning("No ACTIVATE_VERSION for tasks: %s.", why)
            deletes.hold_back(done, ["tasks"])
        held = [name for name in self.parts.streams if name in done.streams]  # else said why
        if silent := deletes.streams_without_rows(done, held):
            logger.warning(
                "No ACTIVATE_VERSION for %s: this pass emitted no row for %s, so a target "
                "deletes nothing.",
                ", ".join(silent),
                "them" if len(silent) > 1 else "it",
            )
        for name in self.parts.streams:
            if deletes.may_activate(done, name):
                self.parts.activate(name, done.version)

    def close(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.close()
