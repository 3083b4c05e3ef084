"""The streams: short classes that say only what differs from GongStream."""

from __future__ import annotations

import typing as t
from functools import cached_property

from tap_gong_flows.client import SCHEMAS_DIR, GongStream
from tap_gong_flows.errors import OwnerRejectedError
from tap_gong_flows.prefetch import OrderedPrefetcher
from tap_gong_flows.state import OwnerPass

if t.TYPE_CHECKING:
    from collections.abc import Iterable


def owner_order(emails: Iterable[str]) -> list[str]:
    """Owners lower-cased, each once, sorted: the deterministic order every run follows."""
    return sorted({e.strip().lower() for e in emails if e and e.strip()})


class FlowsStream(GongStream):
    """GET /v2/flows, one partition per owner: row = flow F as seen by owner O."""

    name = "flows"
    path = "/v2/flows"
    records_key = "flows"
    primary_keys = ("flow_owner_email", "id")
    schema_filepath = SCHEMAS_DIR / "flows.json"
    # One compact bookmark for the whole pass, not one state entry per owner.
    state_partitioning_keys: t.ClassVar[list[str]] = []

    _prefetcher: OrderedPrefetcher | None = None

    def query_params(self, context: t.Mapping[str, t.Any] | None) -> dict[str, t.Any]:
        params = {"flowOwnerEmail": self.context_owner(context)}
        if self.config.get("workspace_id"):
            params["workspaceId"] = self.config["workspace_id"]
        return params

    @cached_property
    def owners(self) -> list[str]:
        return owner_order(self.config.get("flow_owner_emails") or [])

    @cached_property
    def owner_pass(self) -> OwnerPass:
        return OwnerPass.from_bookmark(self.stream_state)

    @cached_property
    def remaining_owners(self) -> list[str]:
        return self.owner_pass.remaining(self.owners)

    @property
    def partitions(self) -> list[dict] | None:
        return [{"flow_owner_email": owner} for owner in self.remaining_owners]

    @property
    def emit_activate_version_messages(self) -> bool:
        # The SDK would send ACTIVATE_VERSION before the first record; a target would then
        # delete every row of a pass that fails half-way. We send it after a complete pass.
        return False

    @property
    def activates_versions(self) -> bool:
        return bool(self.config.get("emit_activate_version_messages", False))

    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterable[dict]:
        if self._prefetcher is None:
            self._prefetcher = self._start_pass()
        if context is None:  # no owner left to fetch: the resumed pass is complete
            self._finish_owner(None)
            return
        owner = context["flow_owner_email"]
        workspace_id = self.config.get("workspace_id") or None
        seen: set[str] = set()
        pages = 0
        try:
            for records in self._prefetcher.pages(owner):
                pages += 1
                for record in records:
                    if record["id"] in seen:  # Gong repeated a flow across pages
                        continue
                    seen.add(record["id"])
                    record["flow_owner_email"] = owner
                    record["workspace_id"] = workspace_id
                    yield record
        except OwnerRejectedError as exc:
            self.logger.warning("Skipping owner %s: %s", owner, exc)
            self.gong_tap.progress.owner_finished(owner, len(seen), pages, skipped=True)
        except BaseException:
            self.close()
            raise
        else:
            self.gong_tap.progress.owner_finished(owner, len(seen), pages, skipped=False)
        self._finish_owner(owner)

    def _start_pass(self) -> OrderedPrefetcher:
        owners = self.remaining_owners
        self.gong_tap.progress.start_pass(len(self.owners), len(self.owners) - len(owners))
        if self.activates_versions:
            self._stream_version = self.owner_pass.version
        return OrderedPrefetcher(
            lambda owner: self.fetch_pages({"flow_owner_email": owner}),
            owners,
            workers=int(self.config.get("max_concurrent_requests", 4)),
        )

    def _finish_owner(self, owner: str | None) -> None:
        """Record the owner as complete and emit STATE; after the last, activate the version."""
        last = owner is None or owner == self.remaining_owners[-1]
        self.owner_pass.last_owner = None if last else owner
        self.stream_state.update(self.owner_pass.bookmark())
        if last:
            self.close()
            if self.activates_versions:
                self._write_activate_version_message(self.owner_pass.version)
        self.state_manager.is_flushed = False
        self._write_state_message()

    def close(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.close()
