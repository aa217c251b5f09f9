# The C/C++ flags llama.cpp is compiled with, for Hearth's engine (scripts/build-engine.sh) and for the
# reference binaries it is measured against (bench/build_llamacpp.sh). Sourced, not run.
#
# ggml's AMX code path segfaults on the first decode on some Xeon CPUs; laptops have no AMX, so leaving
# it out costs users nothing and keeps the fast repacked AVX kernels.
ENGINE_CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
# CMake options of Hearth's engine wheel (scripts/build-engine.sh only): the RPC backend lets one model
# spread over several machines' memory (`hearth rpc-worker`, the rpc_workers setting; docs/rpc.md). It is
# linked into libggml as libggml-rpc.so; the server and the client both come from the library, so no
# extra binary is built.
ENGINE_CMAKE_ARGS="-DGGML_RPC=ON"
