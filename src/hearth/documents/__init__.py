"""Documents: collections of local files, indexed for hybrid retrieval (BM25 + vectors), and cited answers.

`parse` reads files, `chunk` cuts them into passages, `db` is the SQLite index, `indexer` keeps a collection
in step with its files, `search` retrieves and fuses, `cite` frames passages for a model and checks its
citations. The service (`hearth.service.documents`) is the only door to it.
"""

from hearth.documents.cite import CitationFilter, Source, choose, clean, frame
from hearth.documents.db import CollectionInfo, FileRecord, Index, check_name, default_path
from hearth.documents.indexer import AddReport, Embedding, add_paths
from hearth.documents.parse import MAX_FILE_BYTES, Skipped
from hearth.documents.search import Passage, search, unit

__all__ = [
    "MAX_FILE_BYTES",
    "AddReport",
    "CitationFilter",
    "CollectionInfo",
    "Embedding",
    "FileRecord",
    "Index",
    "Passage",
    "Skipped",
    "Source",
    "add_paths",
    "check_name",
    "choose",
    "clean",
    "default_path",
    "frame",
    "search",
    "unit",
]
