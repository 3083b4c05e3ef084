"""The streams: short classes that say only what their endpoint is."""

from __future__ import annotations

import typing as t
from functools import cached_property

from typing_extensions import override

from tap_gong_flows import deletes, errors, sdk_compat
from tap_gong_flows.client import GongStream
from tap_gong_flows.errors import GongTapError
from tap_gong_flows.ids import id_problem, record_id
from tap_gong_flows.key_pass import KeyPass, PassParts, PassRules
from tap_gong_flows.state import OwnerPass
from tap_gong_flows.steps import FlowNotFoundError
from tap_gong_flows.steps_calls import StepsCalls

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
        return owner_order(self.discovered_owners())

    def discovered_owners(self) -> list[str]:
        """The emails of the users Gong lists: active ones, or all with include_inactive_users.

        Not an SDK child stream of users: that would sync one owner per users record, in
        Gong's order, and lose the sorted order, the compact bookmark and the concurrent fetching.
        """
        users = self.users.gong_users()
        if not self.config.get("include_inactive_users", False):
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

    @cached_property
    def owner_pass(self) -> KeyPass:
        """The pass over the owners this run takes part in (made when first asked)."""
        found = dict(self.stream_state)
        steps = [s for s in self.child_streams if s.selected]
        activated = [self, *steps] if self.selected else steps
        by_name = {stream.name: stream for stream in activated}
        parts = PassParts(
            name=self.name,
            fetch=lambda owner: self.fetch_pages({"flow_owner_email": owner}),
            write_state=self._write_state,
            streams=list(by_name),
            stamp=lambda version: _stamp_all(activated, version),
            activate=lambda name, version: deletes.activate(by_name[name], version),
            make_steps=self._steps_calls if steps else _no_steps,
        )
        rules = PassRules(
            workers=int(self.config["max_concurrent_requests"]),
            activates=self.activates_versions,
            max_refused_share=float(self.config["max_refused_owner_share"]),
            first_accepted_ends=bool(self.config.get("company_flows_only", False)),
        )
        return KeyPass(
            self.owners, OwnerPass.from_bookmark(found), found, parts, rules, self.services
        )

    def _steps_calls(self, done: OwnerPass) -> StepsCalls:
        post = t.cast("FlowStepsBase", self.child_streams[0]).post
        return StepsCalls(
            done,
            names=[s.name for s in self.child_streams if s.selected],
            sync=lambda ids: sdk_compat.sync_children(self, {"flow_ids": ids}),
            post=post,
            may_send=lambda: self.services.budget.spent() is None,
            activates=self.activates_versions,
            logger=self.logger,
        )

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

    @override
    def generate_child_contexts(
        self, record: dict, context: t.Mapping[str, t.Any] | None
    ) -> Iterable[dict | None]:
        return ()  # the steps streams sync once per batch of 20 flows, not once per flow record


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

    def __init__(self, tap: Tap, services: RunServices, flows: FlowsStream) -> None:
        super().__init__(tap, services, http_method="POST")
        self.flows = flows

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
