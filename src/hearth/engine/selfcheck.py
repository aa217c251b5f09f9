"""`python -m hearth.engine.selfcheck`: is the installed llama.cpp safe to run here?

Checks that the build has no AMX kernels (they crash on the first decode on some Xeon CPUs), then loads
the bundled model in a worker process and generates a few tokens. Exit status 0 means ready.
"""

from __future__ import annotations

import subprocess
import sys

_PROBE = "from hearth.engine.llama import build_info; print(build_info())"


def main() -> int:
    """Run the checks; print what is wrong and how to fix it."""
    info = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        print(f"llama-cpp-python does not import: {info.stderr.strip()[-500:]}", file=sys.stderr)
        return 1
    if "AMX" in info.stdout:
        print("This llama-cpp-python build has AMX kernels, which crash on this CPU. Rebuild it with "
              "scripts/build-engine.sh (remove .build/wheels first).", file=sys.stderr)
        return 1
    from hearth.engine import WorkerClient, WorkerConfig
    from hearth.engine.jobs import Job
    from hearth.options import Options
    from hearth.store.bundled import require

    client = WorkerClient(WorkerConfig(str(require()), n_ctx=256, n_seq=1, embeddings=False))
    try:
        tokens = client.tokenize("Hello")
        greedy = Options(temperature=0.0, repeat_penalty=1.0, repeat_last_n=0, seed=0)
        events = list(client.stream(Job(client.new_job_id(), tokens, greedy, max_tokens=4, ignore_eos=True)))
    finally:
        client.close()
    done = events[-1]
    if getattr(done, "reason", None) != "length":
        print(f"the engine failed its smoke test: {done}", file=sys.stderr)
        return 1
    print("engine ok: " + info.stdout.strip().splitlines()[-1][:200])
    return 0


if __name__ == "__main__":
    sys.exit(main())
