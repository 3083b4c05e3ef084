"""Errors a person can act on: what failed, for which owner and page, Gong's requestId."""

from __future__ import annotations

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_gong_flows.retry import resume_time

HINTS = {
    400: "Gong rejected the request as malformed; check flow_owner_emails and workspace_id.",
    401: "Check access_key and access_key_secret (or access_token): Gong did not accept them.",
    403: "The credentials lack a scope: the API key or OAuth app needs api:flows:read "
    "(api:users:read for users, api:workspaces:read for workspaces).",
    404: "Gong has no such endpoint: check api_url, which must be the bare base URL such as "
    "https://api.gong.io (no /v2 path).",
}


class GongTapError(Exception):
    """An error that ends the sync with a one-paragraph message and exit code 1."""

    where: str | None = None  # the owner and page it happened at, when known

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.where}: {text}" if self.where and not text.startswith(self.where) else text


def json_body(response: requests.Response) -> dict | None:
    """The JSON object Gong sent, parsed once per response; None when the body is not one."""
    if not hasattr(response, "gong_body"):
        try:
            body = response.json()
        except ValueError:
            body = None
        response.gong_body = body if isinstance(body, dict) else None  # type: ignore[attr-defined]
    return response.gong_body  # type: ignore[attr-defined]


def gong_body(response: requests.Response) -> dict:
    """The JSON object Gong sent, or {} when there is none."""
    return json_body(response) or {}


def describe_response(response: requests.Response) -> str:
    """Say what Gong answered: status, requestId and its errors[], never a header."""
    body = gong_body(response)
    text = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
    text += f" (requestId {body.get('requestId') or 'none'})"
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        text += ": " + "; ".join(str(e) for e in errors)
    return text


def where(owner: str | None, page: int | None) -> str:
    """Name the owner (or, for other endpoints, the path) and 1-based page a request was for."""
    parts = []
    if owner and owner.startswith("/"):
        parts.append(owner)
    elif owner:
        parts.append(f"owner {owner}")
    if page is not None:
        parts.append(f"page {page}")
    return ", ".join(parts)


class GongFatalError(FatalAPIError, GongTapError):
    """Gong answered with an error that retrying will not fix."""

    def __init__(
        self, response: requests.Response, owner: str | None = None, hint: str | None = None
    ) -> None:
        self.response = response
        self.owner = owner
        self.status = response.status_code
        hint = HINTS.get(self.status, "") if hint is None else hint
        request = response.request
        url = (request.url or "").split("?")[0] if request is not None else ""
        asked = f" {request.method} {url} with" if request is not None else ""
        super().__init__(f"Gong answered{asked} {describe_response(response)}. {hint}".strip())


class OwnerRefusedError(GongTapError):
    """One owner cannot be fetched on its own account: the pass skips it and counts it."""


class OwnerRejectedError(GongFatalError, OwnerRefusedError):
    """Gong refused one owner on its own (unknown, deactivated, no Engage licence)."""

    def __init__(self, response: requests.Response, owner: str) -> None:
        super().__init__(response, owner, hint="")


class GongRetriableError(RetriableAPIError):
    """A transient failure: 429, 5xx, or a 200 whose body is not the JSON Gong promises."""

    def __init__(self, message: str, response: requests.Response, wait: float | None = None):
        super().__init__(message, response)
        self.wait = wait


class QuotaSpentError(GongTapError):
    """Gong asked us to come back later than max_retry_wait_seconds: for a 429, the daily
    quota is spent; for a 503, Gong is down for longer than a run should wait."""

    def __init__(self, response: requests.Response, wait: float) -> None:
        self.response = response
        self.wait = wait
        self.resume_at = resume_time(wait)
        until = (
            f"{wait:.0f} s, until {self.resume_at:%Y-%m-%d %H:%M:%S} UTC"
            if self.resume_at is not None
            else f"{response.headers.get('Retry-After')!r}, which is no time a run can wait for"
        )
        what = "Gong's API quota is spent" if response.status_code == 429 else "Gong is unavailable"
        super().__init__(
            f"{what}: it answered {describe_response(response)} and asked us to wait {until}, "
            "longer than max_retry_wait_seconds. Everything fetched so far was emitted and the "
            "last STATE message lets the next run carry on; run again after that time."
        )


class CursorCycleError(GongTapError):
    """Gong sent back a cursor it had already sent for the same owner."""


class PagingError(GongTapError):
    """Gong's paging does not add up: empty pages with fresh cursors, more pages than records."""


class AllOwnersRefusedError(GongTapError):
    """Gong accepted no owner of a whole pass: nothing was seen, so nothing may be deleted."""

    @classmethod
    def of_pass(cls, refused: int, first_refusal: str) -> AllOwnersRefusedError:
        """The error of a pass with `refused` owners, all refused; Gong's answer for the first."""
        if not refused:
            return cls(
                "There was no owner to fetch flows for: nothing was fetched and no row is "
                "deleted. Set flow_owner_emails, or check that Gong lists users with emails."
            )
        return cls(
            f"Gong refused every owner of this pass ({refused} of {refused}): nothing was "
            "fetched and no row is deleted. Check flow_owner_emails, api_url and that the "
            f"credentials are for this company. Gong's answer for the first: "
            f"{first_refusal or '(refused in an earlier run of this pass)'}"
        )
