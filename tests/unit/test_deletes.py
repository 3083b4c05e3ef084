"""deletes.py, rule by rule, in the order of the README's "What can delete rows"."""

from __future__ import annotations

import pytest

from tap_gong_flows import deletes
from tap_gong_flows.state import OwnerPass

STEPS = ["flows", "flow_steps", "flow_definitions"]


def trusted(**fields: object) -> OwnerPass:
    values = {"version": 9, "accepted": 4, "refused": 1, "records": 30, **fields}
    return OwnerPass(**values)  # type: ignore[arg-type]


# 1. emit_activate_version_messages is on (it is off by default)


def test_1_nothing_is_activated_with_the_setting_off() -> None:
    assert deletes.why_not_enabled(False) == "emit_activate_version_messages is off"
    assert deletes.why_not_enabled(True) is None


# 3. the pass can be trusted, judged over all the runs of the pass


def test_3_gong_accepted_at_least_one_owner() -> None:
    assert deletes.why_pass_not_trusted(
        trusted(accepted=0, refused=3, records=0), 0.5, company_only=False
    ) == ("Gong accepted no owner")
    assert deletes.why_pass_not_trusted(
        trusted(accepted=0, refused=0, records=0), 0.5, company_only=False
    ) == ("there was no owner to fetch")


@pytest.mark.parametrize(("refused", "share", "allowed"), [(1, 0.5, True), (3, 0.5, False)])
def test_3_gong_refused_at_most_the_share(refused: int, share: float, allowed: bool) -> None:
    why = deletes.why_pass_not_trusted(
        trusted(accepted=2, refused=refused), share, company_only=False
    )
    assert (why is None) is allowed
    if not allowed:
        assert why == "Gong refused 3 of 5 owners, more than max_refused_owner_share (0.5)"


def test_3_the_share_is_ignored_in_company_only_mode() -> None:
    assert (
        deletes.why_pass_not_trusted(trusted(accepted=1, refused=9), 0.5, company_only=True) is None
    )


def test_3_the_pass_emitted_at_least_one_flow_and_a_whole_list_at_least_one_row() -> None:
    assert deletes.why_pass_not_trusted(trusted(records=0), 0.5, company_only=False) == (
        "Gong accepted 4 owners but listed no flow for any of them"
    )
    assert deletes.why_list_not_complete(0) == "Gong listed none"
    assert deletes.why_list_not_complete(3) is None


# 4. the stream was synced in full by every run of the pass


def test_4_a_new_pass_may_activate_every_stream_this_run_syncs() -> None:
    done = OwnerPass(9)
    assert deletes.streams_a_resumed_pass_lacks(done, STEPS) == []
    assert done.streams == STEPS


def test_4_a_stream_an_earlier_run_of_the_pass_did_not_sync_waits_for_the_next_pass() -> None:
    done = OwnerPass(9, last_owner="b@x.com", streams=["flows"])
    assert deletes.streams_a_resumed_pass_lacks(done, STEPS) == ["flow_steps", "flow_definitions"]
    assert done.streams == ["flows"]
    done = OwnerPass(9, last_owner="b@x.com", streams=STEPS)
    assert deletes.streams_a_resumed_pass_lacks(done, ["flows"]) == []
    assert done.streams == ["flows"]  # not synced in this run: not activated either


def test_4_an_incomplete_answer_holds_back_its_streams_for_the_pass() -> None:
    done = OwnerPass(9, streams=list(STEPS), emitted=list(STEPS))
    deletes.hold_back(done, ["flow_steps"])
    assert [deletes.may_activate(done, name) for name in STEPS] == [True, False, True]


# 5. the stream emitted at least one row in the pass


def test_5_a_stream_that_emitted_no_row_is_not_activated() -> None:
    done = OwnerPass(9, streams=list(STEPS), emitted=["flows"])
    assert deletes.streams_without_rows(done, STEPS) == ["flow_steps", "flow_definitions"]
    assert [deletes.may_activate(done, name) for name in STEPS] == [True, False, False]
