"""The one rule for Gong's ids and counts, and how an id is emitted (always as a string)."""

from __future__ import annotations

import math


def is_whole(value: object) -> bool:
    """An int that is not a bool (JSON's true is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def id_problem(value: object, what: str = "record") -> str:
    """Why `value` is not an id, or "" when it is: a non-empty string, or a finite number."""
    if (isinstance(value, str) and value) or is_whole(value):
        return ""
    if isinstance(value, float) and math.isfinite(value):
        return ""
    return f"a {what} whose 'id' is not a string or a number ({value!r}); every {what} needs one"


def record_id(value: str | float) -> str:
    """An id as the schema has it, a string: Gong's ids are numbers in strings, and one sent as
    a JSON number must still compare equal to the same id sent as a string."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
