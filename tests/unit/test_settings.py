"""settings.typed_config: every source's spelling of a setting becomes one type, or a message."""

from __future__ import annotations

import math

import jsonschema
import pytest

from tap_gong_flows import settings
from tap_gong_flows.settings import NUMBERS, api_url_problem, config_schema, typed_config

AUTH = {"access_token": "tok"}


def typed(**config: object) -> tuple[dict, list[str]]:
    return typed_config({**AUTH, **config})


def test_empty_config_with_auth_is_all_defaults() -> None:
    config, errors = typed()
    assert errors == []
    for name, spec in NUMBERS.items():
        assert config[name] == spec.default
    for name, default in settings.BOOLEANS.items():
        assert config[name] is default
    assert config["api_url"] == settings.DEFAULT_API_URL


def test_other_settings_pass_through_untouched() -> None:
    config, _ = typed(workspace_id="123", start_date="2024-01-01")
    assert config["workspace_id"] == "123"
    assert config["start_date"] == "2024-01-01"


@pytest.mark.parametrize("name", sorted(NUMBERS))
def test_null_means_the_default(name: str) -> None:
    config, errors = typed(**{name: None})
    assert errors == []
    assert config[name] == NUMBERS[name].default


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("max_requests_per_second", "2", 2.0),
        ("max_requests_per_second", " 0.5 ", 0.5),
        ("max_requests_per_second", "1000", 1000.0),
        ("max_requests_per_second", 2, 2),
        ("max_concurrent_requests", "8", 8),
        ("max_concurrent_requests", "8.0", 8),
        ("max_concurrent_requests", 1, 1),
        ("max_concurrent_requests", 32.0, 32),
        ("request_timeout", "30", 30.0),
        ("request_timeout", "3600", 3600.0),
        ("max_retries", "0", 0),
        ("max_retries", "100", 100),
        ("max_retry_wait_seconds", "0", 0.0),
        ("max_retry_wait_seconds", "86400", 86400.0),
        ("max_refused_owner_share", "0", 0.0),
        ("max_refused_owner_share", "1", 1.0),
        ("max_refused_owner_share", "0.25", 0.25),
    ],
)
def test_numbers_from_strings_and_json(name: str, given: object, expected: float) -> None:
    config, errors = typed(**{name: given})
    assert errors == []
    assert config[name] == expected
    assert type(config[name]) is type(expected)


@pytest.mark.parametrize("name", ["max_concurrent_requests", "max_retries"])
def test_whole_number_settings_become_int(name: str) -> None:
    config, _ = typed(**{name: "3"})
    assert config[name] == 3
    assert isinstance(config[name], int)


@pytest.mark.parametrize(
    ("name", "given"),
    [
        # out of range, on each side, including the open lower bounds
        ("max_requests_per_second", "0"),
        ("max_requests_per_second", -1),
        ("max_requests_per_second", "1000.5"),
        ("max_concurrent_requests", "0"),
        ("max_concurrent_requests", 33),
        ("request_timeout", 0),
        ("request_timeout", "3601"),
        ("max_retries", -1),
        ("max_retries", "101"),
        ("max_retry_wait_seconds", "-0.1"),
        ("max_retry_wait_seconds", 86401),
        ("max_refused_owner_share", "1.01"),
        ("max_refused_owner_share", -0.5),
        # not whole where a whole number is needed
        ("max_concurrent_requests", "4.5"),
        ("max_retries", 2.5),
        # not numbers at all
        ("max_requests_per_second", "three"),
        ("max_requests_per_second", ""),
        ("max_requests_per_second", [3]),
        ("max_requests_per_second", {"rate": 3}),
        # not finite, or absurdly large
        ("max_requests_per_second", "NaN"),
        ("max_requests_per_second", float("nan")),
        ("max_requests_per_second", "inf"),
        ("max_requests_per_second", float("inf")),
        ("max_requests_per_second", "-inf"),
        ("max_requests_per_second", "1e300"),
        ("max_requests_per_second", 1e300),
        ("max_retry_wait_seconds", "Infinity"),
        ("max_retries", "1e300"),
        ("max_concurrent_requests", float("nan")),
        # a bool is not a number, though Python says it is an int
        ("max_requests_per_second", True),
        ("max_retries", False),
        ("max_refused_owner_share", True),
    ],
)
def test_bad_numbers_are_named_and_fall_back_to_the_default(name: str, given: object) -> None:
    config, errors = typed(**{name: given})
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{name} must be")
    assert repr(given) in errors[0]
    assert config[name] == NUMBERS[name].default


