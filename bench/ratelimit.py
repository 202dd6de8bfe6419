"""Rate-limit utilisation: a backlog against a rate-limited gateway emulator, 1, 2, 4 workers.

The emulator counts allowed and refused requests per (time-scaled) window. Utilisation is
what the steady windows carried over what they allowed: the first window (workers starting)
and the last one (the backlog running out) are left out, and so are the 429s of the first
window, which is the warm-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.report import Figure
from bench.stack import Stack
from bench.workload import create_contacts, drain_queue, trigger_idle


@dataclass(frozen=True)
class RateParams:
    records: int
    limit: int  # requests per emulator window (GoCardless: 1,000 a minute)
    window: float  # seconds, before the emulator's time scale
    workers: tuple[int, ...]


def window_counts(windows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(allowed, refused) for every window from the first busy one to the last complete
    one, windows without a request counted as (0, 0)."""
    done = [w for w in windows if w["complete"]]
    if not done:
        return []
    by_index = {w["index"]: (w["allowed"], w["refused"]) for w in done}
    first, last = min(by_index), max(by_index)
    return [by_index.get(i, (0, 0)) for i in range(first, last + 1)]


def utilisation(counts: list[tuple[int, int]], limit: int) -> dict[str, Any]:
    steady = counts[1:-1]
    allowed = sum(a for a, _ in steady)
    return {
        "utilisation": allowed / (limit * len(steady)) if steady else None,
        "steady_windows": len(steady),
        "max_window": max((a for a, _ in counts), default=0),
        "refused_total": sum(r for _, r in counts),
        "refused_after_warmup": sum(r for _, r in counts[1:]),
        "per_window": [a for a, _ in counts],
    }


def run_one(stack: Stack, params: RateParams, workers: int) -> dict[str, Any]:
    stack.reset()
    create_contacts(stack, params.records, prefix=f"R{workers}x")
    trigger_idle(stack)
    scaled = params.window * stack.time_scale
    # Configuring the limit starts the emulator's window count afresh.
    stack.gw_sim("POST", "/faults", json={"rate_limit": {"limit": params.limit,
                                                          "window_s": params.window}})
    env = {"GATEWAY_RATE_LIMIT": str(params.limit), "GATEWAY_RATE_WINDOW": f"{scaled}s"}
    started = time.monotonic()
    procs = stack.start_workers(workers, env)
    try:
        expected = params.records / params.limit * scaled
        drain_queue(stack, timeout=expected * 2 + 60)
        elapsed = time.monotonic() - started
    finally:
        stack.stop(procs)
    stats = stack.gw_sim("GET", "/stats")
    counts = window_counts(stats["rate_limit"]["windows"])
    failed = stack.count("SELECT count(*) FROM api_queue_items WHERE status = 'failed'")
    return {**utilisation(counts, params.limit), "workers": workers, "elapsed_s": elapsed,
            "window_s": scaled, "rate_limited": stats["rate_limited"], "failed_rows": failed}


def run(stack: Stack, params: RateParams) -> list[Figure]:
    figures = []
    procs = [stack.start_web(), stack.start_clock()]
    try:
        results = [run_one(stack, params, workers) for workers in params.workers]
    finally:
        stack.stop(procs)
    for workers, result in zip(params.workers, results, strict=True):
        share = result["utilisation"]
        figures.append(Figure(
            f"ratelimit.utilisation.{workers}w",
            f"gateway rate-limit utilisation, {workers} worker(s)",
            None if share is None else share * 100, "%",
            ceiling=float(params.limit), ceiling_unit="",
            ceiling_label=f"calls allowed per {result['window_s']:g}s window",
            target=">= 90 %", passed=share is not None and share >= 0.9, detail=result))
        figures.append(Figure(
            f"ratelimit.429_after_warmup.{workers}w",
            f"429s after warm-up, {workers} worker(s)",
            float(result["refused_after_warmup"]), "",
            ceiling=float(result["refused_total"]), ceiling_label="429s in all",
            target="0", passed=result["refused_after_warmup"] == 0))
    return figures
