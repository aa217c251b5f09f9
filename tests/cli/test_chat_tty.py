"""The interactive chat driven through a pseudo-terminal, as a person would use it."""

from __future__ import annotations

from pathlib import Path

import pexpect

from tests.conftest import HEARTH, cli_env


def start(home: Path, *args: str) -> pexpect.spawn:
    child = pexpect.spawn(HEARTH, ["chat", *args], env=cli_env(home), encoding="utf-8", timeout=120,
                          dimensions=(40, 200))
    child.expect("Chatting with smollm2:135m")
    child.expect(">>> ")
    return child


def test_chat_answers_keeps_context_and_handles_commands(session_home: Path) -> None:
    child = start(session_home, "-o", "temperature=0")
    child.sendline("/?")
    child.expect("/system")
    child.expect(">>> ")
    child.sendline("What is the capital of France? Answer in one word.")
    child.expect("Paris")
    child.expect(">>> ")
    child.sendline("/set temperature 0")
    child.expect("Set temperature to 0")
    child.sendline("/set temperature warm")
    child.expect("must be a number")
    child.sendline("/system You are a pirate.")
    child.expect("Set the system prompt")
    child.sendline("/show")
    child.expect("You are a pirate")
    child.sendline('"""')
    child.expect(r"\.\.\. ")
    child.sendline("Say hello")
    child.expect(r"\.\.\. ")
    child.sendline('in one word."""')
    child.expect(">>> ")
    child.sendline("/clear")
    child.expect("Cleared")
    child.sendline("/nonsense")
    child.expect("Unknown command")
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_stops_the_answer_but_not_the_chat(session_home: Path) -> None:
    child = start(session_home, "-o", "num_predict=2000", "-o", "temperature=0")
    child.sendline("Write a very long essay about the history of bread.")
    child.expect("bread.\r\n")  # the echo of what we typed
    child.expect(r"\w+ \w+ \w+ \w+")  # the answer is streaming
    child.sendcontrol("c")
    child.expect(r"\[answer stopped\]")
    child.expect(">>> ")
    child.sendline("What is the capital of France? Answer in one word.")
    child.expect("Paris")
    child.expect(">>> ")
    child.sendcontrol("c")
    child.expect("Ctrl-D")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_bad_model_in_chat_is_an_error_not_a_traceback(session_home: Path) -> None:
    child = pexpect.spawn(HEARTH, ["chat", "missing:model"], env=cli_env(session_home), encoding="utf-8",
                          timeout=60)
    child.expect("Error: ")
    child.expect(pexpect.EOF)
    assert "Traceback" not in (child.before or "")
    child.close()
    assert child.exitstatus == 1
