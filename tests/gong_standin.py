"""A stand-in for Gong's public API: ``GET /v2/flows``, ``/v2/users``, ``/v2/workspaces``,
``POST /v2/flows/steps``, ``POST /v2/flows/prospects`` (flow instances) and ``POST /v2/tasks``.

Standard library only. Tests and the README demo use it; the tap never imports it. It keeps a
``World`` of flows (with their steps), users and, once ``add_engage`` has filled them, prospects'
flow instances and users' Engage tasks; answers with Gong's JSON shapes, checks Basic and Bearer
auth, pages with opaque cursors (in the query on GET, in the JSON body on ``/v2/tasks``), enforces
a per-second rate limit and a daily quota, and injects ``Fault``s (error statuses, dropped
connections, truncated, malformed, empty or trickled bodies, slow answers, cursor cycles).

    python -m tests.gong_standin --port 8765 --page-size 2 --prospects 12
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import itertools
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
STEPS = "/v2/flows/steps"
PROSPECTS = "/v2/flows/prospects"
TASKS = "/v2/tasks"
USERS = "/v2/users"
WORKSPACES = "/v2/workspaces"
SCOPES = {
    FLOWS: "api:flows:read",
    STEPS: "api:flows:read",
    PROSPECTS: "api:flows:read",
    TASKS: "api:tasks:read",
    USERS: "api:users:read",
    WORKSPACES: "api:workspaces:read",
}
METHODS = {
    FLOWS: "GET", STEPS: "POST", PROSPECTS: "POST", TASKS: "POST", USERS: "GET", WORKSPACES: "GET",
}  # fmt: skip
MAX_FLOW_IDS = 20  # per POST /v2/flows/steps
STEP_ACTIONS = (
    "SEND_EMAIL", "AUTO_SEND_EMAIL", "CALL", "LINKEDIN_CONNECT", "LINKEDIN_MESSAGE", "CUSTOM",
)  # fmt: skip
# In the body of every flow's first step, so end-to-end tests can check text byte for byte.
GREETING_HTML = "<p>Grüße, 東京 — “quotes” &amp; emoji 🚀</p>"
# Gong's PublicApiAssignedFlow.flowInstanceStatus; a query by CRM ids answers only the open ones.
OPEN_STATUSES = ("Pending", "Running", "Paused")
FINISHED_STATUSES = ("FinishedNoReply", "FinishedResponse", "Finished")
INSTANCE_STATUSES = OPEN_STATUSES + FINISHED_STATUSES
# Gong's ReminderFilter enums (ListReminderRequest's filter)
TASK_TYPES = ("FLOW", "MANUAL")
TASK_ACTIONS = ("CALL",)
TASK_STATUSES = ("OPEN", "DONE", "DISMISSED")
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
    description: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)  # Gong's PublicApiFlowStep shape

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
    vanished: set[str] = field(default_factory=set)  # flow ids still listed, but 404 on steps
    # Gong's PublicApiAssignedFlow, every field, ids as strings; ``add_engage`` fills it.
    instances: list[dict[str, Any]] = field(default_factory=list)
    # Gong user id -> that user's tasks, Gong's ReminderDataDto (integer ids, as Gong sends them).
    tasks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Gong user id -> (status, message) that POST /v2/tasks answers for that user instead.
    rejected_task_users: dict[str, tuple[int, str]] = field(default_factory=dict)

    def set_status(self, instance_id: str, status: str) -> None:
        """Move one flow instance to ``status`` (between runs: a prospect replied, a flow ended).

        KeyError for an unknown instance, ValueError for a status Gong does not have.
        """
        if status not in INSTANCE_STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {INSTANCE_STATUSES}")
        for instance in self.instances:
            if instance["flowInstanceId"] == instance_id:
                instance["flowInstanceStatus"] = status
                return
        raise KeyError(instance_id)

    def crm_ids(self) -> list[str]:
        """Every prospect's CRM id, sorted: what a warehouse synced from the CRM would hold."""
        return sorted({instance["crmProspectId"] for instance in self.instances})

    def prospects_assigned(
        self, *, crm_ids: list[str] | None = None, instance_ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Gong's answer to POST /v2/flows/prospects, by CRM ids (open instances only) or by
        instance ids (any status); unknown ids are simply absent. Ordered by CRM id, then
        instance id, so tests can compare answers whole."""
        statuses: tuple[str, ...]
        if crm_ids is not None:
            wanted, key, statuses = set(crm_ids), "crmProspectId", OPEN_STATUSES
        else:
            wanted, key, statuses = set(instance_ids or ()), "flowInstanceId", INSTANCE_STATUSES
        found = [
            dict(instance)
            for instance in self.instances
            if instance[key] in wanted and instance["flowInstanceStatus"] in statuses
        ]
        return sorted(found, key=lambda i: (i["crmProspectId"], i["flowInstanceId"]))

    def vanish(self, flow_id: str) -> None:
        """Make a flow deleted as far as ``/v2/flows/steps`` knows, while the lists still show it.

        That is the race between listing flows and fetching their steps; to drop a flow from
        the lists too, remove it from ``flows``.
        """
        self.vanished.add(flow_id)

    def flow_with_steps(self, flow_id: str) -> dict[str, Any] | None:
        """Gong's ``PublicApiFlowWithSteps`` for one flow, or None if it is unknown or vanished.

        ``visibility`` is not relative to anyone here: Company, or Personal for an owned flow.
        """
        if flow_id in self.vanished:
            return None
        flow = next((f for f in self.flows if f.id == flow_id), None)
        if flow is None:
            return None
        return {
            "id": flow.id,
            "name": flow.name,
            "folderId": flow.folder_id,
            "visibility": "Company" if flow.owner is None else "Personal",
            "creationDate": flow.creation_date,
            "exclusive": flow.exclusive,
            "description": flow.description,
            "steps": [dict(step) for step in flow.steps],
        }

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
        "conferencingProviders": [{"provider": "zoom", "isDefault": True}],
    }


EMAIL_ACTIONS = ("SEND_EMAIL", "AUTO_SEND_EMAIL")


def _flow_steps(rng: random.Random, used: set[str], flow_name: str, k: int) -> list[dict[str, Any]]:
    """1 to 4 steps for the k-th flow: an email with ``GREETING_HTML``, then varied actions.

    Steps that are not emails have no subject (null), as a call or LinkedIn step has none.
    """
    subject = f"Grüße from {flow_name}"
    texts: dict[str, tuple[str | None, str]] = {
        "CALL": (None, f"Call script: ask how {flow_name} is going.\nLeave a voicemail."),
        "LINKEDIN_CONNECT": (None, ""),
        "LINKEDIN_MESSAGE": (None, "Thanks for connecting — happy to share notes."),
        "CUSTOM": ("Research the account", "Check the CRM for open opportunities."),
    }
    steps = [(EMAIL_ACTIONS[k % 2], subject, f"<p>Hi there,</p>\n{GREETING_HTML}")]
    for order in range(2, k % 4 + 2):
        action = STEP_ACTIONS[(k + order) % len(STEP_ACTIONS)]
        follow_up = (f"Re: {subject}", f"<p>Following up on step {order - 1}.</p>")
        steps.append((action, *(follow_up if action in EMAIL_ACTIONS else texts[action])))
    return [
        {
            "id": _unique_id(rng, used, 19),
            "stepOrder": order,
            "action": action,
            "subject": step_subject,
            "body": body,
            "isReply": order > 1 and action in EMAIL_ACTIONS,
        }
        for order, (action, step_subject, body) in enumerate(steps, start=1)
    ]


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
    owner, then inactive users, then users without an email address. The k-th flow (from 0) has
    ``k % 4 + 1`` steps, the first an email whose body holds ``GREETING_HTML``.
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
    # Steps draw from their own generator, so flows and users are what they were before steps.
    step_rng = random.Random(f"{seed}-steps")
    for k, each in enumerate(flows):
        each.steps = _flow_steps(step_rng, used, each.name, k)
        each.description = f"{each.name}: {len(each.steps)} step(s), “synthetic”"
    spaces = [
        {"id": ws, "name": f"Workspace {ws[3:]}", "description": f"Synthetic workspace {ws}"}
        for ws in workspace_ids
    ]
    return World(flows=flows, users=users, workspaces=spaces)


def _int_id(text: str) -> int:
    """Gong's integer form of an id: the number itself if it is one, else a stable int64 from it.

    The stand-in's flow and step ids are 19-digit strings and may exceed int64 (Gong's FlowDto
    says int64); they are kept exact all the same, so ``str(flow.id)`` finds the flow again.
    """
    if text.isdigit():
        return int(text)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


PRIORITIES = (
    {"id": 1, "name": "high", "weight": 100},
    {"id": 2, "name": "medium", "weight": 50},
    {"id": 3, "name": "low", "weight": 10},
)
COMPANIES = ("Acme", "Globex", "Initech", "Umbrella")


def _contact(i: int) -> dict[str, Any]:
    """Prospect i's ``ContactDto``: every ``ContactCrmData`` property, a CONTACT or a LEAD."""
    crm_id = f"crm{i:06d}"
    company = COMPANIES[i % len(COMPANIES)]
    first, last = f"Prospect{i}", "Müller" if i % 2 else "O'Brien"
    phone = f"+1415555{i % 10000:04d}"
    return {
        "crmId": crm_id,
        "type": "LEAD" if i % 2 == 0 else "CONTACT",
        "data": {
            "firstName": first,
            "lastName": last,
            "crmUrl": f"https://example.my.salesforce.com/{crm_id}",
            "companyName": company,
            "affiliation": "Them",
            "emails": [{"email": f"prospect{i}@{company.lower()}.example.com"}],
            "title": "VP Sales",
            "timezone": "US/Pacific",
            "phoneNumbers": [
                {
                    "raw": f"(415) 555-{i % 10000:04d}",
                    "extension": "",
                    "countryCode": 1,
                    "normalized": phone,
                    "label": "work",
                    "isVerified": i % 3 == 0,
                }
            ],
            "city": "San Francisco",
            "country": "US",
            "state": "California",
            "zipcode": "94105",
            "optOutChannels": ["SMS_MESSAGES"] if i % 5 == 0 else [],
            "linkedinProfile": f"https://www.linkedin.com/in/prospect{i}",
        },
    }


