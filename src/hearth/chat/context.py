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
    """Drop the oldest non-system messages until `encode(messages)` leaves `reserve` tokens free.

    The cut is found by bisection over where the kept history starts (always at a user turn, never at an
    orphaned answer), so a long conversation costs about log2(n) renders, not one per dropped message.
    """
    budget = n_ctx - reserve
    tokens = encode(messages)
    if len(tokens) <= budget:
        return Fitted(list(messages), tokens, 0)
    cuts = _cuts(messages)  # the kept history may start at these positions, oldest first
    low, high = 0, len(cuts) - 1  # invariant: starting at cuts[high] fits, if anything does
    best = _keep(messages, cuts[high])
    best_tokens = encode(best)
    if len(best_tokens) > budget:
        raise ContextOverflowError(
            f"the prompt needs {len(best_tokens)} tokens but only {budget} of the {n_ctx}-token context "
            "are free for it",
            hint="shorten the message or system prompt, or raise num_ctx (e.g. --option num_ctx=8192)",
        )
    while low < high:
        middle = (low + high) // 2
        kept = _keep(messages, cuts[middle])
        kept_tokens = encode(kept)
        if len(kept_tokens) <= budget:
            high, best, best_tokens = middle, kept, kept_tokens
        else:
            low = middle + 1
    return Fitted(best, best_tokens, len(messages) - len(best))


def _cuts(messages: list[Message]) -> list[int]:
    """Where a trimmed history may start: after at least one dropped message, at a user turn (or the last)."""
    last = len(messages) - 1
    first = next((i for i, m in enumerate(messages) if m.role != "system"), last)
    starts = [i for i in range(first + 1, last) if messages[i].role == "user"]
    return [*starts, last]


def _keep(messages: list[Message], start: int) -> list[Message]:
    """The system messages before `start`, then everything from `start` on."""
    return [m for m in messages[:start] if m.role == "system"] + messages[start:]
