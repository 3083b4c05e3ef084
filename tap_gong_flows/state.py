"""The flows bookmark: progress through the owners in their deterministic order.

Its size does not grow with the number of owners: it names the last owner completed and the
table version of the pass. Every key is always written, so a state store that deep-merges a
partial STATE into an older one (Meltano does) ends up with exactly the newest bookmark.
"""

from __future__ import annotations

import bisect
import dataclasses
import time
import typing as t

from tap_gong_flows.errors import GongTapError


class StateShapeError(GongTapError):
    """The state given to the tap is not of the shape it writes."""


@dataclasses.dataclass
class OwnerPass:
    """One pass over every owner. `last_owner` None: no owner of this pass is complete yet."""

    version: int
    last_owner: str | None = None

    @classmethod
    def from_bookmark(cls, bookmark: t.Mapping[str, t.Any]) -> OwnerPass:
        """Resume the interrupted pass the bookmark describes, or start a new one."""
        version = bookmark.get("version")
        last_owner = bookmark.get("last_owner")
        unknown = set(bookmark) - {"version", "last_owner", "progress_markers"}
        if (
            unknown
            or (version is not None and (not isinstance(version, int) or isinstance(version, bool)))
            or (last_owner is not None and not isinstance(last_owner, str))
        ):
            raise StateShapeError(
                "The state's bookmarks.flows is not of this tap's shape: expected "
                '{"version": <integer>, "last_owner": <email or null>}, got '
                f"{dict(bookmark)!r}. Pass a state written by tap-gong-flows, or none for a "
                "full pass."
            )
        if last_owner and version is not None:
            return cls(version=version, last_owner=last_owner)
        return cls(version=int(time.time() * 1000))

    def remaining(self, owners: list[str]) -> list[str]:
        """The owners, in order, that this pass has still to fetch."""
        if self.last_owner is None:
            return owners
        return owners[bisect.bisect_right(owners, self.last_owner) :]

    def bookmark(self) -> dict[str, t.Any]:
        return {"version": self.version, "last_owner": self.last_owner}
