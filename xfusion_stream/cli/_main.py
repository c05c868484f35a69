"""Entry point: one sub-module per subcommand, each with ``add_arguments`` and ``run``.

``run(args)`` returns a JSON-serialisable dict. Without ``--json`` a few human lines
say what was made, where, and the headline numbers (``_summary``); with ``--json`` the
dict is printed as one JSON line, the only line on stdout. Progress bars go to stderr
either way; ``--quiet`` (alias ``--no-progress``) silences them in every command.
Every long option answers to both spellings (``--model_file`` and ``--model-file``),
and ``--help`` shows every option's default. Errors are one line on stderr, API keys
masked. Exit codes: 0 success; 1 the command ran but its result has ``"ok": false``
(with ``error`` saying why); 2 a user or input error, or a server that cannot be
reached; 3 not implemented.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Sequence

from ..core import XFusionError, mask_secrets, retain_heap_early
from ._logging import command_handler, plain_stderr
from ._summary import summary_lines

# subcommand -> (module under xfusion_stream.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("_init", "write ~/xfusion.conf with the model and data type"),
    "convert": ("_convert", "convert REDS RGB frames to gray-scale training data"),
    "train": ("_train", "train a fusion model (EDVR-STF or SWIN-XVR)"),
    "train_calibration": ("_train_calibration", "train the calibration flow net"),
    "download": ("_download", "download and unpack test data"),
    "calibrate": ("_calibrate", "spatial calibration from G400 grid images"),
    "inference": ("_inference", "fuse a recorded (actual) or virtual experiment"),
    "demo": ("_demo", "simulate, calibrate, acquire and fuse live, end to end"),
    "simulate": ("_simulate", "write a simulated recorded experiment and calibration case"),
    "serve": ("_serve", "fuse raw documents from a 0MQ proxy and publish fused ones"),
    "listen": ("_listen", "print fused runs as they arrive from a 0MQ proxy"),
    "view": ("_view", "live viewer: a web page showing fused frames and plots as they come"),
    "replay": ("_replay", "fuse a stored raw run from Tiled into a new fused run"),
    "reprocess": ("_reprocess", "fuse many stored raw runs from Tiled on Dask workers"),
    "spool": ("_spool", "write runs waiting in a spool folder (fused, raw backups) into Tiled"),
    "bench": ("_bench", "speed against this machine's limit, as ratios (JSON)"),
    "ioc": ("_ioc", "serve both cameras as soft IOCs (caproto) on 127.0.0.1"),
}


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: ...)`` to every option whose help does not say it already
    (a default of None or False means "not given" and is not shown)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.required:
            return text
        if action.default in (None, False, argparse.SUPPRESS):
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text
        return f"{text} (default: %(default)s)"


def add_spellings(parser: argparse.ArgumentParser) -> None:
    """Let every long option answer to both spellings, ``_`` and ``-`` (the original
    XFusion mixes them: ``--model_file`` but ``--dir-lo-convert``)."""
    for action in parser._actions:
        for option in list(action.option_strings):
            if not option.startswith("--"):
                continue
            for other in ("--" + option[2:].replace("_", "-"), "--" + option[2:].replace("-", "_")):
                owner = parser._option_string_actions.get(other)
                if owner is None:
                    parser._option_string_actions[other] = action
                    action.option_strings = [*action.option_strings, other]
                elif owner is not action:
                    raise ValueError(f"{option} and {other} are two different options")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--json`` and ``--quiet``, the same in every command."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the result as one JSON line, the only line on stdout",
    )
    parser.add_argument(
        "--quiet",
        "--no-progress",
        dest="quiet",
        action="store_true",
        help="no progress bars (they go to stderr, also with --json)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xfusion",
        description="Live spatiotemporal fusion for dual-camera radiography",
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"{__package__}.{module_name}")
        p = sub.add_parser(
            name, help=help_text, description=module.__doc__, formatter_class=HelpFormatter
        )
        add_common_arguments(p)
        module.add_arguments(p)
        add_spellings(p)
        p.set_defaults(_module=module)
    return parser


def _connection_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ConnectionError]
    httpx = sys.modules.get("httpx")  # only if a command used it
    if httpx is not None:
        errors.append(httpx.TransportError)
    return tuple(errors)


#: Characters that would break the one-line message or drive the terminal (a newline or
#: an ESC in a file name someone else chose): written as escapes.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _one_line(text: str) -> str:
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    message = _one_line(mask_secrets(message))
    if args.json:
        print(json.dumps({"ok": False, "error": message}))
    print(f"xfusion {args.command}: {message}", file=sys.stderr)
    return code


def _device_error(exc: BaseException) -> XFusionError | None:
    """The project error behind a RunEngine failure: a device whose status failed
    (bluesky's FailedStatus holds the status, the status the device's exception)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, XFusionError):
            return err
        status = err.args[0] if err.args else None
        inner = getattr(status, "exception", None)
        if callable(inner):
            try:
                todo.append(inner(timeout=0))
            except Exception:  # noqa: BLE001 - a status that cannot say why
                pass
        todo.extend([err.__cause__, err.__context__])
    return None


#: what torch's CPU allocator says when an allocation fails
_ALLOCATOR_FAILED = "can't allocate memory"


def _run(args: argparse.Namespace) -> dict | int:
    try:
        return {"ok": True, **(args._module.run(args) or {})}
    except XFusionError as exc:
        return _fail(args, f"error: {exc}", 2)
    except NotImplementedError as exc:
        return _fail(args, f"not implemented yet: {exc}", 3)
    except _connection_errors() as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__  # one line
        return _fail(args, f"error: cannot connect: {why}", 2)
    except MemoryError as exc:  # numpy's "Unable to allocate 636. GiB for an array ..."
        return _fail(args, f"error: not enough memory: {str(exc) or 'an allocation failed'}", 2)
    except Exception as exc:
        if _ALLOCATOR_FAILED in str(exc):  # torch's allocator raises a RuntimeError
            return _fail(args, f"error: not enough memory: {str(exc).splitlines()[0]}", 2)
        inner = _device_error(exc)
        if inner is None:
            raise
        return _fail(args, f"error: {inner}", 2)


def main(argv: Sequence[str] | None = None) -> int:
    # before any thread exists: the heap policy of the thread budget (core._threads)
    retain_heap_early()
    # stderr that is not a terminal gets plain progress lines (no \r, no ANSI codes)
    with plain_stderr():
        return _command(argv)


def _command(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # the RunEngine logs an aborted plan with its traceback; the command's own one-line
    # error already names the cause (XFUSION_DEBUG=1 keeps the traceback)
    bluesky_log = logging.getLogger("bluesky")
    handler = command_handler(args.command, tracebacks=bool(os.environ.get("XFUSION_DEBUG")))
    bluesky_log.addHandler(handler)
    propagate, bluesky_log.propagate = bluesky_log.propagate, False
    try:
        result = _run(args)
    finally:
        bluesky_log.removeHandler(handler)
        bluesky_log.propagate = propagate
    if isinstance(result, int):
        return result
    # a command that ran to the end but whose result is not a success (a fused run that
    # failed or fused nothing) says so with "ok": false and exit code 1
    ok = result["ok"] is True
    if not ok:
        why = result.get("error") or result.get("problem") or "the result is not ok"
        print(mask_secrets(f"xfusion {args.command}: failed: {why}"), file=sys.stderr)
    if args.json:
        print(mask_secrets(json.dumps(result, default=str)))
    else:
        print(mask_secrets("\n".join(summary_lines(args.command, result))))
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
