"""The flow_instances bookmark: where the instance pass is, and the open instances it tracks.

Small part (in every STATE message): `last_id`, the last CRM id of the pass done,
`crm_done`, whether the pass is past its CRM ids and asking for the instances it did not see
open, and `started`, when the pass began (UTC; the key of its change rows). Large part,
`sets` (in at most two STATE messages a run, see streams.py): the open instances of the last
complete pass with their status, and the instances this pass has accounted for, both sorted and
compressed (about 8 to 12 bytes an instance). Every key is always
written, so a state store that deep-merges STATE messages keeps the last whole bookmark.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import typing as t
import zlib

from tap_gong_flows.id_batches import FIRST_SIZE
from tap_gong_flows.ids import is_whole
from tap_gong_flows.state import StateShapeError

OPEN = ("Pending", "Running", "Paused")
FINISHED = ("FinishedNoReply", "FinishedResponse", "Finished")
GONE = ""  # asked for by its id, Gong no longer answered for it: it leaves the open set
_CODES = dict(zip((*OPEN, *FINISHED, GONE), "PRUNFEG", strict=True))
_STATUSES = {code: status for status, code in _CODES.items()}
_OTHER = "*"  # a status Gong added after this release: "*<status>\t<id>"
_CRM_ID = "-"  # a line that holds a CRM id, no instance
MAX_TEXT = 256 * 2**20  # decompressed; 2 x 1,000,000 instances take about 40 MB
_SHAPE = (
    'expected {"last_id": <CRM id or null>, "crm_done": <true or false>, "started": <a UTC '
    'time or null>, "sizes": [<ids a call by CRM id>, <by instance id>], "sets": <the '
    "compressed instance sets, or absent>}"
)


def is_open(status: str) -> bool:
    """Open, or a status this release does not know (kept, so a later pass asks again)."""
    return status not in FINISHED and status != GONE


class Sets(t.NamedTuple):
    """The large part of the bookmark."""

    open: dict[str, str]  # instance id -> status, at the end of the last complete pass
    seen: dict[str, str]  # instance id -> status, as this pass saw it so far
    waiting: set[str]  # CRM ids of task contacts for the next instance pass
    asked: set[str]  # CRM ids of task contacts this instance pass asks about


def encode(
    open_set: t.Mapping[str, str],
    seen: t.Mapping[str, str],
    waiting: t.Iterable[str] = (),
    asked: t.Iterable[str] = (),
) -> str:
    """The sets as one ASCII string: sorted lines, zlib, base64."""
    lines = [_line("O", i, s) for i, s in sorted(open_set.items())]
    lines += [_line("S", i, s) for i, s in sorted(seen.items())]
    lines += [f"T{_CRM_ID}{crm_id}" for crm_id in sorted(waiting)]
    lines += [f"K{_CRM_ID}{crm_id}" for crm_id in sorted(asked)]
    return base64.b64encode(zlib.compress("\n".join(lines).encode(), 9)).decode("ascii")


def _line(part: str, instance_id: str, status: str) -> str:
    code = _CODES.get(status)
    return f"{part}{code}{instance_id}" if code else f"{part}{_OTHER}{status}\t{instance_id}"


def decode(text: str) -> Sets:
    """The sets of `encode`'s string; StateShapeError when it is not one."""
    try:
        packed = base64.b64decode(text.encode("ascii"), validate=True)
        inflate = zlib.decompressobj()
        raw = inflate.decompress(packed, MAX_TEXT)
        lines = raw.decode().split("\n") if raw else []
    except (ValueError, UnicodeError, binascii.Error, zlib.error) as exc:
        raise _bad(f"its sets do not decode ({exc})") from exc
    if inflate.unconsumed_tail or not inflate.eof:
        raise _bad("its sets are truncated or larger than any pass writes")
    sets = Sets({}, {}, set(), set())
    for line in lines:
        part, code, rest = line[:1], line[1:2], line[2:]
        if code == _CRM_ID and part in "TK" and rest and not _has_space(rest):
            (sets.waiting if part == "T" else sets.asked).add(rest)
            continue
        if code == _OTHER and "\t" in rest:
            status, instance_id = rest.split("\t", 1)
        else:
            status, instance_id = _STATUSES.get(code, "?"), rest
        if part not in "OS" or status == "?" or not instance_id or _has_space(instance_id):
            raise _bad(f"a line of its sets is not an instance ({line[:40]!r})")
        (sets.open if part == "O" else sets.seen)[instance_id] = status
    return sets


