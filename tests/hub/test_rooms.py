"""The hub and fit rooms stay in place: only the hub client (client.py, and redirects.py, the hooks of its HTTP
client) imports huggingface_hub or httpx; neither room reaches up."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "hearth"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_hub_client_imports_huggingface_hub() -> None:
    def users(libraries: tuple[str, ...]) -> set[str]:
        return {str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                if any(n.split(".")[0] in libraries for n in _imports(p))}

    assert users(("huggingface_hub", "httpx2")) == {"hub/client.py", "hub/redirects.py"}
    assert users(("httpx",)) == {"remote/client.py"}  # remote engines' HTTP, never the hub's


def test_hub_and_fit_do_not_import_higher_rooms() -> None:
    for room in ("hub", "fit"):
        for path in (SRC / room).rglob("*.py"):
            for name in _imports(path):
                parts = name.split(".")
                assert not (parts[0] == "hearth" and len(parts) > 1 and parts[1] in ("service", "server", "cli")), (
                    f"{path.relative_to(SRC)} imports {name}")
    assert not any(n.startswith("hearth.hub") for n in set().union(*(_imports(p) for p in (SRC / "fit").rglob("*.py"))))
