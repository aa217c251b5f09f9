"""Manifests: JSON round trips, and damaged files refused with StoreError."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.errors import StoreError
from hearth.store import ExternalFile, Manifest, Provenance, read_gguf_info
from hearth.store.manifest import read_manifest, write_atomic


@pytest.fixture
def manifest(make_model: Callable[..., Path]) -> Manifest:
    info = read_gguf_info(make_model())
    return Manifest(
        name="tiny:latest", digest="sha256:" + "0" * 64, size=info.file_size, info=info,
        provenance=Provenance(source="import:/x.gguf", license="mit"), parameters={"temperature": 0.5},
        system="Be brief.", external=ExternalFile("/abs/file.gguf", 1, 2, 3),
    )


def test_round_trip(manifest: Manifest) -> None:
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert json.loads(manifest.to_json())["schema_version"] == 1


def _damage(manifest: Manifest, change: Callable[[dict[str, Any]], object]) -> str:
    data = json.loads(manifest.to_json())
    change(data)
    return json.dumps(data)


DAMAGES: dict[str, Callable[[dict[str, Any]], object]] = {
    "schema": lambda d: d.update(schema_version=2),
    "no schema": lambda d: d.pop("schema_version"),
    "digest": lambda d: d.update(digest="sha256:xyz"),
    "name": lambda d: d.update(name="../evil"),
    "size type": lambda d: d.update(size="12"),
    "negative size": lambda d: d.update(size=-1),
    "bool size": lambda d: d.update(size=True),
    "info": lambda d: d.update(info=[]),
    "info field": lambda d: d["info"].update(architecture=7),
    "parameters": lambda d: d.update(parameters=[1]),
    "system": lambda d: d.update(system=3),
    "provenance": lambda d: d.update(provenance="x"),
    "created_at": lambda d: d["provenance"].pop("created_at"),
    "external path": lambda d: d["external"].update(path="relative/file.gguf"),
    "external inode": lambda d: d["external"].update(inode=None),
}


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_damaged_manifest_is_refused(manifest: Manifest, case: str) -> None:
    with pytest.raises(StoreError, match="damaged manifest"):
        Manifest.from_json(_damage(manifest, DAMAGES[case]))


@pytest.mark.parametrize("text", ["", "{", "[]", "null", "\xff", "[" * 100_000, '{"schema_version": 1}'])
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(StoreError):
        Manifest.from_json(text)


def test_read_manifest_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{oops")
    with pytest.raises(StoreError, match="x.json"):
        read_manifest(path)
    with pytest.raises(StoreError):
        read_manifest(tmp_path / "missing.json")


def test_write_atomic_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
