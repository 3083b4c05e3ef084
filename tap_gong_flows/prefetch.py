"""Fetch owners ahead, concurrently, and hand their pages back strictly in owner order."""

from __future__ import annotations

import collections
import queue
import threading
import typing as t

from tap_gong_flows.errors import OwnerRejectedError
from tap_gong_flows.stopping import StopSwitch

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

_DONE = object()
POLL = 0.1  # seconds between looks at the stop switch while waiting for a page


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class OrderedPrefetcher:
    """Runs `fetch(owner)` for up to `workers` owners at once, ahead of the consumer.

    The consumer takes owners one by one, in the order given. Each owner buffers at most
    `buffer_pages` pages, so memory stays bounded by workers x buffer_pages pages however many
    owners or pages there are.

    `worth_ahead()` says whether fetching ahead still pays: while it says no, no new owner is
    started in the background, and once those started are consumed the consumer fetches each
    owner itself, with no thread hand-off.

    An error of any owner fetched ahead, other than Gong refusing that owner, trips the stop
    switch, and then no worker sends another request: the consumer still takes the pages and
    owners already complete, and raises the moment it would have to wait for more, even while
    an earlier owner's worker sleeps on a Retry-After. Workers are daemon threads, so a
    process that is stopping never waits for a request in flight.
    """

    def __init__(
        self,
        fetch: Callable[[str], Iterable[list[dict]]],
        owners: Iterable[str],
        workers: int,
        *,
        stop: StopSwitch,
        buffer_pages: int = 2,
        worth_ahead: Callable[[], bool] = lambda: True,
    ) -> None:
        self._fetch = fetch
        self._worth_ahead = worth_ahead
        self._owners = iter(owners)
        self._buffer_pages = buffer_pages
        self._pending: collections.deque[tuple[str, queue.Queue]] = collections.deque()
        self._stop = stop
        self._closed = False
        self._workers = workers
        self._fill()

    def _fill(self) -> None:
        """Start owners in the background until `workers` are ahead, while that pays."""
        while (
            len(self._pending) < self._workers
            and not self._closed
            and not self._stop.tripped
            and self._worth_ahead()
            and (owner := next(self._owners, None)) is not None
        ):
            pages: queue.Queue = queue.Queue(maxsize=self._buffer_pages)
            self._pending.append((owner, pages))
            name = f"gong-owner-{len(self._pending)}"
            threading.Thread(target=self._run, args=(owner, pages), name=name, daemon=True).start()

    def _run(self, owner: str, pages: queue.Queue) -> None:
        try:
            for page in self._fetch(owner):
                if not self._put(pages, page):
                    return
            self._put(pages, _DONE)
        except OwnerRejectedError as exc:  # a skip, not a failure: the run goes on
            self._put(pages, _Failed(exc))
        except BaseException as exc:
            self._stop.trip(exc)
            self._put(pages, _Failed(exc))

    def _put(self, pages: queue.Queue, item: object) -> bool:
        while not self._closed:
            try:
                pages.put(item, timeout=POLL)
            except queue.Full:
                continue
            return True
        return False

    def pages(self, owner: str) -> Iterator[list[dict]]:
        """The pages of the next owner, which must be `owner`; raises what its fetch raised."""
        pages: queue.Queue | None = None  # None: nothing fetched ahead, fetch the owner here
        expected: str | None
        if self._pending:
            expected, pages = self._pending.popleft()
        else:
            expected = next(self._owners, None)
        if expected != owner:
            msg = f"owners taken out of order: expected {expected}, asked for {owner}"
            raise RuntimeError(msg)
        try:
            if pages is None:
                yield from self._fetch(owner)
                return
            while (item := self._next(pages)) is not _DONE:
                if isinstance(item, _Failed):
                    raise item.error
                yield t.cast("list[dict]", item)
        finally:
            self._fill()

    def _next(self, pages: queue.Queue) -> object:
        while True:
            try:
                return pages.get(timeout=POLL)
            except queue.Empty:
                self._stop.check()  # stopping, and this owner's pages are not all here

    def close(self) -> None:
        """Start no more owners; workers still running end at their next page or request."""
        self._closed = True
