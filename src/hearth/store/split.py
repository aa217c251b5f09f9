"""Split GGUF models: the parts `gguf-split` writes, checked to belong together, and laid out for llama.cpp.

A big model on the hub is often published as `NAME-00001-of-00003.gguf`, `NAME-00002-of-00003.gguf`, ...
Every part is a GGUF file of its own with the keys `split.no` (0-based), `split.count` and
`split.tensors.count` (the tensors of the whole set); the first part holds all the model's metadata, and
the tensors are spread over the parts. llama.cpp loads such a model from the path of its first part and
finds the others beside it by name (`llama_split_prefix` strips `-00001-of-0000N.gguf`, `llama_split_path`
puts `-0000K-of-0000N.gguf` back), so a stored set needs real file names, not only digests.

The store keeps each part as an ordinary blob (named by its sha256, verified like any other) and gives the
set a folder of hard links named the way llama.cpp looks for them (see `ModelStore`):

    <home>/sets/sha256-<set id>/model-00001-of-00003.gguf  -> the same inode as blobs/sha256-<part 1>
    <home>/sets/sha256-<set id>/model-00002-of-00003.gguf  -> blobs/sha256-<part 2> ...

The set id is the sha256 of the parts' digests in order, so one set has one folder whatever it is called.

"Belong together" is what llama.cpp itself can check, and a little more: every part is a valid GGUF, part
K says it is number K of N, all agree on N and on the total tensor count, no tensor name appears twice, and
the parts together hold exactly that many tensors. A part taken from another split of the same model
(another quantization, another split size) fails one of these.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from hearth.errors import InvalidModelFileError
from hearth.paths import ensure_private_dir
from hearth.store.gguf import GGUFInfo, GGUFPart, read_gguf_part
from hearth.store.manifest import TEMP_PREFIX, fsync_dir

SPLIT_NAME = re.compile(r"^(?P<prefix>.+)-(?P<number>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
SET_PREFIX = "sha256-"
MAX_PARTS = 999


def split_name(name: str) -> tuple[str, int, int] | None:
    """(prefix, part number, part count) of a file named like `NAME-00002-of-00003.gguf`, else None."""
    match = SPLIT_NAME.match(name)
    if match is None:
        return None
    return match.group("prefix"), int(match.group("number")), int(match.group("count"))


def part_filename(number: int, count: int, prefix: str = "model") -> str:
    """The file name llama.cpp expects for part `number` of `count` (`llama_split_path`)."""
    return f"{prefix}-{number:05d}-of-{count:05d}.gguf"


def set_id(digests: Sequence[str]) -> str:
    """The name of a set's folder: `sha256-` and the sha256 of its parts' digests, in order."""
    return SET_PREFIX + hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()


def sibling_paths(first: Path, count: int) -> list[Path]:
    """The parts of the split set whose first part is `first`, found beside it by llama.cpp's naming.

    InvalidModelFileError if `first` is not named as a first part, or a part is missing.
    """
    named = split_name(first.name)
    if named is None or named[1] != 1 or named[2] != count:
        raise InvalidModelFileError(
            f"{first.name} is the first part of a model split into {count} files, but it is not named like one, "
            "so the other parts cannot be found", hint=f"name the parts like NAME-00001-of-{count:05d}.gguf, "
                                                       f"NAME-00002-of-{count:05d}.gguf, ... in one folder")
    prefix = named[0]
    paths = [first.with_name(part_filename(k, count, prefix)) for k in range(1, count + 1)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise InvalidModelFileError(
            f"{first.name} is part 1 of a model split into {count} files, but {_listed(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not beside it in {first.parent}",
            hint="put every part of the model in the same folder, then import the first part again")
    return [p.resolve() for p in paths]


def read_split_set(paths: Sequence[Path], labels: Sequence[str] | None = None) -> GGUFInfo:
    """Check that `paths` (in order) are the whole of one split model; return the set's summary.

    The summary is the first part's, with the parameter and tensor counts and the file size of the whole set.
    `labels` names the parts in messages (default: their file names).
    """
    names = list(labels) if labels is not None else [p.name for p in paths]
    parts = [read_gguf_part(path) for path in paths]
    first = parts[0]
    if first.info is None or first.number != 1:
        raise InvalidModelFileError(f"{names[0]} is part {first.number} of a split model, not its first part",
                                    hint="give the part whose name ends in -00001-of-0000N.gguf")
    count = first.count
    if count < 2 or count > MAX_PARTS:
        raise InvalidModelFileError(f"{names[0]} is not the first part of a split model (split.count is {count})")
    if len(parts) != count:
        raise InvalidModelFileError(f"{names[0]} is part 1 of {count}, but {len(parts)} parts were given")
    seen: set[str] = set()
    for index, (part, name) in enumerate(zip(parts, names, strict=True), start=1):
        _check_part(part, name, index, first, names[0])
        duplicates = seen.intersection(part.tensor_names)
        if duplicates:
            raise InvalidModelFileError(
                f"{name} does not belong with {names[0]}: it repeats the tensor {sorted(duplicates)[0]!r}",
                hint="all the parts must come from the same split of the same model")
        seen.update(part.tensor_names)
    if first.tensors_total is not None and len(seen) != first.tensors_total:
        raise InvalidModelFileError(
            f"the parts of {names[0]} hold {len(seen)} tensors, but the set should have {first.tensors_total}",
            hint="all the parts must come from the same split of the same model")
    return replace(first.info, parameter_count=sum(p.parameter_count for p in parts), tensor_count=len(seen),
                   file_size=sum(p.file_size for p in parts))


def _check_part(part: GGUFPart, name: str, index: int, first: GGUFPart, first_name: str) -> None:
    hint = "all the parts must come from the same split of the same model"
    if part.count != first.count:
        raise InvalidModelFileError(f"{name} does not belong with {first_name}: it is one of {part.count} parts, "
                                    f"not {first.count}", hint=hint)
    if part.number != index:
        raise InvalidModelFileError(f"{name} should be part {index} of {first.count} but says it is part "
                                    f"{part.number}", hint=hint)
    if part.tensors_total != first.tensors_total:
        raise InvalidModelFileError(f"{name} does not belong with {first_name}: it belongs to a set of "
                                    f"{part.tensors_total} tensors, not {first.tensors_total}", hint=hint)


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def link_set(root: Path, digests: Sequence[str], blobs: Sequence[Path]) -> Path:
    """Make (or repair) the folder of `digests`' set under `root`; return the path of its first part.

    Each part is a hard link to its blob (a symbolic link where the file system has no hard links), made
    under a temporary name and renamed into place, so a reader sees a whole link or none. Call holding the
    store lock.
    """
    folder = root / set_id(digests)
    ensure_private_dir(root)
    ensure_private_dir(folder)
    count = len(digests)
    for number, blob in enumerate(blobs, start=1):
        target = folder / part_filename(number, count)
        if _same_file(target, blob):
            continue
        temp = folder / f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"
        try:
            os.link(blob, temp)
        except OSError:
            os.symlink(blob, temp)
        os.replace(temp, target)
    fsync_dir(folder)
    return folder / part_filename(1, count)


def set_is_linked(root: Path, digests: Sequence[str], blobs: Sequence[Path]) -> Path | None:
    """The first part's path if the set's folder holds every part as its blob, else None (needs `link_set`)."""
    folder = root / set_id(digests)
    count = len(digests)
    for number, blob in enumerate(blobs, start=1):
        if not _same_file(folder / part_filename(number, count), blob):
            return None
    return folder / part_filename(1, count)


def prune_sets(root: Path, keep: set[str]) -> list[str]:
    """Delete the set folders under `root` whose id is not in `keep`; return the ids deleted."""
    if not root.is_dir():
        return []
    removed = []
    for entry in os.scandir(root):
        if entry.name in keep or not entry.is_dir(follow_symlinks=False):
            continue
        if not entry.name.startswith(SET_PREFIX):
            continue  # not ours: leave it alone
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.name)
    if removed:
        fsync_dir(root)
    return removed


def _same_file(path: Path, blob: Path) -> bool:
    try:
        return os.path.samefile(path, blob)
    except OSError:
        return False
