"""Use models other tools already downloaded, without a second copy: Ollama, the Hugging Face cache, LM Studio.

    Ollama       $OLLAMA_MODELS or ~/.ollama/models (Linux service: /usr/share/ollama/.ollama/models)
                 manifests/<host>/<namespace>/<model>/<tag>  JSON; the layer of mediaType
                 application/vnd.ollama.image.model names the weights, blobs/sha256-<hex>
                 → registry.ollama.ai/library/llama3.2/1b becomes `llama3.2:1b`, hf.co/o/r/Q4_K_M `hf.co/o/r:q4_k_m`
    HF cache     $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub
                 models--<owner>--<repo>/snapshots/<commit>/<file>.gguf → ../../blobs/<sha256>
                 → `hf.co/<owner>/<repo>:<quantization>`
    LM Studio    ~/.lmstudio/models or ~/.cache/lm-studio/models: <publisher>/<repo>/<file>.gguf
                 → `lmstudio/<publisher>/<repo>:<quantization>`

Each file goes through `ModelStore.import_file(link=True)`: validated as a GGUF, then hard-linked into the
blob folder (no second copy; a copy only across file systems or where links are not allowed). Where the
other tool names a file by its sha256 (Ollama's blobs, the HF cache's LFS blobs) that hash is verified
too. A split GGUF (`NAME-00001-of-00003.gguf`, ...) in the HF cache or LM Studio is imported as one model
from its first part, every part linked and (in the HF cache) verified; its other parts are not listed on
their own. Vision projectors and LoRA adapters are skipped with a reason.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hearth.errors import HearthError, InvalidRequestError, NotFoundError
from hearth.store.gguf import read_gguf_info, read_gguf_part
from hearth.store.manifest import Manifest, Provenance
from hearth.store.names import DEFAULT_TAG, parse_name
from hearth.store.split import part_filename, sibling_paths, split_name
from hearth.store.store import ModelStore

Kind = Literal["ollama", "hf", "lmstudio"]
KINDS: tuple[Kind, ...] = ("ollama", "hf", "lmstudio")
OLLAMA_MODEL = "application/vnd.ollama.image.model"
MAX_OLLAMA_MANIFEST = 1 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TAG_CHARS = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True)
class Found:
    """A GGUF file another tool keeps, and the name Hearth would give it."""

    name: str
    path: Path
    source: str
    digest: str | None = None  # the sha256 the other tool names the file by, verified on import
    split: Path | None = None  # a split model: the first part as the other tool names it (siblings beside it)


@dataclass
class ImportReport:
    """What `import_from` did: models added (and whether they share the file), and what it left out, why."""

    folder: Path
    imported: list[tuple[Manifest, bool]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def default_folder(kind: Kind) -> Path:
    """Where `kind` keeps its models on this machine by default (the first that exists)."""
    home = Path.home()
    if kind == "ollama":
        candidates = [Path(os.environ["OLLAMA_MODELS"])] if os.environ.get("OLLAMA_MODELS") else []
        candidates += [home / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]
    elif kind == "hf":
        if os.environ.get("HF_HUB_CACHE"):
            candidates = [Path(os.environ["HF_HUB_CACHE"])]
        else:
            hf_home = Path(os.environ.get("HF_HOME") or home / ".cache" / "huggingface")
            candidates = [hf_home / "hub"]
    else:
        candidates = [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def detect_kind(folder: Path) -> Kind | None:
    """Which tool's layout `folder` has, or None."""
    if (folder / "manifests").is_dir() and (folder / "blobs").is_dir():
        return "ollama"
    if any(p.is_dir() for p in folder.glob("models--*--*")):
        return "hf"
    if any(folder.glob("*/*/*.gguf")):
        return "lmstudio"
    return None


def find(kind: Kind, folder: Path) -> tuple[list[Found], list[tuple[str, str]]]:
    """The GGUF models in `folder` laid out as `kind` keeps them, and what was passed over (and why)."""
    if not folder.is_dir():
        raise NotFoundError(f"{folder} is not a folder", hint=f"pass the folder where {_TOOL[kind]} keeps models")
    return {"ollama": _find_ollama, "hf": _find_hf_cache, "lmstudio": _find_lmstudio}[kind](folder)