@pytest.mark.parametrize("name", sorted(NUMBERS))
def test_the_schema_holds_the_bounds_the_check_applies(name: str) -> None:
    spec = NUMBERS[name]
    schema = config_schema()["properties"][name]
    low = "exclusiveMinimum" if spec.low_open else "minimum"
    assert (schema[low], schema["maximum"]) == (spec.low, spec.high)
    assert f"{spec.high:,}." in schema["description"]
    validator = jsonschema.Draft202012Validator(schema)
    for value in (spec.low - 1, spec.low, spec.high, spec.high + 1):
        by_schema = validator.is_valid(value)
        by_check = typed(**{name: value})[1] == []
        assert by_schema is by_check, value
        at_low = value == spec.low and not spec.low_open
        assert by_check is (spec.low < value <= spec.high or at_low), value


def test_positive_settings_say_positive() -> None:
    _, errors = typed(request_timeout="0")
    assert errors == ["request_timeout must be a positive number, got '0' (at most 3600)."]


def test_whole_number_settings_say_whole_number() -> None:
    _, errors = typed(max_retries="2.5")
    assert errors == ["max_retries must be a whole number from 0 to 100, got '2.5'."]


def test_every_bad_setting_is_reported_at_once() -> None:
    _, errors = typed(max_retries="x", request_timeout="nan", company_flows_only="maybe")
    assert [e.split()[0] for e in errors] == [
        "request_timeout",
        "max_retries",
        "company_flows_only",
    ]


def test_a_huge_json_integer_is_named_not_raised() -> None:
    _, errors = typed(max_retries=10**400)
    assert len(errors) == 1
    assert errors[0].startswith("max_retries must be")


@pytest.mark.parametrize("name", sorted(settings.BOOLEANS))
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("1", True),
        ("on", True),
        ("false", False),
        ("False", False),
        ("no", False),
        ("0", False),
        ("off", False),
        ("", False),
    ],
)
def test_booleans_from_strings(name: str, given: object, expected: bool) -> None:
    config, errors = typed(**{name: given})
    assert errors == []
    assert config[name] is expected


@pytest.mark.parametrize("name", sorted(settings.BOOLEANS))
def test_null_boolean_is_the_default(name: str) -> None:
    config, errors = typed(**{name: None})
    assert errors == []
    assert config[name] is settings.BOOLEANS[name]


@pytest.mark.parametrize("given", ["maybe", "2", 1, 0, 1.0, [], {}])
def test_bad_booleans_are_named(given: object) -> None:
    config, errors = typed(company_flows_only=given)
    assert errors == [f"company_flows_only must be true or false, got {given!r}."]
    assert config["company_flows_only"] is False


# --- api_url ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.gong.io", "https://api.gong.io"),
        ("https://api.gong.io/", "https://api.gong.io"),
        ("  https://company-17.api.gong.io/  ", "https://company-17.api.gong.io"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        (None, settings.DEFAULT_API_URL),
        ("", settings.DEFAULT_API_URL),
        ("   ", settings.DEFAULT_API_URL),
    ],
)
def test_good_api_urls(given: object, expected: str) -> None:
    config, errors = typed(api_url=given)
    assert errors == []
    assert config["api_url"] == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://api.gong.io/v2",
        "https://api.gong.io/v2/",
        "https://api.gong.io/v2/flows",
        "https://api.gong.io//",
        "https://api.gong.io?workspaceId=1",
        "https://api.gong.io/?x=1",
        "https://api.gong.io#top",
        "https://",
        "https:///v2",
        "api.gong.io",
        "ftp://api.gong.io",
        "file:///etc/passwd",
        "https://api.gong.io:port",
        "https://api.gong.io:99999",
    ],
)
def test_api_url_problems(url: str) -> None:
    problem = api_url_problem(url)
    assert problem is not None
    assert problem.startswith("api_url must be an http(s) URL with a host and no path")
    assert repr(url) in problem
    _, errors = typed(api_url=url)
    assert errors == [problem]


def test_api_url_problem_names_the_path() -> None:
    problem = api_url_problem("https://api.gong.io/v2")
    assert problem is not None
    assert "which has the path '/v2'" in problem


@pytest.mark.parametrize("url", ["https://api.gong.io", "https://api.gong.io/", "http://h:1"])
def test_api_url_without_problem(url: str) -> None:
    assert api_url_problem(url) is None


