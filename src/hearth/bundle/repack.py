"""An installed distribution packed back into a wheel, from the files pip recorded when it installed them.

pip lists every file it installs in the distribution's `RECORD`, with its sha256. When each of those files
is still there with that hash, the files *are* the wheel's content: packing them again (with a fresh
`RECORD`, without pip's own `INSTALLER`, `REQUESTED` and `direct_url.json`, without compiled `.pyc`) gives
a wheel that installs the same package, with no network and no compiler. Console scripts are not packed:
pip writes them again from `entry_points.txt`. A distribution with other files outside its package folders
(data files, headers) cannot be packed this way; it is downloaded instead.

An editable install (Hearth in a checkout, `pip install -e .`) has no files in `RECORD` but its metadata;
its packages are packed from the source folder the editable install points at.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hearth.store.blobs import CHUNK, hash_file

PIP_FILES = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so packing the same files twice gives the same wheel


class NotRepackable(Exception):  # noqa: N818 - a reason, caught in this room, never shown as an error
    """Why an installed distribution cannot be packed back into a wheel."""


@dataclass(frozen=True)
class Member:
    """A file of the wheel: its name in the archive, where it is, its size and recorded sha256 (if any)."""

    arcname: str
    path: Path
    size: int
    sha256: str | None


def direct_url(dist: importlib.metadata.Distribution) -> dict[str, object]:
    """pip's record of where `dist` was installed from (PEP 610), or {}."""
    try:
        data = json.loads(dist.read_text("direct_url.json") or "{}")
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def is_editable(dist: importlib.metadata.Distribution) -> bool:
    """True for an editable install (`pip install -e`)."""
    info = direct_url(dist).get("dir_info")
    return isinstance(info, dict) and info.get("editable") is True


def members(dist: importlib.metadata.Distribution) -> list[Member]:
    """The files a wheel of `dist` holds, checked against `RECORD`'s hashes; NotRepackable if one changed."""
    found = _recorded(dist)
    if is_editable(dist):
        found += _source_members(dist)
    for member in found:
        if member.sha256 is not None and hash_file(member.path)[0] != "sha256:" + member.sha256:
            raise NotRepackable(f"{member.arcname} changed since it was installed")
    return sorted(found, key=lambda m: (".dist-info/" in m.arcname, m.arcname))


def wheel_filename(dist: importlib.metadata.Distribution) -> str:
    """`name-version-tags.whl` for `dist`, with the tags its installed `WHEEL` file records."""
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]
    if not tags:
        raise NotRepackable("its WHEEL file records no tags")
    triples = [tag.split("-") for tag in tags]
    columns = [list(dict.fromkeys(t[i] for t in triples)) for i in range(3)]
    compressed = len(columns[0]) * len(columns[1]) * len(columns[2]) == len(set(tags))
    tag = "-".join(".".join(c) for c in columns) if compressed else tags[0]
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    return f"{name}-{dist.version}-{tag}.whl"


def write_wheel(found: list[Member], out: BinaryIO, advance: Callable[[int], None]) -> None:
    """Write a wheel holding `found` to `out`, with a new RECORD; `advance` hears the bytes packed."""
    record = []
    info = next(m.arcname.split("/")[0] for m in found if m.arcname.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(out, "w") as archive:
        for member in found:
            entry = zipfile.ZipInfo(member.arcname, ZIP_TIME)
            mode = 0o755 if os.access(member.path, os.X_OK) else 0o644
            entry.external_attr = (0o100000 | mode) << 16
            entry.file_size = member.size
            digest = hashlib.sha256()
            with open(member.path, "rb") as source:
                entry.compress_type = zipfile.ZIP_DEFLATED if _compresses(source, member.size) else zipfile.ZIP_STORED
                with archive.open(entry, "w") as target:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        target.write(chunk)
                        advance(len(chunk))
            encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
            record.append(f"{member.arcname},sha256={encoded},{member.size}")
        record.append(f"{info}/RECORD,,")
        archive.writestr(zipfile.ZipInfo(f"{info}/RECORD", ZIP_TIME), "\n".join(record) + "\n")


def _compresses(source: BinaryIO, size: int) -> bool:
    """Whether deflating is worth it: a sample from the middle of a large file shrinks by a tenth (model weights
    do not, and deflating 100 MB of them costs seconds for nothing); small files are always deflated."""
    if size < 4 * CHUNK:
        return True
    source.seek(size // 2)
    sample = source.read(CHUNK)
    source.seek(0)
    return len(zlib.compress(sample, 1)) < 0.9 * len(sample)


def _recorded(dist: importlib.metadata.Distribution) -> list[Member]:
    """The files pip installed for `dist` that belong in its wheel."""
    files = dist.files
    if not files:
        raise NotRepackable("pip kept no list of its files (RECORD)")
    scripts = {ep.name for ep in dist.entry_points if ep.group in ("console_scripts", "gui_scripts")}
    found = []
    for file in files:
        parts = file.parts
        if ".." in parts:
            if file.name.removesuffix(".exe") in scripts:
                continue  # pip writes console scripts again from entry_points.txt
            raise NotRepackable(f"it installed {file} outside its package folders")
        if "__pycache__" in parts or file.suffix == ".pyc" or parts[0].startswith("__editable__"):
            continue
        if parts[0].endswith(".dist-info") and (len(parts) == 2 and parts[1] in PIP_FILES):
            continue
        if file.name.endswith(".pth") and is_editable(dist):
            continue
        if file.hash is None or file.hash.mode != "sha256":
            raise NotRepackable(f"RECORD has no sha256 for {file}")
        path = Path(str(dist.locate_file(file)))
        if not path.is_file():
            raise NotRepackable(f"{file} is missing")
        found.append(Member(file.as_posix(), path, path.stat().st_size, _from_record(file.hash.value)))
    return found


def _source_members(dist: importlib.metadata.Distribution) -> list[Member]:
    """The package files of an editable install, from the source folders it points at."""
    found = []
    for top in (dist.read_text("top_level.txt") or "").split():
        spec = importlib.util.find_spec(top)
        if spec is None or not spec.submodule_search_locations:
            raise NotRepackable(f"the source of its package {top} cannot be found")
        root = Path(list(spec.submodule_search_locations)[0])
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            for name in sorted(names):
                path = Path(folder, name)
                if name.endswith(".pyc") or name.startswith(".") or not path.is_file():
                    continue
                arcname = f"{top}/{path.relative_to(root).as_posix()}"
                found.append(Member(arcname, path, path.stat().st_size, None))
    if not found:
        raise NotRepackable("its editable install names no packages (top_level.txt)")
    return found


def _from_record(value: str) -> str:
    """RECORD's urlsafe base64 sha256 as hex."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()

