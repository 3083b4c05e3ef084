"""Never wipe the warehouse copy by mistake, and stop at once when told to (issue 10)."""

from __future__ import annotations

import collections
import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import KEY, ROOT, SECRET, TOKEN, TapRun, expected_rows, run_tap, tap_config
from tests.gong_standin import Fault, make_world

OWNERS4 = [f"owner000{i}@example.com" for i in range(1, 5)]


def keys(run: TapRun) -> set[tuple[str, str]]:
    return {(r["flow_owner_email"], r["id"]) for r in run.records()}


def activates(gong, **overrides):
    return tap_config(gong, emit_activate_version_messages=True, **overrides)


# An ACTIVATE_VERSION only after a pass that can be trusted


def test_api_url_with_a_path_is_refused_before_any_request(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=2))
    run = run_tap(activates(gong, api_url=gong.url + "/v2"), tmp_path)
    assert run.code == 1
    assert "api_url must be an http(s) URL with a host and no path" in run.stderr
    assert "https://api.gong.io" in run.stderr
    assert "'/v2'" in run.stderr
    assert "Traceback" not in run.stderr
    assert gong.requests == []
    assert run.messages == []


@pytest.mark.parametrize(
    "body",
    [{"requestId": "r-route", "errors": ["No such endpoint /v2/flows"]}, b"<html>404</html>"],
    ids=["gong-json-not-about-the-user", "not-gong-json"],
)
def test_a_404_that_is_not_about_the_owner_stops_the_sync_naming_the_url(
    gong_factory, tmp_path, body
):
    gong = gong_factory(make_world(owners=3))
    gong.add_fault(Fault(status=404, body=body, times=-1))
    run = run_tap(activates(gong, max_concurrent_requests=1), tmp_path)
    assert run.code == 1
    assert f"Gong answered GET {gong.url}/v2/flows with HTTP 404" in run.stderr
    assert "check api_url" in run.stderr
    assert "Skipping owner" not in run.stderr
    assert "Traceback" not in run.stderr
    assert run.of_type("ACTIVATE_VERSION") == []
    assert len(gong.requests) == 1, "a fatal answer must not be retried or go on to other owners"


def test_every_owner_refused_is_a_failed_sync_and_deletes_nothing(gong_factory, tmp_path):
    world = make_world(owners=2)
    gong = gong_factory(world)
    typos = ["ana@exmaple.com", "bo@exmaple.com", "cy@exmaple.com"]
    for email in typos:  # a typo'd list: Gong knows none of them
        world.rejected_owners[email] = (404, "No user found corresponding to the provided filters")
    run = run_tap(activates(gong, flow_owner_emails=typos), tmp_path)
    assert run.code == 1
    assert "Gong refused every owner of this pass (3 of 3)" in run.stderr
    assert (
        f"owner ana@exmaple.com, page 1: Gong answered GET {gong.url}/v2/flows with HTTP 404"
        in (run.stderr)
    )
    assert "No user found corresponding to the provided filters" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.of_type("ACTIVATE_VERSION") == []
    assert run.records() == []


def test_most_owners_refused_emits_data_and_state_but_no_activate_version(gong_factory, tmp_path):
    world = make_world(owners=4)
    for email in OWNERS4[1:]:
        world.rejected_owners[email] = (400, f"User {email} is deactivated")
    gong = gong_factory(world)
    run = run_tap(activates(gong), tmp_path)
    assert run.code == 0, run.stderr
    assert keys(run) == set(expected_rows(world, OWNERS4[:1]))
    assert run.states[-1]["bookmarks"]["flows"]["last_owner"] is None
    assert run.of_type("ACTIVATE_VERSION") == []
    (warning,) = [line for line in run.stderr.splitlines() if "No ACTIVATE_VERSION" in line]
    assert "WARNING" in warning
    assert "Gong refused 3 of 4 owners, more than max_refused_owner_share (0.5)" in warning


def test_routine_refusals_still_activate(gong_factory, tmp_path):
    world = make_world(owners=10)
    world.rejected_owners["owner0004@example.com"] = (400, "User has no Engage license")
    gong = gong_factory(world)
    run = run_tap(activates(gong), tmp_path)
    assert run.code == 0, run.stderr
    assert len(run.of_type("ACTIVATE_VERSION")) == 1
    assert "No ACTIVATE_VERSION" not in run.stderr


