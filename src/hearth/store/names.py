"""Model names and blob digests, validated at the boundary.

A model name is `name[:tag]`, like Ollama's: one to three `/`-separated components (`smollm2`,
`user/model`, `hf.co/owner/repo`), each starting with a letter or digit and made of letters, digits,
`.`, `_` and `-`; the tag (default `latest`) follows the same rule. Names and tags are case-insensitive
and stored lowercase. Everything else (path tricks, control characters, non-ASCII lookalikes, overlong
text) raises `InvalidNameError`. `inside` is the second line of defence: every path the store builds
from a name is resolved and checked to lie under the store root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from hearth.errors import InvalidNameError

DEFAULT_TAG = "latest"
MAX_COMPONENTS = 3
MAX_COMPONENT_LENGTH = 80
MAX_TAG_LENGTH = 80
MAX_NAME_LENGTH = 200
NAME_HINT = "use a name like 'mymodel', 'mymodel:q4_k_m' or 'hf.co/owner/repo:latest'"
_PART = re.compile(r"[a-z0-9][a-z0-9._-]*", re.ASCII)
_DIGEST = re.compile(r"sha256[:-]([0-9a-fA-F]{64})", re.ASCII)


@dataclass(frozen=True, order=True)
class ModelName:
    """A validated, lowercase model name and tag; `str()` gives `name:tag`."""

    name: str
    tag: str = DEFAULT_TAG

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def components(self) -> tuple[str, ...]:
        """The `/`-separated parts of the name."""
        return tuple(self.name.split("/"))


def parse_name(text: str | ModelName) -> ModelName:
    """Validate `text` as a model name (`name[:tag]`); InvalidNameError explains what is wrong."""
    if isinstance(text, ModelName):
        return text
    if not isinstance(text, str):
        _fail(f"a model name must be text, not {type(text).__name__}")
    _check_characters(text)
    if text.count(":") > 1:
        _fail(f"model name {text!r} has more than one ':' (only one separates the name from the tag)")
    name, sep, tag = text.lower().partition(":")
    if sep and not tag:
        _fail(f"model name {text!r} has an empty tag after ':'")
    tag = tag or DEFAULT_TAG
    parts = name.split("/")
    if len(parts) > MAX_COMPONENTS:
        _fail(f"model name {text!r} has {len(parts)} '/'-separated parts; "
              f"at most {MAX_COMPONENTS} are allowed")
    for part in parts:
        _check_part(text, part)
    _check_tag(text, tag)
    return ModelName(name, tag)


def _check_characters(text: str) -> None:
    if not text or not text.strip():
        _fail("the model name is empty")
    if len(text) > MAX_NAME_LENGTH:
        _fail(f"the model name is {len(text)} characters long; at most {MAX_NAME_LENGTH} are allowed")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        _fail(f"model name {text!r} contains a control character")
    if any(c.isspace() for c in text):
        _fail(f"model name {text!r} contains whitespace")
    if not text.isascii():
        bad = next(c for c in text if not c.isascii())
        _fail(f"model name {text!r} contains the non-ASCII character {bad!r} (U+{ord(bad):04X})")
    if "\\" in text:
        _fail(f"model name {text!r} contains a backslash")
    if text.startswith("/"):
        _fail(f"model name {text!r} looks like an absolute path")


def _check_part(text: str, part: str) -> None:
    if not part:
        _fail(f"model name {text!r} has an empty part (a leading, trailing or doubled '/')")
    if part in {".", ".."}:
        _fail(f"model name {text!r} contains the path component {part!r}")
    if len(part) > MAX_COMPONENT_LENGTH:
        _fail(f"part {part[:20]!r}... of the model name is longer than {MAX_COMPONENT_LENGTH} characters")
    if not _PART.fullmatch(part):
        _fail(f"part {part!r} of model name {text!r} must start with a letter or digit and contain "
              "only letters, digits, '.', '_' and '-'")
    if part.endswith(".json"):  # would clash with a manifest file (<name>/<tag>.json)
        _fail(f"part {part!r} of model name {text!r} may not end in '.json'")


def _check_tag(text: str, tag: str) -> None:
    if len(tag) > MAX_TAG_LENGTH:
        _fail(f"the tag of model name {text!r} is longer than {MAX_TAG_LENGTH} characters")
    if not _PART.fullmatch(tag):
        _fail(f"tag {tag!r} of model name {text!r} must start with a letter or digit and contain "
              "only letters, digits, '.', '_' and '-'")


def _fail(message: str) -> NoReturn:
    raise InvalidNameError(message, hint=NAME_HINT, field="name")


def parse_digest(text: str) -> str:
    """Validate a blob digest (`sha256:<64 hex>` or `sha256-<64 hex>`) and return it as `sha256:<hex>`."""
    match = _DIGEST.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        shown = text[:100] if isinstance(text, str) else type(text).__name__
        raise InvalidNameError(
            f"{shown!r} is not a valid digest",
            hint="a digest looks like 'sha256:' followed by 64 hex digits", field="digest",
        )
    return "sha256:" + match.group(1).lower()


def inside(root: Path, *parts: str) -> Path:
    """`root` joined with `parts`, refused (InvalidNameError) unless it resolves to a place under `root`."""
    base = root.resolve()
    path = base.joinpath(*parts)
    if not path.resolve().is_relative_to(base) or path == base:
        raise InvalidNameError(f"the path {'/'.join(parts)!r} would leave the model store", hint=NAME_HINT)
    return path
