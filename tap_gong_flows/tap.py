"""The tap: its settings, their checks, its streams, and how a run ends."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import typing as t
from functools import cached_property

import click
import simplejson
from singer_sdk import Tap
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
from singer_sdk.singerlib import StateMessage
from singer_sdk.tap_base import CliTestOptionValue
from typing_extensions import override

from tap_gong_flows import inputs, redact, sdk_compat, settings
from tap_gong_flows import streams as gong_streams
from tap_gong_flows.budget import CallBudget
from tap_gong_flows.crm_ids import configured_ids
from tap_gong_flows.errors import GongTapError
from tap_gong_flows.instance_state import InstanceBookmark
from tap_gong_flows.progress import RunProgress
from tap_gong_flows.rate_limit import RateLimitedSession, RateLimiter
from tap_gong_flows.services import RunServices
from tap_gong_flows.state import OwnerPass
from tap_gong_flows.stopping import SIGNALS, StopSwitch, output_closed

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream

SECRET_SETTINGS = tuple(s.name for s in settings.SETTINGS if s.secret)
STREAM_ORDER = (
    "workspaces",
    "users",
    "flows",
    "flow_steps",
    "flow_definitions",
    "tasks",
    "flow_instances",  # after flows: the instance pass goes after the owner pass
    "flow_instance_changes",
)


def _stream_rank(name: str) -> int:
    return STREAM_ORDER.index(name) if name in STREAM_ORDER else len(STREAM_ORDER)


class TapGongFlows(Tap):
    """Singer tap for Gong Engage flows."""

    name = "tap-gong-flows"
    message_writer_class = MsgSpecWriter  # about ten times faster than the default writer
    # No BATCH: a batch would carry records that the per-owner STATE has already covered.
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        c for c in Tap.capabilities if c != PluginCapabilities.BATCH
    ]

    config_jsonschema = settings.config_schema()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        type(self).running = self
        redact.install(self.secrets)

    @override
    def _setup_signal_handlers(self) -> None:
        # The SDK's own handlers exit 0, so a cancelled run would look like a success; and
        # replacing them after its __init__ would leave them on while it loads the catalog.
        # A private SDK method, the one place it installs them: tests/test_stop.py checks
        # that a tap built in the main thread leaves the signals to SIGNALS.
        SIGNALS.attach(self.stop)

    @cached_property
    def stop(self) -> StopSwitch:
        """Tripped by a fatal error, a signal or a closed stdout: every wait of the run ends."""
        return StopSwitch()

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        """Refuse a state of another shape before any request, instead of failing mid-sync."""
        bookmarks = inputs.state_bookmarks(state, STREAM_ORDER)
        OwnerPass.from_bookmark(bookmarks.get("flows", {}))
        CallBudget.from_bookmark(bookmarks.get("flows", {}), None, None, lambda: 0)
        self.services.instances_found = InstanceBookmark.found_in(bookmarks)
        super().load_state(state)
        # The sets go out in a run's few whole STATEs only, not in every STATE the SDK writes.
        self.state.get("bookmarks", {}).get("flow_instances", {}).pop("sets", None)

    @property
    def secrets(self) -> list[str]:
        return redact.config_secrets(self.config, SECRET_SETTINGS)

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # Numbers reach the tap as strings from `--config ENV` and some Meltano versions, and
        # as null from a JSON file: type them once, before the SDK's schema check sees them.
        # A private SDK method: no public hook runs between reading the config and checking
        # it. Its name and signature are checked by tests/test_sdk_surface.py.
        config = sdk_compat.mutable_config(self)
        typed, problems = settings.typed_config(config)
        config.update(typed)
        try:
            # the SDK's own schema check, private (see above); it adds its built-in settings
            problems = super()._validate_config(raise_errors=False) + problems
        except Exception as exc:
            problems.insert(0, str(exc))
        # Read once, here: a file that changes during the run changes nothing of it.
        self.crm_ids, crm_problems = configured_ids(config)
        problems += crm_problems
        typos, others = settings.unknown_names(config, self.setting_names())
        problems = typos + problems
        if others:
            self.logger.warning(
                "Ignoring names that are no setting of this tap: %s (a config shared with "
                "other tools may carry them).",
                ", ".join(others),
            )
        errors = [redact.SecretRedactor(self.secrets).redact(e) for e in problems]
        if errors and raise_errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        return errors

    def _budget(self, limiter: RateLimiter) -> CallBudget:
        """The call budget of this run and of the UTC day (every call the limiter lets out)."""
        bookmark = self.state.get("bookmarks", {}).get("flows", {}) if self.state else {}
        return CallBudget.from_bookmark(
            bookmark,
            self.config.get("max_requests_per_run"),
            self.config.get("max_requests_per_day"),
            lambda: limiter.requests,
        )

    @cached_property
    def services(self) -> RunServices:
        """What every stream of this run shares: made once, handed to each stream."""
        limiter = RateLimiter(float(self.config["max_requests_per_second"]), self.stop)
        return RunServices(
            stop=self.stop,
            limiter=limiter,
            session=RateLimitedSession(limiter, int(self.config["max_concurrent_requests"])),
            progress=RunProgress(limiter, self.logger),
            make_budget=lambda: self._budget(limiter),
            logger=self.logger,
            started_ms=self.initialized_at,
            crm_ids=getattr(self, "crm_ids", []),
        )

    @override
    def discover_streams(self) -> list[gong_streams.GongStream]:
        services = self.services
        users = gong_streams.UsersStream(self, services)
        flows = gong_streams.FlowsStream(self, services, users)
        instances = gong_streams.FlowInstancesStream(self, services, flows)
        return [
            gong_streams.WorkspacesStream(self, services),
            users,
            flows,
            gong_streams.FlowStepsStream(self, services, flows),
            gong_streams.FlowDefinitionsStream(self, services, flows),
            gong_streams.TasksStream(self, services, flows),
            instances,
            gong_streams.FlowInstanceChangesStream(self, services, instances),
        ]

    @property
    @override
    def streams(self) -> dict[str, Stream]:
        """The streams in discover_streams' order, not the SDK's by name: the catalog and the
        output keep the order they have always had (workspaces, users, flows). Nothing depends
        on it: users and flows share one read of /v2/users whichever of them syncs first."""
        loaded = super().streams
        return {name: loaded[name] for name in sorted(loaded, key=_stream_rank)}

    @classmethod
    @override
    def get_singer_command(cls) -> click.Command:
        """The SDK's command line, with `--test` described as this tap runs it."""
        command = super().get_singer_command()
        for param in command.params:
            if isinstance(param, click.Option) and param.name == "test":
                param.help = (
                    "Use --test to check the connection: one request with these credentials, "
                    "no retries, no records, and one line on what is wrong if it fails (exit "
                    "1). Use --test=schema to test schema output without syncing records."
                )
        return command

    @classmethod
    @override
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """`--test`: one request, a clear word on what is wrong, and a bad config reported as
        cleanly as for a sync, not as a traceback. `--test=schema` is the SDK's."""
        try:
            if value != CliTestOptionValue.All.value:
                super().cb_test(ctx, param, value)
                return
            # As the SDK's cb_test builds the tap, then our check instead of its dry-run sync.
            config, parse_env = sdk_compat.cli_config(ctx)
            tap = cls(config=config, parse_env_config=parse_env, validate_config=True)
        except ConfigValidationError as exc:
            for error in exc.errors:
                cls.logger.error(error)  # noqa: TRY400
            ctx.exit(1)
        ctx.exit(0 if tap.check_connection() else 1)

    def check_connection(self) -> bool:
        """One request with these credentials; False, with what is wrong logged, if it fails."""
        flows = t.cast("gong_streams.FlowsStream", self.streams["flows"])
        stream: gong_streams.GongStream
        if self.config.get("flow_owner_emails"):
            stream, context = flows, {"flow_owner_email": flows.owners[0]}
        else:
            stream, context = t.cast("gong_streams.UsersStream", self.streams["users"]), None
        self.services.single_attempt = True
        try:
            next(iter(stream.fetch_pages(context)))
        except GongTapError as exc:
            self.logger.error("Connection test failed: GET %s: %s", stream.path, exc)  # noqa: TRY400
            return False
        self.logger.info(
            "Connection test passed: GET %s%s answered with these credentials.",
            stream.url_base,
            stream.path,
        )
        return True

    def finish(self, outcome: str) -> None:
        """End the run: no owner fetched ahead sends another request, and the one-line summary.

        FlowsStream closes itself when its pass ends or fails, but not when the error is raised
        outside it, as when the target closes the tap's output while a record is written.
        """
        flows = t.cast("gong_streams.FlowsStream", self.streams["flows"])
        instances = t.cast("gong_streams.FlowInstancesStream", self.streams["flow_instances"])
        flows.close()
        with contextlib.suppress(GongTapError, OSError):  # bad state, closed stdout
            if outcome == "failed":
                flows.write_last_state()
            wrote = instances.write_whole_state()  # the run's last STATE has the instance sets
            if outcome == "failed" and not wrote and self.state.get("bookmarks"):
                # Once more, even if unchanged (the SDK writes a state only once): a target
                # that keeps only a STATE after the last record (target-jsonl) has it.
                self.write_message(StateMessage(value=self.state))
        if outcome == "complete" and (flows.stopped_at_budget or instances.stopped_at_budget):
            outcome = "stopped at the call budget, the pass goes on in the next run"
        self.logger.info(self.services.progress.summary(outcome))

    @classmethod
    def setting_names(cls) -> list[str]:
        """Every setting the tap reads, singer-sdk's built-in ones included."""
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        return list(schema["properties"])

    @classmethod
    @override
    def cb_config(
        cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]
    ) -> t.Any:  # the SDK's private _ConfigInput
        """`--config`: a file that cannot be read or is not JSON, or a variable singer-sdk
        would misread, is one line each and exit 1, not a traceback."""
        if problems := inputs.config_problems(value, os.environ, cls.setting_names()):
            for problem in problems:
                cls.logger.error(problem)
            ctx.exit(1)
        return super().cb_config(ctx, param, value)

    # The tap the running CLI built: the SDK's invoke creates it and keeps no reference.
    running: t.ClassVar[TapGongFlows | None] = None

    @classmethod
    @override
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:
        """Run the CLI; an error a person can fix ends in one paragraph and exit 1.

        A signal's SyncCancelled goes on to `__main__.main`, which ends every cancelled run,
        wherever the signal came, with the same line.
        """
        for option in ("state", "catalog"):  # one line for a file that is not JSON
            if kwargs.get(option) is not None:
                kwargs[option], problem, remark = inputs.json_option(kwargs[option], option)
                if remark:
                    cls.logger.warning(remark)
                if problem:
                    cls.logger.error(problem)
                    sys.exit(1)
        try:
            cls.running = None
            outcome = "failed"
            try:
                super().invoke(*args, **kwargs)
                outcome = "complete"
            finally:
                if cls.running is not None:  # a sync started
                    cls.running.finish(outcome)
        except BrokenPipeError:
            sys.exit(output_closed(cls.logger))
        except GongTapError as exc:
            cls.logger.error("%s", exc)  # noqa: TRY400 - the message is the whole story
            sys.exit(1)
        except (json.JSONDecodeError, simplejson.JSONDecodeError) as exc:
            cls.logger.error(  # noqa: TRY400
                "The state or catalog file is not valid JSON (%s). Pass the file a previous "
                "run wrote, or none.",
                exc,
            )
            sys.exit(1)
