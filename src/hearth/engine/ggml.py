"""ggml's backend devices and its RPC backend, through ctypes: the part of llama.cpp's C API that
llama-cpp-python does not bind (it binds `llama_supports_rpc` and nothing else of RPC).

The declarations follow the vendored llama.cpp's `ggml/include/ggml-backend.h` and `ggml/include/ggml-rpc.h`.
The RPC functions are reached the way llama.cpp's own tools reach them (`common/arg.cpp`'s `--rpc`,
`tools/rpc/rpc-server.cpp`): the "RPC" backend registry's `get_proc_address`, so nothing but libggml is
opened. Only model workers, the device query below and `hearth rpc-worker` import this module.

`python -m hearth.engine.ggml HOST:PORT...` prints the RPC devices those workers offer, as JSON: the
parent asks this way (`hearth.engine.rpc.query`) so that llama.cpp, which aborts the process when an RPC
connection fails, never runs in the server's own process.
"""

from __future__ import annotations

import ctypes
import json
import sys
from dataclasses import asdict, dataclass

from hearth.engine.llama import ggml_library, supports_rpc
from hearth.errors import EngineError

DEVICE_TYPE_CPU = 0  # enum ggml_backend_dev_type: CPU, GPU, IGPU, ACCEL, META

_lib = ggml_library()


def _declare(name: str, restype: object, *argtypes: object) -> ctypes._CFuncPtr:
    function = getattr(_lib, name)
    function.restype = restype
    function.argtypes = list(argtypes)
    return function


_void_p, _size_t, _char_p = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p
_reg_by_name = _declare("ggml_backend_reg_by_name", _void_p, _char_p)
_reg_get_proc_address = _declare("ggml_backend_reg_get_proc_address", _void_p, _void_p, _char_p)
_reg_dev_count = _declare("ggml_backend_reg_dev_count", _size_t, _void_p)
_reg_dev_get = _declare("ggml_backend_reg_dev_get", _void_p, _void_p, _size_t)
_dev_by_type = _declare("ggml_backend_dev_by_type", _void_p, ctypes.c_int)
_dev_name = _declare("ggml_backend_dev_name", _char_p, _void_p)
_dev_description = _declare("ggml_backend_dev_description", _char_p, _void_p)
_dev_memory = _declare("ggml_backend_dev_memory", None, _void_p, ctypes.POINTER(_size_t), ctypes.POINTER(_size_t))

# ggml-rpc.h: ggml_backend_reg_t ggml_backend_rpc_add_server(const char * endpoint);
_ADD_SERVER = ctypes.CFUNCTYPE(_void_p, _char_p)
# void ggml_backend_rpc_start_server(const char * endpoint, const char * cache_dir, size_t n_threads,
#                                    size_t n_devices, ggml_backend_dev_t * devices);
_START_SERVER = ctypes.CFUNCTYPE(None, _char_p, _char_p, _size_t, _size_t, ctypes.POINTER(_void_p))


@dataclass(frozen=True)
class Device:
    """A ggml backend device: its handle (for `llama.Model`), name, description and memory in bytes."""

    handle: int
    name: str
    description: str
    free: int
    total: int


def describe(handle: int) -> Device:
    """Name, description and memory of a device (an RPC device asks its worker: one round trip)."""
    free, total = _size_t(0), _size_t(0)
    _dev_memory(handle, ctypes.byref(free), ctypes.byref(total))
    return Device(handle, (_dev_name(handle) or b"").decode(errors="replace"),
                  (_dev_description(handle) or b"").decode(errors="replace"), free.value, total.value)


def _rpc_function(name: str, prototype: type) -> ctypes._CFuncPtr:
    if not supports_rpc():
        raise EngineError("this llama.cpp build has no RPC backend",
                          hint="rebuild the engine with `make setup` (scripts/build-engine.sh sets -DGGML_RPC=ON)")
    address = _reg_get_proc_address(_reg_by_name(b"RPC"), name.encode())
    if not address:
        raise EngineError(f"llama.cpp's RPC backend does not offer {name}")
    return prototype(address)


def rpc_devices(endpoint: str) -> list[Device]:
    """Connect to the RPC worker at `endpoint` ("host:port") and return the devices it offers.

    llama.cpp aborts the process if the worker cannot be reached (`rpc_dispatcher::start` in
    ggml/src/ggml-rpc/ggml-rpc.cpp): callers probe the endpoint first (`hearth.engine.rpc.probe`).
    """
    reg = _rpc_function("ggml_backend_rpc_add_server", _ADD_SERVER)(endpoint.encode())
    if not reg:
        raise EngineError(f"the RPC worker at {endpoint} offers no devices")
    return [describe(_reg_dev_get(reg, i)) for i in range(_reg_dev_count(reg))]


def serve_rpc(endpoint: str, threads: int, cache_dir: str | None = None) -> None:
    """Serve this machine's CPU to RPC clients at `endpoint` ("ipv4:port"); blocks, one client at a time.

    Returns only if the server could not start (llama.cpp prints why on stderr: e.g. the port is taken).
    """
    start = _rpc_function("ggml_backend_rpc_start_server", _START_SERVER)
    cpu = _dev_by_type(DEVICE_TYPE_CPU)
    if not cpu:
        raise EngineError("llama.cpp found no CPU device to serve")
    devices = (_void_p * 1)(cpu)
    start(endpoint.encode(), cache_dir.encode() if cache_dir else None, threads, 1, devices)


def main(endpoints: list[str]) -> int:
    """Print `{"devices": [...]}` for the RPC workers at `endpoints` (one JSON line on stdout)."""
    try:
        found = [{**asdict(d), "handle": None, "endpoint": e} for e in endpoints for d in rpc_devices(e)]
    except EngineError as err:
        print(json.dumps({"error": str(err)}))
        return 1
    print(json.dumps({"devices": found}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
