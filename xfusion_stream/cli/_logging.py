"""Log lines the CLI writes: one ``xfusion <command>:`` prefix, secrets masked, no colour,
and no terminal control codes where stderr is a file or a pipe."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TextIO

from ..app._progress import PlainLines, plain_unless_tty
from ..core import SecretFilter


@contextlib.contextmanager
def plain_stderr() -> Iterator[None]:
    """While a command runs, stderr that is not a terminal (a log file, a pipe) goes
    through ``PlainLines``: every progress bar, whichever library draws it (tqdm writes
    to ``sys.stderr``), becomes plain lines, a bar's state every few seconds, with no
    carriage return and no ANSI code. On a terminal nothing changes."""
    original = sys.stderr
    wrapped = plain_unless_tty(original)
    if wrapped is original or not isinstance(wrapped, PlainLines):
        yield
        return
    sys.stderr = wrapped  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.stderr is wrapped:
            sys.stderr = original
        wrapped.close()  # bars drawn from other threads later still go through it


class PrefixFormatter(logging.Formatter):
    """``<time> xfusion <command>: <message>``; a message that already starts with the
    prefix (``app`` names itself for library callers) does not get it twice. With
    ``tracebacks=False`` an exception is summarised on the same line (the command's own
    one-line error says what went wrong; ``XFUSION_DEBUG=1`` brings tracebacks back)."""

    def __init__(self, command: str, *, tracebacks: bool = True) -> None:
        super().__init__("%(asctime)s %(message)s")
        self.prefix = f"xfusion {command}: "
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if self.tracebacks or not record.exc_info:
            return super().format(record)
        exc = record.exc_info[1]
        brief = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return f"{super().format(brief)} ({type(exc).__name__}: {exc})"

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        message = record.message
        if not message.startswith(self.prefix):
            message = self.prefix + message
        return f"{record.asctime} {message}"


def command_handler(
    command: str, stream: TextIO | None = None, *, tracebacks: bool = True
) -> logging.Handler:
    """A plain-text handler (no ANSI codes, whatever the stream) that masks API keys."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(PrefixFormatter(command, tracebacks=tracebacks))
    handler.addFilter(SecretFilter())
    return handler
