"""Bundles carry models whole: export, import, again (nothing changes), split blobs and split models."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from hearth.bundle import read_index
from hearth.bundle.index import INCOMPLETE, portable
from hearth.options import parse_options
from hearth.service import Hearth
from tests.bundle.conftest import TERSE, service_on
from tests.conftest import HEARTH, cli_env

QUESTION = "What is the capital of France? Answer in one word."


def bundle_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_a_bundle_lists_every_file_with_its_checksum_in_portable_names(pristine: Path) -> None:
    index = read_index(pristine)
    assert bundle_files(pristine) == set(index.files) | {"BUNDLE.json"}
    assert not (pristine / INCOMPLETE).exists()
    assert not any(p.is_symlink() for p in pristine.rglob("*"))
    for rel in index.files:
        portable(rel)  # raises for a name a FAT32 or exFAT stick would refuse
        assert rel.isascii() and ":" not in rel
    assert [m.name for m in index.models] == ["smol:blob", "terse:latest"]
    blob = index.models[0].blobs
    assert blob == index.models[1].blobs, "the persona shares its base model's weights, written once"
    assert sum(1 for rel in index.files if rel.startswith("models/blobs/")) == 1
    assert "License: apache-2.0" in (pristine / index.models[0].license).read_text()


def test_export_then_import_round_trip(source: Hearth, pristine: Path, target: Hearth, home: Path) -> None:
    assert target.list_models() == []
    result = target.import_bundle(pristine)
    assert sorted(m.name for m in result.added) == ["smol:blob", "terse:latest"]
    assert [m.name for m in target.list_models()] == ["smol:blob", "terse:latest"]
    for name in ("smol:blob", "terse"):
        mine, theirs = target.show(name), source.show(name)
        assert (mine.digest, mine.system, mine.parameters, mine.size) == (
            theirs.digest, theirs.system, theirs.parameters, theirs.size)
        target.store.verify(name)  # re-hashes the imported weights in full
    assert target.show("terse").system == TERSE
    answer = target.generate("smol:blob", QUESTION, parse_options({"temperature": 0, "num_predict": 16})).consume()
    assert "Paris" in answer.text


def test_importing_the_same_bundle_twice_is_a_no_op(pristine: Path, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "cli-home")
    first = subprocess.run([HEARTH, "bundle", "import", str(pristine)], capture_output=True, text=True, env=env,
                           timeout=120, check=False)
    assert first.returncode == 0, first.stderr
    assert "imported 'smol:blob'" in first.stdout and "imported 'terse:latest'" in first.stdout
    manifests = sorted((tmp_path / "cli-home" / "manifests").rglob("*.json"))
    before = {p: p.stat().st_mtime_ns for p in manifests}
    second = subprocess.run([HEARTH, "bundle", "import", str(pristine)], capture_output=True, text=True, env=env,
                            timeout=120, check=False)
    assert second.returncode == 0, second.stderr
    assert "imported" not in second.stdout
    assert "'smol:blob' is already here" in second.stdout
    assert "nothing to import" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in manifests} == before


def test_a_split_blob_is_reassembled_and_verified(source: Hearth, target: Hearth, tmp_path: Path) -> None:
    part = 8 << 20
    folder = tmp_path / "split-bundle"
    source.export_bundle(folder, ["smol:blob"], wheels=False, part_size=part)
    index = read_index(folder)
    (pieces,) = index.models[0].blobs.values()
    size = source.show("smol:blob").size
    assert len(pieces) == -(-size // part) == 12
    assert [p.rsplit(".", 1)[1] for p in pieces] == [f"part{n:03d}" for n in range(1, 13)]
    assert all(index.files[p].size == part for p in pieces[:-1])
    assert sum(index.files[p].size for p in pieces) == size
    assert all((folder / p).stat().st_size <= part for p in pieces)
    target.import_bundle(folder)
    assert target.store.verify("smol:blob").digest == source.show("smol:blob").digest


def test_a_split_model_travels_with_every_part(tmp_path: Path, bundled_model: Path, target: Hearth) -> None:
    from tests.store.split_samples import write_split

    parts = write_split(bundled_model, tmp_path / "parts", "SmolLM2-135M-Instruct-Q4_1", 100)
    origin = service_on(tmp_path / "origin-home")
    try:
        origin.import_file(parts[0], "smol:split")
        folder = tmp_path / "bundle"
        origin.export_bundle(folder, ["smol:split"], wheels=False, part_size=16 << 20)
        index = read_index(folder)
        assert len(index.models[0].blobs) == len(parts) == 3
        result = target.import_bundle(folder)
        imported = target.store.verify("smol:split")
        assert [m.name for m in result.added] == ["smol:split"]
        assert imported.parts == origin.show("smol:split").parts
        first = target.store.model_path(imported)
        assert first.name == "model-00001-of-00003.gguf" and os.path.samefile(
            first, target.store.blobs.path(imported.parts[0].digest))
    finally:
        origin.close()


def test_export_over_a_finished_bundle_replaces_it(source: Hearth, pristine: Path, tmp_path: Path) -> None:
    folder = Path(tmp_path / "again")
    source.export_bundle(folder, ["smol:blob", "terse"], wheels=False)
    (folder / "install").write_text("from an export with wheels")
    report = source.export_bundle(folder, ["terse"], wheels=False)
    index = read_index(folder)
    assert [m.name for m in index.models] == ["terse:latest"] == [m.name for m in report.models]
    assert bundle_files(folder) == set(index.files) | {"BUNDLE.json"}, "files of the first export are gone"
    assert json.loads((folder / "BUNDLE.json").read_text())["models"][0]["name"] == "terse:latest"


@pytest.mark.parametrize("name", ["a:b", "CON.txt", "caf\u00e9.gguf", "dot.", ".hidden", "x/../y"])
def test_names_a_usb_stick_refuses_are_refused(name: str) -> None:
    from hearth.errors import BundleError

    with pytest.raises(BundleError):
        portable(name)
