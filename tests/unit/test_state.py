"""OwnerPass: the flows bookmark read back, the owners left, and when a pass is not trusted."""

from __future__ import annotations

import time

import pytest

from tap_gong_flows import deletes
from tap_gong_flows.errors import GongTapError
from tap_gong_flows.state import COUNTS, OwnerPass, StateShapeError

OWNERS = ["a@x.com", "b@x.com", "c@x.com", "d@x.com"]


def now_ms() -> int:
    return int(time.time() * 1000)


# --- from_bookmark -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bookmark",
    [
        {},
        {"version": None, "last_owner": None},
        {"version": 5, "last_owner": None},  # a pass that completed no owner starts over
        {"version": 5, "last_owner": ""},
        {"version": None, "last_owner": "b@x.com"},  # an owner without a version: start over
        {"version": 5, "accepted": 3, "refused": 1, "records": 9},
        {"progress_markers": {"Note": "SDK"}},
    ],
)
def test_new_pass(bookmark: dict) -> None:
    before = now_ms()
    owner_pass = OwnerPass.from_bookmark(bookmark)
    assert before <= owner_pass.version <= now_ms()
    assert owner_pass.last_owner is None
    assert (owner_pass.accepted, owner_pass.refused, owner_pass.records) == (0, 0, 0)


def test_resumed_pass_keeps_version_owner_and_counts() -> None:
    bookmark = {"version": 17, "last_owner": "b@x.com", "accepted": 2, "refused": 1, "records": 40}
    # A bookmark of 0.1.0 has no "emitted": its flow records say that flows emitted rows.
    assert OwnerPass.from_bookmark(bookmark) == OwnerPass(
        17, "b@x.com", 2, 1, 40, emitted=["flows"]
    )


def test_resumed_pass_from_an_old_bookmark_without_counts() -> None:
    assert OwnerPass.from_bookmark({"version": 17, "last_owner": "b@x.com"}) == OwnerPass(
        17, "b@x.com", 0, 0, 0
    )


def test_resumed_pass_ignores_progress_markers() -> None:
    bookmark = {"version": 1, "last_owner": "a@x.com", "progress_markers": {"x": 1}}
    assert OwnerPass.from_bookmark(bookmark).last_owner == "a@x.com"


@pytest.mark.parametrize("version", [0, -1])
def test_a_version_that_is_not_positive_is_refused(version: int) -> None:
    # No pass starts at or before 1970: a hand-edited state. Activating it would tell a target
    # to keep only the rows of a version no record carries.
    with pytest.raises(StateShapeError, match="version must be a positive integer"):
        OwnerPass.from_bookmark({"version": version, "last_owner": "a@x.com"})


def test_a_resumed_bookmark_keeps_what_was_emitted_and_the_ids_waiting() -> None:
    bookmark = {
        "version": 5,
        "last_owner": "b@x.com",
        "records": 0,
        "emitted": ["flow_definitions"],
        "waiting": ["11", "12"],
    }
    resumed = OwnerPass.from_bookmark(bookmark)
    assert resumed.emitted == ["flow_definitions"]
    assert resumed.waiting == ["11", "12"]
    assert OwnerPass.from_bookmark(resumed.bookmark()) == resumed


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("waiting", [str(i) for i in range(40)]),  # more than 39: not a bookmark of ours
        ("waiting", [17]),
        ("waiting", [""]),
        ("waiting", "17"),
        ("emitted", ["flows", None]),
        ("emitted", "flows"),
    ],
)
def test_emitted_and_waiting_of_another_shape_are_a_bad_state(name: str, bad: object) -> None:
    with pytest.raises(StateShapeError, match="not of this tap's shape"):
        OwnerPass.from_bookmark({"version": 1, "last_owner": "a@x.com", name: bad})


BAD_SHAPES = [
    {"version": "17", "last_owner": "a@x.com"},
    {"version": 17.0, "last_owner": "a@x.com"},
    {"version": True, "last_owner": "a@x.com"},
    {"version": [17]},
    {"version": 17, "last_owner": 5},
    {"version": 17, "last_owner": ["a@x.com"]},
    {"version": 17, "last_owner": True},
    {"version": 17, "last_owner": "a@x.com", "lastOwner": "b@x.com"},
    {"replication_key_value": "2024-01-01"},
    {"unknown": None},
    *(
        {"version": 1, "last_owner": "a@x.com", name: bad}
        for name in COUNTS
        for bad in (-1, "3", 2.0, True, None, [1])
    ),
]


@pytest.mark.parametrize("bookmark", BAD_SHAPES)
def test_every_bad_shape_is_a_state_shape_error(bookmark: dict) -> None:
    with pytest.raises(StateShapeError) as raised:
        OwnerPass.from_bookmark(bookmark)
    text = str(raised.value)
    assert "bookmarks.flows is not of this tap's shape" in text
    assert repr(bookmark) in text
    assert isinstance(raised.value, GongTapError)


# --- remaining -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_owner", "left"),
    [
        (None, OWNERS),
        ("a@x.com", OWNERS[1:]),
        ("b@x.com", OWNERS[2:]),
        ("d@x.com", []),
        ("bb@x.com", OWNERS[2:]),  # an owner gone since: carry on after where it sorted
        ("0@x.com", OWNERS),
        ("z@x.com", []),
    ],
)
def test_remaining(last_owner: str | None, left: list[str]) -> None:
    assert OwnerPass(1, last_owner).remaining(OWNERS) == left


