"""Every use of singer-sdk's private parts, in one place, each with why no public hook does it.

tests/test_sdk_surface.py checks that the installed singer-sdk still has each name used here,
with the signature this module expects, so an SDK upgrade that moves one fails there, by name.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    import click


def cli_config(ctx: click.Context) -> tuple[dict[str, t.Any], bool]:
    """The config and the parse-env flag the CLI's --config gave, as the SDK's cb_test reads
    them. The SDK passes them to its CLI callbacks only as a private `_ConfigInput` (with
    `config` and `parse_env`) in `ctx.params["config"]`; no public accessor exists."""
    given = ctx.params.get("config")
    if given is None:
        return {}, False
    return dict(given.config), bool(given.parse_env)
