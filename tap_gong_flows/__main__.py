"""`python -m tap_gong_flows` and the `tap-gong-flows` command run the tap's CLI."""

from tap_gong_flows.tap import TapGongFlows


def main() -> None:
    TapGongFlows.cli()


if __name__ == "__main__":
    main()
