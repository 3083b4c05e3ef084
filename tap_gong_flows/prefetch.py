"""Fetch owners ahead, concurrently, and hand their pages back strictly in owner order."""

from __future__ import annotations

import collections
import queue
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

_DONE = object()


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
    """

    def __init__(
        self,
        fetch: Callable[[str], Iterable[list[dict]]],
        owners: Iterable[str],
        workers: int,
        buffer_pages: int = 2,
        worth_ahead: Callable[[], bool] = lambda: True,
    ) -> None:
        self._fetch = fetch
        self._worth_ahead = worth_ahead
        self._owners = iter(owners)
        self._buffer_pages = buffer_pages
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gong-owner")
        self._pending: collections.deque[tuple[str, queue.Queue]] = collections.deque()
        self._stop = threading.Event()
        self._workers = workers
        self._fill()

    def _fill(self) -> None:
        """Start owners in the background until `workers` are ahead, while that pays."""
        while (
            len(self._pending) < self._workers
            and not self._stop.is_set()
            and self._worth_ahead()
            and (owner := next(self._owners, None)) is not None
        ):
            pages: queue.Queue = queue.Queue(maxsize=self._buffer_pages)
            self._pending.append((owner, pages))
            self._pool.submit(self._run, owner, pages)

    def _run(self, owner: str, pages: queue.Queue) -> None:
        try:
            for page in self._fetch(owner):
                if not self._put(pages, page):
                    return
            self._put(pages, _DONE)
        except BaseException as exc:
            self._put(pages, _Failed(exc))

    def _put(self, pages: queue.Queue, item: object) -> bool:
        while not self._stop.is_set():
            try:
                pages.put(item, timeout=0.2)
            except queue.Full:
                continue
            return True
        return False

    def pages(self, owner: str) -> Iterator[list[dict]]:
        """The pages of the next owner, which must be `owner`; raises what its fetch raised."""
        pages: queue.Queue | None = None  # None: nothing fetched ahead, fetch the owner here
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
            while (item := pages.get()) is not _DONE:
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            self._fill()

    def close(self) -> None:
        """Stop fetching ahead and wait for requests in flight to end."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
