"""What the stand-in tests of issue 20's streams share: an Engage world, what Gong holds of
it, what the tap asked, and the instance sets of a STATE."""

from __future__ import annotations

import typing as t

from tests.gong_standin import PROSPECTS, World, add_engage, make_world

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from tests.gong_standin import GongStandIn

INSTANCES = ("flow_instances", "flow_instance_changes")


def engage(prospects: int = 30, owners: int = 3) -> World:
    return add_engage(make_world(owners=owners), prospects=prospects)


def open_instances(world: World, crm_ids: Iterable[str] | None = None) -> dict[str, dict]:
    """{instance id: instance} of the open instances of these CRM ids (all: None), as Gong
    answers them."""
    asked = list(crm_ids) if crm_ids is not None else world.crm_ids()
    return {i["flowInstanceId"]: i for i in world.prospects_assigned(crm_ids=asked)}


def user_ids(world: World) -> dict[str, str]:
    """Gong user id by email."""
    return {u["emailAddress"]: u["id"] for u in world.users if u.get("emailAddress")}


def bodies(gong: GongStandIn, path: str) -> list[t.Any]:
    """The JSON body of each request to `path`, in order."""
    return [r.json() for r in gong.requests if r.path == path]


def asked(gong: GongStandIn, key: str = "crmProspectsIds") -> list[list[str]]:
    """The ids of each POST /v2/flows/prospects of this kind."""
    return [b[key] for b in bodies(gong, PROSPECTS) if isinstance(b, dict) and key in b]


def sets_in(state: dict) -> str | None:
    """The instance sets a STATE carries, or None."""
    return state.get("bookmarks", {}).get("flow_instances", {}).get("sets")
