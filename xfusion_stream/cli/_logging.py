"""Log lines the CLI writes: one ``xfusion <command>:`` prefix, secrets masked, no colour."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from ..core import SecretFilter


class PrefixFormatter(logging.Formatter):
    """``<time> xfusion <command>: <message>``; a message that already starts with the
    prefix (``app`` names itself for library callers) does not get it twice."""

    def __init__(self, command: str) -> None:
        super().__init__("%(asctime)s %(message)s")
        self.prefix = f"xfusion {command}: "

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        message = record.message
        if not message.startswith(self.prefix):
            message = self.prefix + message
        return f"{record.asctime} {message}"


def command_handler(command: str, stream: TextIO | None = None) -> logging.Handler:
    """A plain-text handler (no ANSI codes, whatever the stream) that masks API keys."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(PrefixFormatter(command))
    handler.addFilter(SecretFilter())
    return handler
