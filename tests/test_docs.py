"""Documentation stays complete: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

from hearth.cli import cli
from hearth.config import describe

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_in_the_settings_table() -> None:
    text = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
    for name, doc, _ in describe():
        assert f"`{name}`" in text and f"`HEARTH_{name.upper()}`" in text, name
        assert doc in text, f"description of {name} is out of date in docs/usage.md"


def test_every_command_is_in_the_readme_or_docs() -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *ROOT.glob("docs/*.md")])
    for name in cli.commands:
        assert f"hearth {name}" in text, f"`hearth {name}` is not documented"
