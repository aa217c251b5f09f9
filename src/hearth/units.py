"""Numbers for people: the one formatter of byte sizes every room and surface uses."""

from __future__ import annotations


def size_text(n: float) -> str:
    """Bytes for people: 512 B, 12 KB, 2.1 MB, 98 MB, 4.9 GB (a decimal below ten, none above)."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    for scale, unit in ((1e6, "MB"), (1e3, "KB")):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 9.95 else f"{value:.0f} {unit}"
    return f"{int(n)} B"
