"""`hearth chat --functions FILE.py`: calls are shown, run only after a yes, and answered."""

from __future__ import annotations

from pathlib import Path

import pexpect

from tests.conftest import HEARTH, cli_env

TOOLS = '''
import os

def get_weather(city: str) -> dict:
    """Current weather in a city."""
    with open(os.environ["MARKER"], "a") as f:
        f.write(city + "\\n")
    return {"city": city, "temperature_c": 21, "sky": "sunny"}

def _private():
    pass
'''


def answer_declines(child: pexpect.spawn) -> None:
    """Decline any further calls the model makes on its own until the prompt returns."""
    while child.expect([r"Run it\?", ">>> "]) == 0:
        child.sendline("n")


def test_a_confirmed_call_runs_and_a_declined_one_does_not(session_home: Path, tmp_path: Path) -> None:
    tools = tmp_path / "tools.py"
    tools.write_text(TOOLS)
    marker = tmp_path / "calls.txt"
    env = {**cli_env(session_home), "MARKER": str(marker)}
    child = pexpect.spawn(HEARTH, ["chat", "--no-history", "--functions", str(tools), "--tool-choice", "get_weather",
                                   "-o", "temperature=0", "-o", "num_predict=64"], env=env, encoding="utf-8",
                          timeout=120)
    child.expect(">>> ")
    child.sendline("What is the weather in Paris?")
    child.expect(r"\[tool call\] get_weather\(")  # the first reply is forced to be this call
    child.expect(r"Run it\?")
    child.sendline("n")
    answer_declines(child)
    assert not marker.exists()
    child.sendline("And in Rome?")
    child.expect(r"\[tool call\] get_weather\(\{\"city\": ")
    child.expect(r"Run it\?")
    child.sendline("y")
    child.expect(r"\[tool result\] \{\"city\"")
    answer_declines(child)
    assert marker.read_text().strip()
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_functions_file_errors_are_sentences(session_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.py"
    bad.write_text("def f(:\n")
    child = pexpect.spawn(HEARTH, ["chat", "--functions", str(bad)], env=cli_env(session_home),
                          encoding="utf-8", timeout=60)
    child.expect("Error: broken.py failed to load")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
