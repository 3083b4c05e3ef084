"""What the command line hands the tap, checked before the tap is built: config files and
variables (--config), the state and the catalog (--state, --catalog).

Each problem is one sentence a person can act on; the tap says it in one line and exits 1.
"""

from __future__ import annotations

import io
import json
import typing as t
from pathlib import Path

from tap_gong_flows.settings import closest, env_problems, json_problem
from tap_gong_flows.state import StateShapeError

ENV_PREFIX = "TAP_GONG_FLOWS_"


def config_problems(
    paths: t.Iterable[str], environ: t.Mapping[str, str], known: t.Iterable[str]
) -> list[str]:
    """Why the --config values cannot be read: a file that cannot be read or is not JSON, or
    (for ENV) a variable singer-sdk would misread or that is a typo of a setting's (`known`)."""
    problems: list[str | None] = []
    for path in paths:
        if path == "ENV":
            problems += env_problems(environ, ENV_PREFIX)
            problems += variable_typos(environ, list(known))
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            problems.append(f"Cannot read the config file {path}: {why}.")
            continue
        problems.append(json_problem(text, f"The config file {path}"))
    return [problem for problem in problems if problem]


def variable_typos(environ: t.Mapping[str, str], known: list[str]) -> list[str]:
    """A TAP_GONG_FLOWS_ variable within two edits of a setting's: singer-sdk reads only the
    settings' own names, so a typo'd one is ignored without a word. Meltano's variables with
    two underscores (TAP_GONG_FLOWS__SELECT) are left alone."""
    variables = {f"{ENV_PREFIX}{name.upper()}" for name in known}
    problems = []
    for variable in sorted(v for v in environ if v.startswith(ENV_PREFIX) and v not in variables):
        name = variable[len(ENV_PREFIX) :].lower()
        if not name.startswith("_") and (near := closest(name, known)):
            problems.append(
                f"{variable} is not a setting's variable: did you mean {ENV_PREFIX}{near.upper()}?"
            )
    return problems


def json_option(given: t.IO[str], option: str) -> tuple[t.IO[str], str | None, str | None]:
    """The --state or --catalog file read once: (its text to read again, the problem that
    stops the run, a warning for the log). An empty state file is a first run: no STATE was
    kept (`... | target-jsonl > state.json` after a run that printed none)."""
    name = getattr(given, "name", option)
    try:
        text = given.read()
    except UnicodeDecodeError:
        wrong = f"The {option} file {name} is not UTF-8 text."
        return io.StringIO(""), f"{wrong} Pass the file a previous run wrote, or none.", None
    if option == "state" and not text.strip():
        warning = f"The state file {name} is empty: no STATE was kept, this run starts a new pass."
        return io.StringIO("{}"), None, warning
    problem = json_problem(text, f"The {option} file {name}")
    if problem is None and not isinstance(json.loads(text), dict):
        problem = f"The {option} file {name} is JSON but not an object."
    if problem is not None:
        return io.StringIO(text), f"{problem} Pass the file a previous run wrote, or none.", None
    return io.StringIO(text), None, None


def state_bookmarks(state: object, streams: t.Collection[str]) -> dict[str, t.Any]:
    """The bookmarks of a state this tap wrote; StateShapeError for a state of another shape:
    Meltano's wrapper, no bookmarks object, or bookmarks of streams the tap does not have."""
    if isinstance(state, dict) and "singer_state" in state:
        raise StateShapeError(
            'The state file holds Meltano\'s wrapper {"singer_state": ...}, as `meltano '
            "state get` prints it. Pass the value of singer_state alone (e.g. `meltano state "
            "get ID | jq .singer_state > state.json`), or let `meltano run` pass the state."
        )
    bookmarks = state.get("bookmarks", {}) if isinstance(state, dict) else None
    if not isinstance(bookmarks, dict) or not all(isinstance(b, dict) for b in bookmarks.values()):
        raise StateShapeError(
            "The state is not of this tap's shape: expected "
            '{"bookmarks": {"flows": {"version": ..., "last_owner": ...}}}. Pass a state '
            "written by tap-gong-flows, or none for a full pass."
        )
    if others := sorted(set(bookmarks) - set(streams)):
        raise StateShapeError(
            f"The state has bookmarks for streams this tap does not have ({', '.join(others)})"
            ": it was written by another tap. Pass a state written by tap-gong-flows, or "
            "none for a full pass."
        )
    return bookmarks
