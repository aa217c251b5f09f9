"""Speculative decoding: cheap guesses of the next tokens, checked by the model in the batch it runs anyway.

Each step the batcher may put, after a generating sequence's last token, up to `k` drafted tokens (from an
earlier occurrence of its last few tokens in its prompt and answer — `NgramIndex` — or from a small draft
model, `hearth.engine.draft`), all with logits. One `llama_decode` then gives the model's logits at every
drafted position, and the sequence's own sampler is run on them in order: the token it draws at position
`j` is emitted; if it equals draft `j+1`, that draft is already in the KV cache and the next position's
logits are valid too, otherwise the rest is rolled back (`llama_memory_seq_rm`).

Why the answers do not change:

- Greedy: the sampler picks the argmax of the same logits, with the same penalty window and grammar state,
  as it would one token at a time, provided the logits are the same. With flash attention they are, bit
  for bit, while a sequence attends to fewer than 512 KV cells (each query row is computed on its own);
  from 512 cells llama.cpp decodes a lone one-token step with a split-KV kernel, and without flash
  attention one-token and multi-token steps use different attention kernels: logits then differ at
  rounding level (up to ~1 on SmolLM2), which flips near-ties only. `auto` speculates only with flash
  attention (`hearth.service.speculation`); docs/speculative.md has the measurements.
- Sampling: drawing `x ~ p` and keeping the draft `d` when `x == d` *is* the speculative-sampling rule for
  a deterministic proposal (q = one-hot at `d`): `d` is accepted with probability `min(1, p(d)/q(d)) = p(d)`,
  and on rejection `x` is distributed as `p` without `d`, renormalised — the residual `max(0, p - q)`.
  Every emitted token is one draw of the sampler's RNG, as without speculation, so a seeded answer is the
  same token for token too.

When to draft, and how much (`plan`): verifying `k` tokens costs `a + b·(1 + k)` where `a` is the weights
pass (memory-bound) and `b` the per-token compute; on a small model on a CPU, `b` is close to `a`, so a
drafted token must be accepted often to pay for itself. Each sequence keeps an acceptance rate (`Acceptance`,
moving average, drifting back to a prior while it does not draft so it tries again later); the step's common
draft length maximises the expected tokens saved minus the tokens verified. All drafting sequences get the
same length because llama.cpp splits a batch whose sequences have unequal token counts into several passes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

NGRAM_MIN = 3  # 2-gram matches are common in free text and mostly wrong
NGRAM_MAX = 4
PRIOR = 0.7  # acceptance assumed for a sequence that has not drafted yet (or not for a while)
LEARN = 0.15  # weight of each verified draft token in the acceptance rate
RECOVER = 0.02  # per step without drafting, the rate moves this fraction of the way back to the prior
DEFAULT_RATIO = 1.0  # a / b before any step has been timed (measured: 0.9–1.4 for SmolLM2 on 2 cores)


class NgramIndex:
    """Where each 3- or 4-gram of a sequence (prompt and answer) last occurred, to propose what followed it."""

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self._tables: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in range(NGRAM_MIN, NGRAM_MAX + 1)}

    def sync(self, history: list[int]) -> None:
        """Index the tokens of `history` not seen yet (`history` only grows while a job runs)."""
        tokens = self.tokens
        for p in range(len(tokens), len(history)):
            for n, table in self._tables.items():
                if p >= n:  # the n-gram ending just before p was followed by history[p]
                    table[tuple(tokens[p - n:p])] = p
            tokens.append(history[p])

    def propose(self, k: int) -> list[int]:
        """Up to `k` tokens that followed the latest earlier occurrence of the longest matching suffix."""
        tokens = self.tokens
        for n in range(NGRAM_MAX, NGRAM_MIN - 1, -1):
            if len(tokens) <= n:
                continue
            at = self._tables[n].get(tuple(tokens[-n:]))
            if at is not None:
                return tokens[at:at + k]
        return []


@dataclass
class Acceptance:
    """How often a sequence's drafted tokens have been accepted lately (a moving average)."""

    prior: float = PRIOR
    rate: float = -1.0

    def __post_init__(self) -> None:
        if self.rate < 0:
            self.rate = self.prior

    def observe(self, offered: int, accepted: int) -> None:
        """`accepted` of `offered` drafted tokens matched (the first mismatch ends a verification)."""
        for _ in range(accepted):
            self.rate += LEARN * (1.0 - self.rate)
        if accepted < offered:
            self.rate -= LEARN * self.rate

    def idle(self) -> None:
        """A step without drafting: drift back towards the prior, so a sequence that backed off tries again."""
        self.rate += RECOVER * (self.prior - self.rate)


