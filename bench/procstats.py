"""CPU time and memory of the processes under test, read through psutil.

A process spec's pid is the process we started; gunicorn's workers are its children, so a
process "tree" is the process plus its living descendants.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from app.supervisor import Proc


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process and its living descendants."""
    total = 0.0
    for proc in _tree(pid):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def own_cpu_seconds(pid: int) -> float:
    """CPU seconds of one process alone (a gunicorn master without its workers)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def rss_bytes(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.NoSuchProcess:
        return 0


def pid_of(proc: Proc) -> int:
    assert proc.popen is not None, f"{proc.name} was never started"
    return int(proc.popen.pid)


@dataclass
class CpuMeter:
    """CPU seconds used by a set of processes between ``start`` and ``stop``."""

    procs: list[Proc]

    def __post_init__(self) -> None:
        self._start: dict[str, float] = {}

    def start(self) -> None:
        self._start = {p.name: cpu_seconds(pid_of(p)) for p in self.procs}

    def stop(self) -> dict[str, float]:
        """CPU seconds per process name since ``start``."""
        return {p.name: cpu_seconds(pid_of(p)) - self._start.get(p.name, 0.0)
                for p in self.procs}


def each_process(procs: Iterable[Proc]) -> dict[str, int]:
    """Name -> pid for every process of the trees (gunicorn's master and workers apart)."""
    out: dict[str, int] = {}
    for proc in procs:
        for n, member in enumerate(_tree(pid_of(proc))):
            out[proc.name if n == 0 else f"{proc.name}.{n}"] = member.pid
    return out
