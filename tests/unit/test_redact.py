"""SecretRedactor: no configured secret reaches a log line, its arguments or its traceback."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from tap_gong_flows import redact
from tap_gong_flows.redact import MASK, SecretRedactor

KEY = "AKEY-4f1d9c2b7e"
SECRET = "SKEY-b7e0a93c51d4e2f8"


def _raise(exc: BaseException) -> None:
    raise exc


def _inner_then_outer() -> None:
    try:
        _raise(ValueError(f"inner {SECRET}"))
    except ValueError as inner:
        raise RuntimeError(f"outer {KEY}") from inner


def record(msg: object, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = None
    if exc is not None:
        try:
            _raise(exc)
        except BaseException:
            exc_info = sys.exc_info()
    return logging.LogRecord("tap", logging.ERROR, __file__, 1, msg, args or None, exc_info)


def formatted(redactor: SecretRedactor, log_record: logging.LogRecord) -> str:
    assert redactor.filter(log_record) is True  # a redactor masks, it never drops a line
    return logging.Formatter("%(message)s").format(log_record)


def test_secret_in_the_message() -> None:
    line = formatted(SecretRedactor([KEY]), record(f"key is {KEY}, twice {KEY}"))
    assert line == f"key is {MASK}, twice {MASK}"


def test_secret_in_the_arguments() -> None:
    log_record = record("config %s and %r", {"access_key": KEY}, SECRET)
    line = formatted(SecretRedactor([KEY, SECRET]), log_record)
    assert KEY not in line
    assert SECRET not in line
    assert line == f"config {{'access_key': '{MASK}'}} and '{MASK}'"
    assert log_record.args is None


def test_secret_in_an_exception_and_its_cause() -> None:
    try:
        _inner_then_outer()
    except RuntimeError as outer:
        log_record = record("failed", exc=outer)
    line = formatted(SecretRedactor([KEY, SECRET]), log_record)
    assert "Traceback" in line
    assert "ValueError: inner ***" in line
    assert "RuntimeError: outer ***" in line
    assert KEY not in line
    assert SECRET not in line


def test_an_exception_text_already_formatted_is_masked_too() -> None:
    log_record = record("failed", exc=ValueError(SECRET))
    log_record.exc_text = f"Traceback ...\nValueError: {SECRET}"
    line = formatted(SecretRedactor([SECRET]), log_record)
    assert SECRET not in line
    assert line.endswith(f"ValueError: {MASK}")


@pytest.mark.parametrize("short", ["", "a", "ab", "abc"])
def test_short_secrets_are_not_masked(short: str) -> None:
    redactor = SecretRedactor([short])
    assert redactor.secrets == []
    assert redactor.redact("a cab abc abcd") == "a cab abc abcd"


def test_four_characters_are_masked() -> None:
    assert SecretRedactor(["abcd"]).redact("xabcdx") == f"x{MASK}x"


def test_longest_first_masks_a_secret_that_contains_another_whole() -> None:
    redactor = SecretRedactor(["abcd", "abcdefgh", "efgh1234"])
    assert set(redactor.secrets[:2]) == {"abcdefgh", "efgh1234"}
    assert redactor.redact("[abcdefgh]") == f"[{MASK}]"
    assert redactor.redact("[efgh1234]") == f"[{MASK}]"
    assert redactor.redact("[abcd]") == f"[{MASK}]"


def test_duplicates_are_masked_once() -> None:
    assert SecretRedactor([KEY, KEY]).secrets == [KEY]


def test_no_secrets_leaves_the_record_alone() -> None:
    log_record = record("hello %s", "world")
    assert SecretRedactor([]).filter(log_record) is True
    assert log_record.msg == "hello %s"
    assert log_record.args == ("world",)


def test_a_line_without_secrets_is_unchanged() -> None:
    assert formatted(SecretRedactor([KEY]), record("%d flows for %s", 3, "a@b.com")) == (
        "3 flows for a@b.com"
    )


def test_install_adds_one_redactor_per_root_handler() -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    try:
        redact.install([SECRET])
        redact.install([SECRET])  # a second install does not stack filters
        assert sum(isinstance(f, SecretRedactor) for f in handler.filters) == 1
        logging.getLogger("tap_gong_flows.unit").error("auth %s failed", SECRET)
    finally:
        root.removeHandler(handler)
    assert SECRET not in stream.getvalue()
    assert f"auth {MASK} failed" in stream.getvalue()
