"""`python -m tap_gong_flows` and the `tap-gong-flows` command run the tap's CLI."""

from tap_gong_flows.stopping import SIGNALS

# First of all: a signal during the second or two of imports below ends as cleanly as later.
SIGNALS.install()

import logging  # noqa: E402
import sys  # noqa: E402

from tap_gong_flows.stopping import SyncCancelled, output_closed  # noqa: E402

LOG = logging.getLogger("tap-gong-flows")  # the SDK's logger of the tap, by its name


def main() -> None:
    """Run the CLI; whenever a signal comes, the end is exit 0 or 128+signal and one line."""
    code = 1
    try:
        SIGNALS.arm()
        code = _run()
        SIGNALS.settle()
    except SyncCancelled:
        SIGNALS.settle()
    if SIGNALS.cancelled is not None:  # even one a finalizer or a broad `except` swallowed
        LOG.error(
            "Stopped by %s: the run was cancelled. Every owner completed before it was emitted "
            "with its STATE; the next run carries on from the last STATE.",
            SIGNALS.cancelled,
        )
        code = SIGNALS.cancelled.exit_code
    SIGNALS.leave(code)


def _run() -> int:
    """The CLI's exit code; 0 only once every message it wrote is flushed to the target."""
    code = _cli()
    if code:
        return code
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return output_closed(LOG)
    return 0


def _cli() -> int:
    """Run the CLI and give its exit code. An option click itself refuses (a --state file that
    does not exist) is one line, not a usage dump: exit 2, as click says."""
    try:
        import click  # noqa: PLC0415 - after SIGNALS.install

        from tap_gong_flows.tap import TapGongFlows  # noqa: PLC0415

        try:
            return int(TapGongFlows.cli.main(standalone_mode=False) or 0)
        except click.ClickException as exc:
            message = exc.format_message()
            stop = "" if message.endswith((".", "?", "!")) else "."
            LOG.error("%s%s Run with --help for the options.", message, stop)  # noqa: TRY400
            return exc.exit_code
        except click.exceptions.Abort:
            return 1
    except SystemExit as exc:
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
            return 1
        return exc.code or 0


if __name__ == "__main__":
    main()
