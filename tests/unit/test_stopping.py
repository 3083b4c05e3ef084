"""StopSwitch and SyncCancelled: the first reason stays, every wait wakes up and raises it.

ProcessSignals: the first signal stops everything once, later ones do nothing, and once the
run is settled no signal changes its end. Its handler is called directly; the one test that
sends a real signal uses SIGUSR1 and puts its handler back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import typing as t

import pytest

from tap_gong_flows.stopping import ProcessSignals, StopSwitch, SyncCancelled


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


def test_the_first_signal_trips_every_switch_and_raises_once() -> None:
    signals = ProcessSignals()
    first, second = StopSwitch(), StopSwitch()
    signals.attach(first)
    signals.attach(second)
    signals.arm()
    with pytest.raises(SyncCancelled) as raised:
        signals.handle(signal.SIGTERM, None)
    assert raised.value.exit_code == 143
    assert first.reason is raised.value
    assert second.reason is raised.value
    assert signals.cancelled is raised.value


def test_a_second_signal_while_stopping_does_nothing() -> None:
    signals = ProcessSignals()
    switch = StopSwitch()
    signals.attach(switch)
    with pytest.raises(SyncCancelled):
        signals.handle(signal.SIGTERM, None)
    signals.handle(signal.SIGINT, None)
    signals.handle(signal.SIGTERM, None)
    assert signals.cancelled is not None
    assert signals.cancelled.signum == signal.SIGTERM
    assert switch.reason is signals.cancelled


def test_a_signal_before_arming_is_kept_and_raised_by_arm() -> None:
    signals = ProcessSignals()
    signals.handle(signal.SIGINT, None)  # at the module level of __main__: nothing to unwind
    assert signals.cancelled is not None
    with pytest.raises(SyncCancelled) as raised:
        signals.arm()
    assert raised.value.exit_code == 130
    assert raised.value is signals.cancelled


def test_a_switch_attached_after_the_signal_is_tripped_at_once() -> None:
    signals = ProcessSignals()
    signals.handle(signal.SIGTERM, None)
    late = StopSwitch()
    signals.attach(late)
    assert late.reason is signals.cancelled


def test_once_settled_a_signal_does_nothing() -> None:
    signals = ProcessSignals(signums=())
    switch = StopSwitch()
    signals.attach(switch)
    signals.settle()
    signals.handle(signal.SIGTERM, None)
    assert signals.cancelled is None
    assert not switch.tripped


@pytest.fixture
def sigusr1() -> t.Iterator[int]:
    before = signal.getsignal(signal.SIGUSR1)
    yield signal.SIGUSR1
    signal.signal(signal.SIGUSR1, before)


def test_a_real_signal_raises_in_the_main_thread_and_after_settling_does_nothing(
    sigusr1: int,
) -> None:
    signals = ProcessSignals(signums=(sigusr1,))
    switch = StopSwitch()
    signals.attach(switch)
    assert signal.getsignal(sigusr1) == signals.handle

    def signalled_while_waiting() -> None:
        os.kill(os.getpid(), sigusr1)
        switch.sleep(5)  # the handler runs here at the latest, and ends the wait

    with pytest.raises(SyncCancelled) as raised:
        signalled_while_waiting()
    assert raised.value.exit_code == 128 + sigusr1
    signals.settle()
    os.kill(os.getpid(), sigusr1)
    time.sleep(0.01)  # the handler runs, and does nothing
    assert signals.cancelled is raised.value


LEAVE = """
import os, signal, sys
from tap_gong_flows.stopping import ProcessSignals
signals = ProcessSignals()
signals.install()
sys.stdout.write(sys.argv[1] * int(sys.argv[2]))
signals.leave(int(sys.argv[3]))
"""


def leave(*args: str, **options: t.Any) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", LEAVE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **options,
    )


def test_leave_flushes_the_output_and_exits_with_the_code() -> None:
    child = leave("x", "10", "7")
    out, err = child.communicate(timeout=30)
    assert (child.returncode, out, err) == (7, b"x" * 10, b"")


def test_a_signal_while_leave_is_blocked_on_a_full_pipe_ends_it_with_the_code() -> None:
    # The target keeps the pipe open but reads no more: the last flush blocks. SIGTERM then
    # ends the process with the code already decided, not by the signal, and not never.
    child = leave("x", str(4 * 1024 * 1024), "143")
    time.sleep(1.5)  # the pipe (64 KiB) is full long before
    assert child.poll() is None, "the flush should be blocked"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=10) == 143
    child.stdout.close()  # type: ignore[union-attr]
    child.stderr.close()  # type: ignore[union-attr]
