"""What a user may ask to pull: a catalog short name or a Hugging Face reference, checked at the boundary.

    llama3.2:1b                              a catalog entry (its repository and default quantization)
    llama3.2:1b-q8_0                         the same entry in another quantization
    hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF[:Q4_K_M]
    huggingface.co/OWNER/REPO[:QUANT], https://huggingface.co/OWNER/REPO

A reference keeps the repository's spelling (the hub's URLs are case-sensitive); the local model name is
the lowercase `parse_name` of what the user typed, so `hearth run` with the same text finds the model.
Repository ids and file names from the hub are checked too (`check_repo_id`, `check_filename`): they end up
in URLs, and a hostile listing must not be able to smuggle `..` or a scheme into one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hearth.errors import InvalidNameError
from hearth.store.names import DEFAULT_TAG, ModelName, parse_name

HF_PREFIXES = ("https://huggingface.co/", "http://huggingface.co/", "https://hf.co/", "huggingface.co/", "hf.co/")
HF_HINT = "a Hugging Face reference looks like hf.co/OWNER/REPO or hf.co/OWNER/REPO:Q4_K_M"
_REPO_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?", re.ASCII)
_FILE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+ ()\[\]-]*", re.ASCII)
MAX_FILENAME = 400


@dataclass(frozen=True)
class HubRef:
    """A file or repository on the hub that a local model name stands for."""

    repo_id: str
    quant: str | None  # None: choose the default
    local_name: ModelName

    @property
    def display(self) -> str:
        """hf.co/OWNER/REPO[:QUANT] as the user would write it."""
        return f"hf.co/{self.repo_id}" + (f":{self.quant}" if self.quant else "")


def is_hub_reference(text: str) -> bool:
    """True if `text` names a Hugging Face repository rather than a local or catalog model."""
    return isinstance(text, str) and text.strip().lower().startswith(HF_PREFIXES)


def parse_hub_reference(text: str) -> HubRef:
    """`hf.co/OWNER/REPO[:QUANT]` → HubRef; InvalidNameError with a hint if it is malformed."""
    raw = text.strip()
    lowered = raw.lower()
    prefix = next((p for p in HF_PREFIXES if lowered.startswith(p)), None)
    if prefix is None:
        raise InvalidNameError(f"{raw!r} is not a Hugging Face reference", hint=HF_HINT, field="name")
    rest = raw[len(prefix):].rstrip("/")
    repo, _, quant = rest.partition(":")
    repo_id = check_repo_id(repo)
    if quant and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", quant):
        raise InvalidNameError(f"{quant!r} is not a quantization name", hint=HF_HINT, field="name")
    local = parse_name(f"hf.co/{repo_id}:{quant or DEFAULT_TAG}")
    return HubRef(repo_id, None if not quant or quant.lower() == DEFAULT_TAG else quant, local)


def check_repo_id(repo_id: str) -> str:
    """An `OWNER/REPO` id, refused (InvalidNameError) unless it is two plain parts."""
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if len(parts) != 2 or not all(_REPO_PART.fullmatch(p) for p in parts) or ".." in repo_id:
        shown = repo_id[:100] if isinstance(repo_id, str) else type(repo_id).__name__
        raise InvalidNameError(f"{shown!r} is not a Hugging Face repository id (OWNER/REPO)", hint=HF_HINT,
                               field="name")
    return repo_id


def check_filename(name: str) -> str:
    """A file path inside a repository, refused unless every part is plain (no `..`, no absolute path)."""
    if not isinstance(name, str) or not name or len(name) > MAX_FILENAME or name.startswith("/"):
        raise InvalidNameError(f"the hub listed a file with an unusable name: {str(name)[:100]!r}")
    for part in name.split("/"):
        if part in {".", ".."} or not _FILE_PART.fullmatch(part):
            raise InvalidNameError(f"the hub listed a file with an unusable name: {name[:100]!r}")
    return name
