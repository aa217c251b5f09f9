"""The thin llama.cpp wrapper itself, loaded in a child process so a native crash cannot take pytest down."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


PENALTY_PROBE = """
import json, sys
from pathlib import Path
import llama_cpp as C
from hearth.engine.llama import Batch, Context, Model, Sampler
from hearth.options import Options
temperature, repeat, frequency, presence, last_n = (float(v) for v in sys.argv[2:7])
settings = Options(temperature=temperature, top_k=40, top_p=0.9, repeat_penalty=repeat, repeat_last_n=int(last_n),
                   frequency_penalty=frequency, presence_penalty=presence, seed=7)
model = Model(Path(sys.argv[1]))
ctx = Context(model, n_ctx=512, n_threads=2)
ours = Sampler(model, settings, 512)
# llama.cpp's own chain with its penalties sampler, as Hearth built it before
ref = C.llama_sampler_chain_init(C.llama_sampler_chain_default_params())
C.llama_sampler_chain_add(ref, C.llama_sampler_init_penalties(model.n_vocab, int(last_n), repeat, frequency,
                                                              presence))
if temperature <= 0:
    C.llama_sampler_chain_add(ref, C.llama_sampler_init_greedy())
else:
    for s in (C.llama_sampler_init_top_k(40), C.llama_sampler_init_top_p(0.9, 1),
              C.llama_sampler_init_temp(temperature), C.llama_sampler_init_dist(7)):
        C.llama_sampler_chain_add(ref, s)
batch = Batch(512, 1)
tokens = model.tokenize("<|im_start|>user\\nWrite a list of ten fruits, one per line.<|im_end|>\\n"
                        "<|im_start|>assistant\\n")
for pos, tok in enumerate(tokens):
    batch.add(tok, pos, 0, pos == len(tokens) - 1)
out, agree, pos = [], 0, len(tokens)
for _ in range(120):
    ctx.decode(batch)
    want = C.llama_sampler_sample(ref, ctx.ptr, batch.n - 1)  # reads the logits, leaves them as they are
    got = ours.sample(ctx, batch.n - 1)  # penalises them in place, then samples
    agree += want == got
    out.append(want)
    batch.clear()
    batch.add(want, pos, 0, True)
    pos += 1
plain = Sampler(model, Options(temperature=0.0, repeat_penalty=1.0), 512)
print(json.dumps({"agree": agree, "window": len(ours.penalties.window), "argmax": ours.argmax_only,
                  "plain": plain.penalties is None, "distinct": len(set(out))}))
"""


@pytest.mark.parametrize(("temperature", "repeat", "frequency", "presence", "last_n"), [
    (0.0, 1.3, 0.0, 0.0, 64), (0.0, 1.1, 0.4, 0.3, 16), (0.8, 1.2, 0.2, 0.1, 32), (0.0, 0.9, -0.2, 0.0, 8)])
def test_penalties_in_place_choose_what_llama_cpps_penalties_sampler_chooses(
        bundled_model: Path, temperature: float, repeat: float, frequency: float, presence: float,
        last_n: int) -> None:
    args = [str(v) for v in (temperature, repeat, frequency, presence, last_n)]
    proc = subprocess.run([sys.executable, "-c", PENALTY_PROBE, str(bundled_model), *args], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["agree"] == 120
    assert result["window"] == last_n  # the window filled and slid
    assert result["argmax"] is (temperature == 0.0) and result["plain"] is True
    assert result["distinct"] > 10
