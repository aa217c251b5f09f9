"""Repeat, frequency and presence penalties applied in place to llama.cpp's logits, as its penalties sampler does.

llama.cpp's sampler looks every one of the vocabulary's entries (49,152 for SmolLM2) up in a hash map of the
recent tokens, each token: about half a millisecond, a twentieth of a small model's decode step. Only the
tokens in the window can change, so this touches only those (a few dozen) with numpy, before the rest of the
chain runs on the same logits. The arithmetic is llama.cpp's, in float32: a positive logit is divided by
`repeat`, a non-positive one multiplied, then `count * frequency + presence` is subtracted, where `count`
is how often the token occurs among the last `last_n` accepted tokens.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class Penalties:
    """The recent-token window and its counts, and the penalties they put on the next token's logits."""

    def __init__(self, last_n: int, repeat: float, frequency: float, presence: float) -> None:
        self.last_n = last_n
        self.repeat = np.float32(repeat)
        self.frequency = np.float32(frequency)
        self.presence = np.float32(presence)
        self.window: deque[int] = deque()
        self.counts: dict[int, int] = {}

    @staticmethod
    def wanted(last_n: int, repeat: float, frequency: float, presence: float) -> bool:
        """Whether these settings penalise anything (llama.cpp's sampler is disabled otherwise)."""
        return last_n != 0 and (repeat != 1.0 or frequency != 0.0 or presence != 0.0)

    def accept(self, token: int) -> None:
        """Count `token` into the window, dropping the oldest one when it is full."""
        self.counts[token] = self.counts.get(token, 0) + 1
        self.window.append(token)
        if len(self.window) > self.last_n:
            old = self.window.popleft()
            left = self.counts[old] - 1
            if left:
                self.counts[old] = left
            else:
                del self.counts[old]

    def apply(self, logits: np.ndarray) -> None:
        """Penalise the window's tokens in `logits` (float32, one entry per vocabulary token), in place."""
        if not self.counts:
            return
        ids = np.fromiter(self.counts.keys(), dtype=np.intp, count=len(self.counts))
        counts = np.fromiter(self.counts.values(), dtype=np.float32, count=len(self.counts))
        values = logits[ids]
        values = np.where(values <= 0, values * self.repeat, values / self.repeat).astype(np.float32)
        values -= counts * self.frequency + self.presence
        logits[ids] = values
