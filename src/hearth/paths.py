"""Where Hearth keeps its files: `HEARTH_HOME` (default `~/.hearth`)."""

from __future__ import annotations

import os
from pathlib import Path


def hearth_home() -> Path:
    """The root of Hearth's data: `$HEARTH_HOME`, else `~/.hearth`."""
    env = os.environ.get("HEARTH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".hearth"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable only by the user; return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.chmod(path, 0o700)
    except OSError:  # pragma: no cover - e.g. a read-only or foreign-owned folder
        pass
    return path
