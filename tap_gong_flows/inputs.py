"""What the command line hands the tap, checked before the tap is built: config files and
variables (--config), the state and the catalog (--state, --catalog).

Each problem is one sentence a person can act on; the tap says it in one line and exits 1.
"""

from __future__ import annotations

import io
import typing as t
from pathlib import Path

from tap_gong_flows.settings import env_problems, json_problem

ENV_PREFIX = "TAP_GONG_FLOWS_"


def config_problems(paths: t.Iterable[str], environ: t.Mapping[str, str]) -> list[str]:
    """Why the --config values cannot be read: a file that cannot be read or is not JSON, or
    (for ENV) a variable singer-sdk would misread."""
    problems: list[str | None] = []
    for path in paths:
        if path == "ENV":
            problems += env_problems(environ, ENV_PREFIX)
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            problems.append(f"Cannot read the config file {path}: {why}.")
            continue
        problems.append(json_problem(text, f"The config file {path}"))
    return [problem for problem in problems if problem]


def json_option(given: t.IO[str], option: str) -> tuple[t.IO[str], str | None, str | None]:
    """The --state or --catalog file read once: (its text to read again, the problem that
    stops the run, a remark for the log). An empty state file is a first run: no STATE was
    kept (`... | target-jsonl > state.json` after a run that printed none)."""
    text = given.read()
    name = getattr(given, "name", option)
    if option == "state" and not text.strip():
        return (
            io.StringIO("{}"),
            None,
            f"The state file {name} is empty: this run starts a new pass.",
        )
    problem = json_problem(text, f"The {option} file {name}")
    if problem:
        return io.StringIO(text), f"{problem} Pass the file a previous run wrote, or none.", None
    return io.StringIO(text), None, None
