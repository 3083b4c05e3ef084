"""One rate limiter for every request the tap sends, and the HTTP adapter that applies it."""

from __future__ import annotations

import collections
import math
import threading
import time
import typing as t
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import resolve_proxies

# Gong counts arrivals, we count departures: a little slack keeps jitter between the two from
# pushing a fourth request into Gong's one-second window. On loopback, with one and then two
# CPU hogs per core, that jitter stayed under 16 ms: the tightest window Gong saw was 1.009 s.
WINDOW_SLACK = 0.025


class RateLimiter:
    """At most `rate` requests start in any window of one second, none while a hold lasts.

    A rate below 1 is read as one request every 1/rate seconds. A hold (from a 429's
    Retry-After) stops every request of the tap, not only the one that was refused.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1, math.floor(rate))
        self.window = self.burst / rate + WINDOW_SLACK
        self._starts: collections.deque[float] = collections.deque(maxlen=self.burst)
        self._lock = threading.Lock()
        self._hold_until = 0.0
        self.waited = 0.0
        self.requests = 0

    def hold(self, seconds: float) -> None:
        """Let no request start for `seconds` from now."""
        self._hold_until = max(self._hold_until, time.monotonic() + seconds)

    def acquire(self) -> None:
        """Block until a request may start, and count it as started."""
        with self._lock:
            while True:
                now = time.monotonic()
                wait = self._hold_until - now
                if len(self._starts) == self.burst:
                    wait = max(wait, self._starts[0] + self.window - now)
                if wait <= 0:
                    break
                time.sleep(wait)
                self.waited += wait
            self._starts.append(now)
            self.requests += 1


class RateLimitedSession(requests.Session):
    """A requests.Session whose every send, retries included, waits for the limiter first.

    The wait happens before requests starts its clock, so response.elapsed stays Gong's time.
    """

    def __init__(self, limiter: RateLimiter, pool_size: int) -> None:
        super().__init__()
        self.limiter = limiter
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        if not kwargs.get("proxies"):
            # requests scans the environment for proxies on every send; once per host will do.
            url = urlsplit(request.url or "")
            key = (url.scheme, url.netloc)
            if key not in self._proxies:
                self._proxies[key] = resolve_proxies(request, self.proxies, self.trust_env)
            kwargs["proxies"] = self._proxies[key]
        self.limiter.acquire()
        return super().send(request, **kwargs)
