"""Models other tools keep, used without a second copy: fake Ollama, Hugging Face cache and LM Studio folders."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import gguf
import pytest

from hearth.store import ModelStore, bundled
from hearth.store.importers import detect_kind, find, import_from
from tests.conftest import HEARTH, cli_env
from tests.store.store_samples import write_tiny_model


@pytest.fixture
def store(home: Path, monkeypatch: pytest.MonkeyPatch) -> ModelStore:
    monkeypatch.setattr(bundled, "locate", lambda: None)
    return ModelStore()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ollama_folder(root: Path, models: dict[str, Path], *, projector: bool = False) -> Path:
    """Lay models out as Ollama does: manifests/<host>/<namespace>/<model>/<tag> + blobs/sha256-<hex>."""
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    for name, source in models.items():
        digest = sha256(source)
        blob = root / "blobs" / f"sha256-{digest}"
        shutil.copyfile(source, blob)
        template = root / "blobs" / ("sha256-" + hashlib.sha256(b"{{ .Prompt }}").hexdigest())
        template.write_bytes(b"{{ .Prompt }}")
        layers = [{"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}",
                   "size": blob.stat().st_size},
                  {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + template.name[7:],
                   "size": 12}]
        if projector:
            layers.append({"mediaType": "application/vnd.ollama.image.projector", "digest": f"sha256:{digest}",
                           "size": 1})
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                               "digest": f"sha256:{'0' * 64}", "size": 2}, "layers": layers}
        path = root / "manifests" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest))
    return root


def hf_cache(root: Path, repo: str, files: dict[str, Path], commit: str = "a" * 40) -> Path:
    """Lay files out as huggingface_hub does: models--o--r/{blobs/<sha256>, refs/main, snapshots/<commit>/...}."""
    folder = root / ("models--" + repo.replace("/", "--"))
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        digest = sha256(source)
        shutil.copyfile(source, folder / "blobs" / digest)
        (snapshot / name).symlink_to(Path("..") / ".." / "blobs" / digest)
    return root


def tiny(tmp_path: Path, name: str, file_type: gguf.LlamaFileType = gguf.LlamaFileType.MOSTLY_Q8_0,
         seed: int = 0) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    return write_tiny_model(tmp_path / "src" / name, file_type=file_type, seed=seed)


def linked(store: ModelStore, name: str, source: Path) -> bool:
    manifest = store.get(name)
    return store.blobs.path(manifest.digest).stat().st_ino == source.resolve().stat().st_ino


def test_ollama_models_are_linked_under_their_ollama_names(store: ModelStore, tmp_path: Path) -> None:
    folder = ollama_folder(tmp_path / "ollama", {
        "registry.ollama.ai/library/tiny/latest": tiny(tmp_path, "a.gguf", seed=1),
        "registry.ollama.ai/someone/thing/q8": tiny(tmp_path, "b.gguf", seed=2),
        "hf.co/Owner/Repo-GGUF/Q8_0": tiny(tmp_path, "c.gguf", seed=3),
    })
    assert detect_kind(folder) == "ollama"
    report = import_from(store, "ollama", folder)
    names = sorted(m.name for m, _ in report.imported)
    assert names == ["hf.co/owner/repo-gguf:q8_0", "someone/thing:q8", "tiny:latest"]
    assert all(shared for _, shared in report.imported)
    for name in names:
        manifest = store.get(name)
        source = folder / "blobs" / f"sha256-{manifest.digest[7:]}"
        assert linked(store, name, source)  # the same inode: no second copy on disk
        assert manifest.provenance.source.startswith("import:ollama:")
    again = import_from(store, "ollama", folder)
    assert again.imported == [] and {reason for _, reason in again.skipped} == {"already imported"}


def test_ollama_entries_that_cannot_be_used_are_skipped_with_a_reason(store: ModelStore, tmp_path: Path) -> None:
    folder = ollama_folder(tmp_path / "ollama", {"registry.ollama.ai/library/vision/latest": tiny(tmp_path, "v.gguf")},
                           projector=True)
    ollama_folder(folder, {"registry.ollama.ai/library/gone/latest": tiny(tmp_path, "g.gguf", seed=5)})
    (folder / "blobs" / f"sha256-{sha256(tmp_path / 'src' / 'g.gguf')}").unlink()
    corrupt = ollama_folder(folder, {"registry.ollama.ai/library/corrupt/latest": tiny(tmp_path, "x.gguf", seed=6)})
    blob = corrupt / "blobs" / f"sha256-{sha256(tmp_path / 'src' / 'x.gguf')}"
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    (folder / "manifests" / "registry.ollama.ai" / "library" / "junk").mkdir(parents=True)
    (folder / "manifests" / "registry.ollama.ai" / "library" / "junk" / "latest").write_text("not json")
    report = import_from(store, "ollama", folder)
    reasons = dict(report.skipped)
    assert report.imported == []
    assert "vision projector" in reasons["registry.ollama.ai/library/vision/latest"]
    assert "missing" in reasons["gone:latest"]
    assert "failed its hash check" in reasons["corrupt:latest"]
    assert "registry.ollama.ai/library/junk/latest" in reasons
    assert store.list() == [] and list(store.blobs.root.glob("*")) == []


def test_the_hugging_face_cache_is_linked_by_quantization(store: ModelStore, tmp_path: Path) -> None:
    q8 = tiny(tmp_path, "q8.gguf", seed=1)
    f16 = tiny(tmp_path, "f16.gguf", gguf.LlamaFileType.MOSTLY_F16, seed=2)
    root = hf_cache(tmp_path / "hf" / "hub", "Owner/Tiny-GGUF", {
        "Tiny-Q8_0.gguf": q8, "Tiny-F16.gguf": f16, "mmproj-Tiny-F16.gguf": f16, "README.md": q8,
    })
    assert detect_kind(root) == "hf"
    report = import_from(store, "hf", root)
    assert sorted(m.name for m, _ in report.imported) == ["hf.co/owner/tiny-gguf:f16", "hf.co/owner/tiny-gguf:q8_0"]
    assert all(shared for _, shared in report.imported)
    assert "vision projector" in dict(report.skipped)["hf.co/Owner/Tiny-GGUF/mmproj-Tiny-F16.gguf"]
    manifest = store.get("hf.co/owner/tiny-gguf:q8_0")
    assert manifest.digest == "sha256:" + sha256(q8)
    assert manifest.provenance.source == f"import:hf-cache:Owner/Tiny-GGUF@{'a' * 40}/Tiny-Q8_0.gguf"


def test_lm_studio_models_are_linked(store: ModelStore, tmp_path: Path) -> None:
    from tests.store.split_samples import write_split

    root = tmp_path / "lmstudio" / "models"
    target = root / "lmstudio-community" / "Tiny-GGUF"
    target.mkdir(parents=True)
    shutil.copyfile(tiny(tmp_path, "t.gguf"), target / "Tiny-Q8_0.gguf")
    big = root / "lmstudio-community" / "Big-GGUF"
    parts = write_split(tiny(tmp_path, "s.gguf", seed=3), big, "Big-Q8_0", 1)  # two parts of one tensor each
    assert detect_kind(root) == "lmstudio"
    report = import_from(store, "lmstudio", root)
    assert sorted(m.name for m, _ in report.imported) == ["lmstudio/lmstudio-community/big-gguf:q8_0",
                                                          "lmstudio/lmstudio-community/tiny-gguf:q8_0"]
    assert linked(store, "lmstudio/lmstudio-community/tiny-gguf:q8_0", target / "Tiny-Q8_0.gguf")
    split = store.get("lmstudio/lmstudio-community/big-gguf:q8_0")  # one model from its first part
    assert [store.blobs.path(p.digest).stat().st_ino for p in split.parts] == [p.stat().st_ino for p in parts]
    assert report.skipped == []


def test_one_model_can_be_picked_by_name(store: ModelStore, tmp_path: Path) -> None:
    folder = ollama_folder(tmp_path / "ollama", {
        "registry.ollama.ai/library/one/latest": tiny(tmp_path, "1.gguf", seed=1),
        "registry.ollama.ai/library/two/latest": tiny(tmp_path, "2.gguf", seed=2),
    })
    report = import_from(store, "ollama", folder, only="two")
    assert [m.name for m, _ in report.imported] == ["two:latest"]
    found, _ = find("ollama", folder)
    assert len(found) == 2


def test_import_command_from_an_ollama_folder_then_chat(home: Path, tmp_path: Path, bundled_model: Path) -> None:
    folder = ollama_folder(tmp_path / "ollama-models", {"registry.ollama.ai/library/smol/135m": bundled_model})
    env = cli_env(home) | {"OLLAMA_MODELS": str(folder)}
    result = subprocess.run([HEARTH, "import", "--from", "ollama"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "imported 'smol:135m'" in result.stdout and "linked, no copy" in result.stdout
    answer = subprocess.run([HEARTH, "run", "smol:135m", "Say hi.", "-o", "num_predict=6"], env=env,
                            capture_output=True, text=True, timeout=120, input="")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip()


def test_import_command_detects_the_folder_kind_and_explains_failures(home: Path, tmp_path: Path) -> None:
    root = hf_cache(tmp_path / "hub", "Owner/Tiny-GGUF", {"Tiny-Q8_0.gguf": tiny(tmp_path, "q.gguf")})
    env = cli_env(home)
    ok = subprocess.run([HEARTH, "import", str(root)], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "imported 'hf.co/owner/tiny-gguf:q8_0'" in ok.stdout, ok.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = subprocess.run([HEARTH, "import", str(empty)], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "does not look like" in bad.stderr and "--from" in bad.stderr
    nameless = subprocess.run([HEARTH, "import", str(tmp_path / "src" / "q.gguf")], env=env, capture_output=True,
                              text=True, timeout=60)
    assert nameless.returncode == 1 and "--name" in nameless.stderr and "Traceback" not in nameless.stderr
    assert os.path.exists(tmp_path / "src" / "q.gguf")
