"""One way to configure anything: a frozen pydantic model, validated once, errors that say where.

Profiles, scene settings, virtual-experiment options, calibration records and the home
``xfusion.conf`` all go through here, so a scientist always reads the same kind of
message: ``<file or config>: <field.path>: <problem>``, one line per problem, raised as
the project's :class:`ConfigError` (never a bare pydantic ``ValidationError``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ._errors import ConfigError

__all__ = [
    "read_small_text",
    "ConfigModel",
    "format_validation_error",
    "load_config",
    "read_mapping",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

_SCALARS = (str, int, float, bool, type(None))
# pydantic errors whose message already says enough without the offending input
_NO_INPUT = {"missing", "value_error", "assertion_error", "extra_forbidden"}


def _field_path(loc: Sequence[int | str]) -> str:
    """``('datasets', 'd', 'clips', 1)`` -> ``datasets.d.clips[1]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _problem(err: Mapping[str, Any]) -> str:
    if err["type"] == "value_error" and "error" in err.get("ctx", {}):
        return str(err["ctx"]["error"])  # our validators' own words, no "Value error, "
    message = str(err["msg"])
    value = err.get("input")
    if err["type"] not in _NO_INPUT and isinstance(value, _SCALARS):
        message += f" (got {value!r})"
    return message


def format_validation_error(exc: ValidationError, *, source: object) -> str:
    """One ``<source>: <field.path>: <problem>`` line per problem pydantic found.

    A problem of the whole model (a cross-field check) has no field path.
    """
    lines = []
    for err in exc.errors():
        where = f"{source}: {_field_path(err['loc'])}" if err["loc"] else str(source)
        lines.append(f"{where}: {_problem(err)}")
    return "\n".join(lines)


#: The largest configuration-like file read (records, profiles, options: kilobytes).
SMALL_TEXT_LIMIT = 16 << 20


def read_small_text(path: str | os.PathLike[str], what: str = "configuration file") -> str:
    """The UTF-8 text of a small file from outside, or ``ConfigError`` naming it: not a
    regular file (a FIFO would block the reader for ever), larger than a configuration
    file can be, or not UTF-8 text."""
    path = Path(path)
    if not path.is_file():
        kind = "not found" if not path.exists() else "not a regular file"
        raise ConfigError(f"{path}: {what} {kind}")
    size = path.stat().st_size
    if size > SMALL_TEXT_LIMIT:
        raise ConfigError(f"{path}: {size} bytes; a {what} is at most {SMALL_TEXT_LIMIT} bytes")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {what} cannot be read: {exc}") from None


class DuplicateKeyError(ValueError):
    """A mapping names one key twice: which value was meant is anyone's guess."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKeyError(f"the key {key!r} appears twice in one mapping")
        seen[key] = value
    return seen


def _safe_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key given twice in one mapping (safe_load keeps
    the last silently, so a hand-edited value above a forgotten copy does nothing)."""
    import yaml

    class UniqueKeySafeLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
                keys = [k for k in keys if k != "<<"]  # merge keys may repeat
                _unique_pairs([(k, None) for k in keys])
            return super().construct_mapping(node, deep=deep)

    return yaml.load(text, Loader=UniqueKeySafeLoader)  # noqa: S506 - a SafeLoader


def read_mapping(path: str | os.PathLike[str], *, what: str = "configuration file") -> dict:
    """The mapping a YAML (or, by suffix, JSON) file holds; ``ConfigError`` naming the file."""
    import yaml

    path = Path(path)
    text = read_small_text(path, what)
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text, object_pairs_hook=_unique_pairs)
        else:
            data = _safe_yaml(text)
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a {what}") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError(f"{path}: a value cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: (top level): expected a mapping of fields, got {type(data).__name__}"
        )
    return data


def load_config(
    model_cls: type[ModelT],
    data_or_path: Mapping[str, Any] | str | os.PathLike[str],
    *,
    source: object = None,
) -> ModelT:
    """Validate a mapping, or read a YAML/JSON file and validate what it holds.

    ``source`` names the document in messages (default: the file, or the model's name).
    """
    if isinstance(data_or_path, Mapping):
        data: Mapping[str, Any] = data_or_path
        where = model_cls.__name__ if source is None else source
    else:
        data = read_mapping(data_or_path)
        where = Path(data_or_path) if source is None else source
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source=where)) from None


class ConfigModel(BaseModel):
    """Base of every configuration: frozen, unknown keys refused, ``ConfigError`` on bad input.

    Constructing one with keywords raises ``ConfigError`` naming the class and the
    fields; documents go through :func:`load_config`, which names the file instead.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, source=type(self).__name__)) from None

    # Validation (model_validate, a config nested in another) need not go through this
    # __init__: it only changes the error type. Marked as pydantic marks its own, as
    # RootModel does, so nested errors stay field errors of the outer document.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def replace(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` (``model_copy`` would skip validation).

        Fields left at their defaults stay unset, so validators that ask which fields
        were given see the same answer as for the original.
        """
        kept = {name: getattr(self, name) for name in self.model_fields_set}
        return type(self)(**{**kept, **changes})

    @classmethod
    def from_config(cls, other: BaseModel) -> Self:
        """This model's fields read from a richer config that declares them too."""
        return cls(**{name: getattr(other, name) for name in cls.model_fields})
