"""StopSwitch and SyncCancelled: the first reason stays, every wait wakes up and raises it."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from tap_gong_flows.stopping import StopSwitch, SyncCancelled


class BoomError(Exception):
    pass


def test_an_untripped_switch_does_nothing() -> None:
    switch = StopSwitch()
    assert not switch.tripped
    assert switch.reason is None
    switch.check()
    switch.sleep(0)
    switch.sleep(-1)


def test_trip_then_check_raises_the_reason() -> None:
    switch = StopSwitch()
    reason = BoomError("fatal")
    switch.trip(reason)
    assert switch.tripped
    with pytest.raises(BoomError) as raised:
        switch.check()
    assert raised.value is reason


def test_the_first_reason_stays() -> None:
    switch = StopSwitch()
    first = BoomError("first")
    switch.trip(first)
    switch.trip(BoomError("second"))
    switch.trip(SyncCancelled(signal.SIGTERM))
    assert switch.reason is first
    with pytest.raises(BoomError, match="first"):
        switch.check()


def test_sleep_on_a_tripped_switch_raises_at_once() -> None:
    switch = StopSwitch()
    switch.trip(BoomError("x"))
    started = time.monotonic()
    with pytest.raises(BoomError):
        switch.sleep(60)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("seconds", [0, -5])
def test_sleep_of_nothing_still_checks(seconds: float) -> None:
    switch = StopSwitch()
    switch.trip(BoomError("x"))
    with pytest.raises(BoomError):
        switch.sleep(seconds)


def test_sleep_wakes_when_tripped_from_another_thread() -> None:
    switch = StopSwitch()
    raised: list[BaseException] = []
    asleep = threading.Event()

    def sleeper() -> None:
        asleep.set()
        try:
            switch.sleep(30)
        except BoomError as exc:
            raised.append(exc)

    worker = threading.Thread(target=sleeper)
    started = time.monotonic()
    worker.start()
    assert asleep.wait(2)
    time.sleep(0.02)  # unavoidable: let the worker get into its wait before tripping
    switch.trip(BoomError("from main"))
    worker.join(2)
    assert not worker.is_alive()
    assert time.monotonic() - started < 0.5
    assert [str(e) for e in raised] == ["from main"]


def test_trips_from_many_threads_keep_one_reason() -> None:
    switch = StopSwitch()
    reasons = [BoomError(str(n)) for n in range(16)]
    go = threading.Barrier(len(reasons))

    def trip(reason: BoomError) -> None:
        go.wait()
        switch.trip(reason)

    workers = [threading.Thread(target=trip, args=(r,)) for r in reasons]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(2)
    assert switch.reason in reasons
    assert switch.tripped


@pytest.mark.parametrize(
    ("signum", "code", "name"),
    [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")],
)
def test_sync_cancelled_exit_codes(signum: int, code: int, name: str) -> None:
    cancelled = SyncCancelled(signum)
    assert cancelled.exit_code == code
    assert cancelled.signum == signum
    assert str(cancelled) == name


def test_sync_cancelled_is_not_an_exception() -> None:
    assert issubclass(SyncCancelled, BaseException)
    assert not issubclass(SyncCancelled, Exception)


def test_a_cancelled_switch_raises_sync_cancelled() -> None:
    switch = StopSwitch()
    switch.trip(SyncCancelled(signal.SIGTERM))
    with pytest.raises(SyncCancelled) as raised:
        switch.check()
    assert raised.value.exit_code == 143


def test_a_trip_inside_the_switch_in_the_same_thread_does_not_deadlock() -> None:
    # As when the signal handler runs in the main thread while it is inside trip or sleep.
    switch = StopSwitch()
    done = threading.Event()

    def interrupted_inside() -> None:
        with switch._changed:
            switch.trip(BoomError("from the handler"))
        done.set()

    threading.Thread(target=interrupted_inside, daemon=True).start()
    assert done.wait(2), "deadlocked"
    assert str(switch.reason) == "from the handler"
