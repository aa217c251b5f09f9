"""The `hearth` command through its real entry point (subprocesses), on the real bundled model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HEARTH, cli_env

QUESTION = "What is the capital of France? Answer in one word."


def hearth(home: Path, *args: str, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([HEARTH, *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                          env=cli_env(home), check=False)


def assert_clean_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ")
    for word in words:
        assert word in result.stderr


def test_run_streams_the_answer(session_home: Path) -> None:
    result = hearth(session_home, "run", "smollm2:135m", QUESTION, "-o", "temperature=0")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


def test_run_reads_the_prompt_from_stdin(session_home: Path) -> None:
    result = hearth(session_home, "run", "smollm2:135m", "-o", "temperature=0", stdin=QUESTION + "\n")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


def test_json_output_and_streaming_agree_for_the_same_seed(session_home: Path) -> None:
    args = ["run", "smollm2:135m", "Write one sentence about cats.", "-o", "temperature=0.9", "-o", "seed=7",
            "-o", "num_predict=30"]
    streamed = hearth(session_home, *args)
    as_json = hearth(session_home, *args, "--json")
    assert streamed.returncode == 0 and as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["response"] == streamed.stdout[:-1]  # streaming adds the final newline
    assert data["eval_count"] <= 30 and data["prompt_eval_count"] > 0 and data["total_duration"] > 0


def test_verbose_prints_ollama_style_timings(session_home: Path) -> None:
    result = hearth(session_home, "run", "smollm2:135m", "Hi", "-o", "num_predict=5", "--verbose")
    assert result.returncode == 0, result.stderr
    for label in ("load duration:", "prompt eval count:", "prompt eval rate:", "eval count:", "eval rate:"):
        assert label in result.stderr
    assert "tokens/s" in result.stderr


def test_option_names_from_ollama_are_accepted_and_bad_ones_refused(session_home: Path) -> None:
    ok = hearth(session_home, "run", "smollm2:135m", "Hi", "-o", "num_predict=3", "-o", "top_k=10",
                "-o", "top_p=0.5", "-o", "min_p=0.1", "-o", "repeat_penalty=1.2", "-o", "num_ctx=1024",
                "-o", "stop=###", "-o", "seed=3", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["eval_count"] <= 3
    assert_clean_error(hearth(session_home, "run", "smollm2:135m", "Hi", "-o", "temperature=hot"), "temperature")
    assert_clean_error(hearth(session_home, "run", "smollm2:135m", "Hi", "-o", "wobble=1"), "wobble")
    assert_clean_error(hearth(session_home, "run", "smollm2:135m", "Hi", "-o", "novalue"), "key=value")


def test_unknown_model_is_a_sentence_with_a_hint(session_home: Path) -> None:
    result = hearth(session_home, "run", "nosuchmodel:7b", "Hi")
    assert_clean_error(result, "nosuchmodel")
    assert "hearth list" in result.stderr


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs/path", "a\\b", "x" * 300])
def test_hostile_names_are_refused(session_home: Path, name: str) -> None:
    assert_clean_error(hearth(session_home, "run", name, "Hi"))


def test_model_management_round_trip(home: Path, bundled_model: Path, tmp_path: Path) -> None:
    listed = hearth(home, "list")
    assert "smollm2:135m" in listed.stdout
    shown = hearth(home, "show", "smollm2:135m")
    for word in ("llama", "Q4_1", "8192", "apache-2.0", "<|im_start|>"):
        assert word in shown.stdout, shown.stdout
    usb = tmp_path / "usb"
    usb.mkdir()
    (usb / "model.gguf").write_bytes(bundled_model.read_bytes())
    imported = hearth(home, "import", str(usb / "model.gguf"), "--name", "mine:small")
    assert imported.returncode == 0, imported.stderr
    assert hearth(home, "cp", "mine:small", "other").returncode == 0
    assert "mine:small" in hearth(home, "list").stdout
    assert hearth(home, "rm", "mine:small").returncode == 0
    answer = hearth(home, "run", "other", QUESTION, "-o", "temperature=0")
    assert "Paris" in answer.stdout, answer.stderr
    names = [m["name"] for m in json.loads(hearth(home, "list", "--json").stdout)]
    assert "other:latest" in names and "mine:small" not in names
    assert_clean_error(hearth(home, "rm", "mine:small"), "mine:small")


def test_importing_a_broken_file_fails_cleanly(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
    assert_clean_error(hearth(home, "import", str(bad), "--name", "bad"))
    assert "bad" not in hearth(home, "list").stdout.split("smollm2")[0]
    assert_clean_error(hearth(home, "import", str(tmp_path / "missing.gguf"), "--name", "x"))


def test_python_dash_m_hearth_works(home: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "hearth", "--version"], capture_output=True, text=True,
                            env=cli_env(home), check=False)
    assert result.returncode == 0 and "hearth" in result.stdout
