"""A user's first hour (issue 19): every bad file or variable is one line, no traceback."""

from __future__ import annotations

import json
import socket
import tempfile
import time
import typing as t
from pathlib import Path

import pytest

from tests.conftest import ZYGOTE, TapRun, discover, run_tap, selecting, tap_config
from tests.gong_standin import make_world


def run_cli(*args: str, env: t.Mapping[str, str] | None = None) -> TapRun:
    """`python -m tap_gong_flows ARGS` as a user types it, each run its own process (forked
    from the zygote, tests/tap_zygote.py, with `env` added to its environment)."""
    with tempfile.TemporaryDirectory() as folder:
        return ZYGOTE.run(args, Path(folder), 60, env)


def errors(run: TapRun) -> list[str]:
    return [line.split("| ")[-1] for line in run.stderr.splitlines() if "ERROR" in line]


def assert_one_line(run: TapRun, code: int, first: str) -> None:
    assert run.code == code, run.stderr
    assert errors(run) == [first], run.stderr
    assert "Traceback" not in run.stderr
    assert "Usage:" not in run.stderr + run.stdout
    assert run.stdout == ""


@pytest.fixture
def config_file(gong_factory, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(tap_config(gong_factory(make_world(owners=1)))))
    return path


def test_a_missing_config_file(tmp_path):
    path = tmp_path / "nosuch.json"
    run = run_cli("--config", str(path))
    assert_one_line(run, 1, f"Cannot read the config file {path}: No such file or directory.")


def test_a_config_file_with_a_trailing_comma(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "access_token": "t",\n}\n')
    run = run_cli("--config", str(path))
    assert_one_line(
        run,
        1,
        f"The config file {path} is not valid JSON: Expecting property name enclosed in double "
        "quotes at line 3, column 1.",
    )


def test_a_missing_state_file_is_clicks_exit_2_in_one_line(config_file, tmp_path):
    path = tmp_path / "state.json"
    run = run_cli("--config", str(config_file), "--state", str(path))
    assert_one_line(
        run,
        2,
        f"Invalid value for '--state': '{path}': No such file or directory. Run with --help for "
        "the options.",
    )


@pytest.mark.parametrize("option", ["state", "catalog"])
def test_a_state_or_catalog_that_is_not_json(config_file, tmp_path, option):
    path = tmp_path / f"{option}.json"
    path.write_text('{"bookmarks": {}')
    run = run_cli("--config", str(config_file), f"--{option}", str(path))
    assert_one_line(
        run,
        1,
        f"The {option} file {path} is not valid JSON: Expecting ',' delimiter at line 1, "
        "column 17. Pass the file a previous run wrote, or none.",
    )


@pytest.mark.parametrize(
    ("variable", "value", "first"),
    [
        (
            "FLOW_OWNER_EMAILS",
            '["ana@example.com",]',
            "TAP_GONG_FLOWS_FLOW_OWNER_EMAILS is not valid JSON: Expecting value at line 1, "
            "column 20.",
        ),
        ("MAX_RETRIES", "8.0", "TAP_GONG_FLOWS_MAX_RETRIES must be a whole number, got '8.0'."),
    ],
    ids=["list-not-json", "whole-number-not-one"],
)
def test_an_env_variable_singer_sdk_would_misread(gong_factory, variable, value, first):
    gong = gong_factory(make_world(owners=1))
    env = {
        "TAP_GONG_FLOWS_API_URL": gong.url,
        "TAP_GONG_FLOWS_ACCESS_TOKEN": "t",
        f"TAP_GONG_FLOWS_{variable}": value,
    }
    run = run_cli("--config", "ENV", env=env)
    assert_one_line(run, 1, first)
    assert gong.requests == []


def test_an_unknown_option_is_one_line():
    run = run_cli("--bogus")
    # click's own wording varies by version: the shape is checked, and that it names the option
    assert run.code == 2
    assert len(errors(run)) == 1
    assert "--bogus" in errors(run)[0]
    assert errors(run)[0].endswith(" Run with --help for the options.")
    assert "?." not in errors(run)[0]
    assert "Traceback" not in run.stderr
    assert "Usage:" not in run.stderr


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


def refused_config(**overrides: object) -> dict:
    return {
        "access_token": "t",
        "api_url": f"http://127.0.0.1:{closed_port()}",
        "flow_owner_emails": ["ana@example.com"],
        **overrides,
    }


def test_each_retry_is_one_line_and_the_end_names_the_host(tmp_path):
    config = refused_config(max_retries=3)
    run = run_tap(config, tmp_path)
    assert run.code == 1
    retries = [line for line in run.stderr.splitlines() if "Retrying" in line]
    assert len(retries) == 3
    host = config["api_url"].removeprefix("http://")
    assert all(f"ConnectionError from {host}" in line and " in " in line for line in retries)
    assert "Backing off" not in run.stderr
    assert "Giving up" not in run.stderr
    assert f"the last failure was ConnectionError from {host}" in errors(run)[-1]
    assert "Traceback" not in run.stderr


