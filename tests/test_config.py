"""Settings: layering and validation of choice-valued settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.config import Settings, load_settings
from hearth.errors import InvalidOptionError


def test_flash_attention_defaults_off_and_layers_flag_over_env_over_file(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_FLASH_ATTENTION", raising=False)
    assert load_settings(home=tmp_path).flash_attention == "off"
    (tmp_path / "config.toml").write_text('flash_attention = "auto"\n')
    assert load_settings(home=tmp_path).flash_attention == "auto"
    monkeypatch.setenv("HEARTH_FLASH_ATTENTION", "ON")
    assert load_settings(home=tmp_path).flash_attention == "on"
    assert load_settings({"flash_attention": "off"}, home=tmp_path).flash_attention == "off"


@pytest.mark.parametrize("value", ["yes", "1", "", "flash", 3])
def test_flash_attention_refuses_anything_but_its_three_values(value: object) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        Settings().merged({"flash_attention": value})
    assert caught.value.field == "flash_attention"
    assert "auto, on, off" in caught.value.message
