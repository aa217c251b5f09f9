"""Quantization types: their names in GGUF file names, their size per weight, and which one to prefer.

The bits per weight are the averages llama.cpp's `quantize` reports for whole models (embeddings and norms
included), so `parameters × bits / 8` predicts a file size to within a few percent. They rank quality too:
more bits, closer to the original weights.
"""

from __future__ import annotations

import re

BITS_PER_WEIGHT: dict[str, float] = {
    "F32": 32.0, "F16": 16.0, "BF16": 16.0,
    "Q8_0": 8.5, "Q6_K_L": 6.9, "Q6_K": 6.56, "Q5_K_L": 5.9, "Q5_1": 6.0, "Q5_K_M": 5.67, "Q5_K_S": 5.52,
    "Q5_0": 5.5, "Q4_K_L": 5.1, "Q4_1": 5.0, "Q4_K_XL": 5.0, "Q4_K_M": 4.85, "Q4_K_S": 4.58, "Q4_0": 4.5,
    "IQ4_NL": 4.5, "MXFP4": 4.25, "IQ4_XS": 4.25, "Q3_K_XL": 4.5, "Q3_K_L": 4.27, "Q3_K_M": 3.91,
    "IQ3_M": 3.66, "Q3_K_S": 3.5, "IQ3_S": 3.44, "Q2_K_L": 3.5, "IQ3_XS": 3.3, "Q2_K": 3.35,
    "IQ3_XXS": 3.06, "Q2_K_S": 2.8, "IQ2_M": 2.7, "IQ2_S": 2.5, "IQ2_XS": 2.31, "TQ2_0": 2.06,
    "IQ2_XXS": 2.06, "IQ1_M": 1.75, "TQ1_0": 1.69, "IQ1_S": 1.56,
}
# What `hearth pull` picks when no quantization is named: the usual sweet spot first, then larger ones.
DEFAULT_PREFERENCE = ("Q4_K_M", "Q4_K_S", "IQ4_XS", "Q4_0", "IQ4_NL", "Q4_1", "Q4_K_L", "Q4_K_XL", "MXFP4",
                      "Q5_K_M", "Q5_K_S", "Q5_0", "Q6_K", "Q8_0", "Q3_K_L", "Q3_K_M")
_SWEET_SPOT = 4.85  # bits per weight of Q4_K_M: when none of the above is there, the nearest to it
# "Best quantization that fits" stops here: 16-bit files cost twice Q8_0's memory for no visible gain.
BEST_CEILING = 8.5

_QUANT = re.compile(
    r"(?<![A-Z0-9])(?:UD-)?("
    r"IQ[1-4]_(?:XXS|XS|NL|S|M)|Q[2-8]_K(?:_(?:XL|L|M|S))?|Q[4-8]_[01]|TQ[12]_0|MXFP4|BF16|F16|F32"
    r")(?![A-Z0-9])"
)


def quant_of(filename: str) -> str | None:
    """The quantization named in a GGUF file name ("Llama-3.2-1B-Instruct-Q4_K_M.gguf" → "Q4_K_M")."""
    stem = filename.rsplit("/", 1)[-1].upper().removesuffix(".GGUF")
    found = _QUANT.findall(stem)
    return found[-1] if found else None


def bits_per_weight(quant: str) -> float | None:
    """Average bits per weight of a quantization type, or None if unknown."""
    return BITS_PER_WEIGHT.get(quant.upper())


def estimated_size(parameters: int, quant: str) -> int | None:
    """Approximate file size of a model of `parameters` weights in quantization `quant`."""
    bits = bits_per_weight(quant)
    return None if bits is None or parameters <= 0 else int(parameters * bits / 8)


def default_quant(available: list[str]) -> str | None:
    """The quantization `hearth pull` chooses among `available` when none is asked for."""
    upper = {q.upper(): q for q in available}
    for choice in DEFAULT_PREFERENCE:
        if choice in upper:
            return upper[choice]
    known = [q for q in available if bits_per_weight(q) is not None]
    if known:
        return min(known, key=lambda q: abs((bits_per_weight(q) or 0.0) - _SWEET_SPOT))
    return available[0] if available else None


def quality_order(quants: list[str]) -> list[str]:
    """`quants` from best (most bits) to smallest; unknown types last."""
    return sorted(quants, key=lambda q: -(bits_per_weight(q) or 0.0))
