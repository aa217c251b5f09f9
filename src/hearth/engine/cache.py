"""The prompt cache: KV states of recent conversations kept in RAM beyond the context's slots.

When a slot is about to be reused for a conversation that shares nothing with what it holds, its state is
saved here (if it is long enough to be worth it). A later request whose prompt starts with a saved prefix
restores it into a slot and evaluates only the new tokens, so switching between several recent
conversations does not re-read their histories. Entries are evicted least-recently-used first to stay
within a byte budget.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """A saved sequence: the tokens its KV cache holds and llama.cpp's state bytes."""

    tokens: tuple[int, ...]
    state: bytes


class PromptCache:
    """Saved sequence states, least recently used evicted first, within `budget` bytes."""

    def __init__(self, budget: int, min_tokens: int = 32) -> None:
        self.budget = budget
        self.min_tokens = min_tokens
        self._entries: OrderedDict[tuple[int, ...], Entry] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.saves = 0

    def __len__(self) -> int:
        return len(self._entries)

    def worth_saving(self, tokens: list[int]) -> bool:
        """True if a sequence of this length should be kept (and the cache is on)."""
        return self.budget > 0 and len(tokens) >= self.min_tokens and tuple(tokens) not in self._entries

    def put(self, tokens: list[int], state: bytes) -> None:
        """Keep a state; entries that are a prefix of it are dropped (it serves them too)."""
        if not state or len(state) > self.budget:
            return
        key = tuple(tokens)
        for other in [k for k in self._entries if len(k) <= len(key) and key[: len(k)] == k]:
            self._drop(other)
        self._entries[key] = Entry(key, state)
        self.bytes += len(state)
        self.saves += 1
        while self.bytes > self.budget and self._entries:
            self._drop(next(iter(self._entries)))

    def best(self, tokens: list[int]) -> tuple[Entry | None, int]:
        """The entry sharing the longest prefix with `tokens`, and that prefix's length."""
        best, best_len = None, 0
        for entry in self._entries.values():
            n = common_prefix(entry.tokens, tokens)
            if n > best_len:
                best, best_len = entry, n
        return best, best_len

    def take(self, entry: Entry) -> None:
        """Mark an entry used (it moves to the back of the eviction line)."""
        self._entries.move_to_end(entry.tokens)
        self.hits += 1

    def _drop(self, key: tuple[int, ...]) -> None:
        entry = self._entries.pop(key)
        self.bytes -= len(entry.state)


def common_prefix(a: list[int] | tuple[int, ...], b: list[int] | tuple[int, ...]) -> int:
    """How many leading tokens `a` and `b` share."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
