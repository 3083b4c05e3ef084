"""errors: what a person reads when Gong says no; never a header, never a query string."""

from __future__ import annotations

import math

import pytest

from tap_gong_flows.errors import (
    GongFatalError,
    GongRetriableError,
    GongTapError,
    OwnerRejectedError,
    QuotaSpentError,
    describe_response,
    gong_body,
    json_body,
    where,
)
from tests.unit.fakes import response

SECRET_HEADER = "Basic QUtFWS00ZjFkOWMyYjdlOlNLRVk="


def test_describe_response_status_request_id_and_errors() -> None:
    answer = response(
        404,
        {"requestId": "abc123", "errors": ["No user with email x@y.com", "second"]},
        reason="Not Found",
    )
    assert describe_response(answer) == (
        "HTTP 404 Not Found (requestId abc123): No user with email x@y.com; second"
    )


def test_describe_response_without_reason_or_body() -> None:
    assert describe_response(response(503)) == "HTTP 503 (requestId none)"


@pytest.mark.parametrize(
    "body",
    [
        {"requestId": None},
        {"errors": []},
        {"errors": "not a list"},
        {"errors": {"a": 1}},
        ["a", "list", "body"],
        "a string",
    ],
)
def test_describe_response_ignores_what_is_not_gongs_shape(body: object) -> None:
    assert describe_response(response(500, body, reason="Oops")) == (
        "HTTP 500 Oops (requestId none)"
    )


def test_describe_response_with_a_non_json_body() -> None:
    answer = response(502)
    answer._content = b"<html>Bad Gateway</html>"
    assert describe_response(answer) == "HTTP 502 (requestId none)"


def test_describe_response_never_says_a_header() -> None:
    answer = response(
        401,
        {"requestId": "r1", "errors": ["unauthorized"]},
        reason="Unauthorized",
        headers={"Authorization": SECRET_HEADER, "Set-Cookie": "session=s3cr3t", "X-Y": "zz"},
    )
    answer.request = None  # type: ignore[assignment]
    text = describe_response(answer)
    assert SECRET_HEADER not in text
    assert "s3cr3t" not in text
    assert "zz" not in text


def test_body_is_parsed_once_and_cached_on_the_response() -> None:
    answer = response(200, {"requestId": "one"})
    assert json_body(answer) == {"requestId": "one"}
    answer._content = b'{"requestId": "two"}'
    assert gong_body(answer) == {"requestId": "one"}


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b'"text"', b"null"])
def test_json_body_is_none_unless_an_object(content: bytes) -> None:
    answer = response(200)
    answer._content = content
    assert json_body(answer) is None
    assert gong_body(answer) == {}


def test_fatal_error_names_method_and_url_without_query() -> None:
    answer = response(
        403,
        {"requestId": "req-9", "errors": ["Insufficient scope"]},
        reason="Forbidden",
        url="https://api.gong.io/v2/flows?flowOwnerEmail=a%40b.com&cursor=XYZ",
        headers={"Authorization": SECRET_HEADER},
    )
    error = GongFatalError(answer, owner="a@b.com")
    text = str(error)
    assert text.startswith(
        "Gong answered GET https://api.gong.io/v2/flows with HTTP 403 Forbidden (requestId "
        "req-9): Insufficient scope."
    )
    assert "api:flows:read" in text  # the hint for 403
    assert "?" not in text
    assert "cursor" not in text
    assert "XYZ" not in text
    assert SECRET_HEADER not in text
    assert error.status == 403
    assert error.owner == "a@b.com"
    assert error.response is answer


def test_fatal_error_for_a_post() -> None:
    answer = response(400, {}, url="https://api.gong.io/v2/flows/steps", method="POST")
    text = str(GongFatalError(answer))
    assert "Gong answered POST https://api.gong.io/v2/flows/steps with HTTP 400" in text
    assert "malformed" in text


def test_fatal_error_without_a_request() -> None:
    answer = response(418, {"requestId": "t"}, reason="I'm a teapot")
    assert str(GongFatalError(answer)) == "Gong answered HTTP 418 I'm a teapot (requestId t)."


@pytest.mark.parametrize(("status", "word"), [(401, "access_key"), (404, "api_url")])
def test_fatal_error_hints(status: int, word: str) -> None:
    answer = response(status, {}, url="https://api.gong.io/v2/flows")
    assert word in str(GongFatalError(answer))


def test_owner_rejected_is_a_fatal_error() -> None:
    error = OwnerRejectedError(response(404, {}, url="https://h/v2/flows"), owner="a@b.com")
    assert isinstance(error, GongFatalError)
    assert isinstance(error, GongTapError)


def test_where_prefix() -> None:
    error = GongFatalError(response(400, {}, url="https://h/v2/flows"))
    error.where = "owner a@b.com, page 2"
    assert str(error).startswith("owner a@b.com, page 2: Gong answered GET https://h/v2/flows with")
    assert str(error).count("owner a@b.com, page 2") == 1
    already = GongTapError("owner a@b.com, page 2: boom")
    already.where = "owner a@b.com, page 2"
    assert str(already) == "owner a@b.com, page 2: boom"


@pytest.mark.parametrize(
    ("owner", "page", "text"),
    [
        ("a@b.com", 3, "owner a@b.com, page 3"),
        ("a@b.com", None, "owner a@b.com"),
        ("/v2/users", 1, "/v2/users, page 1"),
        (None, 2, "page 2"),
        (None, None, ""),
    ],
)
def test_where(owner: str | None, page: int | None, text: str) -> None:
    assert where(owner, page) == text


def test_retriable_error_carries_the_wait() -> None:
    answer = response(429)
    error = GongRetriableError("slow down", answer, wait=2.5)
    assert error.wait == 2.5
    assert error.response is answer
    assert GongRetriableError("x", answer).wait is None


def quota(status: int, wait: float, header: str) -> QuotaSpentError:
    answer = response(
        status,
        {"requestId": "q1", "errors": ["Too many requests"]},
        headers={"Retry-After": header},
        url="https://api.gong.io/v2/flows?flowOwnerEmail=a%40b.com",
    )
    return QuotaSpentError(answer, wait)


def test_quota_spent_on_429() -> None:
    error = quota(429, 7200, "7200")
    text = str(error)
    assert text.startswith("Gong's API quota is spent: it answered HTTP 429 (requestId q1)")
    assert "wait 7200 s, until " in text
    assert "UTC" in text
    assert "max_retry_wait_seconds" in text
    assert "run again after that time" in text
    assert error.resume_at is not None
    assert error.wait == 7200


def test_quota_on_503_says_unavailable() -> None:
    text = str(quota(503, 7200, "7200"))
    assert text.startswith("Gong is unavailable: it answered HTTP 503")
    assert "quota" not in text


@pytest.mark.parametrize(
    ("wait", "header"), [(math.inf, "inf"), (1e300, "1e300"), (1e12, "1000000000000")]
)
def test_quota_with_a_wait_past_any_calendar(wait: float, header: str) -> None:
    error = quota(429, wait, header)  # no OverflowError
    assert error.resume_at is None
    assert f"asked us to wait {header!r}, which is no time a run can wait for" in str(error)


def test_quota_message_has_no_query_or_header() -> None:
    text = str(quota(429, 7200, "7200"))
    assert "flowOwnerEmail" not in text
    assert "Retry-After" not in text
