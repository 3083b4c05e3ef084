"""The tap's settings, declared once, and typed once from every source: a JSON file, `--config
ENV`, Meltano.

`SETTINGS` is the one table: it builds the config schema that `--about` shows (with each number's
bounds), the checks of `typed_config` and the words of each description. meltano.yml and the Hub
definition repeat it for Meltano; tests/test_hub_definition.py keeps them equal to it.

`--config ENV` and Meltano (for a `kind: string` setting) hand numbers over as strings; a JSON
file may say `null` for "the default". Each setting is read here, once, into the type the code
uses, with a message a person can act on when it cannot be.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import math
import re
import typing as t
from urllib.parse import urlsplit

from singer_sdk import typing as th
from typing_extensions import override

DEFAULT_API_URL = "https://api.gong.io"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Gong's default is 3 calls a second per company; support raises it by a few. A thousand is
# beyond any Gong limit and keeps the limiter's arithmetic sane (1e300 did not).
MAX_RATE = 1000
MAX_WORKERS = 32
MAX_TIMEOUT = 3600  # an hour for one request is already a hang
MAX_RETRIES = 100
MAX_RETRY_WAIT = 86400  # a day: Gong's daily quota renews within one
MAX_BUDGET = 10**9  # calls; Gong's default quota is 10,000 a day

JsonType = t.Literal["string", "boolean", "array", "integer", "number"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Setting:
    """One setting of the tap: its name, JSON type, title, words, default and secrecy."""

    name: str
    json_type: JsonType
    title: str
    prose: str  # the description, less the bounds that a Number adds
    default: str | bool | float | None = None
    secret: bool = False

    @property
    def description(self) -> str:
        """What `--about`, meltano.yml and the Hub definition say of the setting."""
        return self.prose

    def schema_type(self) -> th.JSONTypeHelper[t.Any]:
        types: dict[str, th.JSONTypeHelper[t.Any]] = {
            "string": th.StringType(),
            "boolean": th.BooleanType(),
            "array": th.ArrayType(th.StringType),
        }
        return types[self.json_type]

    def schema_property(self) -> th.Property[t.Any]:
        """The setting as a property of the config schema."""
        return th.Property(
            self.name,
            self.schema_type(),
            default=self.default,
            description=self.description,
            secret=self.secret,
            title=self.title,
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Number(Setting):
    """A numeric setting: its default and the range it must fall in."""

    default: float | None = None  # None: unset means no limit
    low: int
    high: int
    low_open: bool = False  # True: the value must be above `low`, not equal to it

    @property
    def integer(self) -> bool:
        return self.json_type == "integer"

    @property
    @override
    def description(self) -> str:
        if self.low_open:
            return f"{self.prose} Above {self.low:,}, at most {self.high:,}."
        return f"{self.prose} From {self.low:,} to {self.high:,}."

    @override
    def schema_type(self) -> th.JSONTypeHelper[t.Any]:
        numeric = th.IntegerType if self.integer else th.NumberType
        if self.low_open:
            return numeric(exclusive_minimum=self.low, maximum=self.high)
        return numeric(minimum=self.low, maximum=self.high)

    def problem(self, value: object) -> str:
        if self.low_open and self.low == 0:
            return f"{self.name} must be a positive number, got {value!r} (at most {self.high:g})."
        kind = "a whole number" if self.integer else "a number"
        return f"{self.name} must be {kind} from {self.low:g} to {self.high:g}, got {value!r}."


SETTINGS: tuple[Setting, ...] = (
    Setting(
        name="access_key",
        json_type="string",
        secret=True,
        title="Access key",
        prose="Gong API access key (Basic auth, with access_key_secret). "
        "Use either the key pair or access_token.",
    ),
    Setting(
        name="access_key_secret",
        json_type="string",
        secret=True,
        title="Access key secret",
        prose="Gong API access key secret (Basic auth, with access_key).",
    ),
    Setting(
        name="access_token",
        json_type="string",
        secret=True,
        title="Access token",
        prose="OAuth bearer token with the api:flows:read scope; the alternative to the key pair.",
    ),
    Setting(
        name="api_url",
        json_type="string",
        default=DEFAULT_API_URL,
        title="API URL",
        prose="Gong API base URL: customer-specific for OAuth apps "
        "(api_base_url_for_customer), or a local stand-in.",
    ),
    Setting(
        name="flow_owner_emails",
        json_type="array",
        title="Flow owner emails",
        prose="Emails of the Gong users whose flows to fetch, one partition each. "
        "Case-insensitive duplicates are fetched once; owners are processed in sorted order. "
        "Unset: the users Gong lists (GET /v2/users).",
    ),
    Setting(
        name="include_inactive_users",
        json_type="boolean",
        default=False,
        title="Include inactive users",
        prose="When owners come from GET /v2/users, fetch the flows of inactive users too, not "
        "only active ones.",
    ),
    Setting(
        name="company_flows_only",
        json_type="boolean",
        default=False,
        title="Company flows only",
        prose="Query only the first owner Gong accepts and emit only its Company flows: one "
        "owner's pages a sync instead of a call per owner. Personal and Shared flows are not "
        "emitted.",
    ),
    Setting(
        name="workspace_id",
        json_type="string",
        title="Workspace ID",
        prose="Only flows of this Gong workspace (sent as workspaceId).",
    ),
    Setting(
        name="crm_prospect_ids",
        json_type="array",
        title="CRM prospect IDs",
        prose="CRM ids of contacts or leads whose flow instances the flow_instances stream asks "
        "Gong about (POST /v2/flows/prospects), with those of crm_prospect_ids_file and, when "
        "tasks is selected, the contacts of the run's flow tasks.",
    ),
    Setting(
        name="crm_prospect_ids_file",
        json_type="string",
        title="CRM prospect IDs file",
        prose="Path of a text file with one CRM id a line (blank and # lines ignored), e.g. a "
        "warehouse export: psql -Atc 'select id from crm.contact' > ids.txt.",
    ),
    Number(
        name="max_requests_per_second",
        json_type="number",
        default=3,
        low=0,
        low_open=True,
        high=MAX_RATE,
        title="Max requests per second",
        prose="Client-side rate limit shared by every request of the tap. Gong's default limit "
        "is 3 calls a second per company.",
    ),
    Number(
        name="max_concurrent_requests",
        json_type="integer",
        default=4,
        low=1,
        high=MAX_WORKERS,
        title="Max concurrent requests",
        prose="Owners fetched at once (all through the one rate limiter). 4 keeps Gong's 3 "
        "calls/s busy at latencies up to 1 s.",
    ),
    Number(
        name="request_timeout",
        json_type="number",
        default=60,
        low=0,
        low_open=True,
        high=MAX_TIMEOUT,
        title="Request timeout",
        prose="Seconds one request may take, body included, before it is retried.",
    ),
    Number(
        name="max_retries",
        json_type="integer",
        default=5,
        low=0,
        high=MAX_RETRIES,
        title="Max retries",
        prose="Retries of one request after 429, 5xx, timeouts, dropped connections or bodies "
        "that are not JSON, before the sync stops.",
    ),
    Number(
        name="max_retry_wait_seconds",
        json_type="number",
        default=600,
        low=0,
        high=MAX_RETRY_WAIT,
        title="Max retry wait",
        prose="Longest Retry-After the tap sleeps through. Longer (a spent daily quota) stops the "
        "sync cleanly with a resumable STATE.",
    ),
    Setting(
        name="emit_activate_version_messages",
        json_type="boolean",
        default=False,
        title="Emit ACTIVATE_VERSION messages",
        prose="Send ACTIVATE_VERSION after each complete pass over the owners, so targets can "
        "delete flows gone from Gong. An interrupted pass keeps its version and is activated "
        "only once the resumed run completes it.",
    ),
    Number(
        name="max_requests_per_run",
        json_type="integer",
        low=1,
        high=MAX_BUDGET,
        title="Max requests per run",
        prose="Call budget of one run, every call counted (users and flows pages, steps calls, "
        "retries), checked before each owner starts; the run ends at the last complete owner "
        "with its STATE, exit 0, and the next run carries on. Unset means no limit.",
    ),
    Number(
        name="max_requests_per_day",
        json_type="integer",
        low=1,
        high=MAX_BUDGET,
        title="Max requests per day",
        prose="Call budget of one UTC day, counted across runs in the STATE; a run that starts "
        "with it spent sends no request. Unset means no limit.",
    ),
    Number(
        name="max_refused_owner_share",
        json_type="number",
        default=0.5,
        low=0,
        high=1,
        title="Max refused owner share",
        prose="With emit_activate_version_messages, a pass in which Gong refused a larger share "
        "of the owners than this emits its flows and STATE but no ACTIVATE_VERSION, so a target "
        "deletes nothing. A pass in which Gong accepted no owner fails.",
    ),
)
NUMBERS: dict[str, Number] = {s.name: s for s in SETTINGS if isinstance(s, Number)}
BOOLEANS: dict[str, bool] = {s.name: bool(s.default) for s in SETTINGS if s.json_type == "boolean"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def config_schema() -> dict[str, t.Any]:
    """The tap's config schema, as `--about` shows it: one property for each of SETTINGS."""
    return th.PropertiesList(*(s.schema_property() for s in SETTINGS)).to_dict()


