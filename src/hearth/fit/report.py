"""Verdicts: does a model fit this machine, with how much context, in which quantization, how fast.

    fits       the estimate is within the memory budget and within 85% of the memory free right now
    tight      within the budget, but it would take most of the free memory (close other programs first)
    too large  more than the memory budget (`memory_budget`, default 80% of RAM): Hearth refuses to load it

The same three labels appear in `hearth fit`, `hearth search`, `hearth catalog` and model listings, and the
scheduler's refusal uses `refusal` for its explanation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hearth.engine.build import build_id
from hearth.engine.sizing import default_context
from hearth.fit.estimate import CTX_STEP, Estimate, estimate, largest_context, tokens_per_second
from hearth.fit.machine import Machine
from hearth.fit.quants import BEST_CEILING, bits_per_weight, estimated_size, quality_order
from hearth.fit.shape import ModelShape
from hearth.fit.tuning import calibrated_speed
from hearth.units import size_text

Verdict = Literal["fits", "tight", "too large"]
COMFORT = 0.85  # share of the free memory a model may take and still "fit"
BUDGET_SHARE = 0.8  # the scheduler's default memory budget, as a share of total RAM
STANDARD_QUANTS = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")


@dataclass(frozen=True)
class QuantOption:
    """One quantization of a model: its size (from the hub listing, or estimated) and its verdict."""

    quant: str
    size: int
    size_known: bool
    total: int
    verdict: Verdict


@dataclass(frozen=True)
class FitReport:
    """Everything `hearth fit` prints about one model on this machine."""

    model: str
    shape: ModelShape
    estimate: Estimate
    machine: Machine
    budget: int
    verdict: Verdict
    largest_context: int | None
    best: QuantOption | None
    options: list[QuantOption]
    tokens_per_second: float
    notes: list[str] = field(default_factory=list)
    speed_source: str = "estimated from memory bandwidth"

    def to_dict(self) -> dict[str, object]:
        """For `hearth fit --json` and the API."""
        return {
            "model": self.model, "verdict": self.verdict, "quantization": self.shape.quantization,
            "memory": self.estimate.to_dict(), "machine": self.machine.to_dict(), "memory_budget": self.budget,
            "largest_context": self.largest_context, "context_length": self.shape.context_length,
            "best_quantization": None if self.best is None else self.best.quant,
            "quantizations": [{"quantization": o.quant, "size": o.size, "size_known": o.size_known,
                               "memory": o.total, "verdict": o.verdict} for o in self.options],
            "tokens_per_second": round(self.tokens_per_second, 1), "speed_source": self.speed_source,
            "header_read": self.shape.exact,
            "notes": list(self.notes),
        }


def memory_budget(total: int, configured: int = 0) -> int:
    """Bytes loaded models may use: the configured budget, else 80% of RAM (as the scheduler does)."""
    return configured if configured > 0 else int(total * BUDGET_SHARE)


def verdict(need: int, machine: Machine, budget: int) -> Verdict:
    """fits / tight / too large for `need` bytes on `machine` (see the module docstring)."""
    if need > budget:
        return "too large"
    return "fits" if need <= machine.available * COMFORT else "tight"


def context_for(shape: ModelShape, machine: Machine, n_seq: int, n_ctx: int | None = None) -> int:
    """The context the scheduler would give this model here (the asked-for one, else sized to free memory)."""
    if n_ctx:
        return n_ctx
    return default_context(shape.context_length, shape.kv_bytes_per_token, n_seq, machine.available)


def label(shape: ModelShape, machine: Machine, budget: int, n_seq: int = 1, n_ctx: int | None = None) -> Verdict:
    """Just the verdict, for listings."""
    return verdict(estimate(shape, context_for(shape, machine, n_seq, n_ctx), n_seq).total, machine, budget)


def assess(
    model: str, shape: ModelShape, machine: Machine, *, budget: int, n_seq: int = 1, n_ctx: int | None = None,
    quants: dict[str, int] | None = None, notes: list[str] | None = None, kv_type: str = "f16",
) -> FitReport:
    """The full verdict for `shape` here; `quants` maps the other available quantizations to their file sizes."""
    shape = shape.with_kv(kv_type)
    ctx = context_for(shape, machine, n_seq, n_ctx)
    est = estimate(shape, ctx, n_seq)
    comfortable = min(budget, int(machine.available * COMFORT))
    options = _options(shape, machine, budget, n_seq, ctx, quants)
    speed, source = _speed(shape, machine)
    return FitReport(
        model=model, shape=shape, estimate=est, machine=machine, budget=budget,
        verdict=verdict(est.total, machine, budget),
        largest_context=largest_context(shape, n_seq, comfortable),
        best=_best(options), options=options,
        tokens_per_second=speed, notes=list(notes or []), speed_source=source,
    )


def _speed(shape: ModelShape, machine: Machine) -> tuple[float, str]:
    """Measured decode speed when this machine has calibrated this shape (or one near it), else the estimate."""
    def predict(s: ModelShape) -> float:
        return tokens_per_second(s, machine.bandwidth, machine.cores)

    found = calibrated_speed(shape, predict, machine.cores, build_id())
    if found is not None:
        return found
    return predict(shape), "estimated from memory bandwidth"


def _options(shape: ModelShape, machine: Machine, budget: int, n_seq: int, ctx: int,
             quants: dict[str, int] | None) -> list[QuantOption]:
    sizes: dict[str, tuple[int, bool]] = {}
    if quants:
        sizes = {q: (size, True) for q, size in quants.items()}
    else:
        for quant in STANDARD_QUANTS:
            size = estimated_size(shape.parameters, quant)
            if size:
                sizes[quant] = (size, False)
    sizes[shape.quantization] = (shape.weights_bytes, True)
    options = []
    for quant in quality_order(list(sizes)):
        size, known = sizes[quant]
        total = estimate(shape.with_quant(quant, size), ctx, n_seq).total
        options.append(QuantOption(quant, size, known, total, verdict(total, machine, budget)))
    return options


def _best(options: list[QuantOption]) -> QuantOption | None:
    """The highest-quality option that fits (16-bit ones only when nothing smaller exists)."""
    capped = [o for o in options if (bits_per_weight(o.quant) or 0) <= BEST_CEILING] or options
    return next((o for o in capped if o.verdict == "fits"), None)


def refusal(name: str, shape: ModelShape, est: Estimate, budget: int, *, reserved: int = 0,
            reserved_for: str = "") -> tuple[str, str]:
    """Why a model cannot be loaded (a sentence with the parts) and what would make it fit (a hint).

    `reserved` bytes of the budget are already promised elsewhere (`reserved_for`, e.g. the prompt cache).
    """
    room = max(0, budget - reserved)
    message = (f"model '{name}' needs about {size_text(est.total)} ({size_text(est.weights)} of weights, "
               f"{size_text(est.kv_cache)} of context cache for {_ctx_text(est)}, "
               f"{size_text(est.compute + est.runtime)} for compute and runtime) ")
    if reserved:
        message += (f"but only {size_text(room)} of the {size_text(budget)} memory budget is left after "
                    f"{size_text(reserved)} for {reserved_for}")
    else:
        message += f"but the memory budget is {size_text(budget)}"
    budget = room
    hints = []
    fitting = largest_context(shape, est.n_seq, budget)
    if fitting is not None and fitting >= CTX_STEP * 2:
        hints.append(f"it fits with a smaller context (num_ctx={fitting} or less)")
    smaller = [q for q in quality_order(list(STANDARD_QUANTS))
               if (bits_per_weight(q) or 99) < (bits_per_weight(shape.quantization) or 99)]
    for quant in smaller:
        if estimate(shape.with_quant(quant), est.n_ctx, est.n_seq).total <= budget:
            hints.append(f"a {quant} quantization of it would fit")
            break
    if reserved and reserved_for:
        hints.append(f"less memory for {reserved_for} would leave more room")
    hints.append(f"`hearth fit {name}` shows the details")
    return message, "; ".join(hints)


def _ctx_text(est: Estimate) -> str:
    return f"{est.n_ctx} tokens" if est.n_seq == 1 else f"{est.n_seq} × {est.n_ctx} tokens"


