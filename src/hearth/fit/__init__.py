"""Will it fit? Memory and speed of a model on this machine, predicted before it is downloaded or loaded.

    from hearth.fit import read_shape, this_machine, assess, memory_budget
    shape = read_shape("model.gguf")                  # or ModelShape.from_header(remote header)
    machine = this_machine()                          # RAM, cores, measured memory bandwidth (cached)
    report = assess("mymodel", shape, machine, budget=memory_budget(machine.total), n_seq=4)
    report.verdict, report.estimate.total, report.largest_context, report.best, report.tokens_per_second

Rooms: `shape` (the numbers that matter, from a GGUF header, a manifest or a catalog entry), `estimate`
(weights + KV cache + compute + runtime; tokens per second), `machine` (memory, cores, bandwidth
benchmark), `quants` (quantization names and sizes), `report` (verdicts and advice).
"""

from hearth.fit.estimate import Estimate, estimate, largest_context, tokens_per_second
from hearth.fit.machine import Machine, measure_bandwidth, this_machine
from hearth.fit.quants import default_quant, estimated_size, quant_of
from hearth.fit.report import FitReport, QuantOption, Verdict, assess, label, memory_budget, refusal, size_text
from hearth.fit.shape import ModelShape, cached_shape, read_shape

__all__ = [
    "Estimate",
    "FitReport",
    "Machine",
    "ModelShape",
    "QuantOption",
    "Verdict",
    "assess",
    "default_quant",
    "estimate",
    "estimated_size",
    "label",
    "largest_context",
    "measure_bandwidth",
    "memory_budget",
    "quant_of",
    "cached_shape",
    "read_shape",
    "refusal",
    "size_text",
    "this_machine",
    "tokens_per_second",
]
