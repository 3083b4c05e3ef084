"""The tap's settings, typed once from every source: a JSON file, `--config ENV`, Meltano.

`--config ENV` and some Meltano versions hand numbers over as strings; a JSON file may say
`null` for "the default". Each setting is read here, once, into the type the code uses, with a
message a person can act on when it cannot be.
"""

from __future__ import annotations

import dataclasses
import decimal
import math
import re
import typing as t
from urllib.parse import urlsplit

DEFAULT_API_URL = "https://api.gong.io"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Gong's default is 3 calls a second per company; support raises it by a few. A thousand is
# beyond any Gong limit and keeps the limiter's arithmetic sane (1e300 did not).
MAX_RATE = 1000.0
MAX_WORKERS = 32
MAX_TIMEOUT = 3600.0  # an hour for one request is already a hang
MAX_RETRIES = 100
MAX_RETRY_WAIT = 86400.0  # a day: Gong's daily quota renews within one
MAX_BUDGET = 10**9  # calls; Gong's default quota is 10,000 a day


@dataclasses.dataclass(frozen=True)
class Number:
    """A numeric setting: its default and the closed range it must fall in."""

    default: float | None  # None: unset means no limit
    low: float
    high: float
    integer: bool = False
    low_open: bool = False  # True: the value must be above `low`, not equal to it

    def problem(self, name: str, value: object) -> str:
        if self.low_open and self.low == 0:
            return f"{name} must be a positive number, got {value!r} (at most {self.high:g})."
        kind = "a whole number" if self.integer else "a number"
        return f"{name} must be {kind} from {self.low:g} to {self.high:g}, got {value!r}."


NUMBERS: dict[str, Number] = {
    "max_requests_per_second": Number(3, 0, MAX_RATE, low_open=True),
    "max_concurrent_requests": Number(4, 1, MAX_WORKERS, integer=True),
    "request_timeout": Number(60, 0, MAX_TIMEOUT, low_open=True),
    "max_retries": Number(5, 0, MAX_RETRIES, integer=True),
    "max_retry_wait_seconds": Number(600, 0, MAX_RETRY_WAIT),
    "max_refused_owner_share": Number(0.5, 0, 1),
    "max_requests_per_run": Number(None, 1, MAX_BUDGET, integer=True),
    "max_requests_per_day": Number(None, 1, MAX_BUDGET, integer=True),
}
BOOLEANS: dict[str, bool] = {
    "include_inactive_users": False,
    "company_flows_only": False,
    "emit_activate_version_messages": False,
}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def _number(name: str, value: object, spec: Number) -> tuple[float | int | None, str | None]:  # noqa: PLR0911
    """The setting as a number of its kind, or its default and the reason it is not one."""
    if value is None:
        return spec.default, None
    problem = spec.problem(name, value)
    if isinstance(value, bool):
        return spec.default, problem
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return spec.default, problem
    if isinstance(value, decimal.Decimal):  # the SDK reads JSON numbers with a fraction so
        value = float(value)
    if not isinstance(value, (int, float)):
        return spec.default, problem
    try:
        if not math.isfinite(value):
            return spec.default, problem
    except OverflowError:  # an integer of hundreds of digits
        return spec.default, problem
    if spec.integer:
        if value != int(value):
            return spec.default, problem
        value = int(value)
    too_low = value <= spec.low if spec.low_open else value < spec.low
    if too_low or value > spec.high:
        return spec.default, problem
    return value, None


def _boolean(name: str, value: object, default: bool) -> tuple[bool, str | None]:
    if value is None:
        return default, None
    if isinstance(value, bool):
        return value, None
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE, None
    return default, f"{name} must be true or false, got {value!r}."


def api_url_problem(url: str) -> str | None:
    """Why `url` is not a bare Gong base URL such as https://api.gong.io, or None."""
    expected = (
        "api_url must be an http(s) URL with a host and no path, the base URL of Gong's API "
        "such as https://api.gong.io or https://company-17.api.gong.io (the tap adds /v2/...)"
    )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return f"{expected}; got {url!r}."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{expected}; got {url!r}."
    if parts.path not in ("", "/"):
        return f"{expected}; got {url!r}, which has the path {parts.path!r}."
    if parts.query or parts.fragment:
        return f"{expected}; got {url!r}, which has a query or fragment."
    return None


def typed_config(config: t.Mapping[str, t.Any]) -> tuple[dict[str, t.Any], list[str]]:
    """The config with every number and boolean setting in its type (a default for null), and
    every problem found, each a sentence a person can act on."""
    typed = dict(config)
    errors: list[str] = []
    for name, spec in NUMBERS.items():
        typed[name], problem = _number(name, config.get(name), spec)
        if problem:
            errors.append(problem)
    for name, default in BOOLEANS.items():
        typed[name], problem = _boolean(name, config.get(name), default)
        if problem:
            errors.append(problem)
    url = config.get("api_url")
    if url is not None and not isinstance(url, str):
        errors.append(f"api_url must be a URL such as https://api.gong.io, got {url!r}.")
    base = url.strip() if isinstance(url, str) and url.strip() else DEFAULT_API_URL
    problem = api_url_problem(base)
    if problem:
        errors.append(problem)
    typed["api_url"] = base.rstrip("/")
    errors.extend(_auth_problems(config))
    errors.extend(_owner_problems(config.get("flow_owner_emails")))
    return typed, errors


def _auth_problems(config: t.Mapping[str, t.Any]) -> list[str]:
    has_pair = bool(config.get("access_key")) or bool(config.get("access_key_secret"))
    if has_pair and config.get("access_token"):
        return [
            "Configure one auth method, not both: access_key with access_key_secret, or "
            "access_token."
        ]
    if has_pair and not (config.get("access_key") and config.get("access_key_secret")):
        return ["access_key and access_key_secret go together; one of them is missing."]
    if not has_pair and not config.get("access_token"):
        return [
            "No credentials: set access_key and access_key_secret (Basic auth) or "
            "access_token (OAuth)."
        ]
    return []


def _owner_problems(emails: object) -> list[str]:
    if emails is None:
        return []
    if not isinstance(emails, list):
        return [f"flow_owner_emails must be a list of emails, got {emails!r}."]
    errors = []
    if not emails:
        errors.append(
            "flow_owner_emails is empty: list at least one Gong user's email, or leave "
            "it unset to fetch the flows of the users Gong lists."
        )
    bad = [e for e in emails if not isinstance(e, str) or not EMAIL.match(e.strip())]
    if bad:
        errors.append(f"flow_owner_emails has entries that are not emails: {bad!r}.")
    return errors
