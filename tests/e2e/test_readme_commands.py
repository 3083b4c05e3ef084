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

import csv
import json
import os
import re
import shlex
import subprocess
import typing as t
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import yaml

from tests.conftest import KEY, ROOT, SECRET, TOKEN, owners_of, start_gong, tap_config
from tests.gong_standin import GongStandIn, World, add_engage, make_world

if t.TYPE_CHECKING:
    from tests.e2e.conftest import MeltanoProject, MeltanoRun, Pipeline, Warehouse

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
    ".venv/bin/python -m bench.run --part instances": "the benchmark's part 4, minutes long",
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


# A value with a shell variable ("$PWD/...") needs a shell: the worked example's test runs it.
CONFIG_SET = r"meltano config set (?!.*\$)"


@runs(CONFIG_SET)
def test_meltano_config_set_reaches_the_plugins(user: ReadmeUser) -> None:
    for command in commands(CONFIG_SET):
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


def readme_block(after: str, language: str) -> str:
    """The first ```language block of the README after the text `after`."""
    pattern = re.escape(after) + rf".*?^```{language}\n(.*?)^```"
    found = re.search(pattern, README, re.DOTALL | re.M)
    assert found, f"the README has no {language} block after {after!r}"
    return found.group(1)


def readme_json(after: str) -> dict[str, t.Any]:
    """The first ```json block of the README after the text `after`."""
    return json.loads(readme_block(after, "json"))


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


def flow_task_contacts(world: World, owners: t.Iterable[str]) -> set[str]:
    """The CRM ids of the contacts and additional contacts of these owners' FLOW tasks: the
    ids the tap adds to the configured ones (FlowInstancesStream.crm_ids)."""
    user_ids = {u["emailAddress"].lower(): u["id"] for u in world.users if u["emailAddress"]}
    tasks = [task for owner in owners for task in world.tasks[user_ids[owner.lower()]]]
    flow_tasks = [task for task in tasks if task["type"] == "FLOW"]
    return {
        contact["crmId"]
        for task in flow_tasks
        for contact in [task["contact"], *task["additionalContacts"]]
    }


def open_instances(world: World, crm_ids: t.Iterable[str]) -> dict[str, dict[str, t.Any]]:
    """{instance id: instance} of the open instances of these CRM ids, as Gong holds them."""
    wanted = set(crm_ids)
    return {
        i["flowInstanceId"]: dict(i)
        for i in world.instances
        if i["crmProspectId"] in wanted and i["flowInstanceStatus"] in OPEN_STATUSES
    }


OPEN_STATUSES = ("Pending", "Running", "Paused")


