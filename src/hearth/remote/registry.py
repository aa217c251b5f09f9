"""Registered remote engines: a name Hearth answers to, and where the model behind it really runs.

Kept in `HEARTH_HOME/remotes.json` (0600, written whole to a temporary file and renamed): for each name the
server's base URL, its API (`openai`: `/v1/chat/completions`; `ollama`: `/api/chat`), the model id there,
the kind of server found when it was registered, and the *name* of the environment variable holding its
key. Keys themselves are never written to disk or logs: they are read from that variable per request.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hearth.errors import ConflictError, InvalidRequestError, NotFoundError
from hearth.paths import ensure_private_dir
from hearth.store.names import parse_name

FILE = "remotes.json"
APIS = ("openai", "ollama")
SERVERS = ("hearth", "ollama", "llama-server", "openai-compatible")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_REMOTES = 256


@dataclass(frozen=True)
class Remote:
    """A model served elsewhere, under a local name."""

    name: str  # normalised like a local model name (`box` is `box:latest`)
    url: str  # the server's base URL, without /v1 or /api
    api: str  # "openai" or "ollama"
    model: str  # the model id on that server
    server: str = "openai-compatible"  # what answered when it was registered (SERVERS)
    key_env: str | None = None  # the environment variable holding its API key
    added: str = ""
    # a persona (`hearth create NAME` FROM a remote): its base remote, system prompt, defaults and seed turns
    base: str | None = None
    system: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)

    def key(self) -> str | None:
        """The API key, read from its environment variable now (None if unset or none was named)."""
        return os.environ.get(self.key_env) or None if self.key_env else None

    @property
    def where(self) -> str:
        """How the remote is shown: `model` at its URL."""
        return f"{self.model} at {self.url}"


def check_url(url: str) -> str:
    """A base URL (http or https, a host, no credentials, no query), without a trailing /v1 or /api."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(f"{url!r} is not an http:// or https:// URL", field="url")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidRequestError("a remote URL may not hold credentials, a query or a fragment",
                                  hint="put the key in an environment variable and name it with --key-env",
                                  field="url")
    path = parts.path.rstrip("/")
    for suffix in ("/v1", "/api"):
        path = path.removesuffix(suffix)
    return f"{parts.scheme}://{parts.netloc}{path}"


def check_key_env(name: str | None) -> str | None:
    """The name of an environment variable (never its value), checked."""
    if name is None or name == "":
        return None
    if not _ENV_NAME.fullmatch(name):
        raise InvalidRequestError(f"{name[:64]!r} is not an environment variable name", field="key_env",
                                  hint="name the variable that holds the key, e.g. --key-env OPENAI_API_KEY")
    return name


class Registry:
    """The remotes of one HEARTH_HOME."""

    def __init__(self, home: Path) -> None:
        self.path = home / FILE

    def list(self) -> list[Remote]:
        """Every registered remote, by name (a damaged file reads as none, and is not overwritten silently)."""
        return sorted(self._read().values(), key=lambda r: r.name)

    def find(self, name: str) -> Remote | None:
        """The remote registered as `name`, if any."""
        try:
            key = str(parse_name(name))
        except InvalidRequestError:
            return None
        return self._read().get(key)

    def get(self, name: str) -> Remote:
        """The remote registered as `name`; NotFoundError if there is none."""
        remote = self.find(name)
        if remote is None:
            raise NotFoundError(f"no remote engine is registered as {name!r}", hint="`hearth remote list`")
        return remote

    def add(self, remote: Remote, *, replace: bool = False) -> Remote:
        """Register `remote` (its name normalised); ConflictError if the name is taken and not `replace`."""
        remotes = self._read()
        name = str(parse_name(remote.name))
        if name in remotes and not replace:
            raise ConflictError(f"a remote engine is already registered as {name!r}",
                                hint=f"`hearth remote rm {name}` first, or choose another name")
        if len(remotes) >= MAX_REMOTES and name not in remotes:
            raise ConflictError(f"at most {MAX_REMOTES} remote engines can be registered")
        stored = dataclasses.replace(remote, name=name, url=check_url(remote.url),
                                     key_env=check_key_env(remote.key_env),
                                     added=remote.added or time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        remotes[name] = stored
        self._write(remotes)
        return stored

    def remove(self, name: str) -> Remote:
        """Forget the remote registered as `name`; NotFoundError if there is none."""
        remote = self.get(name)
        remotes = self._read()
        del remotes[remote.name]
        self._write(remotes)
        return remote

    def _read(self) -> dict[str, Remote]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise ConflictError(f"{self.path} is damaged; Hearth will not overwrite it",
                                hint="fix or delete the file, then register the remotes again") from None
        found = {}
        for entry in (data.get("remotes") or {}).values() if isinstance(data, dict) else []:
            try:
                remote = Remote(**entry)
            except TypeError:
                continue
            if remote.api in APIS:
                found[remote.name] = remote
        return found

    def _write(self, remotes: dict[str, Remote]) -> None:
        ensure_private_dir(self.path.parent)
        temp = self.path.with_name(f".{FILE}.{os.getpid()}.tmp")
        body = {"version": 1, "remotes": {name: asdict(r) for name, r in sorted(remotes.items())}}
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(body, out, indent=1)
            out.write("\n")
        os.replace(temp, self.path)
