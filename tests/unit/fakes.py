"""Stand-ins the unit tests share: a Gong response built in memory and a clock that only
moves when the code under test sleeps."""

from __future__ import annotations

import json
import typing as t

import requests

from tap_gong_flows.stopping import StopSwitch


def response(
    status: int = 200,
    body: object = None,
    *,
    headers: t.Mapping[str, str] | None = None,
    reason: str | None = None,
    method: str = "GET",
    url: str | None = None,
) -> requests.Response:
    """A requests.Response as Gong's answer, with a prepared request when `url` is given."""
    answer = requests.Response()
    answer.status_code = status
    answer.reason = reason  # type: ignore[assignment]
    answer._content = b"" if body is None else json.dumps(body).encode()
    answer.headers.update(headers or {})
    if url is not None:
        answer.request = requests.Request(method, url).prepare()
        answer.url = answer.request.url or ""
    return answer


class FakeClock:
    """Monotonic time that advances only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now


class FakeSleepSwitch(StopSwitch):
    """A StopSwitch whose sleep moves the fake clock instead of waiting, then checks as the
    real one does. `on_sleep` runs after each sleep (e.g. to trip the switch mid-wait)."""

    def __init__(
        self, clock: FakeClock, on_sleep: t.Callable[[FakeSleepSwitch], None] | None = None
    ) -> None:
        super().__init__()
        self.clock = clock
        self.on_sleep = on_sleep

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.clock.now += seconds
            self.clock.sleeps.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(self)
        self.check()
