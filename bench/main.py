"""The benchmark suite: one command, real processes, every figure next to its ceiling.

Runs on PostgreSQL and Redis (defaults: the machine's servers, database ``paybridge_bench``
created when missing, Redis database 9), prints a table and writes JSON to bench/results/.
``--quick`` runs every scenario small (seconds, for CI); the default sizes are the ones the
README quotes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import (
    backlog,
    idle,
    intake,
    latency,
    memory,
    profiles,
    ratelimit,
    reconcile,
    throughput,
)
from bench.database import reset_database
from bench.report import Figure, line, machine, results_path, table, write_json
from bench.stack import Stack, end_on_signals

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/paybridge_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"  # 15 belongs to the test suite


@dataclass(frozen=True)
class Sizes:
    time_scale: float  # the gateway emulator's: its 60 s window lasts 60 * time_scale
    rate: ratelimit.RateParams
    load: throughput.LoadParams
    intake: intake.IntakeParams
    latency: latency.LatencyParams
    backlog: backlog.BacklogParams
    memory: memory.MemoryParams
    idle: idle.IdleParams
    reconcile: reconcile.ReconcileParams
    webhook_modes: tuple[str, ...] = ("event", "batch")


FULL = Sizes(
    time_scale=0.25,
    rate=ratelimit.RateParams(records=5000, limit=1000, window=60, workers=(1, 2, 4)),
    load=throughput.LoadParams(records=3000, payments=1000, floor_items=2000),
    intake=intake.IntakeParams(batches=400, big_batches=60),
    latency=latency.LatencyParams(samples=60),
    backlog=backlog.BacklogParams(small=10_000, large=1_000_000),
    memory=memory.MemoryParams(items=100_000, warm=10_000),
    idle=idle.IdleParams(seconds=20),
    reconcile=reconcile.ReconcileParams(sizes=(10_000, 100_000)),
)

QUICK = Sizes(
    time_scale=0.025,
    rate=ratelimit.RateParams(records=500, limit=100, window=60, workers=(2,)),
    load=throughput.LoadParams(records=300, payments=60, floor_items=200),
    intake=intake.IntakeParams(batches=24, big_batches=8),
    latency=latency.LatencyParams(samples=6),
    backlog=backlog.BacklogParams(small=2_000, large=20_000, repeats=3),
    memory=memory.MemoryParams(items=600, warm=100),
    idle=idle.IdleParams(seconds=2),
    # A lower Bulk threshold, so the small run reads the larger size through a Bulk job too.
    reconcile=reconcile.ReconcileParams(sizes=(300, 1_500), bulk_threshold=1_000),
    webhook_modes=("batch",),
)

SCENARIOS = ("idle", "latency", "throughput", "intake", "ratelimit", "backlog", "memory",
             "reconcile")


def run_suite(database_url: str, redis_url: str, *, quick: bool, home: Path,
              only: tuple[str, ...] = SCENARIOS, fresh_database: bool = True,
              profile: bool = False, memory_items: int | None = None,
              checkpoint: Callable[[list[Figure], dict[str, Any]], None] | None = None,
              ) -> tuple[list[Figure], dict[str, Any]]:
    """Run the scenarios; returns the figures and the run's metadata. Scenarios yield each
    figure as soon as it is measured: it is printed at once and ``checkpoint`` gets every
    figure so far, so a long run interrupted late keeps (and has shown) what it measured."""
    sizes = QUICK if quick else FULL
    if memory_items is not None:
        sizes = replace(sizes, memory=replace(sizes.memory, items=memory_items))
    if fresh_database:
        reset_database(database_url)
    meta: dict[str, Any] = {"quick": quick, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                            "machine_before": machine(),
                            "database": database_url.split("@")[-1].split("?")[0],
                            "redis": redis_url.split("@")[-1], "durations_s": {}}
    stack = Stack(database_url, redis_url, home, time_scale=sizes.time_scale)
    figures: list[Figure] = []
    steps: dict[str, Callable[[], Iterable[Figure]]] = {
        "idle": lambda: idle.run(stack, sizes.idle),
        "latency": lambda: latency.run(stack, sizes.latency),
        "throughput": lambda: throughput.run(stack, sizes.load, sizes.webhook_modes),
        "intake": lambda: intake.run(stack, sizes.intake),
        "ratelimit": lambda: ratelimit.run(stack, sizes.rate),
        "backlog": lambda: backlog.run(stack, sizes.backlog),
        "memory": lambda: memory.run(stack, sizes.memory),
        "reconcile": lambda: reconcile.run(stack, sizes.reconcile),
    }
    with contextlib.closing(stack):
        stack.start_emulators()
        for name in only:
            started = time.monotonic()
            print(f"bench: {name}...", file=sys.stderr, flush=True)
            for figure in steps[name]():
                figures.append(figure)
                print(f"bench: {line(figure)}", file=sys.stderr, flush=True)
                if checkpoint is not None:
                    checkpoint(figures, meta)
            meta["durations_s"][name] = round(time.monotonic() - started, 1)
            if checkpoint is not None:
                checkpoint(figures, meta)
        if profile:
            print("bench: profiles...", file=sys.stderr, flush=True)
            meta["profiles"] = {"worker": profiles.worker(stack, sizes.load.records),
                                "intake": profiles.intake(stack, sizes.intake.batches // 4),
                                "intake_event": profiles.intake(stack, sizes.intake.batches // 4,
                                                                "event")}
    meta["machine_after"] = machine()
    return figures, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds, for CI")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 DEFAULT_DATABASE))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS),
                        help="run only these scenarios")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the worker and webhook intake (pyinstrument); "
                             "the profiles go into the JSON results")
    parser.add_argument("--memory-items", type=int, default=None,
                        help="items the memory phase drains (default 100,000; quick 600)")
    args = parser.parse_args(argv)
    end_on_signals()
    path = results_path(args.quick)
    with tempfile.TemporaryDirectory(prefix="paybridge-bench-") as home:
        figures, meta = run_suite(
            args.database_url, args.redis_url, quick=args.quick, home=Path(home),
            only=tuple(args.only), profile=args.profile, memory_items=args.memory_items,
            checkpoint=lambda f, m: write_json(f, m, path))
    print(table(figures))
    load = meta["machine_before"]["load"]
    print(f"\nmachine: {meta['machine_before']['cpus']} cores, load {load[0]} before, "
          f"{meta['machine_after']['load'][0]} after; database {meta['database']}")
    print(f"results: {write_json(figures, meta, path)}")
    return 0