def _number(spec: Number, value: object) -> tuple[float | int | None, str | None]:  # noqa: PLR0911
    """The setting as a number of its kind, or its default and the reason it is not one."""
    if value is None:
        return spec.default, None
    problem = spec.problem(value)
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
        typed[name], problem = _number(spec, config.get(name))
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


def unknown_names(
    config: t.Mapping[str, t.Any], known: t.Iterable[str]
) -> tuple[list[str], list[str]]:
    """(A problem for each name within two edits of a setting's name, the other unknown names.)

    A typo'd setting is ignored without a word, and its default may cost a company's quota (no
    `flow_owner_emails`: every user Gong lists is fetched), so a near miss is an error; a name
    far from every setting may be another tool's key in a shared config.
    """
    names = sorted(known)
    typos, others = [], []
    for name in sorted(set(config) - set(names)):
        near = closest(name, names)
        if near is None:
            others.append(name)
        else:
            typos.append(f"{name} is not a setting of this tap: did you mean {near}?")
    return typos, others


def closest(name: str, names: t.Iterable[str], most: int = 2) -> str | None:
    """The name of `names` at most `most` edits from `name` (the nearest), or None."""
    distance, near = min(((_edits(name, other), other) for other in names), default=(most + 1, ""))
    return near if distance <= most else None


def _edits(a: str, b: str) -> int:
    """Levenshtein distance: the inserts, deletes and substitutions that turn a into b."""
    row = list(range(len(b) + 1))
    for i, char in enumerate(a, start=1):
        previous, row[0] = row[0], i
        for j, other in enumerate(b, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (char != other))
    return row[-1]


def json_problem(text: str, what: str) -> str | None:
    """Why `text`, the content of `what` (a file or a variable), is not JSON, or None."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
    return None


def env_problems(environ: t.Mapping[str, str], prefix: str) -> list[str]:
    """What singer-sdk would misread or fail on in the settings' variables: a list that is
    meant as JSON (it starts with "[") but is not, a whole number that is not one."""
    problems = []
    for setting in SETTINGS:
        variable = f"{prefix}{setting.name.upper()}"
        value = environ.get(variable)
        if value is None:
            continue
        if setting.json_type == "array" and value.lstrip().startswith("["):
            problems.append(json_problem(value, variable))
        elif setting.json_type == "integer" and not re.fullmatch(r"\s*[+-]?\d+\s*", value):
            problems.append(f"{variable} must be a whole number, got {value!r}.")
    return [problem for problem in problems if problem]
