"""The base stream for Gong's REST API: auth, the shared rate-limited session, paging, errors."""

from __future__ import annotations

import logging
import re
import threading
import typing as t
from functools import cached_property
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import requests
from singer_sdk import RESTStream, SchemaDirectory, StreamSchema
from singer_sdk.authenticators import BasicAuthenticator, BearerTokenAuthenticator
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator, SinglePagePaginator
from singer_sdk.streams.rest import PageContext
from typing_extensions import override

from tap_gong_flows import errors, retry, sdk_compat
from tap_gong_flows.errors import (
    GongFatalError,
    GongRetriableError,
    GongTapError,
    OwnerRejectedError,
    QuotaSpentError,
    describe_response,
)
from tap_gong_flows.ids import id_problem, record_id
from tap_gong_flows.pagination import GongCursorPaginator
from tap_gong_flows.settings import DEFAULT_API_URL

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from backoff.types import Details
    from singer_sdk import Tap

    from tap_gong_flows.services import RunServices

_PACKAGED = Path(__file__).parent / "schemas"
SCHEMAS_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).parent.parent / "schemas"

# An answer about the owner, not about our request: Gong refuses that one user. "No flows found
# corresponding to the provided filters" is how Gong says it knows no such owner.
_OWNER_REFUSAL = re.compile(
    r"user|licen[cs]e|deactivated|inactive|no flows? found|provided filters", re.IGNORECASE
)


