"""Stopping a sync at once: on a fatal error, a signal, or a target that went away.

One switch per run. Whatever trips it first is the reason the run ends; every wait of the tap
(the rate limiter, a Retry-After hold, a worker handing pages over) wakes up and raises that
reason, and no request is sent after it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import typing as t

if t.TYPE_CHECKING:
    import logging


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


class ProcessSignals:
    """The process's one handler of SIGTERM and SIGINT, from the tap's import to its exit.

    The first signal trips every switch attached, so every wait of every thread ends, and
    raises SyncCancelled in the main thread once armed; a signal before that is kept, and
    `arm` raises it. A later signal does nothing: the run is already stopping. Once the run
    is settled (its exit code decided, its output flushed) signals are ignored outright,
    because CPython puts the default action back at finalization and SIGTERM's kills.
    """

    def __init__(self, signums: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.signums = signums
        self.cancelled: SyncCancelled | None = None
        self.settled = False
        self._armed = False
        self._switches: list[StopSwitch] = []

    def install(self) -> None:
        """Take these signals over (again: the SDK installs handlers that exit 0)."""
        if threading.current_thread() is threading.main_thread():
            for signum in self.signums:
                signal.signal(signum, self.handle)

    def arm(self) -> None:
        """From now on a signal raises in the main thread; one that came already raises here."""
        self._armed = True
        if self.cancelled is not None:
            raise self.cancelled

    def attach(self, switch: StopSwitch) -> None:
        """Trip `switch` on the signal, and take the signals over from whoever had them."""
        self._switches.append(switch)
        if self.cancelled is not None:
            switch.trip(self.cancelled)
        self.install()
        self._armed = True  # a tap built without `main` (a test, a script) is interrupted too

    def handle(self, signum: int, frame: object) -> None:  # noqa: ARG002
        if self.settled or self.cancelled is not None:
            return
        self.cancelled = SyncCancelled(signum)
        for switch in self._switches:
            switch.trip(self.cancelled)
        if self._armed:
            raise self.cancelled

    def settle(self) -> None:
        """The exit code is decided: no signal changes it any more."""
        self.settled = True

    def leave(self, code: int) -> t.NoReturn:
        """End the process with `code` once what is left of its output is flushed.

        A signal during that flush (a target that keeps the pipe open but reads no more) ends
        the process at once with the same code. Once all is flushed, signals are ignored:
        Python's finalization puts their default action back, where SIGTERM would kill the
        process and change its exit code.
        """
        self.settled = True
        main = threading.current_thread() is threading.main_thread()
        if main:
            for signum in self.signums:
                signal.signal(signum, lambda _signum, _frame: os._exit(code))
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # closed, or the target went away
                stream.flush()
        if main:
            for signum in self.signums:
                signal.signal(signum, signal.SIG_IGN)
        sys.exit(code)


# The one instance: `__main__` installs it before the heavy imports, the tap attaches its switch.
SIGNALS = ProcessSignals()


def output_closed(logger: logging.Logger) -> int:
    """The target closed the tap's output: say so in one line; the exit code, 1."""
    # Python's own flush of stdout at exit would fail again and print a traceback.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    logger.error(
        "Stopped: the target closed the tap's output. The last STATE it read lets the next run "
        "carry on."
    )
    return 1
