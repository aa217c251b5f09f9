"""Settings: layering and validation of choice-valued settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.config import Settings, load_settings
from hearth.errors import InvalidOptionError


def test_flash_attention_defaults_to_measure_and_layers_flag_over_env_over_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_FLASH_ATTENTION", raising=False)
    assert load_settings(home=tmp_path).flash_attention == "measure"
    (tmp_path / "config.toml").write_text('flash_attention = "auto"\n')
    assert load_settings(home=tmp_path).flash_attention == "auto"
    monkeypatch.setenv("HEARTH_FLASH_ATTENTION", "ON")
    assert load_settings(home=tmp_path).flash_attention == "on"
    assert load_settings({"flash_attention": "off"}, home=tmp_path).flash_attention == "off"


@pytest.mark.parametrize("value", ["yes", "1", "", "flash", 3])
def test_flash_attention_refuses_anything_but_its_four_values(value: object) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        Settings().merged({"flash_attention": value})
    assert caught.value.field == "flash_attention"
    assert "measure, auto, on, off" in caught.value.message


@pytest.mark.parametrize(("name", "value"), [("num_threads", -1), ("num_threads", 5000), ("num_batch", -2),
                                             ("num_batch", 1 << 20)])
def test_thread_and_batch_counts_out_of_range_are_refused_by_name(name: str, value: int) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        Settings().merged({name: str(value)})
    assert caught.value.field == name and "between" in caught.value.message


@pytest.mark.parametrize(("value", "host", "port"), [
    ("127.0.0.1", "127.0.0.1", 11435), ("127.0.0.1:8080", "127.0.0.1", 8080), ("::1", "::1", 11435),
    ("[::1]", "::1", 11435), ("[::1]:8080", "::1", 8080), ("0.0.0.0:9000", "0.0.0.0", 9000),
    ("fe80::1", "fe80::1", 11435),
])
def test_hearth_host_reads_ipv6_addresses_with_and_without_a_port(value: str, host: str, port: int, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_PORT", raising=False)
    monkeypatch.setenv("HEARTH_HOST", value)
    settings = load_settings(home=tmp_path)
    assert (settings.host, settings.port) == (host, port)


def test_a_malformed_bracketed_host_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_HOST", "[::1]8080")
    with pytest.raises(InvalidOptionError) as caught:
        load_settings(home=tmp_path)
    assert caught.value.field == "host"
