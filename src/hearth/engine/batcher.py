"""Continuous batching over one llama.cpp context.

A `Batcher` owns a context with `n_seq` slots. Each submitted `Job` takes a free slot (the one whose cached
tokens share the longest prefix with its prompt, so the next turn of a chat evaluates only the new tokens),
or waits in line. Every `step()` builds one batch: one token for each sequence that is generating, then
prompt chunks for sequences still reading their prompt, up to `n_batch` tokens, and calls `llama_decode`
once. Jobs join and leave between steps; a cancelled job leaves at the next step.

Per step and sequence the Python work is a handful of ctypes calls and a dict lookup: sampling runs in the
native sampler chain, token bytes are memoised, text is decoded incrementally and stop sequences are
matched on the newest piece only.

With a `Drafter` (speculative decoding, `hearth.engine.speculative`), a generating sequence may carry drafted
tokens after its last one in the same step; its sampler then runs on each drafted position in turn and
the KV cache is rolled back past the first token it did not confirm.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hearth.engine.cache import PromptCache, common_prefix
from hearth.engine.jobs import Job
from hearth.engine.llama import Batch, Context, Model, Sampler
from hearth.engine.speculative import Acceptance, Drafter, StepCosts, plan
from hearth.engine.text import StopMatcher, Utf8Stream
from hearth.errors import ContextOverflowError, EngineError
from hearth.types import Done, Event, Stats, TextChunk

# Prompt tokens are evaluated at least two at a time, and never in the same llama_decode as generating
# sequences. llama.cpp computes a sequence's attention for a one-token step differently (matrix-vector)
# from several tokens (matrix-matrix), and the two round differently; a batch mixing sequences is split
# into steps with equal tokens per sequence, which would put a prompt's first token in a one-token step.
# Prompt tokens that always take the matrix-matrix path get the same KV values and logits whether the
# prompt was evaluated whole, in chunks beside other streams, or after a cache hit, so a greedy answer
# does not change with how its prompt arrived (tests/engine/test_batching.py).
MIN_PROMPT_STEP = 2


@dataclass
class _Slot:
    """A sequence id in the context and the tokens its KV cache holds."""

    seq: int
    cached: list[int] = field(default_factory=list)
    job: Job | None = None
    sampler: Sampler | None = None
    utf8: Utf8Stream | None = None
    stops: StopMatcher | None = None
    pending: list[int] = field(default_factory=list)  # prompt tokens not yet evaluated
    n_past: int = 0
    n_generated: int = 0
    last_token: int = -1
    logits_at: int = -1
    stats: Stats = field(default_factory=Stats)
    t_start: int = 0
    t_first: int = 0
    last_used: int = 0
    history: list[int] = field(default_factory=list)  # prompt + answer so far (what drafts are looked up in)
    drafts: list[int] = field(default_factory=list)  # tokens after last_token in this step's batch
    acceptance: Acceptance = field(default_factory=Acceptance)


Emit = Callable[[int, Event], None]


class Batcher:
    """Schedules jobs onto the context's sequences and decodes them together."""

    def __init__(self, model: Model, ctx: Context, emit: Emit, cache: PromptCache | None = None,
                 prefill_chunk: int | None = None, drafter: Drafter | None = None, draft_max: int = 16) -> None:
        self.model = model
        self.ctx = ctx
        self.emit = emit
        self.cache = cache
        # while other sequences are generating, a newcomer's prompt is read this many tokens per step,
        # so their streams keep flowing instead of pausing for a whole n_batch prompt chunk
        self.prefill_chunk = prefill_chunk or max(32, ctx.n_batch // 4)
        self.slots = [_Slot(seq=i) for i in range(ctx.n_seq)]
        self.waiting: deque[Job] = deque()
        self.batch = Batch(ctx.n_batch, ctx.n_seq)
        self.cache_hits = 0
        self.cached_tokens = 0
        self.prompt_tokens = 0
        self.generated_tokens = 0
        self.drafted_tokens = 0
        self.accepted_tokens = 0
        self.drafter = drafter
        self.draft_max = draft_max
        self.costs = StepCosts()
        self._clock = 0

    # -- public -------------------------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        """Queue a job; it starts at the next step if a slot is free."""
        if len(job.tokens) >= self.ctx.n_ctx_seq:
            raise ContextOverflowError(
                f"the prompt is {len(job.tokens)} tokens but the context holds {self.ctx.n_ctx_seq}",
                hint="shorten the prompt or raise num_ctx",
            )
        if not job.tokens:
            raise ContextOverflowError("the prompt is empty after tokenization")
        self.waiting.append(job)

    def cancel(self, job_id: int) -> None:
        """Stop a job (waiting or running); it ends with reason 'cancelled'."""
        for job in list(self.waiting):
            if job.id == job_id:
                self.waiting.remove(job)
                self.emit(job_id, Done("cancelled"))
        for slot in self.slots:
            if slot.job is not None and slot.job.id == job_id:
                self._finish(slot, "cancelled")

    def busy(self) -> bool:
        """True while any job is waiting or running."""
        return bool(self.waiting) or any(s.job is not None for s in self.slots)

    def active(self) -> int:
        """Number of slots in use."""
        return sum(1 for s in self.slots if s.job is not None)

    def step(self) -> None:
        """Admit waiting jobs; decode one token for every generating sequence, then the next prompt chunks of
        newcomers (a separate llama_decode: see MIN_PROMPT_STEP); sample and emit after each."""
        self._admit()
        if not any(s.job is not None for s in self.slots):
            return
        generating = self._fill_generating()
        if generating and not self._decode_and_sample(timed=self.drafter is not None):
            return
        if self._fill_prompts(generating):
            self._decode_and_sample()

    def _decode_and_sample(self, timed: bool = False) -> bool:
        started = time.perf_counter()
        try:
            self.ctx.decode(self.batch)
        except EngineError as err:
            for slot in self.slots:
                if slot.job is not None:
                    self._finish(slot, "error", str(err))
            return False
        if timed:
            counts = {1 + len(s.drafts) for s in self.slots if s.job is not None and s.logits_at >= 0}
            self.costs.add(len(counts), self.batch.n, time.perf_counter() - started)
        for slot in self.slots:
            if slot.job is not None and slot.logits_at >= 0:
                if slot.drafts:
                    self._verify(slot)
                else:
                    self._sample(slot)
        return True

    def close(self) -> None:
        """Cancel everything and free native resources."""
        for job in list(self.waiting):
            self.cancel(job.id)
        for slot in self.slots:
            if slot.job is not None:
                self._finish(slot, "cancelled")
        self.batch.close()
        if self.drafter is not None:
            self.drafter.close()

    # -- scheduling ---------------------------------------------------------------------------------------
    def _admit(self) -> None:
        while self.waiting:
            free = [s for s in self.slots if s.job is None]
            if not free:
                return
            job = self.waiting.popleft()
            try:
                slot = self._choose_slot(free, job.tokens)
                self._start(slot, job)
            except Exception as err:  # a bad grammar, for instance
                for s in self.slots:
                    if s.job is job:
                        s.job = None
                self.emit(job.id, Done("error", error=str(err)))

    def _choose_slot(self, free: list[_Slot], tokens: list[int]) -> _Slot:
        """The free slot holding the longest prefix of `tokens` (else the least recently used one),
        after restoring a longer prefix from the prompt cache if there is one."""
        best = max(free, key=lambda s: (common_prefix(s.cached, tokens), -s.last_used))
        reuse = common_prefix(best.cached, tokens)
        entry, saved = self.cache.best(tokens) if self.cache is not None else (None, 0)
        if entry is None or saved <= reuse:
            self._save(best, keep=reuse)
            return best
        target = min(free, key=lambda s: (common_prefix(s.cached, tokens) > 0, s.last_used))
        self._save(target, keep=0)
        assert self.cache is not None
        if self.ctx.load_sequence(target.seq, entry.state):
            target.cached = list(entry.tokens)
            self.cache.take(entry)
        else:
            self.ctx.forget(target.seq)
            target.cached = []
        return target

    def _save(self, slot: _Slot, keep: int) -> None:
        """Keep a slot's KV state in the prompt cache before overwriting all but `keep` of its tokens."""
        cache = self.cache
        if cache is None or len(slot.cached) - keep < cache.min_tokens or not cache.worth_saving(slot.cached):
            return
        cache.put(slot.cached, self.ctx.save_sequence(slot.seq))

    def _start(self, slot: _Slot, job: Job) -> None:
        reuse = max(0, min(common_prefix(slot.cached, job.tokens), len(job.tokens) - MIN_PROMPT_STEP))
        self.ctx.forget(slot.seq, reuse)
        del slot.cached[reuse:]
        slot.sampler = Sampler(self.model, job.options, self.ctx.n_ctx_seq)
        slot.job = job
        slot.utf8 = Utf8Stream()
        slot.stops = StopMatcher(job.stop)
        slot.pending = job.tokens[reuse:]
        slot.n_past = reuse
        slot.n_generated = 0
        slot.stats = Stats(prompt_tokens=len(job.tokens), cached_tokens=reuse)
        slot.t_start = time.perf_counter_ns()
        slot.t_first = 0
        slot.history = list(job.tokens)
        slot.drafts = []
        if self.drafter is not None:
            slot.acceptance = Acceptance(self.drafter.prior)
            self.drafter.start(slot.seq)
        self._clock += 1
        slot.last_used = self._clock
        self.prompt_tokens += len(job.tokens)
        if reuse:
            self.cache_hits += 1
            self.cached_tokens += reuse

    def _fill_generating(self) -> int:
        """One token for each generating sequence; returns how many."""
        batch = self.batch
        batch.clear()
        if self.drafter is not None:
            self._plan_drafts()
        for slot in self.slots:
            slot.logits_at = -1
            if slot.job is not None and not slot.pending:
                slot.logits_at = batch.add(slot.last_token, slot.n_past, slot.seq, True)
                slot.cached.append(slot.last_token)
                slot.n_past += 1
                for i, token in enumerate(slot.drafts):
                    batch.add(token, slot.n_past + i, slot.seq, True)
        return batch.n

    def _plan_drafts(self) -> None:
        """Choose this step's drafts: a common length, for the sequences whose acceptance makes them pay."""
        assert self.drafter is not None
        generating = [s for s in self.slots if s.job is not None and not s.pending]
        room = self.batch.capacity // max(1, len(generating)) - 1
        owners: list[_Slot] = []
        candidates: list[tuple[int, float]] = []
        for slot in generating:
            assert slot.job is not None
            slot.drafts = []
            limit = min(self.draft_max, room, self.ctx.n_ctx_seq - 2 - slot.n_past)
            if slot.job.max_tokens > 0:
                limit = min(limit, slot.job.max_tokens - slot.n_generated - 1)
            if limit <= 0:
                continue
            available = self.drafter.available(slot.seq, slot.history, limit)
            if available:
                owners.append(slot)
                candidates.append((available, slot.acceptance.rate))
        if not owners:
            return
        k, chosen = plan(candidates, len(generating), self.draft_max, self.costs.ratio())
        for i, slot in enumerate(owners):
            if i in chosen:
                slot.drafts = self.drafter.draft(slot.seq, slot.history, k)
                slot.stats.draft_tokens += len(slot.drafts)
                self.drafted_tokens += len(slot.drafts)
            else:
                slot.acceptance.idle()

    def _fill_prompts(self, generating: int) -> int:
        """The next prompt chunks (capped while others generate, so their streams keep flowing)."""
        batch = self.batch
        batch.clear()
        room = min(batch.free, self.prefill_chunk) if generating else batch.free
        for slot in self.slots:
            slot.logits_at = -1
            if slot.job is None or not slot.pending or room <= 0:
                continue
            take = min(len(slot.pending), room)
            if 0 < len(slot.pending) - take < MIN_PROMPT_STEP:  # never leave a shorter remainder behind
                take = len(slot.pending) - MIN_PROMPT_STEP
            if take < min(MIN_PROMPT_STEP, len(slot.pending)):
                continue
            room -= take
            chunk, slot.pending = slot.pending[:take], slot.pending[take:]
            for i, token in enumerate(chunk):
                last = not slot.pending and i == take - 1
                index = batch.add(token, slot.n_past + i, slot.seq, last)
                if last:
                    slot.logits_at = index
            slot.cached.extend(chunk)
            slot.n_past += take
        return batch.n

    def _sample(self, slot: _Slot) -> None:
        assert slot.sampler is not None
        self._take(slot, slot.sampler.sample(self.ctx, slot.logits_at))

    def _verify(self, slot: _Slot) -> None:
        """Sample each drafted position in turn; keep the drafts the sampler confirms, roll back the rest."""
        drafts, slot.drafts = slot.drafts, []
        accepted = 0
        for j in range(len(drafts) + 1):
            assert slot.sampler is not None
            token = slot.sampler.sample(self.ctx, slot.logits_at + j)
            hit = j < len(drafts) and token == drafts[j]
            if hit:
                accepted += 1
                slot.stats.accepted_tokens += 1
                self.accepted_tokens += 1
            if not self._take(slot, token) or not hit:
                break
            slot.cached.append(token)  # already in the KV cache at this position
            slot.n_past += 1
        self.ctx.forget(slot.seq, slot.n_past)
        slot.acceptance.observe(len(drafts), accepted)

    def _take(self, slot: _Slot, token: int) -> bool:
        """Emit a sampled token; False if the job finished with it."""
        job = slot.job
        assert job is not None and slot.utf8 is not None and slot.stops is not None
        now = time.perf_counter_ns()
        if slot.n_generated == 0:
            slot.t_first = now
            slot.stats.prompt_ns = now - slot.t_start
        slot.n_generated += 1
        self.generated_tokens += 1
        slot.last_token = token
        if self.model.is_eog(token) and not job.ignore_eos:
            slot.n_generated -= 1  # the end-of-generation token is not part of the answer
            self._finish(slot, "stop")
            return False
        slot.history.append(token)
        text, stopped = slot.stops.feed(slot.utf8.feed(self.model.piece(token)))
        if text:
            self.emit(job.id, TextChunk(text))
        if stopped:
            self._finish(slot, "stop", flush=False)
        elif slot.n_generated == job.max_tokens or slot.n_past + 1 >= self.ctx.n_ctx_seq:
            self._finish(slot, "length")
        return slot.job is not None

    def _finish(self, slot: _Slot, reason: str, error: str | None = None, *, flush: bool = True) -> None:
        job = slot.job
        assert job is not None
        if flush and reason in ("stop", "length") and slot.utf8 is not None and slot.stops is not None:
            tail, _ = slot.stops.feed(slot.utf8.flush())
            tail += slot.stops.flush()
            if tail:
                self.emit(job.id, TextChunk(tail))
        now = time.perf_counter_ns()
        stats = slot.stats
        stats.completion_tokens = slot.n_generated
        if slot.t_first:
            stats.eval_ns = now - slot.t_first
        else:
            stats.prompt_ns = now - slot.t_start
        stats.total_ns = now - job.submitted_ns
        if slot.sampler is not None:
            slot.sampler.close()
        matched = slot.stops.matched if slot.stops is not None and reason == "stop" else None
        slot.job, slot.sampler, slot.utf8, slot.stops, slot.pending = None, None, None, None, []
        if reason != "stop" and reason != "length":
            # the KV cache may hold part of an unfinished prompt; keep only what we know is consistent
            del slot.cached[slot.n_past:]
        self.emit(job.id, Done(reason, stats, error, matched))  # type: ignore[arg-type]

