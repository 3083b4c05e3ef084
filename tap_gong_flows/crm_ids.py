"""The CRM ids the flow_instances stream asks Gong about: from the settings, checked once.

Gong cannot list a company's flow instances; `POST /v2/flows/prospects` answers for the CRM ids
it is given. They come from `crm_prospect_ids`, from `crm_prospect_ids_file` (one id a line, so
a warehouse export works as it is) and, in a run that syncs tasks, from the contacts of the flow
tasks the run emitted (streams.py adds those).
"""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

MAX_IDS = 1_000_000
# A CRM id is one token: a space, comma, tab or quote means a line of a CSV or a query's
# decorations, not an id (`psql -Atc` prints bare values).
_NOT_ONE_ID = re.compile(r"[\s,;\"'\ufeff]")


def one_crm_id(text: str) -> bool:
    """Whether `text` is one CRM id: non-empty, no white space, comma, quote or BOM."""
    return bool(text) and not _NOT_ONE_ID.search(text)


def read_ids_file(path: str) -> tuple[list[str], str | None]:
    """(The ids of the file, in its order; the problem that stops the run, or None.)"""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError:
        return [], f"crm_prospect_ids_file {path} is not UTF-8 text: write one CRM id a line."
    except OSError as exc:
        why = exc.strerror or str(exc)
        return [], f"Cannot read crm_prospect_ids_file {path}: {why}."
    ids = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if not one_crm_id(value):
            return [], (
                f"Line {number} of crm_prospect_ids_file {path} is {value[:60]!r}, which is not "
                "one CRM id: write one id a line, with no commas, spaces or quotes (psql -Atc "
                "prints bare values, one a line)."
            )
        ids.append(value)
    return ids, None


def configured_ids(config: t.Mapping[str, t.Any]) -> tuple[list[str], list[str]]:
    """(The configured CRM ids, de-duplicated and sorted; every problem with them.) More
    than MAX_IDS distinct ids is a problem."""
    problems: list[str] = []
    listed = config.get("crm_prospect_ids")
    ids: list[str] = []
    if listed is not None:
        if not isinstance(listed, list):
            problems.append(f"crm_prospect_ids must be a list of CRM ids, got {listed!r}.")
        else:
            bad = [i for i in listed if not isinstance(i, str) or not i.strip()]
            if bad:
                problems.append(
                    f"crm_prospect_ids has entries that are not non-empty strings: {bad[:5]!r}."
                )
            ids = [i.strip() for i in listed if isinstance(i, str) and i.strip()]
    path = config.get("crm_prospect_ids_file")
    if path is not None:
        if not isinstance(path, str) or not path.strip():
            problems.append(f"crm_prospect_ids_file must be a file path, got {path!r}.")
        else:
            from_file, problem = read_ids_file(path.strip())
            if problem:
                problems.append(problem)
            ids += from_file
    distinct = sorted(set(ids))
    if len(distinct) > MAX_IDS:
        problems.append(
            f"More than {MAX_IDS:,} CRM ids are configured (crm_prospect_ids and "
            "crm_prospect_ids_file together): a pass would take longer than Gong's daily quota "
            "allows. Export the prospects of open flows only, or split them between projects."
        )
    return distinct, problems
