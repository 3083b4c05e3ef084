"""GongCursorPaginator, advanced as the SDK advances it, over fake Gong pages."""

from __future__ import annotations

import typing as t

import pytest

from tap_gong_flows.errors import CursorCycleError, GongTapError, PagingError
from tap_gong_flows.pagination import MAX_EMPTY_PAGES, GongCursorPaginator
from tests.unit.fakes import response

OWNER = "owner@example.com"


def page(
    records: int, cursor: object = None, total: object = None, request_id: str = "rq"
) -> dict[str, t.Any]:
    """A Gong page: `records` flows and the records block with its cursor and total."""
    block: dict[str, t.Any] = {}
    if cursor is not None:
        block["cursor"] = cursor
    if total is not None:
        block["totalRecords"] = total
    return {
        "requestId": request_id,
        "records": block,
        "flows": [{"id": str(n)} for n in range(records)],
    }


def walk(paginator: GongCursorPaginator, pages: list[dict]) -> list[str | None]:
    """Feed the pages in turn as the SDK does; the token the SDK would send before each."""
    tokens = []
    for body in pages:
        assert not paginator.finished, "the paginator finished before every page was read"
        tokens.append(paginator.current_value)
        paginator.advance(response(200, body))
    return tokens


def paginator() -> GongCursorPaginator:
    return GongCursorPaginator("flows", owner=OWNER)


def test_starts_without_a_cursor_on_page_one() -> None:
    pager = paginator()
    assert pager.current_value is None
    assert pager.count == 0
    assert not pager.finished


def test_one_page_without_cursor_finishes() -> None:
    pager = paginator()
    walk(pager, [page(5, total=5)])
    assert pager.finished
    assert pager.count == 1


def test_follows_cursors_until_none() -> None:
    pager = paginator()
    tokens = walk(pager, [page(2, "c1"), page(2, "c2"), page(1)])
    assert tokens == [None, "c1", "c2"]
    assert pager.finished
    assert pager.count == 3
    assert pager.count == 3


@pytest.mark.parametrize("cursor", ["", None, {}, [], 0])
def test_a_falsy_cursor_finishes(cursor: object) -> None:
    pager = paginator()
    body = page(3)
    body["records"]["cursor"] = cursor
    walk(pager, [body])
    assert pager.finished


@pytest.mark.parametrize("records", [None, [], "x", 5])
def test_a_records_block_that_is_not_an_object_finishes(records: object) -> None:
    pager = paginator()
    walk(pager, [{"flows": [{"id": "1"}], "records": records}])
    assert pager.finished


@pytest.mark.parametrize("content", [b"", b"not json", b"[]"])
def test_a_body_that_is_not_an_object_finishes(content: bytes) -> None:
    pager = paginator()
    answer = response(200)
    answer._content = content
    pager.advance(answer)
    assert pager.finished


def test_stops_at_total_records_even_with_a_cursor() -> None:
    pager = paginator()
    walk(pager, [page(2, "c1", total=4), page(2, "c2", total=4)])
    assert pager.finished
    assert pager.count == 2


def test_stops_past_total_records() -> None:
    pager = paginator()
    walk(pager, [page(3, "c1", total=2)])
    assert pager.finished


def test_total_zero_with_a_cursor_finishes() -> None:
    pager = paginator()
    walk(pager, [page(0, "c1", total=0)])
    assert pager.finished


@pytest.mark.parametrize(
    "total",
    [
        "4",
        4.0,
        None,
        True,
    ],
)
def test_a_total_that_is_not_an_integer_is_not_trusted(total: object) -> None:
    pager = paginator()
    walk(pager, [page(2, "c1", total=total), page(2, "c2", total=total)])
    assert not pager.finished
    assert pager.current_value == "c2"


def test_the_same_cursor_twice_in_a_row_is_a_cycle_not_the_sdks_runtime_error() -> None:
    pager = paginator()
    walk(pager, [page(1, "c1")])
    with pytest.raises(CursorCycleError, match="cycling"):
        pager.advance(response(200, page(1, "c1")))


