"""Singer message output: msgspec encoding, one write per buffer of records, not per record."""

from __future__ import annotations

import atexit
import contextlib
import io
import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message


class BufferedMsgSpecWriter(MsgSpecWriter):
    """Buffers RECORD messages and flushes at every other message.

    singer-sdk's writer flushes stdout after each message: a write call per record. Flushing at
    STATE (and SCHEMA, ACTIVATE_VERSION) still hands the target every record before the STATE
    that covers it, so a crash never leaves a STATE ahead of its records.
    """

    def __init__(self) -> None:
        super().__init__()
        self._out: t.BinaryIO | None = None
        self._for: object = None  # the sys.stdout that _out writes to
        atexit.register(self.flush)

    def _stdout(self) -> t.BinaryIO | None:
        """Our own buffer on stdout's file (-u / PYTHONUNBUFFERED make sys.stdout write through);
        None when stdout is not a file, as under a test runner's capture."""
        if self._for is not sys.stdout:
            self.flush()
            self._for, self._out = sys.stdout, None
            with contextlib.suppress(AttributeError, OSError, io.UnsupportedOperation):
                fileno = sys.stdout.fileno()
                self._out = open(fileno, "wb", buffering=1 << 16, closefd=False)  # noqa: SIM115
        return self._out

    @override
    def write_message(self, message: Message) -> None:
        out = self._stdout()
        if out is None:
            super().write_message(message)
            return
        out.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            out.flush()

    def flush(self) -> None:
        # BrokenPipeError: the target went away; ValueError: stdout is closed. Nothing to hand over.
        with contextlib.suppress(BrokenPipeError, ValueError):
            if self._out is not None:
                self._out.flush()
