"""Portable bundles: models and Hearth itself in a folder (a USB stick) for a computer with no network.

    DIR/BUNDLE.json                        every file's sha256 and size; written last, atomically
    DIR/README.md, DIR/install             what this is; `sh install [VENV]` (POSIX sh, calls python3)
    DIR/models/manifests/<name>.json       the models' manifests, as the store keeps them
    DIR/models/licenses/<name>.txt         each model's license
    DIR/models/blobs/sha256-<hex>          weights by digest; over the part size (default: 4 GiB - 1, FAT32's
    DIR/models/blobs/sha256-<hex>.part001  limit) in numbered parts, joined and checked on import
    DIR/wheels/*.whl, requirements.txt     Hearth and every package it needs, for this Python and platform

No symbolic links, and only names every file system takes (`index.portable`), so FAT32 and exFAT sticks
work. A folder without BUNDLE.json (and with `EXPORT-INCOMPLETE.txt`) is an export that did not finish:
nothing reads it, and running the export again finishes it.

Rooms: `index` (BUNDLE.json), `files` (writing to the stick, reading back checked), `wheels` and `repack`
(the wheelhouse), `export` and `restore` (`export_bundle`, `import_bundle`).
"""

from hearth.bundle.export import DEFAULT_PART_SIZE, ExportReport, export_bundle
from hearth.bundle.index import BundleIndex, WheelEntry, read_index
from hearth.bundle.restore import BundleImport, import_bundle

__all__ = [
    "DEFAULT_PART_SIZE",
    "BundleImport",
    "BundleIndex",
    "ExportReport",
    "WheelEntry",
    "export_bundle",
    "import_bundle",
    "read_index",
]
