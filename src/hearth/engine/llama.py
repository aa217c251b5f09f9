"""The one module that imports `llama_cpp`: thin, typed wrappers over llama.cpp's low-level C API.

Hearth does not use llama-cpp-python's high-level `Llama` class: its per-token path re-detokenizes the
whole output, keeps Python-side score arrays and serves one sequence at a time. Here a `Model` owns the
weights (memory-mapped) and a `Context` owns one llama.cpp context with `n_seq_max` independent
sequences; `Batch` is a preallocated `llama_batch` filled in place, and `Sampler` is one native sampler
chain per sequence. Everything above this module (batching, detokenizing, stop strings) is plain Python.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import llama_cpp as C
import numpy as np

from hearth.engine.penalties import Penalties
from hearth.errors import EngineError, InvalidRequestError
from hearth.options import Options

log = logging.getLogger("hearth.engine")

_LOG_TAIL: deque[str] = deque(maxlen=20)
_INIT_LOCK = threading.Lock()
_initialised = False


@C.llama_log_callback
def _log_callback(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    """Keep llama.cpp quiet: remember recent lines (for error messages), log warnings and errors."""
    line = text.decode("utf-8", errors="replace")
    _LOG_TAIL.append(line)
    if level in (2, 3):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
        log.debug("llama.cpp: %s", line.rstrip())


def init_backend() -> None:
    """Initialise llama.cpp once per process and route its logging away from the terminal."""
    global _initialised
    with _INIT_LOCK:
        if _initialised:
            return
        C.llama_log_set(_log_callback, ctypes.c_void_p(0))
        C.llama_backend_init()
        _initialised = True


def recent_log() -> str:
    """The last lines llama.cpp logged (to explain a failure)."""
    return "".join(_LOG_TAIL).strip()


class Model:
    """A GGUF model loaded with mmap: weights, vocabulary and metadata."""

    def __init__(self, path: Path, *, use_mmap: bool = True, use_extra_bufts: bool = True,
                 devices: Sequence[int] = (), device_layers: int = 0, split: Sequence[float] = ()) -> None:
        """Load `path`; with `devices` (ggml device handles, e.g. RPC workers'), the last `device_layers` of its
        layers (the output layer counting as one) go to them, shared in the proportions `split`."""
        init_backend()
        params = C.llama_model_default_params()
        params.n_gpu_layers = device_layers if devices else 0
        # llama.cpp replaced the use_mmap flag with load_mode; AUTO maps the file like llama-bench does
        params.load_mode = C.LLAMA_LOAD_MODE_AUTO if use_mmap else C.LLAMA_LOAD_MODE_NONE
        params.use_extra_bufts = use_extra_bufts
        # llama.cpp copies both lists while loading (model->devices, tensor_split_owned): locals suffice
        device_list = (ctypes.c_void_p * (len(devices) + 1))(*devices, None)
        proportions = (ctypes.c_float * C.llama_max_devices())(*split)
        if devices:
            params.devices = ctypes.cast(device_list, ctypes.c_void_p)
            params.tensor_split = proportions if split else None
        ptr = C.llama_model_load_from_file(str(path).encode(), params)
        if not ptr:
            raise EngineError(f"llama.cpp could not load {path.name}: {recent_log()[-300:] or 'unknown error'}")
        self.ptr = ptr
        self.vocab = C.llama_model_get_vocab(ptr)
        self.n_vocab = C.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train = C.llama_model_n_ctx_train(ptr)
        self.n_embd = C.llama_model_n_embd(ptr)
        self.size_bytes = C.llama_model_size(ptr)
        self.bos = C.llama_vocab_bos(self.vocab)
        self.eos = C.llama_vocab_eos(self.vocab)
        self.add_bos = bool(C.llama_vocab_get_add_bos(self.vocab))
        self._piece_buf = ctypes.create_string_buffer(256)
        self._pieces: dict[int, bytes] = {}
        self._eog: dict[int, bool] = {}

        self.adapters: list[Any] = []

    def load_adapter(self, path: Path) -> Any:
        """Load a LoRA adapter GGUF for this model (applied to a context with `Context.use_adapters`)."""
        ptr = C.llama_adapter_lora_init(self.ptr, str(path).encode())
        if not ptr:
            raise EngineError(f"llama.cpp could not load the adapter {path.name}: {recent_log()[-300:]}")
        self.adapters.append(ptr)
        return ptr

    def close(self) -> None:
        """Free the adapters and the weights."""
        for adapter in self.adapters:
            C.llama_adapter_lora_free(adapter)
        self.adapters = []
        if self.ptr:
            C.llama_model_free(self.ptr)
            self.ptr = None

    def kv_bytes_per_token(self) -> int:
        """Bytes of f16 KV cache one context token costs (all layers, K and V)."""
        n_layer = C.llama_model_n_layer(self.ptr)
        n_head = max(1, C.llama_model_n_head(self.ptr))
        n_head_kv = C.llama_model_n_head_kv(self.ptr)
        head_dim = self.n_embd // n_head
        return 2 * n_layer * n_head_kv * head_dim * 2

    def meta(self, key: str) -> str | None:
        """A GGUF metadata value as a string, or None."""
        buf = ctypes.create_string_buffer(1 << 16)
        n = C.llama_model_meta_val_str(self.ptr, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace") if n >= 0 else None

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        """Text → token ids (special tokens like `<|im_start|>` parsed when `parse_special`)."""
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (C.llama_token * cap)()
        n = C.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:
            cap = -n
            buf = (C.llama_token * cap)()
            n = C.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:
            raise InvalidRequestError("the prompt could not be tokenized")
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The bytes of one token (memoised; special tokens render as empty)."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        n = C.llama_token_to_piece(self.vocab, token, self._piece_buf, len(self._piece_buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = C.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
            out = buf.raw[:n]
        else:
            out = self._piece_buf.raw[:n]
        self._pieces[token] = out
        return out

    def piece_text(self, token: int) -> str:
        """The text of a (special) token such as BOS, rendered; empty if there is none."""
        if token < 0:
            return ""
        buf = ctypes.create_string_buffer(256)
        n = C.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
        return buf.raw[: max(n, 0)].decode("utf-8", errors="replace")

    def detokenize(self, tokens: list[int]) -> str:
        """Token ids → text (for tests and diagnostics; generation decodes incrementally)."""
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def vocabulary(self) -> tuple[int, int, int, int, bool, list[bytes]]:
        """What must match for another model to draft for this one: type, size, BOS, EOS, add-BOS, each token's text."""
        texts = [C.llama_vocab_get_text(self.vocab, i) or b"" for i in range(self.n_vocab)]
        return (C.llama_vocab_type(self.vocab), self.n_vocab, self.bos, self.eos, self.add_bos, texts)

    def is_eog(self, token: int) -> bool:
        """True for end-of-generation tokens (EOS, EOT, `<|im_end|>`...)."""
        cached = self._eog.get(token)
        if cached is None:
            cached = self._eog[token] = bool(C.llama_vocab_is_eog(self.vocab, token))
        return cached


class Context:
    """One llama.cpp context: a KV cache shared by up to `n_seq` sequences."""

    def __init__(
        self,
        model: Model,
        *,
        n_ctx: int,
        n_seq: int = 1,
        n_batch: int = 512,
        n_threads: int = 1,
        n_threads_batch: int | None = None,
        flash_attn: int = -1,
        kv_type: int = 1,
        embeddings: bool = False,
    ) -> None:
        params = C.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        params.n_threads = n_threads
        params.n_threads_batch = n_threads_batch or n_threads
        params.flash_attn_type = flash_attn
        params.type_k = params.type_v = kv_type
        params.no_perf = True
        params.kv_unified = False
        if embeddings:
            params.embeddings = True
            params.pooling_type = C.LLAMA_POOLING_TYPE_MEAN
        ptr = C.llama_init_from_model(model.ptr, params)
        if not ptr:
            raise EngineError(f"llama.cpp could not create a context of {n_ctx} tokens: {recent_log()[-300:]}")
        self.ptr = ptr
        self.model = model
        self.n_ctx = C.llama_n_ctx(ptr)
        self.n_ctx_seq = C.llama_n_ctx_seq(ptr) if n_seq > 1 else self.n_ctx
        self.n_batch = n_batch
        self.n_seq = n_seq
        self.mem = C.llama_get_memory(ptr)

    def close(self) -> None:
        """Free the context and its KV cache."""
        if self.ptr:
            C.llama_free(self.ptr)
            self.ptr = None

    def use_adapters(self, adapters: list[Any], scale: float = 1.0) -> None:
        """Apply LoRA adapters (each at `scale`) to everything this context decodes."""
        if not adapters:
            return
        arr = (C.llama_adapter_lora_p_ctypes * len(adapters))(*adapters)
        scales = (ctypes.c_float * len(adapters))(*([scale] * len(adapters)))
        if C.llama_set_adapters_lora(self.ptr, arr, len(adapters), scales) != 0:
            raise EngineError("llama.cpp could not apply the LoRA adapter(s) to this model")

    def decode(self, batch: Batch) -> None:
        """Run the model over a filled batch; raise EngineError on failure."""
        rc = C.llama_decode(self.ptr, batch.raw)
        if rc != 0:
            detail = "the context is full" if rc == 1 else f"llama_decode returned {rc}"
            raise EngineError(f"decoding failed: {detail}")

    def argmax(self, index: int) -> int:
        """The most likely next token at batch position `index` (the first highest logit)."""
        pointer = C.llama_get_logits_ith(self.ptr, index)
        if not pointer:
            raise EngineError(f"llama.cpp has no logits at batch position {index}")
        return int(np.ctypeslib.as_array(pointer, shape=(self.model.n_vocab,)).argmax())

    def forget(self, seq: int, start: int = 0) -> None:
        """Drop a sequence's cached tokens from position `start` on."""
        C.llama_memory_seq_rm(self.mem, seq, start, -1)

    def save_sequence(self, seq: int) -> bytes:
        """A copy of one sequence's KV state (to restore later with `load_sequence`)."""
        size = C.llama_state_seq_get_size(self.ptr, seq)
        buf = (ctypes.c_uint8 * size)()
        written = C.llama_state_seq_get_data(self.ptr, buf, size, seq)
        # string_at copies in C; slicing a ctypes array (buf[:written]) builds a list of ints: ~80 ms for 4 MB
        return ctypes.string_at(buf, written) if written else b""

    def load_sequence(self, seq: int, data: bytes) -> bool:
        """Replace a sequence's KV state with saved data; False if llama.cpp refused it."""
        self.forget(seq)
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        return C.llama_state_seq_set_data(self.ptr, buf, len(data), seq) > 0

    def clear(self) -> None:
        """Empty the whole KV cache."""
        C.llama_memory_clear(self.mem, True)

    def embedding(self, seq: int) -> list[float]:
        """The pooled embedding of a sequence after an embeddings decode."""
        ptr = C.llama_get_embeddings_seq(self.ptr, seq)
        if not ptr:
            raise EngineError("this model produced no embedding")
        return [float(x) for x in ptr[: self.model.n_embd]]


class Batch:
    """A preallocated `llama_batch`, refilled in place each step."""

    def __init__(self, capacity: int, n_seq: int) -> None:
        self.raw = C.llama_batch_init(capacity, 0, n_seq)
        self.capacity = capacity
        self.n = 0

    def clear(self) -> None:
        """Start a new step."""
        self.n = 0
        self.raw.n_tokens = 0

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        """Append one token; return its index in the batch (for sampling its logits)."""
        i = self.n
        raw = self.raw
        raw.token[i] = token
        raw.pos[i] = pos
        raw.n_seq_id[i] = 1
        raw.seq_id[i][0] = seq
        raw.logits[i] = logits
        self.n = i + 1
        raw.n_tokens = self.n
        return i

    @property
    def free(self) -> int:
        """How many more tokens fit in this step."""
        return self.capacity - self.n

    def close(self) -> None:
        """Free the batch's arrays."""
        if self.raw is not None:
            C.llama_batch_free(self.raw)
            self.raw = None


class Sampler:
    """Penalties (in place, `hearth.engine.penalties`), then one native sampler chain (grammar → top-k → top-p →
    min-p → typical → temperature → draw), or an argmax for greedy decoding without a grammar."""

    def __init__(self, model: Model, options: Options, n_ctx: int) -> None:
        chain = C.llama_sampler_chain_init(C.llama_sampler_chain_default_params())
        self.ptr = chain
        self.n_vocab = model.n_vocab
        # a chain that is only `greedy` is an argmax: done in place on llama.cpp's logits, it skips the
        # chain's copy of every logit into a candidates array (~0.1 ms per token on a 49k vocabulary)
        self.argmax_only = False
        # penalties are applied to the logits before the chain runs (hearth.engine.penalties: llama.cpp's
        # arithmetic on the window's few tokens instead of a hash lookup for each of the vocabulary's)
        self.penalties: Penalties | None = None
        add = C.llama_sampler_chain_add
        o = options
        try:
            if o.grammar:
                with quiet_stderr():
                    g = C.llama_sampler_init_grammar(model.vocab, o.grammar.encode(), b"root")
                if not g:
                    raise InvalidRequestError(GRAMMAR_REFUSED, field="grammar")
                add(chain, g)
            last_n = n_ctx if o.repeat_last_n == -1 else o.repeat_last_n
            if Penalties.wanted(last_n, o.repeat_penalty, o.frequency_penalty, o.presence_penalty):
                self.penalties = Penalties(last_n, o.repeat_penalty, o.frequency_penalty, o.presence_penalty)
            if o.temperature <= 0:
                add(chain, C.llama_sampler_init_greedy())
                self.argmax_only = C.llama_sampler_chain_n(chain) == 1
                return
            if o.top_k > 0:
                add(chain, C.llama_sampler_init_top_k(o.top_k))
            if o.top_p < 1.0:
                add(chain, C.llama_sampler_init_top_p(o.top_p, 1))
            if o.min_p > 0.0:
                add(chain, C.llama_sampler_init_min_p(o.min_p, 1))
            if o.typical_p < 1.0:
                add(chain, C.llama_sampler_init_typical(o.typical_p, 1))
            add(chain, C.llama_sampler_init_temp(o.temperature))
            add(chain, C.llama_sampler_init_dist(0xFFFFFFFF if o.seed is None else o.seed & 0xFFFFFFFF))
        except BaseException:
            self.close()
            raise

    def accept(self, token: int) -> None:
        """Feed a token to stateful samplers (penalties, grammar) without sampling it."""
        C.llama_sampler_accept(self.ptr, token)
        if self.penalties is not None:
            self.penalties.accept(token)

    def sample(self, ctx: Context, index: int) -> int:
        """Draw (and accept) the next token from the logits at batch position `index`."""
        if self.penalties is not None or self.argmax_only:
            pointer = C.llama_get_logits_ith(ctx.ptr, index)
            if not pointer:
                raise EngineError(f"llama.cpp has no logits at batch position {index}")
            logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
            if self.penalties is not None:
                self.penalties.apply(logits)  # in place: the chain below reads the same buffer
        if self.argmax_only:  # same choice as llama.cpp's greedy sampler: the first highest logit
            token = int(logits.argmax())
        else:
            token = C.llama_sampler_sample(self.ptr, ctx.ptr, index)
        if self.penalties is not None:
            self.penalties.accept(token)
        return token

    def close(self) -> None:
        """Free the chain and its samplers."""
        if self.ptr:
            C.llama_sampler_free(self.ptr)
            self.ptr = None


GRAMMAR_REFUSED = "the grammar could not be parsed (a syntax error, an undefined rule or left recursion)"


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send this process's stderr nowhere for a moment: llama.cpp prints a grammar it cannot parse, whole."""
    sys.stderr.flush()
    saved = os.dup(2)
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(sink)


def grammar_problem(model: Model, grammar: str) -> str | None:
    """Why llama.cpp would refuse `grammar` for this model's vocabulary, or None if it takes it."""
    with quiet_stderr():
        sampler = C.llama_sampler_init_grammar(model.vocab, grammar.encode(), b"root")
    if not sampler:
        return GRAMMAR_REFUSED
    C.llama_sampler_free(sampler)
    return None


def build_info() -> str:
    """llama.cpp's system info line (CPU features the build uses)."""
    init_backend()
    return C.llama_print_system_info().decode(errors="replace")


def supports_rpc() -> bool:
    """Whether this llama.cpp build has the RPC backend (`-DGGML_RPC=ON`, scripts/engine-flags.sh)."""
    init_backend()
    return bool(C.llama_supports_rpc())


def ggml_library() -> ctypes.CDLL:
    """libggml, shipped beside libllama: ggml's backend registry, for the functions llama-cpp-python does not
    bind (`hearth.engine.ggml`). The same library llama_cpp already loaded, so the same registry."""
    init_backend()
    folder = Path(C.llama_cpp._lib._name).parent  # the libllama llama_cpp loaded (LLAMA_CPP_LIB_PATH or lib/)
    name = {"darwin": "libggml.dylib", "win32": "ggml.dll"}.get(sys.platform, "libggml.so")
    return ctypes.CDLL(str(folder / name))
