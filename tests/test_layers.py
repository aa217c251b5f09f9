"""Imports point downward, frameworks stay in their rooms, and the surfaces use only the service's door.

Rooms, lowest first: every module of a room may import the shared base and the rooms before it, never one
after it. `server/` and `cli/` are surfaces: they import `hearth.service` (its public names, not its
modules), the base, and their own room; they never reach a model's store, scheduler or worker client.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hearth.service

SRC = Path(__file__).resolve().parents[1] / "src" / "hearth"
RULES = {
    "llama_cpp": {"engine/llama.py"},
    "fastapi": {"server/"},
    "starlette": {"server/"},
    "uvicorn": {"server/", "cli/serve.py"},
    "click": {"cli/"},
}
BASE = {"config", "egress", "errors", "options", "paths", "types", "units"}
ROOMS = ["store", "bundle", "engine", "chat", "history", "documents", "fit", "hub", "remote", "modelfile", "service",
         "web", "server", "cli"]
SURFACES = {"server", "cli"}  # `web` holds only the page's static files, which `server` sends
SURFACE_MAY_IMPORT = BASE | {"service"}
PARTS = {"store", "scheduler", "client", "loaded"}  # the service's insides, off limits to surfaces
FILES = sorted(SRC.rglob("*.py"))


def _room(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _hearth_imports(path: Path) -> list[str]:
    """Every `hearth.…` module `path` imports from."""
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hearth."):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("hearth.")]
    return found


def test_every_room_is_known() -> None:
    rooms = {p.parent.name for p in SRC.glob("*/__init__.py")}
    assert rooms == set(ROOMS), f"add new rooms to ROOMS in their place: {rooms ^ set(ROOMS)}"
    modules = {p.stem for p in SRC.glob("*.py")} - {"__init__", "__main__"}
    assert modules == BASE, f"base modules changed: {modules ^ BASE}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_framework_imports_stay_in_their_room(path: Path) -> None:
    rel = str(path.relative_to(SRC))
    for module in _imports(path) & set(RULES):
        allowed = RULES[module]
        assert rel in allowed or any(rel.startswith(a) for a in allowed if a.endswith("/")), f"{rel} imports {module}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    room = _room(path)
    if room in ("__init__", "__main__"):  # the package's version, and `python -m hearth` (the CLI)
        return
    allowed = set(BASE) if room in BASE else BASE | set(ROOMS[:ROOMS.index(room) + 1])
    if room == "cli":
        allowed.add("server")  # `hearth serve` starts the server
    for module in _hearth_imports(path):
        target = module.split(".")[1]
        assert target in allowed, f"{path.relative_to(SRC)} imports {module} ({room} may use {sorted(allowed)})"


@pytest.mark.parametrize("path", [p for p in FILES if _room(p) in SURFACES], ids=lambda p: str(p.relative_to(SRC)))
def test_surfaces_use_only_the_service_door(path: Path) -> None:
    room = _room(path)
    rel = path.relative_to(SRC)
    for module in _hearth_imports(path):
        parts = module.split(".")
        if parts[1] == room or (room == "cli" and module == "hearth.server"):
            continue
        if room == "server" and module == "hearth.web":  # the page's static files, served as they are
            continue
        assert parts[1] in SURFACE_MAY_IMPORT, f"{rel} imports {module}: go through hearth.service"
        if parts[1] == "service":
            assert module == "hearth.service", f"{rel} imports {module}: use the names hearth.service exports"
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module == "hearth.service":
            for alias in node.names:
                assert alias.name in hearth.service.__all__, f"{rel} imports {alias.name}, not in service.__all__"
        if isinstance(node, ast.Attribute) and node.attr in PARTS:
            # `.store` is also a Responses API field (`body.store`): only the service's store is off limits
            allowed = node.attr == "store" and "service" not in ast.unparse(node.value)
            assert allowed, f"{rel}:{node.lineno} reaches .{node.attr}: ask Hearth instead"


def test_the_door_names_what_it_exports() -> None:
    for name in hearth.service.__all__:
        assert hasattr(hearth.service, name), name
