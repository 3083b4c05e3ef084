"""Every use of singer-sdk's private parts, in one place, each with why no public hook does it.

The SDK may rename or drop any of these in a patch release. tests/test_sdk_surface.py checks
that the installed singer-sdk still has each name used here with the signature expected, so an
upgrade that moves one fails there, by name, not in the middle of a sync.

Three private names cannot live here because they are overrides, which must be methods of the
class: `TapGongFlows._validate_config` and `TapGongFlows._setup_signal_handlers` (tap.py), and
`GongStream._write_schema_message` (client.py), checked by the same test.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable

    import click
    import requests
    from singer_sdk import RESTStream, Tap
    from singer_sdk.streams import Stream

    _R = t.TypeVar("_R", bound=type[RESTStream])


def cli_config(ctx: click.Context) -> tuple[dict[str, t.Any], bool]:
    """The config and parse-env flag that --config gave, read as the SDK's cb_test reads them.

    The SDK hands them to its CLI callbacks only as a private `_ConfigInput` (its `config` and
    `parse_env`) in `ctx.params["config"]`; there is no public accessor.
    """
    given = ctx.params.get("config")
    if given is None:
        return {}, False
    return dict(given.config), bool(given.parse_env)


def mutable_config(tap: Tap) -> dict[str, t.Any]:
    """The tap's config as a dict it may change.

    `Tap.config` is a read-only view; settings arrive as strings (`--config ENV`, some Meltano
    versions) and must be typed before the SDK's schema check in `_validate_config` sees them.
    The SDK offers no hook between reading the config and validating it.
    """
    return t.cast("dict[str, t.Any]", tap._config)


def quiet_request_metrics(cls: _R) -> _R:
    """A class decorator: no METRIC log line per request.

    The SDK has no setting for this short of silencing every metric (`metrics_log_level`); the
    per-owner progress line already counts requests.
    """
    cls._LOG_REQUEST_METRICS = False
    return cls


def send_once(stream: RESTStream) -> Callable[[requests.PreparedRequest, t.Any], requests.Response]:
    """One send of a prepared request (auth, session, timeout, validate_response), no retry.

    `RESTStream.request_records` wraps exactly this in `request_decorator`, but it also owns the
    paging loop and yields records, not pages; the tap needs each page as one unit (the owner's
    prefetch hand-off, one error naming owner and page), so it runs the loop itself around this.
    """
    return stream._request


def set_stream_version(stream: Stream, version: int) -> None:
    """Stamp the stream's RECORD messages with `version`.

    The SDK sets a version only together with sending ACTIVATE_VERSION before the first record,
    so a target would delete every row of a sync that fails half-way; the tap sends it after
    the data instead, and needs the version on the records before that.
    """
    stream._stream_version = version


def write_activate_version(stream: Stream, version: int) -> None:
    """Send ACTIVATE_VERSION for the stream (under each stream map's alias).

    The SDK's only public path sends it at the start of the sync; see set_stream_version.
    """
    stream._write_activate_version_message(version)


def write_state(stream: Stream) -> None:
    """Send a STATE message now with the stream's bookmark, even if the SDK thinks it sent one.

    The SDK sends STATE at the end of a partition or every STATE_MSG_FREQUENCY records; the
    flows bookmark must go out after each owner, and no public method writes STATE.
    """
    stream.state_manager.is_flushed = False
    stream._write_state_message()
