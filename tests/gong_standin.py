"""A stand-in for Gong's public API: ``GET /v2/flows``, ``/v2/users`` and ``/v2/workspaces``.

Standard library only. Tests and the README demo use it; the tap never imports it. It keeps a
``World`` of flows and users, answers with Gong's JSON shapes, checks Basic and Bearer auth, pages
with opaque cursors, enforces a per-second rate limit and a daily quota, and injects ``Fault``s
(error statuses, dropped connections, truncated or malformed bodies, slow answers, cursor cycles).

    python -m tests.gong_standin --port 8765 --page-size 2
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import random
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FLOWS = "/v2/flows"
USERS = "/v2/users"
WORKSPACES = "/v2/workspaces"
SCOPES = {FLOWS: "api:flows:read", USERS: "api:users:read", WORKSPACES: "api:workspaces:read"}
ERROR_MESSAGES = {
    400: "Malformed request",
    401: "Unauthorized: invalid credentials",
    403: "Forbidden",
    404: "Not found",
    429: "API request limit exceeded",
    500: "Failed to complete the operation due to an unexpected error",
}


@dataclass
class Flow:
    """One Engage flow. ``owner`` None means a Company flow, else the Personal flow's owner."""

    id: str
    name: str
    folder_id: str
    folder_name: str
    creation_date: str
    exclusive: bool
    owner: str | None = None
    shared_with: list[str] = field(default_factory=list)
    workspace_id: str = "ws-1"

    def visibility_for(self, owner_email: str) -> str | None:
        """The visibility this flow has in ``owner_email``'s list, or None if it is not there."""
        if self.owner is None:
            return "Company"
        if self.owner.lower() == owner_email:
            return "Personal"
        if owner_email in (email.lower() for email in self.shared_with):
            return "Shared"
        return None


@dataclass
class World:
    """Everything the stand-in knows. Mutate it between runs to change what Gong answers."""

    flows: list[Flow]
    users: list[dict[str, Any]]
    workspaces: list[dict[str, Any]]
    rejected_owners: dict[str, tuple[int, str]] = field(default_factory=dict)

    def flows_for(self, owner_email: str, workspace_id: str | None) -> list[dict[str, Any]]:
        """Gong's answer for one owner: Company, own (Personal) and Shared flows, ordered by id."""
        owner = owner_email.lower()
        answer = []
        for flow in sorted(self.flows, key=lambda f: f.id):
            visibility = flow.visibility_for(owner)
            if visibility is None or (workspace_id and flow.workspace_id != workspace_id):
                continue
            answer.append(
                {
                    "id": flow.id,
                    "name": flow.name,
                    "folderId": flow.folder_id,
                    "folderName": flow.folder_name,
                    "visibility": visibility,
                    "creationDate": flow.creation_date,
                    "exclusive": flow.exclusive,
                }
            )
        return answer


def _unique_id(rng: random.Random, used: set[str], digits: int) -> str:
    while True:
        candidate = str(rng.randrange(10 ** (digits - 1), 10**digits))
        if candidate not in used:
            used.add(candidate)
            return candidate


def _timestamp(rng: random.Random) -> str:
    start = datetime(2023, 1, 1, tzinfo=timezone.utc)
    moment = start + timedelta(seconds=rng.randrange(730 * 86400))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(
    rng: random.Random, used: set[str], email: str | None, active: bool, manager_id: str | None
) -> dict[str, Any]:
    """One user with every property of Gong's ``UserMetadata``."""
    user_id = _unique_id(rng, used, 15)
    local = email.split("@")[0] if email else f"user{user_id[-4:]}"
    return {
        "id": user_id,
        "emailAddress": email,
        "created": _timestamp(rng),
        "active": active,
        "emailAliases": [f"{local}.alias@example.com"] if email else [],
        "trustedEmailAddress": email,
        "firstName": local.capitalize(),
        "lastName": "Example",
        "title": "Account Executive",
        "phoneNumber": f"+1 555-{rng.randrange(1000, 10000)}",
        "extension": str(rng.randrange(100, 1000)),
        "personalMeetingUrls": [f"https://zoom.us/j/{user_id}"],
        "settings": {
            "webConferencesRecorded": True,
            "preventWebConferenceRecording": False,
            "telephonyCallsImported": rng.random() < 0.5,
            "emailsImported": True,
            "preventEmailImport": False,
            "nonRecordedMeetingsImported": rng.random() < 0.5,
            "gongConnectEnabled": rng.random() < 0.5,
        },
        "managerId": manager_id,
        "meetingConsentPageUrl": f"https://join.gong.io/example/{local}?tkn={user_id}",
        "spokenLanguages": [{"language": "en-US", "primary": True}],
    }