@pytest.mark.parametrize("cycle", [["a", "b"], ["a", "b", "c"]])
def test_a_repeated_cursor_is_a_cycle(cycle: list[str]) -> None:
    pager = paginator()
    walk(pager, [page(1, cursor, total=100) for cursor in cycle])
    with pytest.raises(CursorCycleError) as raised:
        pager.advance(response(200, page(1, cycle[0], total=100, request_id="req-77")))
    text = str(raised.value)
    assert "cycling" in text
    assert f"owner {OWNER}" in text
    assert f"after page {len(cycle) + 1}" in text
    assert "req-77" in text
    assert isinstance(raised.value, GongTapError)


def test_a_cycle_without_an_owner_names_the_stream() -> None:
    pager = GongCursorPaginator("users")
    pager.advance(response(200, {"users": [{}], "records": {"cursor": "u1"}}))
    with pytest.raises(CursorCycleError, match="for this stream"):
        pager.advance(response(200, {"users": [{}], "records": {"cursor": "u1"}}))


def test_empty_pages_with_fresh_cursors_stop() -> None:
    pager = paginator()
    walk(pager, [page(0, f"e{n}") for n in range(1, MAX_EMPTY_PAGES)])
    with pytest.raises(PagingError) as raised:
        pager.advance(response(200, page(0, f"e{MAX_EMPTY_PAGES}")))
    text = str(raised.value)
    assert f"sent {MAX_EMPTY_PAGES} empty pages in a row" in text
    assert "broken" in text
    assert OWNER in text


def test_three_is_the_limit() -> None:
    assert MAX_EMPTY_PAGES == 3


def test_empty_pages_between_full_ones_do_not_count_as_a_run() -> None:
    pager = paginator()
    pages = [page(0, "e1"), page(0, "e2"), page(1, "f1"), page(0, "e3"), page(0, "e4"), page(1)]
    walk(pager, pages)
    assert pager.finished


def test_more_pages_than_total_records_can_fill() -> None:
    pager = paginator()
    # Records trickle in between empty pages, so neither the total nor the empty run stops it.
    walk(pager, [page(1, "p1", total=3), page(0, "p2", total=3), page(0, "p3", total=3)])
    with pytest.raises(PagingError) as raised:
        pager.advance(response(200, page(1, "p4", total=3)))
    assert "sent more pages than its 3 records fill" in str(raised.value)
    assert OWNER in str(raised.value)


def test_more_pages_than_one_record_fills() -> None:
    pager = paginator()
    walk(pager, [page(0, "p1", total=1)])
    with pytest.raises(PagingError, match="more pages than its 1 records"):
        pager.advance(response(200, page(0, "p2", total=1)))


@pytest.mark.parametrize("cursor", [{"next": "abc"}, ["abc"], 12345, 1.5, True])
def test_a_cursor_that_is_not_a_string(cursor: object) -> None:
    pager = paginator()
    with pytest.raises(PagingError) as raised:
        pager.advance(response(200, page(1, cursor, total=10)))
    text = str(raised.value)
    assert "not a string" in text
    assert repr(cursor) in text
    assert not isinstance(raised.value, CursorCycleError)


def test_the_cursor_is_checked_before_the_total() -> None:
    # Even on the last page, an object for a cursor says the paging is not what Gong documents.
    pager = paginator()
    with pytest.raises(PagingError):
        pager.advance(response(200, page(1, {"x": 1}, total=1)))


def test_pages_with_many_cursors_are_fine() -> None:
    pager = paginator()
    pages = [page(10, f"c{n}", total=1000) for n in range(99)] + [page(10, "c99", total=1000)]
    walk(pager, pages)
    assert pager.finished
    assert pager.count == 100


def test_each_owner_gets_its_own_paginator_memory() -> None:
    first, second = paginator(), GongCursorPaginator("flows", owner="other@example.com")
    walk(first, [page(1, "shared")])
    walk(second, [page(1, "shared")])
    assert second.current_value == "shared"
