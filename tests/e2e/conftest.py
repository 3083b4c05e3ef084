"""End-to-end fixtures: a throw-away PostgreSQL server and Meltano run from the repo's meltano.yml.

The pipeline is the one users run, `meltano run tap-gong-flows target-postgres`, with real parts:
PostgreSQL from Debian's packages, Meltano, meltanolabs-target-postgres as pinned in meltano.yml.
Only Gong is a stand-in (tests/gong_standin.py, in this process, so a test can change its world
between runs). Meltano's plugins and system database live in a temporary folder, never in the
repo's .meltano/, so the demo's state and installs are untouched.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import KEY, ROOT, SECRET, TOKEN, owners_of

if t.TYPE_CHECKING:
    from tests.gong_standin import GongStandIn

SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
WAREHOUSE_USER = "warehouse"
WAREHOUSE_DB = "gong_warehouse"
# Variables a developer's shell may carry that would change what the runs do.
INHERITED_PREFIXES = ("TAP_GONG_FLOWS_", "TARGET_POSTGRES_", "MELTANO_", "PG")


def _major(bin_dir: str) -> int:
    match = re.search(r"/postgresql/(\d+)/bin$", bin_dir)
    return int(match.group(1)) if match else 0


def find_server_tools() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: Debian's newest, else the ones on PATH."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major, reverse=True)
    on_path = shutil.which("initdb")
    # /usr/local/bin may hold links to Debian's tools; resolve them to the real folder.
    candidates = [*debian, *([str(Path(on_path).resolve().parent)] if on_path else [])]
    for folder in candidates:
        if all(os.access(Path(folder) / tool, os.X_OK) for tool in SERVER_TOOLS):
            return Path(folder)
    return None


def install_server_tools() -> Path:
    """Install PostgreSQL from Debian's packages (CI is root on a fresh machine)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
        check=True,
        env=env,
        capture_output=True,
    )
    folder = find_server_tools()
    if folder is None:
        raise RuntimeError("apt-get installed postgresql, but initdb/pg_ctl/postgres are not found")
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Warehouse:
    """A PostgreSQL database on 127.0.0.1, queried with psql as users would."""

    host: str
    port: int
    user: str
    password: str
    database: str
    psql: str

    def psql_command(self, sql: str) -> list[str]:
        return [
            self.psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", self.database,
            "-c", sql,
        ]  # fmt: skip

    def execute(self, sql: str) -> str:
        done = subprocess.run(
            self.psql_command(sql),
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": self.password},
            timeout=60,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"psql failed on {sql!r}: {done.stderr.strip()}")
        return done.stdout.strip()

    def rows(self, sql: str) -> list[dict[str, t.Any]]:
        """The rows of a query as JSON objects (PostgreSQL's own JSON of each row)."""
        # The tests' own SQL over names they chose: nothing comes from outside.
        as_json = f"SELECT coalesce(json_agg(q), '[]') FROM ({sql}) q"  # noqa: S608
        return json.loads(self.execute(as_json))


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL's server tools refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def warehouse() -> t.Iterator[Warehouse]:
    """A throw-away PostgreSQL server on 127.0.0.1; stopped and removed whatever happens."""
    tools = find_server_tools()
    if tools is None:
        if os.geteuid() != 0:
            pytest.skip(
                "PostgreSQL's server tools (initdb, pg_ctl, postgres) are not installed and "
                "this user is not root, so `apt-get install postgresql` cannot add them"
            )
        tools = install_server_tools()
    psql = str(tools / "psql") if (tools / "psql").exists() else shutil.which("psql")
    if psql is None:
        raise RuntimeError(f"psql is not in {tools} nor on PATH")

    folder = Path(tempfile.mkdtemp(prefix="gong-e2e-pg-"))
    data, sockets, password_file = folder / "data", folder / "sockets", folder / "password"
    password = secrets.token_hex(16)
    port = free_port()
    started = False
    try:
        sockets.mkdir()
        password_file.write_text(password + "\n")
        if os.geteuid() == 0:
            server_user = pwd.getpwnam("postgres")
            for path in (folder, sockets, password_file):
                os.chown(path, server_user.pw_uid, server_user.pw_gid)
        initdb = [str(tools / "initdb"), "-D", str(data), "-U", WAREHOUSE_USER]
        initdb += [f"--pwfile={password_file}", "--auth=scram-sha-256", "--encoding=UTF8"]
        subprocess.run(
            _as_server_user([*initdb, "--locale=C", "--no-sync"]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        pg_ctl = [str(tools / "pg_ctl"), "-D", str(data)]
        start = subprocess.run(
            _as_server_user(
                [*pg_ctl, "-l", str(folder / "server.log"), "-o", options, "-w", "start"]
            ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        started = True
        if start.returncode:
            log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {start.stderr}\n{log}")
        admin = Warehouse("127.0.0.1", port, WAREHOUSE_USER, password, "postgres", psql)
        admin.execute(f"CREATE DATABASE {WAREHOUSE_DB}")
        yield Warehouse("127.0.0.1", port, WAREHOUSE_USER, password, WAREHOUSE_DB, psql)
    finally:
        if started:
            subprocess.run(
                _as_server_user([*pg_ctl, "-m", "immediate", "stop"]),
                capture_output=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class MeltanoRun:
    """What a user sees of one `meltano` command: exit code, output, and how long it took."""

    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float

    def explain(self) -> str:
        return f"meltano {' '.join(self.args)} exited {self.code}:\n{self.stderr[-6000:]}"


@dataclass
class Figures:
    """Wall times and row counts of the runs, printed after the tests as the README's numbers."""

    lines: list[str] = field(default_factory=list)


FIGURES = Figures()


def pytest_terminal_summary(terminalreporter: t.Any) -> None:
    if FIGURES.lines:
        terminalreporter.section("end-to-end figures")
        for line in FIGURES.lines:
            terminalreporter.write_line(line)


@dataclass
class MeltanoProject:
    """The repo's meltano.yml with its plugins installed once, in a folder of this test session."""

    sys_dir: Path
    base_env: dict[str, str]

    def run(
        self,
        *args: str,
        env: t.Mapping[str, str] | None = None,
        timeout: float = 300,
        cwd: Path = ROOT,
        answer: str | None = None,
    ) -> MeltanoRun:
        """Run meltano in the project at cwd; answer is what a user types at its prompts."""
        begin = time.monotonic()
        done = subprocess.run(
            [str(Path(sys.executable).parent / "meltano"), *args],
            cwd=cwd,
            env={**self.base_env, **(env or {})},
            input=answer,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        seconds = time.monotonic() - begin
        run = MeltanoRun(list(args), done.returncode, done.stdout, done.stderr, seconds)
        for secret in (KEY, SECRET, TOKEN):
            assert secret not in run.stdout + run.stderr, "a secret leaked into meltano's output"
        return run


@pytest.fixture(scope="session")
def meltano_project(tmp_path_factory: pytest.TempPathFactory) -> MeltanoProject:
    """`meltano install` of the tap (pip_url `-e .`: this repo) and target-postgres, once."""
    sys_dir = tmp_path_factory.mktemp("meltano")
    env = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED_PREFIXES)}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        MELTANO_SYS_DIR_ROOT=str(sys_dir / ".meltano"),
        MELTANO_DATABASE_URI=f"sqlite:///{sys_dir / 'meltano.db'}",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    project = MeltanoProject(sys_dir, env)
    install = project.run("install", "tap-gong-flows", "target-postgres", timeout=600)
    assert install.code == 0, install.explain()
    FIGURES.lines.append(f"meltano install tap-gong-flows target-postgres: {install.seconds:.1f} s")
    return project


@dataclass
class Pipeline:
    """`meltano run tap-gong-flows target-postgres` from one Gong stand-in into one schema.

    Each pipeline has its own Meltano system database, so its state starts empty.
    """

    project: MeltanoProject
    warehouse: Warehouse
    gong: GongStandIn
    schema: str
    state_db: Path
    label: str
    tap: dict[str, t.Any] = field(default_factory=dict)
    target: dict[str, t.Any] = field(default_factory=dict)
    select: list[str] | None = None  # Meltano's `select` extra; None: every stream

    STATE_ID = "dev:tap-gong-flows-to-target-postgres"

    def env(self) -> dict[str, str]:
        settings = {
            "TAP_GONG_FLOWS_API_URL": self.gong.url,
            "TAP_GONG_FLOWS_ACCESS_KEY": KEY,
            "TAP_GONG_FLOWS_ACCESS_KEY_SECRET": SECRET,
            "TAP_GONG_FLOWS_FLOW_OWNER_EMAILS": owners_of(self.gong.world),
            "TAP_GONG_FLOWS_MAX_RETRIES": 1,
            "TARGET_POSTGRES_HOST": self.warehouse.host,
            "TARGET_POSTGRES_PORT": self.warehouse.port,
            "TARGET_POSTGRES_USER": self.warehouse.user,
            "TARGET_POSTGRES_PASSWORD": self.warehouse.password,
            "TARGET_POSTGRES_DATABASE": self.warehouse.database,
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": self.schema,
            **{f"TAP_GONG_FLOWS_{k.upper()}": v for k, v in self.tap.items()},
            **{f"TARGET_POSTGRES_{k.upper()}": v for k, v in self.target.items()},
        }
        env = {k: v if isinstance(v, str) else json.dumps(v) for k, v in settings.items()}
        if self.select is not None:
            env["TAP_GONG_FLOWS__SELECT"] = json.dumps(self.select)
        env["MELTANO_DATABASE_URI"] = f"sqlite:///{self.state_db}"
        return env

    def run(self, *options: str) -> MeltanoRun:
        before = len(self.gong.requests)
        run = self.project.run("run", *options, "tap-gong-flows", "target-postgres", env=self.env())
        command = " ".join(["meltano run", *options, "tap-gong-flows target-postgres"])
        requests = len(self.gong.requests) - before
        FIGURES.lines.append(
            f"{self.label}: `{command}` exit {run.code}, {run.seconds:.1f} s, {requests} requests"
        )
        return run

    def record_rows(self, rows: int) -> None:
        FIGURES.lines.append(f"{self.label}: {rows} rows in {self.schema}.flows")

    def state(self) -> dict[str, t.Any]:
        """What `meltano state get` shows for this pipeline."""
        got = self.project.run("state", "get", self.STATE_ID, env=self.env())
        assert got.code == 0, got.explain()
        return json.loads(got.stdout)

    def rows(self, table: str = "flows") -> list[dict[str, t.Any]]:
        query = f'SELECT * FROM "{self.schema}"."{table}"'  # noqa: S608
        return self.warehouse.rows(query)

    def key_count(self, table: str = "flows") -> tuple[int, int]:
        """(rows, distinct keys) of the flows table: equal when no key is duplicated."""
        keys = "count(DISTINCT (flow_owner_email, id)) AS keys"
        query = f'SELECT count(*) AS n, {keys} FROM "{self.schema}"."{table}"'  # noqa: S608
        counts = self.warehouse.rows(query)[0]
        return counts["n"], counts["keys"]


SCHEMA_NUMBERS = itertools.count(1)
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder `e2e`, so `-m "not e2e"` is the quick loop.

    Pytest calls this hook with the whole session's items, not only this folder's.
    """
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def pipeline(
    request: pytest.FixtureRequest,
    meltano_project: MeltanoProject,
    warehouse: Warehouse,
    tmp_path: Path,
) -> t.Callable[..., Pipeline]:
    """Make a pipeline for a stand-in: its own warehouse schema and its own Meltano state."""

    def make(
        gong: GongStandIn,
        *,
        tap: dict[str, t.Any] | None = None,
        target: dict[str, t.Any] | None = None,
        select: list[str] | None = None,
    ) -> Pipeline:
        schema = f"e2e_{next(SCHEMA_NUMBERS):02d}"
        warehouse.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        return Pipeline(
            meltano_project,
            warehouse,
            gong,
            schema,
            tmp_path / f"meltano-{schema}.db",
            label=request.node.name,
            tap=tap or {},
            target=target or {},
            select=select,
        )

    return make
