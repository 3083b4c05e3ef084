"""What every stream of one run shares, in one typed object the tap hands to each stream."""

from __future__ import annotations

import typing as t
from functools import cached_property

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    import requests

    from tap_gong_flows.budget import CallBudget
    from tap_gong_flows.instance_state import InstanceBookmark
    from tap_gong_flows.progress import RunProgress
    from tap_gong_flows.rate_limit import RateLimiter
    from tap_gong_flows.stopping import StopSwitch


class RunServices:
    """The stop switch, the one rate limiter and session, the call budget and the progress of
    one run. The budget is read from the state, which the SDK loads after the streams exist,
    so it is made when first used."""

    def __init__(
        self,
        *,
        stop: StopSwitch,
        limiter: RateLimiter,
        session: requests.Session,
        progress: RunProgress,
        make_budget: Callable[[], CallBudget],
        logger: logging.Logger,
        started_ms: int,
        crm_ids: list[str] | None = None,
    ) -> None:
        self.stop = stop
        self.limiter = limiter
        self.session = session
        self.progress = progress
        self.logger = logger
        self.started_ms = started_ms  # when the run started: the version of whole lists
        self.crm_ids = (
            crm_ids or []
        )  # the configured CRM ids, sorted, read once when the tap starts
        self.single_attempt = False  # --test: one request, no retries
        # The flow_instances bookmark as the state gave it, sets included (the tap keeps the
        # sets out of the SDK's state, which every STATE message would repeat): see streams.py.
        self.instances_found: InstanceBookmark | None = None
        self._make_budget = make_budget

    @cached_property
    def budget(self) -> CallBudget:
        return self._make_budget()

    @cached_property
    def day_spent_at_start(self) -> bool:
        """True when earlier runs of today spent the daily budget: this run sends no request."""
        spent = self.budget.spent_before_run
        if spent:
            self.logger.info(self.budget.spent_at_start_line())
        return spent