def test_the_refused_share_is_a_setting(gong_factory, tmp_path):
    world = make_world(owners=4)
    for email in OWNERS4[1:]:
        world.rejected_owners[email] = (400, f"User {email} is deactivated")
    gong = gong_factory(world)
    run = run_tap(activates(gong, max_refused_owner_share=0.8), tmp_path)
    assert run.code == 0, run.stderr
    assert len(run.of_type("ACTIVATE_VERSION")) == 1


def test_refusals_are_counted_across_the_runs_of_one_pass(gong_factory, tmp_path):
    world = make_world(owners=4)
    for email in OWNERS4[:3]:
        world.rejected_owners[email] = (400, f"User {email} is deactivated")
    gong = gong_factory(world, daily_quota=3, quota_retry_after="36000")
    config = activates(gong, max_concurrent_requests=1)
    first = run_tap(config, tmp_path)
    assert first.code == 1, "the quota stop"
    assert first.states[-1]["bookmarks"]["flows"]["refused"] == 3
    gong.daily_quota = None
    second = run_tap(config, tmp_path, state=first.states[-1])
    assert second.code == 0, second.stderr
    assert second.of_type("ACTIVATE_VERSION") == []
    assert "Gong refused 3 of 4 owners" in second.stderr


def test_an_empty_users_list_deletes_no_user(gong_factory, tmp_path):
    world = make_world(owners=2)
    gong = gong_factory(world)
    gong.add_fault(Fault(path="/v2/users", kind="shape", body={"requestId": "r", "users": []}))
    gong.add_fault(
        Fault(path="/v2/workspaces", kind="shape", body={"requestId": "r", "workspaces": []})
    )
    catalog = select_all_streams()
    run = run_tap(activates(gong), tmp_path, catalog=catalog)
    assert run.code == 0, run.stderr
    activated = {m["stream"] for m in run.of_type("ACTIVATE_VERSION")}
    assert activated == {"flows", "flow_steps", "flow_definitions"}
    assert "No ACTIVATE_VERSION for users: Gong listed none" in run.stderr
    assert "No ACTIVATE_VERSION for workspaces: Gong listed none" in run.stderr


def select_all_streams() -> dict:
    from tests.conftest import discover, selecting

    catalog = discover()
    return selecting(catalog, *(stream["tap_stream_id"] for stream in catalog["streams"]))


# Stop at once, and say it failed


def test_a_fatal_error_stops_at_once_while_another_owner_waits_out_a_retry_after(
    gong_factory, tmp_path
):
    world = make_world(owners=4)
    gong = gong_factory(world, page_size=2, latency=0.3)
    gong.add_fault(Fault(owner=OWNERS4[0], page=1, status=429, headers={"Retry-After": "300"}))
    gong.add_fault(Fault(owner=OWNERS4[2], status=403, times=-1))
    config = activates(gong, max_concurrent_requests=4, max_requests_per_second=20)
    started = time.monotonic()
    run = run_tap(config, tmp_path, timeout=60)
    took = time.monotonic() - started
    assert run.code == 1
    assert took < 15, f"took {took:.1f} s to stop"
    assert "HTTP 403" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.of_type("ACTIVATE_VERSION") == []
    refused_at = next(r.time for r in gong.requests if r.status == 403)
    assert [r for r in gong.requests if r.time > refused_at + 0.5] == [], "requests after it"


