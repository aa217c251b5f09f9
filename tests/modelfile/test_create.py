"""Personas from Modelfiles on the real engine and the bundled model, through the CLI and the service."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from hearth.config import Settings
from hearth.modelfile import create_model
from hearth.options import parse_options
from hearth.service import Hearth
from hearth.store import ModelStore
from hearth.types import Message
from tests.conftest import HEARTH, cli_env
from tests.modelfile.lora import write_lora

PERSONA = '''# Captain Hook, on the bundled model
FROM smollm2:135m
SYSTEM You are Captain Hook, a pirate.
PARAMETER temperature 0
PARAMETER num_predict 3
TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""
MESSAGE user Who are you?
MESSAGE assistant I am Captain Hook.
ADAPTER zero-lora.gguf
LICENSE """Do what you want,
but be nice."""
'''
EXPECTED_PROMPT = ("<|im_start|>system\nYou are Captain Hook, a pirate.<|im_end|>\n"
                   "<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\nI am Captain Hook.<|im_end|>\n"
                   "<|im_start|>user\nWhere is the treasure?<|im_end|>\n<|im_start|>assistant\n")
QUESTION = [Message("user", "Where is the treasure?")]


def hearth(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HEARTH, *args], capture_output=True, text=True, timeout=300, env=cli_env(home),
                          cwd=cwd, check=False)


@pytest.fixture
def service(home: Path) -> Iterator[Hearth]:
    hearth_service = Hearth(Settings(num_parallel=1, num_ctx=1024, max_loaded_models=3), store=ModelStore(home))
    yield hearth_service
    hearth_service.close()


def test_every_instruction_of_a_modelfile_is_in_effect(home: Path, tmp_path: Path, service: Hearth) -> None:
    write_lora(tmp_path / "zero-lora.gguf", strength=0.0)
    (tmp_path / "Modelfile").write_text(PERSONA)
    created = hearth(home, "create", "hook", cwd=tmp_path)  # -f defaults to ./Modelfile
    assert created.returncode == 0, created.stderr
    assert "created 'hook:latest' from smollm2:135m" in created.stdout

    generation = service.chat("hook", QUESTION)
    # the system prompt, the seed messages and the template
    assert generation.source.job.tokens == generation.source.loaded.tokens_for(EXPECTED_PROMPT)
    assert len(generation.source.loaded.manifest.adapters) == 1
    generation.text()
    assert generation.done is not None and generation.done.stats.completion_tokens == 3  # num_predict 3
    base = service.chat("smollm2:135m", QUESTION, parse_options({"temperature": 0, "num_predict": 16}))
    base.text()
    assert base.done is not None and base.done.stats.completion_tokens > 3

    shown = hearth(home, "show", "hook", "--modelfile")
    assert shown.returncode == 0, shown.stderr
    for line in ("FROM smollm2:135m", "SYSTEM You are Captain Hook, a pirate.", "PARAMETER num_predict 3",
                 "MESSAGE user Who are you?", "ADAPTER ", 'LICENSE """Do what you want,', "{{ .Content }}"):
        assert line in shown.stdout, line
    (tmp_path / "Copy").write_text(shown.stdout)
    assert hearth(home, "create", "hook2", "-f", str(tmp_path / "Copy")).returncode == 0
    first, second = (json.loads(hearth(home, "show", name, "--json").stdout) for name in ("hook", "hook2"))
    for key in ("digest", "system", "template", "template_source", "parameters", "messages", "adapters",
                "license_text"):
        assert first[key] == second[key], key


def test_a_lora_adapter_changes_the_answers(home: Path, tmp_path: Path, service: Hearth) -> None:
    options = parse_options({"temperature": 0, "num_predict": 8})
    for name, strength in (("zero", 0.0), ("strong", 0.05)):
        lora = write_lora(tmp_path / f"{name}.gguf", strength=strength)
        create_model(service.store, name, f"FROM smollm2:135m\nADAPTER {lora.name}\n", base_dir=tmp_path)
    answers = {name: service.chat(name, QUESTION, options).text() for name in ("smollm2:135m", "zero", "strong")}
    assert answers["zero"] == answers["smollm2:135m"]  # an all-zero LoRA changes nothing...
    assert answers["strong"] != answers["smollm2:135m"]  # ...a strong one changes the answer


def test_a_bad_modelfile_reports_its_line_and_creates_nothing(home: Path, tmp_path: Path) -> None:
    (tmp_path / "Modelfile").write_text("FROM smollm2:135m\nSYSTEM fine\n\nPARAMETER temperature warm\n")
    result = hearth(home, "create", "broken", "-f", str(tmp_path / "Modelfile"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: Modelfile line 4: option 'temperature' must be a number")
    (tmp_path / "Template").write_text('FROM smollm2:135m\nTEMPLATE """\n{{ if .System }}\n{{ .Sytem }}\n"""\n')
    result = hearth(home, "create", "broken", "-f", str(tmp_path / "Template"))
    assert result.returncode == 1 and "Error: Modelfile line 4: TEMPLATE: unknown field .Sytem" in result.stderr
    missing = hearth(home, "create", "broken", "-f", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "there is no Modelfile" in missing.stderr
    assert "broken" not in hearth(home, "list").stdout


def test_a_persona_works_in_the_terminal_chat(home: Path, tmp_path: Path) -> None:
    (tmp_path / "Modelfile").write_text("FROM smollm2:135m\nSYSTEM Always answer in French.\n"
                                        "PARAMETER num_predict 16\nPARAMETER temperature 0\n")
    assert hearth(home, "create", "french", "-f", str(tmp_path / "Modelfile")).returncode == 0
    child = pexpect.spawn(HEARTH, ["chat", "french", "--no-history"], env=cli_env(home), encoding="utf-8",
                          timeout=180, dimensions=(40, 200))
    child.expect("Chatting with french:latest")
    child.expect(">>> ")
    child.sendline("Hello!")
    child.expect(">>> ")
    assert (child.before or "").strip()
    child.sendline("/bye")
    child.expect(pexpect.EOF)
