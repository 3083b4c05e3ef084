"""Tests of the Gong stand-in itself: if these fail, the tap's tests against it mean nothing."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import referencing.jsonschema
import requests

from tests.conftest import ROOT
from tests.gong_standin import (
    FINISHED_STATUSES,
    FLOWS,
    GREETING_HTML,
    OPEN_STATUSES,
    PROSPECTS,
    STEP_ACTIONS,
    STEPS,
    TASKS,
    USERS,
    Fault,
    GongStandIn,
    World,
    add_engage,
    cursor_token,
    main,
    make_world,
)

# Gong's published OpenAPI lives in `shared/` beside the clone, never inside it
GONG_OPENAPI = ROOT.parent / "shared" / "gong-openapi.json"
OWNER = "owner0002@example.com"
USER_METADATA_KEYS = {
    "id", "emailAddress", "created", "active", "emailAliases", "trustedEmailAddress", "firstName",
    "lastName", "title", "phoneNumber", "extension", "personalMeetingUrls", "settings",
    "managerId", "meetingConsentPageUrl", "spokenLanguages", "conferencingProviders",
}  # fmt: skip
FLOW_KEYS = {"id", "name", "folderId", "folderName", "visibility", "creationDate", "exclusive"}
# Gong's PublicApiFlowWithSteps and PublicApiFlowStep (gong-openapi.json, 2026 edition)
FLOW_WITH_STEPS_KEYS = {
    "id", "name", "folderId", "visibility", "creationDate", "exclusive", "description", "steps",
}  # fmt: skip
STEP_KEYS = {"id", "stepOrder", "action", "subject", "body", "isReply"}
# Gong's PublicApiAssignedFlow and ReminderDataDto (gong-openapi.json, 2026 edition)
ASSIGNED_FLOW_KEYS = {
    "flowId", "flowName", "crmProspectId", "flowInstanceId", "flowInstanceOwnerEmail",
    "flowInstanceOwnerFullName", "flowInstanceCreateDate", "flowInstanceStatus", "workspaceId",
    "exclusive",
}  # fmt: skip
TASK_KEYS = {
    "id", "userId", "created", "updated", "status", "type", "actions", "account", "opportunity",
    "dueDate", "flow", "contact", "additionalContacts", "title", "priority",
}  # fmt: skip
ALL_TASKS = {"types": ["FLOW", "MANUAL"], "taskAction": ["CALL"], "status": ["OPEN"]}


@pytest.fixture
def standin() -> Iterator[GongStandIn]:
    with GongStandIn(make_world(), page_size=2) as server:
        yield server


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.auth = ("test-key", "test-secret")
        yield http


def get_flows(
    http: requests.Session, standin: GongStandIn, owner: str = OWNER, **params: Any
) -> requests.Response:
    params = {"flowOwnerEmail": owner, **params}
    return http.get(f"{standin.url}/v2/flows", params=params, timeout=5)


def all_pages(http: requests.Session, standin: GongStandIn, owner: str = OWNER) -> list[dict]:
    flows: list[dict] = []
    cursor = None
    while True:
        response = get_flows(http, standin, owner, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        flows += response.json()["flows"]
        cursor = response.json()["records"].get("cursor")
        if cursor is None:
            return flows


def test_paging_returns_the_owners_flows_once_each(
    standin: GongStandIn, session: requests.Session
) -> None:
    flows = all_pages(session, standin)

    assert flows == standin.world.flows_for(OWNER, None)
    assert len(flows) == 9  # 5 Company, 3 own (Personal), 1 shared by owner0001
    assert [r.page for r in standin.requests] == [0, 1, 2, 3, 4]
    assert {r.status for r in standin.requests} == {200}
    assert len({r.request_id for r in standin.requests}) == 5
    assert all(set(flow) == FLOW_KEYS for flow in flows)
    shared = [f for f in flows if f["visibility"] == "Shared"]
    assert [f["name"] for f in shared] == ["owner0001@example.com shared flow 1"]
    assert session.get(f"{standin.url}/v2/flows", timeout=5).json()["errors"] == [
        "flowOwnerEmail is required"
    ]


def test_workspace_filter_and_cursor_bound_to_owner(
    standin: GongStandIn, session: requests.Session
) -> None:
    first = get_flows(session, standin, workspaceId="ws-1").json()
    assert first["records"]["totalRecords"] == len(standin.world.flows_for(OWNER, "ws-1"))
    cursor = first["records"]["cursor"]

    for owner, workspace in (("owner0001@example.com", "ws-1"), (OWNER, "ws-2"), (OWNER, "")):
        response = get_flows(session, standin, owner, cursor=cursor, workspaceId=workspace)
        assert response.status_code == 400
        assert response.json()["errors"] == ["Invalid cursor"]
    assert get_flows(session, standin, OWNER.upper(), cursor=cursor, workspaceId="ws-1").ok


def test_auth_basic_bearer_and_scopes(standin: GongStandIn) -> None:
    url = f"{standin.url}/v2/flows?flowOwnerEmail={OWNER}"
    bad = requests.get(url, auth=("test-key", "wrong"), timeout=5)
    assert bad.status_code == 401
    assert bad.json()["errors"] == ["Unauthorized: invalid credentials"]
    assert bad.json()["requestId"]
    bearer = {"Authorization": "Bearer test-token"}
    assert requests.get(url, headers=bearer, timeout=5).status_code == 200

    standin.token_scopes = {"api:users:read"}
    forbidden = requests.get(url, headers=bearer, timeout=5)
    assert forbidden.status_code == 403
    assert forbidden.json()["errors"] == ["Missing required scope api:flows:read"]
    users = requests.get(f"{standin.url}/v2/users", headers=bearer, timeout=5)
    assert users.status_code == 200


def test_faults_hit_their_page_then_recover(
    standin: GongStandIn, session: requests.Session
) -> None:
    standin.add_fault(Fault(page=1, status=503, headers={"Retry-After": "0"}))
    standin.add_fault(Fault(owner=OWNER.upper(), kind="reset"))
    cursor = get_flows(session, standin, "owner0001@example.com").json()["records"]["cursor"]

    with pytest.raises(requests.ConnectionError):
        get_flows(session, standin)
    assert get_flows(session, standin).status_code == 200  # the reset was used up
    failed = get_flows(session, standin, "owner0001@example.com", cursor=cursor)
    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "0"
    assert set(failed.json()) == {"requestId", "errors"}
    assert get_flows(session, standin, "owner0001@example.com", cursor=cursor).status_code == 200
    assert [(r.status, r.page) for r in standin.requests] == [
        (200, 0), (0, 0), (200, 0), (503, 1), (200, 1),
    ]  # fmt: skip


def test_broken_bodies(standin: GongStandIn, session: requests.Session) -> None:
    standin.add_fault(Fault(kind="truncate"))
    standin.add_fault(Fault(kind="badjson"))
    standin.add_fault(Fault(kind="shape", body={"requestId": "x"}))
    standin.add_fault(Fault(kind="cycle", page=2, cycle_to=1))
    standin.add_fault(Fault(kind="slow", delay=0.5))

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get_flows(session, standin)
    with pytest.raises(requests.exceptions.JSONDecodeError):
        get_flows(session, standin).json()
    assert get_flows(session, standin).json() == {"requestId": "x"}
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(f"{standin.url}/v2/flows", params={"flowOwnerEmail": OWNER}, timeout=0.2)
    one = get_flows(session, standin).json()["records"]["cursor"]
    two = get_flows(session, standin, cursor=one).json()["records"]["cursor"]
    assert get_flows(session, standin, cursor=two).json()["records"]["cursor"] == one


def test_rate_limit_answers_429_without_counting_it() -> None:
    with GongStandIn(rate_limit=2, rate_limit_retry_after="1") as standin, requests.Session() as s:
        s.auth = ("test-key", "test-secret")
        statuses = [get_flows(s, standin).status_code for _ in range(4)]
        assert statuses == [200, 200, 429, 429]
        limited = get_flows(s, standin)
        assert limited.headers["Retry-After"] == "1"
        assert limited.json()["errors"] == ["API request limit exceeded"]
        time.sleep(1.05)
        assert get_flows(s, standin).status_code == 200
        assert [r.status for r in standin.requests] == [200, 200, 429, 429, 429, 200]


def test_daily_quota_and_rejected_owner() -> None:
    world = make_world(inactive_users=1)
    world.rejected_owners["inactive0001@example.com"] = (400, "User is deactivated")
    with GongStandIn(world, daily_quota=2) as standin, requests.Session() as s:
        s.auth = ("test-key", "test-secret")
        rejected = get_flows(s, standin, "Inactive0001@example.com")
        assert (rejected.status_code, rejected.json()["errors"]) == (400, ["User is deactivated"])
        assert get_flows(s, standin).status_code == 200
        spent = get_flows(s, standin)
        assert spent.status_code == 429
        assert spent.headers["Retry-After"] == "36000"
        assert spent.json()["errors"] == ["Daily API quota exceeded"]


def test_users_and_workspaces(standin: GongStandIn, session: requests.Session) -> None:
    standin.world = make_world(inactive_users=1, users_without_email=1)
    users: list[dict] = []
    params: dict[str, str] = {"includeAvatars": "false"}
    while True:
        page = session.get(f"{standin.url}/v2/users", params=params, timeout=5).json()
        users += page["users"]
        if "cursor" not in page["records"]:
            break
        params["cursor"] = page["records"]["cursor"]
    assert users == standin.world.users
    assert all(set(user) == USER_METADATA_KEYS for user in users)
    assert [u["active"] for u in users] == [True, True, True, False, True]
    assert users[-1]["emailAddress"] is None
    workspaces = session.get(f"{standin.url}/v2/workspaces", timeout=5).json()
    assert [w["id"] for w in workspaces["workspaces"]] == ["ws-1", "ws-2"]
    assert session.get(f"{standin.url}/v2/nothing", timeout=5).status_code == 404


def test_concurrent_clients_overlap_latency() -> None:
    with GongStandIn(latency=0.3) as standin:
        url = f"{standin.url}/v2/flows?flowOwnerEmail={OWNER}"
        started = time.monotonic()
        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(lambda _: requests.get(url, timeout=5).status_code, range(6)))
        assert codes == [401] * 6  # no auth: still answered, after the latency
        assert time.monotonic() - started < 1.0


def test_command_line_serves_until_sigterm(tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "tests.gong_standin", "--port", "0", "--page-size", "2"]
    process = subprocess.Popen(
        [*command, "--url-file", str(url_file)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        url = url_file.read_text().strip()
        assert banner.startswith(f"Gong stand-in on {url} (access key test-key")
        response = requests.get(
            f"{url}/v2/flows",
            params={"flowOwnerEmail": OWNER},
            auth=("test-key", "test-secret"),
            timeout=5,
        )
        assert response.json()["records"]["currentPageSize"] == 2
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert stderr == ""


# Faults a tap must survive


def test_empty_fault_answers_a_fresh_cursor_every_time(
    standin: GongStandIn, session: requests.Session
) -> None:
    fault = Fault(kind="empty", times=-1)
    standin.add_fault(fault)
    total = len(standin.world.flows_for(OWNER, None))
    ordinary = {cursor_token(FLOWS, OWNER, None, page) for page in range(10)}
    seen: set[str] = set()
    cursor = None
    for page in range(6):  # a client that follows cursors would never stop
        answer = get_flows(session, standin, **({"cursor": cursor} if cursor else {})).json()
        cursor = answer["records"].pop("cursor")
        assert answer["flows"] == []
        assert answer["records"] == {
            "totalRecords": total,
            "currentPageSize": 0,
            "currentPageNumber": page,
        }
        assert cursor not in seen | ordinary
        seen.add(cursor)
    assert [(r.status, r.page) for r in standin.requests] == [(200, p) for p in range(6)]
    wrong_owner = get_flows(session, standin, "owner0001@example.com", cursor=cursor)
    assert wrong_owner.json()["errors"] == ["Invalid cursor"]  # still bound to its owner

    fault.times = 0  # Gong recovers: the last fresh cursor is an ordinary one for page 6
    after = get_flows(session, standin, cursor=cursor).json()
    assert (after["flows"], after["records"]["currentPageNumber"]) == ([], 6)
    assert "cursor" not in after["records"]


def test_empty_fault_on_users_then_the_fresh_cursor_leads_on(
    standin: GongStandIn, session: requests.Session
) -> None:
    standin.add_fault(Fault(path=USERS, kind="empty"))
    empty = session.get(f"{standin.url}/v2/users", timeout=5).json()
    assert empty["users"] == []
    assert empty["records"]["totalRecords"] == len(standin.world.users)
    assert empty["records"]["currentPageSize"] == 0
    cursor = empty["records"]["cursor"]
    assert cursor != cursor_token(USERS, None, None, 1)
    following = session.get(f"{standin.url}/v2/users", params={"cursor": cursor}, timeout=5)
    assert following.json()["users"] == standin.world.users[2:3]  # page 1, as a real cursor
    assert get_flows(session, standin).json()["flows"]  # the fault was for /v2/users only


def test_trickle_fault_keeps_each_read_quick_but_the_answer_slow(
    standin: GongStandIn, session: requests.Session
) -> None:
    expected = get_flows(session, standin).json()
    standin.add_fault(Fault(kind="trickle", delay=0.1, chunk=32))
    started = time.monotonic()
    slow = session.get(
        f"{standin.url}/v2/flows", params={"flowOwnerEmail": OWNER}, timeout=(2, 0.5)
    )
    elapsed = time.monotonic() - started

    writes = math.ceil(len(slow.content) / 32)
    assert elapsed >= 0.1 * (writes - 1) > 0.5  # slower in all than the read timeout
    assert {**slow.json(), "requestId": ""} == {**expected, "requestId": ""}
    assert standin.requests[-1].status == 200
    assert get_flows(session, standin).ok  # one use, as usual


def test_trickle_stops_writing_when_the_client_hangs_up(standin: GongStandIn) -> None:
    standin.add_fault(Fault(kind="trickle", delay=0.05))  # 1 byte every 50 ms: ~25 s a page
    before = set(threading.enumerate())
    credentials = requests.auth._basic_auth_str("test-key", "test-secret")
    request = (
        f"GET /v2/flows?flowOwnerEmail={OWNER} HTTP/1.1\r\nHost: gong\r\n"
        f"Authorization: {credentials}\r\n\r\n"
    )
    host, port = standin.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as client:
        client.sendall(request.encode())
        received = b""
        while b"\r\n\r\n" not in received or received.endswith(b"\r\n\r\n"):
            piece = client.recv(1024)  # the headers, then the body's first byte or so
            assert piece, f"the stand-in hung up first: {received!r}"
            received += piece
    assert received.startswith(b"HTTP/1.1 200")
    serving = set(threading.enumerate()) - before
    assert serving  # the handler thread writing the body
    deadline = time.monotonic() + 3
    while any(thread.is_alive() for thread in serving) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(thread.is_alive() for thread in serving), "a handler is still trickling"


def test_status_and_shape_faults_send_what_a_tap_must_survive(
    standin: GongStandIn, session: requests.Session
) -> None:
    standin.add_fault(Fault(status=503, headers={"Retry-After": "3"}))
    odd_ids = [{"id": [1, 2]}, {"id": 42}, {"id": 0}, {"id": False}]
    records = {"totalRecords": 4, "currentPageSize": 4, "currentPageNumber": 0}
    odd = {"requestId": "odd", "records": records, "flows": odd_ids}
    standin.add_fault(Fault(kind="shape", body=odd))
    object_cursor = {"requestId": "oc", "records": {"cursor": {"page": 2}}, "flows": []}
    standin.add_fault(Fault(kind="shape", body=object_cursor))

    unavailable = get_flows(session, standin)
    assert unavailable.status_code == 503
    assert unavailable.headers["Retry-After"] == "3"
    assert unavailable.json()["errors"] == ["Service Unavailable"]
    shaped = get_flows(session, standin)
    assert shaped.status_code == 200
    assert [flow["id"] for flow in shaped.json()["flows"]] == [[1, 2], 42, 0, False]
    assert get_flows(session, standin).json()["records"]["cursor"] == {"page": 2}
    assert get_flows(session, standin).json()["flows"]  # all three used up


# POST /v2/flows/steps


def post_steps(
    http: requests.Session, standin: GongStandIn, body: Any, **kwargs: Any
) -> requests.Response:
    """POST a steps request; bytes go as they are, anything else as JSON."""
    url = f"{standin.url}/v2/flows/steps"
    if isinstance(body, bytes):
        headers = {"Content-Type": "application/json"}
        return http.post(url, data=body, headers=headers, timeout=5, **kwargs)
    return http.post(url, json=body, timeout=5, **kwargs)


def test_steps_answers_each_flow_asked_for_with_its_steps(
    standin: GongStandIn, session: requests.Session
) -> None:
    world = standin.world
    company, personal = world.flows[1].id, world.flows[5].id
    assert (world.flows[1].owner, world.flows[5].owner) == (None, "owner0001@example.com")
    response = post_steps(session, standin, {"flowIds": [personal, company, personal]})

    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"requestId", "flows"}
    assert answer["requestId"] == standin.requests[-1].request_id
    assert answer["flows"] == [world.flow_with_steps(personal), world.flow_with_steps(company)]
    assert [f["visibility"] for f in answer["flows"]] == ["Personal", "Company"]
    for flow in answer["flows"]:
        assert set(flow) == FLOW_WITH_STEPS_KEYS
        assert all(set(step) == STEP_KEYS for step in flow["steps"])
        assert [s["stepOrder"] for s in flow["steps"]] == list(range(1, len(flow["steps"]) + 1))
    assert GREETING_HTML.encode() in response.content  # raw UTF-8 on the wire, not \u escapes
    assert answer["flows"][0]["steps"][0]["body"].endswith(GREETING_HTML)
    recorded = standin.requests[-1]
    assert (recorded.method, recorded.path, recorded.status) == ("POST", STEPS, 200)
    assert recorded.body_json == {"flowIds": [personal, company, personal]}
    assert recorded.flow_ids == [personal, company, personal]


def test_every_flow_has_deterministic_varied_steps() -> None:
    world = make_world(owners=4)
    assert [f.steps for f in world.flows] == [f.steps for f in make_world(owners=4).flows]
    assert {len(f.steps) for f in world.flows} == {1, 2, 3, 4}
    steps = [step for flow in world.flows for step in flow.steps]
    assert {s["action"] for s in steps} == set(STEP_ACTIONS)
    assert all(f.steps[0]["body"].endswith(GREETING_HTML) for f in world.flows)
    assert len({f.description for f in world.flows}) == len(world.flows)
    ids = [s["id"] for s in steps] + [f.id for f in world.flows] + [u["id"] for u in world.users]
    assert len(set(ids)) == len(ids)
    assert {s["isReply"] for s in steps} == {True, False}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Malformed request: the body is not JSON"),
        (b"", "Malformed request: the body is not JSON"),
        (["1"], "Malformed request: flowIds must be a list of flow id strings"),
        ({}, "Malformed request: flowIds must be a list of flow id strings"),
        ({"flowIds": "1"}, "Malformed request: flowIds must be a list of flow id strings"),
        ({"flowIds": [1]}, "Malformed request: flowIds must be a list of flow id strings"),
        ({"flowIds": []}, "Malformed request: flowIds must not be empty"),
        ({"flowIds": ["1"] * 21}, "Malformed request: at most 20 flowIds a request"),
    ],
)
def test_steps_rejects_a_malformed_batch(
    standin: GongStandIn, session: requests.Session, body: Any, message: str
) -> None:
    response = post_steps(session, standin, body)
    assert response.status_code == 400
    assert response.json() == {"requestId": standin.requests[-1].request_id, "errors": [message]}


def test_steps_takes_twenty_ids_and_only_post(session: requests.Session) -> None:
    with GongStandIn(make_world(owners=6)) as standin:
        twenty = [flow.id for flow in standin.world.flows[:20]]
        answer = post_steps(session, standin, {"flowIds": twenty}).json()
        assert [flow["id"] for flow in answer["flows"]] == twenty
        wrong_method = session.get(f"{standin.url}/v2/flows/steps", timeout=5)
        assert wrong_method.status_code == 405
        owner = {"flowOwnerEmail": OWNER}
        posted_list = session.post(f"{standin.url}/v2/flows", params=owner, timeout=5)
        assert posted_list.status_code == 405
        assert posted_list.json()["errors"] == ["Method POST is not allowed on /v2/flows"]


def test_steps_batch_with_a_vanished_or_unknown_flow_fails_whole(
    standin: GongStandIn, session: requests.Session
) -> None:
    kept, gone = standin.world.flows[0].id, standin.world.flows[1].id
    standin.world.vanish(gone)

    assert gone in {flow["id"] for flow in all_pages(session, standin)}  # still listed
    for ids in ([kept, gone], [gone], [kept, "1234567890123456789"]):
        response = post_steps(session, standin, {"flowIds": ids})
        assert response.status_code == 404
        assert response.json() == {
            "requestId": standin.requests[-1].request_id,
            "errors": ["Flow not found"],
        }
    assert post_steps(session, standin, {"flowIds": [kept]}).status_code == 200
    assert standin.world.flow_with_steps(gone) is None


def test_steps_share_auth_scopes_and_faults(
    standin: GongStandIn, session: requests.Session
) -> None:
    first, second = standin.world.flows[0].id, standin.world.flows[1].id
    body = {"flowIds": [first]}
    with requests.Session() as bare:
        assert post_steps(bare, standin, body, auth=("test-key", "wrong")).status_code == 401
        bearer = {"Authorization": "Bearer test-token"}
        standin.token_scopes = {"api:users:read"}
        forbidden = post_steps(bare, standin, body, headers=bearer)
        assert forbidden.status_code == 403
        assert forbidden.json()["errors"] == ["Missing required scope api:flows:read"]
        standin.token_scopes = {"api:flows:read"}
        assert post_steps(bare, standin, body, headers=bearer).status_code == 200

    standin.add_fault(Fault(kind="reset"))  # for GET /v2/flows: steps are not affected
    standin.add_fault(Fault(path=STEPS, flow_id=second, status=500, times=-1))
    standin.add_fault(Fault(path=STEPS, kind="empty"))
    assert post_steps(session, standin, {"flowIds": [first, second]}).status_code == 500
    empty = post_steps(session, standin, body).json()
    assert empty == {"requestId": standin.requests[-1].request_id, "flows": []}
    assert post_steps(session, standin, body).json()["flows"][0]["id"] == first
    assert post_steps(session, standin, {"flowIds": [second]}).status_code == 500


def test_steps_count_against_the_rate_limit_and_daily_quota(session: requests.Session) -> None:
    with GongStandIn(rate_limit=1, daily_quota=2) as standin:
        body = {"flowIds": [standin.world.flows[0].id]}
        assert post_steps(session, standin, body).status_code == 200
        limited = post_steps(session, standin, body)
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
        standin.rate_limit = None
        assert get_flows(session, standin).status_code == 200
        spent = post_steps(session, standin, body)
        assert spent.json()["errors"] == ["Daily API quota exceeded"]


def test_chunked_steps_request_is_read_whole(
    standin: GongStandIn, session: requests.Session
) -> None:
    ids = [flow.id for flow in standin.world.flows[:3]]
    payload = json.dumps({"flowIds": ids}).encode()
    pieces = iter([payload[:10], payload[10:]])  # a generator body goes out chunked
    response = session.post(f"{standin.url}/v2/flows/steps", data=pieces, timeout=5)
    assert response.status_code == 200, response.text
    assert standin.requests[-1].headers.get("Transfer-Encoding") == "chunked"
    assert standin.requests[-1].flow_ids == ids
    assert get_flows(session, standin).status_code == 200  # the connection is still in step


# The schemas the tap's rows follow


def schema(name: str) -> dict:
    return json.loads((ROOT / "schemas" / f"{name}.json").read_text())


def validate(rows: list[dict], against: dict) -> None:
    validator = jsonschema.Draft7Validator(against, format_checker=jsonschema.FormatChecker())
    for row in rows:
        validator.validate(row)


def gong_openapi(path: Path) -> dict:
    """Gong's published OpenAPI. Missing, the contract test skips on a developer's machine and
    fails under CI (CI=true), where skipping would pass it unchecked."""
    if not path.exists():
        where = f"Gong's OpenAPI is not at {path} (shared/ beside the repository)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{where}; CI checks the schemas against it, so it must be there")
        pytest.skip(where)
    return json.loads(path.read_text())


def test_a_missing_openapi_skips_on_a_developers_machine(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not at"):
        gong_openapi(tmp_path / "gong-openapi.json")


def test_a_missing_openapi_fails_under_ci(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must be there"):
        gong_openapi(tmp_path / "gong-openapi.json")


def test_steps_answers_fit_the_flow_steps_and_flow_definitions_schemas(
    session: requests.Session,
) -> None:
    with GongStandIn(make_world(owners=6)) as standin:
        ids = [flow.id for flow in standin.world.flows]
        flows = []
        for start in range(0, len(ids), 20):
            batch = {"flowIds": ids[start : start + 20]}
            flows += post_steps(session, standin, batch).json()["flows"]
    assert [flow["id"] for flow in flows] == ids
    definitions = [{k: v for k, v in flow.items() if k != "steps"} for flow in flows]
    steps = [{"flow_id": flow["id"], **step} for flow in flows for step in flow["steps"]]
    validate(definitions, schema("flow_definitions"))
    validate(steps, schema("flow_steps"))
    assert set(schema("flow_definitions")["properties"]) == FLOW_WITH_STEPS_KEYS - {"steps"}
    assert set(schema("flow_steps")["properties"]) == STEP_KEYS | {"flow_id"}
    assert schema("flow_steps")["required"] == ["flow_id", "id"]
    # every field Gong may leave out or null validates, and fields Gong adds pass through
    for name, key in (
        ("flow_definitions", {"id": "1"}),
        ("flow_steps", {"flow_id": "1", "id": "2"}),
    ):
        nullable = set(schema(name)["properties"]) - set(key)
        validate([{**key, **dict.fromkeys(nullable), "addedByGong": 1}], schema(name))
    with pytest.raises(jsonschema.ValidationError):
        validate([{"id": "2", "stepOrder": 1}], schema("flow_steps"))


def test_users_schema_is_the_2026_user_metadata(
    standin: GongStandIn, session: requests.Session
) -> None:
    users_schema = schema("users")
    validate(session.get(f"{standin.url}/v2/users", timeout=5).json()["users"], users_schema)
    providers = [{"provider": "zoom", "isDefault": True}, {"provider": "teams", "isDefault": False}]
    validate([{**standin.world.users[0], "conferencingProviders": providers}], users_schema)
    assert set(users_schema["properties"]) == USER_METADATA_KEYS | {"conferencingProviders"}
    published = gong_openapi(GONG_OPENAPI)["components"]["schemas"]
    assert set(published["UserMetadata"]["properties"]) == set(users_schema["properties"])
    item = users_schema["properties"]["conferencingProviders"]["items"]["properties"]
    assert set(published["ConferencingProvider"]["properties"]) == set(item)
    assert set(published["PublicApiFlowStep"]["properties"]) == STEP_KEYS
    assert set(published["PublicApiFlowWithSteps"]["properties"]) == FLOW_WITH_STEPS_KEYS


# POST /v2/flows/prospects and POST /v2/tasks


@pytest.fixture
def engage() -> Iterator[GongStandIn]:
    with GongStandIn(add_engage(make_world(), prospects=12)) as server:
        yield server


def post(
    http: requests.Session, standin: GongStandIn, path: str, body: Any, **kwargs: Any
) -> requests.Response:
    """POST to ``path``; bytes go as they are, anything else as JSON."""
    if isinstance(body, bytes):
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        return http.post(f"{standin.url}{path}", data=body, headers=headers, timeout=5, **kwargs)
    return http.post(f"{standin.url}{path}", json=body, timeout=5, **kwargs)


def tasks_body(user_id: str, **changes: Any) -> dict[str, Any]:
    return {"filter": {"userId": user_id, **ALL_TASKS, **changes}}


def all_tasks(world: World) -> list[dict]:
    return [task for tasks in world.tasks.values() for task in tasks]


def test_add_engage_builds_the_described_world_deterministically() -> None:
    world = add_engage(make_world(), prospects=12)
    assert world.instances == add_engage(make_world(), prospects=12).instances
    assert world.tasks == add_engage(make_world(), prospects=12).tasks
    plain = make_world()
    assert (world.flows, world.users) == (plain.flows, plain.users)  # make_world untouched
    assert world.crm_ids() == [f"crm{i:06d}" for i in range(1, 13)]
    flows = {flow.id: flow for flow in world.flows}
    emails = {user["emailAddress"]: user for user in world.users}
    for i, crm_id in enumerate(world.crm_ids(), start=1):
        mine = [x for x in world.instances if x["crmProspectId"] == crm_id]
        opened = [x for x in mine if x["flowInstanceStatus"] in OPEN_STATUSES]
        finished = [x for x in mine if x["flowInstanceStatus"] in FINISHED_STATUSES]
        assert [x["flowInstanceStatus"] for x in opened] == [OPEN_STATUSES[(i - 1) % 3]]
        expected = [FINISHED_STATUSES[(i // 3 - 1) % 3]] if i % 3 == 0 else []
        assert [x["flowInstanceStatus"] for x in finished] == expected
    for instance in world.instances:
        assert set(instance) == ASSIGNED_FLOW_KEYS
        flow = flows[instance["flowId"]]
        owner = flow.owner or world.users[0]["emailAddress"]
        assert (instance["flowName"], instance["workspaceId"]) == (flow.name, flow.workspace_id)
        assert (instance["exclusive"], instance["flowInstanceOwnerEmail"]) == (
            flow.exclusive,
            owner,
        )
        user = emails[owner]
        assert instance["flowInstanceOwnerFullName"] == f"{user['firstName']} {user['lastName']}"
        assert all(
            isinstance(instance[k], str) for k in ("flowId", "flowInstanceId", "workspaceId")
        )
    ids = [x["flowInstanceId"] for x in world.instances]
    assert len(set(ids)) == len(ids) == 16
    assert all(len(i) == 16 and i.isdigit() for i in ids)
    assert {x["flowInstanceOwnerEmail"] for x in world.instances} == set(emails)  # all owners

    world.set_status(ids[0], "FinishedResponse")
    assert world.instances[0]["flowInstanceStatus"] == "FinishedResponse"
    with pytest.raises(KeyError):
        world.set_status("0", "Running")
    with pytest.raises(ValueError, match="unknown status"):
        world.set_status(ids[0], "Done")


def test_add_engage_tasks_follow_the_open_instances() -> None:
    world = add_engage(make_world(), prospects=12)
    users = {user["id"]: user for user in world.users}
    flows = {int(flow.id): flow for flow in world.flows}
    assert set(world.tasks) == set(users)
    tasks = all_tasks(world)
    flow_tasks = [t for t in tasks if t["type"] == "FLOW"]
    manual = [t for t in tasks if t["type"] == "MANUAL"]
    opened = [x for x in world.instances if x["flowInstanceStatus"] in OPEN_STATUSES]
    assert len(flow_tasks) == len(opened)
    assert len(manual) == len(users)
    for user_id, mine in world.tasks.items():
        assert [t["type"] for t in mine].count("MANUAL") == 1
        assert {t["userId"] for t in mine} == {int(user_id)}
    pairs = set()
    for task in flow_tasks:
        owner = users[str(task["userId"])]["emailAddress"]
        flow = flows[task["flow"]["id"]]
        pairs.add((task["contact"]["crmId"], flow.id, owner))
        step = next(s for s in flow.steps if int(s["id"]) == task["flow"]["step"]["id"])
        assert task["flow"]["step"]["stepNumber"] == step["stepOrder"]
        assert task["flow"]["name"] == flow.name
        assert "title" not in task
    assert pairs == {(x["crmProspectId"], x["flowId"], x["flowInstanceOwnerEmail"]) for x in opened}
    assert all("flow" not in t and t["title"] for t in manual)
    contacts = [c for t in tasks for c in (t["contact"], *t["additionalContacts"])]
    assert {c["crmId"] for c in contacts} <= set(world.crm_ids())
    assert sum(bool(t["additionalContacts"]) for t in tasks) >= 3
    assert 0 < sum("opportunity" in t for t in tasks) < len(tasks)
    ints = [t[k] for t in tasks for k in ("id", "userId")] + [t["priority"]["id"] for t in tasks]
    ints += [t["flow"]["id"] for t in flow_tasks] + [t["flow"]["step"]["id"] for t in flow_tasks]
    assert all(type(i) is int for i in ints)  # int64 in Gong's OpenAPI, so ints on the wire
    assert len({t["id"] for t in tasks}) == len(tasks)
    assert {t["contact"]["type"] for t in tasks} == {"CONTACT", "LEAD"}
    assert {t["status"] for t in tasks} == {"OPEN"}
    assert {tuple(t["actions"]) for t in tasks} == {("CALL",)}
    assert add_engage(make_world(), prospects=0).tasks == {u: [] for u in users}

    named = make_world()
    for k, flow in enumerate(named.flows):  # ids that are not numbers: a stable int stands in
        flow.id = f"flow-{k}"
    first, second = (all_tasks(add_engage(make_world_like(named), prospects=4)) for _ in "12")
    flow_ids = [t["flow"]["id"] for t in first if t["type"] == "FLOW"]
    assert flow_ids == [t["flow"]["id"] for t in second if t["type"] == "FLOW"]
    assert all(type(i) is int and 0 < i < 2**63 for i in flow_ids)
    assert len(set(flow_ids)) == 4


def make_world_like(world: World) -> World:
    """A copy of ``world`` with its own flows, so add_engage on it leaves ``world`` alone."""
    flows = [dataclasses.replace(flow) for flow in world.flows]
    return World(flows=flows, users=world.users, workspaces=world.workspaces)


def test_prospects_by_crm_ids_answers_open_instances_only(
    engage: GongStandIn, session: requests.Session
) -> None:
    world = engage.world
    asked = ["crm000003", "crm000001", "crm999999", "crm000003"]
    response = post(session, engage, PROSPECTS, {"crmProspectsIds": asked})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"requestId", "prospectsAssigned"}
    assert answer["requestId"] == engage.requests[-1].request_id
    expected = sorted(
        (x for x in world.instances if x["crmProspectId"] in asked),
        key=lambda x: (x["crmProspectId"], x["flowInstanceId"]),
    )
    open_only = [x for x in expected if x["flowInstanceStatus"] in OPEN_STATUSES]
    assert len(open_only) == 2 < len(expected)  # crm000003 has a finished instance too
    assert answer["prospectsAssigned"] == open_only
    recorded = engage.requests[-1]
    assert (recorded.method, recorded.path, recorded.status) == ("POST", PROSPECTS, 200)
    assert recorded.json() == {"crmProspectsIds": asked}
    assert recorded.prospect_ids == asked

    world.set_status(open_only[0]["flowInstanceId"], "Finished")  # between runs
    again = post(session, engage, PROSPECTS, {"crmProspectsIds": asked}).json()
    assert again["prospectsAssigned"] == open_only[1:]
    everyone = post(session, engage, PROSPECTS, {"crmProspectsIds": world.crm_ids()}).json()
    ordered = [(x["crmProspectId"], x["flowInstanceId"]) for x in everyone["prospectsAssigned"]]
    assert ordered == sorted(ordered)
    assert len(ordered) == 11
    assert (
        post(session, engage, PROSPECTS, {"crmProspectsIds": []}).json()["prospectsAssigned"] == []
    )


def test_prospects_by_instance_ids_answers_every_status(
    engage: GongStandIn, session: requests.Session
) -> None:
    world = engage.world
    finished = [x for x in world.instances if x["flowInstanceStatus"] in FINISHED_STATUSES]
    ids = [x["flowInstanceId"] for x in world.instances[:5]] + ["1111111111111111"]
    answer = post(session, engage, PROSPECTS, {"flowInstanceIds": ids}).json()
    expected = sorted(world.instances[:5], key=lambda x: (x["crmProspectId"], x["flowInstanceId"]))
    assert answer["prospectsAssigned"] == expected
    assert {x["flowInstanceStatus"] for x in expected} & set(FINISHED_STATUSES)
    world.instances.reverse()  # the answer's order is Gong's sort, not the world's
    every = [x["flowInstanceId"] for x in world.instances]
    ordered = post(session, engage, PROSPECTS, {"flowInstanceIds": every}).json()
    pairs = [(x["crmProspectId"], x["flowInstanceId"]) for x in ordered["prospectsAssigned"]]
    assert pairs == sorted((x["crmProspectId"], x["flowInstanceId"]) for x in world.instances)
    by_id = [x["flowInstanceId"] for x in finished]
    found = post(session, engage, PROSPECTS, {"flowInstanceIds": by_id}).json()
    assert [x["flowInstanceId"] for x in found["prospectsAssigned"]] == sorted(
        by_id, key=lambda i: next(x["crmProspectId"] for x in finished if x["flowInstanceId"] == i)
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Malformed request: the body is not JSON"),
        (b"", "Malformed request: the body is not JSON"),
        (["crm000001"], "Malformed request: exactly one of crmProspectsIds or flowInstanceIds"),
        ({}, "Malformed request: exactly one of crmProspectsIds or flowInstanceIds"),
        (
            {"crmProspectsIds": ["crm000001"], "flowInstanceIds": []},
            "Malformed request: exactly one of crmProspectsIds or flowInstanceIds",
        ),
        (
            {"crmProspectsIds": "crm000001"},
            "Malformed request: crmProspectsIds must be a list of id strings",
        ),
        (
            {"flowInstanceIds": [1234]},
            "Malformed request: flowInstanceIds must be a list of id strings",
        ),
        (
            {"flowInstanceIds": None},
            "Malformed request: flowInstanceIds must be a list of id strings",
        ),
    ],
)
def test_prospects_rejects_a_malformed_body(
    engage: GongStandIn, session: requests.Session, body: Any, message: str
) -> None:
    response = post(session, engage, PROSPECTS, body)
    assert response.status_code == 400
    assert response.json() == {"requestId": engage.requests[-1].request_id, "errors": [message]}


def test_prospects_id_limit_and_refused_ids_answer_a_bare_malformed_request(
    session: requests.Session,
) -> None:
    world = add_engage(make_world(), prospects=12)
    with GongStandIn(world, prospects_id_limit=5) as standin:
        assert standin.refused_prospect_ids == set()
        five = world.crm_ids()[:5]
        assert post(session, standin, PROSPECTS, {"crmProspectsIds": five}).status_code == 200
        instances = [x["flowInstanceId"] for x in world.instances[:6]]
        for body in ({"crmProspectsIds": world.crm_ids()[:6]}, {"flowInstanceIds": instances}):
            too_many = post(session, standin, PROSPECTS, body)
            assert too_many.status_code == 400
            assert too_many.json()["errors"] == ["Malformed request"]  # no size to lean on

        standin.refused_prospect_ids = {"crm000004", instances[0]}
        for body in (
            {"crmProspectsIds": ["crm000001", "crm000004"]},
            {"flowInstanceIds": instances[:2]},
        ):
            refused = post(session, standin, PROSPECTS, body)
            assert (refused.status_code, refused.json()["errors"]) == (400, ["Malformed request"])
        split = post(session, standin, PROSPECTS, {"crmProspectsIds": ["crm000001"]})
        assert split.status_code == 200
        assert split.json()["prospectsAssigned"]
    with pytest.raises(ValueError, match="at least 1"):
        GongStandIn(world, prospects_id_limit=0)


def test_tasks_answer_the_users_tasks_by_type_and_status(
    engage: GongStandIn, session: requests.Session
) -> None:
    user_id = engage.world.users[0]["id"]
    mine = engage.world.tasks[user_id]
    response = post(session, engage, TASKS, tasks_body(user_id))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer == {
        "requestId": engage.requests[-1].request_id,
        "tasks": mine,
        "crmType": "SALESFORCE",
    }
    assert "Müller".encode() in response.content  # raw UTF-8, as the steps answer
    flow_only = post(session, engage, TASKS, tasks_body(user_id, types=["FLOW"])).json()["tasks"]
    assert flow_only == [t for t in mine if t["type"] == "FLOW"]
    assert flow_only
    manual = post(session, engage, TASKS, tasks_body(user_id, types=["MANUAL"])).json()["tasks"]
    assert manual == [t for t in mine if t["type"] == "MANUAL"]
    assert len(manual) == 1
    done = post(session, engage, TASKS, tasks_body(user_id, status=["DONE", "DISMISSED"]))
    assert done.json()["tasks"] == []
    recorded = engage.requests[-1]
    assert (recorded.path, recorded.user_id, recorded.json()) == (
        TASKS, user_id, tasks_body(user_id, status=["DONE", "DISMISSED"]),
    )  # fmt: skip

    workspace = engage.world.flows[0].workspace_id
    here = {int(f.id) for f in engage.world.flows if f.workspace_id == workspace}
    in_workspace = post(session, engage, TASKS, tasks_body(user_id, workspaceId=workspace))
    kept = in_workspace.json()["tasks"]
    assert kept == [t for t in mine if t["type"] == "MANUAL" or t["flow"]["id"] in here]
    assert len(kept) < len(mine)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Malformed request: the body is not JSON"),
        ({}, "Malformed request: filter is required"),
        ({"filter": ["x"]}, "Malformed request: filter is required"),
        ({"filter": {**ALL_TASKS}}, "Malformed request: filter.userId must be a user id string"),
        (
            {"filter": {**ALL_TASKS, "userId": 7}},
            "Malformed request: filter.userId must be a user id string",
        ),
        (
            {"filter": {**ALL_TASKS, "userId": ""}},
            "Malformed request: filter.userId must be a user id string",
        ),
        (
            {"filter": {"userId": "1", "taskAction": ["CALL"], "status": ["OPEN"]}},
            "Malformed request: filter.types must be a list of FLOW, MANUAL",
        ),
        (
            {"filter": {**ALL_TASKS, "userId": "1", "types": ["CALL"]}},
            "Malformed request: filter.types must be a list of FLOW, MANUAL",
        ),
        (
            {"filter": {**ALL_TASKS, "userId": "1", "taskAction": ["EMAIL"]}},
            "Malformed request: filter.taskAction must be a list of CALL",
        ),
        (
            {"filter": {**ALL_TASKS, "userId": "1", "taskAction": []}},
            "Malformed request: filter.taskAction must be a list of CALL",
        ),
        (
            {"filter": {"userId": "1", "types": ["FLOW"], "taskAction": ["CALL"]}},
            "Malformed request: filter.status must be a list of OPEN, DONE, DISMISSED",
        ),
        (
            {"filter": {**ALL_TASKS, "userId": "1", "status": "OPEN"}},
            "Malformed request: filter.status must be a list of OPEN, DONE, DISMISSED",
        ),
        (
            {"filter": {**ALL_TASKS, "userId": "1", "workspaceId": 1}},
            "Malformed request: filter.workspaceId must be a string",
        ),
    ],
)
def test_tasks_rejects_a_malformed_filter(
    engage: GongStandIn, session: requests.Session, body: Any, message: str
) -> None:
    response = post(session, engage, TASKS, body)
    assert response.status_code == 400
    assert response.json() == {"requestId": engage.requests[-1].request_id, "errors": [message]}


def test_tasks_of_an_unknown_or_rejected_user(
    engage: GongStandIn, session: requests.Session
) -> None:
    unknown = post(session, engage, TASKS, tasks_body("123"))
    assert unknown.status_code == 404
    assert unknown.json() == {
        "errors": ["No user found corresponding to the provided userId 123"]
    }  # Gong's 404 here carries no requestId
    user_id = engage.world.users[1]["id"]
    engage.rejected_task_users[user_id] = (403, "User has no Engage licence")
    assert engage.world.rejected_task_users == {user_id: (403, "User has no Engage licence")}
    rejected = post(session, engage, TASKS, tasks_body(user_id))
    assert rejected.status_code == 403
    assert rejected.json() == {
        "requestId": engage.requests[-1].request_id,
        "errors": ["User has no Engage licence"],
    }
    other = engage.world.users[2]["id"]
    assert post(session, engage, TASKS, tasks_body(other)).status_code == 200


def test_tasks_page_with_the_cursor_in_the_body(session: requests.Session) -> None:
    world = add_engage(make_world(), prospects=12)
    user_id, other = world.users[0]["id"], world.users[1]["id"]
    with GongStandIn(world, tasks_page_size=2) as standin:
        tasks: list[dict] = []
        body: dict[str, Any] = tasks_body(user_id)
        cursors: list[str] = []
        while True:
            answer = post(session, standin, TASKS, body).json()
            assert answer["crmType"] == "SALESFORCE"
            assert answer["records"]["totalRecords"] == len(world.tasks[user_id])
            assert answer["records"]["currentPageSize"] == len(answer["tasks"])
            assert answer["records"]["currentPageNumber"] == len(cursors)
            tasks += answer["tasks"]
            if "cursor" not in answer["records"]:
                break
            cursors.append(answer["records"]["cursor"])
            body = {**tasks_body(user_id), "cursor": cursors[-1]}
        assert tasks == world.tasks[user_id]
        assert len(cursors) == 3
        assert [r.page for r in standin.requests] == [0, 1, 2, 3]

        in_query = session.post(
            f"{standin.url}/v2/tasks",
            params={"cursor": cursors[0]},
            json=tasks_body(user_id),
            timeout=5,
        )
        assert in_query.status_code == 400
        theirs = post(session, standin, TASKS, {**tasks_body(other), "cursor": cursors[0]})
        assert (theirs.status_code, theirs.json()["errors"]) == (400, ["Invalid cursor"])
        garbled = post(session, standin, TASKS, {**tasks_body(user_id), "cursor": 12})
        assert garbled.status_code == 400
        steps_cursor = cursor_token(STEPS, user_id, None, 1)
        foreign = post(session, standin, TASKS, {**tasks_body(user_id), "cursor": steps_cursor})
        assert foreign.status_code == 400

        standin.add_fault(Fault(path=TASKS, page=1, status=503))
        failed = post(session, standin, TASKS, {**tasks_body(user_id), "cursor": cursors[0]})
        assert failed.status_code == 503
        again = post(session, standin, TASKS, {**tasks_body(user_id), "cursor": cursors[0]})
        assert again.json()["tasks"] == world.tasks[user_id][2:4]
    with GongStandIn(world) as unpaged:
        answer = post(session, unpaged, TASKS, tasks_body(user_id)).json()
        assert "records" not in answer
        assert answer["tasks"] == world.tasks[user_id]


def test_prospects_and_tasks_only_post_auth_scopes_and_faults(
    engage: GongStandIn, session: requests.Session
) -> None:
    user_id = engage.world.users[0]["id"]
    crm = {"crmProspectsIds": ["crm000001"]}
    for path in (PROSPECTS, TASKS):
        wrong_method = session.get(f"{engage.url}{path}", timeout=5)
        assert wrong_method.status_code == 405
        assert wrong_method.json()["errors"] == [f"Method GET is not allowed on {path}"]
    with requests.Session() as bare:
        assert post(bare, engage, PROSPECTS, crm, auth=("test-key", "no")).status_code == 401
        assert post(bare, engage, TASKS, tasks_body(user_id)).status_code == 401
        bearer = {"Authorization": "Bearer test-token"}
        engage.token_scopes = {"api:flows:read", "api:users:read"}
        assert post(bare, engage, PROSPECTS, crm, headers=bearer).status_code == 200
        forbidden = post(bare, engage, TASKS, tasks_body(user_id), headers=bearer)
        assert forbidden.status_code == 403
        assert forbidden.json()["errors"] == ["Missing required scope api:tasks:read"]
        engage.token_scopes = {"api:tasks:read"}
        assert post(bare, engage, TASKS, tasks_body(user_id), headers=bearer).status_code == 200
        assert post(bare, engage, PROSPECTS, crm, headers=bearer).status_code == 403

    engage.add_fault(Fault(path=PROSPECTS, prospect_id="crm000002", status=500, times=-1))
    engage.add_fault(Fault(path=TASKS, user_id=user_id, kind="reset"))
    engage.add_fault(Fault(path=PROSPECTS, kind="empty"))
    engage.add_fault(Fault(path=TASKS, kind="empty"))
    two = {"crmProspectsIds": ["crm000001", "crm000002"]}
    assert post(session, engage, PROSPECTS, two).status_code == 500
    empty = post(session, engage, PROSPECTS, crm).json()
    assert empty == {"requestId": engage.requests[-1].request_id, "prospectsAssigned": []}
    assert post(session, engage, PROSPECTS, crm).json()["prospectsAssigned"]
    other = engage.world.users[1]["id"]
    assert post(session, engage, TASKS, tasks_body(other)).json()["tasks"] == []  # "empty" hit
    with pytest.raises(requests.ConnectionError):  # the reset waited for its user
        post(session, engage, TASKS, tasks_body(user_id))
    assert engage.requests[-1].status == 0
    assert post(session, engage, TASKS, tasks_body(user_id)).json()["tasks"]  # both used up
    assert post(session, engage, PROSPECTS, two).status_code == 500


def test_prospects_and_tasks_count_against_the_rate_limit_and_daily_quota(
    session: requests.Session,
) -> None:
    world = add_engage(make_world(), prospects=3)
    body = tasks_body(world.users[0]["id"])
    with GongStandIn(world, rate_limit=1, daily_quota=3) as standin:
        assert post(session, standin, PROSPECTS, {"crmProspectsIds": ["crm000001"]}).ok
        limited = post(session, standin, TASKS, body)
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
        standin.rate_limit = None
        assert post(session, standin, TASKS, body).ok
        assert get_flows(session, standin).ok
        spent = post(session, standin, PROSPECTS, {"flowInstanceIds": []})
        assert spent.json()["errors"] == ["Daily API quota exceeded"]
        assert post(session, standin, TASKS, body).status_code == 429
        assert [r.path for r in standin.requests] == [
            PROSPECTS, TASKS, TASKS, FLOWS, PROSPECTS, TASKS,
        ]  # fmt: skip


def test_command_line_help_lists_every_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for endpoint in (FLOWS, USERS, "/v2/workspaces", STEPS, PROSPECTS, TASKS):
        assert endpoint in text
    for option in ("--prospects", "--tasks-page-size", "--prospects-id-limit"):
        assert option in text


# The contract: Gong's OpenAPI for both endpoints, and the tap's two new schemas


def openapi_validator(openapi: dict, component: str) -> jsonschema.Draft7Validator:
    """A validator for one of the OpenAPI's component schemas, its ``$ref``s resolved in the
    document. Its non-standard keys (``exampleSetFlag``, ``types``) are unknown keywords, which
    JSON Schema ignores; no property of these schemas uses OpenAPI's ``nullable``."""
    resource = referencing.jsonschema.DRAFT7.create_resource(openapi)
    registry = referencing.Registry().with_resource("urn:gong-openapi", resource)
    ref = {"$ref": f"urn:gong-openapi#/components/schemas/{component}"}
    return jsonschema.Draft7Validator(ref, registry=registry)


