"""Gong's cursor paging: records.cursor is sent back as the query parameter `cursor`."""

from __future__ import annotations

import requests
from singer_sdk.pagination import BaseAPIPaginator

from tap_gong_flows.errors import CursorCycleError, gong_body


class GongCursorPaginator(BaseAPIPaginator[str | None]):
    """Follows records.cursor until Gong stops sending one.

    The SDK catches a cursor repeated twice in a row; Gong could also cycle through several.
    Every cursor seen for this owner is remembered, so a cycle of any length stops the sync.
    """

    def __init__(self, owner: str | None = None) -> None:
        super().__init__(None)
        self.owner = owner
        self._seen: set[str] = set()

    @property
    def page(self) -> int:
        """The 1-based number of the page about to be requested."""
        return self.count + 1

    def get_next(self, response: requests.Response) -> str | None:
        body = gong_body(response)
        records = body.get("records")
        cursor = records.get("cursor") if isinstance(records, dict) else None
        if not cursor:
            return None
        if cursor in self._seen:
            who = f"owner {self.owner}" if self.owner else "this stream"
            msg = (
                f"Gong sent back a cursor it had already sent for {who} (after page "
                f"{self.count}): its paging is cycling, so the sync stops instead of looping. "
                "Run again later; if it persists, report the requestId "
                f"{body.get('requestId')} to Gong support."
            )
            raise CursorCycleError(msg)
        self._seen.add(cursor)
        return cursor
