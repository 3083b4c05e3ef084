"""The README's commands, read from README.md itself and run as a new user would.

Commands come from the README's ```bash blocks and from its inline code that starts with
`meltano ` or `tap-gong-flows `, so editing the README changes what runs here. A command the
README gains that no test below runs, and that EXCUSED does not explain, fails
test_every_readme_command_is_run_or_excused. `export` lines are checked to name real settings;
their values are the README's, except where they point at a machine (Gong, PostgreSQL, the
owners), which come from the stand-in and the throw-away warehouse.

Meltano writes `config set`, `select`, `job add` and `schedule add` into meltano.yml, so every
test runs in a copy of the repo's meltano.yml, never in the repo. The copies share the session's
installed plugins (tests/e2e/conftest.py); each test has its own system database, so its state
starts empty.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import typing as t
from pathlib import Path

import pytest
import yaml

from tests.conftest import KEY, ROOT, SECRET, TOKEN, owners_of, start_gong, tap_config
from tests.gong_standin import GongStandIn, make_world

if t.TYPE_CHECKING:
    from tests.e2e.conftest import MeltanoProject, MeltanoRun, Pipeline

README = (ROOT / "README.md").read_text()
STATE_ID = "dev:tap-gong-flows-to-target-postgres"

# README commands no test here runs, and why. Keys are the commands as the README spells them.
EXCUSED = {
    "bin/demo": "the project's own script; it writes the repo's output/ and .meltano/",
    "bin/setup": "every bin/ script and CI run it first",
    "bin/test": "CI itself (.ci/run) runs it",
    'bin/test -m "not e2e"': "CI itself (.ci/run) runs it on the oldest Python",
    'bin/test -m "not e2e and not slow"': (
        "an example of bin/test's pytest arguments: the whole suite, which CI runs, less the "
        "tests marked e2e or slow"
    ),
    "bin/test -k cursor": "an example of bin/test's pytest arguments",
    "bin/test --ignore=tests/e2e": "an example of bin/test's pytest arguments",
    "bin/test tests/e2e": "an example of bin/test's pytest arguments",
    ".venv/bin/python -m bench.run": "the benchmark, minutes long, run by hand for the figures",
    ".venv/bin/python -m bench.run --repeat 3": "the benchmark as the figures were taken",
    "meltano run": "a name, not a command",
    "meltano config set <plugin> <setting> <value>": "the general form; its instances run",
    "meltano install tap-gong-flows target-postgres": "the meltano_project fixture runs it",
    "tap-gong-flows --about --format=markdown": (
        "tests/test_flows.py keeps the README's settings table equal to its output"
    ),
}


def fenced_lines() -> list[tuple[str, str]]:
    """(command, the `# ...` lines printed under it) of each line of the ```bash blocks."""
    lines: list[tuple[str, str]] = []
    for block in re.findall(r"^```bash\n(.*?)^```", README, re.DOTALL | re.MULTILINE):
        for raw in block.splitlines():
            line = raw.strip()
            if line.startswith("#") and lines:
                command, shown = lines[-1]
                lines[-1] = (command, (shown + "\n" + line[1:].strip()).strip())
            elif line:
                lines.append((line, ""))
    return lines


def readme_commands() -> list[str]:
    """Every command of the README, once each, comments dropped, in the README's order."""
    # A comment in a block starts with " # " (no command of the README has one in its words).
    found = [" ".join(re.sub(r"\s+#\s.*$", "", line).split()) for line, _ in fenced_lines()]
    prose = re.sub(r"^```.*?^```", "", README, flags=re.DOTALL | re.MULTILINE)
    for code in re.findall(r"`([^`]+)`", prose):
        span = " ".join(code.split())
        if re.match(r"(meltano|tap-gong-flows) \S", span) or re.match(r"(bin/|\.venv/bin/)", span):
            found.append(span)
    return list(dict.fromkeys(c for c in found if not c.startswith("export ")))


def commands(pattern: str) -> list[str]:
    """The README's commands, but the excused, that match pattern (a regex); at least one."""
    matching = [c for c in readme_commands() if re.match(pattern, c) and c not in EXCUSED]
    assert matching, f"the README has no command matching {pattern!r} any more"
    return matching


def the_command_line(pattern: str) -> str:
    """The one README command matching pattern."""
    (command,) = commands(pattern)
    return command


def the_command(pattern: str) -> list[str]:
    """The one README command matching pattern, as argv."""
    return shlex.split(the_command_line(pattern))


def readme_exports() -> dict[str, str]:
    """The variables the README's blocks export, with the README's values."""
    exported: dict[str, str] = {}
    for line, _ in fenced_lines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "export":
            exported.update(word.split("=", 1) for word in words[1:])
    return exported


def shown_under(pattern: str) -> str:
    """What the README shows printed under the command matching pattern."""
    (shown,) = [shown for line, shown in fenced_lines() if re.match(pattern, line)]
    return shown


RUN_HERE: list[str] = []  # patterns of the commands the tests below run


def runs(*patterns: str) -> t.Callable[[t.Callable[..., t.Any]], t.Callable[..., t.Any]]:
    """Declare which README commands a test runs, for the completeness check."""
    RUN_HERE.extend(patterns)
    return lambda test: test


# Settings that point at a machine: the stand-in's and the warehouse's values replace the
# README's placeholders. Every other exported value is used as the README writes it.
MACHINE_SETTINGS = re.compile(
    r"TAP_GONG_FLOWS_(API_URL|ACCESS_KEY|ACCESS_KEY_SECRET|ACCESS_TOKEN|FLOW_OWNER_EMAILS)"
    r"|TARGET_POSTGRES_(HOST|PORT|USER|PASSWORD|DATABASE|DEFAULT_TARGET_SCHEMA)"
)


@pytest.fixture(scope="module")
def readme_gong() -> t.Iterator[GongStandIn]:
    # 3 owners, 9 flows each in pages of 5.
    standin = start_gong(make_world(owners=3), page_size=5)
    yield standin
    standin.stop()


def copy_project(folder: Path) -> Path:
    """The repo's meltano.yml in folder, the tap's pip_url pointing at this clone (README)."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (tap,) = [e for e in project["plugins"]["extractors"] if e["name"] == "tap-gong-flows"]
    tap["pip_url"] = f"-e {ROOT}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def installed(meltano_project: MeltanoProject, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The README's `meltano install`: every plugin of meltano.yml, target-jsonl too."""
    folder = copy_project(tmp_path_factory.mktemp("readme-install"))
    for command in commands(r"meltano install$"):
        done = meltano_project.run(*shlex.split(command)[1:], cwd=folder, timeout=600)
        assert done.code == 0, done.explain()


@pytest.fixture
def user(
    installed: None, readme_gong: GongStandIn, pipeline: t.Callable[..., Pipeline], tmp_path: Path
) -> ReadmeUser:
    return ReadmeUser(pipeline(readme_gong), copy_project(tmp_path / "project"))


class ReadmeUser:
    """A user in their own Meltano project, running the README's commands."""

    def __init__(self, pipeline: Pipeline, folder: Path) -> None:
        self.pipeline = pipeline
        self.folder = folder
        exported = readme_exports()
        machine = {k: v for k, v in pipeline.env().items() if MACHINE_SETTINGS.fullmatch(k)}
        unknown = set(exported) - known_variables()
        assert not unknown, f"the README exports variables no plugin reads: {sorted(unknown)}"
        self.env = {
            **pipeline.env(),
            **{k: v for k, v in exported.items() if not MACHINE_SETTINGS.fullmatch(k)},
            **machine,
        }

    def ok(
        self, argv: list[str], answer: str | None = None, env: dict[str, str] | None = None
    ) -> MeltanoRun:
        assert argv[0] == "meltano", argv
        done = self.pipeline.project.run(
            *argv[1:], env=self.env if env is None else env, cwd=self.folder, answer=answer
        )
        assert done.code == 0, done.explain()
        return done

    def dumped_config(self, plugin: str) -> dict[str, t.Any]:
        """The config file Meltano hands the plugin (credentials left out: it prints them)."""
        secrets = re.compile(r"TAP_GONG_FLOWS_ACCESS_\w+|TARGET_POSTGRES_PASSWORD")
        env = {k: v for k, v in self.env.items() if not secrets.fullmatch(k)}
        return json.loads(self.ok(["meltano", "invoke", "--dump=config", plugin], env=env).stdout)


def known_variables() -> set[str]:
    """TAP_GONG_FLOWS_<SETTING> and TARGET_POSTGRES_<SETTING> of meltano.yml's plugins."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    plugins = project["plugins"]["extractors"] + project["plugins"]["loaders"]
    return {
        f"{plugin['name'].replace('-', '_').upper()}_{setting['name'].upper()}"
        for plugin in plugins
        for setting in plugin["settings"]
    }


def shape(value: t.Any) -> t.Any:
    """Keys and value types of a JSON document, not its values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    return type(value).__name__


def test_every_readme_command_is_run_or_excused() -> None:
    run_here = [c for c in readme_commands() if any(re.match(p, c) for p in RUN_HERE)]
    left = [c for c in readme_commands() if c not in run_here and c not in EXCUSED]
    assert len(run_here) >= 15, "the README lost commands, or the patterns no longer match"
    assert not left, f"README commands no test runs; run them here or say why in EXCUSED: {left}"
    stale = [c for c in EXCUSED if c not in readme_commands()]
    assert not stale, f"EXCUSED names commands the README no longer has: {stale}"


@runs(r"meltano config set ")
def test_meltano_config_set_reaches_the_plugins(user: ReadmeUser) -> None:
    for command in commands(r"meltano config set "):
        argv = shlex.split(command)
        plugin, setting, value = argv[3:]
        done = user.ok(argv)

        assert f"'{setting}' was set in `meltano.yml`" in done.stdout + done.stderr
        assert user.dumped_config(plugin)[setting] == json.loads(value)


@runs(r"meltano select ", r"meltano install$", r"meltano run tap-gong-flows target-postgres$")
@runs(r"meltano state ", r"meltano run --full-refresh tap-gong-flows target-postgres$")
def test_production_run_then_its_state(user: ReadmeUser) -> None:
    """Select flows alone, run, then list, read, refresh and clear the state as the README says."""
    user.ok(the_command(r"meltano select tap-gong-flows flows "))
    user.ok(the_command(r"meltano run tap-gong-flows target-postgres$"))
    world = user.pipeline.gong.world
    assert len(user.pipeline.rows()) == sum(len(world.flows_for(o, None)) for o in owners_of(world))
    schema = user.pipeline.schema
    users_table = user.pipeline.warehouse.execute(f"SELECT to_regclass('\"{schema}\".users')")
    assert users_table == "", "meltano select left users selected"
    user.pipeline.record_rows(len(user.pipeline.rows()))

    listed = user.ok(the_command(r"meltano state list"))
    assert STATE_ID in listed.stdout.split()
    get = the_command(r"meltano state get ")
    assert get[-1] == STATE_ID
    state = json.loads(user.ok(get).stdout)
    example = json.loads(shown_under(r"meltano state get "))
    assert shape(state) == shape(example), "the state is not what the README shows"
    assert state["singer_state"]["bookmarks"]["flows"]["last_owner"] is None

    user.ok(the_command(r"meltano run --full-refresh "))
    refreshed = json.loads(user.ok(get).stdout)["singer_state"]["bookmarks"]["flows"]
    assert refreshed["version"] > state["singer_state"]["bookmarks"]["flows"]["version"]

    clear = the_command(r"meltano state clear ")
    assert clear[-1] == STATE_ID
    user.ok(clear)  # no terminal, no answer: --force (without it Meltano says "Aborted!")
    assert STATE_ID not in user.ok(the_command(r"meltano state list")).stdout.split()


@runs(r"meltano select tap-gong-flows flow_steps ", r"meltano select tap-gong-flows flow_def")
def test_selecting_the_steps_streams(user: ReadmeUser) -> None:
    """Flows with its steps and definitions, as the README's select commands say (issue 13)."""
    for stream in ("flows", "flow_steps", "flow_definitions"):
        user.ok(the_command(rf"meltano select tap-gong-flows {stream} "))
    user.ok(the_command(r"meltano run tap-gong-flows target-postgres$"))
    world = user.pipeline.gong.world
    flow_ids = {f["id"] for o in owners_of(world) for f in world.flows_for(o, None)}
    definitions = user.pipeline.rows("flow_definitions")
    assert {r["id"] for r in definitions} == flow_ids
    steps = user.pipeline.rows("flow_steps")
    assert {r["flow_id"] for r in steps} == flow_ids
    schema = user.pipeline.schema
    users_table = user.pipeline.warehouse.execute(f"SELECT to_regclass('\"{schema}\".users')")
    assert users_table == "", "meltano select left users selected"


@runs(r"meltano job add ", r"meltano schedule ", r"meltano run gong-flows$")
def test_job_and_schedule(user: ReadmeUser) -> None:
    user.ok(the_command(r"meltano job add "))
    add = the_command(r"meltano schedule add ")
    user.ok(add)

    listed = user.ok(the_command(r"meltano schedule list")).stdout
    name, interval = add[3], add[add.index("--interval") + 1]
    assert f"[{interval}] job {name}: gong-flows → ['tap-gong-flows target-postgres']" in listed

    user.ok(the_command(r"meltano schedule run "))
    rows = len(user.pipeline.rows())
    assert rows > 0
    user.ok(the_command(r"meltano run gong-flows$"))
    assert len(user.pipeline.rows()) == rows, "a second run upserts the same rows"


def tap_environment(user: ReadmeUser, **variables: str) -> dict[str, str]:
    """A shell's environment: the tap (this venv) and target-jsonl (as Meltano installed it)
    on PATH, no TAP_GONG_FLOWS_ variable but these."""
    base = user.pipeline.project.base_env
    target_bin = user.pipeline.project.sys_dir / ".meltano" / "loaders" / "target-jsonl" / "venv"
    target_bin = target_bin / "bin"
    assert (target_bin / "target-jsonl").exists(), "meltano install did not install target-jsonl"
    return {**base, "PATH": f"{target_bin}{os.pathsep}{base['PATH']}", **variables}


def gong_environment(user: ReadmeUser, **variables: str) -> dict[str, str]:
    """`tap_environment` with every setting a run against the pipeline's stand-in needs."""
    gong = user.pipeline.gong
    return tap_environment(
        user,
        TAP_GONG_FLOWS_API_URL=gong.url,
        TAP_GONG_FLOWS_ACCESS_KEY=KEY,
        TAP_GONG_FLOWS_ACCESS_KEY_SECRET=SECRET,
        TAP_GONG_FLOWS_FLOW_OWNER_EMAILS=json.dumps(owners_of(gong.world)),
        **variables,
    )


def shell(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    for secret in (KEY, SECRET, TOKEN):
        assert secret not in done.stdout + done.stderr, "a secret leaked"
    return done


def readme_json(after: str) -> dict[str, t.Any]:
    """The first ```json block of the README after the text `after`."""
    found = re.search(re.escape(after) + r".*?^```json\n(.*?)^```", README, re.DOTALL | re.M)
    assert found, f"the README has no json block after {after!r}"
    return json.loads(found.group(1))


@runs(
    r"tap-gong-flows --config config\.json \| target-jsonl > state\.json$",
    r"tap-gong-flows --config config\.json --state state\.json \| target-jsonl > next-state",
    r"\[ -s next-state\.json \] && mv next-state\.json state\.json$",
)
def test_the_first_run_and_the_next_without_meltano_as_the_readme_shows(
    user: ReadmeUser, tmp_path: Path
) -> None:
    """In a folder holding only the README's config.json (the stand-in's URL in place of
    Gong's, test credentials in place of the `...`): the first run, stopped by Gong's quota
    within owner 2; a next run that fails on a typo, whose empty file is not kept; then the
    next, from the STATE the target printed, and the `mv`."""
    gong = user.pipeline.gong
    owners = owners_of(gong.world)
    example = readme_json("Write a `config.json`")
    config = {**example, "api_url": gong.url, "access_key": KEY, "access_key_secret": SECRET}
    assert set(config) == set(example), "the README's example names other settings"
    folder = tmp_path / "pipe"  # holds only what the README says to create
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    first, second, move = (
        the_command_line(r"tap-gong-flows --config config\.json \| "),
        the_command_line(r"tap-gong-flows --config config\.json --state state\.json \| "),
        the_command_line(r"\[ -s next-state\.json \] && mv "),
    )
    gong.new_day()
    gong.daily_quota = 1 + 2 + 1  # the users page, owner 1's two pages, owner 2's first
    try:
        stopped = shell(first, tap_environment(user), folder)
    finally:
        gong.daily_quota = None
    assert stopped.returncode == 1, stopped.stderr[-4000:]  # the tap's: bash -o pipefail
    assert "quota is spent" in stopped.stderr
    state = json.loads((folder / "state.json").read_text())
    assert state["bookmarks"]["flows"]["last_owner"] == owners[0]

    # A typo in config.json: the run fails before its first STATE; the state is kept.
    (folder / "config.json").write_text(json.dumps({**config, "max_retrys": 1}))
    assert shell(second, tap_environment(user), folder).returncode == 1
    shell(move, tap_environment(user), folder)  # `[ -s ]` is false: exit 1, nothing moved
    assert json.loads((folder / "state.json").read_text()) == state
    (folder / "config.json").write_text(json.dumps(config))

    gong.reset_log()
    resumed = shell(second, tap_environment(user), folder)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert {r.owner for r in gong.requests if r.owner} == set(owners[1:])
    assert shell(move, tap_environment(user), folder).returncode == 0
    final = json.loads((folder / "state.json").read_text())
    assert final["bookmarks"]["flows"]["last_owner"] is None
    assert not (folder / "next-state.json").exists()
    written = [
        json.loads(line) for f in folder.glob("flows*.jsonl") for line in f.read_text().splitlines()
    ]
    assert {record["flow_owner_email"] for record in written} == set(owners)


@runs(r"tap-gong-flows --config config\.json --test$")
def test_tap_connection_test(user: ReadmeUser, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(tap_config(user.pipeline.gong)))

    command = the_command_line(r"tap-gong-flows --config config\.json --test$")
    done = shell(command, tap_environment(user), tmp_path)

    assert done.returncode == 0, done.stderr[-4000:]
    assert "Connection test passed" in done.stderr
    assert done.stdout == "", "--test writes no Singer message"


@runs(r"tap-gong-flows --config ENV$")
def test_tap_reads_every_setting_from_the_environment(user: ReadmeUser, tmp_path: Path) -> None:
    gong = user.pipeline.gong
    env = gong_environment(user)

    done = shell(the_command_line(r"tap-gong-flows --config ENV$"), env, tmp_path)

    assert done.returncode == 0, done.stderr[-4000:]
    records = [json.loads(line) for line in done.stdout.splitlines()]
    owners = {m["record"]["flow_owner_email"] for m in records if m["type"] == "RECORD"}
    assert owners == set(owners_of(gong.world))


@runs(r"meltano run tap-gong-flows target-jsonl$")
def test_demo_run_into_target_jsonl(user: ReadmeUser) -> None:
    user.ok(the_command(r"meltano run tap-gong-flows target-jsonl$"))

    world = user.pipeline.gong.world
    written = (user.folder / "output" / "flows.jsonl").read_text().splitlines()
    assert len(written) == sum(len(world.flows_for(o, None)) for o in owners_of(world))


def test_tap_reads_a_number_setting_from_the_environment(user: ReadmeUser, tmp_path: Path) -> None:
    env = gong_environment(user, TAP_GONG_FLOWS_MAX_REQUESTS_PER_SECOND="2")

    done = shell(the_command_line(r"tap-gong-flows --config ENV$") + " --test", env, tmp_path)

    assert done.returncode == 0, done.stderr[-4000:]
