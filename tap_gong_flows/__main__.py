"""`python -m tap_gong_flows` and the `tap-gong-flows` command run the tap's CLI."""

import gc


def main() -> None:
    """Import the tap with the garbage collector paused, then run its CLI.

    Importing singer-sdk creates about 50,000 objects that live as long as the process, and no
    garbage. Collecting while they were created (0.05 s) and sweeping them again at exit (0.1 s
    more than with them frozen) cost 0.15 to 0.2 s of every run, measured with bench/run.py.
    gc.freeze() keeps them out of every later collection; the collector still runs as usual
    for everything the sync creates.
    """
    gc.disable()
    from tap_gong_flows.tap import TapGongFlows  # noqa: PLC0415 - imported with the collector off

    gc.freeze()
    gc.enable()
    TapGongFlows.cli()


if __name__ == "__main__":
    main()
