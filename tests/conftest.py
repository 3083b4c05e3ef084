"""Shared test fixtures: a loopback Gong stand-in and a way to run the tap as users do."""

from __future__ import annotations

import copy
import functools
import json
import os
import select
import signal
import subprocess
import sys
import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest

from tap_gong_flows import retry
from tests.gong_standin import GongStandIn, World, make_world

ROOT = Path(__file__).resolve().parent.parent

# Distinctive credentials: every run of the tap is checked for them in its output.
KEY = "AKEY-4f1d9c2b7e"
SECRET = "SKEY-b7e0a93c51d4e2f8"
TOKEN = "TOKEN-9e8d7c6b5a4f3e2d1c"

# The first exponential backoff wait of a tap run_tap starts, through retry.py's test hook: a
# persistent 5xx then costs milliseconds, not 1+2+4 s. Gong's Retry-After is still honoured.
TEST_BACKOFF_BASE = 0.01


@dataclass
class TapRun:
    """What a user sees of one run: the exit code, the Singer messages, the log."""

    code: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def records(self, stream: str = "flows") -> list[dict]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == kind]


def pytest_configure(config: pytest.Config) -> None:
    # singer-sdk warns (FutureWarning) on every start under a Python at or near its end of life,
    # e.g. 3.10 from 2026-10. CI tests the oldest Python the tap supports on purpose, and
    # filterwarnings=error would turn the warning into a collection error there.
    config.addinivalue_line(
        "filterwarnings", r"ignore:Python 3\.\d+ (reached|will reach) its end of life:FutureWarning"
    )


def discover() -> dict:
    """The catalog `tap-gong-flows --discover` prints (no config needed), a fresh copy each call."""
    return json.loads(_discovered())


@functools.cache
def _discovered() -> str:
    # Run once a session: the same command prints the same catalog, and each start of the
    # interpreter and singer-sdk costs most of a second.
    done = subprocess.run(
        [sys.executable, "-m", "tap_gong_flows", "--discover"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout


@pytest.fixture(scope="session")
def catalog() -> dict:
    """The discovered catalog, nothing selected by the test yet."""
    return discover()


def selecting(catalog: dict, *names: str) -> dict:
    """The catalog with exactly these streams selected, as `meltano select` does."""
    catalog = copy.deepcopy(catalog)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in names
    return catalog


def run_tap(
    config: dict,
    tmp_path: Path,
    *,
    state: dict | str | None = None,
    catalog: dict | None = None,
    args: t.Sequence[str] = (),
    timeout: float = 120,
    real_backoff: bool = False,
) -> TapRun:
    """Run `python -m tap_gong_flows` with this config; assert no secret leaks into its output.

    The exponential backoff starts at TEST_BACKOFF_BASE unless `real_backoff`.
    """
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    command = [sys.executable, "-m", "tap_gong_flows", "--config", str(config_path), *args]
    if state is not None:
        state_path = tmp_path / "state.json"
        state_path.write_text(state if isinstance(state, str) else json.dumps(state))
        command += ["--state", str(state_path)]
    if catalog is not None:
        catalog_path = tmp_path / "catalog.json"
        catalog_path.write_text(json.dumps(catalog))
        command += ["--catalog", str(catalog_path)]
    if real_backoff:
        env = {**os.environ}
        env.pop(retry.TEST_BACKOFF_BASE_VARIABLE, None)
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env, check=False
        )
        run = TapRun(done.returncode, done.stdout, done.stderr)
    else:
        run = ZYGOTE.run(command[3:], tmp_path, timeout)
    for secret in (KEY, SECRET, TOKEN):
        assert secret not in run.stdout, f"secret leaked to stdout: {secret}"
        assert secret not in run.stderr, f"secret leaked to stderr: {secret}"
    return run


class Zygote:
    """The tap's CLI runs, each a process of its own, forked from one that imported the tap
    once (tests/tap_zygote.py): the same `main()` with the same arguments, minus 0.3 s of
    imports a run. Its environment has the test backoff base."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._buffer = b""

    def _start(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            env = {**os.environ, retry.TEST_BACKOFF_BASE_VARIABLE: str(TEST_BACKOFF_BASE)}
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.tap_zygote"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=ROOT,
                env=env,
                bufsize=0,
            )
            self._buffer = b""
        return self._process

    def close(self) -> None:
        """End the zygote: it leaves its loop when its input closes."""
        if self._process is None:
            return
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()
        self._process = None

    def _answer(self, timeout: float | None) -> dict | None:
        """The zygote's next line, or None if none came within `timeout` seconds."""
        assert self._process is not None
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("the tap zygote ended")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def run(
        self,
        argv: t.Sequence[str],
        folder: Path,
        timeout: float,
        env: t.Mapping[str, str] | None = None,
    ) -> TapRun:
        zygote = self._start()
        assert zygote.stdin is not None
        out, err = folder / "tap.stdout", folder / "tap.stderr"
        request = {
            "argv": list(argv),
            "cwd": str(ROOT),
            "stdout": str(out),
            "stderr": str(err),
            "env": dict(env or {}),
        }
        zygote.stdin.write((json.dumps(request) + "\n").encode())
        started = self._answer(None)
        assert started is not None
        ended = self._answer(timeout)
        if ended is None:
            os.kill(started["pid"], signal.SIGKILL)
            self._answer(None)
            raise subprocess.TimeoutExpired(list(argv), timeout)
        return TapRun(ended["code"], out.read_text(), err.read_text())


ZYGOTE = Zygote()


def pytest_sessionfinish(session: pytest.Session) -> None:
    ZYGOTE.close()


def start_gong(world: World | None = None, **options: t.Any) -> GongStandIn:
    options.setdefault("access_key", KEY)
    options.setdefault("access_key_secret", SECRET)
    options.setdefault("access_token", TOKEN)
    return GongStandIn(world if world is not None else make_world(), **options).start()


@pytest.fixture
def gong_factory() -> t.Iterator[t.Callable[..., GongStandIn]]:
    """Start stand-ins with any world and options; all are stopped after the test."""
    started: list[GongStandIn] = []

    def factory(world: World | None = None, **options: t.Any) -> GongStandIn:
        gong = start_gong(world, **options)
        started.append(gong)
        return gong

    yield factory
    for gong in started:
        gong.stop()


def owners_of(world: World) -> list[str]:
    return sorted(u["emailAddress"] for u in world.users if u.get("emailAddress") and u["active"])


def tap_config(gong: GongStandIn, **overrides: t.Any) -> dict:
    """Config for a sync of every active owner of the stand-in's world, by key pair."""
    config = {
        "access_key": KEY,
        "access_key_secret": SECRET,
        "api_url": gong.url,
        "flow_owner_emails": owners_of(gong.world),
        "max_retries": 3,
        # fast tests; the rate-limit tests set Gong's real 3 a second themselves
        "max_requests_per_second": 20,
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


def assert_refused_config(gong: GongStandIn, tmp_path: Path, change: dict, message: str) -> None:
    """A config with `change` is one clear error: exit 1, `message`, no traceback, no request."""
    run = run_tap({**tap_config(gong), **change}, tmp_path)
    assert run.code == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert gong.requests == []


def expected_rows(world: World, owners: t.Iterable[str], workspace_id: str | None = None) -> dict:
    """What Gong lists: {(owner, flow id): record as the tap must emit it}."""
    rows = {}
    for owner in owners:
        for flow in world.flows_for(owner, workspace_id):
            rows[(owner, flow["id"])] = {
                **flow,
                "flow_owner_email": owner,
                "workspace_id": workspace_id,
            }
    return rows
