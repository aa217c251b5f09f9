"""Pulling: a name → the hub's file listing → a resumable download → sha256 check → a model in the store.

    plan = resolve("llama3.2:1b")                  # or "hf.co/OWNER/REPO:Q4_K_M"; reads the file listing only
    manifest = install(store, plan, progress)      # downloads, verifies, and writes the manifest last
    pull_model(store, name, progress, machine, budget=...)   # both, refusing what cannot fit first

`progress` receives Ollama's pull progress objects, in order:

    {"status": "pulling manifest"}
    {"status": "pulling <12 hex>", "digest": "sha256:<hex>", "total": N, "completed": M}   (repeated)
    {"status": "verifying sha256 digest"}
    {"status": "writing manifest"}
    {"status": "success"}

Raising from `progress` cancels the pull; the partial download stays for the next attempt. A model appears
in the store only after the whole file matched the sha256 the hub advertises for it: a truncated, corrupted
or mislabelled file ends in an error and is deleted, never listed.

A split model (`NAME-00001-of-00003.gguf`, ...) is pulled part by part, each resumable and verified like a
single file, with a "pulling <digest>" status per part; the free disk space is checked for all of them
before the first byte. If one part fails its check, only that part is deleted: the others wait, as
partial downloads, for the next attempt. Partial downloads untouched for a day are deleted when a pull
starts (`download.clean`), except those the pull is about to continue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.chat.template import refuse_unusable
from hearth.errors import (
    DownloadError,
    HearthError,
    InsufficientMemoryError,
    IntegrityError,
    InvalidModelFileError,
    NotFoundError,
    TemplateError,
)
from hearth.fit.estimate import estimate
from hearth.fit.machine import Machine
from hearth.fit.report import context_for, refusal, verdict
from hearth.hub.catalog import CatalogEntry, lookup
from hearth.hub.client import RemoteFile, RemoteModel, RepoListing, listing
from hearth.hub.download import STALE_AFTER, check_free_space, clean, discard, download, partial_path
from hearth.hub.redirects import allowing
from hearth.hub.refs import is_hub_reference, parse_hub_reference
from hearth.hub.remote import remote_shape
from hearth.paths import ensure_private_dir
from hearth.store import Manifest, ModelName, ModelStore, Provenance, read_gguf_info

Progress = Callable[[dict[str, Any]], None]
NOT_PULLABLE_HINT = ("`hearth catalog` lists the short names Hearth knows; any GGUF repository on Hugging Face "
                     "can be pulled as hf.co/OWNER/REPO[:QUANT] (`hearth search WORDS` finds them)")


@dataclass(frozen=True)
class PullPlan:
    """What a name stands for on the hub: the repository listing and the model (one file, or parts) to fetch."""

    local_name: ModelName
    listing: RepoListing
    model: RemoteModel
    catalog: CatalogEntry | None = None

    @property
    def file(self) -> RemoteFile:
        """The file llama.cpp is given: the model's one file, or its first part."""
        return self.model.first

    @property
    def source(self) -> str:
        """Provenance of the model: repository, commit and (first) file."""
        return f"hf.co/{self.listing.repo_id}@{self.listing.commit}/{self.file.filename}"

    @property
    def license(self) -> str | None:
        """The licence as the catalog or the repository card states it."""
        return self.catalog.license if self.catalog is not None else self.listing.license


def is_pullable(name: str) -> bool:
    """True if `name` is a Hugging Face reference or a catalog name (no network needed to tell)."""
    return is_hub_reference(name) or lookup(name) is not None


def resolve(name: str) -> PullPlan:
    """Find the file `name` stands for (catalog short name or hf.co reference) from the hub's listing."""
    if is_hub_reference(name):
        ref = parse_hub_reference(name)
        repo = listing(ref.repo_id)
        return PullPlan(ref.local_name, repo, repo.choose(ref.quant))
    match = lookup(name)
    if match is None:
        raise NotFoundError(f"{name!r} is neither a model you have nor one in Hearth's catalog",
                            hint=NOT_PULLABLE_HINT)
    repo = listing(match.entry.repo)
    return PullPlan(match.local_name, repo, repo.choose(match.quant), match.entry)


