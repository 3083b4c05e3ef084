"""Gong's cursor paging: records.cursor is sent back as the query parameter `cursor`."""

from __future__ import annotations

import requests
from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_gong_flows.errors import CursorCycleError, PagingError, gong_body
from tap_gong_flows.ids import is_whole

# Empty pages in a row that each hand out a fresh cursor before the paging counts as broken.
MAX_EMPTY_PAGES = 3


class GongCursorPaginator(BaseAPIPaginator[str | None]):
    """Follows records.cursor until Gong stops sending one, or its records are all there.

    Bounded whatever Gong sends, so a broken cursor costs a handful of calls, never the day's
    quota: every cursor seen for this owner is remembered (the SDK only catches one repeated
    twice in a row), a run of MAX_EMPTY_PAGES empty pages stops the sync, and so do more pages
    than `totalRecords` could fill.
    """

    def __init__(self, records_key: str, owner: str | None = None) -> None:
        super().__init__(None)
        self.records_key = records_key
        self.owner = owner
        self._seen: set[str] = set()
        self.received = 0  # records on the pages so far
        self.total: int | None = None  # the totalRecords Gong said last
        self._empty_in_a_row = 0

    def _stop(self, error: type[PagingError | CursorCycleError], what: str, body: dict) -> None:
        who = f"owner {self.owner}" if self.owner else "this stream"
        broken = "cycling" if error is CursorCycleError else "broken"
        raise error(
            f"Gong {what} for {who} (after page {self.count}): its paging is {broken}, so the "
            "sync stops instead of spending the API quota on it. Run again later; if it "
            f"persists, report the requestId {body.get('requestId')} to Gong support."
        )

    @override
    def get_next(self, response: requests.Response) -> str | None:
        body = gong_body(response)
        records = body.get("records")
        records = records if isinstance(records, dict) else {}
        cursor = records.get("cursor")
        page_size = len(body.get(self.records_key) or [])
        self.received += page_size
        self._empty_in_a_row = 0 if page_size else self._empty_in_a_row + 1
        total = records.get("totalRecords")
        total = self.total = total if is_whole(total) else None
        if not cursor:
            return None
        if not isinstance(cursor, str):
            self._stop(PagingError, f"sent a cursor that is not a string ({cursor!r})", body)
        if total is not None and self.received >= total:
            return None  # every record Gong counted is here; a further cursor leads nowhere
        if cursor in self._seen:
            self._stop(CursorCycleError, "sent back a cursor it had already sent", body)
        if self._empty_in_a_row >= MAX_EMPTY_PAGES:
            self._stop(PagingError, f"sent {self._empty_in_a_row} empty pages in a row", body)
        if total is not None and self.count > max(total, 1):
            self._stop(PagingError, f"sent more pages than its {total} records fill", body)
        self._seen.add(cursor)
        return cursor
