"""Size limits from the project standards: modules stay under ~400 lines (420 with slack),
functions at most 80 lines, across the two packages. A failure names every offender."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("medtrinity_assets", "medtrinity_resources")
MAX_MODULE_LINES = 420
MAX_FUNCTION_LINES = 80


def offenders(root: Path) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            rel = path.relative_to(root).as_posix()
            lines = len(source.splitlines())
            if lines > MAX_MODULE_LINES:
                found.append(f"module {rel}: {lines} lines")
            for node in ast.walk(ast.parse(source, filename=rel)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        found.append(f"function {rel}:{node.lineno} {node.name}: {length} lines")
    return found


def test_modules_and_functions_within_size_limits():
    assert offenders(REPO) == []


def test_size_check_names_an_overlong_function_and_module(tmp_path):
    package = tmp_path / "medtrinity_resources"
    package.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (package / "long.py").write_text(f"def f():\n{body}\n")
    (package / "big.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    assert offenders(tmp_path) == [
        f"module medtrinity_resources/big.py: {MAX_MODULE_LINES + 1} lines",
        f"function medtrinity_resources/long.py:1 f: {MAX_FUNCTION_LINES + 1} lines",
    ]
