"""Getting models from Hugging Face: the catalog, pulls, remote headers for "will it fit?", and search.

    from hearth.hub import resolve, install, remote_shape, search
    plan = resolve("qwen2.5:0.5b")                   # catalog name or hf.co/OWNER/REPO[:QUANT]
    shape, _ = remote_shape(plan.file, plan.listing.commit)   # header only, through HTTP ranges
    manifest = install(store, plan, progress)        # resumable download, sha256 check, manifest last
    leftovers(store.home / "downloads"); clean(store.home / "downloads", older_than=STALE_AFTER)
    report = fit_report(store, "hf.co/OWNER/REPO", machine, budget=...)   # "will it fit?" without downloading

Rooms: `refs` (what may be pulled, checked), `catalog` (short names from hearth/data/catalog.json),
`client` (huggingface_hub: listings, URLs, tokens, errors), `redirects` (where requests may go, the
token kept to the hub), `download` (resumable partial files, leftovers),
`remote` (HTTP range reads of GGUF headers), `pull` (the whole pull), `fitting` (fit reports for any
name), `search`. Everything that touches the
network goes through `huggingface_hub`, so `HF_ENDPOINT`, `HF_TOKEN`, proxies and `HF_HUB_OFFLINE` apply.
"""

from hearth.hub.catalog import CatalogEntry, CatalogMatch, entries, lookup
from hearth.hub.client import RemoteFile, RemoteModel, RepoListing, endpoint, listing
from hearth.hub.download import Leftover, clean, leftovers
from hearth.hub.fitting import fit_report
from hearth.hub.pull import Progress, PullPlan, check_fit, install, is_pullable, pull_model, resolve
from hearth.hub.refs import HubRef, is_hub_reference, parse_hub_reference
from hearth.hub.remote import RangeFile, remote_shape
from hearth.hub.search import SearchResult, search

__all__ = [
    "CatalogEntry",
    "CatalogMatch",
    "HubRef",
    "Progress",
    "PullPlan",
    "RangeFile",
    "Leftover",
    "RemoteFile",
    "RemoteModel",
    "RepoListing",
    "SearchResult",
    "check_fit",
    "clean",
    "endpoint",
    "entries",
    "fit_report",
    "install",
    "is_hub_reference",
    "is_pullable",
    "listing",
    "leftovers",
    "lookup",
    "parse_hub_reference",
    "pull_model",
    "remote_shape",
    "resolve",
    "search",
]
