"""ModelStore: import, list, get, copy, create, remove, garbage collection and crash safety."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

import hearth
from hearth.errors import (
    ConflictError,
    InvalidModelFileError,
    InvalidNameError,
    InvalidOptionError,
    NotFoundError,
    StoreError,
)
from hearth.store import ModelStore, blobs
from hearth.store.lock import StoreLock

SRC = str(Path(hearth.__file__).resolve().parents[1])
Factory = Callable[..., Path]


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _blob_files(home: Path) -> list[str]:
    folder = home / "blobs"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_import_list_get_remove_round_trip(store: ModelStore, home: Path, make_model: Factory) -> None:
    source = make_model()
    imported = store.import_file(source, "Tiny")
    assert imported.name == "tiny:latest"
    assert imported.digest == _sha256(source)
    assert imported.size == source.stat().st_size
    assert imported.info.architecture == "llama"
    assert imported.provenance.source == f"import:{source}"
    assert imported.provenance.license == "mit"
    datetime.fromisoformat(imported.provenance.created_at)
    assert imported.parameters == {}
    assert (imported.system, imported.template, imported.external) == (None, None, None)

    assert [m.name for m in store.list()] == ["tiny:latest"]
    assert store.get("tiny") == imported
    path = store.model_path(imported)
    assert path == home / "blobs" / ("sha256-" + imported.digest[7:])
    assert path.read_bytes() == source.read_bytes()
    assert (home / "manifests" / "tiny" / "latest.json").is_file()

    assert store.remove("tiny:latest") == imported
    assert store.list() == []
    assert _blob_files(home) == []
    assert not (home / "manifests" / "tiny").exists()
    assert source.exists()
    with pytest.raises(NotFoundError):
        store.get("tiny")


def test_folders_are_private(store: ModelStore, home: Path, make_model: Factory) -> None:
    store.import_file(make_model(), "user/model:v1")
    for folder in (home, home / "blobs", home / "manifests", home / "manifests" / "user" / "model"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_not_found_has_a_hint(store: ModelStore) -> None:
    with pytest.raises(NotFoundError) as caught:
        store.get("missing")
    assert "hearth list" in (caught.value.hint or "") and "hearth import" in (caught.value.hint or "")


def test_names_are_sorted(store: ModelStore, make_model: Factory) -> None:
    source = make_model()
    for name in ["zeta", "alpha:2", "hf.co/o/r:q4", "alpha:1"]:
        store.import_file(source, name)
    assert [m.name for m in store.list()] == ["alpha:1", "alpha:2", "hf.co/o/r:q4", "zeta:latest"]


def test_conflict_and_replace(store: ModelStore, home: Path, make_model: Factory) -> None:
    first, second = make_model(seed=1), make_model(seed=2)
    store.import_file(first, "m")
    with pytest.raises(ConflictError):
        store.import_file(second, "m")
    replaced = store.import_file(second, "m", replace=True)
    assert store.get("m").digest == replaced.digest == _sha256(second)
    assert _blob_files(home) == ["sha256-" + replaced.digest[7:]]  # the old blob was collected


def test_invalid_file_writes_nothing(store: ModelStore, home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(InvalidModelFileError):
        store.import_file(bad, "bad")
    assert _blob_files(home) == []
    assert store.list() == []


def test_shared_blob_survives_removal_of_one_name(store: ModelStore, home: Path, make_model: Factory) -> None:
    original = store.import_file(make_model(), "base")
    copied = store.copy("base", "other:tag")
    assert copied.digest == original.digest and copied.name == "other:tag"
    assert len(_blob_files(home)) == 1
    store.remove("base")
    assert store.model_path(store.get("other:tag")).is_file()
    store.remove("other:tag")
    assert _blob_files(home) == []


def test_same_file_twice_is_stored_once(store: ModelStore, home: Path, make_model: Factory) -> None:
    source = make_model()
    store.import_file(source, "a")
    store.import_file(source, "b")
    assert len(_blob_files(home)) == 1


def test_copy_errors(store: ModelStore, make_model: Factory) -> None:
    store.import_file(make_model(), "a")
    store.import_file(make_model(), "b")
    with pytest.raises(NotFoundError):
        store.copy("nope", "c")
    with pytest.raises(ConflictError):
        store.copy("a", "b")
    with pytest.raises(InvalidNameError):
        store.copy("a", "../c")


def test_create_derived_model(store: ModelStore, home: Path, make_model: Factory) -> None:
    base = store.import_file(make_model(), "base")
    parameters = {"temperature": 1.5, "stop": ["Arr"], "num_thread": 4}
    derived = store.create("pirate", "base", parameters=parameters, system="Talk like a pirate.")
    assert derived.digest == base.digest
    assert derived.parameters == {"temperature": 1.5, "stop": ["Arr"]}
    assert (derived.system, derived.template) == ("Talk like a pirate.", None)
    assert derived.provenance.base == "base:latest"
    again = store.create("pirate2", "pirate", parameters={"temperature": 0.8}, template="{{ x }}")
    assert again.parameters == {"temperature": 0.8, "stop": ["Arr"]}
    assert (again.system, again.template) == ("Talk like a pirate.", "{{ x }}")
    store.remove("base")
    assert store.model_path(store.get("pirate")).is_file()
    assert len(_blob_files(home)) == 1


def test_create_validates_its_inputs(store: ModelStore, make_model: Factory) -> None:
    store.import_file(make_model(), "base")
    with pytest.raises(InvalidOptionError):
        store.create("x", "base", parameters={"temperature": "hot"})
    with pytest.raises(InvalidOptionError):
        store.create("x", "base", parameters={"no_such_option": 1})
    with pytest.raises(NotFoundError):
        store.create("x", "missing")
    with pytest.raises(ConflictError):
        store.create("base", "base")
    assert [m.name for m in store.list()] == ["base:latest"]


def test_link_shares_the_inode(store: ModelStore, make_model: Factory) -> None:
    source = make_model()
    manifest = store.import_file(source, "linked", link=True)
    assert store.model_path(manifest).stat().st_ino == source.stat().st_ino


def test_link_falls_back_to_copy(
    store: ModelStore, make_model: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(blobs.os, "link", cross_device)
    source = make_model()
    manifest = store.import_file(source, "copied", link=True)
    path = store.model_path(manifest)
    assert path.stat().st_ino != source.stat().st_ino
    assert path.read_bytes() == source.read_bytes()


def test_missing_or_damaged_blob_is_a_store_error(store: ModelStore, make_model: Factory) -> None:
    manifest = store.import_file(make_model(), "m")
    path = store.model_path(manifest)
    path.write_bytes(path.read_bytes()[:-1] + b"\x7f")  # same size, different content
    with pytest.raises(StoreError, match="hash check"):
        store.verify("m")
    path.write_bytes(b"short")
    with pytest.raises(StoreError, match="wrong size"):
        store.model_path(manifest)
    path.unlink()
    with pytest.raises(StoreError, match="missing"):
        store.model_path(manifest)


def test_hostile_names_create_nothing_outside_the_home(
    store: ModelStore, home: Path, tmp_path: Path, make_model: Factory
) -> None:
    source = make_model()
    before = sorted(p for p in tmp_path.rglob("*") if home not in p.parents and p != home)
    hostile = ["../x", "/etc/passwd", "a/../../b", "x\x00y", "n" * 300, "..", "a\\b", "con:tag:extra", "",
               " ", "ｍodel", "../../../../tmp/pwn", "a/b/c/d:e"]
    for name in hostile:
        with pytest.raises(InvalidNameError):
            store.import_file(source, name)
        with pytest.raises(InvalidNameError):
            store.get(name)
        with pytest.raises(InvalidNameError):
            store.remove(name)
    after = sorted(p for p in tmp_path.rglob("*") if home not in p.parents and p != home)
    assert before == after
    assert store.list() == [] and _blob_files(home) == []


def test_symlinked_manifest_folder_cannot_lead_outside(
    store: ModelStore, home: Path, tmp_path: Path, make_model: Factory
) -> None:
    store.import_file(make_model(), "first")
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "manifests" / "evil").symlink_to(outside)
    with pytest.raises(InvalidNameError):
        store.import_file(make_model(), "evil")
    assert list(outside.iterdir()) == []


def test_corrupt_manifest_is_skipped_and_reported(store: ModelStore, home: Path, make_model: Factory) -> None:
    store.import_file(make_model(seed=1), "good")
    broken = store.import_file(make_model(seed=2), "broken")
    path = home / "manifests" / "broken" / "latest.json"
    path.write_text(path.read_text()[:300])  # cut short, but the digest is still there
    assert [m.name for m in store.list()] == ["good:latest"]
    assert len(store.problems) == 1 and "broken" in store.problems[0]
    with pytest.raises(StoreError):
        store.get("broken")
    store.remove("good")  # its blob goes; the damaged manifest's blob stays
    assert _blob_files(home) == ["sha256-" + broken.digest[7:]]


def test_unreadable_manifest_stops_collection(store: ModelStore, home: Path, make_model: Factory) -> None:
    store.import_file(make_model(seed=1), "good")
    store.import_file(make_model(seed=2), "broken")
    (home / "manifests" / "broken" / "latest.json").write_text("{not json")
    store.remove("good")  # any blob might be the damaged manifest's, so none is collected
    assert len(_blob_files(home)) == 2


def test_misplaced_manifests_are_skipped(store: ModelStore, home: Path, make_model: Factory) -> None:
    manifest = store.import_file(make_model(), "real")
    text = manifest.to_json()
    (home / "manifests" / "copy").mkdir()
    (home / "manifests" / "copy" / "latest.json").write_text(text)  # says "real:latest"
    (home / "manifests" / "stray.json").write_text(text)  # no tag folder
    (home / "manifests" / "real" / ".tmp-abc").write_text(text[:10])  # a killed writer's temp file
    (home / "manifests" / "real" / "Bad Name.json").write_text(text)
    assert [m.name for m in store.list()] == ["real:latest"]
    assert len(store.problems) == 3


def test_interrupted_copy_leaves_nothing(
    store: ModelStore, home: Path, make_model: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(source: object, target: object) -> None:
        target.write(source.read(512))  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(blobs, "copy_and_hash", failing)
    with pytest.raises(KeyboardInterrupt):
        store.import_file(make_model(), "victim")
    assert store.list() == []
    assert _blob_files(home) == []


def _run_killed(home: Path, script: str, *args: str) -> None:
    code = f"import sys; sys.path.insert(0, {SRC!r})\n" + script
    result = subprocess.run([sys.executable, "-c", code, *args], env={**os.environ, "HEARTH_HOME": str(home)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == -9, result.stderr


KILL_MID_COPY = """
import os, signal
from hearth.store import ModelStore, blobs, bundled
bundled.locate = lambda: None
def killed(source, target):
    target.write(source.read(1000)); target.flush(); os.kill(os.getpid(), signal.SIGKILL)
