"""singer-sdk's standard tap tests, run against a loopback Gong stand-in."""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_gong_flows.tap import TapGongFlows
from tests.conftest import start_gong, tap_config
from tests.gong_standin import add_engage, make_world

# The SDK builds its test class at import, with a config: the stand-in must already run.
_GONG = start_gong(add_engage(make_world(owners=3), prospects=9), page_size=4)
atexit.register(_GONG.stop)

_CONFIG = tap_config(_GONG, max_requests_per_second=50, crm_prospect_ids=["crm000001"])
# Every stream selected, as Meltano's default `select: ["*.*"]` does; users and workspaces are
# not selected by default.
_CATALOG = TapGongFlows(config=_CONFIG, setup_mapper=False).catalog_dict
for _entry in _CATALOG["streams"]:
    for _metadata in _entry["metadata"]:
        if _metadata["breadcrumb"] == []:
            _metadata["metadata"]["selected"] = True

TestTapGongFlows = get_tap_test_class(
    tap_class=TapGongFlows,
    config=_CONFIG,
    catalog=_CATALOG,
    suite_config=SuiteConfig(max_records_limit=None),
)
