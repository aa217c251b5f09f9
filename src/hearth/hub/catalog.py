"""The catalog: short names (`llama3.2:1b`) for popular models on Hugging Face, from `hearth/data/catalog.json`.

An entry names a repository, the quantization pulled by default, and what the memory estimate needs before
anything is downloaded (parameter count, context length, architecture numbers). It never names files, sizes
or hashes: those come from the hub's listing at pull time. `lookup` also understands `NAME` (the entry marked
`latest` for that name) and `NAME:TAG-QUANT` (`llama3.2:1b-q8_0`), like Ollama's tags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from hearth.errors import HearthError, StoreError
from hearth.fit.quants import bits_per_weight
from hearth.hub.refs import check_repo_id
from hearth.store.names import DEFAULT_TAG, ModelName, parse_name


@dataclass(frozen=True)
class CatalogEntry:
    """One short name and the repository it pulls from."""

    name: str
    repo: str
    quant: str
    parameters: int
    context_length: int
    license: str
    family: str
    description: str
    latest: bool = False
    arch: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The entry as the JSON object it was read from."""
        return {"name": self.name, "repo": self.repo, "quant": self.quant, "parameters": self.parameters,
                "context_length": self.context_length, "license": self.license, "family": self.family,
                "description": self.description, "latest": self.latest, "arch": dict(self.arch)}


@dataclass(frozen=True)
class CatalogMatch:
    """A catalog entry as asked for: the quantization wanted and the local name it will be stored as."""

    entry: CatalogEntry
    quant: str
    local_name: ModelName


@lru_cache(maxsize=1)
def entries() -> tuple[CatalogEntry, ...]:
    """Every catalog entry, in file order (StoreError if the packaged file is damaged)."""
    try:
        text = resources.files("hearth").joinpath("data/catalog.json").read_text(encoding="utf-8")
        data = json.loads(text)
        return tuple(_entry(item) for item in data["models"])
    except (OSError, ValueError, KeyError, TypeError, HearthError) as err:
        detail = err.message if isinstance(err, HearthError) else str(err)
        raise StoreError(f"the model catalog shipped with Hearth is damaged: {detail}",
                         hint="reinstall Hearth") from None


def lookup(text: str) -> CatalogMatch | None:
    """The catalog entry `text` names (`llama3.2:1b`, `llama3.2`, `llama3.2:1b-q8_0`), or None."""
    try:
        wanted = parse_name(text)
    except HearthError:
        return None
    by_name = {parse_name(e.name): e for e in entries()}
    entry = by_name.get(wanted)
    if entry is not None:
        return CatalogMatch(entry, entry.quant, wanted)
    if wanted.tag == DEFAULT_TAG:
        latest = next((e for e in entries() if e.latest and parse_name(e.name).name == wanted.name), None)
        return None if latest is None else CatalogMatch(latest, latest.quant, wanted)
    tag, sep, quant = wanted.tag.rpartition("-")
    if sep and bits_per_weight(quant) is not None:
        entry = by_name.get(ModelName(wanted.name, tag))
        if entry is not None:
            return CatalogMatch(entry, quant.upper(), wanted)
    return None


def _entry(item: dict[str, Any]) -> CatalogEntry:
    parse_name(item["name"])
    arch = item.get("arch") or {}
    if not isinstance(arch, dict) or not all(isinstance(v, int) for v in arch.values()):
        raise ValueError(f"entry {item['name']!r} has a malformed 'arch'")
    return CatalogEntry(
        name=str(item["name"]), repo=check_repo_id(item["repo"]), quant=str(item["quant"]),
        parameters=int(item["parameters"]), context_length=int(item["context_length"]),
        license=str(item["license"]), family=str(item["family"]), description=str(item["description"]),
        latest=bool(item.get("latest", False)), arch={str(k): int(v) for k, v in arch.items()},
    )
