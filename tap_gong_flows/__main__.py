"""`python -m tap_gong_flows` runs the tap's CLI."""

from tap_gong_flows.tap import TapGongFlows

TapGongFlows.cli()
