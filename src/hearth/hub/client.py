"""Hugging Face through `huggingface_hub`: repository listings, file URLs, auth headers, and its errors as ours.

`huggingface_hub` brings what a download needs from the hub: `HF_ENDPOINT` (read here at call time, so a
test or a mirror can change it), tokens (`HF_TOKEN` or `hf auth login`), proxies, retries, and the
`/api/models/{repo}` listing with each file's LFS sha256 and size. Its telemetry (a request to
`/api/agent-harnesses` and agent detection in the User-Agent) is switched off unless the user set
`HF_HUB_DISABLE_TELEMETRY` themselves: Hearth talks to the network only to fetch what was asked for.
Its HTTP client is Hearth's (`hearth.hub.redirects`): every redirect is checked against `download_hosts`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hearth.egress import is_offline
from hearth.errors import DownloadError, HearthError, NotFoundError, OfflineError
from hearth.fit.quants import default_quant, quality_order, quant_of
from hearth.hub.redirects import endpoint
from hearth.hub.refs import check_filename, check_repo_id
from hearth.units import size_text

TOKEN_HINT = "log in with `hf auth login` or set HF_TOKEN (and accept the model's terms on huggingface.co)"
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_PARTS = 999
_CLIENT_SET = False


def hf() -> Any:
    """The `huggingface_hub` module, imported on first use with its telemetry off (see the module docstring)."""
    if "HF_HUB_DISABLE_TELEMETRY" not in os.environ:
        os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    import huggingface_hub
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_DISABLE_TELEMETRY") == "1":
        constants.HF_HUB_DISABLE_TELEMETRY = True
    if is_offline():  # the library's own offline mode too, beside Hearth's guard (hearth.egress)
        constants.HF_HUB_OFFLINE = True
    # its retry notices ("'[Errno -2] ...' thrown while requesting GET ...") would show before Hearth's own
    # sentence about the same failure: keep only its errors
    from huggingface_hub.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    global _CLIENT_SET
    if not _CLIENT_SET:  # redirects checked hop by hop, the token kept to the hub (hearth.hub.redirects)
        from hearth.hub.redirects import client_factory

        huggingface_hub.set_client_factory(client_factory)
        _CLIENT_SET = True
    return huggingface_hub


@dataclass(frozen=True)
class RemoteFile:
    """A GGUF file in a repository, as the hub lists it."""

    repo_id: str
    filename: str
    size: int
    sha256: str | None
    quant: str | None
    part: tuple[int, int] | None = None  # (n, of) for split files

    @property
    def digest(self) -> str | None:
        """`sha256:<hex>` as the store names blobs, or None if the hub advertised no hash."""
        return None if self.sha256 is None else "sha256:" + self.sha256


@dataclass(frozen=True)
class RemoteModel:
    """One model in a repository: a single GGUF file, or every part of a split one, in order."""

    parts: tuple[RemoteFile, ...]

    @property
    def first(self) -> RemoteFile:
        """The file llama.cpp is given (for a split model, the part holding all the metadata)."""
        return self.parts[0]

    @property
    def quant(self) -> str | None:
        """The quantization its name says."""
        return self.first.quant

    @property
    def size(self) -> int:
        """Bytes of all its files together."""
        return sum(p.size for p in self.parts)

    @property
    def is_split(self) -> bool:
        """True for a model published as several `-0000K-of-0000N.gguf` parts."""
        return len(self.parts) > 1

    @property
    def label(self) -> str:
        """Its file name, or the first part's and how many parts there are."""
        return self.first.filename + (f" (+{len(self.parts) - 1} more parts)" if self.is_split else "")


@dataclass(frozen=True)
class RepoListing:
    """A repository's GGUF model files at one commit."""

    repo_id: str
    commit: str
    files: tuple[RemoteFile, ...]
    license: str | None
    downloads: int | None
    likes: int | None

    def models(self) -> list[RemoteModel]:
        """Every complete model: single files, then split sets (a set with a part missing is left out)."""
        singles = [RemoteModel((f,)) for f in self.files if f.part is None]
        sets: dict[tuple[str, int], dict[int, RemoteFile]] = {}
        for file in self.files:
            if file.part is not None:
                prefix = _SPLIT.sub("", file.filename).lower()
                sets.setdefault((prefix, file.part[1]), {})[file.part[0]] = file
        complete = [RemoteModel(tuple(parts[k] for k in range(1, count + 1)))
                    for (_, count), parts in sorted(sets.items())
                    if 1 < count <= MAX_PARTS and all(k in parts for k in range(1, count + 1))]
        return singles + complete

    def quants(self) -> dict[str, RemoteModel]:
        """Models by quantization, best first (a single file wins over a split set, then the first listed)."""
        found: dict[str, RemoteModel] = {}
        for model in self.models():
            if model.quant and model.quant not in found:
                found[model.quant] = model
        return {q: found[q] for q in quality_order(list(found))}

    def choose(self, quant: str | None) -> RemoteModel:
        """The model for `quant` (None: the default); NotFoundError listing what there is."""
        quants = self.quants()
        unnamed = [m for m in self.models() if m.quant is None]
        if quant is None:
            if not quants and len(unnamed) == 1:
                return unnamed[0]
            chosen = default_quant(list(quants))
            if chosen is not None:
                return quants[chosen]
        else:
            match = {q.upper(): f for q, f in quants.items()}.get(quant.upper())
            if match is not None:
                return match
        self._missing(quant, quants)
        raise AssertionError  # pragma: no cover - _missing always raises

    def _missing(self, quant: str | None, quants: dict[str, RemoteModel]) -> None:
        split = sorted({f.quant or f.filename for f in self.files if f.part is not None})
        what = f"no {quant} file" if quant else "no GGUF model Hearth can choose by itself"
        if quants:
            listed = ", ".join(f"{q} ({size_text(f.size)})" for q, f in quants.items())
            example = next(iter(quants))
            raise NotFoundError(f"hf.co/{self.repo_id} has {what}; it has {listed}",
                                hint=f"e.g. `hearth pull hf.co/{self.repo_id}:{example}`")
        if split:
            raise NotFoundError(
                f"hf.co/{self.repo_id} has {what}: its split GGUFs ({', '.join(split)}) are missing parts",
                hint="the repository is incomplete; choose another one (`hearth search NAME`)")
        raise NotFoundError(f"hf.co/{self.repo_id} has no GGUF model files",
                            hint="Hearth runs GGUF models; look for a repository whose name ends in -GGUF "
                                 "(`hearth search NAME`)")