def expected(rate: float, k: int) -> float:
    """Expected accepted tokens of a `k`-token draft if each is accepted with probability `rate` given the last."""
    total, p = 0.0, 1.0
    for _ in range(k):
        p *= rate
        total += p
    return total


def plan(candidates: list[tuple[int, float]], n_generating: int, k_max: int, ratio: float) -> tuple[int, list[int]]:
    """The common draft length for this step and which candidates draft: `(0, [])` when nothing pays.

    `candidates` are `(tokens available, acceptance rate)` of sequences that could draft; `n_generating`
    counts every generating sequence; `ratio` is `a / b` (weights pass / per-token cost). An accepted token
    saves one share of a future one-token step, `a / n + b`; each verified token costs `b`; a step where only
    some sequences draft costs one more weights pass `a` (llama.cpp splits it).
    """
    value = ratio / max(1, n_generating) + 1.0  # in units of b
    best_gain, best_k, best_who = 0.0, 0, []
    for k in range(1, k_max + 1):
        who, gain = [], 0.0
        for i, (available, rate) in enumerate(candidates):
            if available < k:
                continue
            g = expected(rate, k) * value - k
            if g > 0:
                who.append(i)
                gain += g
        if who and len(who) < n_generating:
            gain -= ratio
        if gain > best_gain:
            best_gain, best_k, best_who = gain, k, who
    return best_k, best_who


class StepCosts:
    """Recent decode steps (passes, tokens, seconds), fitted to `a·passes + b·tokens` for `plan`'s ratio."""

    def __init__(self, keep: int = 64) -> None:
        self.rows: deque[tuple[int, int, float]] = deque(maxlen=keep)

    def add(self, passes: int, tokens: int, seconds: float) -> None:
        """One timed generation step."""
        self.rows.append((passes, tokens, seconds))

    def ratio(self) -> float:
        """`a / b` by least squares over the recent steps (the default until they vary in shape)."""
        spp = sum(p * p for p, _, _ in self.rows)
        snn = sum(n * n for _, n, _ in self.rows)
        spn = sum(p * n for p, n, _ in self.rows)
        spt = sum(p * t for p, _, t in self.rows)
        snt = sum(n * t for _, n, t in self.rows)
        det = spp * snn - spn * spn
        if len(self.rows) < 8 or det <= 1e-9 * max(1.0, spp * snn):
            return DEFAULT_RATIO
        a = (spt * snn - snt * spn) / det
        b = (snt * spp - spt * spn) / det
        if b <= 0:
            return 20.0
        return min(20.0, max(0.25, a / b))


class Drafter:
    """Proposes draft tokens for the sequences of one context (the interface the batcher uses)."""

    kind = "none"
    prior = PRIOR  # the acceptance rate a sequence starts from

    def start(self, seq: int) -> None:
        """A new job took sequence `seq`."""

    def available(self, seq: int, history: list[int], k: int) -> int:
        """How many tokens (at most `k`) it could draft after `history` (prompt + answer so far)."""
        return 0

    def draft(self, seq: int, history: list[int], k: int) -> list[int]:
        """`k` tokens (or fewer) to verify after `history`."""
        return []

    def close(self) -> None:
        """Free whatever it holds."""


class NgramDrafter(Drafter):
    """Prompt lookup: continue the sequence the way it continued the last time its last tokens occurred."""

    kind = "ngram"

    def __init__(self) -> None:
        self._indexes: dict[int, NgramIndex] = {}
        self._proposals: dict[int, list[int]] = {}

    def start(self, seq: int) -> None:
        self._indexes[seq] = NgramIndex()
        self._proposals.pop(seq, None)

    def available(self, seq: int, history: list[int], k: int) -> int:
        index = self._indexes.get(seq)
        if index is None:
            index = self._indexes[seq] = NgramIndex()
        index.sync(history)
        proposal = self._proposals[seq] = index.propose(k)
        return len(proposal)

    def draft(self, seq: int, history: list[int], k: int) -> list[int]:
        return self._proposals.get(seq, [])[:k]
