"""The streams: short classes that say only what their endpoint is."""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from functools import cached_property

from typing_extensions import override

from tap_gong_flows import deletes, errors, sdk_compat
from tap_gong_flows.client import GongStream
from tap_gong_flows.crm_ids import one_crm_id
from tap_gong_flows.errors import (
    GongFatalError,
    GongTapError,
    OwnerRefusedError,
    OwnerRejectedError,
)
from tap_gong_flows.id_batches import BatchRefusedError, IdBatches
from tap_gong_flows.ids import id_problem, record_id
from tap_gong_flows.instance_pass import InstancePass
from tap_gong_flows.instance_state import InstanceBookmark
from tap_gong_flows.key_pass import KeyPass, PassParts, PassRules
from tap_gong_flows.state import OwnerPass
from tap_gong_flows.steps import FlowNotFoundError
from tap_gong_flows.steps_calls import StepsCalls

# A tasks answer about the owner, not the request: Gong refuses that one user ("userId" is not).
_ABOUT_USER = re.compile(r"\busers?\b|licen[cs]e|deactivated|inactive", re.IGNORECASE)

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import requests
    from singer_sdk import Tap
    from singer_sdk.streams import Stream

    from tap_gong_flows.pagination import GongCursorPaginator
    from tap_gong_flows.services import RunServices


def _no_steps(done: OwnerPass) -> None:  # noqa: ARG001 - no steps stream syncs
    return None


