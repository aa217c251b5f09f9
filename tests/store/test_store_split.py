"""Split GGUF models in the store: imported from their first part, checked to belong together, one model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hearth.errors import InvalidModelFileError, StoreError
from hearth.store import ModelStore, read_gguf_info
from hearth.store.split import set_id
from tests.store.split_samples import copy_set, write_split


def test_the_first_part_imports_the_whole_set_as_one_model(store: ModelStore, smol_split: list[Path],
                                                          bundled_model: Path) -> None:
    manifest = store.import_file(smol_split[0], "smol-split")
    assert [p.size for p in manifest.parts] == [p.stat().st_size for p in smol_split]
    assert manifest.digest == manifest.parts[0].digest and manifest.size == sum(p.size for p in manifest.parts)
    whole = read_gguf_info(bundled_model)
    assert manifest.info.parameter_count == whole.parameter_count
    assert manifest.info.tensor_count == whole.tensor_count and manifest.info.architecture == "llama"
    path = store.model_path(manifest)
    assert path.name == "model-00001-of-00003.gguf" and path.parent.name == set_id(manifest.digests)
    for number, part in enumerate(manifest.parts, start=1):
        link = path.with_name(f"model-{number:05d}-of-00003.gguf")
        assert os.path.samefile(link, store.blobs.path(part.digest))
    assert store.verify("smol-split").parts == manifest.parts
    assert store.get("smol-split") == manifest  # the parts survive the JSON round trip


def test_a_later_part_is_refused_naming_the_first(store: ModelStore, smol_split: list[Path]) -> None:
    with pytest.raises(InvalidModelFileError) as caught:
        store.import_file(smol_split[1], "x")
    assert "part 2 of a model split into 3 files" in caught.value.message
    assert "-00001-of-00003.gguf" in caught.value.message
    assert store.list() == [] and list(store.blobs.digests()) == []


def test_a_missing_part_is_refused_and_nothing_is_kept(store: ModelStore, smol_split: list[Path],
                                                       tmp_path: Path) -> None:
    parts = copy_set(smol_split, tmp_path / "incomplete")
    parts[2].unlink()
    with pytest.raises(InvalidModelFileError) as caught:
        store.import_file(parts[0], "x")
    assert "SmolLM2-135M-Instruct-Q4_1-00003-of-00003.gguf is not beside it" in caught.value.message
    assert caught.value.hint and store.list() == [] and list(store.blobs.digests()) == []


def test_a_part_from_another_split_is_refused(store: ModelStore, smol_split: list[Path], bundled_model: Path,
                                              tmp_path: Path) -> None:
    other = write_split(bundled_model, tmp_path / "other", "SmolLM2-135M-Instruct-Q4_1", 120)  # 120+120+32
    parts = copy_set(smol_split, tmp_path / "mixed")
    shutil.copy2(other[1], parts[1])  # the same name, from another split of the same model
    with pytest.raises(InvalidModelFileError) as caught:
        store.import_file(parts[0], "x")
    assert "SmolLM2-135M-Instruct-Q4_1-0000" in caught.value.message
    assert "same split of the same model" in (caught.value.hint or "")
    assert store.list() == [] and list(store.blobs.digests()) == []


def test_copy_and_remove_treat_the_set_as_one(store: ModelStore, smol_split: list[Path]) -> None:
    original = store.import_file(smol_split[0], "a")
    copied = store.copy("a", "b")
    assert copied.parts == original.parts and store.model_path(copied) == store.model_path(original)
    store.remove("a")
    assert store.blobs.digests() == set(original.digests)
    assert store.model_path(store.get("b")).is_file()
    store.remove("b")
    assert store.blobs.digests() == set() and store.list() == []
    assert not (store.sets_root / set_id(original.digests)).exists()


def test_a_lost_set_folder_is_rebuilt_and_a_damaged_part_is_found(store: ModelStore, smol_split: list[Path]) -> None:
    manifest = store.import_file(smol_split[0], "a", link=True)
    shutil.rmtree(store.sets_root)
    assert store.model_path(manifest).is_file()  # the links are made again from the blobs
    blob = store.blobs.path(manifest.parts[2].digest)
    blob.unlink()
    with pytest.raises(StoreError) as caught:
        store.model_path(manifest)
    assert "a part of a:latest is missing" in caught.value.message and "hearth rm" in (caught.value.hint or "")


def test_a_modelfile_from_a_split_part_is_refused_with_the_way_round(store: ModelStore,
                                                                    smol_split: list[Path]) -> None:
    with pytest.raises(InvalidModelFileError) as caught:
        store.create("persona", smol_split[0], system="Be brief.")
    assert "split model" in caught.value.message and "hearth import" in (caught.value.hint or "")
