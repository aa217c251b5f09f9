"""Numbers for people: the one formatter of byte sizes every room and surface uses."""

from __future__ import annotations


def size_text(n: float) -> str:
    """Bytes for people: 512 B, 12 KB, 98 MB, 4.9 GB."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.0f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.0f} KB"
    return f"{int(n)} B"
