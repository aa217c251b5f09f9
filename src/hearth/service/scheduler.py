"""The scheduler: which models are loaded, for how long, and whether one more request may wait.

Models load on demand into their own worker process and stay for `keep_alive` seconds after their last
request (0 unloads as soon as the request ends, -1 keeps them until `hearth stop`). Loading a model that
would break the memory budget or the maximum number of loaded models first unloads idle models, least
recently used first; if that is not enough it fails with `InsufficientMemoryError` (or `BusyError` when
the models in the way are busy) instead of swapping the machine to death. Each model admits its slots plus
`max_queue` requests; the next one gets `BusyError` (HTTP 503 with Retry-After).

The worker constructor is injected (`client_factory`), so tests can count loads or kill workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import psutil

from hearth.config import Settings
from hearth.engine import KV_TYPES, WorkerClient, WorkerConfig, default_context
from hearth.errors import BusyError, EngineError, HearthError, InsufficientMemoryError, InvalidOptionError
from hearth.fit import Estimate, ModelShape, cached_shape, estimate, refusal
from hearth.service.loaded import LoadedModel
from hearth.service.rpc import RpcWorkers
from hearth.service.speculation import speculation_fields
from hearth.service.tuning import EngineSettings, Tuner
from hearth.store import Manifest, ModelStore
from hearth.units import size_text

ClientFactory = Callable[[WorkerConfig], WorkerClient]


def model_shape(manifest: Manifest, path: Path | None = None, cache: Path | None = None) -> ModelShape:
    """What a stored model's memory depends on: from its file's header if readable (remembered in the JSON
    file `cache`, see `cached_shape`), else its manifest."""
    if path is not None:
        try:
            shape = cached_shape(path, cache)
        except (HearthError, OSError):
            pass
        else:
            if not manifest.parts:
                return shape
            # a split model: the header is its first part's, the weights are all its parts'
            return replace(shape, weights_bytes=shape.weights_bytes + manifest.size - manifest.parts[0].size,
                           parameters=manifest.info.parameter_count)
    return ModelShape.from_info(manifest.info)


class Scheduler:
    """Loads, shares, expires and unloads model workers."""

    def __init__(self, store: ModelStore, settings: Settings,
                 client_factory: ClientFactory | None = None) -> None:
        self.store = store
        self.settings = settings
        self.client_factory: ClientFactory = client_factory or WorkerClient
        self.tuner = Tuner(settings, store.home, self.client_factory)
        # models spread over RPC workers (one at a time: a worker serves one client)
        self.rpc = RpcWorkers(settings.rpc_workers, offline=settings.offline) if settings.rpc_workers else None
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="hearth-reaper", daemon=True)
        self._reaper.start()

    @property
    def budget(self) -> int:
        """Bytes all loaded models may use together (with `rpc_workers`, theirs counted too)."""
        remote = self.rpc.budget(busy=bool(self._models)) if self.rpc else 0
        return self.local_budget + remote

    @property
    def local_budget(self) -> int:
        """Bytes of this machine's memory loaded models may use."""
        return self.settings.memory_budget or int(psutil.virtual_memory().total * 0.8)

    # -- acquire / release ----------------------------------------------------------------------------------
    def acquire(self, name: str, *, num_ctx: int | None = None, keep_alive: float | None = None) -> LoadedModel:
        """The loaded model for `name` (loading it if needed), with one more request counted in flight."""
        manifest = self.store.get(name)
        with self._lock:
            loaded = self._models.get(manifest.name)
            if loaded is not None and (not loaded.client.alive or _wants_reload(loaded, num_ctx, manifest)):
                self._unload(loaded)
                loaded = None
            if loaded is None:
                loaded = self._load(manifest, num_ctx)
            limit = loaded.client.info["n_seq"] + self.settings.max_queue
            if loaded.in_flight >= limit:
                raise BusyError(f"model '{loaded.name}' has {loaded.in_flight} requests in progress or waiting",
                                hint="try again in a moment", retry_after=2)
            loaded.in_flight += 1
            if keep_alive is not None:
                loaded.keep_alive = keep_alive
            loaded.last_used = time.monotonic()
            return loaded

    def release(self, loaded: LoadedModel) -> None:
        """A request on `loaded` finished; unload at once if its keep-alive is 0."""
        with self._lock:
            loaded.in_flight = max(0, loaded.in_flight - 1)
            loaded.last_used = time.monotonic()
            if loaded.in_flight == 0 and (loaded.keep_alive == 0 or not loaded.client.alive):
                self._unload(loaded)

    # -- loading --------------------------------------------------------------------------------------------
    def _load(self, manifest: Manifest, num_ctx: int | None) -> LoadedModel:
        n_seq = max(1, self.settings.num_parallel)
        path = self.store.model_path(manifest)
        if self.settings.kv_cache_type != "f16" and self.settings.flash_attention == "off":
            raise InvalidOptionError(
                f"a {self.settings.kv_cache_type} KV cache needs flash attention, which is off",
                hint="set flash_attention = on (or measure), or kv_cache_type = f16", field="kv_cache_type")
        shape = model_shape(manifest, path, self.store.shape_cache).with_kv(self.settings.kv_cache_type)
        n_ctx = num_ctx or self.settings.num_ctx or default_context(
            manifest.info.context_length or 0, shape.kv_bytes_per_token, n_seq)
        if self.rpc:  # all there? then free (the model on them unloaded) to say what they have
            self.rpc.probe()
            self._make_room(manifest.name, 0)
            self.rpc.check(max_age=5.0)
        # room first (counted for the larger, flash-attention-off compute buffer): calibrating loads the model
        self._make_room(manifest.name, self._need(shape, n_ctx, n_seq, None), (shape, self._predict(
            shape, n_ctx, n_seq, None)))
        # calibrating would load the whole model here: spread over workers it uses what was measured, if anything
        engine = self.tuner.current(shape) if self.rpc else self.tuner.settings_for(path, shape, manifest.name)
        speculation = speculation_fields(self.settings, manifest, engine, self.store)
        draft = self._draft_need(speculation["draft_model_path"], n_ctx, n_seq, engine)
        need = self._need(shape, n_ctx, n_seq, engine) + draft
        self._make_room(manifest.name, need, (shape, self._predict(shape, n_ctx, n_seq, engine)), draft=draft)
        config = WorkerConfig(str(path), n_ctx=n_ctx, n_seq=n_seq, **engine.worker_fields(),
                              kv_type=KV_TYPES[self.settings.kv_cache_type],
                              cache_bytes=self.settings.prompt_cache_bytes,
                              lora_paths=tuple(str(p) for p in self.store.adapter_paths(manifest)),
                              offline=self.settings.offline, **self._spread(shape), **speculation)
        started = time.perf_counter_ns()
        try:
            client = self.client_factory(config)
        except EngineError as err:
            if self.rpc is None:
                raise
            raise self.rpc.explain(err) from err
        loaded = LoadedModel(manifest, client, n_ctx=client.info["n_ctx"], estimate_bytes=need,
                             load_ns=time.perf_counter_ns() - started, keep_alive=self.settings.keep_alive,
                             engine=engine)
        self._models[manifest.name] = loaded
        return loaded

    def _spread(self, shape: ModelShape) -> dict[str, object]:
        """The `WorkerConfig` fields that put part of the model on the RPC workers (none without them)."""
        if self.rpc is None:
            return {}
        return self.rpc.worker_fields(shape.n_layer, max(0, self.local_budget - self.settings.prompt_cache_bytes))

    @staticmethod
    def _predict(shape: ModelShape, n_ctx: int, n_seq: int, engine: EngineSettings | None) -> Estimate:
        if engine is None:
            return estimate(shape, n_ctx, n_seq, flash_attention=False)
        return estimate(shape, n_ctx, n_seq, engine.batch, flash_attention=engine.flash_attention != "off")

    def _draft_need(self, path: str, n_ctx: int, n_seq: int, engine: EngineSettings | None) -> int:
        """Memory of the draft model a worker loads beside its model (0 without one): its weights, and a
        context as long as the model's with an f16 KV cache (`hearth.engine.draft`)."""
        if not path:
            return 0
        try:
            shape = cached_shape(path, self.store.shape_cache)
        except (HearthError, OSError):
            return 0  # unreadable: the worker's own load says why
        return self._predict(shape, n_ctx, n_seq, engine).total

    def _need(self, shape: ModelShape, n_ctx: int, n_seq: int, engine: EngineSettings | None) -> int:
        return self._predict(shape, n_ctx, n_seq, engine).total + self.settings.prompt_cache_bytes

    def _make_room(self, name: str, need: int, why: tuple[ModelShape, Estimate] | None = None, *,
                   draft: int = 0) -> None:
        """Unload idle models until `need` bytes fit (`draft` of them for a draft model), or say why it never will."""
        if need > self.budget:
            if why is None:
                raise InsufficientMemoryError(
                    f"model '{name}' needs about {size_text(need)} but the memory budget is {size_text(self.budget)}",
                    hint="use a smaller model or quantization, or a smaller num_ctx")
            reserved = {"the prompt cache (prompt_cache_bytes)": self.settings.prompt_cache_bytes,
                        "the draft model (speculative = ngram needs none)": draft}
            message, hint = refusal(name, *why, self.budget, reserved=sum(reserved.values()),
                                    reserved_for=" and ".join(what for what, used in reserved.items() if used))
            raise InsufficientMemoryError(message, hint=hint)
        while True:
            used = sum(m.estimate_bytes for m in self._models.values())
            full = len(self._models) >= (1 if self.rpc else max(1, self.settings.max_loaded_models))
            if used + need <= self.budget and not full:
                return
            idle = [m for m in self._models.values() if m.in_flight == 0]
            if not idle:
                raise BusyError(f"no room to load '{name}': the loaded models are all busy",
                                hint="try again when a request finishes", retry_after=5)
            self._unload(min(idle, key=lambda m: m.last_used))

    def _unload(self, loaded: LoadedModel) -> None:
        if self._models.get(loaded.name) is loaded:
            del self._models[loaded.name]
        loaded.client.close()

    # -- inspection and control -----------------------------------------------------------------------------
    def loaded(self) -> list[LoadedModel]:
        """The models currently loaded."""
        with self._lock:
            return list(self._models.values())

    def stop(self, name: str) -> bool:
        """Unload a model now (its running requests end with an error); False if it was not loaded."""
        with self._lock:
            loaded = self._models.get(self.store.get(name).name)
            if loaded is None:
                return False
            self._unload(loaded)
            return True

    def memory(self, loaded: LoadedModel) -> int:
        """Resident memory of a model's worker process, in bytes."""
        try:
            return int(psutil.Process(loaded.client.pid).memory_info().rss) if loaded.client.pid else 0
        except psutil.Error:
            return 0

    def close(self) -> None:
        """Unload everything and stop the reaper."""
        self._closed.set()
        with self._lock:
            for loaded in list(self._models.values()):
                self._unload(loaded)

    def _reap(self) -> None:
        while not self._closed.wait(1.0):
            now = time.monotonic()
            with self._lock:
                for loaded in list(self._models.values()):
                    expires = loaded.expires_at
                    if (expires is not None and now >= expires) or (not loaded.client.alive and not loaded.in_flight):
                        self._unload(loaded)


def _wants_reload(loaded: LoadedModel, num_ctx: int | None, manifest: Manifest) -> bool:
    """An idle model reloads for another context size, or when its name now means something else
    (`hearth create` replaced it: other weights, adapters, system prompt, template or seed messages)."""
    if loaded.in_flight:
        return False
    return (bool(num_ctx) and num_ctx != loaded.n_ctx) or _meaning(loaded.manifest) != _meaning(manifest)


def _meaning(manifest: Manifest) -> tuple[object, ...]:
    return (manifest.digest, manifest.adapters, manifest.system, manifest.template, manifest.messages,
            manifest.parameters)