def import_from(store: ModelStore, kind: Kind, folder: Path | None = None, *, replace: bool = False,
                only: str | None = None) -> ImportReport:
    """Import every model (or the one named `only`) that `kind` keeps in `folder`, linking instead of copying."""
    folder = Path(folder) if folder is not None else default_folder(kind)
    found, skipped = find(kind, folder)
    if only is not None:
        wanted = str(parse_name(only))
        found = [f for f in found if f.name == wanted]
        if not found:
            raise NotFoundError(f"no model named {wanted!r} in {folder}",
                                hint=f"`hearth import {folder}` without a name imports everything there")
    report = ImportReport(folder, skipped=list(skipped))
    for item in found:
        try:
            manifest = _import_one(store, item, replace)
        except HearthError as err:
            report.skipped.append((item.name, err.message))
            continue
        if manifest is None:
            report.skipped.append((item.name, "already imported"))
            continue
        report.imported.append((manifest, _shares_file(store, manifest, item.path)))
    return report


def _import_one(store: ModelStore, item: Found, replace: bool) -> Manifest | None:
    try:
        current = store.get(item.name)
    except NotFoundError:
        current = None
    if current is not None and not replace:
        if (item.digest is not None and current.digest == item.digest) or _shares_file(store, current, item.path):
            return None
        raise InvalidRequestError(f"a different model is already called {item.name!r}",
                                  hint=f"import it under another name: `hearth import {item.path} --name NEW`")
    if item.split is not None and read_gguf_part(item.path).count > 1:  # the header decides, not the name
        prefix, _, count = split_name(item.split.name) or ("", 1, 1)
        paths = sibling_paths(item.split, count)
        digests = [f"sha256:{p.name}" for p in paths]
        labels = [part_filename(k, count, prefix) for k in range(1, count + 1)]
        return store.import_split(paths, item.name, link=True, replace=replace, labels=labels,
                                  expected_digests=digests if all(_HEX64.fullmatch(p.name) for p in paths) else None,
                                  provenance=Provenance(source=item.source, license=read_gguf_info(item.path).license))
    return store.import_file(item.path, item.name, link=True, replace=replace, expected_digest=item.digest,
                             provenance=Provenance(source=item.source, license=read_gguf_info(item.path).license))


def _shares_file(store: ModelStore, manifest: Manifest, source: Path) -> bool:
    try:
        return store.blobs.path(manifest.digest).stat().st_ino == source.resolve().stat().st_ino
    except OSError:
        return False


# -- Ollama --------------------------------------------------------------------------------------------------
def _find_ollama(folder: Path) -> tuple[list[Found], list[tuple[str, str]]]:
    found, skipped = [], []
    root = folder / "manifests"
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        parts = path.relative_to(root).parts
        label = "/".join(parts)
        if len(parts) != 4:
            skipped.append((label, "not where an Ollama manifest belongs"))
            continue
        try:
            name = _ollama_name(*parts)
            digest = _ollama_weights(path)
        except (HearthError, ValueError) as err:
            skipped.append((label, err.message if isinstance(err, HearthError) else str(err)))
            continue
        blob = folder / "blobs" / ("sha256-" + digest.removeprefix("sha256:"))
        if not blob.is_file():
            skipped.append((name, f"its weights ({blob.name}) are missing from {folder / 'blobs'}"))
            continue
        found.append(Found(name, blob, f"import:ollama:{label}", digest))
    return found, skipped


def _ollama_name(host: str, namespace: str, model: str, tag: str) -> str:
    if host == "registry.ollama.ai":
        text = f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
    else:
        text = f"{host}/{namespace}/{model}:{tag}"
    return str(parse_name(text))


def _ollama_weights(path: Path) -> str:
    with open(path, "rb") as handle:
        raw = handle.read(MAX_OLLAMA_MANIFEST + 1)
    if len(raw) > MAX_OLLAMA_MANIFEST:
        raise ValueError("the manifest is implausibly large")
    data = json.loads(raw)
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, list):
        raise ValueError("the manifest has no layers")
    kinds = {layer.get("mediaType") for layer in layers if isinstance(layer, dict)}
    models = [layer for layer in layers if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL]
    if len(models) != 1:
        raise ValueError("it has no single GGUF weights layer (safetensors or a split model?)")
    if "application/vnd.ollama.image.projector" in kinds or "application/vnd.ollama.image.adapter" in kinds:
        raise ValueError("it needs a vision projector or an adapter, which an import cannot carry over")
    digest = models[0].get("digest")
    if not isinstance(digest, str) or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ValueError("its weights layer has a malformed digest")
    return digest