@pytest.mark.slow  # the real backoff: about 22 s
def test_with_the_default_settings_a_refused_connection_ends_within_30_s(tmp_path):
    started = time.monotonic()
    run = run_tap(refused_config(), tmp_path, real_backoff=True, timeout=90)
    took = time.monotonic() - started
    assert run.code == 1
    assert took < 30 + 15  # 30 s, and room for a loaded machine
    # one line a retry and one for the end: there were two a retry ("Backing off", "Retrying")
    said = [line for line in run.stderr.splitlines() if "ConnectionError" in line]
    assert len(said) == 5 + 1
    assert len([line for line in said if "Retrying" in line]) == 5


def test_discovery_says_each_users_page_and_the_summary_counts_every_stream(gong_factory, tmp_path):
    world = make_world(owners=7, company_flows=2, personal_per_owner=1, shared_per_owner=0)
    gong = gong_factory(world, page_size=3)
    catalog = selecting(discover(), "users", "flows", "flow_definitions")
    run = run_tap(tap_config(gong, flow_owner_emails=None), tmp_path, catalog=catalog)
    assert run.code == 0, run.stderr
    users = len(world.users)
    pages = [line.split("| ")[-1] for line in run.stderr.splitlines() if "users page" in line]
    assert pages == [
        f"Read users page {n} of about 3 ({min(3 * n, users)} of {users} users)." for n in (1, 2, 3)
    ]
    (summary,) = [
        line.split("| ")[-1] for line in run.stderr.splitlines() if "Sync complete" in line
    ]
    assert summary.startswith(
        "Sync complete: this run did 7 owners, 0 skipped; the pass has done 7 of 7 owners"
    )
    flows, definitions = len(run.records()), len(run.records("flow_definitions"))
    assert (
        f"; {users} records of users, {flows} records of flows, {definitions} records of "
        "flow_definitions; "
    ) in summary


def test_a_one_owner_run_says_1_owner(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    run = run_tap(tap_config(gong), tmp_path)
    assert run.code == 0, run.stderr
    assert "this run did 1 owner, 0 skipped; the pass has done 1 of 1 owner, " in run.stderr


def test_an_empty_state_file_is_a_first_run(gong_factory, tmp_path):
    # What `... | target-jsonl > state.json` leaves when the target printed no STATE.
    gong = gong_factory(make_world(owners=2))
    run = run_tap(tap_config(gong), tmp_path, state="")
    assert run.code == 0, run.stderr
    (warning,) = [line for line in run.stderr.splitlines() if "is empty" in line]
    assert "WARNING" in warning
    assert "is empty: no STATE was kept, this run starts a new pass." in warning
    assert run.states[-1]["bookmarks"]["flows"]["last_owner"] is None


def test_a_failed_run_ends_with_its_last_state_after_the_records(gong_factory, tmp_path):
    # A target that keeps only a STATE that follows the records (target-jsonl) has one to print.
    gong = gong_factory(make_world(owners=3), page_size=5, daily_quota=3)
    run = run_tap(tap_config(gong, max_concurrent_requests=1), tmp_path)  # quota within owner 2
    assert run.code == 1
    last = run.messages[-1]
    assert last["type"] == "STATE"
    assert last["value"]["bookmarks"]["flows"]["last_owner"] == "owner0001@example.com"


def test_singer_sdks_own_settings_are_settings_and_their_typos_are_caught(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    maps = {"flows": {"__alias__": "gong_flows"}}
    run = run_tap(tap_config(gong, stream_maps=maps), tmp_path)
    assert run.code == 0, run.stderr
    assert "no setting of this tap" not in run.stderr
    assert {m["stream"] for m in run.of_type("RECORD")} == {"gong_flows"}
    typo = run_tap(tap_config(gong, stream_map=maps), tmp_path)
    assert typo.code == 1
    assert "stream_map is not a setting of this tap: did you mean stream_maps?" in typo.stderr


def test_a_typod_variable_is_refused(gong_factory):
    gong = gong_factory(make_world(owners=1))
    env = {
        "TAP_GONG_FLOWS_API_URL": gong.url,
        "TAP_GONG_FLOWS_ACCESS_TOKEN": "t",
        "TAP_GONG_FLOWS_FLOW_OWNER_EMAIL": '["owner0001@example.com"]',
        "TAP_GONG_FLOWS__SELECT": '["flows.*"]',  # Meltano's: two underscores, left alone
    }
    run = run_cli("--config", "ENV", env=env)
    assert_one_line(
        run,
        1,
        "TAP_GONG_FLOWS_FLOW_OWNER_EMAIL is not a setting's variable: did you mean "
        "TAP_GONG_FLOWS_FLOW_OWNER_EMAILS?",
    )
    assert gong.requests == []


@pytest.mark.parametrize(
    ("option", "content", "why"),
    [
        ("state", b'"x"', "is JSON but not an object"),
        ("catalog", b"[]", "is JSON but not an object"),
        ("state", '{"bookmarks": {}}'.encode("utf-16"), "is not UTF-8 text"),
    ],
    ids=["state-a-string", "catalog-a-list", "state-in-utf-16"],
)
def test_a_state_or_catalog_of_the_wrong_kind(config_file, tmp_path, option, content, why):
    path = tmp_path / f"{option}.json"
    path.write_bytes(content)
    run = run_cli("--config", str(config_file), f"--{option}", str(path))
    assert_one_line(
        run, 1, f"The {option} file {path} {why}. Pass the file a previous run wrote, or none."
    )