def _stamp_all(streams: Iterable[Stream], version: int) -> None:
    for stream in streams:
        deletes.stamp(stream, version)


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
        if self.services.day_spent_at_start:
            return
        version = self.services.started_ms
        if self.activates_versions:
            deletes.stamp(self, version)
        emitted = 0
        for record in super().get_records(context):
            emitted += 1
            yield record
        if self.selected:
            self.services.progress.emitted(self.name, emitted)
        if deletes.why_not_enabled(self.activates_versions):
            return
        if why := deletes.why_list_not_complete(emitted):
            self.logger.warning(
                "No ACTIVATE_VERSION for %s: %s, so a target deletes nothing.", self.name, why
            )
            return
        deletes.activate(self, version)


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

    @override
    def page_read(self, paginator: GongCursorPaginator) -> None:
        if paginator.total:  # owner discovery can take a while: say how far it is
            pages = max(1, -(-paginator.total * paginator.count // max(1, paginator.received)))
            self.logger.info(
                "Read users page %d of about %d (%d of %d users).",
                paginator.count,
                pages,
                paginator.received,
                paginator.total,
            )

    def gong_users(self) -> list[GongUser]:
        """Every user Gong lists: read once a run, by the first who asks, emitting none here."""
        if self._listed_users is None:
            for _ in self.fetch_pages(None):
                pass
        return self._listed_users or []

    def owner_emails(self, include_inactive: bool) -> list[str]:
        """The emails of the users Gong lists: active ones, or all with `include_inactive`.

        Not the parent of flows: the SDK would sync one owner per users record, in Gong's
        order, and lose the sorted order, the compact bookmark and the concurrent fetching.
        """
        users = self.gong_users()
        if not include_inactive:
            users = [u for u in users if u.active]
        if no_email := [u.id for u in users if not u.email]:
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

    def __init__(self, tap: Tap, services: RunServices, users: UsersStream) -> None:
        super().__init__(tap, services)
        self.users = users

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
        self.logger.info(
            "The owners are the users Gong lists (GET /v2/users), because flow_owner_emails is "
            "unset."
        )
        return owner_order(
            self.users.owner_emails(bool(self.config.get("include_inactive_users", False)))
        )

    @cached_property
    def owner_pass(self) -> KeyPass:
        """The pass over the owners this run takes part in (made when first asked)."""
        found = dict(self.stream_state)
        steps = [s for s in self.steps_streams if s.selected]
        company_only = bool(self.config.get("company_flows_only", False))
        tasks = [s for s in self.child_streams if isinstance(s, TasksStream)]
        tasks = [s for s in tasks if s.takes_part(company_only=company_only)]
        activated = [*([self] if self.selected else []), *steps, *tasks]
        by_name = {stream.name: stream for stream in activated}
        parts = PassParts(
            name=self.name,
            fetch=lambda owner: (
                self.fetch_pages({"flow_owner_email": owner}) if self.lists_flows else iter(())
            ),
            write_state=self._write_state,
            streams=list(by_name),
            stamp=lambda version: _stamp_all(activated, version),
            activate=lambda name, version: deletes.activate(by_name[name], version),
            make_steps=(lambda done: steps[0].calls(done, steps)) if steps else _no_steps,
        )
        rules = PassRules(
            workers=int(self.config["max_concurrent_requests"]),
            activates=self.activates_versions,
            max_refused_share=float(self.config["max_refused_owner_share"]),
            first_accepted_ends=company_only,
        )
        return KeyPass(
            self.owners, OwnerPass.from_bookmark(found), found, parts, rules, self.services
        )

    @cached_property
    def lists_flows(self) -> bool:
        """False with only tasks selected: an owner then costs its tasks call alone."""
        return self.selected or any(s.selected for s in self.steps_streams)

    @property
    def steps_streams(self) -> list[FlowStepsBase]:
        return [s for s in self.child_streams if isinstance(s, FlowStepsBase)]

    @property
    def tasks(self) -> TasksStream | None:
        """The tasks stream, when this run syncs it (and Gong has not refused its scope)."""
        return next((s for s in self.child_streams if isinstance(s, TasksStream) and s.syncs), None)

    def _write_state(self, bookmark: dict[str, t.Any]) -> None:
        self.stream_state.update(bookmark)
        sdk_compat.write_state(self)

    @property
    @override
    def partitions(self) -> list[dict] | None:
        if self.services.day_spent_at_start:  # not even /v2/users to find the owners
            return []
        return [{"flow_owner_email": owner} for owner in self.owner_pass.remaining]

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterable[dict]:
        if self.services.day_spent_at_start:  # no request, not even /v2/users for the owners
            return
        yield from self.owner_pass.records(self.context_owner(context), self._owner_records)

    def write_last_state(self) -> None:
        """After a failed run: the last bookmark once more, with the day's call count (or the
        bookmark as the run found it, when no pass started, with the day's count)."""
        if "owner_pass" in self.__dict__:
            self.owner_pass.write_last_state()
            return
        budget = self.services.budget
        if budget.per_day is not None and budget.used():
            self._write_state({**self.stream_state, **budget.bookmark()})

    def note_day_count(self) -> None:
        """The day's call count into the bookmark, for a STATE that a later stream writes (the
        instance pass's calls count against max_requests_per_day too)."""
        budget = self.services.budget
        if budget.per_day is not None and budget.used():
            self.stream_state.update(budget.bookmark())

    def close(self) -> None:
        """No owner fetched ahead sends another request (the pass may never have started)."""
        if "owner_pass" in self.__dict__:
            self.owner_pass.close()

    @property
    def stopped_at_budget(self) -> bool:
        return "owner_pass" in self.__dict__ and self.owner_pass.stopped_at_budget

    def _owner_records(self, owner: str, pages: Iterable[list[dict]]) -> Iterator[dict]:
        """Each flow of the owner's pages once, tagged with the owner (and workspace)."""
        workspace_id = self.config.get("workspace_id") or None
        company_only = bool(self.config.get("company_flows_only", False))
        seen: set[str] = set()
        for records in pages:
            for record in records:
                if record["id"] in seen:  # Gong repeated a flow across pages
                    continue
                if company_only and record.get("visibility") != "Company":
                    continue
                seen.add(record["id"])
                record["flow_owner_email"] = owner
                record["workspace_id"] = workspace_id
                yield record
        if self.selected:
            self.services.progress.emitted(self.name, len(seen))
        if (tasks := self.tasks) is not None:
            tasks.sync_owner(owner, self.owner_pass.done, alone=not self.lists_flows)

    @override
    def generate_child_contexts(
        self, record: dict, context: t.Mapping[str, t.Any] | None
    ) -> Iterable[dict | None]:
        return ()  # the steps streams sync once per batch of 20 flows, not once per flow record


class PostStream(GongStream):
    """A POST endpoint that a pass drives (never the SDK, once per parent record), with the
    flows stream at hand; not selected unless a run asks for it."""

    selected_by_default = False
    synced_per_call = True
    payload_as_json = True
    # One bookmark for the stream, not one state entry per call.
    state_partitioning_keys: t.ClassVar[list[str]] = []

    def __init__(self, tap: Tap, services: RunServices, flows: FlowsStream) -> None:
        super().__init__(tap, services, http_method="POST")
        self.flows = flows

    # Gong's 404 "No <what this endpoint lists> found corresponding to the provided filters"
    # (gong-api.md): an empty answer, not an error. Never matches: each stream that takes it
    # says what it lists, so "No workspace found" stays an error.
    NOTHING_FOUND: t.ClassVar[re.Pattern[str]] = re.compile(r"(?!)")

    def nothing_found(self, response: requests.Response) -> bool:
        """Whether Gong answered that it found nothing to list."""
        return response.status_code == 404 and bool(
            self.NOTHING_FOUND.search(gong_errors(response))
        )


def gong_errors(response: requests.Response) -> str:
    """The `errors` of Gong's answer, as one string."""
    return " ".join(str(e) for e in errors.gong_body(response).get("errors") or [])


class FlowStepsBase(PostStream):
    """POST /v2/flows/steps for a batch of at most 20 flow ids the owner pass saw.

    An SDK child of flows, so selecting it runs the owner pass even when flows itself is not
    selected; flows syncs it once per batch, and both children share each batch's one call.
    """

    parent_stream_type = FlowsStream
    path = "/v2/flows/steps"
    records_key = "flows"
    paginated = False

    @override
    def prepare_request_payload(
        self, context: t.Mapping[str, t.Any] | None, next_page_token: str | None
    ) -> dict | None:
        return {"flowIds": list(context["flow_ids"]) if context else []}

    @override
    def validate_response(self, response: requests.Response) -> None:
        if response.status_code == 404 and "flow not found" in gong_errors(response).lower():
            raise FlowNotFoundError(gong_errors(response))
        super().validate_response(response)

    def calls(self, done: OwnerPass, selected: list[FlowStepsBase]) -> StepsCalls:
        """The steps calls of a run, which the `selected` steps streams share."""

        def sync(ids: list[str]) -> None:
            for stream in selected:  # both share the batch's one call (StepsCalls.flows_for)
                stream.sync({"flow_ids": ids})

        return StepsCalls(
            done,
            names=[s.name for s in selected],
            sync=sync,
            post=self.post,
            may_send=lambda: self.services.budget.spent() is None,
            activates=self.activates_versions,
            logger=self.logger,
        )

    def post(self, flow_ids: list[str]) -> list[dict]:
        """One steps call (retried like every call), its flows checked at the door; a flow
        without a steps list (absent or null) is kept as it is, for the caller to judge."""
        flows = [flow for page in self.fetch_pages({"flow_ids": flow_ids}) for flow in page]
        for flow in flows:
            steps = flow.get("steps")
            if steps is not None and (
                not isinstance(steps, list)
                or not all(isinstance(s, dict) and not id_problem(s.get("id")) for s in steps)
            ):
                raise GongTapError(
                    f"Gong answered {self.path} with steps of the wrong shape for flow "
                    f"{flow['id']}: expected a list of objects that each have an 'id'."
                )
        return flows

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterable[dict]:
        steps = self.flows.owner_pass.steps
        if steps is None or context is None:
            return
        emitted = 0
        for flow in steps.flows_for(list(context["flow_ids"])):
            for row in self.rows(flow):
                if not emitted:
                    steps.done.note_emitted(self.name)
                emitted += 1
                yield row
        self.services.progress.emitted(self.name, emitted)

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


class TasksScopeError(GongFatalError):
    """Gong refused /v2/tasks to these credentials: a scope the token lacks, not an owner."""


class TasksStream(PostStream):
    """POST /v2/tasks once per owner of the flows pass: the owner's open Engage call tasks.

    An SDK child of flows, synced by the owner pass after each owner's flows, so the pass's
    bookmark, budget and refusal counts cover it.
    """

    name = "tasks"
    parent_stream_type = FlowsStream
    names_path = True
    path = "/v2/tasks"
    NOTHING_FOUND = re.compile(r"\bno (open )?(call )?tasks? found", re.IGNORECASE)
    records_key = "tasks"
    primary_keys = ("id",)
    FILTER: t.ClassVar[dict[str, list[str]]] = {
        "types": ["FLOW", "MANUAL"],
        "taskAction": ["CALL"],
        "status": ["OPEN"],
    }

    def __init__(self, tap: Tap, services: RunServices, flows: FlowsStream) -> None:
        super().__init__(tap, services, flows)
        self.crm_ids: set[str] = set()  # the contacts of the flow tasks this run emitted
        self.odd_contacts: list[str] = []  # contact ids that are not one token: not asked
        self.off = False  # skipped for the rest of the run
        self._rows: list[dict] = []
        self._owner: str | None = None

    @property
    def syncs(self) -> bool:
        return self.selected and not self.off

    def takes_part(self, *, company_only: bool) -> bool:
        """Whether this run syncs tasks; company_flows_only turns them off with one WARNING."""
        if self.syncs and company_only:
            self.turn_off(
                "company_flows_only fetches one owner a pass, and tasks are asked for each "
                "owner. Unset company_flows_only to sync tasks, or deselect tasks (meltano "
                "select tap-gong-flows --rm tasks '*') to silence this."
            )
        return self.syncs

    def turn_off(self, why: str, done: OwnerPass | None = None) -> None:
        """Skip the stream for the rest of the run, with one WARNING; no ACTIVATE_VERSION."""
        self.off = True
        if done is not None:
            deletes.hold_back(done, [self.name])
        self.logger.warning(
            "Skipping the tasks stream for the rest of this run: %s The other streams go on; no "
            "ACTIVATE_VERSION is sent for tasks in this pass.",
            why,
        )

    @cached_property
    def user_ids(self) -> dict[str, str]:
        """Gong user id by lower-cased email, from the one read of /v2/users a run."""
        return {u.email.lower(): u.id for u in self.flows.users.gong_users() if u.email}

    @override
    def prepare_request_payload(
        self, context: t.Mapping[str, t.Any] | None, next_page_token: str | None
    ) -> dict | None:
        task_filter: dict[str, t.Any] = {"userId": context["user_id"] if context else ""}
        task_filter.update(self.FILTER)
        if self.config.get("workspace_id"):
            task_filter["workspaceId"] = self.config["workspace_id"]
        body: dict[str, t.Any] = {"filter": task_filter}
        if next_page_token:  # Gong's paged POST endpoints take the cursor in the body
            body["cursor"] = next_page_token
        return body

    @override
    def get_url_params(self, context: t.Any, next_page_token: str | None) -> dict[str, t.Any]:
        return {}

    @override
    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status == 403:
            raise TasksScopeError(
                response,
                hint="The credentials lack the api:tasks:read scope that /v2/tasks needs.",
            )
        if self._owner and status in (400, 404) and _ABOUT_USER.search(gong_errors(response)):
            raise OwnerRejectedError(response, self._owner)
        if not self.nothing_found(response):  # a user without open tasks: none
            super().validate_response(response)

    @override
    def page_records(self, response: requests.Response) -> list[dict]:
        return [] if self.nothing_found(response) else super().page_records(response)

    def sync_owner(self, owner: str, done: OwnerPass, *, alone: bool) -> None:
        """Fetch the owner's tasks, then emit them. A 403 skips the stream for the run. An
        owner Gong refuses is skipped: `alone` (no flows fetched), as an owner of the pass;
        else its tasks only, counted apart (`tasks_refused`), so its flows still count."""
        try:
            rows = self._owner_tasks(owner)
        except OwnerRefusedError as exc:
            if alone:
                raise
            done.tasks_refused += 1
            self.logger.warning("Skipping the tasks of owner %s: %s", owner, exc)
            return
        except TasksScopeError as exc:
            self.turn_off(str(exc), done)
            return
        self._rows = [self._row(task, owner) for task in rows.values()]
        try:
            self.sync({"flow_owner_email": owner})
        finally:
            self._rows = []
        if rows:
            done.add_records(self.name, len(rows))

    def _owner_tasks(self, owner: str) -> dict[str, dict]:
        """The owner's tasks by id (each once), from every page of its answer."""
        user_id = self.user_ids.get(owner)
        if user_id is None:
            raise OwnerRefusedError(
                "GET /v2/users lists no user with this email, so its tasks cannot be asked for "
                "(POST /v2/tasks takes a Gong user id)."
            )
        self._owner = owner
        try:
            pages = self.fetch_pages({"flow_owner_email": owner, "user_id": user_id})
            return {task["id"]: task for page in pages for task in page}
        finally:
            self._owner = None

    def _row(self, task: dict, owner: str) -> dict:
        """The task with every id a string, its owner's email, and its contacts noted."""
        for key in ("userId",):
            if task.get(key) is not None:
                task[key] = record_id(task[key])
        for key in ("flow", "priority"):
            part = task.get(key)
            if isinstance(part, dict) and part.get("id") is not None:
                part["id"] = record_id(part["id"])
        step = task.get("flow", {}).get("step") if isinstance(task.get("flow"), dict) else None
        if isinstance(step, dict) and step.get("id") is not None:
            step["id"] = record_id(step["id"])
        if task.get("type") == "FLOW":
            contacts = [task.get("contact"), *(task.get("additionalContacts") or [])]
            for contact in contacts:
                crm_id = contact.get("crmId") if isinstance(contact, dict) else None
                # HubSpot's ids are numbers: they count, as strings, like every id
                if crm_id is None or id_problem(crm_id):
                    continue
                if one_crm_id(text := record_id(crm_id).strip()):
                    self.crm_ids.add(text)
                elif text:
                    self.odd_contacts.append(text)
        task["owner_email"] = owner
        return task

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterable[dict]:
        yield from self._rows
        self.services.progress.emitted(self.name, len(self._rows))


class FlowInstancesStream(PostStream):
    """POST /v2/flows/prospects over the CRM ids, then for the instances that left the open set.

    Never activated: a pass does not list the instances that finished in earlier passes, so an
    ACTIVATE_VERSION would delete them.
    """

    name = "flow_instances"
    path = "/v2/flows/prospects"
    NOTHING_FOUND = re.compile(
        r"\bno (assigned )?(flows?|prospects?|flow instances?|instances?) found", re.IGNORECASE
    )
    records_key = "prospectsAssigned"
    primary_keys = ("flowInstanceId",)
    paginated = False
    synced_per_call = False  # the SDK syncs it once a run

    def __init__(self, tap: Tap, services: RunServices, flows: FlowsStream) -> None:
        super().__init__(tap, services, flows)
        self.changes: list[dict] = []  # the current batch's change rows, for the child stream
        self._contacts_taken = False
        self._whole: dict[str, t.Any] | None = None  # the whole bookmark the pass's end wrote

    @override
    def prepare_request_payload(
        self, context: t.Mapping[str, t.Any] | None, next_page_token: str | None
    ) -> dict | None:
        return {context["what"]: list(context["ids"])} if context else {}

    @override
    def validate_response(self, response: requests.Response) -> None:
        if response.status_code == 400:
            raise BatchRefusedError(response, hint="")
        if not self.nothing_found(response):  # no instance for these ids
            super().validate_response(response)

    @override
    def page_records(self, response: requests.Response) -> list[dict]:
        if self.nothing_found(response):
            return []
        body = errors.gong_body(response)
        records = body.get(self.records_key)
        if not isinstance(records, list) or not all(
            isinstance(r, dict) and instance_id_problem(r.get("flowInstanceId")) == ""
            for r in records
        ):
            raise GongTapError(
                f"Gong answered {self.path} with a body of the wrong shape (requestId "
                f"{body.get('requestId') or 'none'}): expected a '{self.records_key}' list of "
                "objects that each have a 'flowInstanceId'. Nothing of this answer was emitted."
            )
        for record in records:
            for key in ("flowInstanceId", "crmProspectId", "flowId", "workspaceId"):
                if isinstance(record.get(key), (int, float)) and not isinstance(record[key], bool):
                    record[key] = record_id(record[key])
        return records

    def post(self, what: str, ids: list[str]) -> list[dict]:
        """One call for `ids` of the kind `what` (retried like every call)."""
        return [r for page in self.fetch_pages({"what": what, "ids": ids}) for r in page]

    @cached_property
    def bookmark(self) -> InstanceBookmark:
        """The bookmark as the state gave it (or a new one), which this run carries on."""
        return self.services.instances_found or InstanceBookmark()

    def _take_task_contacts(self, *, passing: bool) -> None:
        """This run's flow task contacts into the bookmark, once. `passing`: the instance pass
        runs now; a new one asks about them and those that earlier runs kept (runs whose
        owner pass stopped at the budget). Else, and for a pass under way, they wait for the
        next pass."""
        if self._contacts_taken:
            return
        self._contacts_taken = True
        tasks = [s for s in self.flows.child_streams if isinstance(s, TasksStream)]
        contacts = tasks[0].crm_ids if tasks else set()
        if tasks and (odd := tasks[0].odd_contacts):
            self.logger.warning(
                "Not asking about %d task contact ids that are not one CRM id (white space, "
                "commas or quotes inside), e.g. %r.",
                len(odd),
                odd[0],
            )
        bookmark = self.bookmark
        if passing and not (bookmark.in_pass and bookmark.sets_carried):
            # Added to, never replaced: a pass stopped before its first batch asks them next run
            bookmark.contacts_asked |= bookmark.contacts_waiting | contacts
            bookmark.contacts_waiting = set()
        else:
            bookmark.contacts_waiting |= contacts

    @cached_property
    def instance_pass(self) -> InstancePass:
        self._take_task_contacts(passing=True)
        return InstancePass(
            sorted(set(self.services.crm_ids) | self.bookmark.contacts_asked),
            self.bookmark,
            self._batches("crmProspectsIds"),
            self._batches("flowInstanceIds"),
            may_send=lambda: self.services.budget.spent() is None,
            seen_at=dt.datetime.fromtimestamp(
                self.services.started_ms / 1000, dt.timezone.utc
            ).isoformat(timespec="seconds"),
            logger=self.logger,
        )

    def _batches(self, what: str) -> IdBatches:
        return IdBatches(what, lambda ids: self.post(what, ids), self.logger)

    @property
    def _children(self) -> list[FlowInstanceChangesStream]:
        return [
            s for s in self.child_streams if isinstance(s, FlowInstanceChangesStream) and s.selected
        ]

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterable[dict]:
        if self.services.day_spent_at_start:
            return
        if self.flows.stopped_at_budget:
            self.logger.info(
                "The instance pass waits for a later run: the owner pass stopped at the call "
                "budget, and it goes first."
            )
            return
        self._take_task_contacts(passing=True)
        found = self.bookmark
        if not (self.services.crm_ids or found.contacts_asked or found.open or found.in_pass):
            self.logger.info(
                "No CRM id to ask about: set crm_prospect_ids or crm_prospect_ids_file, or "
                "select tasks (their contacts' ids are asked about). No request is sent."
            )
            return
        instance_pass = self.instance_pass
        emitted = 0
        while (batch := instance_pass.next_batch()) is not None:
            emitted += len(batch.instances)
            yield from batch.instances
            if batch.changes and (children := self._children):
                self.changes = batch.changes
                for child in children:
                    child.sync({"batch": len(batch.changes)})
                self.changes = []
            self.logger.info(instance_pass.commit(batch))
        if self.selected:
            self.services.progress.emitted(self.name, emitted)
        summary = instance_pass.summary()
        self.logger.info(summary)
        self.services.progress.notes.append(summary)
        self.write_whole_state()

    @override
    def generate_child_contexts(
        self, record: dict, context: t.Mapping[str, t.Any] | None
    ) -> Iterable[dict | None]:
        return ()  # the change rows sync once per batch, from the pass

    @property
    def stopped_at_budget(self) -> bool:
        return "instance_pass" in self.__dict__ and self.instance_pass.stopped_at_budget

    def write_whole_state(self) -> bool:
        """A STATE with the instance sets (at most twice a run: the pass's end, the run's end);
        every other STATE carries the bookmark's small part. False: there is nothing to carry."""
        if self.selected or self.has_selected_descendents:
            self._take_task_contacts(passing=False)  # a run that ran no pass: they wait
        loaded = self.services.instances_found
        bookmark = self.bookmark if "bookmark" in self.__dict__ else loaded
        if bookmark is None or (loaded is None and bookmark.empty):
            return False
        self.flows.note_day_count()
        # After the pass's end (or its budget stop) nothing changes it: the run's last STATE
        # reuses that encoding (0.3 s at 100,000 instances) instead of making it again.
        ended = "instance_pass" in self.__dict__ and self.instance_pass.ended
        whole = self._whole if ended and self._whole is not None else bookmark.whole()
        self._whole = whole if ended else None
        self.stream_state.clear()
        self.stream_state.update(whole)
        sdk_compat.write_state(self)
        self.stream_state.pop("sets")
        return True


class FlowInstanceChangesStream(GongStream):
    """One row each time a pass sees a flow instance's status differ from the last pass."""

    name = "flow_instance_changes"
    parent_stream_type = FlowInstancesStream
    synced_per_call = True
    path = FlowInstancesStream.path
    primary_keys = ("flowInstanceId", "pass_started")  # one change at most a pass
    selected_by_default = False
    state_partitioning_keys: t.ClassVar[list[str]] = []

    def __init__(self, tap: Tap, services: RunServices, instances: FlowInstancesStream) -> None:
        super().__init__(tap, services)
        self.instances = instances

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterable[dict]:
        yield from self.instances.changes
        self.services.progress.emitted(self.name, len(self.instances.changes))


def instance_id_problem(value: object) -> str:
    """Why `value` is no flow instance id the bookmark can keep, or ""."""
    problem = id_problem(value, "flow instance")
    if not problem and isinstance(value, str) and any(c.isspace() for c in value):
        return f"a flow instance id with white space ({value!r})"
    return problem
