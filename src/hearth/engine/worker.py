"""The model worker: a child process that owns one loaded model and runs the batcher.

llama.cpp runs only here, never in the process that talks to the user or to HTTP clients, so a crash
(segfault, out-of-memory kill) ends this process alone. The parent talks to it over one
`multiprocessing` pipe with small tuples:

    parent → worker   ("generate", Job) · ("cancel", job_id) · ("call", call_id, method, args) · ("shutdown",)
    worker → parent   ("ready", info) · ("failed", error_class, message)
                      ("event", job_id, Event) · ("reply", call_id, value) · ("raise", call_id, class, message)

Between decoding steps the worker drains its inbox without blocking, so a new job joins and a cancelled
one leaves within one step; with nothing to do it blocks on the pipe and uses no CPU.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from hearth import errors
from hearth.engine.batcher import Batcher
from hearth.engine.cache import PromptCache
from hearth.engine.jobs import Job, WorkerConfig
from hearth.engine.llama import Batch, Context, Model, build_info, grammar_problem
from hearth.engine.speculative import Drafter, NgramDrafter
from hearth.engine.speed import measure_speed
from hearth.engine.text import reads_special, tokenize_prompt
from hearth.types import Done, Event

SPECIAL_CACHE_ENTRIES = 4096

class _Worker:
    def __init__(self, conn: Connection, config: WorkerConfig) -> None:
        self.conn = conn
        self.config = config
        self.model = Model(Path(config.model_path), use_extra_bufts=config.use_extra_bufts, **_offload(config))
        self.ctx = Context(
            self.model, n_ctx=config.n_ctx * config.n_seq, n_seq=config.n_seq, n_batch=config.n_batch,
            n_threads=config.n_threads, n_threads_batch=config.n_threads_batch, flash_attn=config.flash_attn,
            kv_type=config.kv_type,
        )
        adapters = [self.model.load_adapter(Path(p)) for p in config.lora_paths]
        self.ctx.use_adapters(adapters)
        self.cache = PromptCache(config.cache_bytes)
        self.batcher = Batcher(self.model, self.ctx, self._emit, self.cache, drafter=self._drafter(),
                               draft_max=config.draft_max)
        self._embed_ctx: Context | None = None
        self._special: OrderedDict[bytes, bool] = OrderedDict()  # content digest → holds special-token text

    def _drafter(self) -> Drafter | None:
        """The speculative-decoding drafter `config.speculative` asks for (None: off)."""
        c = self.config
        if c.speculative == "ngram":
            return NgramDrafter()
        if c.speculative == "draft" and c.draft_model_path:
            from hearth.engine.draft import ModelDrafter

            return ModelDrafter(self.model, Path(c.draft_model_path), n_ctx=c.n_ctx, n_seq=c.n_seq,
                                n_threads=c.n_threads, flash_attn=c.flash_attn, n_batch=c.n_batch)
        return None

    def info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "n_ctx": self.ctx.n_ctx_seq,
            "n_seq": self.ctx.n_seq,
            "n_ctx_train": self.model.n_ctx_train,
            "n_vocab": self.model.n_vocab,
            "n_embd": self.model.n_embd,
            "model_bytes": self.model.size_bytes,
            "kv_bytes_per_token": self.model.kv_bytes_per_token(),
            "add_bos": self.model.add_bos,
            "bos_text": self.model.piece_text(self.model.bos),
            "eos_text": self.model.piece_text(self.model.eos),
            "system_info": build_info(),
            "speculative": self.batcher.drafter.kind if self.batcher.drafter is not None else "off",
            "config": asdict(self.config),
        }

    def _emit(self, job_id: int, event: Event) -> None:
        self.conn.send(("event", job_id, event))

    def run(self) -> None:
        while True:
            timeout = 0.0 if self.batcher.busy() else None
            while self.conn.poll(timeout):
                message = self.conn.recv()
                if message[0] == "shutdown":
                    return
                self._handle(message)
                timeout = 0.0
            if self.batcher.busy():
                self.batcher.step()

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "generate":
            job: Job = message[1]
            try:
                self.batcher.submit(job)
            except errors.HearthError as err:
                self._emit(job.id, Done("error", error=str(err)))
        elif kind == "cancel":
            self.batcher.cancel(message[1])
        elif kind == "call":
            _, call_id, method, args = message
            try:
                value = getattr(self, "call_" + method)(*args)
            except Exception as err:
                name = type(err).__name__ if isinstance(err, errors.HearthError) else "EngineError"
                self.conn.send(("raise", call_id, name, str(err)))
            else:
                self.conn.send(("reply", call_id, value))

    # -- calls ----------------------------------------------------------------------------------------------
    def call_tokenize(self, text: str, add_special: bool) -> list[int]:
        return self.model.tokenize(text, add_special=add_special, parse_special=True)

    def call_tokenize_prompt(self, text: str, spans: list[tuple[int, int]], add_special: bool) -> list[int]:
        return tokenize_prompt(self.model, text, spans, add_special, self._reads_special)

    def _reads_special(self, content: str) -> bool:
        """`reads_special`, once per distinct content (fitting and later turns ask about the same ones again);
        keyed by digest, so the cache holds no message text."""
        key = hashlib.blake2b(content.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        found = self._special.get(key)
        if found is None:
            found = self._special[key] = reads_special(self.model, content)
            if len(self._special) > SPECIAL_CACHE_ENTRIES:
                self._special.popitem(last=False)
        else:
            self._special.move_to_end(key)
        return found

    def call_check_grammar(self, grammar: str) -> str | None:
        return grammar_problem(self.model, grammar)

    def call_detokenize(self, tokens: list[int]) -> str:
        return self.model.detokenize(tokens)

    def call_info(self) -> dict[str, Any]:
        return self.info()

    def call_stats(self) -> dict[str, int]:
        b, c = self.batcher, self.cache
        return {"slots": self.ctx.n_seq, "slots_busy": b.active(), "waiting": len(b.waiting),
                "cache_hits": b.cache_hits, "cached_tokens": b.cached_tokens, "prompt_tokens": b.prompt_tokens,
                "generated_tokens": b.generated_tokens, "cache_entries": len(c), "cache_bytes": c.bytes,
                "draft_tokens": b.drafted_tokens, "accepted_tokens": b.accepted_tokens,
                "cache_saves": c.saves, "cache_restores": c.hits}

    def call_measure(self, setting: dict[str, int]) -> dict[str, float]:
        return measure_speed(self.model, kv_type=self.config.kv_type, **setting)

    def call_embed(self, texts: list[str]) -> list[tuple[list[float], int]]:
        if self._embed_ctx is None:
            # an embedding is a small batch (a question, a ~200-token passage) through a small model: sized like
            # a decode step, not a long prompt, so it takes decode's thread count (on a busy machine, more threads
            # than that made each call wait ~1 s at ggml's barriers: docs/documents.md)
            self._embed_ctx = Context(
                self.model, n_ctx=self.config.n_ctx, n_seq=1, n_batch=self.config.n_ctx,
                n_threads=self.config.n_threads, n_threads_batch=self.config.n_threads, embeddings=True,
            )
        out = []
        batch = Batch(self.config.n_ctx, 1)
        try:
            for text in texts:
                tokens = self.model.tokenize(text, add_special=True)
                if len(tokens) > self.config.n_ctx:
                    raise errors.ContextOverflowError(
                        f"an input is {len(tokens)} tokens but the context holds {self.config.n_ctx}")
                self._embed_ctx.clear()
                batch.clear()
                for i, t in enumerate(tokens):
                    batch.add(t, i, 0, True)
                self._embed_ctx.decode(batch)
                out.append((self._embed_ctx.embedding(0), len(tokens)))
        finally:
            batch.close()
        return out


def _offload(config: WorkerConfig) -> dict[str, Any]:
    """`Model`'s arguments that send layers to the RPC workers (none without them)."""
    if not config.rpc_servers:
        return {}
    from hearth.engine.ggml import rpc_devices

    # a lost RPC worker makes llama.cpp abort this process; its usual gdb backtrace of a bug would only
    # delay the error the answers get and fill the server's log
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")
    devices = [d.handle for endpoint in config.rpc_servers for d in rpc_devices(endpoint)]
    return {"devices": devices, "device_layers": config.rpc_layers, "split": config.rpc_split}


def run_worker(conn: Connection, config: WorkerConfig) -> None:
    """Load the model and serve the pipe until told to stop or the parent goes away."""
    try:
        worker = _Worker(conn, config)
    except errors.HearthError as err:
        conn.send(("failed", type(err).__name__, str(err)))
        return
    except Exception as err:  # pragma: no cover - anything llama.cpp throws at load time
        conn.send(("failed", "EngineError", f"{type(err).__name__}: {err}"))
        return
    conn.send(("ready", worker.info()))
    try:
        worker.run()
    except (EOFError, OSError):
        pass  # the parent went away: nothing left to serve
    finally:
        try:
            worker.batcher.close()
        except OSError:
            pass
