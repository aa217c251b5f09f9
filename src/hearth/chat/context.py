"""Fitting a conversation into the context window.

Policy (documented in docs/usage.md): the answer needs room, so the prompt may use the context minus a
reserve (`num_predict` when set, else a quarter of the context, at most 1,024 tokens). When the rendered
conversation is longer, the oldest turns after the system prompt are dropped, one message at a time, until
it fits; the system prompt and the newest user message are always kept. If even those two do not fit the
request is refused with `ContextOverflowError`. Every trim is reported to the caller, who shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hearth.errors import ContextOverflowError
from hearth.types import Message


@dataclass(frozen=True)
class Fitted:
    """The messages that fit, their token ids, and how many messages were dropped."""

    messages: list[Message]
    tokens: list[int]
    dropped: int


def reserve_for_answer(n_ctx: int, num_predict: int) -> int:
    """Tokens kept free for the answer."""
    if num_predict > 0:
        return min(num_predict, n_ctx // 2)
    return min(1024, n_ctx // 4)


def fit_messages(
    messages: list[Message],
    encode: Callable[[list[Message]], list[int]],
    n_ctx: int,
    reserve: int,
) -> Fitted:
    """Drop the oldest non-system messages until `encode(messages)` leaves `reserve` tokens free."""
    budget = n_ctx - reserve
    kept = list(messages)
    dropped = 0
    tokens = encode(kept)
    while len(tokens) > budget:
        index = next((i for i, m in enumerate(kept[:-1]) if m.role != "system"), None)
        if index is None:
            raise ContextOverflowError(
                f"the prompt needs {len(tokens)} tokens but only {budget} of the {n_ctx}-token context "
                "are free for it",
                hint="shorten the message or system prompt, or raise num_ctx (e.g. --option num_ctx=8192)",
            )
        del kept[index]
        dropped += 1
        while index < len(kept) - 1 and kept[index].role not in ("user", "system"):
            del kept[index]  # never start the kept history with an orphaned answer
            dropped += 1
        tokens = encode(kept)
    return Fitted(kept, tokens, dropped)
