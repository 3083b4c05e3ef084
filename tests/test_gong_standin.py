"""Tests of the Gong stand-in itself: if these fail, the tap's tests against it mean nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.gong_standin import Fault, GongStandIn, make_world

OWNER = "owner0002@example.com"
USER_METADATA_KEYS = {
    "id", "emailAddress", "created", "active", "emailAliases", "trustedEmailAddress", "firstName",
    "lastName", "title", "phoneNumber", "extension", "personalMeetingUrls", "settings",
    "managerId", "meetingConsentPageUrl", "spokenLanguages",
}  # fmt: skip
FLOW_KEYS = {"id", "name", "folderId", "folderName", "visibility", "creationDate", "exclusive"}


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