def _account(i: int) -> dict[str, Any]:
    k = i % len(COMPANIES)
    crm_id = f"acc{k:06d}"
    url = f"https://example.my.salesforce.com/{crm_id}"
    return {"crmId": crm_id, "name": COMPANIES[k], "crmUrl": url}


def _opportunity(i: int) -> dict[str, Any]:
    crm_id = f"opp{i:06d}"
    return {
        "crmId": crm_id,
        "name": f"{COMPANIES[i % len(COMPANIES)]} renewal {i}",
        "crmUrl": f"https://example.my.salesforce.com/{crm_id}",
        "status": "Open",
        "stage": "Discovery",
        "amount": f"{1000 * i}.00",
        "probability": "20",
        "closeDate": "2026-06-30",
    }


def add_engage(world: World, prospects: int = 12, seed: int = 1) -> World:
    """Fill ``world`` with Engage data, deterministically, and return it (the same object).

    Prospect i (from 1) has CRM id ``crm{i:06d}`` and one open flow instance (Pending, Running,
    Paused by i); every 3rd prospect also a finished one (FinishedNoReply, FinishedResponse,
    Finished in turn) in the next flow. Flows are taken a Company flow, then one of each owner's,
    in turn. An instance's owner is an owned flow's owner, else the first user. Tasks: one FLOW
    task for each open instance, for its owner, whose contact is the prospect; one MANUAL task per
    user. Every 4th FLOW task and every other MANUAL one has an additional contact, the next
    prospect; every other task has an opportunity. Replaces any instances and tasks the world
    had; ``make_world`` stays as it is.
    """
    if prospects and not (world.flows and world.users):
        raise ValueError("add_engage needs a world with flows and users")
    rng = random.Random(f"{seed}-engage")
    used = {f.id for f in world.flows} | {u["id"] for u in world.users}
    by_email = {(u["emailAddress"] or "").lower(): u for u in world.users if u["emailAddress"]}
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    world.instances, world.tasks = [], {user["id"]: [] for user in world.users}

    def owner_of(flow: Flow) -> dict[str, Any]:
        return by_email.get((flow.owner or "").lower(), world.users[0])

    def instance(i: int, flow: Flow, status: str) -> dict[str, Any]:
        owner = owner_of(flow)
        full_name = f"{owner['firstName']} {owner['lastName']}"
        created = start + timedelta(seconds=rng.randrange(300 * 86400))
        return {
            "flowId": flow.id,
            "flowName": flow.name,
            "crmProspectId": f"crm{i:06d}",
            "flowInstanceId": _unique_id(rng, used, 16),
            "flowInstanceOwnerEmail": owner["emailAddress"],
            "flowInstanceOwnerFullName": full_name,
            "flowInstanceCreateDate": _iso(created),
            "flowInstanceStatus": status,
            "workspaceId": flow.workspace_id,
            "exclusive": flow.exclusive,
        }

    def task(user: dict[str, Any], n: int, i: int, created: datetime) -> dict[str, Any]:
        """A task's common fields; ``n`` counts tasks, ``i`` is the contact's prospect."""
        body: dict[str, Any] = {
            "id": int(_unique_id(rng, used, 16)),
            "userId": _int_id(user["id"]),
            "created": _iso(created),
            "updated": _iso(created + timedelta(hours=1 + n % 48)),
            "status": "OPEN",
            "actions": ["CALL"],
            "dueDate": _iso(created + timedelta(days=1 + n % 7)),
            "priority": dict(PRIORITIES[n % len(PRIORITIES)]),
            "contact": _contact(i),
            "additionalContacts": [],
            "account": _account(i),
        }
        if n % 2 == 0:
            body["opportunity"] = _opportunity(i)
        return body

    # Company flows and each owner's flows taken in turn, so a few prospects reach every owner.
    groups: dict[str, list[Flow]] = {}
    for each in world.flows:
        groups.setdefault((each.owner or "").lower(), []).append(each)
    turns = itertools.zip_longest(*groups.values())
    order = [each for turn in turns for each in turn if each is not None]
    open_instances = []
    for i in range(1, prospects + 1):
        flow = order[(i - 1) % len(order)]
        opened = instance(i, flow, OPEN_STATUSES[(i - 1) % len(OPEN_STATUSES)])
        open_instances.append((i, flow, opened))
        world.instances.append(opened)
        if i % 3 == 0:
            finished_in = order[i % len(order)]
            status = FINISHED_STATUSES[(i // 3 - 1) % len(FINISHED_STATUSES)]
            world.instances.append(instance(i, finished_in, status))

    for n, (i, flow, opened) in enumerate(open_instances):
        user = owner_of(flow)
        created = datetime.strptime(opened["flowInstanceCreateDate"], "%Y-%m-%dT%H:%M:%SZ")
        body = task(user, n, i, created.replace(tzinfo=timezone.utc) + timedelta(minutes=5))
        steps = flow.steps or [{"id": flow.id, "stepOrder": 1, "action": "CALL"}]
        step = steps[n % len(steps)]
        step_name = f"Step {step['stepOrder']}: {str(step['action']).replace('_', ' ').lower()}"
        body["type"] = "FLOW"
        body["flow"] = {
            "id": _int_id(flow.id),
            "name": flow.name,
            "step": {"id": _int_id(step["id"]), "name": step_name, "stepNumber": step["stepOrder"]},
        }
        if n % 4 == 0:
            body["additionalContacts"] = [_contact(i % prospects + 1)]
        world.tasks[user["id"]].append(body)

    for u, user in enumerate(world.users if prospects else ()):
        i = u % prospects + 1
        created = start + timedelta(seconds=rng.randrange(300 * 86400))
        body = task(user, len(open_instances) + u, i, created)
        body["type"] = "MANUAL"
        body["title"] = f"Call {body['contact']['data']['firstName']} back"
        if u % 2 == 1:
            body["additionalContacts"] = [_contact(i % prospects + 1)]
        world.tasks[user["id"]].append(body)
    return world


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
    body: bytes = b""
    body_json: Any = None  # the body parsed as JSON; None when it is empty or not JSON

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        return self.body_json

    @property
    def flow_ids(self) -> list[Any]:
        """The ``flowIds`` of a steps request as sent, or [] if the body holds no such list."""
        ids = self.body_json.get("flowIds") if isinstance(self.body_json, dict) else None
        return ids if isinstance(ids, list) else []

    @property
    def prospect_ids(self) -> list[Any]:
        """The ``crmProspectsIds`` or ``flowInstanceIds`` of a prospects request, as sent."""
        body = self.body_json if isinstance(self.body_json, dict) else {}
        ids = body.get("crmProspectsIds", body.get("flowInstanceIds"))
        return ids if isinstance(ids, list) else []

    @property
    def user_id(self) -> str | None:
        """The ``filter.userId`` of a tasks request as sent, or None."""
        body = self.body_json if isinstance(self.body_json, dict) else {}
        user_id = (
            body.get("filter", {}).get("userId") if isinstance(body.get("filter"), dict) else None
        )
        return user_id if isinstance(user_id, str) else None


STEPS_QUIRKS = (
    "repeat_flows", "repeat_steps", "differing_steps", "no_steps", "null_steps", "extra_flows",
)  # fmt: skip

FAULT_KINDS = (
    "status", "reset", "truncate", "badjson", "slow", "cycle", "shape", "empty", "trickle",
)  # fmt: skip


@dataclass
class Fault:
    """A misbehaviour for matching requests, tried in insertion order; ``times`` -1 = forever.

    Kinds: "status" answers ``status`` with ``body`` (default: a Gong error body) and ``headers``;
    "reset" drops the connection without an answer; "truncate" sends a 200 whose body is shorter
    than its Content-Length; "badjson" sends a 200 JSON that is not JSON; "slow" answers normally
    after ``delay`` seconds; "cycle" answers normally but with the cursor of page ``cycle_to``;
    "shape" sends a 200 with ``body`` (default: no ``flows``/``users`` list); "empty" sends a 200
    with an empty list (``flows``/``users``/``workspaces``) and, on a paged list, the true
    ``totalRecords``, ``currentPageSize`` 0 and a never-before-seen cursor that the stand-in
    accepts (for the next page), so a client that follows cursors never stops while the fault
    lasts; "trickle" answers normally, but writes the body ``chunk`` bytes at a time with
    ``delay`` seconds between writes, so each read is quick while the whole answer is slow.

    ``flow_id`` narrows a fault to ``POST /v2/flows/steps`` calls whose ``flowIds`` hold it,
    ``prospect_id`` to ``POST /v2/flows/prospects`` calls whose ids hold it, and ``user_id`` to
    ``POST /v2/tasks`` calls for that user; ``page`` on ``/v2/tasks`` is the body cursor's page.
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
    chunk: int = 1  # bytes per write, for "trickle"
    flow_id: str | None = None
    prospect_id: str | None = None
    user_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.chunk < 1:
            raise ValueError("chunk must be at least 1")

    def matches(self, request: RecordedRequest) -> bool:
        return (
            self.times != 0
            and self.path == request.path
            and (self.owner is None or self.owner.lower() == (request.owner or "").lower())
            and (self.page is None or self.page == request.page)
            and (self.flow_id is None or self.flow_id in request.flow_ids)
            and (self.prospect_id is None or self.prospect_id in request.prospect_ids)
            and (self.user_id is None or self.user_id == request.user_id)
        )


# Numbers that make each "empty" fault's cursor one no client has seen, within this process.
_FRESH_CURSORS = itertools.count(1)


def cursor_token(
    path: str, owner: str | None, workspace_id: str | None, page: int, nonce: str = ""
) -> str:
    """The opaque cursor that leads to ``page`` of one owner's (and workspace's) list.

    A ``nonce`` makes a distinct cursor for the same page; without one, tokens are as they were.
    """
    fields: list[Any] = [path, (owner or "").lower(), workspace_id or "", page]
    raw = json.dumps([*fields, nonce] if nonce else fields)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[str, str, str, int] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not (isinstance(value, list) and len(value) in {4, 5} and isinstance(value[3], int)):
        return None
    if value[3] < 0:
        return None
    return str(value[0]), str(value[1]), str(value[2]), value[3]


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "send"  # send | reset | truncate | trickle
    delay: float = 0.0  # before the answer; for "trickle", between writes of the body
    chunk: int = 1  # bytes per write, for "trickle"


def _json(
    status: int, payload: Any, headers: dict[str, str] | None = None, *, ascii_only: bool = True
) -> _Reply:
    if isinstance(payload, bytes):
        body = payload
    else:
        body = json.dumps(payload, ensure_ascii=ascii_only).encode()
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
        prospects_id_limit: int | None = None,
        tasks_page_size: int | None = None,
    ) -> None:
        if page_size < 1 or (rate_limit is not None and rate_limit < 1):
            raise ValueError("page_size and rate_limit must be at least 1")
        if any(limit is not None and limit < 1 for limit in (prospects_id_limit, tasks_page_size)):
            raise ValueError("prospects_id_limit and tasks_page_size must be at least 1")
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
        # How every POST /v2/flows/steps answer misbehaves, one of STEPS_QUIRKS, or None.
        self.steps_quirk: str | None = None
        # Gong documents no limit on ids per POST /v2/flows/prospects call; None = no limit.
        # Over it, a bare "Malformed request", so the tap cannot lean on Gong's wording.
        self.prospects_id_limit = prospects_id_limit
        # Ids (CRM or instance) that fail any prospects call naming them, the same way.
        self.refused_prospect_ids: set[str] = set()
        # Gong documents no paging for POST /v2/tasks; set, answers page with a body cursor.
        self.tasks_page_size = tasks_page_size
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

    @property
    def rejected_task_users(self) -> dict[str, tuple[int, str]]:
        """The world's ``rejected_task_users``: user id -> (status, message) on POST /v2/tasks."""
        return self.world.rejected_task_users

    @rejected_task_users.setter
    def rejected_task_users(self, value: dict[str, tuple[int, str]]) -> None:
        self.world.rejected_task_users = value

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def new_day(self) -> None:
        """Renew the daily quota, as midnight UTC does at Gong."""
        with self._lock:
            self._accepted = 0

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def _track(self, connection: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def handle(self, handler: _Handler, body: bytes = b"") -> None:
        """Record one request, decide the answer, then wait out the latency and write it."""
        split = urlsplit(handler.path)
        query = parse_qs(split.query, keep_blank_values=True)
        params = {key: values[0] for key, values in query.items()}
        body_json = _parse_json(body)
        in_body = body_json.get("cursor") if isinstance(body_json, dict) else None
        cursor = _decode_cursor(
            params.get("cursor") or (in_body if isinstance(in_body, str) else "")
        )
        record = RecordedRequest(
            time=time.monotonic(),
            method=handler.command,
            path=split.path,
            params=params,
            headers=dict(handler.headers.items()),
            owner=params.get("flowOwnerEmail"),
            page=cursor[3] if cursor else 0,
            body=body,
            body_json=body_json,
        )
        with self._lock:
            self._request_counter += 1
            record.request_id = f"req-{self._request_counter:06d}"
            self.requests.append(record)
        reply = self._reply_for(record)
        record.status = reply.status
        wait = self.latency + (reply.delay if reply.action != "trickle" else 0.0)
        if wait > 0:
            time.sleep(wait)
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
        if fault.kind in ("truncate", "slow", "cycle", "empty", "trickle"):
            reply = self._endpoint(request, fault)
            reply.action = fault.kind if fault.kind in ("truncate", "trickle") else "send"
            reply.delay = fault.delay if fault.kind in ("slow", "trickle") else 0.0
            reply.chunk = fault.chunk
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

    def _endpoint(self, request: RecordedRequest, fault: Fault | None = None) -> _Reply:
        """The endpoint's answer; a "cycle" or "empty" ``fault`` bends it as its kind says."""
        if request.path not in SCOPES:
            return _error(404, request.request_id, f"No such endpoint {request.path}")
        if request.method != METHODS[request.path]:
            message = f"Method {request.method} is not allowed on {request.path}"
            return _error(405, request.request_id, message)
        empty = fault is not None and fault.kind == "empty"
        if request.path == WORKSPACES:
            workspaces = [] if empty else self.world.workspaces
            return _json(200, {"requestId": request.request_id, "workspaces": workspaces})
        if request.path == USERS:
            return self._page(request, "users", self.world.users, fault=fault)
        posts = {STEPS: self._steps, PROSPECTS: self._prospects, TASKS: self._tasks}
        if request.path in posts:
            return posts[request.path](request, fault)
        return self._flows(request, fault)

    def _flows(self, request: RecordedRequest, fault: Fault | None) -> _Reply:
        owner = request.params.get("flowOwnerEmail")
        if not owner:
            return _error(400, request.request_id, "flowOwnerEmail is required")
        if owner.lower() in self.world.rejected_owners:
            status, message = self.world.rejected_owners[owner.lower()]
            return _error(status, request.request_id, message)
        workspace_id = request.params.get("workspaceId") or None
        flows = self.world.flows_for(owner, workspace_id)
        return self._page(request, "flows", flows, owner, workspace_id, fault=fault)

    def _steps(self, request: RecordedRequest, fault: Fault | None) -> _Reply:
        """``POST /v2/flows/steps``: each distinct id once, in the order asked.

        Any unknown or vanished id fails the whole batch with 404. The answer goes out as raw
        UTF-8, not ``\\u`` escapes, so a client that decodes bytes wrongly garbles the steps' text.
        """
        try:
            flow_ids = _requested_flow_ids(request.body)
        except ValueError as problem:
            return _error(400, request.request_id, str(problem))
        flows = []
        for flow_id in dict.fromkeys(flow_ids):
            flow = self.world.flow_with_steps(flow_id)
            if flow is None:
                return _error(404, request.request_id, "Flow not found")
            flows.append(flow)
        if self.steps_quirk is not None:
            flows = self._bend_steps(flow_ids, flows)
        empty = fault is not None and fault.kind == "empty"
        payload = {"requestId": request.request_id, "flows": [] if empty else flows}
        return _json(200, payload, ascii_only=False)

    def _prospects(self, request: RecordedRequest, fault: Fault | None) -> _Reply:
        """``POST /v2/flows/prospects``: the instances of the CRM ids (open ones only) or of the
        instance ids (any status). Too many ids, or a refused one, is a bare "Malformed request"."""
        try:
            key, ids = _requested_prospect_ids(request.body)
        except ValueError as problem:
            return _error(400, request.request_id, str(problem))
        too_many = self.prospects_id_limit is not None and len(ids) > self.prospects_id_limit
        if too_many or not self.refused_prospect_ids.isdisjoint(ids):
            return _error(400, request.request_id, ERROR_MESSAGES[400])
        if key == "crmProspectsIds":
            assigned = self.world.prospects_assigned(crm_ids=ids)
        else:
            assigned = self.world.prospects_assigned(instance_ids=ids)
        empty = fault is not None and fault.kind == "empty"
        payload = {"requestId": request.request_id, "prospectsAssigned": [] if empty else assigned}
        return _json(200, payload, ascii_only=False)

    def _tasks(self, request: RecordedRequest, fault: Fault | None) -> _Reply:
        """``POST /v2/tasks``: one user's tasks of the asked types and statuses.

        Unpaged unless ``tasks_page_size`` is set; then the cursor comes back in the JSON body,
        bound to the user and workspace, and a cursor in the query is refused. With a
        ``workspaceId``, FLOW tasks whose flow is elsewhere are left out (a guess: Gong does not
        say); MANUAL tasks belong to no flow and stay.
        """
        rid = request.request_id
        try:
            task_filter = _requested_task_filter(request.body)
        except ValueError as problem:
            return _error(400, rid, str(problem))
        user_id = task_filter["userId"]
        if user_id in self.world.rejected_task_users:
            status, message = self.world.rejected_task_users[user_id]
            return _error(status, rid, message)
        if user_id not in self.world.tasks and all(u["id"] != user_id for u in self.world.users):
            message = f"No user found corresponding to the provided userId {user_id}"
            return _json(404, {"errors": [message]})
        if "cursor" in request.params:
            return _error(400, rid, "Invalid cursor: a cursor goes in the JSON body")
        workspace_id = task_filter.get("workspaceId") or None
        elsewhere = {
            _int_id(f.id)
            for f in self.world.flows
            if workspace_id and f.workspace_id != workspace_id
        }
        tasks = [
            task
            for task in self.world.tasks.get(user_id, [])
            if task.get("type") in task_filter["types"]
            and task.get("status") in task_filter["status"]
            and (task.get("flow") or {}).get("id") not in elsewhere
        ]
        extra = {"crmType": "SALESFORCE"}
        if self.tasks_page_size is None and "cursor" not in (request.body_json or {}):
            kind = fault.kind if fault is not None else None
            payload = {"requestId": rid, "tasks": [] if kind == "empty" else tasks}
            return _json(200, payload | extra, ascii_only=False)
        return self._page(
            request, "tasks", tasks, user_id, workspace_id, fault=fault, extra=extra,
            page_size=self.tasks_page_size or max(len(tasks), 1),
        )  # fmt: skip

    def _bend_steps(self, asked: list[str], flows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A steps answer as ``steps_quirk`` says a broken Gong might give it."""
        quirk = self.steps_quirk
        if quirk == "repeat_flows":  # every flow twice
            return [*flows, *(dict(flow) for flow in flows)]
        if quirk in ("repeat_steps", "differing_steps"):  # every step twice
            changed = {"name": "a different copy"} if quirk == "differing_steps" else {}
            return [
                {**flow, "steps": [*flow["steps"], *({**st, **changed} for st in flow["steps"])]}
                for flow in flows
            ]
        if quirk in ("no_steps", "null_steps"):
            return [
                {k: v for k, v in flow.items() if k != "steps"}
                | ({"steps": None} if quirk == "null_steps" else {})
                for flow in flows
            ]
        if quirk == "extra_flows":  # flows nobody asked for, Personal ones first
            others = sorted(
                (f for f in self.world.flows if f.id not in asked),
                key=lambda f: (f.owner is None, f.id),
            )
            extra = [self.world.flow_with_steps(f.id) for f in others[:2]]
            return [*flows, *(f for f in extra if f is not None)]
        raise ValueError(f"unknown steps_quirk {quirk!r}; expected one of {STEPS_QUIRKS}")

    def _page(
        self,
        request: RecordedRequest,
        key: str,
        items: list[dict[str, Any]],
        owner: str | None = None,
        workspace_id: str | None = None,
        *,
        fault: Fault | None,
        extra: dict[str, Any] | None = None,
        page_size: int | None = None,
    ) -> _Reply:
        """One page of ``items``; a cursor must come from the same endpoint, owner and workspace.

        The cursor is the query's on GET, the JSON body's on POST (``/v2/tasks``). A "cycle" fault
        points the cursor back at page ``cycle_to``; an "empty" fault empties the page and points
        a fresh cursor at the next page. ``extra`` fields go into the answer as they are.
        """
        page = 0
        page_size = page_size or self.page_size
        if request.method == "POST":
            body = request.body_json if isinstance(request.body_json, dict) else {}
            sent = body.get("cursor")
        else:
            sent = request.params.get("cursor")
        if sent is not None:
            cursor = _decode_cursor(sent) if isinstance(sent, str) else None
            expected = (request.path, (owner or "").lower(), workspace_id or "")
            if cursor is None or cursor[:3] != expected:
                return _error(400, request.request_id, "Invalid cursor")
            page = cursor[3]
        start, end = page * page_size, (page + 1) * page_size
        kind = fault.kind if fault is not None else None
        chunk = [] if kind == "empty" else items[start:end]
        records: dict[str, Any] = {
            "totalRecords": len(items),
            "currentPageSize": len(chunk),
            "currentPageNumber": page,
        }
        if end < len(items):
            records["cursor"] = cursor_token(request.path, owner, workspace_id, page + 1)
        if fault is not None and kind == "cycle":
            records["cursor"] = cursor_token(request.path, owner, workspace_id, fault.cycle_to)
        if kind == "empty":
            nonce = f"fresh-{next(_FRESH_CURSORS)}"
            records["cursor"] = cursor_token(request.path, owner, workspace_id, page + 1, nonce)
        payload = {"requestId": request.request_id, "records": records, key: chunk, **(extra or {})}
        return _json(200, payload, ascii_only=request.method != "POST")


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:  # not JSON, or not UTF-8
        return None


def _requested_flow_ids(body: bytes) -> list[str]:
    """The ``flowIds`` of a steps request; ValueError, with Gong's kind of message, if malformed."""
    try:
        value = json.loads(body)
    except ValueError:
        raise ValueError("Malformed request: the body is not JSON") from None
    flow_ids = value.get("flowIds") if isinstance(value, dict) else None
    if not isinstance(flow_ids, list) or not all(isinstance(i, str) for i in flow_ids):
        raise ValueError("Malformed request: flowIds must be a list of flow id strings")
    if not flow_ids:
        raise ValueError("Malformed request: flowIds must not be empty")
    if len(flow_ids) > MAX_FLOW_IDS:
        raise ValueError(f"Malformed request: at most {MAX_FLOW_IDS} flowIds a request")
    return flow_ids


def _requested_prospect_ids(body: bytes) -> tuple[str, list[str]]:
    """Which key a prospects request uses and its ids; ValueError if the body is malformed.

    Exactly one of ``crmProspectsIds`` and ``flowInstanceIds``, a list of strings (Gong's
    ProspectsAssignedFlowsRequestV2); an empty list is taken and answers nothing.
    """
    try:
        value = json.loads(body)
    except ValueError:
        raise ValueError("Malformed request: the body is not JSON") from None
    keys = [
        k for k in ("crmProspectsIds", "flowInstanceIds") if isinstance(value, dict) and k in value
    ]
    if len(keys) != 1:
        raise ValueError("Malformed request: exactly one of crmProspectsIds or flowInstanceIds")
    ids = value[keys[0]]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError(f"Malformed request: {keys[0]} must be a list of id strings")
    return keys[0], ids


def _requested_task_filter(body: bytes) -> dict[str, Any]:
    """The ``filter`` of a tasks request (Gong's ReminderFilter); ValueError if malformed.

    userId, types, taskAction and status are all required, the lists non-empty and within their
    enums; workspaceId is optional.
    """
    try:
        value = json.loads(body)
    except ValueError:
        raise ValueError("Malformed request: the body is not JSON") from None
    task_filter = value.get("filter") if isinstance(value, dict) else None
    if not isinstance(task_filter, dict):
        raise ValueError("Malformed request: filter is required")  # noqa: TRY004 - Gong's 400
    user_id = task_filter.get("userId")
    if not isinstance(user_id, str) or not user_id:
        raise ValueError("Malformed request: filter.userId must be a user id string")
    for key, allowed in (
        ("types", TASK_TYPES),
        ("taskAction", TASK_ACTIONS),
        ("status", TASK_STATUSES),
    ):
        values = task_filter.get(key)
        if not isinstance(values, list) or not values or not all(v in allowed for v in values):
            raise ValueError(
                f"Malformed request: filter.{key} must be a list of {', '.join(allowed)}"
            )
    workspace_id = task_filter.get("workspaceId")
    if workspace_id is not None and not isinstance(workspace_id, str):
        raise ValueError("Malformed request: filter.workspaceId must be a string")
    return task_filter


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
        self.server.standin.handle(self, self._read_body())

    def do_POST(self) -> None:
        self.server.standin.handle(self, self._read_body())

    def _read_body(self) -> bytes:
        if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""
        parts = []
        try:
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        except ValueError:  # a broken chunk header: answer what we have, then hang up
            self.close_connection = True
            return b"".join(parts)
        while self.rfile.readline() not in {b"\r\n", b"\n", b""}:  # trailers
            pass
        return b"".join(parts)

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
        if reply.action == "trickle":
            self._trickle(body, reply.delay, reply.chunk)
            return
        if reply.action == "truncate":  # promise the whole body, send half of it, hang up
            body, self.close_connection = body[: len(body) // 2], True
        self.wfile.write(body)

    def _trickle(self, body: bytes, delay: float, chunk: int) -> None:
        try:
            for start in range(0, len(body), chunk):
                if start:
                    time.sleep(delay)
                self.wfile.write(body[start : start + chunk])
        except OSError:  # the client hung up mid-body (or the stand-in stopped): stop writing
            self.close_connection = True

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
        prog="python -m tests.gong_standin",
        description=(
            "Run a stand-in for Gong's API: GET /v2/flows, /v2/users, /v2/workspaces; "
            "POST /v2/flows/steps, /v2/flows/prospects, /v2/tasks."
        ),
    )
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--owners", type=int, default=3)
    parser.add_argument(
        "--prospects", type=int, default=12, help="prospects with flow instances and tasks"
    )
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument(
        "--tasks-page-size", type=int, default=None, help="page /v2/tasks (Gong documents none)"
    )
    parser.add_argument(
        "--prospects-id-limit", type=int, default=None, help="ids per /v2/flows/prospects call"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--rate-limit", type=float, default=None, help="calls per second")
    parser.add_argument("--daily-quota", type=int, default=None)
    parser.add_argument("--url-file", type=Path, default=None, help="write the base URL here")
    args = parser.parse_args(argv)

    # Block the stop signals before any thread starts (threads inherit the mask), then wait.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    standin = GongStandIn(
        add_engage(make_world(owners=args.owners), prospects=args.prospects),
        page_size=args.page_size,
        tasks_page_size=args.tasks_page_size,
        prospects_id_limit=args.prospects_id_limit,
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