def listing(repo_id: str, revision: str | None = None) -> RepoListing:
    """The GGUF files of `repo_id` (at `revision`, default main) with sizes and LFS sha256 hashes."""
    check_repo_id(repo_id)
    with translate_errors(f"hf.co/{repo_id}"):
        info = hf().HfApi(endpoint=endpoint()).model_info(repo_id, revision=revision, files_metadata=True)
    canonical = check_repo_id(info.id)
    if not isinstance(info.sha, str) or not re.fullmatch(r"[0-9a-f]{40}", info.sha):
        raise DownloadError(f"the hub did not say which commit of hf.co/{repo_id} it listed",
                            hint=f"check that HF_ENDPOINT ({endpoint()}) is a Hugging Face hub")
    files = tuple(f for f in (_remote_file(canonical, s) for s in info.siblings or []) if f is not None)
    card = info.card_data
    license = getattr(card, "license", None) if card is not None else None
    return RepoListing(canonical, info.sha, files, license if isinstance(license, str) else None,
                       info.downloads, info.likes)


def _remote_file(repo_id: str, sibling: Any) -> RemoteFile | None:
    name = sibling.rfilename
    base = name.rsplit("/", 1)[-1].lower()
    if not base.endswith(".gguf") or base.startswith("mmproj") or "imatrix" in base:
        return None
    check_filename(name)
    lfs = sibling.lfs
    sha = lfs.sha256.lower() if lfs is not None and isinstance(lfs.sha256, str) else None
    if sha is not None and not _SHA256.fullmatch(sha):
        raise DownloadError(f"the hub listed {name} with a malformed sha256")
    size = (lfs.size if lfs is not None else None) or sibling.size or 0
    split = _SPLIT.search(name)
    part = (int(split.group(1)), int(split.group(2))) if split else None
    return RemoteFile(repo_id, name, int(size), sha, quant_of(name), part)


def file_url(repo_id: str, filename: str, commit: str) -> str:
    """The hub's `/resolve/` URL of a file at an exact commit (the hub redirects it to its CDN)."""
    return hf().hf_hub_url(repo_id, filename, revision=commit, endpoint=endpoint())


def auth_headers() -> dict[str, str]:
    """Headers for a request to the hub: its user agent and, if the user has one, their token.

    The token goes to the hub's own URL only: Hearth's HTTP client drops it from any request to another
    origin (`hearth.hub.redirects`), see tests/hub/test_pull.py::test_a_redirect_to_the_cdn_never_receives_the_token.
    """
    headers = dict(hf().utils.build_hf_headers(library_name="hearth"))
    headers["Accept-Encoding"] = "identity"  # sizes and ranges refer to the bytes on disk
    return headers


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn `huggingface_hub` and network exceptions into Hearth errors that say what to do."""
    from huggingface_hub import errors as hf_errors

    try:
        yield
    except HearthError:
        raise
    except hf_errors.GatedRepoError:
        raise DownloadError(f"{what} is gated: it needs you to accept its terms and log in", hint=TOKEN_HINT) from None
    except hf_errors.RepositoryNotFoundError:
        raise NotFoundError(f"{what} was not found on Hugging Face",
                            hint=f"check the spelling (`hearth search ...`); private repositories need a token: "
                                 f"{TOKEN_HINT}") from None
    except hf_errors.RevisionNotFoundError:
        raise NotFoundError(f"{what}: that revision does not exist") from None
    except hf_errors.RemoteEntryNotFoundError:
        raise NotFoundError(f"{what}: the file is not in the repository (any more)",
                            hint="run the command again to re-read the file listing") from None
    except hf_errors.OfflineModeIsEnabled:
        if is_offline():
            raise OfflineError(f"reaching {what} needs the network, and offline mode is on",
                               hint="run it without --offline (or unset HEARTH_OFFLINE)") from None
        raise DownloadError(f"cannot reach {what}: HF_HUB_OFFLINE is set",
                            hint="unset HF_HUB_OFFLINE to let Hearth download") from None
    except hf_errors.HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else "an"
        raise DownloadError(f"Hugging Face answered HTTP {status} for {what}",
                            hint="try again later" if str(status).startswith("5") else TOKEN_HINT) from None
    except Exception as err:  # httpx connection/timeout errors, proxies, TLS
        if not _is_network_error(err):
            raise
        raise DownloadError(f"could not reach Hugging Face ({endpoint()}) for {what}: {_reason(err)}",
                            hint="check your internet connection, proxy or HF_ENDPOINT") from None


def _is_network_error(err: BaseException) -> bool:
    module = type(err).__module__
    return module.startswith(("httpx", "httpcore", "ssl")) or isinstance(err, (ConnectionError, TimeoutError))


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]


