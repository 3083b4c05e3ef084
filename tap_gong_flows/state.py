"""The flows bookmark: progress through the owners in their deterministic order.

Its size does not grow with the number of owners: it names the last owner completed, the table
version of the pass, what the pass has seen so far (owners Gong accepted and refused, flow
records, the streams that emitted a row), the streams every run of it synced in full, so a pass
that spans runs is judged as a whole before it may activate its version, and only for those
streams; and the few flow ids still waiting for their steps call (at most 39).
Every key is always written, so a state store that deep-merges a partial STATE into an older
one (Meltano does) ends up with exactly the newest bookmark.
"""

from __future__ import annotations

import bisect
import dataclasses
import time
import typing as t

from tap_gong_flows.errors import GongTapError
from tap_gong_flows.ids import is_whole
from tap_gong_flows.steps import MAX_WAITING

COUNTS = ("accepted", "refused", "records", "tasks_refused")
FIELDS = ("streams", "emitted", "waiting")
DAY_KEYS = ("day", "day_requests")  # the call budget's count of the day: see budget.py
# What a bookmark without "streams" covered: the tap's releases before flow_steps synced flows only.
FLOWS_ONLY = ("flows",)


class StateShapeError(GongTapError):
    """The state given to the tap is not of the shape it writes."""


def _is_count(value: object) -> bool:
    return is_whole(value) and value >= 0  # type: ignore[operator]


def _is_names(value: object, most: int | None = None) -> bool:
    """A list of non-empty strings, at most `most` of them."""
    return (
        isinstance(value, list)
        and all(isinstance(name, str) and name for name in value)
        and (most is None or len(value) <= most)
    )


@dataclasses.dataclass
class OwnerPass:
    """One pass over every owner. `last_owner` None: no owner of this pass is complete yet."""

    version: int
    last_owner: str | None = None
    accepted: int = 0  # owners Gong accepted in this pass
    refused: int = 0  # owners Gong refused (skipped) in this pass
    records: int = 0  # flow records emitted in this pass
    tasks_refused: int = 0  # owners whose flows Gong listed and whose tasks it refused
    # The streams every run of this pass synced in full: the only ones its end may activate.
    # A stream selected in some runs of the pass only, or whose data came back incomplete
    # (a steps answer without a flow asked for), has rows this pass never emitted.
    streams: list[str] = dataclasses.field(default_factory=lambda: list(FLOWS_ONLY))
    # The streams that emitted at least one row in this pass: a stream that emitted none is
    # never activated (a target would delete every row of it).
    emitted: list[str] = dataclasses.field(default_factory=list)
    # Flow ids whose steps call is still owed: the next run asks for them first.
    waiting: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def from_bookmark(cls, bookmark: t.Mapping[str, t.Any]) -> OwnerPass:
        """Resume the interrupted pass the bookmark describes, or start a new one."""
        version = bookmark.get("version")
        last_owner = bookmark.get("last_owner")
        streams = bookmark.get("streams", list(FLOWS_ONLY))
        # A bookmark of 0.1.0 says nothing of what was emitted: only its flow records count.
        emitted = bookmark.get("emitted", ["flows"] if bookmark.get("records") else [])
        waiting = bookmark.get("waiting", [])
        known = {"version", "last_owner", "progress_markers", *FIELDS, *COUNTS, *DAY_KEYS}
        if (
            set(bookmark) - known
            or not _is_names(streams)
            or not _is_names(emitted)
            or not _is_names(waiting, MAX_WAITING)
            or (last_owner is not None and not isinstance(last_owner, str))
            or not all(_is_count(bookmark.get(name, 0)) for name in COUNTS)
        ):
            raise StateShapeError(
                "The state's bookmarks.flows is not of this tap's shape: expected "
                '{"version": <integer>, "last_owner": <email or null>, "accepted": <count>, '
                '"refused": <count>, "records": <count>, "tasks_refused": <count>, "streams": '
                '[<name>, ...], "emitted": [<name>, ...], "waiting": '
                f"[<at most {MAX_WAITING} flow ids>]}}, got "
                f"{dict(bookmark)!r}. Pass a state written by tap-gong-flows, or none for a "
                "full pass."
            )
        if version is not None and (not is_whole(version) or version < 1):
            raise StateShapeError(
                "The state's bookmarks.flows is not of this tap's shape: its version must be a "
                f"positive integer (the pass's start in milliseconds), got {dict(bookmark)!r}. "
                "Pass a state written by tap-gong-flows, or none for a full pass."
            )
        if last_owner and version is not None:
            counts = {name: bookmark.get(name, 0) for name in COUNTS}
            return cls(
                version=version,
                last_owner=last_owner,
                **counts,
                streams=list(streams),
                emitted=list(emitted),
                waiting=list(waiting),
            )
        return cls(version=int(time.time() * 1000))

    def remaining(self, owners: list[str]) -> list[str]:
        """The owners, in order, that this pass has still to fetch."""
        if self.last_owner is None:
            return owners
        return owners[bisect.bisect_right(owners, self.last_owner) :]

    def bookmark(self) -> dict[str, t.Any]:
        written = dataclasses.asdict(self)
        if not self.tasks_refused and "tasks" not in self.streams:
            # Read only to judge tasks: a pass that may activate tasks writes it in every STATE.
            del written["tasks_refused"]
        return written

    def keep_streams(self, names: t.Iterable[str]) -> None:
        """Keep only the streams in `names` as ones this pass may activate."""
        keep = set(names)
        self.streams = [name for name in self.streams if name in keep]

    def add_records(self, name: str, count: int) -> None:
        """`count` more flow records of the stream `name` in this pass."""
        self.records += count
        if count:
            self.note_emitted(name)

    def note_emitted(self, name: str) -> None:
        """The stream `name` emitted a row in this pass."""
        if name not in self.emitted:
            self.emitted.append(name)