@sdk_compat.quiet_request_metrics  # the per-owner progress line counts requests
class GongStream(RESTStream[str | None]):
    """One Gong list endpoint. Every request goes through the tap's rate limiter."""

    records_key: str = ""
    paginated = True
    names_path = False  # whether an error for an owner names the endpoint too (not /v2/flows)
    synced_per_call = False  # whether a pass syncs it once per owner or batch (the children)
    schema = StreamSchema(SchemaDirectory(SCHEMAS_DIR))  # schemas/<stream name>.json
    # Gong's JSON holds only JSON-native values; the schemas allow what Gong adds. Conforming
    # every property of every record changed nothing and cost more than parsing it.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        # The SDK would send ACTIVATE_VERSION before the first record; a target would then
        # delete every row of a sync that fails half-way. The streams send it after their data.
        return False

    @property
    def activates_versions(self) -> bool:
        """Whether to send ACTIVATE_VERSION once this stream's data is complete."""
        return bool(self.config.get("emit_activate_version_messages", False))

    def __init__(self, tap: Tap, services: RunServices, **kwargs: t.Any) -> None:
        self.services = services
        self._schema_sent = False
        super().__init__(tap, **kwargs)

    @override
    def log(self, message: str, *args: t.Any, level: int = logging.INFO, **kwargs: t.Any) -> None:
        # A stream synced once per owner or batch would log the SDK's "Beginning sync" line
        # thousands of times a run; the pass's own lines say how far it is.
        if self.synced_per_call and message.startswith("Beginning sync"):
            level = logging.DEBUG
        super().log(message, *args, level=level, **kwargs)

    @override
    def _write_schema_message(self) -> None:
        # The SDK writes a SCHEMA at each sync() call: tasks sync once per owner, the steps and
        # change streams once per batch, so the 14 KB tasks schema would go out 6,000 times in
        # a run of 6,000 owners. Once a run is what a target needs. A private SDK method, its
        # only place for this: tests/test_sdk_surface.py checks it is still there.
        if not self._schema_sent:
            super()._write_schema_message()
            self._schema_sent = True

    @property
    @override
    def url_base(self) -> str:
        return str(self.config.get("api_url") or DEFAULT_API_URL)

    @cached_property
    @override
    def authenticator(self) -> BasicAuthenticator | BearerTokenAuthenticator:
        if self.config.get("access_token"):
            return BearerTokenAuthenticator(token=self.config["access_token"])
        return BasicAuthenticator(
            username=self.config["access_key"], password=self.config["access_key_secret"]
        )

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self.services.session

    @property
    @override
    def timeout(self) -> float:  # type: ignore[override]
        return float(self.config["request_timeout"])

    @property
    @override
    def http_headers(self) -> dict:
        return {"Accept": "application/json"}

    @override
    def get_new_paginator(self) -> BaseAPIPaginator:
        return GongCursorPaginator(self.records_key) if self.paginated else SinglePagePaginator()

    def query_params(self, context: t.Mapping[str, t.Any] | None) -> dict[str, t.Any]:  # noqa: ARG002
        """The query parameters of this endpoint, repeated on every page."""
        return {}

    @override
    def get_url_params(self, context: t.Any, next_page_token: str | None) -> dict[str, t.Any]:
        params = self.query_params(context)
        if next_page_token:
            params["cursor"] = next_page_token
        return params

    # Responses and retries

    @override
    def validate_response(self, response: requests.Response) -> None:
        self.services.progress.answered(response.elapsed.total_seconds())
        status = response.status_code
        if retry.is_retried(status):
            self._raise_retriable(response)
        if status >= 400:
            owner = self.owner_of(response)
            if owner and is_owner_refusal(response, owner):
                raise OwnerRejectedError(response, owner)
            raise GongFatalError(response, owner)
        if errors.json_body(response) is None:
            raise GongRetriableError(
                f"Gong answered HTTP {status} with a body that is not a JSON object", response
            )

    def _raise_retriable(self, response: requests.Response) -> t.NoReturn:
        """Retry after Gong's Retry-After, held for every request, unless it is too long."""
        header = response.headers.get("Retry-After")
        wait = retry.after_answer(
            response.status_code, header, float(self.config["max_retry_wait_seconds"])
        )
        if wait.stop:
            raise QuotaSpentError(response, t.cast("float", wait.seconds))
        if wait.seconds is not None:
            self.services.limiter.hold(wait.seconds)
        said = f"; Retry-After {header!r}" if header else ""
        raise GongRetriableError(
            f"Gong answered {describe_response(response)}{said}", response, wait.seconds
        )

    @staticmethod
    def owner_of(response: requests.Response) -> str | None:
        """The owner a request was for, from its query string."""
        return _query(response).get("flowOwnerEmail")

    @override
    def request_decorator(self, func: t.Callable) -> t.Callable:
        return retry.decorate(
            func,
            wait=self.backoff_wait_generator,
            tries=self.backoff_max_tries,
            on_retry=self.backoff_handler,
            jitter=self.backoff_jitter,
        )

    @override
    def backoff_max_tries(self) -> int:
        if self.services.single_attempt:
            return 1
        return int(self.config["max_retries"]) + 1

    @override
    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        return retry.wait_generator()

    @override
    def backoff_jitter(self, value: float) -> float:
        return value  # the wait generator adds its own jitter

    @override
    def backoff_handler(self, details: Details) -> None:
        owner = getattr(self._sending, "owner", None)
        self.services.progress.retried(owner)
        self.logger.warning(
            "Retrying %s%s in %.1f s (try %d of %d): %s",
            self.path,
            f" for owner {owner}" if owner else "",
            details.get("wait") or 0.0,
            details["tries"] + 1,
            self.backoff_max_tries(),
            retry.failure(details.get("exception")),
        )

    @staticmethod
    def context_owner(context: t.Mapping[str, t.Any] | None) -> str | None:
        return context.get("flow_owner_email") if context else None

    # Pages

    @cached_property
    def _send_with_retries(self) -> t.Callable[..., requests.Response]:
        # Built once: backoff keeps its state per call, so every thread can share it.
        return self.request_decorator(sdk_compat.send_once(self))

    @cached_property
    def _sending(self) -> threading.local:
        """What this thread is sending (`.owner`), for backoff_handler: owners are fetched in
        several threads at once, and backoff calls the handler in the thread that retries."""
        return threading.local()

    def fetch_pages(self, context: t.Mapping[str, t.Any] | None) -> Iterator[list[dict]]:
        """Yield the records of each page for one context, following cursors to the end.

        Every failure becomes a GongTapError naming the owner and page.
        """
        owner = self.context_owner(context)
        paginator = self.get_new_paginator()
        if isinstance(paginator, GongCursorPaginator):
            paginator.owner = owner
        send = self._send_with_retries
        while not paginator.finished:
            page = paginator.count + 1
            at = errors.where(owner or self.path, page)
            if owner and self.names_path:
                at = f"{self.http_method} {self.path} for {at}"
            try:
                token = paginator.current_value
                request = self.prepare_request_for(context, token)
                self._sending.owner = owner
                response = send(request, context)
                records = self.page_records(response)
                paginator.advance(response)
                if isinstance(paginator, GongCursorPaginator):
                    self.page_read(paginator)
            except GongTapError as exc:
                exc.where = exc.where or at
                raise
            except RetriableAPIError as exc:
                gave_up = f"{at}: gave up after {self.backoff_max_tries()} tries"
                last = describe_response(exc.response) if exc.response is not None else str(exc)
                raise GongTapError(f"{gave_up}; the last answer was {last}") from exc
            except requests.RequestException as exc:
                raise GongTapError(
                    f"{at}: gave up after {self.backoff_max_tries()} tries; the last failure was "
                    f"{type(exc).__name__} from {retry.host(exc)} (Gong unreachable, too slow for "
                    "request_timeout, or the connection dropped)"
                ) from exc
            yield records

    def page_read(self, paginator: GongCursorPaginator) -> None:
        """A page of a cursor-paged list is in (`paginator.count` pages so far)."""

    def prepare_request_for(
        self, context: t.Mapping[str, t.Any] | None, token: str | None
    ) -> requests.PreparedRequest:
        """The request for one page, built as the SDK's own loop builds it: URL, method,
        headers, encoded query parameters, and the body (JSON when `payload_as_json`)."""
        http = self.get_http_request(page=PageContext(context, token))
        body = {"json": http.data} if self.payload_as_json else {"data": http.data}
        return self.build_prepared_request(
            method=http.method,
            url=http.url,
            params=http.encode_params(),
            headers=http.headers,
            **body,
        )

    def page_records(self, response: requests.Response) -> list[dict]:
        """The records of one page, each `id` a string; a body of the wrong shape is an error,
        never an empty page."""
        body = errors.gong_body(response)
        records = body.get(self.records_key)
        wrong = f"expected a '{self.records_key}' list of objects"
        if isinstance(records, list):
            wrong = next((w for w in map(_id_problem, records) if w), "")
        if wrong:
            raise GongTapError(
                f"Gong answered {self.path} with a body of the wrong shape (requestId "
                f"{body.get('requestId') or 'none'}): {wrong}. Nothing of this page was emitted."
            )
        for record in t.cast("list[dict]", records):
            record["id"] = record_id(record["id"])
        return t.cast("list[dict]", records)

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        yield from self.page_records(response)

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> t.Iterable[dict]:
        for records in self.fetch_pages(context):
            yield from records


def is_owner_refusal(response: requests.Response, owner: str) -> bool:
    """Gong refuses this owner, not the request: a 404 or 400 to the owner's first page (no
    cursor) whose Gong error message is about the user. A later page failing is an error of
    the sync, and a 404 of another kind (a wrong api_url) is never about the owner."""
    if response.status_code not in (400, 404) or "cursor" in _query(response):
        return False
    body_errors = errors.gong_body(response).get("errors")
    if not isinstance(body_errors, list) or not body_errors:
        return False
    messages = " ".join(str(e) for e in body_errors)
    return owner.lower() in messages.lower() or bool(_OWNER_REFUSAL.search(messages))


def _query(response: requests.Response) -> dict[str, str]:
    """The query parameters of the request a response answers."""
    query = urlsplit(response.request.url or "").query if response.request is not None else ""
    return dict(parse_qsl(query))


def _id_problem(record: object) -> str:
    """Why a record cannot be emitted, or "" when it can."""
    if not isinstance(record, dict):
        return f"a record that is not an object ({type(record).__name__})"
    return id_problem(record.get("id"))