def make_world(  # noqa: PLR0917 - the agreed signature
    owners: int = 3,
    company_flows: int = 5,
    personal_per_owner: int = 2,
    shared_per_owner: int = 1,
    workspaces: int = 2,
    inactive_users: int = 0,
    users_without_email: int = 0,
    seed: int = 1,
) -> World:
    """A deterministic synthetic world; owner i (from 1) is ``owner{i:04d}@example.com``.

    Shared flows of owner i are shared with owner i+1 (wrapping). Users: one active user per
    owner, then inactive users, then users without an email address.
    """
    rng = random.Random(seed)
    used: set[str] = set()
    workspace_ids = [f"ws-{n}" for n in range(1, max(workspaces, 1) + 1)]
    folders = [(_unique_id(rng, used, 19), name) for name in ("Outbound", "Inbound", "Renewals")]
    emails = [f"owner{i:04d}@example.com" for i in range(1, owners + 1)]

    def flow(name: str, spread: int, owner: str | None = None, sharee: str | None = None) -> Flow:
        folder_id, folder_name = rng.choice(folders)
        return Flow(
            id=_unique_id(rng, used, 19),
            name=name,
            folder_id=folder_id,
            folder_name=folder_name,
            creation_date=_timestamp(rng),
            exclusive=rng.random() < 0.5,
            owner=owner,
            shared_with=[sharee] if sharee else [],
            workspace_id=workspace_ids[spread % len(workspace_ids)],
        )

    flows = [flow(f"Company flow {k + 1}", k) for k in range(company_flows)]
    for i, email in enumerate(emails):
        sharee = emails[(i + 1) % len(emails)]
        for j in range(personal_per_owner):
            flows.append(flow(f"{email} personal flow {j + 1}", i + j, email))
        for j in range(shared_per_owner):
            flows.append(flow(f"{email} shared flow {j + 1}", i + j, email, sharee))

    users = [_user(rng, used, email, True, None) for email in emails]
    manager_id = users[0]["id"] if users else None
    for user in users[1:]:
        user["managerId"] = manager_id
    for i in range(1, inactive_users + 1):
        users.append(_user(rng, used, f"inactive{i:04d}@example.com", False, manager_id))
    users += [_user(rng, used, None, True, manager_id) for _ in range(users_without_email)]
    spaces = [
        {"id": ws, "name": f"Workspace {ws[3:]}", "description": f"Synthetic workspace {ws}"}
        for ws in workspace_ids
    ]
    return World(flows=flows, users=users, workspaces=spaces)


@dataclass
class RecordedRequest:
    """One request as the stand-in received it; ``status`` 0 means the connection was reset."""

    time: float
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    status: int = 0
    owner: str | None = None
    page: int = 0
    request_id: str = ""


FAULT_KINDS = ("status", "reset", "truncate", "badjson", "slow", "cycle", "shape")


@dataclass
class Fault:
    """A misbehaviour for matching requests, tried in insertion order; ``times`` -1 = forever.

    Kinds: "status" answers ``status`` with ``body`` (default: a Gong error body) and ``headers``;
    "reset" drops the connection without an answer; "truncate" sends a 200 whose body is shorter
    than its Content-Length; "badjson" sends a 200 JSON that is not JSON; "slow" answers normally
    after ``delay`` seconds; "cycle" answers normally but with the cursor of page ``cycle_to``;
    "shape" sends a 200 with ``body`` (default: no ``flows``/``users`` list).
    """

    path: str = FLOWS
    owner: str | None = None
    page: int | None = None
    status: int = 500
    body: bytes | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    kind: str = "status"  # one of FAULT_KINDS
    times: int = 1  # -1 = forever
    delay: float = 0.0
    cycle_to: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")

    def matches(self, request: RecordedRequest) -> bool:
        return (
            self.times != 0
            and self.path == request.path
            and (self.owner is None or self.owner.lower() == (request.owner or "").lower())
            and (self.page is None or self.page == request.page)
        )


def cursor_token(path: str, owner: str | None, workspace_id: str | None, page: int) -> str:
    """The opaque cursor that leads to ``page`` of one owner's (and workspace's) list."""
    raw = json.dumps([path, (owner or "").lower(), workspace_id or "", page])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[str, str, str, int] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not (isinstance(value, list) and len(value) == 4 and isinstance(value[3], int)):
        return None
    if value[3] < 0:
        return None
    return str(value[0]), str(value[1]), str(value[2]), value[3]


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "send"  # send | reset | truncate
    delay: float = 0.0


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Reply:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return _Reply(status, body, {"Content-Type": "application/json", **(headers or {})})


def _error(
    status: int, request_id: str, message: str, headers: dict[str, str] | None = None
) -> _Reply:
    return _json(status, {"requestId": request_id, "errors": [message]}, headers)