blobs.copy_and_hash = killed
ModelStore().import_file(sys.argv[1], "victim")
"""

KILL_BEFORE_MANIFEST = """
import os, signal
from hearth.store import ModelStore, bundled
bundled.locate = lambda: None
ModelStore._write = lambda self, manifest: os.kill(os.getpid(), signal.SIGKILL)
ModelStore().import_file(sys.argv[1], "victim")
"""


def test_killed_import_mid_copy(store: ModelStore, home: Path, make_model: Factory) -> None:
    _run_killed(home, KILL_MID_COPY, str(make_model(seed=1)))
    assert any(name.startswith(".tmp-") for name in _blob_files(home))  # what the dead process left
    assert store.list() == []
    kept = store.import_file(make_model(seed=2), "next")
    assert _blob_files(home) == ["sha256-" + kept.digest[7:]]


def test_killed_import_before_manifest(store: ModelStore, home: Path, make_model: Factory) -> None:
    _run_killed(home, KILL_BEFORE_MANIFEST, str(make_model(seed=1)))
    assert len(_blob_files(home)) == 1  # complete blob, but no manifest names it
    assert store.list() == []
    kept = store.import_file(make_model(seed=2), "next")
    assert _blob_files(home) == ["sha256-" + kept.digest[7:]]


def test_gc_reports_what_it_removed(store: ModelStore, home: Path, make_model: Factory) -> None:
    store.import_file(make_model(), "m")
    orphan = home / "blobs" / ("sha256-" + "1" * 64)
    orphan.write_bytes(b"x")
    (home / "blobs" / "sha256-notadigest").write_bytes(b"x")
    (home / ".tmp-marker").write_bytes(b"x")
    assert store.gc() == ["sha256:" + "1" * 64]
    assert (home / "blobs" / "sha256-notadigest").exists()
    assert not (home / ".tmp-marker").exists()


def test_writers_wait_for_the_lock(store: ModelStore, home: Path, make_model: Factory) -> None:
    store.import_file(make_model(), "m")
    script = (f"import sys; sys.path.insert(0, {SRC!r})\n"
              "from hearth.store import ModelStore, bundled\nbundled.locate = lambda: None\n"
              "ModelStore().copy('m', 'm2')\n")
    with StoreLock(home / ".lock"):
        child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "HEARTH_HOME": str(home)})
        time.sleep(1.0)
        assert child.poll() is None, "the copy ran while another writer held the lock"
        assert [m.name for m in store.list()] == ["m:latest"]
    assert child.wait(timeout=30) == 0
    assert [m.name for m in store.list()] == ["m2:latest", "m:latest"]


def test_manifest_json_is_readable(store: ModelStore, home: Path, make_model: Factory) -> None:
    store.import_file(make_model(), "m")
    data = json.loads((home / "manifests" / "m" / "latest.json").read_text())
    assert data["info"]["context_length"] == 256
    assert data["provenance"]["license"] == "mit"