def test_prospects_and_tasks_fit_gongs_openapi(
    engage: GongStandIn, session: requests.Session
) -> None:
    openapi = gong_openapi(GONG_OPENAPI)
    published = openapi["components"]["schemas"]
    world = engage.world
    user_id = world.users[0]["id"]
    accepted = [
        {"crmProspectsIds": world.crm_ids()},
        {"flowInstanceIds": [x["flowInstanceId"] for x in world.instances]},
        tasks_body(user_id),
        tasks_body(user_id, types=["MANUAL"], workspaceId="ws-1"),
        tasks_body(user_id, status=["OPEN", "DONE", "DISMISSED"]),
    ]
    answers = [post(session, engage, PROSPECTS, body) for body in accepted[:2]]
    answers += [post(session, engage, TASKS, body) for body in accepted[2:]]
    assert [a.status_code for a in answers] == [200] * 5
    requests_of = ["ProspectsAssignedFlowsRequestV2"] * 2 + ["ListReminderRequest"] * 3
    for body, component in zip(accepted, requests_of, strict=True):
        openapi_validator(openapi, component).validate(body)
    for answer in answers[:2]:
        openapi_validator(openapi, "ProspectsFlowsResponse").validate(answer.json())
    tasks_answers = [post(session, engage, TASKS, tasks_body(u["id"])).json() for u in world.users]
    for answer in [a.json() for a in answers[2:]] + tasks_answers:
        openapi_validator(openapi, "UserRemindersResponse").validate(answer)
    # The validators do bite: a string task id, or a status outside the enum, fails them.
    task = tasks_answers[0]["tasks"][0]
    broken = [{**task, "id": str(task["id"])}, {**task, "status": "SNOOZED"}]
    for bad in broken:
        with pytest.raises(jsonschema.ValidationError):
            openapi_validator(openapi, "ReminderDataDto").validate(bad)
    with pytest.raises(jsonschema.ValidationError):
        openapi_validator(openapi, "ListReminderRequest").validate({"filter": {"userId": ""}})

    assert set(published["PublicApiAssignedFlow"]["properties"]) == ASSIGNED_FLOW_KEYS
    assert all(set(x) == ASSIGNED_FLOW_KEYS for x in world.instances)
    assert set(published["ReminderDataDto"]["properties"]) == TASK_KEYS
    assert set().union(*(set(t) for t in all_tasks(world))) == TASK_KEYS
    for component, records in (
        (
            "ContactDto",
            [c for t in all_tasks(world) for c in (t["contact"], *t["additionalContacts"])],
        ),
        ("ContactCrmData", [t["contact"]["data"] for t in all_tasks(world)]),
        (
            "PersonPhoneDto",
            [p for t in all_tasks(world) for p in t["contact"]["data"]["phoneNumbers"]],
        ),
        ("FlowDto", [t["flow"] for t in all_tasks(world) if "flow" in t]),
        ("StepDto", [t["flow"]["step"] for t in all_tasks(world) if "flow" in t]),
        ("AccountDto", [t["account"] for t in all_tasks(world)]),
        ("OpportunityDto", [t["opportunity"] for t in all_tasks(world) if "opportunity" in t]),
        ("Priority", [t["priority"] for t in all_tasks(world)]),
    ):
        assert records, component
        assert all(set(r) == set(published[component]["properties"]) for r in records), component
    # The request schemas name what the stand-in reads
    assert set(published["ProspectsAssignedFlowsRequestV2"]["properties"]) == {
        "crmProspectsIds", "flowInstanceIds",
    }  # fmt: skip
    task_filter = published["ReminderFilter"]
    assert set(task_filter["required"]) == {"userId", "types", "taskAction", "status"}
    assert set(task_filter["properties"]) == {
        "userId",
        "types",
        "taskAction",
        "status",
        "workspaceId",
    }