# -- Hugging Face cache --------------------------------------------------------------------------------------
def _find_hf_cache(folder: Path) -> tuple[list[Found], list[tuple[str, str]]]:
    found, skipped = [], []
    for repo_dir in sorted(p for p in folder.glob("models--*--*") if p.is_dir()):
        owner, _, repo = repo_dir.name.removeprefix("models--").partition("--")
        commit = _hf_commit(repo_dir)
        if commit is None:
            continue
        snapshot = repo_dir / "snapshots" / commit
        for path in sorted(snapshot.rglob("*.gguf")):
            if _later_part(path):
                continue
            label = f"hf.co/{owner}/{repo}/{path.relative_to(snapshot)}"
            reason = _unusable(path)
            if reason:
                skipped.append((label, reason))
                continue
            target = path.resolve()
            digest = f"sha256:{target.name}" if _HEX64.fullmatch(target.name) else None
            try:
                name = str(parse_name(f"hf.co/{owner}/{repo}:{_tag(path)}"))
            except HearthError as err:
                skipped.append((label, err.message))
                continue
            found.append(Found(name, target, f"import:hf-cache:{owner}/{repo}@{commit}/"
                                             f"{path.relative_to(snapshot)}", digest, _first_part(path)))
    return found, skipped


def _hf_commit(repo_dir: Path) -> str | None:
    """The snapshot `refs/main` points at, else the most recently written snapshot."""
    try:
        main = (repo_dir / "refs" / "main").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        main = ""
    snapshots = repo_dir / "snapshots"
    if re.fullmatch(r"[0-9a-f]{40}", main) and (snapshots / main).is_dir():
        return main
    existing = [p for p in snapshots.glob("*") if p.is_dir()] if snapshots.is_dir() else []
    return max(existing, key=lambda p: p.stat().st_mtime).name if existing else None


# -- LM Studio -----------------------------------------------------------------------------------------------
def _find_lmstudio(folder: Path) -> tuple[list[Found], list[tuple[str, str]]]:
    found, skipped = [], []
    for path in sorted(folder.glob("*/*/*.gguf")):
        if _later_part(path):
            continue
        publisher, repo = path.parent.parent.name, path.parent.name
        label = f"{publisher}/{repo}/{path.name}"
        reason = _unusable(path)
        if reason:
            skipped.append((label, reason))
            continue
        try:
            name = str(parse_name(f"lmstudio/{publisher}/{repo}:{_tag(path)}"))
        except HearthError as err:
            skipped.append((label, err.message))
            continue
        found.append(Found(name, path.resolve(), f"import:lmstudio:{label}", split=_first_part(path)))
    return found, skipped


# -- shared --------------------------------------------------------------------------------------------------
def _unusable(path: Path) -> str | None:
    base = path.name.lower()
    if base.startswith("mmproj"):
        return "a vision projector, not a model"
    if not path.resolve().is_file():
        return "a link to a missing file (an unfinished download?)"
    return None


def _later_part(path: Path) -> bool:
    """True for part 2, 3, ... of a split model: it comes in with its first part."""
    named = split_name(path.name)
    return named is not None and named[1] != 1


def _first_part(path: Path) -> Path | None:
    named = split_name(path.name)
    return path.absolute() if named is not None and named[2] > 1 else None


def _tag(path: Path) -> str:
    """The quantization as a tag (`q4_k_m`), from the file's own header; the file name if it has none."""
    try:
        quant = read_gguf_info(path).quantization
    except HearthError:
        quant = ""
    tag = _TAG_CHARS.sub("-", (quant or path.stem).lower()).strip("-._")
    return tag[:80] or DEFAULT_TAG


_TOOL = {"ollama": "Ollama", "hf": "the Hugging Face cache", "lmstudio": "LM Studio"}
