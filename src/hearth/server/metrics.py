"""Counters for `GET /metrics`, in Prometheus' text format. Counts only: never prompts or answers."""

from __future__ import annotations

import threading
from collections import Counter

from hearth.service import Running
from hearth.types import Done

# Requests are labelled by route template and by a known method, never by raw path or method, so a scanner
# cannot grow the label set without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


class Metrics:
    """Request, token and generation counters (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.tokens: Counter[str] = Counter()
        self.generations: Counter[str] = Counter()
        self.in_flight = 0

    def observe(self, method: str, route: str | None, status: int) -> None:
        """One finished HTTP request, by the template of the route that answered it (None: no route did)."""
        verb = method if method in METHODS else "other"
        with self._lock:
            self.requests[(verb, route or "other", status)] += 1

    def started(self) -> None:
        """A generation started."""
        with self._lock:
            self.in_flight += 1

    def finished(self, done: Done) -> None:
        """A generation ended."""
        with self._lock:
            self.in_flight -= 1
            self.generations[done.reason] += 1
            self.tokens["prompt"] += done.stats.prompt_tokens
            self.tokens["cached"] += done.stats.cached_tokens
            self.tokens["completion"] += done.stats.completion_tokens
            self.tokens["drafted"] += done.stats.draft_tokens
            self.tokens["accepted"] += done.stats.accepted_tokens

    def render(self, models: list[Running]) -> str:
        """The Prometheus text exposition; `models` describe the loaded models (name, in_flight, slots, rss)."""
        lines = [
            "# HELP hearth_http_requests_total HTTP requests answered, by method, route and status.",
            "# TYPE hearth_http_requests_total counter",
        ]
        with self._lock:
            for (method, path, status), n in sorted(self.requests.items()):
                lines.append(f'hearth_http_requests_total{{method="{method}",route="{path}",status="{status}"}} {n}')
            lines += ["# HELP hearth_tokens_total Tokens read (prompt, of which cached), generated (completion), "
                      "drafted by speculative decoding and accepted of those.",
                      "# TYPE hearth_tokens_total counter"]
            for kind in ("prompt", "cached", "completion", "drafted", "accepted"):
                lines.append(f'hearth_tokens_total{{kind="{kind}"}} {self.tokens[kind]}')
            lines += ["# HELP hearth_generations_total Generations ended, by reason (stop, length, cancelled, error).",
                      "# TYPE hearth_generations_total counter"]
            for reason in ("stop", "length", "cancelled", "error"):
                lines.append(f'hearth_generations_total{{reason="{reason}"}} {self.generations[reason]}')
            lines += ["# HELP hearth_generations_in_flight Generations running or queued in a worker.",
                      "# TYPE hearth_generations_in_flight gauge", f"hearth_generations_in_flight {self.in_flight}"]
        queued = sum(max(0, m.in_flight - m.slots) for m in models)
        lines += [
            "# HELP hearth_queue_depth Requests waiting for a free slot, over all loaded models.",
            "# TYPE hearth_queue_depth gauge", f"hearth_queue_depth {queued}",
            "# HELP hearth_models_loaded Models loaded in worker processes.",
            "# TYPE hearth_models_loaded gauge", f"hearth_models_loaded {len(models)}",
            "# HELP hearth_model_memory_bytes Resident memory of each model's worker process.",
            "# TYPE hearth_model_memory_bytes gauge",
        ]
        for m in models:
            lines.append(f'hearth_model_memory_bytes{{model="{_label(m.name)}"}} {m.memory_rss}')
        lines += ["# HELP hearth_model_requests Requests in progress or waiting, per loaded model.",
                  "# TYPE hearth_model_requests gauge"]
        for m in models:
            lines.append(f'hearth_model_requests{{model="{_label(m.name)}"}} {m.in_flight}')
        for key, kind, text in _WORKER_GAUGES:
            lines += [f"# HELP hearth_model_{key} {text}", f"# TYPE hearth_model_{key} {kind}"]
            for m in models:
                value = m.worker.get(key)
                if value is not None:
                    lines.append(f'hearth_model_{key}{{model="{_label(m.name)}"}} {value}')
        return "\n".join(lines) + "\n"


_WORKER_GAUGES = (
    ("slots", "gauge", "Decoding slots (sequences decoded together) per loaded model."),
    ("slots_busy", "gauge", "Slots generating or reading a prompt right now."),
    ("cache_hits", "counter", "Requests that reused cached prompt tokens (slot or saved state)."),
    ("cached_tokens", "counter", "Prompt tokens served from the cache instead of being evaluated."),
    ("cache_bytes", "gauge", "RAM used by saved conversation states (the prompt cache)."),
    ("cache_restores", "counter", "Saved conversation states restored into a slot."),
    ("draft_tokens", "counter", "Tokens drafted by speculative decoding and verified by the model."),
    ("accepted_tokens", "counter", "Drafted tokens the model accepted (each saved a decoding step)."),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
