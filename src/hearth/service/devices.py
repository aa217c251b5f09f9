"""Paired devices: how a phone on the LAN gets to use the web page without an API key.

`hearth serve --lan` (or `hearth devices pair`) makes a one-time pairing code, shown as a QR code. The
browser that opens it trades the code for a device token (`redeem`), which the server sets as an HttpOnly,
SameSite=Strict cookie; every later request carries it and `check` lets it through. `hearth devices`
lists the devices and revokes them.

Storage: `HEARTH_HOME/devices.json` (0600), replaced atomically under an `fcntl` lock so the CLI and a
running server can both change it. Only SHA-256 hashes of codes and tokens are stored: the file alone lets
nobody in. Codes live `CODE_TTL` seconds and work once; after `MAX_FAILURES` wrong codes every code in
force is cancelled, so guessing one is hopeless (50 random bits, 20 tries).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hearth.errors import ConflictError, NotFoundError, PairingError
from hearth.paths import ensure_private_dir

FILE = "devices.json"
CODE_TTL = 300.0
MAX_FAILURES = 20
MAX_DEVICES = 100
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
CODE_LENGTH = 10
TOUCH_EVERY = 60.0  # seconds between updates of a device's last_seen


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _normalise(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


@dataclass(frozen=True)
class Device:
    """A paired browser: an id to revoke it by, a name (its user agent), when it paired and was last seen."""

    id: str
    name: str
    paired_at: float
    last_seen: float
    token_hash: str = ""


@dataclass(frozen=True)
class PairingCode:
    """A one-time code and when it stops working (seconds since the epoch)."""

    code: str
    expires_at: float


class Devices:
    """The paired devices and pairing codes of one HEARTH_HOME."""

    def __init__(self, home: Path, clock: Any = time.time) -> None:
        self.path = home / FILE
        self.clock = clock
        self._mutex = threading.Lock()
        self._cache: tuple[tuple[int, int, int], dict[str, Device]] | None = None  # (file stamp, devices by hash)
        self._touched: dict[str, float] = {}

    # -- codes --------------------------------------------------------------------------------------------
    def new_code(self, ttl: float = CODE_TTL) -> PairingCode:
        """A fresh one-time pairing code, valid for `ttl` seconds."""
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        expires = self.clock() + ttl
        with self._changing() as data:
            data["codes"][_hash(code)] = expires
        return PairingCode(code, expires)

    def redeem(self, code: str, name: str) -> tuple[Device, str]:
        """Trade a pairing code for a new device and its token (PairingError if the code does not work)."""
        key = _hash(_normalise(code)) if isinstance(code, str) else ""
        now = self.clock()
        with self._changing() as data:
            expires = data["codes"].pop(key, None)
            if expires is None or expires < now:
                data["failures"] = int(data.get("failures", 0)) + 1
                if data["failures"] >= MAX_FAILURES:
                    data["codes"], data["failures"] = {}, 0
                raise PairingError("that pairing code is wrong, already used or expired",
                                   hint="run `hearth devices pair` on the computer for a new one")
            if len(data["devices"]) >= MAX_DEVICES:
                raise ConflictError(f"at most {MAX_DEVICES} devices can be paired",
                                    hint="revoke some with `hearth devices revoke ID`")
            token = secrets.token_urlsafe(32)
            device = Device(secrets.token_hex(4), " ".join(name.split())[:120] or "browser", now, now, _hash(token))
            data["devices"][device.id] = asdict(device)
            data["failures"] = 0
        return device, token

    # -- devices ------------------------------------------------------------------------------------------
    def check(self, token: str) -> bool:
        """True if `token` belongs to a paired device (revocations count at once, even from another process)."""
        if not token:
            return False
        digest = _hash(token)
        devices = self._devices()
        found = next((d for h, d in devices.items() if hmac.compare_digest(h, digest)), None)
        if found is None:
            return False
        now = self.clock()
        if now - self._touched.get(found.id, found.last_seen) > TOUCH_EVERY:
            self._touched[found.id] = now
            with self._changing() as data:
                if found.id in data["devices"]:
                    data["devices"][found.id]["last_seen"] = now
        return True

    def list(self) -> list[Device]:
        """The paired devices, oldest first."""
        return sorted(self._devices().values(), key=lambda d: d.paired_at)

    def revoke(self, ref: str) -> Device:
        """Unpair the device whose id is or starts with `ref` (NotFoundError, or ConflictError if ambiguous)."""
        with self._changing() as data:
            matches = [k for k in data["devices"] if ref and k.startswith(ref.lower())]
            if not matches:
                raise NotFoundError(f"no paired device {ref!r}", hint="`hearth devices` lists them")
            if len(matches) > 1:
                raise ConflictError(f"{ref!r} matches {len(matches)} devices", hint="give more of its id")
            return Device(**data["devices"].pop(matches[0]))

    # -- the file -----------------------------------------------------------------------------------------
    def _devices(self) -> dict[str, Device]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)  # every write replaces the file: a new inode
        with self._mutex:
            if self._cache is not None and self._cache[0] == stamp:
                return self._cache[1]
            devices = {}
            for entry in self._read()["devices"].values():
                device = Device(**entry)
                devices[device.token_hash] = device
            self._cache = (stamp, devices)
            return devices

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not an object")
            devices = {k: dict(v) for k, v in dict(data.get("devices") or {}).items()}
            for entry in devices.values():
                Device(**entry)  # every field there, nothing unknown
            codes = {str(k): float(v) for k, v in dict(data.get("codes") or {}).items()}
            return {"devices": devices, "codes": codes, "failures": int(data.get("failures", 0))}
        except FileNotFoundError:
            return {"devices": {}, "codes": {}, "failures": 0}
        except (OSError, ValueError, TypeError):
            raise ConflictError(f"{self.path} is damaged; Hearth will not overwrite it",
                                hint="delete it and pair your devices again") from None

    @contextmanager
    def _changing(self) -> Iterator[dict[str, Any]]:
        """The file's contents to change under an exclusive lock; written back atomically on success."""
        ensure_private_dir(self.path.parent)
        fd = os.open(self.path.with_name(".devices.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = self._read()
            now = self.clock()
            data["codes"] = {k: v for k, v in data["codes"].items() if v >= now}
            try:
                yield data
            finally:  # a refused code still counts as a failure: write even when the block raises
                self._write(data)
        finally:
            os.close(fd)

    def _write(self, data: dict[str, Any]) -> None:
        temp = self.path.with_name(f".{FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"version": 1, **data}, out, indent=1)
            out.write("\n")
        os.replace(temp, self.path)