def test_remaining_does_not_change_the_list() -> None:
    owners = list(OWNERS)
    OwnerPass(1, "b@x.com").remaining(owners)
    assert owners == OWNERS


# --- bookmark ------------------------------------------------------------------------------


def test_bookmark_writes_every_key() -> None:
    assert OwnerPass(3).bookmark() == {
        "version": 3,
        "last_owner": None,
        "accepted": 0,
        "refused": 0,
        "records": 0,
        "streams": ["flows"],
        "emitted": [],
        "waiting": [],
    }


def test_a_pass_that_may_activate_tasks_always_writes_their_refusals() -> None:
    assert OwnerPass(3, streams=["flows", "tasks"]).bookmark()["tasks_refused"] == 0
    assert OwnerPass(3, tasks_refused=2).bookmark()["tasks_refused"] == 2


def test_a_resumed_bookmark_keeps_its_streams_and_one_without_them_covered_flows_only() -> None:
    bookmark = {"version": 17, "last_owner": "b@x.com", "streams": ["flows", "flow_steps"]}
    assert OwnerPass.from_bookmark(bookmark).streams == ["flows", "flow_steps"]
    del bookmark["streams"]  # written by a release before flow_steps
    assert OwnerPass.from_bookmark(bookmark).streams == ["flows"]


@pytest.mark.parametrize("streams", ["flows", [1], None, {"flows": True}])
def test_streams_of_another_shape_are_a_bad_state(streams: object) -> None:
    with pytest.raises(StateShapeError, match="streams"):
        OwnerPass.from_bookmark({"version": 1, "last_owner": "a@x.com", "streams": streams})


def test_keep_streams_drops_the_others_in_order() -> None:
    owner_pass = OwnerPass(1, streams=["flows", "flow_steps", "flow_definitions"])
    owner_pass.keep_streams(["flow_definitions", "flows", "users"])
    assert owner_pass.streams == ["flows", "flow_definitions"]


@pytest.mark.parametrize(
    "owner_pass", [OwnerPass(9, "c@x.com", 3, 0, 12), OwnerPass(1, "a@x.com", 0, 1, 0)]
)
def test_bookmark_round_trip(owner_pass: OwnerPass) -> None:
    assert OwnerPass.from_bookmark(owner_pass.bookmark()) == owner_pass


def test_a_bookmark_without_an_owner_round_trips_to_a_new_pass() -> None:
    fresh = OwnerPass.from_bookmark(OwnerPass(9).bookmark())
    assert fresh.last_owner is None
    assert fresh.version != 9


# --- distrust ------------------------------------------------------------------------------


def distrust(accepted: int, refused: int, records: int, share: float = 0.5, **kw: bool) -> str:
    owner_pass = OwnerPass(1, "z@x.com", accepted=accepted, refused=refused, records=records)
    why = deletes.why_pass_not_trusted(
        owner_pass, share, company_only=kw.get("company_only", False)
    )
    return why or ""


def test_no_owner_at_all() -> None:
    assert distrust(0, 0, 0) == "there was no owner to fetch"
    assert distrust(0, 0, 0, company_only=True) == "there was no owner to fetch"


@pytest.mark.parametrize("company_only", [False, True])
def test_no_owner_accepted(company_only: bool) -> None:
    assert distrust(0, 4, 0, company_only=company_only) == "Gong accepted no owner"


@pytest.mark.parametrize("company_only", [False, True])
def test_owners_accepted_but_no_records(company_only: bool) -> None:
    assert distrust(3, 0, 0, company_only=company_only) == (
        "Gong accepted 3 owners but listed no flow for any of them"
    )


def test_a_healthy_pass_is_trusted() -> None:
    assert distrust(10, 0, 50) == ""
    assert distrust(10, 2, 50) == ""


@pytest.mark.parametrize(
    ("accepted", "refused", "share"),
    [
        (5, 5, 0.5),  # exactly at the limit: not more than it
        (1, 1, 0.5),
        (3, 1, 0.25),
        (1, 0, 0.0),
        (1, 99, 1.0),
        (8, 2, 0.2),
    ],
)
def test_refused_share_at_the_limit_is_trusted(accepted: int, refused: int, share: float) -> None:
    assert distrust(accepted, refused, 10, share) == ""


@pytest.mark.parametrize(
    ("accepted", "refused", "share"),
    [(4, 6, 0.5), (1, 2, 0.5), (9, 1, 0.0), (7, 3, 0.25)],
)
def test_refused_share_above_the_limit_is_distrusted(
    accepted: int, refused: int, share: float
) -> None:
    reason = distrust(accepted, refused, 10, share)
    assert reason == (
        f"Gong refused {refused} of {accepted + refused} owners, more than "
        f"max_refused_owner_share ({share:g})"
    )


@pytest.mark.parametrize(("accepted", "refused"), [(6, 4), (9, 1), (99, 1)])
def test_refused_share_below_the_limit_is_trusted(accepted: int, refused: int) -> None:
    assert distrust(accepted, refused, 10, 0.5) == ""


@pytest.mark.parametrize(("accepted", "refused"), [(1, 9), (1, 1000)])
def test_company_only_ignores_the_refused_share(accepted: int, refused: int) -> None:
    assert distrust(accepted, refused, 10, 0.0, company_only=True) == ""
    assert distrust(accepted, refused, 10, 0.0) != ""


@pytest.mark.parametrize("share", [0.29, 0.57, 0.58])
def test_refused_share_exactly_at_a_decimal_limit_is_trusted(share: float) -> None:
    refused = round(share * 100)
    assert distrust(100 - refused, refused, 10, share) == ""
