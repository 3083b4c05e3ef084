"""The streams: short classes that say only what differs from GongStream."""

from __future__ import annotations

import datetime as dt
import typing as t
from functools import cached_property

from typing_extensions import override

from tap_gong_flows import errors, sdk_compat
from tap_gong_flows.client import GongStream, record_id
from tap_gong_flows.errors import (
    AllOwnersRefusedError,
    GongTapError,
    OwnerRejectedError,
    QuotaSpentError,
)
from tap_gong_flows.prefetch import OrderedPrefetcher
from tap_gong_flows.state import OwnerPass
from tap_gong_flows.steps import (
    BATCH,
    MAX_WAITING,
    AnsweredFlows,
    FlowNotFoundError,
    StepsQueue,
    answered_flows,
    fetch_steps,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import requests


# Below these, fetching owners ahead buys nothing: see FlowsStream._worth_fetching_ahead.
FAST_ANSWER = 0.005  # seconds
KEEP_UP = 0.8  # latency x rate from which one request at a time falls short of the rate


def owner_order(emails: Iterable[str]) -> list[str]:
    """Owners lower-cased, each once, sorted: the deterministic order every run follows."""
    return sorted({e.strip().lower() for e in emails if e and e.strip()})


class GongUser(t.NamedTuple):
    """What owner discovery needs of one user Gong lists."""

    id: str
    email: str | None
    active: bool


class WholeListStream(GongStream):
    """A list Gong returns whole on every run (users, workspaces): a full table each time."""

    # Only when a run asks for it (a catalog selects it); the tap is about flows, and this
    # keeps a plain `tap-gong-flows --config` run to the flows and their requests.
    selected_by_default = False

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterable[dict]:
        if self.gong_tap.day_budget_spent_at_start:
            return
        if self.activates_versions:
            sdk_compat.set_stream_version(self, self.gong_tap.initialized_at)
        emitted = 0
        for record in super().get_records(context):
            emitted += 1
            yield record
        if not self.activates_versions:
            return
        if not emitted:  # a list that came back empty must not empty the table
            self.logger.warning(
                "No ACTIVATE_VERSION for %s: Gong listed none, so a target deletes nothing.",
                self.name,
            )
            return
        sdk_compat.write_activate_version(self, self.gong_tap.initialized_at)


class WorkspacesStream(WholeListStream):
    """GET /v2/workspaces: one page, no cursor."""

    name = "workspaces"
    path = "/v2/workspaces"
    records_key = "workspaces"
    primary_keys = ("id",)
    paginated = False


class UsersStream(WholeListStream):
    """GET /v2/users, paged by cursor; also where the flows stream finds its owners."""

    name = "users"
    path = "/v2/users"
    records_key = "users"
    primary_keys = ("id",)

    # Every page of /v2/users this run read, and the users on them, kept once the last page is
    # in. Whichever of the users sync and the flows' owner discovery reads the list first, the
    # other reuses it: each page is requested once a run, in whatever order the streams sync.
    _listed_pages: list[list[dict]] | None = None
    _listed_users: list[GongUser] | None = None

    @override
    def fetch_pages(self, context: t.Mapping[str, t.Any] | None) -> Iterator[list[dict]]:
        if self._listed_pages is not None:
            yield from self._listed_pages
            return
        pages: list[list[dict]] = []
        users: list[GongUser] = []
        for page in super().fetch_pages(context):
            pages.append(page)
            # Read now: once yielded, the SDK may pop properties the catalog deselects.
            users.extend(gong_user(record) for record in page)
            yield page
        self._listed_pages, self._listed_users = pages, users

    def gong_users(self) -> list[GongUser]:
        """Every user Gong lists: read once a run, by the first who asks, emitting none here."""
        if self._listed_users is None:
            for _ in self.fetch_pages(None):
                pass
        return self._listed_users or []


def _first_ids(ids: list[str], most: int = 5) -> str:
    shown = ", ".join(ids[:most])
    return f"{shown}, ..." if len(ids) > most else shown


def gong_user(record: t.Mapping[str, t.Any]) -> GongUser:
    email = record.get("emailAddress")
    return GongUser(
        str(record["id"]), email if isinstance(email, str) else None, record.get("active") is True
    )


class FlowsStream(GongStream):
    """GET /v2/flows, one partition per owner: row = flow F as seen by owner O."""

    name = "flows"
    path = "/v2/flows"
    records_key = "flows"
    primary_keys = ("flow_owner_email", "id")
    # One compact bookmark for the whole pass, not one state entry per owner.
    state_partitioning_keys: t.ClassVar[list[str]] = []

    _prefetcher: OrderedPrefetcher | None = None
    _pass_complete = False
    _first_refusal = ""  # the first owner Gong refused this run, with its answer
    # With flow_steps or flow_definitions selected: the flow ids waiting for a steps call.
    _steps: StepsQueue | None = None
    _owners_started = 0  # in this run
    stopped_at_budget = False
    _steps_batch: tuple[tuple[str, ...], list[dict]] | None = None
    _written: dict[str, t.Any] | None = None  # the bookmark the last STATE of this run said

    @override
    def query_params(self, context: t.Mapping[str, t.Any] | None) -> dict[str, t.Any]:
        params = {"flowOwnerEmail": self.context_owner(context)}
        if self.config.get("workspace_id"):
            params["workspaceId"] = self.config["workspace_id"]
        return params

    @cached_property
    def owners(self) -> list[str]:
        if self.config.get("flow_owner_emails"):
            return owner_order(self.config["flow_owner_emails"])
        return owner_order(self.discovered_owners())

    def discovered_owners(self) -> list[str]:
        """The emails of the users Gong lists: active ones, or all with include_inactive_users.

        Not an SDK child stream of users: that would sync one owner per users record, in
        Gong's order, and lose the sorted order, the compact bookmark and the concurrent fetching.
        """
        users = t.cast("UsersStream", self.gong_tap.streams["users"]).gong_users()
        if not self.config.get("include_inactive_users", False):
            users = [u for u in users if u.active]
        no_email = [u.id for u in users if not u.email]
        if no_email:
            self.logger.warning(
                "Skipping %d Gong users without an email address (ids %s): /v2/flows needs an "
                "owner email.",
                len(no_email),
                ", ".join(no_email),
            )
        emails = [u.email for u in users if u.email]
        if not emails:
            self.logger.warning("Gong lists no user to fetch flows for: no flow is emitted.")
        return emails

    @property
    def company_flows_only(self) -> bool:
        return bool(self.config.get("company_flows_only", False))

    @cached_property
    def owner_pass(self) -> OwnerPass:
        return OwnerPass.from_bookmark(self._found_bookmark)

    @cached_property
    def _found_bookmark(self) -> dict[str, t.Any]:
        """The bookmark as this run found it: where a run that covers no owner leaves it."""
        return dict(self.stream_state)

    @cached_property
    def _steps_emitted(self) -> set[str]:
        """The flows whose steps and definition this run emitted: one row per key a run."""
        return set()

    # Steps calls this run sent ids in, and ids Gong answered 404 "Flow not found" for.
    _steps_asked = 0
    _steps_vanished = 0
    # Ids a steps search left unasked at the budget: the bookmark carries them.
    _steps_unresolved: list[str] = []  # replaced, never changed in place

    @cached_property
    def remaining_owners(self) -> list[str]:
        return self.owner_pass.remaining(self.owners)

    @property
    @override
    def partitions(self) -> list[dict] | None:
        if self.gong_tap.day_budget_spent_at_start:  # not even /v2/users to find the owners
            return []
        return [{"flow_owner_email": owner} for owner in self.remaining_owners]

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterable[dict]:
        if self._pass_complete or self.gong_tap.day_budget_spent_at_start:
            return  # company_flows_only: an earlier owner gave every Company flow
        if self._prefetcher is None:
            self._prefetcher = self._start_pass()
        if context is not None and self._budget_stops_before_next_owner():
            return
        if context is None:  # no owner left to fetch: the resumed pass is complete
            self._finish_owner(None, [])
            return
        owner = context["flow_owner_email"]
        self._owners_started += 1
        workspace_id = self.config.get("workspace_id") or None
        seen: dict[str, None] = {}  # ids in the order Gong listed them
        pages = 0
        accepted = False
        try:
            for records in self._prefetcher.pages(owner):
                pages += 1
                for record in records:
                    if record["id"] in seen:  # Gong repeated a flow across pages
                        continue
                    if self.company_flows_only and record.get("visibility") != "Company":
                        continue
                    seen[record["id"]] = None
                    record["flow_owner_email"] = owner
                    record["workspace_id"] = workspace_id
                    yield record
        except OwnerRejectedError as exc:
            self.logger.warning("Skipping owner %s: %s", owner, exc)
            self.gong_tap.progress.owner_finished(owner, len(seen), pages, skipped=True)
            self.owner_pass.refused += 1
            self._first_refusal = self._first_refusal or str(exc)
        except GeneratorExit:  # the SDK stopped reading early: not a failure of the run
            self.close()
            raise
        except BaseException as exc:
            self.gong_tap.stop.trip(exc)  # no owner fetched ahead sends another request
            self.close()
            raise
        else:
            accepted = True
            self.gong_tap.progress.owner_finished(owner, len(seen), pages, skipped=False)
            self.owner_pass.accepted += 1
            self.owner_pass.add_records(self.name, len(seen))
        # company_flows_only: the first owner Gong accepts lists every Company flow; pass done
        self._finish_owner(owner, list(seen), last=accepted and self.company_flows_only)

    def _start_pass(self) -> OrderedPrefetcher:
        owners = self.remaining_owners
        started = dt.datetime.fromtimestamp(self.owner_pass.version / 1000, dt.timezone.utc)
        self.gong_tap.progress.start_pass(
            len(self.owners), len(self.owners) - len(owners), started.date().isoformat()
        )
        if self.activates_versions:
            for stream in self.activated_streams:
                sdk_compat.set_stream_version(stream, self.owner_pass.version)
        self._judge_streams_of_pass()
        if self.steps_streams:
            self._steps = StepsQueue(self.owner_pass.waiting)
        else:
            self.owner_pass.waiting = []  # nothing emits their steps: the pass will not activate
        workers = int(self.config["max_concurrent_requests"])
        # company_flows_only stops at the first owner Gong accepts, so an owner fetched ahead
        # would be a request spent for nothing; with one request at a time there is nothing to
        # overlap. Both fetch each owner in this thread, when its pages are asked for.
        # With a call budget, one owner at a time too: an owner that was started is finished, so
        # owners fetched ahead would overshoot the budget by their pages.
        one_at_a_time = self.company_flows_only or workers == 1 or self.gong_tap.budget.limited
        return OrderedPrefetcher(
            lambda owner: self.fetch_pages({"flow_owner_email": owner}),
            owners,
            workers,
            stop=self.gong_tap.stop,
            worth_ahead=(lambda: False) if one_at_a_time else self._worth_fetching_ahead,
        )

    def _judge_streams_of_pass(self) -> None:
        """Which streams this pass may activate at its end: those every run of it syncs.

        A stream that an earlier run of the pass did not sync in full (not selected, a steps
        answer that left out flows, or a run without emit_activate_version_messages whose
        records carry no version) is missing rows, so activating it would delete rows still in
        Gong.
        """
        names = (
            [stream.name for stream in self.activated_streams] if self.activates_versions else []
        )
        if self.owner_pass.last_owner is None:  # a new pass
            self.owner_pass.streams = names
            return
        late = [name for name in names if name not in self.owner_pass.streams]
        self.owner_pass.keep_streams(names)
        if late and self.activates_versions:
            self.logger.warning(
                "No ACTIVATE_VERSION for %s at the end of this pass: an earlier run of the pass "
                "did not sync %s in full (not selected, a steps answer that left out flows, or "
                "emit_activate_version_messages off), so a target would delete rows still in "
                "Gong. The next pass activates %s.",
                ", ".join(late),
                "them" if len(late) > 1 else "it",
                "them" if len(late) > 1 else "it",
            )

    def _worth_fetching_ahead(self) -> bool:
        """Fetch owners ahead only while one request at a time would not keep up.

        That is when Gong answers slower than the rate limit's interval (at 3 calls a second,
        above about 0.27 s). Under 5 ms there is no wait for threads to overlap, only the cost of
        handing pages between them. Until the first answer, assume it pays.
        """
        latency = self.gong_tap.progress.latency
        if latency is None:
            return True
        return latency >= FAST_ANSWER and latency * self.gong_tap.limiter.rate >= KEEP_UP

    def _finish_owner(self, owner: str | None, flow_ids: list[str], *, last: bool = False) -> None:
        """Record the owner as complete, fetch the steps that fill a batch, and emit STATE;
        after the last owner, fetch the remaining steps and judge the whole pass.

        The bookmark names the owner whatever its flows wait for: the ids still waiting for a
        steps call (fewer than a batch) go into it, and the next run asks for them first.
        """
        last = last or owner is None or owner == self.remaining_owners[-1]
        self._pass_complete = last
        if owner is not None:
            self.owner_pass.last_owner = owner
        if self._steps is not None:
            self._steps.add(flow_ids)
            self._send_full_batches()
            if last:
                self._send_steps(self._steps.rest())
            self.owner_pass.waiting = self._steps_unresolved + self._steps.waiting
            # a search the budget cut short leaves ids for the next run: the pass goes on
            last = last and not self.owner_pass.waiting
        if last:
            self.owner_pass.last_owner = None
        self._write_bookmark(self.owner_pass.bookmark())
        if self._pass_complete:
            self.close()
        sdk_compat.write_state(self)
        if last:
            self._end_pass()

    def _send_full_batches(self) -> None:
        """The steps calls of every full batch. When Gong's quota stops one, the STATE names
        this owner and carries the ids still owed, if there are few enough (at most 39), so
        the next run does not refetch an owner whose flows were all emitted."""
        assert self._steps is not None
        for batch in self._steps.full_batches():
            try:
                self._send_steps(batch)
            except QuotaSpentError:
                owed = [*self._steps_unresolved, *batch, *self._steps.waiting]
                if len(owed) <= MAX_WAITING:
                    self._write_bookmark({**self.owner_pass.bookmark(), "waiting": owed})
                    sdk_compat.write_state(self)
                raise

    def _write_bookmark(self, bookmark: dict[str, t.Any]) -> None:
        """The flows bookmark, with the day's call count when a daily budget is set."""
        day = self.gong_tap.budget.bookmark() if self.gong_tap.budget.per_day else {}
        self._written = bookmark
        # The streams as judged now: a stream dropped since `bookmark` was taken stays dropped.
        streams = {"streams": list(self.owner_pass.streams)}
        self.stream_state.update({**bookmark, **streams, **day})

    def save_day_count(self) -> None:
        """After a failed run: its calls still count against the day's budget, so the STATE says
        them, with the bookmark as the last STATE gave it (never ahead of the records)."""
        if self.gong_tap.budget.per_day is None or not self.gong_tap.budget.used():
            return
        self._write_bookmark(self._last_bookmark)
        sdk_compat.write_state(self)

    def _budget_stops_before_next_owner(self) -> bool:
        """Whether the call budget ends the run before the next owner starts (never before the
        run's first owner: a budget smaller than one owner's calls still does one owner a run)."""
        if self.stopped_at_budget:
            return True
        # Room is kept for the steps call a stop owes the flows waiting for a full batch.
        owed = 1 if self._steps is not None else 0
        reason = self.gong_tap.budget.spent(owed)
        if reason is None or not self._owners_started:
            return False
        self.stopped_at_budget = True
        self.close()
        bookmark = self._last_bookmark
        if self._steps is not None and (waiting := self._steps.rest()):
            # The flows still waiting for a full batch get the steps call the budget kept room
            # for (one call, fewer than 20 ids); only what a search for vanished flows could
            # not ask within the budget is left for the next run.
            self._send_steps(waiting)
            self.owner_pass.waiting = list(self._steps_unresolved)
            bookmark = self.owner_pass.bookmark()
            reason = self.gong_tap.budget.spent() or reason  # the count with that call
        smaller = ""
        per_run = self.gong_tap.budget.per_run
        if (
            self._owners_started == 1
            and per_run is not None
            and per_run < self.gong_tap.budget.used()
        ):
            smaller = (
                " The budget is smaller than the calls one owner needs: each run does one owner."
            )
        done = self.gong_tap.progress.owners_done
        first = done - self._owners_started + 1
        self.logger.info(
            "Stopping at the call budget: %s. This run did owners %s to %s of %s (the pass, "
            "started %s, has done %s of them); the next run starts after %s.%s",
            reason,
            f"{first:,}",
            f"{done:,}",
            f"{len(self.owners):,}",
            self.gong_tap.progress.pass_started,
            f"{done:,}",
            bookmark.get("last_owner") or "the first owner",
            smaller,
        )
        self._write_bookmark(bookmark)  # the day's count as it stands now
        sdk_compat.write_state(self)
        return True

    @property
    def _last_bookmark(self) -> dict[str, t.Any]:
        """The bookmark the last STATE of this run said, or as the run found it."""
        return self._written if self._written is not None else self._found_bookmark

    @property
    def steps_streams(self) -> list[GongStream]:
        """flow_steps and flow_definitions, those of them that this run syncs."""
        return [s for s in self.child_streams if s.selected]  # type: ignore[misc]

    @property
    def activated_streams(self) -> list[GongStream]:
        """The streams whose version a trusted pass activates: flows and its selected children."""
        return [self, *self.steps_streams] if self.selected else self.steps_streams

    @override
    def generate_child_contexts(
        self, record: dict, context: t.Mapping[str, t.Any] | None
    ) -> Iterable[dict | None]:
        return ()  # the steps streams sync once per batch of 20 flows, not once per flow record

    def _send_steps(self, flow_ids: list[str]) -> None:
        """Sync the steps streams for these ids, in calls of at most 20."""
        for start in range(0, len(flow_ids), BATCH):
            sdk_compat.sync_children(self, {"flow_ids": flow_ids[start : start + BATCH]})

    def flows_with_steps(self, flow_ids: list[str]) -> list[dict]:
        """Gong's flows with steps for one batch, each once a run and only those asked for:
        one steps call (more only to find a flow that vanished), shared by flow_steps and
        flow_definitions."""
        key = tuple(flow_ids)
        if self._steps_batch is None or self._steps_batch[0] != key:
            steps = t.cast("FlowStepsStream", self.gong_tap.streams["flow_steps"])
            fetched = fetch_steps(
                flow_ids, steps.post, lambda: self.gong_tap.budget.spent() is None
            )
            self._steps_asked += len(flow_ids)
            self._steps_vanished += len(fetched.vanished)
            self._steps_unresolved = [*self._steps_unresolved, *fetched.unresolved]
            for flow_id in fetched.vanished:
                self._vanished(flow_id)
            answer = answered_flows(flow_ids, fetched, self._steps_emitted)
            self._report_answer(flow_ids, answer)
            self._steps_batch = (key, answer.flows)
        return self._steps_batch[1]

    def _report_answer(self, asked: list[str], answer: AnsweredFlows) -> None:
        """Say what of a steps answer is not emitted, and hold back the activation it makes
        unsafe: a flow left out, or one without a steps list, is an incomplete answer, and
        activating would delete rows still in Gong."""
        path = FlowStepsBase.path
        if answer.not_asked:
            self.logger.warning(
                "Gong's answer to POST %s carried %d flows the call did not ask for (%s): they "
                "are not emitted.",
                path,
                len(answer.not_asked),
                _first_ids(answer.not_asked),
            )
        if answer.differing_copies:
            self.logger.warning(
                "Gong's answer to POST %s repeated %d flows or steps with different content: "
                "the first copy of each is emitted.",
                path,
                answer.differing_copies,
            )
        if answer.left_out:
            self._hold_back(
                [stream.name for stream in self.steps_streams],
                f"Gong's answer to POST {path} left out {len(answer.left_out)} of the "
                f"{len(asked)} flows asked for ({', '.join(answer.left_out)}): their steps are "
                "not emitted",
            )
        if answer.without_steps:
            self._hold_back(
                ["flow_steps"],
                f"Gong's answer to POST {path} has no steps list for {len(answer.without_steps)}"
                f" flows ({', '.join(answer.without_steps)}): their definitions are emitted, "
                "their steps are not",
                " Gong's schema does not mark steps as required; if Gong leaves it out for flows "
                "without steps, this keeps their rows rather than risk deleting them.",
            )

    def _hold_back(self, names: list[str], what: str, why: str = "") -> None:
        """Warn of an incomplete steps answer; the streams `names` are not activated this pass."""
        self.owner_pass.keep_streams(n for n in self.owner_pass.streams if n not in names)
        held_back = (
            f", and this pass sends no ACTIVATE_VERSION for {', '.join(names)}"
            if self.activates_versions and names
            else ""
        )
        self.logger.warning("%s%s.%s", what, held_back, why)

    def _vanished(self, flow_id: str) -> None:
        self.logger.warning(
            "Skipping the steps of flow %s: Gong listed it but no longer knows it (404 Flow not "
            "found from POST /v2/flows/steps); it was deleted after the list.",
            flow_id,
        )

    def _end_pass(self) -> None:
        """Activate the pass's version only if the pass can be trusted; fail one that saw nothing.

        The STATE before this already says the pass is over, so the next run starts a new one.
        """
        done = self.owner_pass
        if not done.accepted:
            raise AllOwnersRefusedError(
                f"Gong refused every owner of this pass ({done.refused} of {done.refused}): "
                "nothing was fetched and no row is deleted. Check flow_owner_emails, api_url and "
                f"that the credentials are for this company. Gong's answer for the first: "
                f"{self._first_refusal or '(refused in an earlier run of this pass)'}"
                if done.refused
                else "There was no owner to fetch flows for: nothing was fetched and no row is "
                "deleted. Set flow_owner_emails, or check that Gong lists users with emails."
            )
        if not self.activates_versions:
            return
        distrust = done.distrust(
            float(self.config["max_refused_owner_share"]), company_only=self.company_flows_only
        )
        if distrust:
            self.logger.warning(
                "No ACTIVATE_VERSION for %s: %s. This pass emitted %d records of %d owners and "
                "its STATE, but a target deletes nothing for it.",
                self.name,
                distrust,
                done.records,
                done.accepted,
            )
            return
        if self._steps_asked and self._steps_vanished == self._steps_asked:
            self.logger.warning(
                "Gong no longer knows any of the %d flows this run asked steps for (404 Flow "
                "not found from POST %s for every one): no step or definition was emitted.",
                self._steps_asked,
                FlowStepsBase.path,
            )
        silent = [s.name for s in self.activated_streams if s.name not in done.emitted]
        if silent:
            self.logger.warning(
                "No ACTIVATE_VERSION for %s: this pass emitted no row for %s, so a target "
                "deletes nothing.",
                ", ".join(silent),
                "them" if len(silent) > 1 else "it",
            )
        for stream in self.activated_streams:
            if stream.name in done.streams and stream.name in done.emitted:
                sdk_compat.write_activate_version(stream, done.version)

    def close(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.close()


class FlowStepsBase(GongStream):
    """POST /v2/flows/steps for a batch of at most 20 flow ids the owner pass saw.

    An SDK child of flows, so selecting it runs the owner pass even when flows itself is not
    selected; flows syncs it once per batch, and both children share each batch's one call.
    """

    parent_stream_type = FlowsStream
    selected_by_default = False
    path = "/v2/flows/steps"
    records_key = "flows"
    paginated = False
    payload_as_json = True
    # One bookmark for the stream, not one state entry per batch.
    state_partitioning_keys: t.ClassVar[list[str]] = []

    def __init__(self, tap: t.Any) -> None:
        super().__init__(tap, http_method="POST")

    @override
    def prepare_request_payload(
        self, context: t.Mapping[str, t.Any] | None, next_page_token: str | None
    ) -> dict | None:
        return {"flowIds": list(context["flow_ids"]) if context else []}

    @override
    def validate_response(self, response: requests.Response) -> None:
        if response.status_code == 404:
            messages = " ".join(str(e) for e in errors.gong_body(response).get("errors") or [])
            if "flow not found" in messages.lower():
                raise FlowNotFoundError(messages)
        super().validate_response(response)

    def post(self, flow_ids: list[str]) -> list[dict]:
        """One steps call (retried like every call), its flows checked at the door; a flow
        without a steps list (absent or null) is kept as it is, for the caller to judge."""
        flows = [flow for page in self.fetch_pages({"flow_ids": flow_ids}) for flow in page]
        for flow in flows:
            steps = flow.get("steps")
            if steps is not None and (
                not isinstance(steps, list)
                or not all(
                    isinstance(step, dict)
                    and isinstance(step.get("id"), (str, int))
                    and not isinstance(step.get("id"), bool)
                    for step in steps
                )
            ):
                raise GongTapError(
                    f"Gong answered {self.path} with steps of the wrong shape for flow "
                    f"{flow['id']}: expected a list of objects that each have an 'id'."
                )
        return flows

    @property
    def flows_stream(self) -> FlowsStream:
        return t.cast("FlowsStream", self.gong_tap.streams["flows"])

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterable[dict]:
        flows = self.flows_stream
        emitted = False
        for flow in flows.flows_with_steps(list(context["flow_ids"]) if context else []):
            for row in self.rows(flow):
                if not emitted:
                    flows.owner_pass.note_emitted(self.name)
                    emitted = True
                yield row

    def rows(self, flow: dict) -> Iterable[dict]:
        raise NotImplementedError


class FlowStepsStream(FlowStepsBase):
    """One row per step of each flow: what the flow does, in order."""

    name = "flow_steps"
    primary_keys = ("flow_id", "id")

    @override
    def rows(self, flow: dict) -> Iterable[dict]:
        for step in flow["steps"]:
            yield {**step, "id": record_id(step["id"]), "flow_id": flow["id"]}


class FlowDefinitionsStream(FlowStepsBase):
    """One row per distinct flow: its metadata and description as the steps endpoint gives them."""

    name = "flow_definitions"
    primary_keys = ("id",)

    @override
    def rows(self, flow: dict) -> Iterable[dict]:
        yield {k: v for k, v in flow.items() if k != "steps"}
