"""Drafting with a small model of the same vocabulary (`speculative = draft`), loaded in the model's worker.

The draft model has a context of its own with the same sequences as the model's. Before drafting for a
sequence it catches up with what the model has accepted: its cached tokens are cut back to the longest
common prefix with the sequence's history (`llama_memory_seq_rm`) and the rest is evaluated; then it decodes
greedily, one token at a time, the number of tokens the batcher asked for. Its drafts are deterministic
(an argmax), so the batcher's acceptance rule (`hearth.engine.speculative`) is the same as for n-gram drafts.
"""

from __future__ import annotations

from pathlib import Path

from hearth.engine.cache import common_prefix
from hearth.engine.llama import Batch, Context, Model
from hearth.engine.speculative import Drafter
from hearth.errors import DraftModelError

DRAFT_PRIOR = 0.8  # a draft model agrees with its model more often than an n-gram lookup


def check_vocabulary(model: Model, draft: Model, name: str) -> None:
    """DraftModelError unless `draft` tokenizes exactly like `model` (same ids, texts, BOS and EOS)."""
    ours, theirs = model.vocabulary(), draft.vocabulary()
    labels = ("tokenizer type", "vocabulary size", "BOS token", "EOS token", "add-BOS flag")
    for label, a, b in zip(labels, ours[:5], theirs[:5], strict=True):
        if a != b:
            raise DraftModelError(f"the draft model {name} cannot draft for this model: its {label} differs "
                                  f"({b} against {a})", hint="choose a draft model of the same family and tokenizer")
    differing = sum(1 for a, b in zip(ours[5], theirs[5], strict=True) if a != b)
    if differing:
        raise DraftModelError(f"the draft model {name} cannot draft for this model: {differing} of its "
                              f"{model.n_vocab} tokens differ", hint="choose a draft model of the same family and "
                              "tokenizer")


class ModelDrafter(Drafter):
    """Greedy drafts from a small model, one context sequence per batcher slot."""

    kind = "draft"
    prior = DRAFT_PRIOR

    def __init__(self, model: Model, path: Path, *, n_ctx: int, n_seq: int, n_threads: int, flash_attn: int,
                 n_batch: int = 512) -> None:
        self.model = Model(path)
        try:
            check_vocabulary(model, self.model, path.name)
            self.ctx = Context(self.model, n_ctx=n_ctx * n_seq, n_seq=n_seq, n_batch=n_batch, n_threads=n_threads,
                               flash_attn=flash_attn)
        except BaseException:
            self.model.close()
            raise
        self.batch = Batch(n_batch, n_seq)
        self.cached: dict[int, list[int]] = {}
        self.limit = self.ctx.n_ctx_seq

    def available(self, seq: int, history: list[int], k: int) -> int:
        return max(0, min(k, self.limit - 2 - len(history)))

    def draft(self, seq: int, history: list[int], k: int) -> list[int]:
        cached = self.cached.setdefault(seq, [])
        keep = min(common_prefix(cached, history), len(history) - 1)
        self.ctx.forget(seq, keep)
        del cached[keep:]
        token = self._catch_up(seq, cached, history)
        drafts = [token]
        while len(drafts) < k:
            self.batch.clear()
            self.batch.add(token, len(cached), seq, True)
            self.ctx.decode(self.batch)
            cached.append(token)
            token = self.ctx.argmax(0)
            drafts.append(token)
        return drafts

    def _catch_up(self, seq: int, cached: list[int], history: list[int]) -> int:
        """Evaluate the history the draft context lacks; the token it predicts next."""
        index = -1
        while len(cached) < len(history):
            self.batch.clear()
            chunk = history[len(cached):len(cached) + self.batch.capacity]
            for i, token in enumerate(chunk):
                index = self.batch.add(token, len(cached) + i, seq, i == len(chunk) - 1)
            self.ctx.decode(self.batch)
            cached.extend(chunk)
        return self.ctx.argmax(index)

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()
        self.model.close()