def as_tap_task(task: dict, owner_email: str) -> dict:
    """A task as the tap writes it: every integer id a string, and whose tasks these are."""
    row = {**task, "owner_email": owner_email, "id": str(task["id"]), "userId": str(task["userId"])}
    row["priority"] = {**task["priority"], "id": str(task["priority"]["id"])}
    if "flow" in task:
        step = {**task["flow"]["step"], "id": str(task["flow"]["step"]["id"])}
        row["flow"] = {**task["flow"], "id": str(task["flow"]["id"]), "step": step}
    return row


def test_flow_instances_and_tasks_schemas_take_the_standins_answers(
    engage: GongStandIn, session: requests.Session
) -> None:
    world = engage.world
    instances = post(session, engage, PROSPECTS, {"flowInstanceIds": [
        x["flowInstanceId"] for x in world.instances
    ]}).json()["prospectsAssigned"]  # fmt: skip
    assert len(instances) == len(world.instances)
    validate(instances, schema("flow_instances"))
    rows = []
    for user in world.users:
        answer = post(session, engage, TASKS, tasks_body(user["id"])).json()
        rows += [as_tap_task(task, user["emailAddress"]) for task in answer["tasks"]]
    assert len(rows) == len(all_tasks(world))
    validate(rows, schema("tasks"))
    with pytest.raises(jsonschema.ValidationError):  # Gong's integer ids are not the tap's
        validate([{**all_tasks(world)[0], "owner_email": "x@example.com"}], schema("tasks"))

    published = gong_openapi(GONG_OPENAPI)["components"]["schemas"]
    instances_schema, tasks_schema = schema("flow_instances"), schema("tasks")
    assert set(instances_schema["properties"]) == ASSIGNED_FLOW_KEYS
    assert set(tasks_schema["properties"]) == TASK_KEYS | {"owner_email"}
    assert (instances_schema["required"], tasks_schema["required"]) == (
        ["flowInstanceId"], ["id", "owner_email"],
    )  # fmt: skip
    props = tasks_schema["properties"]
    contact = props["contact"]["properties"]
    nested = {
        "ContactDto": contact,
        "ContactCrmData": contact["data"]["properties"],
        "PersonPhoneDto": contact["data"]["properties"]["phoneNumbers"]["items"]["properties"],
        "ContactEmailDto": contact["data"]["properties"]["emails"]["items"]["properties"],
        "FlowDto": props["flow"]["properties"],
        "StepDto": props["flow"]["properties"]["step"]["properties"],
        "AccountDto": props["account"]["properties"],
        "OpportunityDto": props["opportunity"]["properties"],
        "Priority": props["priority"]["properties"],
    }
    for component, properties in nested.items():
        assert set(properties) == set(published[component]["properties"]), component
    assert props["additionalContacts"]["items"]["properties"] == props["contact"]["properties"]
    string_ids = [props["id"], props["userId"], props["priority"]["properties"]["id"]]
    string_ids += [nested["FlowDto"]["id"], nested["StepDto"]["id"]]
    assert all("string" in spec["type"] and "integer" not in spec["type"] for spec in string_ids)
    for name, key in (
        ("flow_instances", {"flowInstanceId": "1"}),
        ("tasks", {"id": "1", "owner_email": "x@example.com"}),
    ):
        nullable = set(schema(name)["properties"]) - set(key)
        validate([{**key, **dict.fromkeys(nullable), "addedByGong": 1}], schema(name))
    with pytest.raises(jsonschema.ValidationError):
        validate([{"flowId": "1"}], schema("flow_instances"))
