"""The engine room: llama.cpp in worker processes.

Only `hearth.engine.llama` imports `llama_cpp`, and only worker processes import it: the parent uses
`WorkerClient` (process management and event routing) and the plain data in `jobs`.
"""

from hearth.engine.build import build_id
from hearth.engine.client import WorkerClient
from hearth.engine.jobs import FLASH_ATTN, KV_TYPES, Job, WorkerConfig
from hearth.engine.sizing import default_context, kv_bytes_per_token, physical_cores

__all__ = ["FLASH_ATTN", "KV_TYPES", "Job", "WorkerClient", "WorkerConfig", "build_id", "default_context",
           "kv_bytes_per_token", "physical_cores"]