def psql_csv(warehouse: Warehouse, url: str, sql: str) -> list[dict[str, str]]:
    """The rows psql prints for sql (as given) at url, in its CSV form: NULL is ''."""
    done = subprocess.run(
        [warehouse.psql, url, "-X", "--csv", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"psql failed on the README's SQL: {done.stderr.strip()}"
    return list(csv.DictReader(done.stdout.splitlines()))


def expected_reply_shares(
    first: dict[str, dict[str, t.Any]], finished: dict[str, str]
) -> list[dict[str, str]]:
    """The README query's rows, as psql prints them, computed from the world: one change row
    for each instance the first run saw open, one more for each that finished since."""
    per_flow: dict[str, list[str]] = {}
    for instance_id, instance in first.items():
        per_flow.setdefault(instance["flowId"], []).append(instance_id)
    rows = []
    for flow_id, instance_ids in per_flow.items():
        ended = [finished[i] for i in instance_ids if i in finished]
        replied = ended.count("FinishedResponse")
        share = Decimal(replied) / len(ended) if ended else None
        rounded = "" if share is None else str(share.quantize(Decimal("0.001"), ROUND_HALF_UP))
        rows.append({
            "flowId": flow_id,
            "instances": str(len(instance_ids)),
            "finished": str(len(ended)),
            "replied": str(replied),
            "reply_share": rounded,
        })  # fmt: skip
    return rows


@runs(
    r'psql "\$WAREHOUSE_URL" -Atc ',
    r'meltano config set tap-gong-flows crm_prospect_ids_file "\$PWD/crm_ids\.txt"$',
    r'meltano select tap-gong-flows tasks "\*"$',
    r"meltano run tap-gong-flows target-postgres$",
)
def test_the_worked_example_exports_crm_ids_then_the_reply_share_per_flow(
    installed: None, pipeline: t.Callable[..., Pipeline], tmp_path: Path
) -> None:
    """The README's worked example ("Who is in which flow"), in a shell in the user's project.
    A CRM table in the warehouse, exported with the README's psql line; the README's config
    set and run; then prospects reply, a second run, and the README's SQL over the changes."""
    world = add_engage(make_world(owners=3), prospects=45)
    # Owners 2 and 3 only: owner 1 holds the tasks of the Company flows' prospects, so some
    # CRM ids come from the warehouse alone.
    synced = owners_of(world)[1:]
    from_tasks = flow_task_contacts(world, synced)
    crm_ids = world.crm_ids()
    in_crm = crm_ids[:36]  # the CRM lacks the last prospects: neither source brings them all
    outside = [i for i in in_crm if i not in from_tasks]
    deleted = {*outside[1:3], sorted(set(in_crm) & from_tasks)[0]}  # one a task brings anyway
    kept = [i for i in in_crm if i not in deleted]
    expected = open_instances(world, {*kept, *from_tasks})
    assert open_instances(world, set(outside[1:3])), "a deleted id has an open instance"
    assert open_instances(world, set(crm_ids[36:]) - from_tasks), "so has an id not in the CRM"

    gong = start_gong(world)
    try:
        user = ReadmeUser(
            pipeline(gong, tap={"flow_owner_emails": synced}), copy_project(tmp_path / "project")
        )
        warehouse = user.pipeline.warehouse
        # The README's SQL reads gong.*: the schema of meltano.yml and of the README's export.
        del user.env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"]
        values = ", ".join(f"('{i}', {str(i in deleted).lower()})" for i in in_crm)
        warehouse.execute(
            "DROP SCHEMA IF EXISTS gong CASCADE; DROP SCHEMA IF EXISTS salesforce CASCADE; "
            "CREATE SCHEMA salesforce; "
            "CREATE TABLE salesforce.contact (id text, is_deleted boolean)"
        )
        # The test's own ids: crm000001 and so on.
        warehouse.execute(f"INSERT INTO salesforce.contact VALUES {values}")  # noqa: S608
        url = (
            f"postgresql://{warehouse.user}:{warehouse.password}@{warehouse.host}:"
            f"{warehouse.port}/{warehouse.database}"
        )
        base = user.pipeline.project.base_env
        env = {
            **base,
            **user.env,
            "PATH": f"{Path(warehouse.psql).parent}{os.pathsep}{base['PATH']}",
            "WAREHOUSE_URL": url,
        }

        select = the_command_line(r'meltano select tap-gong-flows tasks "\*"$')
        for stream in ("tasks", "flow_instances", "flow_instance_changes"):  # "and the same for"
            done = shell(select.replace(" tasks ", f" {stream} "), env, user.folder)
            assert done.returncode == 0, done.stderr[-4000:]
        example = readme_block("A worked example", "bash").splitlines()
        export, config_set, run = example
        assert re.match(r'psql "\$WAREHOUSE_URL" -Atc ', export)
        assert re.match(r"meltano config set tap-gong-flows crm_prospect_ids_file ", config_set)
        assert run == "meltano run tap-gong-flows target-postgres"

        done = shell(export, env, user.folder)
        assert done.returncode == 0, done.stderr[-4000:]
        exported = (user.folder / "crm_ids.txt").read_text()
        assert exported.endswith("\n")
        assert sorted(exported.splitlines()) == sorted(kept), "the ids not deleted, one a line"

        done = shell(config_set, env, user.folder)
        assert done.returncode == 0, done.stderr[-4000:]
        ids_file = str(user.folder / "crm_ids.txt")
        assert user.dumped_config("tap-gong-flows")["crm_prospect_ids_file"] == ids_file
        meltano_yml = yaml.safe_load((user.folder / "meltano.yml").read_text())
        (tap,) = [e for e in meltano_yml["plugins"]["extractors"] if e["name"] == "tap-gong-flows"]
        assert tap["config"]["crm_prospect_ids_file"] == ids_file
        assert tap["select"] == ["tasks.*", "flow_instances.*", "flow_instance_changes.*"]

        done = shell(run, env, user.folder)
        assert done.returncode == 0, done.stderr[-4000:]
        columns = '"flowInstanceId", "crmProspectId", "flowInstanceStatus"'
        loaded = warehouse.rows(f"SELECT {columns} FROM gong.flow_instances")  # noqa: S608
        assert {r["flowInstanceId"] for r in loaded} == set(expected)
        assert len(loaded) == len(expected)
        assert not {r["crmProspectId"] for r in loaded} & (deleted - from_tasks), "a deleted id"
        assert {r["crmProspectId"] for r in loaded} & deleted & from_tasks, "a task's deleted id"
        assert warehouse.execute("SELECT to_regclass('gong.flows')") == "", "flows selected"

        # Two instances of one flow get a reply, one of it and one of another flow none.
        per_flow: dict[str, list[str]] = {}
        for instance_id, instance in sorted(expected.items()):
            per_flow.setdefault(instance["flowId"], []).append(instance_id)
        flows = sorted(per_flow, key=lambda f: (-len(per_flow[f]), f))
        (a1, a2, a3, *_), (b1, *_) = per_flow[flows[0]], per_flow[flows[1]]
        finished = {
            a1: "FinishedResponse",
            a2: "FinishedResponse",
            a3: "FinishedNoReply",
            b1: "FinishedNoReply",
        }
        for instance_id, status in finished.items():
            world.set_status(instance_id, status)

        done = shell(run, env, user.folder)
        assert done.returncode == 0, done.stderr[-4000:]
        sql = readme_block("What the history lets you compute", "sql")
        got = psql_csv(warehouse, url, sql)
        want = expected_reply_shares(expected, finished)
        assert [r["reply_share"] for r in got[:2]] == ["0.667", "0.000"], "ordered by the share"
        assert {r["reply_share"] for r in got[2:]} == {""}, "no finished instance: nulls last"
        by_flow = sorted(want, key=lambda r: r["flowId"])
        assert sorted(got, key=lambda r: r["flowId"]) == by_flow

        # The time in each status, with the README's window expression over seen_at.
        (lead,) = re.findall(r"`(lead\(seen_at\)[^`]*)`", README)
        timed = warehouse.rows(
            f'SELECT "flowInstanceId", status, seen_at, {lead} AS until'  # noqa: S608
            " FROM gong.flow_instance_changes"
        )
        assert len(timed) == len(expected) + len(finished)
        for row in timed:
            ended = row["flowInstanceId"] in finished and not row["status"].startswith("Finished")
            assert (row["until"] is not None) == ended, row
            assert row["until"] is None or row["until"] > row["seen_at"], row
    finally:
        gong.stop()