def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _has_space(text: str) -> bool:
    return any(char.isspace() for char in text)


def _bad(why: str) -> StateShapeError:
    return StateShapeError(
        f"The state's bookmarks.flow_instances is not of this tap's shape: {why}; {_SHAPE}. "
        "Pass a state written by tap-gong-flows, or none."
    )


@dataclasses.dataclass
class InstanceBookmark:
    """The instance pass as a STATE carries it."""

    last_id: str | None = None  # the last CRM id this pass is done with
    crm_done: bool = False  # past the CRM ids: asking for the open ones it did not see
    open: dict[str, str] = dataclasses.field(default_factory=dict)  # last complete pass
    seen: dict[str, str] = dataclasses.field(default_factory=dict)  # this pass so far
    started: str | None = None  # when this pass began, UTC, ISO
    # CRM ids of task contacts: those runs of an owner pass found for the next instance pass,
    # and those this instance pass asks about (streams.py)
    contacts_waiting: set[str] = dataclasses.field(default_factory=set)
    contacts_asked: set[str] = dataclasses.field(default_factory=set)
    # Ids a call that Gong took, by CRM id and by instance id: found once a pass (id_batches.py)
    sizes: list[int] = dataclasses.field(default_factory=lambda: [FIRST_SIZE, FIRST_SIZE])
    sets_carried: bool = True  # False: the STATE had the small part only

    @classmethod
    def from_bookmark(cls, bookmark: t.Mapping[str, t.Any], sets: str | None) -> InstanceBookmark:
        """The bookmark (its small part) with its `sets` (None: the STATE lacked them)."""
        last_id, crm_done = bookmark.get("last_id"), bookmark.get("crm_done", False)
        started, sizes = bookmark.get("started"), bookmark.get("sizes", [FIRST_SIZE, FIRST_SIZE])
        extra = set(bookmark) - {"last_id", "crm_done", "started", "sizes", "sets"}
        if extra or not (last_id is None or (isinstance(last_id, str) and last_id)):
            raise _bad(f"got {dict(bookmark)!r}")
        if not isinstance(crm_done, bool) or (sets is not None and not isinstance(sets, str)):
            raise _bad(f"got {dict(bookmark)!r}")
        if started is not None and not _is_time(started):
            raise _bad(f"its started is no UTC time ({started!r})")
        if not (
            isinstance(sizes, list)
            and len(sizes) == 2  # by CRM id, by instance id
            and all(is_whole(n) and 1 <= n <= FIRST_SIZE for n in sizes)
        ):
            raise _bad(f"its sizes are not two whole numbers from 1 to {FIRST_SIZE} ({sizes!r})")
        found = decode(sets) if sets is not None else Sets({}, {}, set(), set())
        # An empty bookmark (the SDK's, for a run that asked nothing) has nothing to carry.
        carried = sets is not None or not bookmark
        return cls(
            last_id,
            crm_done,
            found.open,
            found.seen,
            started,
            found.waiting,
            found.asked,
            list(sizes),
            sets_carried=carried,
        )

    @classmethod
    def found_in(cls, bookmarks: t.Mapping[str, t.Any]) -> InstanceBookmark | None:
        """The flow_instances bookmark of a state's bookmarks, or None when it has none."""
        found = bookmarks.get("flow_instances")
        return cls.from_bookmark(found, found.get("sets")) if found else None  # {}: nothing

    @property
    def in_pass(self) -> bool:
        """Whether a pass is under way (some of its CRM ids are done)."""
        return self.last_id is not None or self.crm_done

    @property
    def empty(self) -> bool:
        """Nothing to carry: no instance, no contact, no pass under way."""
        return not (
            self.open or self.seen or self.contacts_waiting or self.contacts_asked or self.in_pass
        )

    def small(self) -> dict[str, t.Any]:
        """What every STATE message carries."""
        return {
            "last_id": self.last_id,
            "crm_done": self.crm_done,
            "started": self.started,
            "sizes": self.sizes,
        }

    def whole(self) -> dict[str, t.Any]:
        """The small part and the sets: for the few STATE messages that carry them."""
        sets = encode(self.open, self.seen, self.contacts_waiting, self.contacts_asked)
        return {**self.small(), "sets": sets}
