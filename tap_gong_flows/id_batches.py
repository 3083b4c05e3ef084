"""How many ids one `POST /v2/flows/prospects` call takes: Gong documents no limit.

The run starts at 100 ids a call (Gong's limit for assigning prospects). A 400 to a batch of
several ids splits it in halves and asks both. If both succeed, or both fail again (then each is
halved again), the size was the cause: the size that worked is kept for the rest of the run,
logged once. If exactly one half fails, an id in it is the cause: the search goes on inside
that half, the size untouched, down to the single id, which is skipped with a WARNING. The
wording of Gong's 400 is never read. A single id refused before Gong answered any call of the
pass (of this run, of either kind, or of an earlier run of the pass) means the request itself is
refused, not an id: the run fails with Gong's answer (after about 2·log2(size) calls) instead of
asking one id a call.
"""

from __future__ import annotations

import logging
import typing as t

from tap_gong_flows.errors import GongFatalError, GongTapError

if t.TYPE_CHECKING:
    from collections.abc import Callable

FIRST_SIZE = 100


class BatchRefusedError(GongFatalError):
    """Gong answered a batch of ids with 400: too many ids, or one it will not take."""


class IdBatches:
    """The calls for one kind of id (`what`: "crmProspectsIds" or "flowInstanceIds").

    `post(ids)` is one call (retried like every call) that raises BatchRefusedError for a 400.
    """

    def __init__(
        self,
        what: str,
        post: Callable[[list[str]], list[dict]],
        logger: logging.Logger,
        size: int = FIRST_SIZE,
    ) -> None:
        self.what, self._post, self._logger = what, post, logger
        self.size = size
        self.skipped: list[str] = []  # ids Gong refused one by one, this run
        self.calls = 0
        self.answered = 0  # calls of this run that Gong answered
        # Whether Gong answered calls of this pass elsewhere (an earlier run, the other kind)
        self.vouched: Callable[[], bool] = lambda: False

    def ask(self, ids: list[str]) -> list[dict]:
        """Gong's records for `ids` (at most `size` of them), skipping ids it refuses."""
        try:
            return self._call(ids)
        except BatchRefusedError as refusal:
            return self._refused(ids, refusal, shrink=True)

    def _call(self, ids: list[str]) -> list[dict]:
        self.calls += 1
        records = self._post(ids)
        self.answered += 1
        return records

    def _try(self, ids: list[str]) -> tuple[list[dict] | None, BatchRefusedError | None]:
        try:
            return self._call(ids), None
        except BatchRefusedError as refusal:
            return None, refusal

    def _refused(self, ids: list[str], refusal: BatchRefusedError, *, shrink: bool) -> list[dict]:
        """The records of `ids`, whose own call Gong refused."""
        if len(ids) == 1:
            if not self.answered and not self.vouched():
                raise GongTapError(
                    f"Gong refused every call for {self.what} of this run, down to a single "
                    f"id: the request itself is refused, not an id. {refusal}"
                ) from refusal
            self.skipped.append(ids[0])
            self._logger.warning(
                "Skipping %s %s: Gong refuses a call that names it (%s).",
                self.what,
                ids[0],
                refusal,
            )
            return []
        half = -(-len(ids) // 2)
        left, right = ids[:half], ids[half:]
        (got_left, no_left), (got_right, no_right) = self._try(left), self._try(right)
        if no_left is None and no_right is None:  # both halves fit: the size was too large
            if shrink:
                self._shrink(len(left))
            return [*t.cast("list[dict]", got_left), *t.cast("list[dict]", got_right)]
        if no_left is not None and no_right is not None:  # both fail: halve again
            return [
                *self._refused(left, no_left, shrink=shrink),
                *self._refused(right, no_right, shrink=shrink),
            ]
        # Exactly one half fails: an id in it, not the size.
        if no_left is not None:
            return [*self._refused(left, no_left, shrink=False), *t.cast("list[dict]", got_right)]
        return [
            *t.cast("list[dict]", got_left),
            *self._refused(right, t.cast("BatchRefusedError", no_right), shrink=False),
        ]

    def _shrink(self, size: int) -> None:
        if size < self.size:
            self.size = size
            self._logger.info(
                "Gong refused %s calls of more ids and took %d: the rest of this run asks %d "
                "ids a call.",
                self.what,
                size,
                size,
            )
