"""Imports point downward: only the engine imports llama_cpp, only the server the web framework, only the CLI click."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hearth"
RULES = {
    "llama_cpp": {"engine/llama.py"},
    "fastapi": {"server/"},
    "starlette": {"server/"},
    "uvicorn": {"server/", "cli/serve.py"},
    "click": {"cli/"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_framework_imports_stay_in_their_room(path: Path) -> None:
    rel = str(path.relative_to(SRC))
    for module in _imports(path) & set(RULES):
        allowed = RULES[module]
        assert rel in allowed or any(rel.startswith(a) for a in allowed if a.endswith("/")), f"{rel} imports {module}"


def test_lower_rooms_do_not_import_higher_ones() -> None:
    order = ["store", "engine", "chat", "service", "server", "cli"]
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        room = rel.parts[0] if len(rel.parts) > 1 else None
        if room not in order:
            continue
        higher = set(order[order.index(room) + 1:])
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hearth."):
                target = node.module.split(".")[1]
                assert target not in higher, f"{rel} imports hearth.{target}"