def install(store: ModelStore, plan: PullPlan, progress: Progress | None = None, *,
            downloads: Path | None = None, download_hosts: tuple[str, ...] | None = None) -> Manifest:
    """Download (or reuse), verify and add the planned model to `store` under its local name.

    `download_hosts` are the hosts the hub may redirect to (None: the configured ones, `hearth.hub.redirects`).
    """
    emit = progress or (lambda _event: None)
    parts = plan.model.parts
    for part in parts:
        if part.digest is None:
            raise DownloadError(f"the hub advertises no sha256 for {part.filename}, so Hearth cannot verify it",
                                hint="only files stored with Git LFS (as GGUF models are) can be pulled")
    digests = tuple(str(p.digest) for p in parts)
    current = _existing(store, plan.local_name)
    if current is not None and current.digests == digests:
        emit({"status": "success"})  # already here, same bytes: nothing to do
        return current
    folder = downloads or store.home / "downloads"
    needed = [p for p in parts if not store.blobs.path(str(p.digest)).is_file()]
    clean(folder, older_than=STALE_AFTER, keep={partial_path(folder, str(p.digest)) for p in needed})
    if needed:
        check_free_space(ensure_private_dir(folder), _missing_bytes(folder, needed), plan.model.label)
    sources = []
    with allowing(download_hosts):
        for part in parts:
            digest = str(part.digest)
            if store.blobs.path(digest).is_file():  # another model already has these bytes: no download needed
                emit({"status": f"pulling {digest[7:19]}", "digest": digest, "total": part.size,
                      "completed": part.size})
                sources.append(store.blobs.path(digest))
            else:
                sources.append(download(part, plan.listing.commit, folder, _byte_progress(emit, digest)))
    emit({"status": "verifying sha256 digest"})
    manifest = _add(store, plan, sources)
    emit({"status": "writing manifest"})
    emit({"status": "success"})
    return manifest


def _missing_bytes(folder: Path, parts: list[RemoteFile]) -> int:
    """Bytes still to fetch for `parts`, counting what their partial downloads already hold."""
    total = 0
    for part in parts:
        try:
            done = partial_path(folder, str(part.digest)).stat().st_size
        except OSError:
            done = 0
        total += max(0, part.size - done)
    return total


def _add(store: ModelStore, plan: PullPlan, sources: list[Path]) -> Manifest:
    """Hash-check and store the files; delete a partial download that fails (the others once stored)."""
    parts = plan.model.parts
    partials = [s for s, p in zip(sources, parts, strict=True) if s == partial_path(s.parent, str(p.digest))]
    try:
        refuse_unusable(read_gguf_info(sources[0]).chat_template, plan.local_name)
    except TemplateError:
        _discard_all(partials)
        raise
    provenance = Provenance(source=plan.source, license=plan.license)
    try:
        if plan.model.is_split:
            manifest = store.import_split(sources, plan.local_name, link=True, replace=True, provenance=provenance,
                                          expected_digests=[str(p.digest) for p in parts],
                                          labels=[p.filename for p in parts])
        else:
            manifest = store.import_file(sources[0], plan.local_name, link=True, replace=True,
                                         expected_digest=parts[0].digest, provenance=provenance)
    except IntegrityError as err:
        bad = [Path(err.path)] if err.path is not None else partials
        _discard_all([p for p in partials if p in bad])
        raise DownloadError(
            f"the download was deleted because it is not the file the hub advertises: {err.message}",
            hint="run the same command again; if it fails again, the file on the hub is damaged") from None
    except InvalidModelFileError as err:
        _discard_all(partials)
        raise InvalidModelFileError(f"the downloaded {plan.model.label} is not a usable model: {err.message}",
                                    hint=err.hint) from None
    _discard_all(partials)  # the store has its own links (or copies) now
    return manifest


def _discard_all(paths: list[Path]) -> None:
    for path in paths:
        discard(path)


def _existing(store: ModelStore, name: ModelName) -> Manifest | None:
    try:
        return store.get(name)
    except NotFoundError:
        return None


def _byte_progress(emit: Progress, digest: str) -> Callable[[int, int], None]:
    status = f"pulling {digest[7:19]}"

    def report(completed: int, total: int) -> None:
        emit({"status": status, "digest": digest, "total": total, "completed": completed})

    return report


def pull_model(store: ModelStore, name: str, progress: Progress | None, machine: Machine, *, budget: int,
               n_seq: int = 1, force: bool = False, download_hosts: tuple[str, ...] | None = None) -> Manifest:
    """Resolve, check the fit (from the remote header), then download and install `name`.

    A model that is too large for the memory budget is refused before a byte of its weights is fetched
    (InsufficientMemoryError saying what would fit), unless `force`.
    """
    emit = progress or (lambda _event: None)
    emit({"status": "pulling manifest"})
    with allowing(download_hosts):
        plan = resolve(name)
        if not force:
            check_fit(plan, machine, budget=budget, n_seq=n_seq)
    return install(store, plan, emit, download_hosts=download_hosts)


def check_fit(plan: PullPlan, machine: Machine, *, budget: int, n_seq: int) -> None:
    """InsufficientMemoryError if the planned file could not be loaded here even at the smallest context."""
    try:
        shape, _ = remote_shape(plan.file, plan.listing.commit, total_size=plan.model.size)
    except HearthError:  # an unreadable header is reported by the download's own checks
        return
    est = estimate(shape, context_for(shape, machine, n_seq), n_seq)
    if verdict(estimate(shape, 512, n_seq).total, machine, budget) != "too large":
        return
    message, hint = refusal(str(plan.local_name), shape, est, budget)
    raise InsufficientMemoryError(message.replace("needs about", "would need about", 1),
                                  hint=hint + "; pull it anyway with --force")
