"""What can delete rows: the one place that decides when a stream may send ACTIVATE_VERSION.

A target deletes (or soft-deletes) every row of a table that an activated version did not
emit, so each rule here keeps a pass that saw nothing, saw part, or was cancelled from telling
a target to delete rows still in Gong. Each function answers "why this may not activate", or
None when it may; `activate` is the only function that sends ACTIVATE_VERSION. The README's
"What can delete rows" lists the same rules in the same order.
"""

from __future__ import annotations

import typing as t

from tap_gong_flows import sdk_compat

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream

    from tap_gong_flows.state import OwnerPass


# 1. The setting


def why_not_enabled(enabled: bool) -> str | None:
    """`emit_activate_version_messages` is off by default: then nothing is ever deleted."""
    return None if enabled else "emit_activate_version_messages is off"


# 2. and 3. A complete pass that can be trusted, judged over all its runs


def why_pass_not_trusted(
    done: OwnerPass, max_refused_share: float, *, company_only: bool
) -> str | None:
    """Why this complete pass must not activate its version, or None when it may: Gong
    accepted no owner, refused more than `max_refused_share` of them (ignored in company-only
    mode, where one accepted owner lists every Company flow), or listed no flow at all."""
    asked = done.accepted + done.refused
    if done.accepted and not done.records:
        return f"Gong accepted {done.accepted} owners but listed no flow for any of them"
    if not done.accepted:
        return "Gong accepted no owner" if asked else "there was no owner to fetch"
    if not company_only and done.refused / asked > max_refused_share:
        return (
            f"Gong refused {done.refused} of {asked} owners, more than "
            f"max_refused_owner_share ({max_refused_share:g})"
        )
    return None


def why_tasks_not_trusted(done: OwnerPass, max_refused_share: float) -> str | None:
    """The tasks of a pass that also listed flows: Gong refused the tasks of more than
    `max_refused_share` of the owners whose flows it listed (counted apart, so a refused tasks
    call never fails the flows)."""
    if not done.tasks_refused:
        return None
    asked = done.accepted
    if done.tasks_refused >= asked or done.tasks_refused / asked > max_refused_share:
        return (
            f"Gong refused the tasks of {done.tasks_refused} of {asked} owners, more than "
            f"max_refused_owner_share ({max_refused_share:g})"
        )
    return None


def why_list_not_complete(rows: int) -> str | None:
    """`users` and `workspaces` are whole lists each run: one that came back empty is not
    trusted to empty the table."""
    return None if rows else "Gong listed none"


# 4. Synced in full by every run of the pass


def streams_a_resumed_pass_lacks(done: OwnerPass, syncing: list[str]) -> list[str]:
    """Which of the streams this run syncs an earlier run of the pass did not sync in full (not
    selected, an incomplete answer, or the setting off): they keep their rows this pass. The
    pass's `streams` is narrowed to what every run synced."""
    if done.last_owner is None:  # a new pass
        done.streams = list(syncing)
        return []
    late = [name for name in syncing if name not in done.streams]
    done.keep_streams(syncing)
    return late


def lacking_line(late: list[str]) -> str:
    """The WARNING for the streams a resumed pass lacks."""
    them = "them" if len(late) > 1 else "it"
    return (
        f"No ACTIVATE_VERSION for {', '.join(late)} at the end of this pass: an earlier run of "
        f"the pass did not sync {them} in full (not selected, a steps answer that left out "
        "flows, or emit_activate_version_messages off), so a target would delete rows still in "
        f"Gong. The next pass activates {them}."
    )


def hold_back(done: OwnerPass, names: t.Iterable[str]) -> None:
    """An answer of this pass was incomplete for these streams: they are not activated."""
    drop = set(names)
    done.keep_streams(name for name in done.streams if name not in drop)


# 5. Emitted at least one row in the pass


def streams_without_rows(done: OwnerPass, names: list[str]) -> list[str]:
    """The streams of `names` that emitted no row in the pass: activating them would delete
    every row of their tables."""
    return [name for name in names if name not in done.emitted]


def may_activate(done: OwnerPass, name: str) -> bool:
    """Rules 4 and 5 for one stream of a trusted complete pass."""
    return name in done.streams and name in done.emitted


# Sending


def stamp(stream: Stream, version: int) -> None:
    """Stamp the stream's records with the pass's version, to be activated after its data."""
    sdk_compat.set_stream_version(stream, version)


def activate(stream: Stream, version: int) -> None:
    """Send ACTIVATE_VERSION: the target deletes every row of the stream's table that does not
    carry `version`. Only call this once a rule above said yes."""
    sdk_compat.write_activate_version(stream, version)
