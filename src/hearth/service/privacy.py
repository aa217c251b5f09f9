"""`hearth privacy`: what Hearth keeps where, who can reach it, and what has left the machine.

The report is read from the disk and the settings, plus one probe of the configured server address on
loopback (is a Hearth server answering, and does it ask for a key). The self-check runs
`python -m hearth.egress --check` in a child process: offline mode must block a connection, a name lookup
and a datagram there, and let loopback through.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hearth import egress
from hearth.config import Settings
from hearth.store.bundled import locate

PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Stored:
    """One kind of data Hearth keeps: where, how much, and whether it exists yet."""

    what: str
    path: str
    bytes: int
    exists: bool


@dataclass(frozen=True)
class ServerStatus:
    """The configured server address, whether a Hearth server answers there, and how it lets clients in."""

    url: str
    bind: str
    running: bool | None  # None: not probed (the server would listen on a non-loopback address)
    loopback_only: bool
    key_configured: bool  # an API key is set in the settings (environment or config file)
    key_required: bool | None  # the running server refused an unauthenticated request (None: not running)
    offline: bool | None = None  # the running server's own offline mode (None: not running, or not told)


@dataclass(frozen=True)
class PrivacyReport:
    """Everything `hearth privacy` prints."""

    home: str
    offline: bool
    storage: list[Stored]
    history_on: bool
    history_days: int
    server: ServerStatus
    paired_devices: list[str] = field(default_factory=list)
    remote_engines: list[str] = field(default_factory=list)
    egress: list[dict[str, Any]] = field(default_factory=list)
    telemetry: str = "none: Hearth sends no usage data, checks for no updates, loads nothing from CDNs"

    def to_dict(self) -> dict[str, Any]:
        """For `--json`."""
        return asdict(self)


def report(settings: Settings, home: Path, history_path: Path, *, last: int = 10,
           remotes: list[str] | None = None, devices: list[str] | None = None) -> PrivacyReport:
    """The privacy report for this installation (probes the configured server address on loopback)."""
    bundled = locate()
    storage = [
        _stored("models", home / "blobs", home / "manifests"),
        *([_stored("bundled model", bundled)] if bundled is not None else []),
        _stored("conversation history", history_path, history_path.parent),
        _stored("document index", home / "documents"),
        _stored("settings", home / "config.toml"),
        _stored("engine measurements", home / "tuning.json", home / "shapes.json"),
        _stored("partial downloads", *sorted((home / "downloads").glob("*.partial")), path=home / "downloads"),
        _stored("egress log", home / egress.LOG_NAME, home / f"{egress.LOG_NAME}.1"),
        _stored("remote engines", home / "remotes.json"),
        _stored("paired devices", home / "devices.json"),
    ]
    return PrivacyReport(str(home), settings.offline, storage, settings.history, settings.history_days,
                         _server(settings), paired_devices=list(devices or []), remote_engines=list(remotes or []),
                         egress=egress.read_log(home, last))


def self_check() -> dict[str, Any]:
    """Run the offline guard's check in a child process; its outcome per attempt (`blocked` and why)."""
    done = subprocess.run([sys.executable, "-m", "hearth.egress", "--check"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=False)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        return {"the check itself": {"blocked": False, "error": (done.stderr or done.stdout).strip()[-300:]}}
    return result if isinstance(result, dict) else {}


def _stored(what: str, *paths: Path, path: Path | None = None) -> Stored:
    """What `paths` hold together, shown under `path` (default: the first of them)."""
    total, exists = 0, False
    for item in paths:
        if item.exists():
            exists = True
            total += _size(item)
    return Stored(what, str(path or paths[0]), total, exists)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total, seen = 0, set()
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(Path(root) / name)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:  # hard links (a blob under two names) count once
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _server(settings: Settings) -> ServerStatus:
    bind = settings.host.strip("[]")
    probe_host = "127.0.0.1" if bind in ("", "0.0.0.0", "*") else "::1" if bind == "::" else bind
    host = f"[{probe_host}]" if ":" in probe_host else probe_host
    url = f"http://{host}:{settings.port}"
    loopback = egress.is_loopback(bind) if bind not in ("", "0.0.0.0", "::", "*") else False
    running: bool | None = None
    key_required = offline = None
    if egress.is_loopback(probe_host):  # probe only on this machine: never a connection elsewhere
        status, _ = _get(url + "/api/tags")
        running = status is not None
        key_required = None if status is None else status == 401
        if running:
            _, body = _get(url + "/api/version", settings.api_key)
            offline = body.get("hearth_offline") if isinstance(body.get("hearth_offline"), bool) else None
    return ServerStatus(url, settings.host, running, loopback, bool(settings.api_key), key_required, offline)


def _get(url: str, key: str | None = None) -> tuple[int | None, dict[str, Any]]:
    """(HTTP status or None if nothing answers, the JSON object it sent or {}); `key` goes as a bearer token."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
        with opener.open(request, timeout=PROBE_TIMEOUT) as response:
            status, raw = int(response.status), response.read(65536)
    except urllib.error.HTTPError as err:
        return int(err.code), {}
    except (OSError, ValueError):
        return None, {}
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    return status, body if isinstance(body, dict) else {}
