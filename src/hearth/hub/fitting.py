""""Will it fit?" for any name: a local model, a catalog short name, or a Hugging Face reference.

A local model's shape comes from its own file's header. A remote one's comes from the header of the file a
pull would fetch, read through HTTP range requests (a few MB, never the weights); the other quantizations in
the repository are compared by their listed sizes. A catalog name whose repository cannot be reached falls
back to the architecture numbers in the catalog, and says so in the report's notes.
"""

from __future__ import annotations

from hearth.errors import DownloadError, HearthError, NotFoundError
from hearth.fit.machine import Machine
from hearth.fit.report import FitReport, assess
from hearth.fit.shape import ModelShape, read_shape
from hearth.hub.catalog import lookup
from hearth.hub.pull import NOT_PULLABLE_HINT, resolve
from hearth.hub.refs import is_hub_reference
from hearth.hub.remote import remote_shape
from hearth.store import Manifest, ModelStore
from hearth.units import size_text


def fit_report(store: ModelStore, name: str, machine: Machine, *, budget: int, n_seq: int = 1,
               n_ctx: int | None = None, kv_type: str = "f16") -> FitReport:
    """The fit verdict for `name`: local if it is in the store, otherwise from the hub without downloading."""
    if not is_hub_reference(name):
        local = _local(store, name)
        if local is not None:
            manifest, shape = local
            return assess(manifest.name, shape, machine, budget=budget, n_seq=n_seq, n_ctx=n_ctx, kv_type=kv_type)
    match = None if is_hub_reference(name) else lookup(name)
    if match is None and not is_hub_reference(name):
        raise NotFoundError(f"{name!r} is neither a model you have nor one in Hearth's catalog",
                            hint=NOT_PULLABLE_HINT)
    try:
        plan = resolve(name)
    except DownloadError as err:
        if match is None:
            raise
        shape = ModelShape.from_catalog(match.entry.as_dict(), match.quant)
        note = f"estimated from the catalog: the hub could not be reached ({err.message})"
        return assess(str(match.local_name), shape, machine, budget=budget, n_seq=n_seq, n_ctx=n_ctx, kv_type=kv_type,
                      notes=[note])
    shape, handle = remote_shape(plan.file, plan.listing.commit, total_size=plan.model.size)
    sizes = {q: m.size for q, m in plan.listing.quants().items()}
    note = (f"read {plan.file.filename}'s header from hf.co/{plan.listing.repo_id}: "
            f"{size_text(handle.fetched)} of {size_text(plan.model.size)}")
    if plan.model.is_split:
        note += f" (a model in {len(plan.model.parts)} parts; the others are counted from the listing)"
    return assess(f"{plan.local_name}", shape, machine, budget=budget, n_seq=n_seq, n_ctx=n_ctx, kv_type=kv_type,
                  quants=sizes or None, notes=[note])


def _local(store: ModelStore, name: str) -> tuple[Manifest, ModelShape] | None:
    try:
        manifest = store.get(name)
    except NotFoundError:
        return None
    except HearthError:  # an invalid local name may still be a catalog name
        return None
    try:
        shape = read_shape(store.model_path(manifest))
    except (HearthError, OSError):
        shape = ModelShape.from_info(manifest.info)
    return manifest, shape
