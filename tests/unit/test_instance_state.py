"""The flow_instances bookmark's codec (instance_state.py)."""

from __future__ import annotations

import base64
import json
import random
import zlib

import pytest

from tap_gong_flows.instance_state import GONE, InstanceBookmark, decode, encode
from tap_gong_flows.state import StateShapeError


def open_set(n: int, seed: int = 1) -> dict[str, str]:
    rng = random.Random(seed)
    statuses = ("Pending", "Running", "Paused")
    return {str(rng.randrange(10**15, 10**16)): rng.choice(statuses) for _ in range(n)}


def test_the_sets_come_back_as_they_went_in_unknown_statuses_included() -> None:
    opened = {**open_set(50), "77": "SomethingNew"}
    seen = {"1": "Running", "2": "FinishedResponse", "3": GONE, "4": "Finished"}
    assert decode(encode(opened, seen))[:2] == (opened, seen)
    assert decode(encode({}, {})) == ({}, {}, set(), set())
    assert decode(encode({}, {}, {"crm1"}, ["crm2", "crm3"]))[2:] == ({"crm1"}, {"crm2", "crm3"})


@pytest.mark.parametrize("n", [1_000, 20_000])
def test_an_open_instance_costs_at_most_40_bytes_of_state(n: int) -> None:
    bookmark = InstanceBookmark(open=open_set(n))
    size = len(json.dumps(bookmark.whole()))
    assert size <= 40 * n
    assert size / n < 15  # measured: about 11 bytes for random 16-digit ids


def test_a_whole_bookmark_loads_back_and_its_small_part_is_small() -> None:
    bookmark = InstanceBookmark("crm000040", False, open_set(10), {"5": "Paused"})
    again = InstanceBookmark.from_bookmark(bookmark.whole(), bookmark.whole()["sets"])
    assert (again.last_id, again.crm_done, again.open, again.seen) == (
        "crm000040", False, bookmark.open, {"5": "Paused"},
    )  # fmt: skip
    assert again.sets_carried
    assert set(bookmark.small()) == {"last_id", "crm_done", "started", "sizes"}
    assert not InstanceBookmark.from_bookmark(bookmark.small(), None).sets_carried
    assert InstanceBookmark.from_bookmark({}, None).sets_carried  # nothing to carry


@pytest.mark.parametrize(
    "bookmark",
    [
        {"last_id": 5},
        {"last_id": ""},
        {"crm_done": "yes"},
        {"other": 1},
        {"sets": 12},
        {"sets": "not base64!"},
        {"sets": base64.b64encode(b"not zlib").decode()},
        {"sets": base64.b64encode(zlib.compress(b"Xq123")).decode()},
        {"sets": base64.b64encode(zlib.compress(b"OP12 3")).decode()},
        {"sets": encode({"1": "Running"}, {})[:-4]},
        {"started": "yesterday"},
        {"sizes": [100]},
        {"sizes": [0, 100]},
        {"sizes": [101, 100]},
        {"started": 5},
    ],
)
def test_a_bookmark_of_another_shape_is_refused(bookmark: dict) -> None:
    with pytest.raises(StateShapeError, match=r"bookmarks\.flow_instances"):
        InstanceBookmark.from_bookmark(bookmark, bookmark.get("sets"))


def test_an_empty_bookmark_is_none_to_carry() -> None:
    assert InstanceBookmark.found_in({"flow_instances": {}}) is None
    assert InstanceBookmark.found_in({}) is None
    assert InstanceBookmark.found_in({"flow_instances": {"last_id": None}}) is not None
