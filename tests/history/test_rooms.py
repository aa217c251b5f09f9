"""history/ and modelfile/ sit below the service: they may use store, chat, types and errors, never above."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "hearth"
FORBIDDEN = {"service", "server", "cli", "engine", "web"}


@pytest.mark.parametrize("path", sorted([*SRC.glob("history/*.py"), *SRC.glob("modelfile/*.py")]),
                         ids=lambda p: str(p.relative_to(SRC)))
def test_history_and_modelfile_import_nothing_above_them(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hearth."):
            assert node.module.split(".")[1] not in FORBIDDEN, f"{path.name} imports {node.module}"
        if isinstance(node, ast.Import):
            assert not any(alias.name.split(".")[0] in {"click", "fastapi", "llama_cpp"} for alias in node.names)
