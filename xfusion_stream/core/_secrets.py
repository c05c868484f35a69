"""Secrets never reach a log line or a printed result: ``api_key=...`` is masked."""

from __future__ import annotations

import logging
import re

__all__ = ["SecretFilter", "mask_secrets"]

# api_key=..., apikey=..., "api_key": "..." (a JSON dump); the value up to the next
# separator of a URI query, a quote or white space
_SECRET = re.compile(r"""(?i)(api[_-]?key["']?\s*[=:]\s*["']?)[^&\s"',;:)\]]+""")
MASK = "***"


def mask_secrets(text: str) -> str:
    """``text`` with the value of every ``api_key=`` (or ``"api_key": "..."``) masked."""
    return _SECRET.sub(lambda m: m.group(1) + MASK, text)


def _masked(value: object) -> object:
    return mask_secrets(value) if isinstance(value, str) else value


class SecretFilter(logging.Filter):
    """Masks secrets in a record's message and string arguments (keeps their shape:
    uvicorn's access formatter unpacks ``record.args`` as a 5-tuple)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _masked(v) for k, v in record.args.items()}
        return True