@pytest.mark.parametrize("url", ["https://api.gong.io?x=1", "https://api.gong.io#top"])
def test_api_url_problem_for_a_query_does_not_blame_an_empty_path(url: str) -> None:
    problem = api_url_problem(url)
    assert problem is not None
    assert "path ''" not in problem


@pytest.mark.parametrize("given", [123, ["https://api.gong.io"], True])
def test_api_url_that_is_not_a_string_is_reported(given: object) -> None:
    _, errors = typed(api_url=given)
    assert any(e.startswith("api_url") for e in errors)


# --- auth and owners -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        {"access_token": "tok"},
        {"access_key": "k", "access_key_secret": "s"},
        {"access_key": "k", "access_key_secret": "s", "access_token": ""},
        {"access_key": "", "access_key_secret": None, "access_token": "tok"},
    ],
)
def test_good_auth(auth: dict) -> None:
    assert typed_config(auth)[1] == []


@pytest.mark.parametrize(
    ("auth", "start"),
    [
        ({"access_key": "k", "access_key_secret": "s", "access_token": "t"}, "Configure one"),
        ({"access_key": "k", "access_token": "t"}, "Configure one"),
        ({"access_key": "k"}, "access_key and access_key_secret go together"),
        ({"access_key_secret": "s"}, "access_key and access_key_secret go together"),
        ({"access_key": "k", "access_key_secret": ""}, "access_key and access_key_secret go"),
        ({}, "No credentials"),
        ({"access_token": "", "access_key": None}, "No credentials"),
    ],
)
def test_auth_problems(auth: dict, start: str) -> None:
    errors = typed_config(auth)[1]
    assert len(errors) == 1
    assert errors[0].startswith(start)


def test_auth_problems_never_repeat_the_credentials() -> None:
    errors = typed_config({"access_key": "AKEY-123456", "access_token": "TOKEN-987654"})[1]
    assert not any("AKEY-123456" in e or "TOKEN-987654" in e for e in errors)


@pytest.mark.parametrize(
    "emails", [None, ["a@example.com"], [" a@example.com ", "b.c@sub.example.org"]]
)
def test_good_owner_lists(emails: object) -> None:
    assert typed(flow_owner_emails=emails)[1] == []


@pytest.mark.parametrize(
    ("emails", "fragment"),
    [
        ("a@example.com", "must be a list of emails, got 'a@example.com'"),
        ({"a": 1}, "must be a list of emails"),
        ([], "flow_owner_emails is empty"),
        (["a@example.com", "not-an-email"], "not emails: ['not-an-email']"),
        (["a@b", 5, None], "not emails: ['a@b', 5, None]"),
        (["a @example.com"], "not emails"),
        (["a@@example.com"], "not emails"),
    ],
)
def test_owner_list_problems(emails: object, fragment: str) -> None:
    errors = typed(flow_owner_emails=emails)[1]
    assert len(errors) == 1
    assert fragment in errors[0]
    assert errors[0].startswith("flow_owner_emails")


def test_config_is_not_mutated() -> None:
    given = {**AUTH, "max_retries": "3", "api_url": "https://api.gong.io/"}
    before = dict(given)
    typed_config(given)
    assert given == before


def test_typed_numbers_are_finite() -> None:
    config, _ = typed(max_requests_per_second="1e300", request_timeout="inf")
    assert all(config[name] is None or math.isfinite(config[name]) for name in NUMBERS)


# --- names that are no setting (issue 19) --------------------------------------------------

KNOWN = [setting.name for setting in settings.SETTINGS]


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("flow_owner_email", "flow_owner_emails"),  # one deleted
        ("max_request_per_second", "max_requests_per_second"),
        ("acess_key", "access_key"),
        ("max_retrys", "max_retries"),  # two edits
    ],
)
def test_a_name_within_two_edits_of_a_setting_is_a_typo(name: str, meant: str) -> None:
    typos, others = settings.unknown_names({name: 1, "access_key": "k"}, KNOWN)
    assert typos == [f"{name} is not a setting of this tap: did you mean {meant}?"]
    assert others == []


def test_other_unknown_names_are_only_listed() -> None:
    config = {"dbt_target": "x", "target_schema": "y", "access_key": "k"}
    assert settings.unknown_names(config, KNOWN) == ([], ["dbt_target", "target_schema"])


def test_edit_distance() -> None:
    assert settings._edits("kitten", "sitting") == 3
    assert settings._edits("", "abc") == 3
    assert settings._edits("same", "same") == 0