class GongStandIn:
    """Gong's API on 127.0.0.1 in a background thread; a context manager, or start()/stop()."""

    def __init__(
        self,
        world: World | None = None,
        *,
        access_key: str = "test-key",
        access_key_secret: str = "test-secret",  # noqa: S107 - a test stand-in's fixed secret
        access_token: str | None = "test-token",  # noqa: S107
        token_scopes: set[str] | None = None,
        page_size: int = 100,
        latency: float = 0.0,
        rate_limit: float | None = None,
        rate_limit_retry_after: str = "1",
        rate_window: float = 1.0,
        daily_quota: int | None = None,
        quota_retry_after: str = "36000",
        port: int = 0,
    ) -> None:
        if page_size < 1 or (rate_limit is not None and rate_limit < 1):
            raise ValueError("page_size and rate_limit must be at least 1")
        self.world = world if world is not None else make_world()
        self.access_key, self.access_key_secret = access_key, access_key_secret
        self.access_token, self.token_scopes = access_token, token_scopes
        self.page_size, self.latency, self.port = page_size, latency, port
        self.rate_limit, self.rate_limit_retry_after = rate_limit, rate_limit_retry_after
        # Gong's window is one second; tests on a loaded machine may narrow it a little so that
        # scheduling jitter between the tap's send and our stamp does not read as a burst.
        self.rate_window = rate_window
        self.daily_quota, self.quota_retry_after = daily_quota, quota_retry_after
        self.url = ""
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._request_counter = 0
        self._accepted = 0  # requests admitted past quota and rate limit, for the daily quota
        self._window: deque[float] = deque()  # admission times within the last second
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> GongStandIn:
        self._server = _Server(("127.0.0.1", self.port), self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="gong-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        with self._lock:  # wake handler threads waiting on idle keep-alive connections
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> GongStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def _track(self, connection: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def handle(self, handler: _Handler) -> None:
        """Record one request, decide the answer, then wait out the latency and write it."""
        split = urlsplit(handler.path)
        query = parse_qs(split.query, keep_blank_values=True)
        params = {key: values[0] for key, values in query.items()}
        cursor = _decode_cursor(params.get("cursor", ""))
        record = RecordedRequest(
            time=time.monotonic(),
            method=handler.command,
            path=split.path,
            params=params,
            headers=dict(handler.headers.items()),
            owner=params.get("flowOwnerEmail"),
            page=cursor[3] if cursor else 0,
        )
        with self._lock:
            self._request_counter += 1
            record.request_id = f"req-{self._request_counter:06d}"
            self.requests.append(record)
        reply = self._reply_for(record)
        record.status = reply.status
        if self.latency + reply.delay > 0:
            time.sleep(self.latency + reply.delay)
        handler.write(reply)

    def _reply_for(self, request: RecordedRequest) -> _Reply:
        """Auth first, then the daily quota and rate limit, then faults, then the endpoint."""
        refused = self._check_auth(request)
        if refused is not None:
            return refused
        with self._lock:
            refused = self._admit(request.request_id)
            fault = None if refused else next((f for f in self.faults if f.matches(request)), None)
            if fault is not None and fault.times > 0:
                fault.times -= 1
        if refused is not None:
            return refused
        return self._endpoint(request) if fault is None else self._fault_reply(request, fault)

    def _fault_reply(self, request: RecordedRequest, fault: Fault) -> _Reply:
        if fault.kind == "reset":
            return _Reply(0, action="reset")
        if fault.kind in ("truncate", "slow", "cycle"):
            reply = self._endpoint(request, fault.cycle_to if fault.kind == "cycle" else None)
            reply.action = "truncate" if fault.kind == "truncate" else "send"
            reply.delay = fault.delay if fault.kind == "slow" else 0.0
            return reply
        body = fault.body
        if body is None and fault.kind == "status":
            message = ERROR_MESSAGES.get(fault.status) or HTTPStatus(fault.status).phrase
            body = {"requestId": request.request_id, "errors": [message]}
        elif body is None:
            shape_body = {"requestId": request.request_id}
            body = b"<html>oops</html>" if fault.kind == "badjson" else shape_body
        return _json(fault.status if fault.kind == "status" else 200, body, fault.headers)

    def _check_auth(self, request: RecordedRequest) -> _Reply | None:
        header = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (ValueError, binascii.Error):
                decoded = None
            if decoded == f"{self.access_key}:{self.access_key_secret}":
                return None
        elif scheme.lower() == "bearer" and credentials and credentials == self.access_token:
            scope = SCOPES.get(request.path)
            if scope is None or self.token_scopes is None or scope in self.token_scopes:
                return None
            return _error(403, request.request_id, f"Missing required scope {scope}")
        return _error(401, request.request_id, ERROR_MESSAGES[401])

    def _admit(self, rid: str) -> _Reply | None:
        """Apply the daily quota, then the one-second sliding window. Call with the lock held."""
        if self.daily_quota is not None and self._accepted >= self.daily_quota:
            retry_after = {"Retry-After": self.quota_retry_after}
            return _error(429, rid, "Daily API quota exceeded", retry_after)
        if self.rate_limit is not None:
            now = time.monotonic()
            while self._window and now - self._window[0] >= self.rate_window:
                self._window.popleft()
            if len(self._window) + 1 > self.rate_limit:
                retry_after = {"Retry-After": self.rate_limit_retry_after}
                return _error(429, rid, ERROR_MESSAGES[429], retry_after)
            self._window.append(now)
        self._accepted += 1
        return None

    def _endpoint(self, request: RecordedRequest, cycle_to: int | None = None) -> _Reply:
        if request.path not in SCOPES:
            return _error(404, request.request_id, f"No such endpoint {request.path}")
        if request.path == WORKSPACES:
            workspaces = self.world.workspaces
            return _json(200, {"requestId": request.request_id, "workspaces": workspaces})
        if request.path == USERS:
            return self._page(request, "users", self.world.users, cycle_to=cycle_to)
        owner = request.params.get("flowOwnerEmail")
        if not owner:
            return _error(400, request.request_id, "flowOwnerEmail is required")
        if owner.lower() in self.world.rejected_owners:
            status, message = self.world.rejected_owners[owner.lower()]
            return _error(status, request.request_id, message)
        workspace_id = request.params.get("workspaceId") or None
        flows = self.world.flows_for(owner, workspace_id)
        return self._page(request, "flows", flows, owner, workspace_id, cycle_to=cycle_to)

    def _page(
        self,
        request: RecordedRequest,
        key: str,
        items: list[dict[str, Any]],
        owner: str | None = None,
        workspace_id: str | None = None,
        *,
        cycle_to: int | None,
    ) -> _Reply:
        """One page of ``items``; a cursor must come from the same endpoint, owner and workspace."""
        page = 0
        if "cursor" in request.params:
            cursor = _decode_cursor(request.params["cursor"])
            expected = (request.path, (owner or "").lower(), workspace_id or "")
            if cursor is None or cursor[:3] != expected:
                return _error(400, request.request_id, "Invalid cursor")
            page = cursor[3]
        start, end = page * self.page_size, (page + 1) * self.page_size
        chunk = items[start:end]
        records: dict[str, Any] = {
            "totalRecords": len(items),
            "currentPageSize": len(chunk),
            "currentPageNumber": page,
        }
        if end < len(items):
            records["cursor"] = cursor_token(request.path, owner, workspace_id, page + 1)
        if cycle_to is not None:
            records["cursor"] = cursor_token(request.path, owner, workspace_id, cycle_to)
        return _json(200, {"requestId": request.request_id, "records": records, key: chunk})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], standin: GongStandIn) -> None:
        self.standin = standin
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # clients hanging up are expected here
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: avoid a 40 ms ACK wait
    server: _Server
    reset = False

    def setup(self) -> None:
        super().setup()
        self.server.standin._track(self.connection, alive=True)

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.standin.handle(self)

    def write(self, reply: _Reply) -> None:
        if reply.action == "reset":
            self.reset = self.close_connection = True
            return
        body = reply.body
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if reply.action == "truncate":  # promise the whole body, send half of it, hang up
            body, self.close_connection = body[: len(body) // 2], True
        self.wfile.write(body)

    def finish(self) -> None:
        self.server.standin._track(self.connection, alive=False)
        if not self.reset:
            super().finish()
            return
        # SO_LINGER 0 turns the close into a TCP RST: the client sees a reset connection.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        self.connection.close()

    def log_message(self, *args: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.gong_standin", description="Run a stand-in for Gong's API."
    )
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--owners", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--rate-limit", type=float, default=None, help="calls per second")
    parser.add_argument("--daily-quota", type=int, default=None)
    parser.add_argument("--url-file", type=Path, default=None, help="write the base URL here")
    args = parser.parse_args(argv)

    # Block the stop signals before any thread starts (threads inherit the mask), then wait.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    standin = GongStandIn(
        make_world(owners=args.owners),
        page_size=args.page_size,
        latency=args.latency,
        rate_limit=args.rate_limit,
        daily_quota=args.daily_quota,
        port=args.port,
    ).start()
    if args.url_file is not None:  # written whole, before the banner, so readers never see half
        partial = args.url_file.with_name(args.url_file.name + ".partial")
        partial.write_text(standin.url + "\n")
        partial.replace(args.url_file)
    credentials = f"access key {standin.access_key} / secret {standin.access_key_secret}"
    token = f"token {standin.access_token}"
    print(f"Gong stand-in on {standin.url} ({credentials}, {token})", flush=True)
    signal.sigwait(stop_signals)
    standin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
