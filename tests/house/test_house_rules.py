"""House rules that a reviewer would otherwise check by eye (STYLE.md, issue 9)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("xfusion_stream", "xfusion_models", "plans", "profiles")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    return sorted(p for d in PRODUCTION for p in (ROOT / d).rglob("*.py"))


def test_modules_stay_short():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_functions_fit_a_screen():
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_package_root_shows_the_layers():
    """Loose modules at the root hide which layer they belong to."""
    loose = sorted(p.name for p in (ROOT / "xfusion_stream").glob("*.py"))
    assert len(loose) <= 4, loose


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_ships():
    """The wheel lists its packages by hand: a new folder must not be left out."""
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for root in ("xfusion_stream", "xfusion_models")
        for init in (ROOT / root).rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)


@pytest.mark.parametrize("root", ["xfusion_stream"])
def test_layers_contract_names_every_folder(root):
    contracts = _pyproject()["tool"]["importlinter"]["contracts"]
    layered = next(c for c in contracts if c.get("containers") == [root])
    named = {part.strip() for layer in layered["layers"] for part in layer.split("|")}
    folders = {p.parent.name for p in (ROOT / root).glob("*/__init__.py")}
    modules = {p.stem for p in (ROOT / root).glob("*.py") if p.stem != "__init__"}
    assert folders | modules <= named, sorted((folders | modules) - named)
    assert layered.get("exhaustive") is True
