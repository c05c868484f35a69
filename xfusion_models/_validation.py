"""How this package words an invalid options file or weights entry.

``xfusion_models`` never imports the stream plugin, so it keeps this one formatter of
its own; the plugin's ``xfusion_stream.core.format_validation_error`` is the other.
"""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["validation_problems"]


def validation_problems(exc: ValidationError) -> str:
    """``field.path: problem`` for each problem pydantic found, joined by ``; ``."""
    problems = []
    for err in exc.errors():
        path = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = err["msg"]
        if err["type"] == "value_error" and "error" in err.get("ctx", {}):
            message = str(err["ctx"]["error"])
        problems.append(f"{path}: {message}")
    return "; ".join(problems)
