"""Stopping a sync at once: on a fatal error, a signal, or a target that went away.

One switch per run. Whatever trips it first is the reason the run ends; every wait of the tap
(the rate limiter, a Retry-After hold, a worker handing pages over) wakes up and raises that
reason, and no request is sent after it.
"""

from __future__ import annotations

import signal
import threading


class SyncCancelled(BaseException):
    """SIGTERM or SIGINT: a person, Meltano or an orchestrator cancelled the run.

    A BaseException, like KeyboardInterrupt, so no `except Exception` on the way swallows it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(signal.Signals(signum).name)


class StopSwitch:
    """Tripped once; every later `check` or `sleep`, in any thread, raises its reason."""

    def __init__(self) -> None:
        # Reentrant: the signal handler trips the switch in the main thread, which may be
        # inside `trip` or `sleep` at that moment; a plain lock (as threading.Event has)
        # would deadlock it there.
        self._changed = threading.Condition(threading.RLock())
        self.reason: BaseException | None = None

    @property
    def tripped(self) -> bool:
        return self.reason is not None

    def trip(self, reason: BaseException) -> None:
        """Stop the run for `reason`; the first reason given stays."""
        with self._changed:
            if self.reason is None:
                self.reason = reason
                self._changed.notify_all()

    def check(self) -> None:
        if self.reason is not None:
            raise self.reason

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less if the switch trips meanwhile, and then raise its reason."""
        if seconds > 0:
            with self._changed:
                self._changed.wait_for(lambda: self.reason is not None, seconds)
        self.check()

    def on_signals(self, *signums: int) -> None:
        """Trip on these signals and raise in the main thread, wherever it is waiting."""

        def handler(signum: int, frame: object) -> None:  # noqa: ARG001
            cancelled = SyncCancelled(signum)
            self.trip(cancelled)
            raise cancelled

        for signum in signums:
            signal.signal(signum, handler)