class TapProcess:
    """The tap running as a user starts it, its stdout read line by line as it comes."""

    def __init__(
        self, config: dict, tmp_path, state: dict | None = None, catalog: dict | None = None
    ) -> None:
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        command = [sys.executable, "-m", "tap_gong_flows", "--config", str(config_path)]
        for option, value in (("--state", state), ("--catalog", catalog)):
            if value is not None:
                path = tmp_path / f"{option[2:]}.json"
                path.write_text(json.dumps(value))
                command += [option, str(path)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines)),
            threading.Thread(target=self._read, args=(self.process.stderr, self._stderr)),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        try:
            for line in stream:
                into.append(line)
        except ValueError:  # the test closed the pipe: the target went away
            return

    def wait_for_states(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while sum('"type":"STATE"' in line for line in self.lines) < count:
            assert time.monotonic() < deadline, "the tap emitted too few STATE messages"
            assert self.process.poll() is None, "".join(self._stderr)
            time.sleep(0.02)

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        """Until a line of the log holds `text`, or the tap has ended."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self._stderr) and self.process.poll() is None:
            assert time.monotonic() < deadline, f"the tap never logged {text!r}"
            time.sleep(0.001)

    def wait_until_it_catches(self, signum: int, timeout: float = 10) -> None:
        """Until the tap has a handler for `signum` (Linux: SigCgt in /proc/PID/status)."""
        deadline = time.monotonic() + timeout
        status = Path(f"/proc/{self.process.pid}/status")
        while True:
            caught = next(line for line in status.read_text().splitlines() if "SigCgt" in line)
            if int(caught.split()[1], 16) >> (signum - 1) & 1:
                return
            assert self.process.poll() is None, "".join(self._stderr)
            assert time.monotonic() < deadline, f"the tap never caught {signum}"
            time.sleep(0.0005)

    def finish(self, timeout: float = 30) -> TapRun:
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        for pipe in (self.process.stdout, self.process.stderr):
            pipe.close()
        run = TapRun(code, "".join(self.lines), "".join(self._stderr))
        for secret in (KEY, SECRET, TOKEN):
            assert secret not in run.stdout
            assert secret not in run.stderr
        return run


@pytest.mark.slow  # about 10 s: it waits for a run to be well under way
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_sync_at_once_and_says_it_failed(gong_factory, tmp_path, signum):
    world = make_world(owners=8)
    gong = gong_factory(world, page_size=2, latency=0.05)
    config = activates(gong, max_requests_per_second=5)
    tap = TapProcess(config, tmp_path)
    tap.wait_for_states(2)
    sent = time.monotonic()
    tap.process.send_signal(signum)
    run = tap.finish()
    took = time.monotonic() - sent
    requests_then = len(gong.requests)
    assert run.code == 128 + signum
    assert took < 5, f"took {took:.1f} s to stop"
    assert f"Stopped by {signal.Signals(signum).name}" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout.endswith("\n"), "half a line went out"
    messages = run.messages  # every line is whole JSON
    assert [m for m in messages if m["type"] == "ACTIVATE_VERSION"] == []
    time.sleep(0.5)
    assert len(gong.requests) == requests_then, "a request went out after the tap stopped"

    # the last STATE comes after every record of the owners it covers; the next run carries on
    last = run.states[-1]
    done_owner = last["bookmarks"]["flows"]["last_owner"]
    assert done_owner is not None
    resumed = run_tap(config, tmp_path, state=last)
    assert resumed.code == 0, resumed.stderr
    assert keys(run) | keys(resumed) == set(expected_rows(world, config["flow_owner_emails"]))
    assert all(owner > done_owner for owner, _ in keys(resumed))
    assert len(resumed.of_type("ACTIVATE_VERSION")) == 1


def test_a_closed_stdout_stops_the_sync_with_exit_1(gong_factory, tmp_path):
    world = make_world(owners=12)
    gong = gong_factory(world, page_size=2, latency=0.05)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(activates(gong, max_requests_per_second=10)))
    process = subprocess.Popen(
        [sys.executable, "-m", "tap_gong_flows", "--config", str(config_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Read in this thread, so that closing the pipe really closes its only reader.
    while '"type":"STATE"' not in process.stdout.readline():
        assert process.poll() is None
    process.stdout.close()  # the target went away
    stderr = process.stderr.read()
    code = process.wait(30)
    assert code == 1, stderr
    assert "the target closed the tap's output" in stderr
    assert "Traceback" not in stderr
    sent = len(gong.requests)
    time.sleep(0.5)
    assert len(gong.requests) == sent
    assert len({r.owner for r in gong.requests}) < 12, "it went on fetching every owner"


def test_a_tap_built_in_the_main_thread_leaves_the_signals_to_the_process_handler():
    """Not the SDK's handlers, which exit 0, not even while the SDK's __init__ goes on."""
    from tap_gong_flows.stopping import SIGNALS
    from tap_gong_flows.tap import TapGongFlows

    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        config = {"access_token": "main-thread-probe", "flow_owner_emails": ["a@example.com"]}
        TapGongFlows(config=config, validate_config=False, setup_mapper=False)
        assert signal.getsignal(signal.SIGTERM) == SIGNALS.handle
        assert signal.getsignal(signal.SIGINT) == SIGNALS.handle
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def stopped_lines(run: TapRun, signum: int) -> list[str]:
    name = signal.Signals(signum).name
    return [line for line in run.stderr.splitlines() if f"Stopped by {name}" in line]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads SigCgt in /proc")
@pytest.mark.parametrize(
    ("signum", "delay"),
    [(signal.SIGTERM, 0.0), (signal.SIGTERM, 0.15), (signal.SIGINT, 0.05)],
    ids=["SIGTERM-at-once", "SIGTERM-150ms", "SIGINT-50ms"],
)
def test_a_signal_during_the_imports_ends_with_the_one_line(gong_factory, tmp_path, signum, delay):
    gong = gong_factory(make_world(owners=2))
    tap = TapProcess(activates(gong), tmp_path)
    tap.wait_until_it_catches(signal.SIGTERM)  # the first thing the tap's package does
    time.sleep(delay)
    tap.process.send_signal(signum)
    run = tap.finish()
    assert run.code == 128 + signum, run.stderr
    assert len(stopped_lines(run, signum)) == 1, run.stderr
    assert "Traceback" not in run.stderr
    if delay == 0:  # still importing: the CLI never started, nothing was asked of Gong
        assert "Meltano SDK v" not in run.stderr
        assert gong.requests == []
        assert run.stdout == ""


@pytest.mark.slow
def test_a_signal_at_any_moment_of_a_run_ends_cleanly(gong_factory, tmp_path):
    """Exit 0 only after a complete pass, all of it out; else 128+signal and the one line."""
    world = make_world(owners=3)
    gong = gong_factory(world, page_size=2)
    config = activates(gong)
    everything = set(expected_rows(world, config["flow_owner_emails"]))
    started = time.monotonic()
    whole = TapProcess(config, tmp_path).finish()
    length = time.monotonic() - started
    assert whole.code == 0, whole.stderr
    assert keys(whole) == everything
    rng = random.Random(6)
    exits: collections.Counter[tuple[str, int]] = collections.Counter()
    deadline = time.monotonic() + 120
    for n in range(36):
        if time.monotonic() > deadline:
            break
        signum = rng.choice([signal.SIGTERM, signal.SIGINT])
        tap = TapProcess(config, tmp_path)
        if n % 3 == 0:  # anywhere from the tap's first statement to a little after the end
            tap.wait_until_it_catches(signal.SIGTERM)
            time.sleep(rng.uniform(0, length * 1.1))
        else:  # after the summary line: the SDK and click wind down, the interpreter ends
            tap.wait_for_log("Sync complete")
            time.sleep(rng.choice([rng.uniform(0, 0.004), rng.uniform(0, 0.2)]))
        tap.process.send_signal(signum)
        run = tap.finish()
        exits[(signal.Signals(signum).name, run.code)] += 1
        assert run.code in (0, 128 + signum), run.stderr
        assert "Traceback" not in run.stderr
        assert "Exception ignored" not in run.stderr
        messages = run.messages  # every line is whole JSON
        if run.code == 0:
            assert stopped_lines(run, signum) == []
            assert run.states[-1]["bookmarks"]["flows"]["last_owner"] is None
            assert keys(run) == everything
            assert len([m for m in messages if m["type"] == "ACTIVATE_VERSION"]) == 1
        else:
            assert len(stopped_lines(run, signum)) == 1, run.stderr
    print(f"{sum(exits.values())} runs, exits {dict(exits)}")
    assert sum(exits.values()) >= 20, "too few runs in the time"
    assert any(code != 0 for _, code in exits), "no signal came while the tap ran"
