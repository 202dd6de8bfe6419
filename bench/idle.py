"""Idle CPU: every Paybridge process with nothing to do (no tight polling)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from bench.procstats import each_process, own_cpu_seconds
from bench.report import Figure
from bench.stack import Stack

TARGET = 2.0  # % of one core, per process


@dataclass(frozen=True)
class IdleParams:
    seconds: float


def run(stack: Stack, params: IdleParams) -> list[Figure]:
    stack.reset()
    procs = [stack.start_web(), stack.start_clock(), *stack.start_workers(2)]
    try:
        time.sleep(3)  # start-up over
        pids = each_process(procs)
        before = {name: own_cpu_seconds(pid) for name, pid in pids.items()}
        time.sleep(params.seconds)
        share = {name: (own_cpu_seconds(pid) - before[name]) / params.seconds * 100
                 for name, pid in pids.items()}
    finally:
        stack.stop(procs)
    worst = max(share, key=share.__getitem__)
    name = re.sub(r"-\d{6,}", "", worst)
    return [Figure("idle.cpu_max_percent", f"idle CPU, busiest process ({name})",
                   share[worst], "%", ceiling_label=f"{len(share)} processes measured",
                   target="< 2 % each", passed=share[worst] < TARGET,
                   detail={"per_process": share, "seconds": params.seconds})]

