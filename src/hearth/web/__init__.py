"""The web page's files: HTML, CSS, JavaScript and the vendored libraries, shipped inside the package.

Nothing here runs in Python; `asset` hands a file's bytes and media type to the server. The vendored
libraries (marked, DOMPurify, highlight.js) and their licenses sit in `vendor/`, refreshed from the npm
registry by `scripts/refresh-web-assets.sh`; no build step, no node at run time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    """A file of the page: its bytes, media type and a strong ETag."""

    body: bytes
    media_type: str
    etag: str


@lru_cache(maxsize=64)
def asset(name: str) -> Asset | None:
    """The page's file `name` (like "app.js" or "vendor/purify.min.js"), or None if there is no such file."""
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    suffix = "." + parts[-1].rsplit(".", 1)[-1] if "." in parts[-1] else ""
    media = TYPES.get(suffix)
    if media is None:  # licenses, maps and anything else are not served
        return None
    node = resources.files(__name__)
    for part in parts:
        node = node / part
    if not node.is_file():
        return None
    body = node.read_bytes()
    return Asset(body, media, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
