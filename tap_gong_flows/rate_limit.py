"""One rate limiter for every request the tap sends, and the HTTP adapter that applies it."""

from __future__ import annotations

import collections
import math
import threading
import time
import typing as t
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import resolve_proxies
from typing_extensions import override

from tap_gong_flows.stopping import StopSwitch

if t.TYPE_CHECKING:
    from collections.abc import Callable

# Gong counts arrivals, we count departures: a little slack keeps jitter between the two from
# pushing a fourth request into Gong's one-second window. On loopback, with one and then two
# CPU hogs per core, that jitter stayed under 16 ms: the tightest window Gong saw was 1.009 s.
WINDOW_SLACK = 0.025


class RateLimiter:
    """At most `rate` requests start in any window of one second, none while a hold lasts.

    A rate below 1 is read as one request every 1/rate seconds. A hold (from a 429's
    Retry-After) stops every request of the tap, not only the one that was refused.
    """

    def __init__(
        self,
        rate: float,
        stop: StopSwitch | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self._stop = stop or StopSwitch()
        self._clock = clock
        # A whole rate starts that many at once each second; any other, one every 1/rate s, so
        # no second ever holds more than the rate rounded up (2.5 a second: never 4).
        self.burst = int(rate) if rate >= 1 and rate == math.floor(rate) else 1
        self.window = self.burst / rate + WINDOW_SLACK
        self._starts: collections.deque[float] = collections.deque(maxlen=self.burst)
        self._lock = threading.Lock()
        self._hold_until = 0.0
        self.waited = 0.0
        self.requests = 0

    def hold(self, seconds: float) -> None:
        """Let no request start for `seconds` from now."""
        self._hold_until = max(self._hold_until, self._clock() + seconds)

    def acquire(self) -> None:
        """Block until a request may start, and count it as started.

        Raises the stop switch's reason instead, at once, if it trips before or while waiting.
        """
        with self._lock:
            while True:
                self._stop.check()
                now = self._clock()
                wait = self._hold_until - now
                if len(self._starts) == self.burst:
                    wait = max(wait, self._starts[0] + self.window - now)
                if wait <= 0:
                    break
                self._stop.sleep(wait)
                self.waited += wait
            self._starts.append(now)
            self.requests += 1


class RateLimitedSession(requests.Session):
    """A requests.Session whose every send, retries included, waits for the limiter first.

    The wait happens before requests starts its clock, so response.elapsed stays Gong's time.
    A `timeout` is a deadline for the whole request, body included: requests alone bounds
    each socket read, so a body that trickles in a byte at a time would never time out.
    """

    def __init__(self, limiter: RateLimiter, pool_size: int) -> None:
        super().__init__()
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}
        self.limiter = limiter
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    @override
    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        if not kwargs.get("proxies"):
            # requests scans the environment for proxies on every send; once per host will do.
            # Kept for issue 12's goal: without it, CPU per record was 1.92x the bare loop.
            url = urlsplit(request.url or "")
            key = (url.scheme, url.netloc)
            if key not in self._proxies:
                self._proxies[key] = resolve_proxies(
                    request, t.cast("dict[str, str]", self.proxies), self.trust_env
                )
            kwargs["proxies"] = self._proxies[key]
        self.limiter.acquire()
        timeout = kwargs.get("timeout")
        if kwargs.get("stream") or not isinstance(timeout, (int, float)):
            return super().send(request, **kwargs)
        deadline = time.monotonic() + timeout
        response = super().send(request, **{**kwargs, "stream": True})
        try:
            response._content = _read_body(response, deadline)
            # requests' own flag that the body is read: it has no public way to take one.
            response._content_consumed = True  # type: ignore[attr-defined]
        except BaseException:
            response.close()
            raise
        return response


CHUNK = 1 << 16


def _read_body(response: requests.Response, deadline: float) -> bytes:
    """The whole body, read before `deadline` (time.monotonic) or a ReadTimeout."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    chunks: list[bytes] = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise requests.exceptions.ReadTimeout(
                    f"the answer took longer than request_timeout to arrive ({response.url})"
                )
            if sock is not None:
                sock.settimeout(left)
            chunk = response.raw.read1(CHUNK, decode_content=True)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
        raise requests.exceptions.ReadTimeout(str(exc)) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise requests.exceptions.ConnectionError(str(exc)) from exc
