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
from hearth.hub.client import RemoteFile, RepoListing, listing
from hearth.hub.download import discard, download, partial_path
from hearth.hub.refs import is_hub_reference, parse_hub_reference
from hearth.hub.remote import remote_shape
from hearth.store import Manifest, ModelName, ModelStore, Provenance, read_gguf_info

Progress = Callable[[dict[str, Any]], None]
NOT_PULLABLE_HINT = ("`hearth catalog` lists the short names Hearth knows; any GGUF repository on Hugging Face "
                     "can be pulled as hf.co/OWNER/REPO[:QUANT] (`hearth search WORDS` finds them)")


@dataclass(frozen=True)
class PullPlan:
    """What a name stands for on the hub: the repository listing and the one file to fetch."""

    local_name: ModelName
    listing: RepoListing
    file: RemoteFile
    catalog: CatalogEntry | None = None

    @property
    def source(self) -> str:
        """Provenance of the model: repository, commit and file."""
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
            downloads: Path | None = None) -> Manifest:
    """Download (or reuse), verify and add the planned file to `store` under its local name."""
    emit = progress or (lambda _event: None)
    file = plan.file
    digest = file.digest
    if digest is None:
        raise DownloadError(f"the hub advertises no sha256 for {file.filename}, so Hearth cannot verify it",
                            hint="only files stored with Git LFS (as GGUF models are) can be pulled")
    current = _existing(store, plan.local_name)
    if current is not None and current.digest == digest:
        emit({"status": "success"})  # already here, same bytes: nothing to do
        return current
    if store.blobs.path(digest).is_file():  # another name already has these weights: no download needed
        source = store.blobs.path(digest)
        emit({"status": f"pulling {digest[7:19]}", "digest": digest, "total": file.size, "completed": file.size})
    else:
        folder = downloads or store.home / "downloads"
        source = download(file, plan.listing.commit, folder, _byte_progress(emit, digest))
    emit({"status": "verifying sha256 digest"})
    manifest = _add(store, plan, source)
    emit({"status": "writing manifest"})
    emit({"status": "success"})
    return manifest


def _add(store: ModelStore, plan: PullPlan, source: Path) -> Manifest:
    """Hash-check and store the file; delete a partial download that fails (or once it is stored)."""
    digest = plan.file.digest
    assert digest is not None
    is_partial = source == partial_path(source.parent, digest)
    try:
        refuse_unusable(read_gguf_info(source).chat_template, plan.local_name)
    except TemplateError:
        if is_partial:
            discard(source)
        raise
    try:
        manifest = store.import_file(
            source, plan.local_name, link=True, replace=True, expected_digest=digest,
            provenance=Provenance(source=plan.source, license=plan.license),
        )
    except IntegrityError as err:
        if is_partial:
            discard(source)
        raise DownloadError(
            f"the download was deleted because it is not the file the hub advertises: {err.message}",
            hint="run the same command again; if it fails again, the file on the hub is damaged") from None
    except InvalidModelFileError as err:
        if is_partial:
            discard(source)
        raise InvalidModelFileError(f"the downloaded {plan.file.filename} is not a usable model: {err.message}",
                                    hint=err.hint) from None
    if is_partial:
        discard(source)  # the store has its own link (or copy) now
    return manifest


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
               n_seq: int = 1, force: bool = False) -> Manifest:
    """Resolve, check the fit (from the remote header), then download and install `name`.

    A model that is too large for the memory budget is refused before a byte of its weights is fetched
    (InsufficientMemoryError saying what would fit), unless `force`.
    """
    emit = progress or (lambda _event: None)
    emit({"status": "pulling manifest"})
    plan = resolve(name)
    if not force:
        check_fit(plan, machine, budget=budget, n_seq=n_seq)
    return install(store, plan, emit)


def check_fit(plan: PullPlan, machine: Machine, *, budget: int, n_seq: int) -> None:
    """InsufficientMemoryError if the planned file could not be loaded here even at the smallest context."""
    try:
        shape, _ = remote_shape(plan.file, plan.listing.commit)
    except HearthError:  # an unreadable header is reported by the download's own checks
        return
    est = estimate(shape, context_for(shape, machine, n_seq), n_seq)
    if verdict(estimate(shape, 512, n_seq).total, machine, budget) != "too large":
        return
    message, hint = refusal(str(plan.local_name), shape, est, budget)
    raise InsufficientMemoryError(message.replace("needs about", "would need about", 1),
                                  hint=hint + "; pull it anyway with --force")
