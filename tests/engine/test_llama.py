"""The thin llama.cpp wrapper itself, loaded in a child process so a native crash cannot take pytest down."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from pathlib import Path
from hearth.engine.llama import Model
path = Path(sys.argv[1])
out = {}
for use_mmap in (True, False):
    model = Model(path, use_mmap=use_mmap)
    out[str(use_mmap)] = path.name in Path("/proc/self/maps").read_text()
    model.close()
print(json.dumps(out))
"""


def test_use_mmap_reaches_llama_cpp(bundled_model: Path) -> None:
    # llama.cpp 0.3.36 has no `use_mmap` field any more (it is `load_mode`); setting a missing ctypes field
    # is silently ignored, so check what the process actually mapped
    proc = subprocess.run([sys.executable, "-c", PROBE, str(bundled_model)], capture_output=True, text=True,
                          timeout=120, check=True)
    mapped = json.loads(proc.stdout.strip().splitlines()[-1])
    assert mapped == {"True": True, "False": False}


GREEDY_PROBE = """
import json, sys
from pathlib import Path
from hearth.engine.llama import Batch, Context, Model, Sampler
from hearth.options import Options
settings = Options(temperature=0.0, top_p=1.0, repeat_penalty=1.0, seed=0)
model = Model(Path(sys.argv[1]))
ctx = Context(model, n_ctx=512, n_threads=1)
fast, chain = Sampler(model, settings, 512), Sampler(model, settings, 512)
chain.argmax_only = False  # the same one-sampler chain, run by llama.cpp
batch = Batch(512, 1)
tokens = model.tokenize("<|im_start|>user\\nName three colours.<|im_end|>\\n<|im_start|>assistant\\n")
for pos, tok in enumerate(tokens):
    batch.add(tok, pos, 0, pos == len(tokens) - 1)
out, agree, pos = [], 0, len(tokens)
for _ in range(40):
    ctx.decode(batch)
    a, b = fast.sample(ctx, batch.n - 1), chain.sample(ctx, batch.n - 1)
    agree += a == b
    out.append(a)
    batch.clear()
    batch.add(a, pos, 0, True)
    pos += 1
print(json.dumps({"fast": fast.argmax_only, "agree": agree, "text": model.detokenize(out)}))
"""


def test_greedy_argmax_matches_llama_cpp_greedy_sampler(bundled_model: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", GREEDY_PROBE, str(bundled_model)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["fast"] is True
    assert result["agree"] == 40
    assert result["text"].strip()
